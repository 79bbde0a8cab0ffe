// Package devstack runs the whole of sluice in one process: Kafka (embedded
// unless given), a simulated SMSC with three carriers, ClickHouse (a local
// server unless given) and the four services. The demo and the end-to-end
// tests use it.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/chlocal"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka/embedded"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/services/dlr"
	"github.com/sluice-sms/sluice/services/ingest"
	"github.com/sluice-sms/sluice/services/router"
	"github.com/sluice-sms/sluice/services/sender"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// Options say what to start. Zero values start everything embedded.
type Options struct {
	Brokers []string // use this Kafka instead of an embedded broker
	// ReplicationFactor of the topics on Brokers; 0: 1 (the embedded broker).
	ReplicationFactor int
	KafkaPort         int    // port of the embedded broker; 0: any
	ClickHouseAddr    string // use this ClickHouse instead of a local server
	ClickHouseDB      string // default "sluice"
	DataDir           string // the local ClickHouse server's data; "": a temporary dir
	TopicPrefix       string
	AdminPorts        bool // serve /metrics etc. on the services' default ports (else any free port)
	Carriers          []smscsim.CarrierConfig
	Log               *slog.Logger // the services' logs
	// Configure, when set, changes the stack's configuration (tenants,
	// routes, listen addresses) before it is validated and used.
	Configure func(*config.Config)
}

// Stack is a running sluice.
type Stack struct {
	Cfg config.Config
	Sim *smscsim.Sim

	broker *embedded.Broker
	ch     *chlocal.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	// failed ends when a service stops with an error, its cause that error.
	failed context.Context
	fail   context.CancelCauseFunc
}

// DefaultCarriers are the simulated carriers of the demo: two in GB sharing
// traffic 70/30 and one for FR and DE, with a realistic mix of outcomes.
// sim-a writes its ids as many real SMSCs do (hex resp in upper case with
// leading zeros, the text's id: in decimal, the TLV as the resp), so that the
// demo and the chaos suite go through receipt_ids; the others write one form.
func DefaultCarriers() []smscsim.CarrierConfig {
	mix := map[string]int{"DELIVRD": 90, "UNDELIV": 6, "EXPIRED": 2, "REJECTD": 2}
	return []smscsim.CarrierConfig{
		{ID: "sim-a", SystemID: "sluice", Password: "sim-a-pass", Addr: "127.0.0.1:0", DLRDelay: 200 * time.Millisecond, Outcomes: mix,
			DLRTextIDForm: smscsim.IDFormDecimal, IDCase: "upper", IDZeroPad: 20},
		{ID: "sim-b", SystemID: "sluice", Password: "sim-b-pass", Addr: "127.0.0.1:0", DLRDelay: 500 * time.Millisecond, Outcomes: mix},
		{ID: "sim-c", SystemID: "sluice", Password: "sim-c-pass", Addr: "127.0.0.1:0", DLRDelay: 300 * time.Millisecond, Outcomes: mix},
	}
}

// Start starts the stack; Close stops it.
func Start(ctx context.Context, opt Options) (_ *Stack, err error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if len(opt.Carriers) == 0 {
		opt.Carriers = DefaultCarriers()
	}
	if opt.ClickHouseDB == "" {
		opt.ClickHouseDB = "sluice"
	}
	s := &Stack{}
	s.failed, s.fail = context.WithCancelCause(context.Background())
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	brokers := opt.Brokers
	if len(brokers) == 0 {
		var bopts []embedded.Option
		if opt.KafkaPort != 0 {
			bopts = append(bopts, embedded.WithPort(opt.KafkaPort))
		}
		if s.broker, err = embedded.Start(bopts...); err != nil {
			return nil, err
		}
		brokers = s.broker.Addrs()
	}
	chAddr := opt.ClickHouseAddr
	if chAddr == "" {
		if s.ch, err = chlocal.Start(ctx, chlocal.Options{Dir: opt.DataDir}); err != nil {
			return nil, err
		}
		chAddr = s.ch.Addr()
	}
	if s.Sim, err = smscsim.StartWithLogger(ctx, opt.Carriers, "127.0.0.1:0", opt.Log); err != nil {
		return nil, fmt.Errorf("smsc-sim: %w", err)
	}

	s.Cfg, err = s.config(opt, brokers, chAddr)
	if err != nil {
		return nil, err
	}
	// Topics first, so the services do not race to create them.
	if err := service.CreateTopics(ctx, s.Cfg); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for name, run := range map[string]service.RunFunc{"ingest": ingest.Run, "router": router.Run, "sender": sender.Run, "dlr": dlr.Run} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := run(runCtx, s.Cfg, opt.Log); err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
				s.mu.Unlock()
				s.fail(fmt.Errorf("service %s stopped: %w", name, err))
				opt.Log.Error("service stopped with an error", "service", name, "err", err)
			}
		}()
	}
	return s, nil
}

func (s *Stack) config(opt Options, brokers []string, chAddr string) (config.Config, error) {
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.ReplicationFactor = max(1, opt.ReplicationFactor)
	cfg.Kafka.TopicPrefix = opt.TopicPrefix
	cfg.ClickHouse.Addr = chAddr
	cfg.ClickHouse.Database = opt.ClickHouseDB
	if !opt.AdminPorts {
		cfg.Ingest.AdminAddr, cfg.Router.AdminAddr, cfg.Sender.AdminAddr, cfg.DLR.AdminAddr =
			"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	}
	cfg.Tenants = []config.Tenant{{ID: "demo"}}
	var err error
	if cfg.Carriers, err = SimCarriers(s.Sim, opt.Carriers); err != nil {
		return cfg, err
	}
	cfg.Routes = Routes()
	if opt.Configure != nil {
		opt.Configure(&cfg)
	}
	return cfg, cfg.Validate()
}

// SimCarriers are the carriers of sluice.yaml for the simulated ones, at the
// addresses sim listens on: 2 binds, 5,000 parts/s and a window of 50 each,
// and the receipt_ids of each one's id forms.
func SimCarriers(sim *smscsim.Sim, carriers []smscsim.CarrierConfig) ([]config.Carrier, error) {
	out := make([]config.Carrier, 0, len(carriers))
	for _, c := range carriers {
		ids, err := c.ReceiptIDs()
		if err != nil {
			return nil, err
		}
		host, port, err := net.SplitHostPort(sim.Addr(c.ID))
		if err != nil {
			return nil, fmt.Errorf("carrier %s address: %w", c.ID, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("carrier %s port: %w", c.ID, err)
		}
		out = append(out, config.Carrier{
			ID: c.ID, Host: host, Port: p, SystemID: c.SystemID, Password: c.Password,
			Binds: 2, TPS: 5000, Window: 50, ReceiptIDs: ids,
		})
	}
	return out, nil
}

// Routes send the DefaultCarriers' countries to them: GB 70/30 over sim-a
// and sim-b, FR and DE to sim-c.
func Routes() []config.Route {
	return []config.Route{
		{Prefix: "+44", Carriers: []config.RouteCarrier{{ID: "sim-a", Weight: 70}, {ID: "sim-b", Weight: 30}}},
		{Prefix: "+33", Carriers: []config.RouteCarrier{{ID: "sim-c", Weight: 1}}},
		{Prefix: "+49", Carriers: []config.RouteCarrier{{ID: "sim-c", Weight: 1}}},
	}
}

// Close stops the services (they drain and commit), then the simulator,
// ClickHouse and Kafka. It returns the errors the services stopped with.
func (s *Stack) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.Sim != nil {
		_ = s.Sim.Close()
	}
	if s.ch != nil {
		s.ch.Stop()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}
