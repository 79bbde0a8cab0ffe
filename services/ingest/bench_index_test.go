package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// BenchmarkIngestIndexScale measures an ingest process whose status index
// holds SLUICE_BENCH_INDEX messages (default 1,000,000; the figure
// is 50,000,000), each with its final status: the rows are written straight
// into the index's store, as a replica that had followed sms.status would
// have left them, then ingest starts on that disk.
//
//   - disk-MiB: the store's files before the start;
//   - ready-s: from the process's start to its HTTP API answering;
//   - rss-MiB: its resident memory then;
//   - dup-check-µs: p99 of a request repeating a held client_ref (answered
//     duplicate: true), over 2,000 random ones, one at a time;
//   - get-µs: p99 of GET /v1/messages/{id} of held messages, likewise
//     (and the medians, -p50-µs);
//   - ready-cold-s: ready with an empty disk, reading back
//     SLUICE_BENCH_INDEX_COLD messages (default 200,000), and cold-msg/s its
//     rate: final-status records written straight into sms.status, or,
//     divided, into the index changelog, one per message, with the index
//     group's offsets committed at sms.status's end.
//
// With SLUICE_BENCH_INDEX_DIVIDED=1 the process runs as a divided index's
// only replica (ingest.peer_addr set): ready then includes joining the
// index group.
func BenchmarkIngestIndexScale(b *testing.B) {
	heldN := benchSize("SLUICE_BENCH_INDEX", 1_000_000)
	coldN := benchSize("SLUICE_BENCH_INDEX_COLD", 200_000)
	for b.Loop() {
		cfg := testConfig(b)
		if err := service.CreateTopics(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		topic := cfg.Kafka.TopicPrefix + schemas.TopicStatus
		partitions, err := kafka.PartitionCount(context.Background(), cfg.Kafka.Brokers, topic)
		if err != nil {
			b.Fatal(err)
		}
		bin := buildIngest(b)

		dir := b.TempDir()
		synthesizeIndex(b, dir, topic, partitions, heldN)
		b.ReportMetric(testenv.DirMiB(b, dir), "disk-MiB")
		p := startIngestProcess(b, bin, cfg, dir)
		b.ReportMetric(p.ready.Seconds(), "ready-s")
		b.ReportMetric(testenv.RSSMiB(b, p.cmd.Process.Pid), "rss-MiB")
		reportLatency(b, "dup-check", func() { p.dupCheck(b, rand.IntN(heldN)) })
		reportLatency(b, "get", func() { p.get(b, rand.IntN(heldN)) })
		p.stop(b)

		if divided() {
			synthesizeChangelog(b, cfg, partitions, coldN)
		} else {
			produceStatuses(b, cfg.Kafka.Brokers, topic, coldN)
		}
		cold := startIngestProcess(b, bin, cfg, b.TempDir())
		b.ReportMetric(cold.ready.Seconds(), "ready-cold-s")
		b.ReportMetric(float64(coldN)/cold.ready.Seconds(), "cold-msg/s")
		cold.get(b, rand.IntN(coldN))
		cold.stop(b)
		b.ReportMetric(float64(heldN), "held")
	}
}

// benchSize is the positive integer in the environment variable name, else
// def.
func benchSize(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// heldRef is the client_ref of the i-th synthesised message.
func heldRef(i int) string { return "held-" + strconv.Itoa(i) }

// heldStatus is the i-th synthesised message's final status record, as the
// dlr publishes it.
func heldStatus(b *testing.B, i int, at time.Time) (id string, value []byte) {
	ref := heldRef(i)
	m := &sluicepb.Message{Id: message.IDForClientRef("acme", ref), Tenant: "acme", ClientRef: ref,
		From: "ACME", To: fmt.Sprintf("+4474%08d", i%100_000_000), Text: "Your code is 123456", Carrier: "a", Segments: 1}
	v, err := message.StatusOf(m, message.StatusDelivered, at).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return m.Id, v
}

// synthesizeIndex writes n messages' rows into the index tables of dir, each
// in its sms.status partition's table, with checkpoints at the (empty)
// topic's start. Two writers, each with half of the tables, keep both cores
// busy.
func synthesizeIndex(b *testing.B, dir, topic string, partitions, n int) {
	b.Helper()
	db, err := state.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := newStatusStore(IdempotencyWindow, db)
	s.topic = topic
	for p := range partitions {
		s.tableLocked(p)
	}
	const writers = 2
	at, t0 := time.Now(), time.Now()
	var written atomic.Int64
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			// In key order, as compactions leave a long-running table:
			// random order would measure the synthesis's own compactions.
			type held struct {
				id string
				i  int
			}
			var mine []held
			for i := range n {
				id := message.IDForClientRef("acme", heldRef(i))
				if p := kafka.PartitionOf([]byte(id), partitions); p%writers == w {
					mine = append(mine, held{id, i})
				}
			}
			slices.SortFunc(mine, func(a, b held) int { return strings.Compare(a.id, b.id) })
			txns := map[int]*state.Txn{}
			for p := w; p < partitions; p += writers {
				txns[p] = s.tables[p].st.Begin()
			}
			for k, h := range mine {
				id, v := heldStatus(b, h.i, at)
				p := kafka.PartitionOf([]byte(id), partitions)
				row := encodeEntry(statusEntry{tenant: "acme", rank: rank(message.StatusDelivered), at: at, value: v})
				deadline, _, _ := s.meta(row)
				if err := txns[p].Apply(id, row, deadline, true); err != nil {
					return err
				}
				if (k+1)%10_000 == 0 {
					for p, t := range txns {
						if err := t.Commit(); err != nil {
							return err
						}
						txns[p] = s.tables[p].st.Begin()
					}
				}
				if c := written.Add(1); c%1_000_000 == 0 {
					fmt.Fprintf(os.Stderr, "index: %d of %d rows written (%.0f rows/s)\n", c, n, float64(c)/time.Since(t0).Seconds())
				}
			}
			for p, t := range txns {
				if err := t.Commit(); err != nil {
					return err
				}
				if err := s.tables[p].st.SaveCheckpoint(0); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// produceStatuses writes n final-status records straight into sms.status,
// as the messages' history would have left it (one record each).
func produceStatuses(b *testing.B, brokers []string, topic string, n int) {
	b.Helper()
	p := kafka.NewProducer(brokers, 5*time.Millisecond)
	defer p.Close()
	at := time.Now()
	const chunk = 5000
	for start := 0; start < n; start += chunk {
		recs := make([]kafka.Message, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			id, v := heldStatus(b, i, at)
			recs = append(recs, kafka.Message{Topic: topic, Key: []byte(id), Value: v})
		}
		if err := p.Produce(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
		if (start/chunk)%40 == 39 {
			fmt.Fprintf(os.Stderr, "%s: %d of %d records written\n", topic, start+chunk, n)
		}
	}
}

// synthesizeChangelog writes n messages' final statuses into the index
// changelog, as the replica that owned their partitions would have left
// them, and commits the index group's offsets at sms.status's end.
func synthesizeChangelog(b *testing.B, cfg config.Config, partitions, n int) {
	b.Helper()
	produceStatuses(b, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+schemas.TopicIngestIndex, n)
	status := cfg.Kafka.TopicPrefix + schemas.TopicStatus
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	ends, err := kafka.PartitionsOffsets(context.Background(), cfg.Kafka.Brokers, status, parts)
	if err != nil {
		b.Fatal(err)
	}
	next := map[int]int64{}
	for p, span := range ends {
		next[p] = span.Next
	}
	if err := kafka.CommitOffsets(context.Background(), cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+IndexGroup, status, next); err != nil {
		b.Fatal(err)
	}
}

// divided says whether the benchmark runs the index divided.
func divided() bool { return os.Getenv("SLUICE_BENCH_INDEX_DIVIDED") == "1" }

// buildIngest builds ingest's binary for benchmarks that run it as a
// process.
func buildIngest(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "sluice-ingest")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/sluice-ingest").CombinedOutput(); err != nil {
		tb.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// ingestProcess is a running ingest binary.
type ingestProcess struct {
	cmd   *exec.Cmd
	base  string
	ready time.Duration // from its start to its HTTP API answering
}

// startIngestProcess runs bin on cfg's topics with its index in stateDir,
// and waits until its HTTP API answers (which it does once the index has
// caught up).
func startIngestProcess(b *testing.B, bin string, cfg config.Config, stateDir string) *ingestProcess {
	b.Helper()
	addr := freeport.Addr(b)
	var y strings.Builder
	fmt.Fprintf(&y, "kafka:\n  brokers: [%s]\n  topic_prefix: %q\n  replication_factor: %d\n  create_topics: false\n",
		strings.Join(cfg.Kafka.Brokers, ", "), cfg.Kafka.TopicPrefix, cfg.Kafka.ReplicationFactor)
	fmt.Fprintf(&y, "ingest:\n  admin_addr: \"\"\n  http_addr: %q\n  state_dir: %q\n", addr, stateDir)
	if divided() {
		y.WriteString("  peer_addr: 127.0.0.1:0\n")
	}
	fmt.Fprintf(&y, "tenants:\n  - {id: acme, api_key_sha256: [%s]}\n", keyHash("acme-key"))
	path := filepath.Join(b.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(bin, "-config", path)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &ingestProcess{cmd: cmd, base: "http://" + addr}
	for {
		resp, err := http.Get(p.base + "/v1/messages/none")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > 30*time.Minute {
			b.Fatalf("ingest not answering after %s: %v", time.Since(start), err)
		}
		time.Sleep(10 * time.Millisecond) // polling the port, not a synchronisation
	}
	p.ready = time.Since(start)
	return p
}

func (p *ingestProcess) dupCheck(b *testing.B, i int) {
	r := post(b, p.base, "acme-key", good(`client_ref="`+heldRef(i)+`"`))
	if got := decode[Result](b, r); r.status != http.StatusAccepted || !got.Duplicate {
		b.Fatalf("held %s: %d %s, want a duplicate", heldRef(i), r.status, r.body)
	}
}

func (p *ingestProcess) get(b *testing.B, i int) {
	id := message.IDForClientRef("acme", heldRef(i))
	if r := call(b, http.MethodGet, p.base+"/v1/messages/"+id, "acme-key", "", nil); r.status != http.StatusOK {
		b.Fatalf("GET held %s: %d %s", id, r.status, r.body)
	}
}

func (p *ingestProcess) stop(b *testing.B) {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		b.Fatalf("ingest stopped with: %v", err)
	}
}

// reportLatency reports the 99th percentile of 2,000 calls of fn as
// name-µs, and their median as name-p50-µs.
func reportLatency(b *testing.B, name string, fn func()) {
	b.Helper()
	lat := make([]time.Duration, 2000)
	for i := range lat {
		t := time.Now()
		fn()
		lat[i] = time.Since(t)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), name+"-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), name+"-p50-µs")
}
