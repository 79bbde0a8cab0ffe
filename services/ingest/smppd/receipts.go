package smppd

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// ReceiptGroupPrefix and MOGroupPrefix start the consumer groups, one per
// tenant, that deliver a tenant's receipts and MO messages; the tenant id
// follows.
const (
	ReceiptGroupPrefix = "sluice-smppd-receipts."
	MOGroupPrefix      = "sluice-smppd-mo."
)

// receipts delivers tenants' receipts (and, the same way, MO messages to their
// numbers from sluice.mo). While a replica holds at least one
// receiver or transceiver bind of a tenant, it is a member of that tenant's
// consumer group over sms.status, and delivers the tenant's final statuses
// from the partitions it is assigned to its own binds of the tenant. Offsets
// are committed only after deliver_sm_resp. With no bind of the tenant
// anywhere the group has no member and the receipts wait in Kafka; when the
// binds move between replicas, so do the group's partitions.
type receipts struct {
	s  *Server
	mu sync.Mutex
	by map[string]*tenantReceipts // by tenant id
	wg sync.WaitGroup
}

type tenantReceipts struct {
	binds  int
	cancel context.CancelFunc
	done   chan struct{}
	next   atomic.Uint64 // round robin over the tenant's binds
}

func newReceipts(s *Server) *receipts { return &receipts{s: s, by: map[string]*tenantReceipts{}} }

