package dlr

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// GroupMO is the consumer group of the MO stage.
const GroupMO = "sluice-dlr-mo"

// Outcomes of an MO, the label of sluice_dlr_mo.
const (
	moOwner   = "owner"   // sent to a number or short code a tenant owns
	moReply   = "reply"   // from a number a tenant messaged within the reply window
	moUnowned = "unowned" // neither: kept on sluice.mo.unowned
)

// moStage publishes each MO of sluice.mo, its parts joined, to sms.mo for
// the tenant it belongs to, or to sluice.mo.unowned. Its table holds the
// parts of concatenated MOs (changelog sluice.mo.parts); beside it, each
// partition reads sluice.conversations, co-partitioned by number, to the
// end before each batch, so a reply always finds the message it answers.
func moStage(env *service.Env, cfg config.Config, m *metrics, db *state.DB) stage {
	owners := moOwners(cfg)
	return stage{
		tag: 'm', group: GroupMO, meta: partsMeta,
		inputs:    []string{env.Topic(schemas.TopicMO)},
		changelog: env.Topic(schemas.TopicMOParts),
		newStepper: func(partition int) stepper {
			return &moRouter{
				conv:    db.Store('v', partition, env.Topic(schemas.TopicConversations), conversationMeta).BareTimers(),
				brokers: cfg.Kafka.Brokers, owners: owners, window: cfg.Router.ReplyWindow, timeout: cfg.DLR.MOPartsTimeout,
				public: env.Topic(schemas.TopicPublicMO), unowned: env.Topic(schemas.TopicMOUnowned), m: m,
			}
		},
	}
}

// moOwners maps the numbers and short codes tenants own, normalised, to
// their tenant: router.opt_out.addresses and SMPP tenants' smpp_mo_numbers.
func moOwners(cfg config.Config) map[string]string {
	owners := map[string]string{}
	for _, t := range cfg.Tenants {
		for _, n := range t.SMPPMONumbers {
			owners[message.NormalizeNumber(n)] = t.ID
		}
	}
	for _, a := range cfg.Router.OptOut.Addresses {
		owners[message.NormalizeNumber(a.Address)] = a.Tenant
	}
	return owners
}

// A conversation row has no timer and is not pending work: it is looked up,
// and its age checked against the window, when a reply comes.
func conversationMeta([]byte) (int64, bool, error) { return 0, false, nil }

func partsMeta(v []byte) (int64, bool, error) {
	var p sluicepb.MOParts
	if err := proto.Unmarshal(v, &p); err != nil {
		return 0, false, fmt.Errorf("decode mo parts: %w", err)
	}
	return p.DeadlineMs, true, nil
}

// moRouter is the MO stage's stepper for one partition.
type moRouter struct {
	conv            *state.Store // this partition of sluice.conversations
	brokers         []string
	owners          map[string]string
	window, timeout time.Duration
	public, unowned string // topics
	m               *metrics
}

// prepare reads the partition's conversations to their end: the router
// wrote each before the message it records could reach a handset.
func (r *moRouter) prepare(ctx context.Context) error {
	_, err := r.conv.Restore(ctx, r.brokers)
	return err
}

func (r *moRouter) release() { r.conv.Release() }

