package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// TestConsumeBatches: every record reaches the handler exactly once, in
// offset order per partition, in batches of at most Max; after a stop the
// committed offsets are the end offsets.
func TestConsumeBatches(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic := prefix + "in"
	const partitions, n = 3, 300
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})
	produceKeyed(t, brokers, topic, n)
	end := endOffsets(t, brokers, topic, partitions)
	for p := range partitions {
		if end[p] == 0 {
			t.Fatalf("partition %d got no record: end offsets %v", p, end)
		}
	}

	opt := kafka.BatchOptions{Max: 25, Linger: 20 * time.Millisecond}
	var (
		mu       sync.Mutex
		seen     = map[string]int{} // key → times handled
		next     = map[int]int64{}  // partition → next expected offset
		problems []string
	)
	handle := func(_ context.Context, tp string, batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if tp != topic || len(batch) == 0 || len(batch) > opt.Max {
			problems = append(problems, fmt.Sprintf("batch of %d records of topic %q", len(batch), tp))
		}
		for _, m := range batch {
			if m.Offset != next[m.Partition] {
				problems = append(problems, fmt.Sprintf("partition %d: offset %d, want %d", m.Partition, m.Offset, next[m.Partition]))
			}
			next[m.Partition] = m.Offset + 1
			seen[string(m.Key)]++
		}
		return nil
	}

	group := prefix + "group"
	consumeUntil(t, &mu, func() bool { return len(seen) == n }, func(ctx context.Context) error {
		return kafka.ConsumeBatches(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}}, opt, handle)
	})

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	for i := range n {
		if k := "key-" + strconv.Itoa(i); seen[k] != 1 {
			t.Errorf("%s handled %d times", k, seen[k])
		}
	}
	committed, err := committedOffsets(t.Context(), brokers, group, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(committed, end) {
		t.Errorf("committed offsets %v, want the end offsets %v", committed, end)
	}
}

// TestConsumeBatchesRetriesFailedBatch: a batch whose handler fails is
// handed over again, unchanged, until it succeeds; nothing past it is
// committed meanwhile and nothing after it is skipped.
func TestConsumeBatchesRetriesFailedBatch(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"group"
	const n, failAt, failures = 20, 9, 2
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 1})
	produceKeyed(t, brokers, topic, n)

	var (
		mu       sync.Mutex
		attempts [][]int64 // offsets of each attempt at the failing batch
		handled  []int64   // offsets of batches that succeeded, in order
		problems []string
	)
	offsetsOf := func(batch []kafka.Message) []int64 {
		o := make([]int64, len(batch))
		for i, m := range batch {
			o[i] = m.Offset
		}
		return o
	}
	handle := func(ctx context.Context, _ string, batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		offsets := offsetsOf(batch)
		if !slices.Contains(offsets, failAt) {
			handled = append(handled, offsets...)
			return nil
		}
		attempts = append(attempts, offsets)
		committed, err := committedOffsets(ctx, brokers, group, topic, 1)
		if err != nil {
			problems = append(problems, err.Error())
		} else if committed[0] > offsets[0] {
			problems = append(problems, fmt.Sprintf("attempt %d at batch %v: offset %d already committed", len(attempts), offsets, committed[0]))
		}
		if len(attempts) <= failures {
			return errors.New("transient failure")
		}
		handled = append(handled, offsets...)
		return nil
	}

	consumeUntil(t, &mu, func() bool { return len(handled) == n }, func(ctx context.Context) error {
		return kafka.ConsumeBatches(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}},
			kafka.BatchOptions{Max: 4, Linger: 10 * time.Millisecond}, handle)
	})

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if len(attempts) != failures+1 {
		t.Errorf("failing batch attempted %d times, want %d", len(attempts), failures+1)
	}
	for i, a := range attempts {
		if !slices.Equal(a, attempts[0]) {
			t.Errorf("attempt %d got offsets %v, the first got %v", i+1, a, attempts[0])
		}
	}
	for i, o := range handled {
		if o != int64(i) {
			t.Fatalf("handled offsets %v: not each offset once in order", handled)
		}
	}
	committed, err := committedOffsets(t.Context(), brokers, group, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	if committed[0] != n {
		t.Errorf("committed offset %d, want %d", committed[0], n)
	}
}

