// Command smsc-sim runs simulated carrier SMSCs (see package smscsim).
//
//	smsc-sim -config sim.yaml
//	smsc-sim -addr 127.0.0.1:2775 -system-id sluice -password secret -http 127.0.0.1:8095
//
// The YAML file:
//
//	http: 127.0.0.1:8095
//	carriers:
//	  - id: sim-a
//	    system_id: sluice
//	    password: secret
//	    addr: 127.0.0.1:2775
//	    dlr_delay: 100ms
//	    outcomes: {DELIVRD: 90, UNDELIV: 6, EXPIRED: 2, REJECTD: 2}
//	    max_binds: 4     # binds beyond are refused with ESME_RBINDFAIL
//	    tps: 2000        # submits beyond this in any one second get ESME_RTHROTTLED
//	    dlr_jitter: 50ms        # receipt delay: dlr_delay plus uniform [0, dlr_jitter)
//	    dlr_distribution: exponential  # receipt delay exponential with mean dlr_delay (default fixed)
//	    resp_id_form: hex       # submit_sm_resp ids: hex (default) or decimal
//	    dlr_text_id_form: decimal  # a receipt text's id:: same as the resp (default), decimal or hex
//	    dlr_tlv_id_form: same   # receipted_message_id: same as the resp (default, SMPP 3.4), decimal or hex
//	    id_case: upper          # hex ids' letters: lower (default) or upper
//	    id_zero_pad: 20         # every id at least 20 digits, leading zeros filling (hex ids: 16 at least)
//	    # dlr_id_format: decimal  # dlr_text_id_form's older name
//	    duplicate_dlrs: 0.01    # fraction of receipts sent twice
//	    mo_every: 10s           # an MO ("STOP" or mo_text) from a random subscriber
//	    latency: 5ms            # before each submit_sm_resp, plus uniform [0, latency_jitter)
//	    errors: {0x08: 0.01, 0x0B: 0.001}  # fraction of submit_sm refused, by status
//	    stall_rate: 0.001       # accepted but answered only after stall (e.g. 15s)
//	    disconnect_rate: 0.0001 # accepted, then the connection dropped
//	    down: false             # refuse every bind
//
// GET /stats reports, per carrier, counters including peak_tps (most submit_sm in any
// one second) and peak_binds (most binds open at once).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-sms/sluice/tools/smscsim"
)

type fileConfig struct {
	HTTP     string                  `yaml:"http"`
	Carriers []smscsim.CarrierConfig `yaml:"carriers"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("smsc-sim failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("smsc-sim", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML file with the carriers (overrides the single-carrier flags)")
	httpAddr := fs.String("http", "127.0.0.1:8095", "stats HTTP address (GET /stats); empty for none")
	one := smscsim.CarrierConfig{ID: "sim-a"}
	fs.StringVar(&one.ID, "id", one.ID, "carrier id")
	fs.StringVar(&one.Addr, "addr", "127.0.0.1:2775", "SMPP listen address")
	fs.StringVar(&one.SystemID, "system-id", "sluice", "system_id to accept")
	fs.StringVar(&one.Password, "password", "", "password to accept")
	fs.DurationVar(&one.DLRDelay, "dlr-delay", 0, "delay before each receipt (default 100ms)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := fileConfig{HTTP: *httpAddr, Carriers: []smscsim.CarrierConfig{one}}
	if *configPath != "" {
		var err error
		if cfg, err = readConfig(*configPath); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sim, err := smscsim.StartWithLogger(ctx, cfg.Carriers, cfg.HTTP, log)
	if err != nil {
		return err
	}
	log.Info("smsc-sim running", "http", sim.HTTPAddr(), "carriers", len(cfg.Carriers))
	<-ctx.Done()
	log.Info("smsc-sim stopping")
	return sim.Close()
}

func readConfig(path string) (fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileConfig{}, fmt.Errorf("read config: %w", err)
	}
	var cfg fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return fileConfig{}, fmt.Errorf("parse config %s: %w", path, err)
	}
	if len(cfg.Carriers) == 0 {
		return fileConfig{}, errors.New("config: no carriers")
	}
	return cfg, nil
}
