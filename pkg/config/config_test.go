package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const sample = `
kafka:
  brokers: [k1:9092]
  topic_prefix: prod.
tenants:
  - id: acme
    api_key_sha256: ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    rate_limit: 100
carriers:
  - id: sim-a
    host: 127.0.0.1
    port: 2775
    system_id: sluice
    password: ${SIM_A_PASSWORD}
    binds: 4
    tps: 2000
    window: 50
  - {id: sim-b, host: 127.0.0.1, port: 2776, system_id: s, password: p, binds: 1, tps: 10, window: 1}
routes:
  - prefix: "+44"
    carriers: [{id: sim-a, weight: 70}, {id: sim-b, weight: 30}]
    failover: [sim-b]
`

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseSample(t *testing.T) {
	cfg, err := Parse([]byte(sample), env(map[string]string{"SIM_A_PASSWORD": `s3cret: #"x`}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Carriers[0].Password; got != `s3cret: #"x` {
		t.Errorf("password = %q, want expanded secret", got)
	}
	if cfg.Kafka.TopicPrefix != "prod." || cfg.Kafka.Brokers[0] != "k1:9092" {
		t.Errorf("kafka = %+v", cfg.Kafka)
	}
	// Defaults fill what the file leaves out.
	if cfg.ClickHouse.Database != "sluice" || cfg.Ingest.HTTPAddr != ":8080" || cfg.DLR.AdminAddr != ":9104" ||
		cfg.ClickHouse.RetentionMonths != 0 {
		t.Errorf("defaults not applied: %+v %+v", cfg.ClickHouse, cfg.Ingest)
	}
	if cfg.Routes[0].Carriers[1].Weight != 30 || cfg.Routes[0].Failover[0] != "sim-b" {
		t.Errorf("routes = %+v", cfg.Routes)
	}
}

func TestCarrierDefaults(t *testing.T) {
	cfg, err := Parse([]byte("carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, retry_delay: 5s, long_messages: sar}]"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Carriers[0].WithDefaults()
	if got.RespTimeout != 10*time.Second || got.RetryAttempts != 4 || got.RetryDelay != 5*time.Second || got.LongMessages != LongSAR || got.ReceiptIDs != (ReceiptIDs{Text: ReceiptIDsSame, TLV: ReceiptIDsSame}) || got.BindMode != BindTransceiver {
		t.Errorf("carrier with defaults = %+v", got)
	}
}

func TestReceiptHandlers(t *testing.T) {
	tests := []struct {
		yaml string
		want int
	}{
		{"", DefaultReceiptHandlers},
		{", receipt_handlers: 8", 8},
	}
	for _, tt := range tests {
		cfg, err := Parse([]byte("carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1"+tt.yaml+"}]"), env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Carriers[0].WithDefaults().ReceiptHandlers; got != tt.want {
			t.Errorf("%q: receipt_handlers %d, want %d", tt.yaml, got, tt.want)
		}
	}
}

func TestReceiptIDForms(t *testing.T) {
	tests := []struct {
		yaml string
		want ReceiptIDs
	}{
		{"same", ReceiptIDs{Text: ReceiptIDsSame, TLV: ReceiptIDsSame}},
		{"decimal", ReceiptIDs{Resp: ReceiptIDsHex, Text: ReceiptIDsDecimal, TLV: ReceiptIDsSame}},
		{"hex", ReceiptIDs{Resp: ReceiptIDsDecimal, Text: ReceiptIDsHex, TLV: ReceiptIDsSame}},
		{"{text: decimal, tlv: same}", ReceiptIDs{Resp: ReceiptIDsHex, Text: ReceiptIDsDecimal, TLV: ReceiptIDsSame}},
		{"{tlv: decimal}", ReceiptIDs{Resp: ReceiptIDsHex, Text: ReceiptIDsSame, TLV: ReceiptIDsDecimal}},
		{"{resp: decimal}", ReceiptIDs{Resp: ReceiptIDsDecimal, Text: ReceiptIDsSame, TLV: ReceiptIDsSame}},
		{"{resp: hex, text: decimal, tlv: hex}", ReceiptIDs{Resp: ReceiptIDsHex, Text: ReceiptIDsDecimal, TLV: ReceiptIDsHex}},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			cfg, err := Parse([]byte("carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, receipt_ids: "+tt.yaml+"}]"), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Carriers[0].WithDefaults().ReceiptIDs
			if got != tt.want {
				t.Errorf("receipt_ids %s = %+v, want %+v", tt.yaml, got, tt.want)
			}
			// Written back and read again, it is the same form.
			out, err := yaml.Marshal(cfg.Carriers[0].ReceiptIDs)
			if err != nil {
				t.Fatal(err)
			}
			var again ReceiptIDs
			if err := yaml.Unmarshal(out, &again); err != nil {
				t.Fatal(err)
			}
			if again.WithDefaults() != tt.want {
				t.Errorf("marshalled as %q, read back as %+v", out, again.WithDefaults())
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Parse([]byte(sample), env(map[string]string{
		"SIM_A_PASSWORD":                     "x",
		"SLUICE_KAFKA_BROKERS":               "a:1, b:2",
		"SLUICE_KAFKA_BATCH_TIMEOUT":         "20ms",
		"SLUICE_CLICKHOUSE_ADDR":             "ch:9000",
		"SLUICE_CLICKHOUSE_BATCH_SIZE":       "500",
		"SLUICE_KAFKA_CREATE_TOPICS":         "false",
		"SLUICE_CLICKHOUSE_RETENTION_MONTHS": "13",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.Kafka.Brokers) != "[a:1 b:2]" || cfg.Kafka.BatchTimeout != 20*time.Millisecond ||
		cfg.ClickHouse.Addr != "ch:9000" || cfg.ClickHouse.BatchSize != 500 || cfg.Kafka.CreateTopics ||
		cfg.ClickHouse.RetentionMonths != 13 {
		t.Errorf("overrides not applied: %+v %+v", cfg.Kafka, cfg.ClickHouse)
	}
}

func TestParseErrors(t *testing.T) {
	secret := map[string]string{"SIM_A_PASSWORD": "x"}
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown top-level key", "kafkaa: {}", nil, "field kafkaa not found"},
		{"unknown nested key", "kafka: {broker: [x]}", nil, "field broker not found"},
		{"unknown carrier key", strings.Replace(sample, "window: 50", "windw: 50", 1), secret, "field windw not found"},
		{"unset secret", sample, nil, "unset environment variables: SIM_A_PASSWORD"},
		{"bad duration", "kafka: {batch_timeout: soon}", nil, "parse"},
		{"bad env number", "", map[string]string{"SLUICE_CLICKHOUSE_BATCH_SIZE": "ten"}, `SLUICE_CLICKHOUSE_BATCH_SIZE: not a whole number: "ten"`},
		{"route to unknown carrier", strings.Replace(sample, "{id: sim-b, weight: 30}", "{id: sim-z, weight: 30}", 1), secret, `unknown carrier "sim-z"`},
		{"zero binds", strings.Replace(sample, "binds: 4", "binds: 0", 1), secret, "binds, tps and window must be at least 1"},
		{"prefix without plus", strings.Replace(sample, `"+44"`, `"44"`, 1), secret, `must start with '+'`},
		{"bad api key hash", strings.Replace(sample, "9f86d08", "zz86d08", 1), secret, "not a hex SHA-256"},
		{"duplicate tenant", "tenants: [{id: a}, {id: a}]", nil, `"a" is declared twice`},
		{"smpp tenant id with dot", "tenants: [{id: a.b, smpp_system_id: ab}]", nil, "a tenant of the SMPP front door names topics"},
		{"kannel password without user", "tenants: [{id: a, kannel_password_sha256: " + strings.Repeat("a", 64) + "}]", nil, "kannel_username: required"},
		{"kannel user without hash", "tenants: [{id: a, kannel_username: u}]", nil, "kannel_password_sha256: not a hex SHA-256"},
		{"kannel user twice", "tenants: [{id: a, kannel_username: u, kannel_password_sha256: " + strings.Repeat("a", 64) + "}, {id: b, kannel_username: u, kannel_password_sha256: " + strings.Repeat("b", 64) + "}]", nil, "kannel_username: u is used by another tenant"},
		{"kannel dlr url not http", "tenants: [{id: a, kannel_username: u, kannel_password_sha256: " + strings.Repeat("a", 64) + ", kannel_dlr_url: ftp://x}]", nil, "kannel_dlr_url: must be an http"},
		{"carrier id with dot", "carriers: [{id: a.b, host: h, port: 1, binds: 1, tps: 1, window: 1}]", nil, "may not contain"},
		{"negative clickhouse retention", "clickhouse: {retention_months: -1}", nil, "clickhouse.retention_months: -1 is negative"},
		{"clickhouse retention as a duration", "clickhouse: {retention_months: 90d}", nil, "parse"},
		{"dlr zero retention", "dlr: {retention: 0s}", nil, "retention, unmatched_after and sweep_interval must be positive"},
		{"unknown long_messages", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, long_messages: udp}]", nil, `long_messages "udp"`},
		{"unknown receipt_ids", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, receipt_ids: octal}]", nil, `receipt_ids "octal"`},
		{"unknown receipt_ids text", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, receipt_ids: {text: octal}}]", nil, `receipt_ids: text "octal"`},
		{"unknown receipt_ids field", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, receipt_ids: {txt: hex}}]", nil, `unknown field "txt"`},
		{"receipt_ids bases without resp", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, receipt_ids: {text: decimal, tlv: hex}}]", nil, "say the resp's base too"},
		{"unknown bind_mode", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, bind_mode: receiver}]", nil, `bind_mode "receiver"`},
		{"negative retry_attempts", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, retry_attempts: -1}]", nil, "must not be negative"},
		{"negative receipt_handlers", "carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, receipt_handlers: -1}]", nil, "receipt_handlers must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	cfg, err := Parse([]byte(sample), env(map[string]string{"SIM_A_PASSWORD": "s3cret-value"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClickHouse.Password = "ch-pass-value"
	cfg.Tenants[0].WebhookSecret = "hook-secret-value"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "effective", cfg.Redacted())
	out := buf.String()
	for _, secret := range []string{"s3cret-value", "ch-pass-value", "hook-secret-value", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q appears in the log: %s", secret, out)
		}
	}
	if !strings.Contains(out, mask) || !strings.Contains(out, "sim-a") {
		t.Errorf("log lacks the masked config: %s", out)
	}
	// The original is untouched.
	if cfg.Carriers[0].Password != "s3cret-value" || cfg.Tenants[0].APIKeySHA256[0] == mask {
		t.Error("Redacted modified the original config")
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../../sluice.example.yaml")
	if err == nil {
		t.Fatal("the example needs its secrets from the environment; Load without them must fail")
	}
	t.Setenv("CLICKHOUSE_PASSWORD", "x")
	t.Setenv("SIM_A_PASSWORD", "a")
	t.Setenv("SIM_B_PASSWORD", "b")
	if cfg, err = Load("../../sluice.example.yaml"); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Carriers) != 2 || len(cfg.Routes) != 2 || cfg.Carriers[0].Binds != 4 {
		t.Errorf("example parsed to %+v", cfg)
	}
}

func TestRoutingErrorsInHex(t *testing.T) {
	cfg, err := Parse([]byte("carriers: [{id: a, host: h, port: 1, binds: 1, tps: 1, window: 1, routing_errors: [0x0B, 0x45, 11]}]"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Carriers[0].RoutingErrors; !slices.Equal(got, []uint32{0x0B, 0x45, 11}) {
		t.Errorf("routing_errors = %v", got)
	}
}