// bound joins the tenant's group at its first receiving bind on this replica.
func (r *receipts) bound(t *tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := r.by[t.id]
	if tr == nil {
		tr = &tenantReceipts{}
		r.by[t.id] = tr
	}
	tr.binds++
	if tr.binds > 1 {
		return
	}
	if tr.done != nil { // still leaving the group after the last unbind
		<-tr.done
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel, tr.done = cancel, make(chan struct{})
	done := tr.done
	r.wg.Go(func() {
		defer close(done)
		r.run(ctx, t, tr)
	})
}

// unbound leaves the tenant's group at its last receiving bind's end: the
// receipts not yet acknowledged go to another replica's bind, or wait.
func (r *receipts) unbound(t *tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := r.by[t.id]
	if tr == nil {
		return
	}
	tr.binds--
	if tr.binds == 0 {
		tr.cancel()
	}
}

func (r *receipts) wait() {
	r.mu.Lock()
	for _, tr := range r.by {
		if tr.cancel != nil {
			tr.cancel()
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// run keeps this replica in the tenant's receipt group and, when the tenant
// has numbers, its MO group, until ctx ends.
func (r *receipts) run(ctx context.Context, t *tenant, tr *tenantReceipts) {
	var wg sync.WaitGroup
	wg.Go(func() {
		r.runGroup(ctx, t, tr, ReceiptGroupPrefix, schemas.SMPPReceiptsTopic(r.s.cfg.TopicPrefix, t.id), func(v []byte) (*smpp.Deliver, bool) { return receiptOf(t.id, v) })
	})
	if len(t.moNumbers) > 0 {
		wg.Go(func() { r.runGroup(ctx, t, tr, MOGroupPrefix, schemas.SMPPMOTopic(r.s.cfg.TopicPrefix, t.id), t.moOf) })
	}
	wg.Wait()
}

// runGroup delivers what deliverable finds in topic (the tenant's own, see
// fanOut) to the tenant's binds, as a member of the tenant's group on it.
func (r *receipts) runGroup(ctx context.Context, t *tenant, tr *tenantReceipts, groupPrefix, topic string, deliverable func([]byte) (*smpp.Deliver, bool)) {
	s := r.s
	log := s.log.With("tenant", t.id, "topic", topic)
	err := kafka.RunGroup(ctx, kafka.GroupConfig{
		Brokers: s.cfg.Brokers,
		Group:   s.cfg.TopicPrefix + groupPrefix + t.id,
		Topics:  []string{topic},
		Logger:  log,
	}, func(ctx context.Context, c *kafka.Claim) error {
		for ctx.Err() == nil {
			batch, err := c.FetchBatch(ctx, topic, time.Second, kafka.BatchOptions{Max: 100, Linger: 5 * time.Millisecond})
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				continue // nothing yet
			}
			if err := r.deliverBatch(ctx, t, tr, batch, deliverable); err != nil {
				return err // the group restarts the claim from the last commit
			}
			if err := c.Commit(topic, batch[len(batch)-1].Offset+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		log.Error("smpp deliveries stopped", "err", err)
	}
}

// deliverBatch delivers the receipts among batch, several at once, and
// returns when every one was acknowledged (or ctx ended: then an error, and
// the batch is not committed).
func (r *receipts) deliverBatch(ctx context.Context, t *tenant, tr *tenantReceipts, batch []kafka.Message, deliverable func([]byte) (*smpp.Deliver, bool)) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for _, rec := range batch {
		d, ok := deliverable(rec.Value)
		if !ok {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.deliver(ctx, t, tr, d)
		})
	}
	wg.Wait()
	return ctx.Err()
}

// deliver retries d on the tenant's binds until one acknowledges it or ctx
// ends (the last bind went away: another replica or a later bind takes over).
func (r *receipts) deliver(ctx context.Context, t *tenant, tr *tenantReceipts, d *smpp.Deliver) {
	wait := backoff.New(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		sessions := r.s.srv.Receivers(t.systemID)
		if len(sessions) > 0 {
			ss := sessions[tr.next.Add(1)%uint64(len(sessions))]
			err := ss.Deliver(ctx, d)
			if err == nil {
				return
			}
			var se *smpp.StatusError
			if errors.As(err, &se) && !smpp.Temporary(se.Status) {
				// The ESME says it will never take this one (e.g. ESME_RX_P_APPN):
				// resending would hold up every receipt behind it.
				r.s.log.Warn("smpp receipt refused for good; dropped", "tenant", t.id, "message_id", strings.TrimSuffix(string(d.TLVs[smpp.TagReceiptedMessageID]), "\x00"), "err", err)
				return
			}
			if !errors.Is(err, smpp.ErrClosed) {
				r.s.log.Info("smpp receipt not acknowledged; retrying", "tenant", t.id, "err", err)
			}
		}
		_ = wait.Wait(ctx) // ctx's end ends the loop
	}
}

// stats maps sluice's final statuses to receipt stat values.
var stats = map[string]struct {
	stat  string
	state uint8
}{
	message.StatusDelivered:   {smpp.StatDelivered, smpp.MessageStateDelivered},
	message.StatusUndelivered: {smpp.StatUndeliverable, smpp.MessageStateUndeliverable},
	message.StatusExpired:     {smpp.StatExpired, smpp.MessageStateExpired},
	message.StatusFailed:      {smpp.StatUndeliverable, smpp.MessageStateUndeliverable},
	message.StatusRejected:    {smpp.StatRejected, smpp.MessageStateRejected},
	message.StatusUnknown:     {smpp.StatUnknown, smpp.MessageStateUnknown},
}

// receiptOf returns the deliver_sm receipt for an sms.status value when it is
// a final status of tenant's message that came in over SMPP asking for one
// (registered_delivery 1: any outcome; 2: failures only).
func receiptOf(tenant string, value []byte) (*smpp.Deliver, bool) {
	var st message.Status
	if json.Unmarshal(value, &st) != nil || st.Tenant != tenant || !message.IsFinal(st.Status) {
		return nil, false
	}
	if !wantsReceipt(st.Metadata[MetaRegisteredDelivery], st.Status) {
		return nil, false
	}
	sm, ok := stats[st.Status]
	if !ok {
		return nil, false
	}
	rc := smpp.Receipt{ID: st.MessageID, Sub: 1, Stat: sm.stat, Err: errCode(st.ErrorCode), DoneDate: st.EventTime}
	if sm.state == smpp.MessageStateDelivered {
		rc.Dlvrd = 1
	}
	switch {
	case st.SubmittedAt != nil:
		rc.SubmitDate = *st.SubmittedAt
	case st.AcceptedAt != nil:
		rc.SubmitDate = *st.AcceptedAt
	}
	if st.DoneAt != nil {
		rc.DoneDate = *st.DoneAt
	}
	return &smpp.Deliver{
		// A receipt comes from the handset the message went to.
		SourceAddr: st.Metadata[MetaDestAddr], SourceTON: 1, SourceNPI: 1,
		DestAddr:     st.Metadata[MetaSourceAddr],
		ESMClass:     smpp.ESMClassDeliveryReceipt,
		ShortMessage: rc.Format(),
		TLVs: map[uint16][]byte{
			smpp.TagReceiptedMessageID: append([]byte(st.MessageID), 0),
			smpp.TagMessageState:       {sm.state},
		},
	}, true
}

// wantsReceipt says whether a message submitted with registered_delivery rd
// ("" when not over SMPP) asked for a receipt of its final status: always
// (1), or on failure only (2).
func wantsReceipt(rd, status string) bool {
	return rd == "1" || rd == "2" && status != message.StatusDelivered
}

// moOf returns the deliver_sm of a sluice.mo record sent to one of the
// tenant's numbers: the text in GSM-7 when it can be, else UCS-2, in
// message_payload when longer than a short_message.
func (t *tenant) moOf(value []byte) (*smpp.Deliver, bool) {
	var mo sluicepb.MO
	if proto.Unmarshal(value, &mo) != nil || !t.moNumbers[strings.TrimPrefix(mo.DestAddr, "+")] || mo.Text == "" {
		return nil, false
	}
	enc, parts, err := text.Split(mo.Text, 0, text.MaxParts)
	if err != nil {
		return nil, false // longer than any ESME could take: nothing to send
	}
	var payload []byte
	for _, p := range parts {
		payload = append(payload, p.Payload...)
	}
	d := &smpp.Deliver{SourceAddr: strings.TrimPrefix(mo.SourceAddr, "+"), DestAddr: mo.DestAddr, DataCoding: text.DataCoding(enc)}
	if strings.HasPrefix(mo.SourceAddr, "+") {
		d.SourceTON, d.SourceNPI = 1, 1
	}
	if len(payload) > 254 {
		d.TLVs = map[uint16][]byte{smpp.TagMessagePayload: payload}
	} else {
		d.ShortMessage = payload
	}
	return d, true
}

// errCode is the receipt's three-character err field: the carrier's code
// when it is one, 000 for none.
func errCode(code string) string {
	if n, err := strconv.Atoi(code); err == nil && n >= 0 && n < 1000 {
		return strconv.Itoa(1000 + n)[1:]
	}
	if code == "" {
		return "000"
	}
	return code
}