// TestConsumeBatchesFinishesBatchOnStop: a stop requested while the handler
// works lets it finish (its context stays live) and commits its batch, and
// no further batch is started.
func TestConsumeBatchesFinishesBatchOnStop(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"group"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 1})
	produceKeyed(t, brokers, topic, 10)

	var (
		calls      int
		lastInHand int64
		ctxErr     error
	)
	started, release := make(chan struct{}), make(chan struct{})
	handle := func(ctx context.Context, _ string, batch []kafka.Message) error {
		calls++ // the first call blocks until after the stop: no other may follow
		if calls > 1 {
			return nil
		}
		lastInHand = batch[len(batch)-1].Offset
		close(started)
		<-release
		// Finishing the batch takes a moment, as a real write would. A
		// context that followed the stop would end within microseconds (its
		// cancellation is propagated asynchronously), so this window only
		// detects that; a correct run always passes.
		select {
		case <-ctx.Done():
			ctxErr = ctx.Err()
			return ctxErr
		case <-time.After(100 * time.Millisecond):
			return nil
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	done := goRun(t, func() error {
		return kafka.ConsumeBatches(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}},
			kafka.BatchOptions{Max: 4, Linger: 10 * time.Millisecond}, handle)
	})
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("no batch handed over")
	}
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("ConsumeBatches: %v", err)
	}

	if calls != 1 {
		t.Errorf("handler called %d times, want once", calls)
	}
	if ctxErr != nil {
		t.Errorf("handler's context ended during the stop: %v", ctxErr)
	}
	committed, err := committedOffsets(t.Context(), brokers, group, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	if committed[0] != lastInHand+1 {
		t.Errorf("committed offset %d, want %d (just past the batch in hand)", committed[0], lastInHand+1)
	}
}

// TestStopCommitsEveryPartitionsLastBatch: on a stop, a worker that
// returns at once must not end the generation, and with it the committer,
// while another worker is still finishing its last batch: that batch's
// commit must land. (kafka-go ends a generation when any one of its
// functions returns.)
func TestStopCommitsEveryPartitionsLastBatch(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"group"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 2})
	produceTo(t, brokers, kafka.Message{Topic: topic, Partition: 0, Value: []byte("a")}, kafka.Message{Topic: topic, Partition: 1, Value: []byte("b")})

	var fetched sync.WaitGroup
	fetched.Add(2)
	firstReturned := make(chan struct{})
	var commitErr error
	work := func(ctx context.Context, c *kafka.Claim) error {
		batch, err := c.FetchBatch(ctx, topic, 20*time.Second, kafka.BatchOptions{Max: 10})
		if err != nil || len(batch) == 0 {
			return fmt.Errorf("partition %d: %d records, %v", c.Partition, len(batch), err)
		}
		fetched.Done()
		<-c.Stopping()
		if c.Partition == 0 {
			defer close(firstReturned)
			return nil // nothing to finish
		}
		<-firstReturned
		// Finishing the batch takes a moment, as a real write would.
		time.Sleep(200 * time.Millisecond)
		commitErr = c.Commit(topic, batch[len(batch)-1].Offset+1)
		return commitErr
	}

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	done := goRun(t, func() error {
		return kafka.RunGroup(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}}, work)
	})
	fetched.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunGroup: %v", err)
	}
	if commitErr != nil {
		t.Fatalf("the last batch's commit failed: %v", commitErr)
	}
	committed, err := committedOffsets(t.Context(), brokers, group, topic, 2)
	if err != nil {
		t.Fatal(err)
	}
	if committed[1] != 1 {
		t.Errorf("partition 1 committed at %d, want 1", committed[1])
	}
}

// TestConsumeClaimsRestartsFailedWorker: a partition whose worker fails
// (here: opening its state) is taken up again from its last commit, not left
// idle until the next rebalance.
func TestConsumeClaimsRestartsFailedWorker(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"group"
	const partitions, n = 2, 40
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})
	produceKeyed(t, brokers, topic, n)

	var (
		mu      sync.Mutex
		opens   = map[int]int{} // partition → open calls
		handled = map[string]int{}
	)
	open := func(_ context.Context, c *kafka.Claim) (kafka.BatchFunc, error) {
		mu.Lock()
		defer mu.Unlock()
		opens[c.Partition]++
		if c.Partition == 0 && opens[0] == 1 {
			return nil, errors.New("state store not ready")
		}
		return func(_ context.Context, _ string, batch []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				handled[string(m.Key)]++
			}
			return nil
		}, nil
	}

	consumeUntil(t, &mu, func() bool { return len(handled) == n }, func(ctx context.Context) error {
		return kafka.ConsumeClaims(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}},
			kafka.BatchOptions{Max: 10, Linger: 10 * time.Millisecond}, open)
	})
	for k, times := range handled {
		if times != 1 {
			t.Errorf("%s handled %d times", k, times)
		}
	}
	committed, err := committedOffsets(t.Context(), brokers, group, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	if end := endOffsets(t, brokers, topic, partitions); !maps.Equal(committed, end) {
		t.Errorf("committed offsets %v, want the end offsets %v", committed, end)
	}
}

