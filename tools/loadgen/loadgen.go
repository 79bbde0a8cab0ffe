// Package loadgen makes campaigns of requests, publishes them to
// sms.requests and follows sms.status until every message has a final status.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
)

// Campaign describes the requests to make.
type Campaign struct {
	Tenant string
	ID     string
	Count  int
	Seed   uint64
	// Share of long (multi-segment) and of UCS-2 texts, 0..1.
	Long, Unicode float64
	// Share of otp and of marketing priorities, 0..1; the rest is transactional.
	OTP, Marketing float64
	// Destination prefixes with weights; the rest of each number is random.
	Destinations []Destination
}

// Destination is a number range: prefix plus Digits random digits.
type Destination struct {
	Prefix string
	Digits int
	Weight int
}

// DefaultDestinations spread a campaign over GB, FR and DE mobiles.
var DefaultDestinations = []Destination{
	{Prefix: "+447400", Digits: 6, Weight: 5},
	{Prefix: "+336123", Digits: 5, Weight: 3},
	{Prefix: "+49151", Digits: 8, Weight: 2},
}

// Requests returns the campaign's requests. Each has a client_ref, so its
// message id is known in advance (message.IDForClientRef).
func (c Campaign) Requests() []message.Request {
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	dests := c.Destinations
	if len(dests) == 0 {
		dests = DefaultDestinations
	}
	total := 0
	for _, d := range dests {
		total += d.Weight
	}
	reqs := make([]message.Request, c.Count)
	for i := range reqs {
		n := rng.IntN(total)
		d := dests[0]
		for _, cand := range dests {
			if n < cand.Weight {
				d = cand
				break
			}
			n -= cand.Weight
		}
		var num strings.Builder
		num.WriteString(d.Prefix)
		for range d.Digits {
			num.WriteByte(byte('0' + rng.IntN(10)))
		}
		prio := message.PriorityTransactional
		switch p := rng.Float64(); {
		case p < c.OTP:
			prio = message.PriorityOTP
		case p < c.OTP+c.Marketing:
			prio = message.PriorityMarketing
		}
		reqs[i] = message.Request{
			Tenant:     c.Tenant,
			ClientRef:  fmt.Sprintf("%s-%d", c.ID, i),
			CampaignID: c.ID,
			From:       "SLUICE",
			To:         num.String(),
			Text:       c.text(rng, i),
			Priority:   prio,
		}
	}
	return reqs
}

func (c Campaign) text(rng *rand.Rand, i int) string {
	base := fmt.Sprintf("Your code is %06d", rng.IntN(1000000))
	if rng.Float64() < c.Unicode {
		base = fmt.Sprintf("Votre code: %06d ✅ 谢谢", rng.IntN(1000000))
	}
	if rng.Float64() < c.Long {
		base = strings.Repeat(base+" - message "+fmt.Sprint(i)+". ", 12)
	}
	return base
}

// Publish writes the requests to topic in chunks, calling progress with the
// number written so far.
func Publish(ctx context.Context, p *kafka.Producer, topic string, reqs []message.Request, progress func(done int)) error {
	const chunk = 1000
	for start := 0; start < len(reqs); start += chunk {
		end := min(start+chunk, len(reqs))
		msgs := make([]kafka.Message, 0, end-start)
		for _, r := range reqs[start:end] {
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
			msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(r.Tenant + "/" + r.ClientRef), Value: v})
		}
		if err := p.Produce(ctx, msgs...); err != nil {
			return err
		}
		if progress != nil {
			progress(end)
		}
	}
	return nil
}

// Tally is what Follow saw of a campaign.
type Tally struct {
	mu          sync.Mutex
	want        map[string]bool
	final       map[string]string // message id -> its first final status
	Statuses    map[string]int    // final statuses by name
	Events      int               // events of the campaign's messages, copies included
	Conflicts   int               // a second, different final status for a message
	FirstAt     time.Time
	LastFinalAt time.Time
}

// NewTally follows the messages of reqs.
func NewTally(reqs []message.Request) *Tally {
	t := &Tally{want: map[string]bool{}, final: map[string]string{}, Statuses: map[string]int{}}
	for _, r := range reqs {
		t.want[message.IDForClientRef(r.Tenant, r.ClientRef)] = true
	}
	return t
}

// Final returns how many of the followed messages have a final status.
func (t *Tally) Final() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.final)
}

// FinalStatus returns the final status of a message, "" if none yet.
func (t *Tally) FinalStatus(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.final[id]
}

func (t *Tally) add(st message.Status) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.want[st.MessageID] {
		return
	}
	t.Events++
	if t.FirstAt.IsZero() {
		t.FirstAt = time.Now()
	}
	if !message.IsFinal(st.Status) {
		return
	}
	if prev, ok := t.final[st.MessageID]; ok {
		if prev != st.Status {
			t.Conflicts++
		}
		return
	}
	t.final[st.MessageID] = st.Status
	t.Statuses[st.Status]++
	t.LastFinalAt = time.Now()
}

// Follow reads the status topic from its start until every followed message
// has a final status or ctx ends, calling progress now and then.
func Follow(ctx context.Context, brokers []string, topic string, t *Tally, progress func(final int)) error {
	r := kgo.NewReader(kgo.ReaderConfig{
		Brokers:     brokers,
		GroupID:     fmt.Sprintf("sluice-loadgen-%d", time.Now().UnixNano()),
		Topic:       topic,
		StartOffset: kgo.FirstOffset,
		MinBytes:    1,
		MaxBytes:    16 << 20,
		MaxWait:     100 * time.Millisecond,
	})
	defer r.Close()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if t.Final() == len(t.want) {
			return nil
		}
		select {
		case <-tick.C:
			if progress != nil {
				progress(t.Final())
			}
		default:
		}
		m, err := r.FetchMessage(ctx)
		if kerr := (kgo.Error)(0); errors.As(err, &kerr) && kerr.Temporary() {
			continue // a new or busy broker: leadership moves, the reader catches up
		}
		if err != nil {
			return fmt.Errorf("follow %s: %d of %d final: %w", topic, t.Final(), len(t.want), err)
		}
		var st message.Status
		if json.Unmarshal(m.Value, &st) == nil {
			t.add(st)
		}
	}
}
