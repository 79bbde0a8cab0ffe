// Package router decides, for each accepted message, which carrier's
// outbound lane it goes to and when: by longest-prefix route with weights
// and failover, within its tenant's throughput and daily quota, after its
// send_at and the quiet hours of its destination, unless its number opted
// out. See README "Routing" for the design.
package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Consumer groups of the router.
const (
	// Group drains sluice.accepted, which no release writes any more, into
	// the tenant-keyed intakes: the messages an older ingest or sender left
	// there at an upgrade.
	Group = "sluice-router"
	// GroupPartitions decides, partition by partition of the intakes.
	GroupPartitions = "sluice-router-partitions"
	// GroupMO reads MO messages for opt-out keywords.
	GroupMO = "sluice-router-mo"
)

// Run routes until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	return Serve(ctx, cfg, log, nil)
}

// Serve routes until ctx ends, taking each configuration that arrives on
// reload (routes, carriers, tenants and router settings) between two
// batches; a nil reload never changes it.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger, reload <-chan config.Config) error {
	pol, err := compile(cfg)
	if err != nil {
		return err
	}
	env, err := service.Start(ctx, "router", cfg.Router.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()
	m, err := newMetrics(env.Tel.Meter())
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// The schedule's tables; closed once every partition has stopped.
	db, err := state.Open(cfg.Router.StateDir)
	if err != nil {
		return err
	}
	defer db.Close()
	r := &router{env: env, metrics: m, tracer: env.Tel.Tracer(), now: time.Now, optOuts: newOptOuts(), health: newHealth(), db: db}
	r.policy.Store(pol)

	// The first part to fail stops the others.
	g, ctx := errgroup.WithContext(ctx)
	run := func(name string, f func() error) {
		g.Go(func() error {
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	brokers := cfg.Kafka.Brokers
	optCaught, healthCaught := make(chan struct{}), make(chan struct{})
	// Both are small compacted topics of one partition, followed through
	// broker outages.
	run("opt-out list", func() error {
		kafka.Tail(ctx, brokers, env.Topic(schemas.TopicOptOut), 0, r.optOuts.apply, func() { close(optCaught) }, log)
		return nil
	})
	run("carrier health", func() error {
		kafka.Tail(ctx, brokers, env.Topic(schemas.TopicCarrierHealth), 0, r.health.apply, func() { close(healthCaught) }, log)
		return nil
	})
	// Decide only with the whole opt-out list and the carriers' state known.
	for _, caught := range []chan struct{}{optCaught, healthCaught} {
		select {
		case <-caught:
		case <-ctx.Done():
		}
	}
	if ctx.Err() == nil {
		run("legacy intake", func() error {
			return kafka.ConsumeBatches(ctx, env.Group(Group, schemas.TopicAccepted),
				kafka.BatchOptions{Max: 5000, Linger: 5 * time.Millisecond}, r.drainAccepted)
		})
		run("partitions", func() error {
			return kafka.RunGroup(ctx, env.Group(GroupPartitions, schemas.TopicRouterOTP, schemas.TopicRouterBulk, schemas.TopicRouterSched),
				r.runPartition)
		})
		run("mo", func() error {
			return kafka.ConsumeBatches(ctx, env.Group(GroupMO, schemas.TopicMO),
				kafka.BatchOptions{Max: 500, Linger: 5 * time.Millisecond}, r.handleMO)
		})
		run("reload", func() error { r.reloads(ctx, reload); return nil })
		env.Tel.SetReady(true)
	}
	<-ctx.Done()
	return g.Wait()
}

type router struct {
	env     *service.Env
	metrics *metrics
	tracer  trace.Tracer
	now     func() time.Time
	policy  atomic.Pointer[policy]
	optOuts *optOuts
	health  *health
	db      *state.DB // the partitions' schedules
}

// drainAccepted copies records of sluice.accepted (keyed by message id) to
// the intake their priority and tenant say, as ingest now writes them.
func (r *router) drainAccepted(ctx context.Context, _ string, batch []kafka.Message) error {
	out := make([]kafka.Message, 0, len(batch))
	for _, rec := range batch {
		tenant, prio, err := peek(rec.Value)
		if err != nil {
			// Only ingest and the sender wrote this topic; a record they
			// cannot have written is a bug worth stopping for.
			return fmt.Errorf("decode %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		topic := schemas.IntakeTopic(r.env.Cfg.Kafka.TopicPrefix, prio == sluicepb.Priority_PRIORITY_OTP)
		out = append(out, kafka.Message{Topic: topic, Key: []byte(tenant), Value: rec.Value, Headers: rec.Headers})
	}
	return r.env.Producer.Produce(ctx, out...)
}

// peek reads a Message's tenant and priority without decoding the rest.
func peek(b []byte) (tenant string, prio sluicepb.Priority, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", 0, protowire.ParseError(n)
			}
			tenant, b = string(v), b[n:]
			continue
		case num == 8 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", 0, protowire.ParseError(n)
			}
			prio, b = sluicepb.Priority(v), b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", 0, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return tenant, prio, nil
}

// reloads applies each configuration that arrives until ctx ends.
func (r *router) reloads(ctx context.Context, reload <-chan config.Config) {
	for {
		select {
		case <-ctx.Done():
			return
		case cfg, ok := <-reload:
			if !ok {
				return
			}
			if err := r.reload(ctx, cfg); err != nil {
				r.env.Log.Error("configuration not reloaded; keeping the running one", "err", err)
			}
		}
	}
}

// reload swaps in a new policy once the topics of any new carrier exist.
// Kafka settings and listen addresses need a restart.
func (r *router) reload(ctx context.Context, cfg config.Config) error {
	pol, err := compile(cfg)
	if err != nil {
		return err
	}
	if r.env.Cfg.Kafka.CreateTopics {
		cfg.Kafka = r.env.Cfg.Kafka
		if err := service.CreateTopics(ctx, cfg); err != nil {
			return err
		}
	}
	r.policy.Store(pol)
	r.env.Log.Info("configuration reloaded", "routes", len(cfg.Routes), "carriers", len(cfg.Carriers), "tenants", len(cfg.Tenants))
	return nil
}

// Lane maps a priority to its outbound lane: otp ahead of everything else.
func Lane(p sluicepb.Priority) string {
	if p == sluicepb.Priority_PRIORITY_OTP {
		return schemas.LaneOTP
	}
	return schemas.LaneBulk
}

// prefixOf keeps numbers out of logs beyond their country and operator part.
func prefixOf(n string) string {
	if len(n) > 5 {
		return n[:5]
	}
	return n
}