func (r *moRouter) step(t *state.Txn, _ string, rec kafka.Message) ([]kafka.Message, error) {
	var mo sluicepb.MO
	if err := proto.Unmarshal(rec.Value, &mo); err != nil {
		return nil, fmt.Errorf("decode mo %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	id := message.MOID(rec.Partition, rec.Offset)
	if mo.ConcatTotal < 2 {
		return r.publish(id, []*sluicepb.MO{&mo}, false)
	}
	// A part: wait in the table for the others. The key is the
	// subscriber's, carrier's and reference's; a part seen twice (the SMSC
	// resent it) counts once.
	key := fmt.Sprintf("%s|%s|%d/%d", rec.Key, mo.Carrier, mo.ConcatRef, mo.ConcatTotal)
	p := sluicepb.MOParts{MoId: id, DeadlineMs: mo.ReceivedAtMs + r.timeout.Milliseconds()}
	if v, ok, err := t.Get(key); err != nil {
		return nil, err
	} else if ok {
		if err := proto.Unmarshal(v, &p); err != nil {
			return nil, fmt.Errorf("decode mo parts %q: %w", key, err)
		}
	}
	if !slices.ContainsFunc(p.Parts, func(q *sluicepb.MO) bool { return q.ConcatSeq == mo.ConcatSeq }) {
		p.Parts = append(p.Parts, &mo)
	}
	if len(p.Parts) == int(mo.ConcatTotal) {
		// Outputs are published before the tombstone (stage.publish): a
		// crash in between publishes the message again under its id.
		if err := t.Del(key); err != nil {
			return nil, err
		}
		return r.publish(p.MoId, p.Parts, false)
	}
	v, err := proto.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("encode mo parts: %w", err)
	}
	return nil, t.Put(key, v, p.DeadlineMs, true)
}

// fire publishes the parts of an MO that did not all come in time.
func (r *moRouter) fire(t *state.Txn, key string, v []byte) ([]kafka.Message, error) {
	var p sluicepb.MOParts
	if err := proto.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode mo parts %q: %w", key, err)
	}
	if err := t.Del(key); err != nil {
		return nil, err
	}
	return r.publish(p.MoId, p.Parts, true)
}

// publish joins parts (in order) into one sms.mo record for its tenant, or
// one sluice.mo.unowned record.
func (r *moRouter) publish(id string, parts []*sluicepb.MO, incomplete bool) ([]kafka.Message, error) {
	slices.SortFunc(parts, func(a, b *sluicepb.MO) int { return int(a.ConcatSeq) - int(b.ConcatSeq) })
	var text strings.Builder
	last := parts[0]
	for _, p := range parts {
		text.WriteString(p.Text)
		if p.ReceivedAtMs > last.ReceivedAtMs {
			last = p
		}
	}
	first := parts[0]
	from := message.NormalizeNumber(first.SourceAddr)
	out := message.MO{
		MOID: id, From: from, To: first.DestAddr, Text: text.String(), Encoding: first.Encoding,
		Carrier: first.Carrier, ReceivedAt: time.UnixMilli(last.ReceivedAtMs).UTC(), Parts: len(parts), Incomplete: incomplete,
	}
	if out.Encoding == "" {
		out.Encoding = "gsm7" // a sender from before the field
	}
	outcome, err := r.owner(&out, last.ReceivedAtMs)
	if err != nil {
		return nil, err
	}
	r.m.mo.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	value, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode sms.mo: %w", err)
	}
	topic := r.public
	if outcome == moUnowned {
		topic = r.unowned
	}
	return []kafka.Message{{Topic: topic, Key: []byte(from), Value: value}}, nil
}

// owner sets the MO's tenant and in_reply_to. The owner of the number it
// was sent to comes first; in_reply_to is then the owner's last message to
// the sender, if it was the last tenant to write there. Else the last
// tenant that messaged the sender within the window is the tenant.
func (r *moRouter) owner(mo *message.MO, atMs int64) (string, error) {
	conv, err := r.conversation(mo.From, atMs)
	if err != nil {
		return "", err
	}
	if tenant, ok := r.owners[message.NormalizeNumber(mo.To)]; ok {
		mo.Tenant = tenant
		if conv != nil && conv.Tenant == tenant {
			mo.InReplyTo = conv.MessageId
		}
		return moOwner, nil
	}
	if conv == nil {
		return moUnowned, nil
	}
	mo.Tenant, mo.InReplyTo = conv.Tenant, conv.MessageId
	return moReply, nil
}

// conversation is the last message sent to number within the reply window
// before atMs, if any.
func (r *moRouter) conversation(number string, atMs int64) (*sluicepb.Conversation, error) {
	if r.window <= 0 {
		return nil, nil
	}
	v, ok, err := r.conv.Get(number)
	if err != nil || !ok {
		return nil, err
	}
	var c sluicepb.Conversation
	if err := proto.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("decode conversation %q: %w", number, err)
	}
	if atMs-c.SentAtMs > r.window.Milliseconds() {
		return nil, nil
	}
	return &c, nil
}
