package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/batch"
)

// GroupConfig describes a consumer group.
type GroupConfig struct {
	Brokers []string
	Group   string
	// Topics must be co-partitioned (equal partition counts): partition i of
	// every topic is assigned to the same member and handled by one Claim.
	Topics []string
	Logger *slog.Logger
	// Lag, when set, reports the group's consumer lag (see LagMonitor).
	Lag *LagMonitor
	// Meta is the member's metadata (its subscription's user data), which
	// GroupMembers shows every process: for example where it serves.
	Meta []byte
	// Assigned, when set, is told each generation's partitions before
	// their workers start.
	Assigned func(partitions []int)
}

// Claim is one partition number held by this member for one generation of the
// group: partition Partition of every topic of the group.
type Claim struct {
	Partition int
	commits   *batch.Batcher[commitReq]
	genCtx    context.Context // ends once the generation's committer has stopped
	brokers   []string
	mu        sync.Mutex // guards start and readers: workers may fetch and commit from several goroutines
	start     map[string]int64
	readers   map[string]*subscription
	stopping  <-chan struct{}
	genDone   <-chan struct{}
}

// Stopping is closed when the process is shutting down: the worker should
// finish what it holds, commit it and return.
func (c *Claim) Stopping() <-chan struct{} { return c.stopping }

// Fetch returns the claim's next record of topic, waiting until one comes;
// its error is ctx's when ctx ends.
func (c *Claim) Fetch(ctx context.Context, topic string) (Message, error) {
	m, err := c.reader(topic).fetchOne(ctx)
	if err != nil && ctx.Err() == nil {
		return m, fmt.Errorf("fetch %s/%d: %w", topic, c.Partition, err)
	}
	return m, err
}

// Offset is the offset of the record Fetch of topic returns next: the
// group's committed offset until the claim reads or seeks (negative,
// FirstOffset, while nothing is committed and nothing read).
func (c *Claim) Offset(topic string) int64 { return c.reader(topic).Offset() }

// Seek makes Fetch of topic go on from offset.
func (c *Claim) Seek(topic string, offset int64) error {
	c.reader(topic).setOffset(offset)
	return nil
}

// reader returns the claim's subscription to topic, at the group's committed
// offset (or where the claim last committed) the first time. Every claim and
// follower of the process shares one fetch per partition leader.
func (c *Claim) reader(topic string) *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.readers[topic]; ok {
		return r
	}
	r := subscribe(c.brokers, topic, c.Partition, c.start[topic])
	c.readers[topic] = r
	return r
}

// FetchBatch returns up to opt.Max records of topic: it waits at most wait
// for the first one, then at most opt.Linger for more. Nothing within wait
// is an empty batch and no error; an error is ctx's end or a failed
// partition.
func (c *Claim) FetchBatch(ctx context.Context, topic string, wait time.Duration, opt BatchOptions) ([]Message, error) {
	batch, err := c.reader(topic).batch(ctx, wait, opt.Linger, opt.Max)
	switch {
	case err == nil:
		return batch, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("fetch %s/%d: %w", topic, c.Partition, err)
	}
}

// Commit records that every record of the claim's partition of topic before
// next is done. Commits fail once the generation is over, so a member never
// moves the offset of a partition it lost.
func (c *Claim) Commit(topic string, next int64) error {
	if err := c.commits.Do(c.genCtx, commitReq{topic, c.Partition, next}); err != nil {
		return fmt.Errorf("commit %s/%d@%d: %w", topic, c.Partition, next, err)
	}
	c.mu.Lock()
	c.start[topic] = next // where a restarted worker resumes
	c.mu.Unlock()
	return nil
}

// commitReq is one claim's commit: every record of partition before next is
// done.
type commitReq struct {
	topic     string
	partition int
	next      int64
}

// newCommitter joins the commits that the claims of one generation ask for
// at the same time (and while a commit is in flight) into one OffsetCommit
// request. Each claim committing on its own makes kafka-go's goroutines queue
// and spin on the coordinator connection: it was the dlr's largest CPU cost
// under load.
func newCommitter(gen *kgo.Generation) *batch.Batcher[commitReq] {
	return batch.New(batch.Options{Max: 1 << 16}, func(_ context.Context, reqs []commitReq) error {
		offsets := map[string]map[int]int64{}
		for _, r := range reqs {
			if offsets[r.topic] == nil {
				offsets[r.topic] = map[int]int64{}
			}
			offsets[r.topic][r.partition] = max(offsets[r.topic][r.partition], r.next)
		}
		return gen.CommitOffsets(offsets)
	})
}