// holdings records which member holds which partition number, as seen by
// RunGroup's workers.
type holdings struct {
	mu       sync.Mutex
	held     map[int]string // partition → member
	readBoth map[int]bool   // partition → its current claim read both topics
	problems []string
}

func (h *holdings) acquire(member string, p int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if other, ok := h.held[p]; ok {
		h.problems = append(h.problems, fmt.Sprintf("partition %d claimed by %s while %s holds it", p, member, other))
	}
	h.held[p] = member
	h.readBoth[p] = false
}

func (h *holdings) release(p int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.held, p)
	delete(h.readBoth, p)
}

func (h *holdings) problem(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
}

func (h *holdings) markReadBoth(p int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.readBoth[p] = true
}

// settled reports whether every partition is held, each claim has read
// both topics, and the holders are exactly members; it returns the
// partitions of each member.
func (h *holdings) settled(partitions int, members ...string) (map[string][]int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byMember := map[string][]int{}
	for p := range partitions {
		m, ok := h.held[p]
		if !ok || !h.readBoth[p] {
			return nil, false
		}
		byMember[m] = append(byMember[m], p)
	}
	for _, m := range members {
		if len(byMember[m]) == 0 {
			return nil, false
		}
	}
	return byMember, len(byMember) == len(members)
}

// TestRunGroupCoPartitioned: a claim covers the same partition number of
// both topics; members never hold the same partition number at once, and
// after each rebalance the members together hold every partition.
func TestRunGroupCoPartitioned(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topics := []string{prefix + "otp", prefix + "bulk"}
	const partitions = 4
	var msgs []kafka.Message
	for _, topic := range topics {
		ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})
		for p := range partitions {
			msgs = append(msgs, kafka.Message{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s/%d", topic, p)})
		}
	}
	produceTo(t, brokers, msgs...)

	cfg := kafka.GroupConfig{Brokers: brokers, Group: prefix + "group", Topics: topics}
	h := &holdings{held: map[int]string{}, readBoth: map[int]bool{}}
	work := func(member string) func(context.Context, *kafka.Claim) error {
		return func(ctx context.Context, c *kafka.Claim) error {
			h.acquire(member, c.Partition)
			defer h.release(c.Partition)
			for _, topic := range topics {
				batch, err := c.FetchBatch(ctx, topic, time.Minute, kafka.BatchOptions{Max: 1})
				if err != nil {
					if ctx.Err() == nil {
						h.problem("%s partition %d: fetch %s: %v", member, c.Partition, topic, err)
					}
					return nil // the generation ended first
				}
				if len(batch) == 0 {
					h.problem("%s partition %d: nothing in %s within a minute", member, c.Partition, topic)
					return nil
				}
				m := batch[0]
				if want := fmt.Sprintf("%s/%d", topic, c.Partition); m.Topic != topic || m.Partition != c.Partition || string(m.Value) != want {
					h.problem("%s claim %d read %s/%d %q from %s, want %q", member, c.Partition, m.Topic, m.Partition, m.Value, topic, want)
				}
			}
			h.markReadBoth(c.Partition)
			<-ctx.Done()
			return nil
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	doneA := goRun(t, func() error { return kafka.RunGroup(ctx, cfg, work("A")) })

	waitSettled := func(members ...string) map[string][]int {
		t.Helper()
		var byMember map[string][]int
		waitFor(t, 20*time.Second, fmt.Sprintf("partitions held by %v", members), func() bool {
			var ok bool
			byMember, ok = h.settled(partitions, members...)
			return ok
		})
		return byMember
	}
	t.Logf("one member: %v", waitSettled("A"))

	doneB := goRun(t, func() error { return kafka.RunGroup(ctxB, cfg, work("B")) })
	byMember := waitSettled("A", "B")
	t.Logf("two members: %v", byMember)
	checkAssignments(t, brokers, cfg.Group, topics, byMember)

	stopB()
	if err := <-doneB; err != nil {
		t.Errorf("member B: %v", err)
	}
	t.Logf("B gone: %v", waitSettled("A"))
	cancel()
	if err := <-doneA; err != nil {
		t.Errorf("member A: %v", err)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.problems {
		t.Error(p)
	}
	if len(h.held) != 0 {
		t.Errorf("claims still held after RunGroup returned: %v", h.held)
	}
}

// checkAssignments compares the broker's view of the group with the claims
// the workers saw: every member is assigned the same partitions of every
// topic, and those are the partitions of one member's claims.
func checkAssignments(t *testing.T, brokers []string, group string, topics []string, byMember map[string][]int) {
	t.Helper()
	client := &kgo.Client{Addr: kgo.TCP(brokers...)}
	resp, err := client.DescribeGroups(t.Context(), &kgo.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
		t.Fatalf("describe group: %v %+v", err, resp)
	}
	var got, want []string
	for _, m := range resp.Groups[0].Members {
		perTopic := map[string][]int{}
		for _, a := range m.MemberAssignments.Topics {
			ps := slices.Clone(a.Partitions)
			sort.Ints(ps)
			perTopic[a.Topic] = ps
		}
		first := perTopic[topics[0]]
		for _, topic := range topics[1:] {
			if !slices.Equal(perTopic[topic], first) {
				t.Errorf("member %s: partitions %v of %s but %v of %s", m.MemberID, first, topics[0], perTopic[topic], topic)
			}
		}
		got = append(got, fmt.Sprint(first))
	}
	for _, ps := range byMember {
		want = append(want, fmt.Sprint(ps))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("broker assigns %v, workers hold %v", got, want)
	}
}

// TestConcurrentCommits: the claims of a member commit at the same time (the
// member joins their commits into shared requests); every commit lands, and
// is on the broker by the time Commit returns.
func TestConcurrentCommits(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic, group := prefix+"in", prefix+"group"
	const partitions, commits = 8, 100
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: partitions})

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		finished = map[int]bool{}
		problems []string
	)
	done := goRun(t, func() error {
		return kafka.RunGroup(ctx, kafka.GroupConfig{Brokers: brokers, Group: group, Topics: []string{topic}}, func(ctx context.Context, c *kafka.Claim) error {
			for next := int64(1); next <= commits; next++ {
				if err := c.Commit(topic, next); err != nil {
					return err
				}
			}
			got, err := committedOffsets(ctx, brokers, group, topic, partitions)
			mu.Lock()
			if err != nil || got[c.Partition] != commits {
				problems = append(problems, fmt.Sprintf("partition %d: committed %d after Commit returned (%v), want %d", c.Partition, got[c.Partition], err, commits))
			}
			finished[c.Partition] = true
			mu.Unlock()
			<-ctx.Done()
			return nil
		})
	})
	waitFor(t, 30*time.Second, "every partition's commits", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(finished) == partitions
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunGroup: %v", err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	got, err := committedOffsets(t.Context(), brokers, group, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		if got[p] != commits {
			t.Errorf("partition %d: committed offset %d, want %d", p, got[p], commits)
		}
	}
}

