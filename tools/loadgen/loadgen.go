// Package loadgen makes campaigns of requests, publishes them to
// sms.requests and follows sms.status until every message has a final status.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

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

// Publish writes the requests to topic in chunks as fast as the broker takes
// them, calling progress with the number written so far.
func Publish(ctx context.Context, p *kafka.Producer, topic string, reqs []message.Request, progress func(done int)) error {
	return PublishPaced(ctx, p, topic, reqs, 0, func(done int, _ []message.Request, _ time.Time) {
		if progress != nil {
			progress(done)
		}
	})
}

// PublishPaced writes the requests to topic at rate messages a second (0: as
// fast as the broker takes them). sent gets each chunk once the broker has
// acknowledged it, with the number written so far and the time the chunk was
// first handed to the producer. A chunk the broker refuses is sent again
// until ctx ends.
func PublishPaced(ctx context.Context, p *kafka.Producer, topic string, reqs []message.Request, rate float64, sent func(done int, chunk []message.Request, at time.Time)) error {
	return pace(ctx, reqs, rate, 1000, 1, func(ctx context.Context, chunk []message.Request) error {
		msgs := make([]kafka.Message, 0, len(chunk))
		for _, r := range chunk {
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
			msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(r.Tenant + "/" + r.ClientRef), Value: v})
		}
		// A broker that is away is waited for: resending a chunk is safe,
		// ingest drops copies of a (tenant, client_ref) it has accepted.
		for err := p.Produce(ctx, msgs...); err != nil; err = p.Produce(ctx, msgs...) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("publish: %w (last error: %w)", ctx.Err(), err)
			case <-time.After(500 * time.Millisecond):
			}
		}
		return nil
	}, sent)
}