func (c *Claim) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.readers {
		r.Close()
	}
	clear(c.readers)
}

// RunGroup joins the group and, in every generation, runs work once per
// assigned partition number, each in its own goroutine. work's ctx ends when
// the generation ends (a rebalance) or ctx ends (a stop; Claim.Stopping tells
// which). RunGroup returns when ctx is done and every worker has returned.
func RunGroup(ctx context.Context, cfg GroupConfig, work func(ctx context.Context, c *Claim) error) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Lag != nil {
		cfg.Lag.Watch(cfg.Group, cfg.Topics...)
	}
	cg, err := kgo.NewConsumerGroup(kgo.ConsumerGroupConfig{
		ID:      cfg.Group,
		Brokers: cfg.Brokers,
		Topics:  cfg.Topics,
		// Range assignment gives partition i of every topic to one member.
		GroupBalancers:    []kgo.GroupBalancer{rangeBalancer{meta: cfg.Meta}},
		StartOffset:       kgo.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		Timeout:           10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", cfg.Group, err)
	}

	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		_ = cg.Close()
	}()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retriable(err) {
				return fmt.Errorf("consumer group %s: %w", cfg.Group, err)
			}
			// kafka-go's group keeps trying to join on its own, backing off
			// JoinGroupBackoff; a new broker has no coordinator yet, a
			// restarting one refuses connections for a while.
			log.Warn("consumer group not joined yet; retrying", "group", cfg.Group, "err", err)
			continue
		}
		claims := claimsOf(gen, cfg.Brokers, ctx.Done())
		log.Info("partitions assigned", "group", cfg.Group, "generation", gen.ID, "partitions", partitionsOf(claims))
		if cfg.Assigned != nil {
			cfg.Assigned(partitionsOf(claims))
		}
		wg.Add(1)
		gen.Start(func(genCtx context.Context) {
			defer wg.Done()
			runGeneration(ctx, genCtx, gen, claims, work, log.With("group", cfg.Group))
		})
	}
}

// runGeneration runs every claim's worker and the generation's committer
// until the generation or ctx ends and every worker has returned.
//
// It is the generation's one function: kafka-go ends a generation as soon
// as any of its functions returns, so a worker of its own that finished
// first (on a stop) would end the generation, and the committer with it,
// while the others still had their last batch to commit. The committer stops
// only after the last worker, so a stopping or rebalancing member commits
// what it finished: during a rebalance the coordinator still takes commits
// of the ending generation until the member joins again, which kafka-go
// does only after this returns.
//
// Commits asked for after the committer has stopped fail, so a member never
// moves the offset of a partition it lost.
func runGeneration(ctx, genCtx context.Context, gen *kgo.Generation, claims []*Claim, work func(ctx context.Context, c *Claim) error, log *slog.Logger) {
	commits := newCommitter(gen)
	commitsOpen, closeCommits := context.WithCancel(context.Background())
	defer closeCommits()
	commitCtx, stopCommits := context.WithCancel(context.Background())
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		commits.Run(commitCtx)
	}()
	if len(claims) == 0 {
		<-genCtx.Done()
	}
	var workers sync.WaitGroup
	for _, c := range claims {
		c.commits, c.genCtx = commits, commitsOpen
		workers.Go(func() {
			defer c.close()
			c.genDone = genCtx.Done()
			wctx, cancel := mergeDone(genCtx, ctx)
			defer cancel()
			runClaim(wctx, c, work, log.With("partition", c.Partition))
		})
	}
	workers.Wait()
	stopCommits()
	<-committed
}

