// Package ingest is sluice's front door: it validates requests from the
// sms.requests topic, gives each an id, decides its encoding and segments,
// and publishes accepted messages; a record it cannot accept goes to
// sms.requests.dlq unchanged, with the reason in its headers.
package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
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

// Group is the consumer group of the sms.requests reader.
const Group = "sluice-ingest"

// DLQ headers.
const (
	HeaderErrorCode       = "sluice-error-code"
	HeaderError           = "sluice-error"
	HeaderSourceTopic     = "sluice-source-topic"
	HeaderSourcePartition = "sluice-source-partition"
	HeaderSourceOffset    = "sluice-source-offset"
)

// Run serves until ctx ends, then drains and commits what it finished.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	env, err := service.Start(ctx, "ingest", cfg.Ingest.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()

	in := &intake{
		env:    env,
		limits: Limits{MaxSegments: cfg.Ingest.MaxSegments},
		tracer: env.Tel.Tracer(),
		now:    time.Now,
	}
	if in.metrics, err = newMetrics(env.Tel.Meter()); err != nil {
		return err
	}
	env.Tel.SetReady(true)
	return kafka.ConsumeBatches(ctx, kafka.GroupConfig{
		Brokers: cfg.Kafka.Brokers,
		Group:   cfg.Kafka.TopicPrefix + Group,
		Topics:  []string{env.Topic(schemas.TopicRequests)},
		Logger:  log,
	}, kafka.BatchOptions{Max: 1000, Linger: 2 * time.Millisecond}, in.handle)
}

type intake struct {
	env     *service.Env
	limits  Limits
	tracer  trace.Tracer
	metrics metrics
	now     func() time.Time
}

type metrics struct {
	accepted, rejected metric.Int64Counter
}

func newMetrics(m metric.Meter) (metrics, error) {
	acc, err := m.Int64Counter("sluice_ingest_accepted_total", metric.WithDescription("Messages accepted"))
	if err != nil {
		return metrics{}, fmt.Errorf("metric: %w", err)
	}
	rej, err := m.Int64Counter("sluice_ingest_rejected_total", metric.WithDescription("Requests refused, by error code"))
	if err != nil {
		return metrics{}, fmt.Errorf("metric: %w", err)
	}
	return metrics{accepted: acc, rejected: rej}, nil
}

// handle turns one batch of requests into accepted messages, status events
// and dead letters, written together before the batch is committed.
func (in *intake) handle(ctx context.Context, topic string, batch []kafka.Message) error {
	out := make([]kafka.Message, 0, 2*len(batch))
	for _, rec := range batch {
		msgs, err := in.process(ctx, rec)
		if err != nil {
			return err
		}
		out = append(out, msgs...)
	}
	return in.env.Producer.Produce(ctx, out...)
}

func (in *intake) process(ctx context.Context, rec kafka.Message) ([]kafka.Message, error) {
	ctx = telemetry.Extract(ctx, rec.Headers)
	ctx, span := in.tracer.Start(ctx, "ingest.accept", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()

	now := in.now()
	req, ferr := DecodeRequest(rec.Value)
	var m *sluicepb.Message
	if ferr == nil {
		m, ferr = Accept(req, now, in.limits)
	}
	if ferr != nil {
		span.SetStatus(codes.Error, ferr.Code)
		in.metrics.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("code", ferr.Code)))
		in.env.Log.InfoContext(ctx, "request rejected", "code", ferr.Code, "field", ferr.Field, "partition", rec.Partition, "offset", rec.Offset)
		return []kafka.Message{in.deadLetter(rec, ferr)}, nil
	}

	span.SetAttributes(attribute.String("sluice.message_id", m.Id), attribute.String("sluice.tenant", m.Tenant))
	value, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	status, err := message.StatusOf(m, message.StatusAccepted, now).Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	in.metrics.accepted.Add(ctx, 1)
	accepted := kafka.Message{Topic: in.env.Topic(schemas.TopicAccepted), Key: []byte(m.Id), Value: value}
	telemetry.Inject(ctx, &accepted.Headers)
	return []kafka.Message{
		accepted,
		{Topic: in.env.Topic(schemas.TopicStatus), Key: []byte(m.Id), Value: status},
	}, nil
}

// deadLetter copies the record unchanged to the DLQ with the reason and its
// origin in headers.
func (in *intake) deadLetter(rec kafka.Message, ferr *FieldError) kafka.Message {
	headers := append([]kafka.Header(nil), rec.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderErrorCode, Value: []byte(ferr.Code)},
		kafka.Header{Key: HeaderError, Value: []byte(ferr.Error())},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(rec.Partition))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	return kafka.Message{Topic: in.env.Topic(schemas.TopicRequestsDLQ), Key: rec.Key, Value: rec.Value, Headers: headers}
}
