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

// kafkaBroker is a one-node KRaft Apache Kafka of the test's own, run from
// the jars tools/testenv/up.sh caches, so that it can be stopped and started
// again on the same port and data (the embedded broker keeps its data in
// memory and the shared one must not be stopped).
type kafkaBroker struct {
	dir, lib    string
	port, cport int
	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{}
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

func startKafka(t testing.TB) *kafkaBroker {
	t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	k := &kafkaBroker{dir: t.TempDir(), lib: kafkaJars(t), port: ports[0], cport: ports[1]}
	if err := testenv.WriteKRaftConfig(k.dir, k.port, k.cport); err != nil {
		t.Fatal(err)
	}
	format := k.java("kafka.tools.StorageTool", "format", "-t", testenv.KRaftClusterID(), "-c", filepath.Join(k.dir, "server.properties"))
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format Kafka storage: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := k.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.stop)
	return k
}

func (k *kafkaBroker) addrs() []string { return []string{fmt.Sprintf("127.0.0.1:%d", k.port)} }

func (k *kafkaBroker) java(args ...string) *exec.Cmd {
	return exec.Command("java", append([]string{"-Xms512m", "-Xmx512m", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(k.dir, "log4j2.yaml"), "-cp", k.lib + "/*"}, args...)...)
}

// start runs the broker on its data and waits until it serves metadata.
func (k *kafkaBroker) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(k.dir, "kafka.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := k.java("kafka.Kafka", filepath.Join(k.dir, "server.properties"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kafka: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	k.mu.Lock()
	k.cmd, k.done = cmd, done
	k.mu.Unlock()
	if err := testenv.WaitKafka(ctx, k.addrs()); err != nil {
		return fmt.Errorf("kafka on %v: %w (log %s)", k.addrs(), err, filepath.Join(k.dir, "kafka.log"))
	}
	return nil
}

// stop ends the broker with SIGTERM (SIGKILL after 30 s) and waits.
func (k *kafkaBroker) stop() {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.cmd = nil
	k.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// TestBrokerRestart stops the Kafka broker mid-stream and starts it again on
// the same port and data: every service must ride it out (none may exit),
// and every message must still end in one final status and one row.
func TestBrokerRestart(t *testing.T) {
	n, rate, down, timeout := 1200, 400.0, 5*time.Second, 3*time.Minute
	if full {
		n, rate, down, timeout = envInt("SLUICE_CHAOS_N", 10000), float64(envInt("SLUICE_CHAOS_RATE", 2000)), 30*time.Second, 6*time.Minute
	}
	k := startKafka(t)
	s := startStackWith(t, Options{Brokers: k.addrs()})
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
