// Package ingest is sluice's front door. It takes messages from the
// sms.requests topic and from its HTTP API, validates them with one shared
// function (Accept), gives each an id, decides its encoding and segments,
// suppresses copies of a (tenant, client_ref) it already accepted, and
// publishes accepted messages with an "accepted" status event. A record of
// the topic it cannot accept goes to sms.requests.dlq unchanged, with the
// reason in its headers, and a "rejected" status event; an HTTP request it
// cannot accept gets the reasons in the answer.
package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Group is the consumer group of the sms.requests reader.
const Group = "sluice-ingest"

// IndexGroup is the consumer group of a status index divided between
// replicas: it assigns sms.status's partitions to them.
const IndexGroup = "sluice-ingest-index"

// IdempotencyWindow is how long a (tenant, client_ref) is remembered: the
// retention of sms.status, from which the record is rebuilt at start.
const IdempotencyWindow = 168 * time.Hour

// Bounds of what a request may ask for beyond the configured segments.
const (
	maxValidity = 7 * 24 * time.Hour
	maxSchedule = 7 * 24 * time.Hour
)

// Front doors, as metric attributes.
const (
	frontKafka  = "kafka"
	frontHTTP   = "http"
	frontKannel = "kannel"
)

// Run serves until ctx ends, then drains and commits what it finished.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	return run(ctx, cfg, log, hooks{})
}

// hooks let tests see the addresses (they listen on port 0) and set the
// clock.
type hooks struct {
	httpReady  func(addr string)
	adminReady func(addr string)
	smppReady  func(addr string)
	now        func() time.Time
}

func run(ctx context.Context, cfg config.Config, log *slog.Logger, h hooks) error {
	env, err := service.Start(ctx, "ingest", cfg.Ingest.AdminAddr, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()

	db, err := state.Open(cfg.Ingest.StateDir)
	if err != nil {
		return err
	}
	defer db.Close()
	in, err := newIntake(env, cfg, db)
	if err != nil {
		return err
	}
	if h.now != nil {
		in.now = h.now
	}
	if h.adminReady != nil {
		h.adminReady(env.Tel.Addr())
	}
	a, err := newAPI(in, cfg.Tenants, env.Tel.Meter())
	if err != nil {
		return err
	}

	// Deferred in this order so that the store and the HTTP API are told to
	// stop before they are waited for, however Run returns.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			cancel(err)
		}
	}

	// The status store comes first: it is the idempotency record, so neither
	// front door may accept anything before it has caught up.
	ready := make(chan struct{})
	follow, err := in.indexFollower(ctx, &wg, fail, ready)
	if err != nil {
		return err
	}
	wg.Go(func() { fail(follow(ctx)) })
	select {
	case <-ready:
		log.Info("status store restored", "messages", in.store.size())
	case <-ctx.Done():
		if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
			return cause
		}
		return nil
	}

	if len(a.keys) > 0 || len(a.kannel) > 0 {
		wg.Go(func() { fail(serveHTTP(ctx, cfg.Ingest.HTTPAddr, a.Handler(), h.httpReady)) })
	} else {
		// Nothing could authenticate: don't hold a port (the embedded
		// devstack runs without keys).
		log.Info("HTTP API not started: no tenant has an API key or Kannel credentials")
	}
	if cfg.Ingest.SMPPAddr != "" {
		wg.Go(func() { fail(serveSMPP(ctx, in, cfg, h.smppReady)) })
	}
	env.Tel.SetReady(true)
	err = kafka.ConsumeBatches(ctx, env.Group(Group, schemas.TopicRequests),
		kafka.BatchOptions{Max: 1000, Linger: 2 * time.Millisecond}, in.handle)
	if cause := context.Cause(ctx); err == nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return err
}

