package testenv

import (
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
)

// Config is the default configuration on the test Kafka, with topics of the
// test's own, every service's listeners on free local ports, the dlr's
// state in a temporary directory and its timers checked every 50 ms.
func Config(t testing.TB) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers = Kafka(t)
	cfg.Kafka.ReplicationFactor = ReplicationFactor()
	cfg.Kafka.TopicPrefix = TopicPrefix(t)
	cfg.Ingest.AdminAddr, cfg.Ingest.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Router.AdminAddr = "127.0.0.1:0"
	cfg.Sender.AdminAddr = "127.0.0.1:0"
	cfg.DLR.AdminAddr = "127.0.0.1:0"
	cfg.DLR.SweepInterval = 50 * time.Millisecond
	cfg.DLR.StateDir = t.TempDir()
	return cfg
}

// WithClickHouse points cfg at a ClickHouse database of the test's own,
// flushed every 100 ms.
func WithClickHouse(t testing.TB, cfg *config.Config) {
	t.Helper()
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = ClickHouseDatabase(t)
	cfg.ClickHouse.FlushInterval = 100 * time.Millisecond
}
