// Package sender submits routed messages to carriers over SMPP. Each
// carrier's outbound lanes have exactly `binds` partitions and partition i is
// bind slot i: the replica that holds partition i holds bind i and paces it at
// tps/binds, so the carrier never sees more binds or more parts per second
// than its account allows, whatever the number of replicas.
package sender

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/schemas"
)

// GroupPrefix starts the consumer group of each carrier's slots.
const GroupPrefix = "sluice-sender-"

type metrics struct {
	submits   metric.Int64Counter
	throttles metric.Int64Counter
	retries   metric.Int64Counter
	copies    metric.Int64Counter
	dlrs      metric.Int64Counter
	binds     metric.Int64UpDownCounter
	window    metric.Int64UpDownCounter
	latency   metric.Float64Histogram
	idSplits  metric.Int64Counter
	// deliver_sm handling: refusals by reason, the time to store one, and the
	// pauses of a bind's reading while its receipt handlers are all busy.
	refused      metric.Int64Counter
	deliverStore metric.Float64Histogram
	readPauses   metric.Float64Histogram
}

func newMetrics(m metric.Meter) (*metrics, error) {
	var out metrics
	var errs [12]error
	out.submits, errs[0] = m.Int64Counter("sluice_sender_submits_total", metric.WithDescription("submit_sm outcomes, by carrier, lane and result (ok, rejected, retry_later, outcome_unknown)"))
	out.throttles, errs[1] = m.Int64Counter("sluice_sender_throttled_total", metric.WithDescription("ESME_RTHROTTLED / ESME_RMSGQFUL answers, each resubmitted after slowing the bind down"))
	out.retries, errs[2] = m.Int64Counter("sluice_sender_retries_total", metric.WithDescription("Messages put on the retry lane after a retry-later status"))
	out.dlrs, errs[3] = m.Int64Counter("sluice_sender_deliver_sm_total", metric.WithDescription("deliver_sm received, by kind (receipt, mo)"))
	out.binds, errs[4] = m.Int64UpDownCounter("sluice_sender_binds_open", metric.WithDescription("Open SMPP binds"))
	out.window, errs[5] = m.Int64UpDownCounter("sluice_sender_window_inflight", metric.WithDescription("submit_sm written and not answered yet (window occupancy), all binds of the carrier"))
	out.latency, errs[6] = m.Float64Histogram("sluice_sender_submit_seconds", metric.WithDescription("submit_sm to submit_sm_resp"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	out.copies, errs[7] = m.Int64Counter("sluice_sender_copies_skipped_total", metric.WithDescription("Copies of a message the slot had already taken on (written twice upstream), not submitted again"))
	out.idSplits, errs[8] = m.Int64Counter("sluice_sender_receipt_id_disagreements_total", metric.WithDescription("Receipts whose receipted_message_id TLV and text id: differ once brought to one form; the dlr correlates on the one that matches a submit"))
	out.refused, errs[9] = m.Int64Counter("sluice_sender_deliver_sm_refused_total", metric.WithDescription("deliver_sm/data_sm not acknowledged (the SMSC redelivers them), by carrier and reason (publish_failed, session_ended, no_handler)"))
	out.deliverStore, errs[10] = m.Float64Histogram("sluice_sender_deliver_sm_store_seconds", metric.WithDescription("deliver_sm read to stored in Kafka; with the deliver_sm rate, what receipt_handlers must cover"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	out.readPauses, errs[11] = m.Float64Histogram("sluice_sender_deliver_sm_read_pause_seconds", metric.WithDescription("Pauses of a bind's reading while all its receipt_handlers were busy (TCP flow control then slows the SMSC)"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return &out, nil
}

// Run serves every configured carrier (or those in sender.carriers) until
// ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	env, err := service.Start(ctx, "sender", cfg.Sender.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()
	m, err := newMetrics(env.Tel.Meter())
	if err != nil {
		return err
	}
	ce := &carrierEnv{prefix: cfg.Kafka.TopicPrefix, producer: env.Producer, tracer: env.Tel.Tracer(), m: m, now: time.Now}

	// A carrier that fails does not stop the others: each has its own binds.
	var g errgroup.Group
	for _, c := range servedCarriers(cfg) {
		g.Go(func() error {
			if err := runCarrier(ctx, cfg, c, ce, env.Log.With("carrier", c.ID)); err != nil {
				return fmt.Errorf("carrier %s: %w", c.ID, err)
			}
			return nil
		})
	}
	env.Tel.SetReady(true)
	return g.Wait() // nil when every carrier stopped cleanly
}

func servedCarriers(cfg config.Config) []config.Carrier {
	if len(cfg.Sender.Carriers) == 0 {
		return cfg.Carriers
	}
	var out []config.Carrier
	for _, id := range cfg.Sender.Carriers {
		if c, ok := cfg.Carrier(id); ok {
			out = append(out, c)
		}
	}
	return out
}

// runCarrier holds this replica's share of the carrier's bind slots.
func runCarrier(ctx context.Context, cfg config.Config, c config.Carrier, ce *carrierEnv, log *slog.Logger) error {
	c = c.WithDefaults()
	prefix := cfg.Kafka.TopicPrefix
	var lanes [laneCount]string
	lanes[laneOTP] = schemas.OutboundTopic(prefix, c.ID, schemas.LaneOTP)
	lanes[laneRetry] = schemas.OutboundTopic(prefix, c.ID, schemas.LaneRetry)
	lanes[laneBulk] = schemas.OutboundTopic(prefix, c.ID, schemas.LaneBulk)
	group := kafka.GroupConfig{
		Brokers: cfg.Kafka.Brokers,
		Group:   prefix + GroupPrefix + c.ID,
		Topics:  lanes[:],
		Logger:  log,
	}
	obs := newDeliverObserver(c.ID, ce.m, log, ce.now)
	// A sender must outlive its group's troubles (a coordinator moving, a
	// join refused during a rebalance): its slots simply wait, their backlog
	// in Kafka, until it is back in the group.
	for {
		err := kafka.RunGroup(ctx, group, func(ctx context.Context, claim *kafka.Claim) error {
			return serveSlot(ctx, c, lanes, claim, ce, obs, log)
		})
		if ctx.Err() != nil {
			return nil
		}
		log.Error("consumer group failed; rejoining", "group", group.Group, "retry_in", groupRetry.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(groupRetry):
		}
	}
}

// groupRetry is the wait before rejoining a carrier's group after it failed.
const groupRetry = time.Second

// serveSlot runs one bind slot for as long as this replica holds it.
func serveSlot(ctx context.Context, c config.Carrier, lanes [laneCount]string, claim *kafka.Claim, ce *carrierEnv, obs *deliverObserver, log *slog.Logger) error {
	slog := log.With("slot", claim.Partition)
	s := &slot{
		carrier: c,
		claim:   claim,
		lanes:   lanes,
		env:     ce,
		pace:    newPacer(float64(c.TPS)/float64(c.Binds), ce.now),
		attrs:   newSlotAttrs(c.ID),
		recent:  newRecentIDs(recentCapacity),
		pub:     newPublisher(ce.producer, publishLinger, publishMaxRecords),
		log:     slog,
	}
	attrs := metric.WithAttributes(attribute.String("carrier", c.ID))
	onBind := func(up bool) {
		if up {
			ce.m.binds.Add(context.Background(), 1, attrs)
		} else {
			ce.m.binds.Add(context.Background(), -1, attrs)
		}
	}
	if c.BindMode == config.BindTransmitterReceiver {
		s.binder = newBinder(clientConfig(c, ce, s.pub, obs, slog.With("bind", "transmitter"), smpp.BindTransmitter), slog, ce.now, onBind)
		s.rx = newBinder(clientConfig(c, ce, s.pub, obs, slog.With("bind", "receiver"), smpp.BindReceiver), slog, ce.now, onBind)
	} else {
		s.binder = newBinder(clientConfig(c, ce, s.pub, obs, slog, smpp.BindTransceiver), slog, ce.now, onBind)
	}
	return s.run(ctx)
}

func clientConfig(c config.Carrier, ce *carrierEnv, pub *publisher, obs *deliverObserver, log *slog.Logger, mode smpp.BindMode) smpp.ClientConfig {
	cc := smpp.ClientConfig{
		Addr:        c.Addr(),
		SystemID:    c.SystemID,
		Password:    c.Password,
		SystemType:  c.SystemType,
		Mode:        mode,
		Window:      c.Window,
		BindTimeout: 10 * time.Second,
		RespTimeout: c.RespTimeout,
		EnquireLink: 30 * time.Second,
		Logger:      log,
		// With every handler busy the bind stops reading rather than refuse a
		// receipt; receipt_handlers is sized so that only a slow Kafka does that.
		DeliverConcurrency: c.ReceiptHandlers,
		OnRefused:          obs.refused,
		OnReadPause:        obs.paused,
	}
	if mode != smpp.BindTransmitter {
		cc.OnDeliver = obs.timed(deliverHandler(c.ID, c.ReceiptIDs, ce, pub, obs, log))
	}
	if c.TLS {
		cc.TLS = &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	}
	return cc
}