// pace hands the requests to send in chunks of up to size, from workers
// goroutines, at rate messages a second (0: as fast as send goes), and
// calls sent (from one goroutine at a time) for each chunk send finished,
// with the number finished so far and the time the chunk was handed over.
// It returns send's first error.
func pace(ctx context.Context, reqs []message.Request, rate float64, size, workers int,
	send func(context.Context, []message.Request) error, sent func(done int, chunk []message.Request, at time.Time)) error {
	if rate > 0 {
		// About twenty chunks a second keeps the pace smooth.
		size = max(1, min(size, int(rate/20)))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan []message.Request)
	var (
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
	)
	for range max(workers, 1) {
		wg.Go(func() {
			for chunk := range chunks {
				at := time.Now()
				if err := send(ctx, chunk); err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				done += len(chunk)
				if sent != nil {
					sent(done, chunk, at)
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
dispatch:
	for lo := 0; lo < len(reqs); lo += size {
		if rate > 0 {
			due := start.Add(time.Duration(float64(lo) / rate * float64(time.Second)))
			select {
			case <-ctx.Done():
				break dispatch
			case <-time.After(time.Until(due)):
			}
		}
		select {
		case chunks <- reqs[lo:min(lo+size, len(reqs))]:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(chunks)
	wg.Wait()
	return context.Cause(ctx)
}

// Tally is what Follow saw of a campaign.
type Tally struct {
	mu          sync.Mutex
	want        map[string]bool
	final       map[string]string // message id -> its first final status
	published   map[string]time.Time
	accepted    map[string]time.Time
	submitted   map[string]time.Time
	finalAt     map[string]time.Time
	last        map[string]string // message id -> its latest status seen
	conflicts   []string          // "id: first then second", the first few
	Statuses    map[string]int    // final statuses by name
	Events      int               // events of the campaign's messages, copies included
	FinalEvents int               // final-status events, copies included
	Conflicts   int               // a second, different final status for a message
	FirstAt     time.Time
	LastFinalAt time.Time
}

// NewTally follows the messages of reqs.
func NewTally(reqs []message.Request) *Tally {
	t := &Tally{
		want: map[string]bool{}, final: map[string]string{}, Statuses: map[string]int{},
		published: map[string]time.Time{}, accepted: map[string]time.Time{},
		submitted: map[string]time.Time{}, finalAt: map[string]time.Time{},
		last: map[string]string{},
	}
	for _, r := range reqs {
		t.want[message.IDForClientRef(r.Tenant, r.ClientRef)] = true
	}
	return t
}

// Published records that reqs were handed to the broker at at: the start of
// their latencies.
func (t *Tally) Published(reqs []message.Request, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range reqs {
		t.published[message.IDForClientRef(r.Tenant, r.ClientRef)] = at
	}
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

// Missing returns the ids of the followed messages without a final status, sorted.
func (t *Tally) Missing() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id := range t.want {
		if _, ok := t.final[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Unfinished describes up to max messages without a final status, each with
// the latest status seen for it ("none" if nothing), and up to max messages
// with two different final statuses: what a failed run is to be debugged by.
func (t *Tally) Unfinished(max int) (missing, conflicts []string) {
	ids := t.Missing()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids[:min(max, len(ids))] {
		last := t.last[id]
		if last == "" {
			last = "none"
		}
		missing = append(missing, id+": last "+last)
	}
	return missing, t.conflicts[:min(max, len(t.conflicts))]
}

// Progress is a snapshot of how far a campaign has got.
type Progress struct{ Published, Accepted, Submitted, Final int }

// Progress returns how many messages have reached each stage.
func (t *Tally) Progress() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Progress{len(t.published), len(t.accepted), len(t.submitted), len(t.final)}
}

func (t *Tally) add(st message.Status) { t.addAt(st, time.Now()) }

// addAt counts one status event seen at now. A stage's time is the first time
// it was seen; submitted uses the event's own submitted_at when it has one.
func (t *Tally) addAt(st message.Status, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := st.MessageID
	if !t.want[id] {
		return
	}
	t.Events++
	t.last[id] = st.Status
	if t.FirstAt.IsZero() {
		t.FirstAt = now
	}
	switch st.Status {
	case message.StatusAccepted:
		if _, ok := t.accepted[id]; !ok {
			t.accepted[id] = now
		}
	case message.StatusSubmitted:
		if _, ok := t.submitted[id]; !ok {
			at := now
			if st.SubmittedAt != nil {
				at = *st.SubmittedAt
			}
			t.submitted[id] = at
		}
	}
	if !message.IsFinal(st.Status) {
		return
	}
	t.FinalEvents++
	if prev, ok := t.final[id]; ok {
		if prev != st.Status {
			t.Conflicts++
			if len(t.conflicts) < 10 {
				t.conflicts = append(t.conflicts, fmt.Sprintf("%s: %s then %s", id, prev, st.Status))
			}
		}
		return
	}
	t.final[id] = st.Status
	t.finalAt[id] = now
	t.Statuses[st.Status]++
	t.LastFinalAt = now
}

// Follow reads the status topic from its start until every followed message
// has a final status or ctx ends, calling progress now and then. Broker
// errors are waited out until ctx ends: each partition's follower reads on
// from where it was.
func Follow(ctx context.Context, brokers []string, topic string, t *Tally, progress func(final int)) error {
	n, err := kafka.PartitionCount(ctx, brokers, topic)
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	quiet := slog.New(slog.DiscardHandler) // a broker away is expected in the fault suite
	for p := range n {
		wg.Go(func() {
			kafka.FollowPartition(fctx, brokers, topic, p, kafka.FirstOffset, func(m kafka.Message) {
				var st message.Status
				if json.Unmarshal(m.Value, &st) == nil {
					t.add(st)
				}
			}, quiet)
		})
	}
	// Checked often, so that a campaign's measured end is its last final
	// status; progress is told every half second.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lastProgress := time.Now()
	for t.Final() < len(t.want) {
		select {
		case now := <-tick.C:
			if progress != nil && now.Sub(lastProgress) >= 500*time.Millisecond {
				lastProgress = now
				progress(t.Final())
			}
		case <-ctx.Done():
			return fmt.Errorf("follow %s: %d of %d final: %w", topic, t.Final(), len(t.want), ctx.Err())
		}
	}
	return nil
}