// FetchBatch tells "nothing yet" (an empty batch, no error) from a failure
// (ctx's end here), so that callers can return on the one and wait on the
// other.
func TestFetchBatchNothingYetIsNoError(t *testing.T) {
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	topic := prefix + "empty"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 1})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	type result struct {
		n                  int
		empty, afterCancel error
	}
	res := make(chan result, 1)
	done := make(chan error, 1)
	go func() {
		done <- kafka.RunGroup(ctx, kafka.GroupConfig{Brokers: brokers, Group: prefix + "g", Topics: []string{topic}}, func(wctx context.Context, c *kafka.Claim) error {
			batch, err := c.FetchBatch(wctx, topic, 100*time.Millisecond, kafka.BatchOptions{Max: 10})
			r := result{n: len(batch), empty: err}
			cctx, ccancel := context.WithCancel(wctx)
			ccancel()
			_, r.afterCancel = c.FetchBatch(cctx, topic, time.Minute, kafka.BatchOptions{Max: 10})
			res <- r
			<-wctx.Done()
			return nil
		})
	}()
	select {
	case r := <-res:
		if r.n != 0 || r.empty != nil {
			t.Errorf("empty partition: %d records, %v; want none and no error", r.n, r.empty)
		}
		if !errors.Is(r.afterCancel, context.Canceled) {
			t.Errorf("after cancel: %v, want context.Canceled", r.afterCancel)
		}
	case <-ctx.Done():
		t.Fatal("no partition assigned")
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("RunGroup: %v", err)
	}
}
