// Package service wires what every sluice service starts with: logs,
// telemetry and the admin endpoints, the topics of the catalogue, and a
// producer.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas"
)

// Env is a running service's shared plumbing.
type Env struct {
	Name     string
	Cfg      config.Config
	Log      *slog.Logger
	Tel      *telemetry.Telemetry
	Producer *kafka.Producer
	// Lag reports the consumer lag of the service's groups (named
	// <prefix>sluice-<name>...) on /metrics; a group named otherwise can
	// set it in its kafka.GroupConfig.
	Lag *kafka.LagMonitor

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Start sets up telemetry, serves the admin endpoints on adminAddr, creates
// missing topics (when the config asks for it) and opens a producer.
func Start(ctx context.Context, name, adminAddr string, cfg config.Config, log *slog.Logger) (*Env, error) {
	log = log.With("component", name)
	log.Info("starting", "config", cfg.Redacted())
	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "sluice-" + name, AdminAddr: adminAddr}, log)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if cfg.Kafka.CreateTopics {
		if err := CreateTopics(ctx, cfg); err != nil {
			_ = tel.Shutdown(context.Background())
			return nil, err
		}
	}
	lag := kafka.NewLagMonitor(cfg.Kafka.Brokers, log)
	lag.WatchPrefix(cfg.Kafka.TopicPrefix + "sluice-" + name) // the service's groups, by their names
	if _, err := lag.Register(tel.Meter()); err != nil {
		_ = tel.Shutdown(context.Background())
		return nil, fmt.Errorf("consumer lag metrics: %w", err)
	}
	if _, err := kafka.RegisterTraffic(tel.Meter()); err != nil {
		_ = tel.Shutdown(context.Background())
		return nil, fmt.Errorf("kafka traffic metrics: %w", err)
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e := &Env{
		Name:     name,
		Cfg:      cfg,
		Log:      log,
		Tel:      tel,
		Producer: kafka.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.BatchTimeout),
		Lag:      lag,
		stop:     stop,
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := tel.Serve(serveCtx); err != nil {
			log.Error("admin server stopped", "addr", adminAddr, "err", err)
		}
	}()
	return e, nil
}

// Topic returns the full name of a catalogue topic.
func (e *Env) Topic(name string) string { return e.Cfg.Kafka.TopicPrefix + name }

// Group returns the config of the service's consumer group name on the
// catalogue topics; the group name takes the topic prefix, so that
// deployments sharing a cluster keep their offsets apart.
func (e *Env) Group(name string, topics ...string) kafka.GroupConfig {
	full := make([]string, len(topics))
	for i, t := range topics {
		full[i] = e.Topic(t)
	}
	return kafka.GroupConfig{Brokers: e.Cfg.Kafka.Brokers, Group: e.Cfg.Kafka.TopicPrefix + name, Topics: full, Logger: e.Log}
}

// Close flushes the producer and telemetry and stops the admin server.
func (e *Env) Close() {
	e.Tel.SetReady(false)
	if err := e.Producer.Close(); err != nil {
		e.Log.Error("close producer", "err", err)
	}
	e.stop()
	e.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Tel.Shutdown(ctx); err != nil {
		e.Log.Error("flush telemetry", "err", err)
	}
	e.Log.Info("stopped")
}

// CreateTopics creates the catalogue's topics for the configured carriers.
func CreateTopics(ctx context.Context, cfg config.Config) error {
	slots := make([]schemas.CarrierSlots, len(cfg.Carriers))
	for i, c := range cfg.Carriers {
		slots[i] = schemas.CarrierSlots{ID: c.ID, Binds: c.Binds}
	}
	var tenants []string
	for _, t := range cfg.Tenants {
		if t.SMPPSystemID != "" {
			tenants = append(tenants, t.ID)
		}
	}
	topics, err := schemas.Resolve(cfg.Kafka.TopicPrefix, slots, tenants)
	if err != nil {
		return fmt.Errorf("topic catalogue: %w", err)
	}
	specs := make([]kafka.TopicSpec, len(topics))
	for i, t := range topics {
		specs[i] = kafka.TopicSpec{Name: t.Name, Partitions: t.Partitions, Config: t.Config()}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cfg.Kafka.Brokers, cfg.Kafka.ReplicationFactor, specs); err != nil {
		return err
	}
	return nil
}