// runClaim runs work on the claim until it returns without error or ctx
// ends. A failed worker (a broker that is not ready yet, a handler that gave
// up) is restarted from the last committed offsets after a backoff, so its
// partition never sits unserved for the rest of the generation.
func runClaim(ctx context.Context, c *Claim, work func(ctx context.Context, c *Claim) error, log *slog.Logger) {
	b := backoff.New(500*time.Millisecond, 30*time.Second)
	for {
		err := work(ctx, c)
		if err == nil || ctx.Err() != nil {
			return
		}
		wait := b.Next()
		log.Error("partition worker failed; restarting it from the last commit", "err", err, "backoff", wait)
		c.close()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// rangeBalancer is kafka-go's range balancer fed with partitions in ID
// order. kafka-go's takes them in the order of the broker's metadata, which
// need not be sorted (kfake's is random), and would then give partition i of
// two topics to different members.
type rangeBalancer struct {
	kgo.RangeGroupBalancer
	meta []byte
}

func (b rangeBalancer) UserData() ([]byte, error) { return b.meta, nil }

func (b rangeBalancer) AssignGroups(members []kgo.GroupMember, partitions []kgo.Partition) kgo.GroupMemberAssignments {
	sorted := slices.Clone(partitions)
	slices.SortFunc(sorted, func(x, y kgo.Partition) int {
		return cmp.Or(strings.Compare(x.Topic, y.Topic), cmp.Compare(x.ID, y.ID))
	})
	return b.RangeGroupBalancer.AssignGroups(members, sorted)
}

func claimsOf(gen *kgo.Generation, brokers []string, stopping <-chan struct{}) []*Claim {
	byPartition := map[int]*Claim{}
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			c, ok := byPartition[p.ID]
			if !ok {
				c = &Claim{Partition: p.ID, brokers: brokers, start: map[string]int64{}, readers: map[string]*subscription{}, stopping: stopping}
				byPartition[p.ID] = c
			}
			c.start[topic] = p.Offset
		}
	}
	claims := make([]*Claim, 0, len(byPartition))
	for _, c := range byPartition {
		claims = append(claims, c)
	}
	sort.Slice(claims, func(i, j int) bool { return claims[i].Partition < claims[j].Partition })
	return claims
}

func partitionsOf(claims []*Claim) []int {
	ps := make([]int, len(claims))
	for i, c := range claims {
		ps[i] = c.Partition
	}
	return ps
}

// mergeDone returns a context that ends when either a or b ends.
func mergeDone(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// BatchOptions size the batches of ConsumeBatches: up to Max records, waiting
// at most Linger for more once the first has come.
type BatchOptions struct {
	Max    int
	Linger time.Duration
}

// BatchFunc handles one batch of records of topic.
type BatchFunc func(ctx context.Context, topic string, batch []Message) error

// ConsumeBatches runs a group over one topic (or several co-partitioned ones,
// read in turn) and hands every partition's records to fn in batches of up to
// opt.Max, in offset order. A batch is committed only after fn returns nil;
// an error is retried with backoff, never skipped, so fn must tolerate
// replays. On shutdown the batch in hand is finished and committed.
func ConsumeBatches(ctx context.Context, cfg GroupConfig, opt BatchOptions, fn BatchFunc) error {
	return ConsumeClaims(ctx, cfg, opt, func(context.Context, *Claim) (BatchFunc, error) { return fn, nil })
}

// ConsumeClaims is ConsumeBatches for handlers with per-partition state: open
// is called when a partition is assigned and returns that partition's handler.
func ConsumeClaims(ctx context.Context, cfg GroupConfig, opt BatchOptions, open func(context.Context, *Claim) (BatchFunc, error)) error {
	return RunGroup(ctx, cfg, func(ctx context.Context, c *Claim) error {
		fn, err := open(ctx, c)
		if err != nil {
			return err
		}
		// With one topic, wait for it; with several, take turns.
		wait := time.Hour
		if len(cfg.Topics) > 1 {
			wait = 50 * time.Millisecond
		}
		for ctx.Err() == nil {
			for _, topic := range cfg.Topics {
				batch, err := c.FetchBatch(ctx, topic, wait, opt)
				if err != nil {
					return err
				}
				if len(batch) == 0 {
					continue // nothing yet on this topic
				}
				if err := processWithRetry(ctx, c, topic, batch, fn, cfg.Logger); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func processWithRetry(ctx context.Context, c *Claim, topic string, batch []Message, fn BatchFunc, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	// The batch is finished even when a stop is requested mid-way; only the end
	// of the generation (someone else owns the partition now) abandons it.
	work := context.WithoutCancel(ctx)
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		err := fn(work, topic, batch)
		if err == nil {
			break
		}
		log.Error("batch failed; retrying", "topic", topic, "partition", c.Partition, "first_offset", batch[0].Offset, "records", len(batch), "err", err)
		select {
		case <-c.genDone:
			return errors.New("generation ended during retries")
		case <-c.stopping:
			return errors.New("stopped during retries; the batch will be replayed")
		case <-time.After(b.Next()):
		}
	}
	return c.Commit(topic, batch[len(batch)-1].Offset+1)
}

// retriable tells whether a group error may go away by itself: every error
// but the ones Kafka marks as permanent (authorisation, bad config...).
func retriable(err error) bool {
	var kerr kgo.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kgo.UnknownMemberId, kgo.IllegalGeneration, kgo.RebalanceInProgress, kgo.FencedInstanceID:
			// The member's session expired (a starved or paused process):
			// it joins again as a new member.
			return true
		}
		return kerr.Temporary()
	}
	return true
}
