// Package router sends each accepted message to the outbound lane of the
// carrier its destination routes to.
package router

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Group is the router's consumer group.
const Group = "sluice-router"

// Run routes until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	env, err := service.Start(ctx, "router", cfg.Router.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()
	r := &router{env: env, table: NewTable(cfg.Routes), tracer: env.Tel.Tracer(), now: time.Now}
	env.Tel.SetReady(true)
	return kafka.ConsumeBatches(ctx, kafka.GroupConfig{
		Brokers: cfg.Kafka.Brokers,
		Group:   cfg.Kafka.TopicPrefix + Group,
		Topics:  []string{env.Topic(schemas.TopicAccepted)},
		Logger:  log,
	}, kafka.BatchOptions{Max: 1000, Linger: 2 * time.Millisecond}, r.handle)
}

type router struct {
	env    *service.Env
	table  *Table
	tracer trace.Tracer
	now    func() time.Time
}

func (r *router) handle(ctx context.Context, _ string, batch []kafka.Message) error {
	out := make([]kafka.Message, 0, len(batch))
	for _, rec := range batch {
		msg, err := r.route(ctx, rec)
		if err != nil {
			return err
		}
		out = append(out, msg)
	}
	return r.env.Producer.Produce(ctx, out...)
}

// route returns the record to publish for one accepted message: the message
// on its carrier's lane, or a final status when it cannot be routed.
func (r *router) route(ctx context.Context, rec kafka.Message) (kafka.Message, error) {
	var m sluicepb.Message
	if err := proto.Unmarshal(rec.Value, &m); err != nil {
		// Only ingest writes this topic; a record it cannot have written is a
		// bug worth stopping for, not something to drop.
		return kafka.Message{}, fmt.Errorf("decode %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	ctx = telemetry.Extract(ctx, rec.Headers)
	ctx, span := r.tracer.Start(ctx, "router.route", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("sluice.message_id", m.Id)))
	defer span.End()

	carrier, reason, ok := r.table.Pick(m.To, m.Id)
	if !ok {
		st := message.StatusOf(&m, message.StatusRejected, r.now())
		st.Reason = "no_route"
		value, err := st.Marshal()
		if err != nil {
			return kafka.Message{}, fmt.Errorf("encode status: %w", err)
		}
		r.env.Log.InfoContext(ctx, "no route", "message_id", m.Id, "to_prefix", prefixOf(m.To))
		return kafka.Message{Topic: r.env.Topic(schemas.TopicStatus), Key: []byte(m.Id), Value: value}, nil
	}
	m.Carrier, m.RouteReason = carrier, reason
	span.SetAttributes(attribute.String("sluice.carrier", carrier))
	value, err := proto.Marshal(&m)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode message: %w", err)
	}
	out := kafka.Message{
		Topic: schemas.OutboundTopic(r.env.Cfg.Kafka.TopicPrefix, carrier, Lane(m.Priority)),
		Key:   []byte(m.Id),
		Value: value,
	}
	telemetry.Inject(ctx, &out.Headers)
	return out, nil
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