// indexFollower returns what keeps the status index current: a follower of
// every partition, or, with a peer address, this replica's share of an
// index divided between the replicas, whose peer API it starts serving.
func (in *intake) indexFollower(ctx context.Context, wg *sync.WaitGroup, fail func(error), ready chan<- struct{}) (func(context.Context) error, error) {
	cfg, log := in.env.Cfg, in.env.Log
	topic := in.env.Topic(schemas.TopicStatus)
	if cfg.Ingest.PeerAddr == "" {
		return func(ctx context.Context) error { return in.store.follow(ctx, cfg.Kafka.Brokers, topic, ready, log) }, nil
	}
	ln, err := listen(ctx, cfg.Ingest.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("peer api: %w", err)
	}
	self, err := peerURL(cfg.Ingest.PeerURL, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	group := in.env.Group(IndexGroup, schemas.TopicStatus)
	group.Meta = []byte(self)
	in.store.peers = newPeerDirectory(cfg.Kafka.Brokers, group.Group, topic, self, cfg.Ingest.PeerSecret)
	in.store.withChangelog(in.env.Topic(schemas.TopicIngestIndex), in.env.Producer.Produce)
	wg.Go(func() { fail(serveOn(ctx, ln, in.store.peerHandler(cfg.Ingest.PeerSecret))) })
	log.Info("status index divided between replicas", "group", group.Group, "peer_url", self)
	return func(ctx context.Context) error { return in.store.followDivided(ctx, group, ready, log) }, nil
}

// peerURL is where peers reach this replica's peer API: configured, else
// its listener's address, with the host name when it listens on every
// interface.
func peerURL(configured string, addr net.Addr) (string, error) {
	if configured != "" {
		return configured, nil
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("peer url: %w", err)
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

type intake struct {
	env     *service.Env
	limits  Limits
	tenants map[string]bool
	store   *statusStore
	tracer  trace.Tracer
	metrics metrics
	now     func() time.Time
}

func newIntake(env *service.Env, cfg config.Config, db *state.DB) (*intake, error) {
	in := &intake{
		env:     env,
		limits:  Limits{MaxSegments: cfg.Ingest.MaxSegments, MaxValidity: maxValidity, MaxSchedule: maxSchedule},
		tenants: map[string]bool{},
		store:   newStatusStore(IdempotencyWindow, db),
		tracer:  env.Tel.Tracer(),
		now:     time.Now,
	}
	for _, t := range cfg.Tenants {
		in.tenants[t.ID] = true
	}
	var err error
	in.metrics, err = newMetrics(env.Tel.Meter(), in.store)
	return in, err
}

type metrics struct {
	accepted, rejected, duplicates metric.Int64Counter
}

func newMetrics(m metric.Meter, store *statusStore) (metrics, error) {
	var out metrics
	var errs [5]error
	out.accepted, errs[0] = m.Int64Counter("sluice_ingest_accepted_total", metric.WithDescription("Messages accepted, by front door"))
	out.rejected, errs[1] = m.Int64Counter("sluice_ingest_rejected_total", metric.WithDescription("Messages refused, by front door and error code"))
	out.duplicates, errs[2] = m.Int64Counter("sluice_ingest_duplicates_total", metric.WithDescription("Copies of an accepted (tenant, client_ref) suppressed, by front door"))
	_, errs[3] = m.Int64ObservableGauge("sluice_ingest_index_messages",
		metric.WithDescription("Messages the status index holds on this replica (its partitions' share when divided)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(store.size()); return nil }))
	_, errs[4] = m.Int64ObservableCounter("sluice_ingest_index_read_total",
		metric.WithDescription("Records the status index has read, by source: sms.status, or its changelog on a start with an empty disk"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(store.readStatus.Load(), metric.WithAttributes(attribute.String("source", "status")))
			o.Observe(store.readChangelog.Load(), metric.WithAttributes(attribute.String("source", "changelog")))
			return nil
		}))
	if err := errors.Join(errs[:]...); err != nil {
		return metrics{}, fmt.Errorf("metric: %w", err)
	}
	return out, nil
}

func (in *intake) rejected(ctx context.Context, front string, errs []APIError) {
	for _, e := range errs {
		in.metrics.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("front_door", front), attribute.String("code", e.Code)))
	}
}

// accepted is a message ready to publish: its records and the status event
// the store keeps once they are written.
type accepted struct {
	msg     *sluicepb.Message
	records []kafka.Message
	status  published
}

// publish encodes m as its router intake record and accepted status event,
// with the trace context of ctx.
func (in *intake) publish(ctx context.Context, m *sluicepb.Message, now time.Time) (accepted, error) {
	value, err := proto.Marshal(m)
	if err != nil {
		return accepted{}, fmt.Errorf("encode message: %w", err)
	}
	status, err := message.StatusOf(m, message.StatusAccepted, now).Marshal()
	if err != nil {
		return accepted{}, fmt.Errorf("encode status: %w", err)
	}
	// Straight to the router's tenant-keyed intake, otp on a lane of its own.
	acc := kafka.Message{Topic: schemas.IntakeTopic(in.env.Cfg.Kafka.TopicPrefix, m.Priority == sluicepb.Priority_PRIORITY_OTP), Key: []byte(m.Tenant), Value: value}
	telemetry.Inject(ctx, &acc.Headers)
	st := kafka.Message{Topic: in.env.Topic(schemas.TopicStatus), Key: []byte(m.Id), Value: status}
	return accepted{msg: m, records: []kafka.Message{acc, st}, status: published{id: m.Id, tenant: m.Tenant, at: now, value: status}}, nil
}

// produce writes the records of accepted messages before anything else:
// were the accepted status durable without the message, a replay of the
// request would take it for a copy and the message would never be sent.
func (in *intake) produce(ctx context.Context, records []kafka.Message) error {
	otp, bulk := in.env.Topic(schemas.TopicRouterOTP), in.env.Topic(schemas.TopicRouterBulk)
	first, then := make([]kafka.Message, 0, len(records)), make([]kafka.Message, 0, len(records))
	for _, r := range records {
		if r.Topic == otp || r.Topic == bulk {
			first = append(first, r)
		} else {
			then = append(then, r)
		}
	}
	if err := in.env.Producer.Produce(ctx, first...); err != nil {
		return err
	}
	return in.env.Producer.Produce(ctx, then...)
}

// acceptHTTP validates the messages of one POST, all or nothing, and
// publishes those that are not copies of earlier ones. reqs are the decoded
// messages (nil where decodeErrs says why not).
func (in *intake) acceptHTTP(ctx context.Context, tenant string, reqs []*message.Request, batch bool, decodeErrs []APIError) ([]Result, []APIError, error) {
	return in.acceptMany(ctx, httpDoor{front: frontHTTP}, tenant, reqs, batch, decodeErrs)
}

// httpDoor says which HTTP front door a request came through, and what it
// adds to each validated message beyond a request's fields.
type httpDoor struct {
	front string
	add   func(m *sluicepb.Message) // nil: nothing
}

// acceptMany is acceptHTTP for any HTTP front door.
func (in *intake) acceptMany(ctx context.Context, door httpDoor, tenant string, reqs []*message.Request, batch bool, decodeErrs []APIError) ([]Result, []APIError, error) {
	now := in.now()
	msgs := make([]*sluicepb.Message, len(reqs))
	errs := decodeErrs
	firstRef := map[string]int{}
	for i, req := range reqs {
		if req == nil {
			continue
		}
		m, ferr := Accept(tenant, *req, now, in.limits)
		if ferr != nil {
			errs = append(errs, indexed(batch, i, *ferr))
			continue
		}
		if req.ClientRef != "" {
			if j, seen := firstRef[req.ClientRef]; seen {
				errs = append(errs, indexed(batch, i, *fieldErr(CodeDuplicateClientRef, "client_ref", "repeats the client_ref of message %d", j)))
				continue
			}
			firstRef[req.ClientRef] = i
		}
		if door.add != nil {
			door.add(m)
		}
		msgs[i] = m
	}
	if errs != nil && batch {
		slices.SortStableFunc(errs, func(a, b APIError) int { return cmp.Compare(*a.Index, *b.Index) })
	}
	if errs != nil {
		return nil, errs, nil
	}

	c, err := in.store.claim(ctx, idsWithRef(msgs))
	if err != nil {
		return nil, nil, err
	}
	out := make([]kafka.Message, 0, 2*len(msgs))
	statuses := make([]published, 0, len(msgs))
	results := make([]Result, len(msgs))
	for i, m := range msgs {
		results[i] = Result{MessageID: m.Id, ClientRef: m.ClientRef, Segments: int(m.Segments), Encoding: message.EncodingName(m.Encoding)}
		if m.ClientRef != "" && c.dup(m.Id) {
			results[i] = in.original(ctx, tenant, results[i])
			continue
		}
		acc, err := in.publish(ctx, m, now)
		if err != nil {
			c.done(nil)
			return nil, nil, err
		}
		out = append(out, acc.records...)
		statuses = append(statuses, acc.status)
	}
	c.write(statuses)
	if err := in.produce(ctx, out); err != nil {
		c.done(nil)
		return nil, nil, err
	}
	c.done(statuses)
	in.metrics.accepted.Add(ctx, int64(len(statuses)), metric.WithAttributes(attribute.String("front_door", door.front)))
	if d := len(msgs) - len(statuses); d > 0 {
		in.metrics.duplicates.Add(ctx, int64(d), metric.WithAttributes(attribute.String("front_door", door.front)))
	}
	return results, nil, nil
}

// original describes the message a duplicate is a copy of, as it was
// accepted (a retry may differ, e.g. in its text).
func (in *intake) original(ctx context.Context, tenant string, r Result) Result {
	r.Duplicate = true
	value, ok, err := in.store.get(ctx, tenant, r.MessageID)
	if err != nil || !ok {
		return r // the duplicate's answer, without the original's details
	}
	var st message.Status
	if json.Unmarshal(value, &st) == nil && st.Segments > 0 {
		r.Segments, r.Encoding = st.Segments, st.Encoding
	}
	return r
}

func idsWithRef(msgs []*sluicepb.Message) []string {
	var ids []string
	for _, m := range msgs {
		if m.ClientRef != "" {
			ids = append(ids, m.Id)
		}
	}
	return ids
}

// handle turns one batch of sms.requests records into accepted messages,
// status events and dead letters, written together before the batch is
// committed. A record whose (tenant, client_ref) was accepted before (in
// this batch, earlier, or over HTTP) is skipped.
func (in *intake) handle(ctx context.Context, topic string, batch []kafka.Message) error {
	now := in.now()
	type item struct {
		ctx  context.Context
		span trace.Span
		msg  *sluicepb.Message
		out  []kafka.Message // dead letter and rejected status
	}
	items := make([]item, len(batch))
	defer func() {
		for _, it := range items {
			it.span.End()
		}
	}()
	ids := map[string]bool{}
	var claimIDs []string
	for i, rec := range batch {
		rctx := telemetry.Extract(ctx, rec.Headers)
		rctx, span := in.tracer.Start(rctx, "ingest.accept", trace.WithSpanKind(trace.SpanKindConsumer))
		items[i] = item{ctx: rctx, span: span}
		m, ferr := in.validateRecord(rec.Value, now)
		if ferr != nil {
			span.SetStatus(codes.Error, ferr.Code)
			in.rejected(rctx, frontKafka, []APIError{{FieldError: *ferr}})
			in.env.Log.InfoContext(rctx, "request rejected", "code", ferr.Code, "field", ferr.Field, "partition", rec.Partition, "offset", rec.Offset)
			out, err := in.reject(rec, ferr, now)
			if err != nil {
				return err
			}
			items[i].out = out
			continue
		}
		span.SetAttributes(attribute.String("sluice.message_id", m.Id), attribute.String("sluice.tenant", m.Tenant))
		if m.ClientRef != "" {
			if ids[m.Id] {
				in.metrics.duplicates.Add(rctx, 1, metric.WithAttributes(attribute.String("front_door", frontKafka)))
				continue // a copy within this batch
			}
			ids[m.Id] = true
			claimIDs = append(claimIDs, m.Id)
		}
		items[i].msg = m
	}

	c, err := in.store.claim(ctx, claimIDs)
	if err != nil {
		return err
	}
	out := make([]kafka.Message, 0, 2*len(batch))
	statuses := make([]published, 0, len(batch))
	for _, it := range items {
		out = append(out, it.out...)
		if it.msg == nil {
			continue
		}
		if it.msg.ClientRef != "" && c.dup(it.msg.Id) {
			in.metrics.duplicates.Add(it.ctx, 1, metric.WithAttributes(attribute.String("front_door", frontKafka)))
			continue
		}
		acc, err := in.publish(it.ctx, it.msg, now)
		if err != nil {
			c.done(nil)
			return err
		}
		out = append(out, acc.records...)
		statuses = append(statuses, acc.status)
	}
	c.write(statuses)
	if err := in.produce(ctx, out); err != nil {
		c.done(nil)
		return err
	}
	c.done(statuses)
	in.metrics.accepted.Add(ctx, int64(len(statuses)), metric.WithAttributes(attribute.String("front_door", frontKafka)))
	return nil
}

// validateRecord decodes and validates one sms.requests value: the tenant
// named in the record must be one of the configuration's, when it declares
// any (the embedded dev default declares none).
func (in *intake) validateRecord(value []byte, now time.Time) (*sluicepb.Message, *FieldError) {
	req, ferr := DecodeRequest(value)
	if ferr != nil {
		return nil, ferr
	}
	switch {
	case req.Tenant == "":
		return nil, fieldErr(CodeRequired, "tenant", "is required")
	case len(in.tenants) > 0 && !in.tenants[req.Tenant]:
		return nil, fieldErr(CodeUnknownTenant, "tenant", "is not a tenant of this gateway")
	}
	return Accept(req.Tenant, req, now, in.limits)
}

// reject returns the dead letter of rec and, when the record names one of
// the gateway's tenants, the rejected status event that tells the tenant.
func (in *intake) reject(rec kafka.Message, ferr *FieldError, now time.Time) ([]kafka.Message, error) {
	out := []kafka.Message{in.deadLetter(rec, ferr)}
	st, ok := rejectedStatus(rec.Value, ferr, now)
	if !ok || ferr.Code == CodeUnknownTenant || ambiguous(ferr) {
		return out, nil // nobody to tell (and no status under a made-up tenant)
	}
	value, err := st.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return append(out, kafka.Message{Topic: in.env.Topic(schemas.TopicStatus), Key: []byte(st.MessageID), Value: value}), nil
}

// deadLetter copies the record unchanged to the DLQ with the reason and its
// origin in headers.
func (in *intake) deadLetter(rec kafka.Message, ferr *FieldError) kafka.Message {
	headers := append([]kafka.Header(nil), rec.Headers...)
	headers = append(headers,
		kafka.Header{Key: schemas.HeaderErrorCode, Value: []byte(ferr.Code)},
		kafka.Header{Key: schemas.HeaderError, Value: []byte(ferr.Error())},
		kafka.Header{Key: schemas.HeaderSourceTopic, Value: []byte(rec.Topic)},
		kafka.Header{Key: schemas.HeaderSourcePartition, Value: []byte(strconv.Itoa(rec.Partition))},
		kafka.Header{Key: schemas.HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	return kafka.Message{Topic: in.env.Topic(schemas.TopicRequestsDLQ), Key: rec.Key, Value: rec.Value, Headers: headers}
}

// ambiguous says whether a refusal leaves the record's tenant or
// client_ref in doubt: a top-level field given twice may be either of them,
// and a tenant that is not valid text names nobody. Such a record is only
// dead-lettered.
func ambiguous(ferr *FieldError) bool {
	return ferr.Code == CodeDuplicateField && !strings.Contains(ferr.Field, ".") ||
		ferr.Code == CodeInvalidText && ferr.Field == "tenant"
}

// rejectedStatus is the rejected status event of a record that names a
// tenant, so that its producer hears of it on sms.status (matched by
// client_ref). Its message id is a fresh one, not the one derived from the
// client_ref: a corrected request with the same client_ref must not look
// like a copy of an accepted message.
func rejectedStatus(value []byte, ferr *FieldError, now time.Time) (message.Status, bool) {
	// Field by field: a field of the wrong type must not hide the others.
	var fields map[string]json.RawMessage
	if json.Unmarshal(value, &fields) != nil {
		return message.Status{}, false
	}
	str := func(name string) string {
		var s string
		_ = json.Unmarshal(fields[name], &s) // absent or not a string: ""
		return s
	}
	tenant := str("tenant")
	if tenant == "" {
		return message.Status{}, false
	}
	m := &sluicepb.Message{Id: message.NewID(), Tenant: tenant, ClientRef: str("client_ref"), CampaignId: str("campaign_id"), To: str("to")}
	st := message.StatusOf(m, message.StatusRejected, now)
	st.ErrorCode = ferr.Code
	st.Reason = ferr.Error()
	return st, true
}
