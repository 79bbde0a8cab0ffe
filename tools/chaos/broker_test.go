package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/testenv"
)

// kafkaCluster is a KRaft Apache Kafka of the test's own, of combined
// broker+controller nodes run from the jars tools/testenv/up.sh caches, so
// that its nodes can be stopped, killed and started again on the same ports
// and data (the embedded broker keeps its data in memory and the shared
// cluster must not be disturbed).
type kafkaCluster struct {
	nodes []*kafkaNode
}

// kafkaNode is one node's process.
type kafkaNode struct {
	id, port int
	dir, lib string
	c        *kafkaCluster
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
}

func kafkaJars(t testing.TB) string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache")
	}
	version := os.Getenv("SLUICE_TESTENV_KAFKA_VERSION")
	if version == "" {
		version = "4.4.0"
	}
	lib := filepath.Join(cache, "sluice", "kafka-"+version, "lib")
	if _, err := os.Stat(filepath.Join(lib, ".complete")); err != nil {
		t.Fatalf("Kafka jars not in %s: tools/testenv/up.sh fetches them (make test runs it): %v", lib, err)
	}
	return lib
}

// startKafka starts a cluster of n nodes and waits until every one serves
// metadata.
func startKafka(t testing.TB, n int) *kafkaCluster {
	t.Helper()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	c := &kafkaCluster{}
	specs := make([]testenv.KRaftNode, n)
	for i := range specs {
		specs[i] = testenv.KRaftNode{ID: i + 1, Port: ports[2*i], ControllerPort: ports[2*i+1]}
	}
	id, lib := testenv.KRaftClusterID(), kafkaJars(t)
	for i, sp := range specs {
		k := &kafkaNode{id: sp.ID, port: sp.Port, dir: t.TempDir(), lib: lib, c: c}
		if err := testenv.WriteKRaftNodeConfig(k.dir, specs, i); err != nil {
			t.Fatal(err)
		}
		format := k.java("kafka.tools.StorageTool", "format", "-t", id, "-c", filepath.Join(k.dir, "server.properties"))
		if out, err := format.CombinedOutput(); err != nil {
			t.Fatalf("format Kafka storage: %v\n%s", err, out)
		}
		c.nodes = append(c.nodes, k)
	}
	t.Cleanup(c.stop)
	// All at once: a node waits for a quorum of controllers.
	for _, k := range c.nodes {
		if err := k.spawn(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.wait(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *kafkaCluster) addrs() []string {
	a := make([]string, len(c.nodes))
	for i, k := range c.nodes {
		a[i] = k.addr()
	}
	return a
}

// wait returns once the cluster's metadata lists every node.
func (c *kafkaCluster) wait(ctx context.Context) error {
	if err := testenv.WaitKafka(ctx, c.addrs()); err != nil {
		return fmt.Errorf("kafka on %v: %w (logs %s/kafka.log)", c.addrs(), err, c.nodes[0].dir)
	}
	return nil
}

// stop stops every node, all at once (one at a time, the last ones would
// wait for a quorum that is gone).
func (c *kafkaCluster) stop() {
	var wg sync.WaitGroup
	for _, k := range c.nodes {
		wg.Go(k.stop)
	}
	wg.Wait()
}

// start starts every node again and waits for them all.
func (c *kafkaCluster) start(ctx context.Context) error {
	for _, k := range c.nodes {
		if err := k.spawn(); err != nil {
			return err
		}
	}
	return c.wait(ctx)
}

// node returns the node with that id.
func (c *kafkaCluster) node(id int) *kafkaNode {
	for _, k := range c.nodes {
		if k.id == id {
			return k
		}
	}
	return nil
}

func (k *kafkaNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

func (k *kafkaNode) java(args ...string) *exec.Cmd {
	return exec.Command("java", append([]string{"-Xms512m", "-Xmx512m", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(k.dir, "log4j2.yaml"), "-cp", k.lib + "/*"}, args...)...)
}

// spawn runs the node on its data.
func (k *kafkaNode) spawn() error {
	logf, err := os.OpenFile(filepath.Join(k.dir, "kafka.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := k.java("kafka.Kafka", filepath.Join(k.dir, "server.properties"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kafka node %d: %w", k.id, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	k.mu.Lock()
	k.cmd, k.done = cmd, done
	k.mu.Unlock()
	return nil
}

// start runs the node again and waits until the cluster lists it.
func (k *kafkaNode) start(ctx context.Context) error {
	if err := k.spawn(); err != nil {
		return err
	}
	return k.c.wait(ctx)
}

// stop ends the node with SIGTERM (SIGKILL after 30 s) and waits.
func (k *kafkaNode) stop() { k.signal(syscall.SIGTERM, 30*time.Second) }

// kill ends the node with SIGKILL and waits.
func (k *kafkaNode) kill() { k.signal(syscall.SIGKILL, 0) }

func (k *kafkaNode) signal(sig syscall.Signal, grace time.Duration) {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.cmd = nil
	k.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace == 0 {
		<-done
		return
	}
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// brokerFaultSize is a broker fault's campaign: messages, rate, how long
// the broker stays away and the run's timeout (short in make test, long in
// make chaos).
func brokerFaultSize() (n int, rate float64, down, timeout time.Duration) {
	if full {
		return envInt("SLUICE_CHAOS_N", 10000), float64(envInt("SLUICE_CHAOS_RATE", 2000)), 30 * time.Second, 6 * time.Minute
	}
	return 1200, 400.0, 5 * time.Second, 3 * time.Minute
}

// TestBrokerRestart stops the Kafka broker mid-stream and starts it again on
// the same port and data: every service must ride it out (none may exit),
// and every message must still end in one final status and one row.
func TestBrokerRestart(t *testing.T) {
	n, rate, down, timeout := brokerFaultSize()
	k := startKafka(t, 1)
	s := startStackWith(t, Options{Brokers: k.addrs(), ReplicationFactor: 1})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f := Fault{
		Name: fmt.Sprintf("kafka broker stopped %s", down), Down: down,
		Stop:  func(context.Context) error { k.stop(); return nil },
		Start: k.start,
	}
	c := Campaign("chaos-broker", n, 11)
	res, err := s.Run(ctx, f, c, rate, nil)
	checkResult(t, res)
	if err != nil {
		t.Fatal(err)
	}
	logResults(t, "broker restart", []Result{res})
}
