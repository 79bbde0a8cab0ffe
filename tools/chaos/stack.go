// Package chaos runs the whole pipeline as it is deployed — the four services
// as separate processes built from this repository, against a real Kafka
// broker, ClickHouse and the simulated carriers — drives campaigns through it
// with the load generator, injects faults mid-stream (kill -9 of a service, a
// carrier that disconnects, stalls or throttles, ClickHouse or the broker away)
// and checks what must survive them: every accepted message reaches exactly
// one final status and one ClickHouse row, and the carriers see at most the
// in-flight window twice.
package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/services/sender"
	"github.com/sluice-sms/sluice/tools/devstack"
	"github.com/sluice-sms/sluice/tools/loadgen"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// Services are the four services, in pipeline order.
var Services = []string{"ingest", "router", "sender", "dlr"}

// Build compiles the four service binaries into dir (sluice-<name>).
func Build(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("binaries dir: %w", err)
	}
	args := []string{"build", "-o", dir}
	for _, s := range Services {
		args = append(args, "github.com/sluice-sms/sluice/services/"+s+"/cmd/sluice-"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build services: %w\n%s", err, out)
	}
	return nil
}

// Options say where the stack runs.
type Options struct {
	BinDir  string // the binaries from Build
	Dir     string // config, logs and the dlr state
	Brokers []string
	// ReplicationFactor of the stack's topics; 0: 1.
	ReplicationFactor int
	ClickHouseAddr    string
	ClickHouseDB      string
	TopicPrefix       string
	Carriers          []smscsim.CarrierConfig // default devstack.DefaultCarriers
	Log               *slog.Logger            // the simulator's log; nil: discarded
	// RespTimeout is the carriers' resp_timeout; 0: the sender's default.
	RespTimeout time.Duration
}

// Stack is the running pipeline.
type Stack struct {
	Cfg config.Config
	Sim *smscsim.Sim

	opt     Options
	cfgPath string
	mu      sync.Mutex
	procs   map[string]*proc
	closed  bool
	crashes []string // services that exited on their own, with why
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// Start writes the config, starts the simulator, creates the topics and
// starts the four services, returning once every one is ready.
func Start(ctx context.Context, opt Options) (_ *Stack, err error) {
	if len(opt.Carriers) == 0 {
		opt.Carriers = devstack.DefaultCarriers()
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	s := &Stack{opt: opt, procs: map[string]*proc{}, cfgPath: filepath.Join(opt.Dir, "sluice.yaml")}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.Sim, err = smscsim.StartWithLogger(ctx, opt.Carriers, "127.0.0.1:0", opt.Log); err != nil {
		return nil, fmt.Errorf("smsc-sim: %w", err)
	}
	if s.Cfg, err = s.config(); err != nil {
		return nil, err
	}
	data, err := yaml.Marshal(s.Cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if err := os.WriteFile(s.cfgPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	// Topics first, so the services do not race to create them.
	if err := service.CreateTopics(ctx, s.Cfg); err != nil {
		return nil, err
	}
	for _, name := range Services {
		if err := s.StartService(ctx, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) config() (config.Config, error) {
	cfg := config.Default()
	cfg.Kafka.Brokers = s.opt.Brokers
	cfg.Kafka.ReplicationFactor = max(1, s.opt.ReplicationFactor)
	cfg.Kafka.TopicPrefix = s.opt.TopicPrefix
	cfg.ClickHouse.Addr = s.opt.ClickHouseAddr
	cfg.ClickHouse.Database = s.opt.ClickHouseDB
	ports, err := freePorts(5)
	if err != nil {
		return cfg, err
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	cfg.Ingest.AdminAddr, cfg.Router.AdminAddr, cfg.Sender.AdminAddr, cfg.DLR.AdminAddr =
		addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3])
	cfg.Ingest.HTTPAddr = addr(ports[4])
	cfg.DLR.StateDir = filepath.Join(s.opt.Dir, "dlr-state")
	key := sha256.Sum256([]byte(APIKey))
	cfg.Tenants = []config.Tenant{{ID: "demo", APIKeySHA256: []string{hex.EncodeToString(key[:])}}}
	if cfg.Carriers, err = devstack.SimCarriers(s.Sim, s.opt.Carriers); err != nil {
		return cfg, err
	}
	for i := range cfg.Carriers {
		cfg.Carriers[i].RespTimeout = s.opt.RespTimeout
	}
	cfg.Routes = devstack.Routes()
	return cfg, cfg.Validate()
}

// Window is the most submits a crash may send twice, all carriers together:
// per bind, the window in flight and the answered submits not yet recorded.
func (s *Stack) Window() int {
	n := 0
	for _, c := range s.Cfg.Carriers {
		n += sender.Unrecorded(c)
	}
	return n
}

// RetryRecords counts the records ever written to the carriers' retry lanes.
func (s *Stack) RetryRecords(ctx context.Context) (int64, error) {
	var total int64
	for _, c := range s.Cfg.Carriers {
		topic := schemas.OutboundTopic(s.Cfg.Kafka.TopicPrefix, c.ID, schemas.LaneRetry)
		spans, err := kafka.TopicOffsets(ctx, s.Cfg.Kafka.Brokers, topic)
		if err != nil {
			return 0, fmt.Errorf("retry lane: %w", err)
		}
		for _, sp := range spans {
			total += sp.Next
		}
	}
	return total, nil
}

func (s *Stack) adminAddr(name string) string {
	switch name {
	case "ingest":
		return s.Cfg.Ingest.AdminAddr
	case "router":
		return s.Cfg.Router.AdminAddr
	case "sender":
		return s.Cfg.Sender.AdminAddr
	default:
		return s.Cfg.DLR.AdminAddr
	}
}

// APIKey is the key of the stack's tenant, demo, on ingest's HTTP API.
const APIKey = "chaos-demo-key"

// HTTP is ingest's HTTP front door, for campaigns sent through it.
func (s *Stack) HTTP() loadgen.HTTPTarget {
	return loadgen.HTTPTarget{URL: "http://" + s.Cfg.Ingest.HTTPAddr, APIKey: APIKey}
}

// LogPath is the file a service's stderr goes to (appended across restarts).
func (s *Stack) LogPath(name string) string { return filepath.Join(s.opt.Dir, name+".log") }

// StartService starts one service's process and waits until it is ready.
// A process that exits on its own is restarted a second later, as an
// orchestrator would, and recorded (Crashes).
func (s *Stack) StartService(ctx context.Context, name string) error {
	p, err := s.spawn(name)
	if err != nil {
		return err
	}
	return s.waitReady(ctx, name, p)
}

func (s *Stack) spawn(name string) (*proc, error) {
	logf, err := os.OpenFile(s.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(filepath.Join(s.opt.BinDir, "sluice-"+name), "-config", s.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("start %s: the stack is closed", name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		s.supervise(name, p)
	}()
	s.procs[name] = p
	return p, nil
}

// supervise restarts a service that exited while it was meant to run.
func (s *Stack) supervise(name string, p *proc) {
	s.mu.Lock()
	if s.closed || s.procs[name] != p {
		s.mu.Unlock()
		return // killed or stopped on purpose
	}
	delete(s.procs, name)
	s.crashes = append(s.crashes, fmt.Sprintf("%s exited (%v) at %s", name, p.err, time.Now().UTC().Format(time.TimeOnly)))
	s.mu.Unlock()
	time.Sleep(time.Second)
	if _, err := s.spawn(name); err != nil {
		s.mu.Lock()
		s.crashes = append(s.crashes, fmt.Sprintf("%s not restarted: %v", name, err))
		s.mu.Unlock()
	}
}

// Crashes returns the services' exits that nobody asked for since the last
// call (see the logs under LogPath).
func (s *Stack) Crashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.crashes
	s.crashes = nil
	return c
}

func (s *Stack) waitReady(ctx context.Context, name string, p *proc) error {
	url := "http://" + s.adminAddr(name) + "/readyz"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %w (log %s)", name, p.err, s.LogPath(name))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to a service and waits until it is gone.
func (s *Stack) Kill(name string) error {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s is not running", name)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	<-p.done
	return nil
}

// Close stops the services with SIGTERM (SIGKILL after 20 s), then the
// simulator. It returns the services that did not stop cleanly.
func (s *Stack) Close() error {
	s.mu.Lock()
	s.closed = true
	procs := s.procs
	s.procs = map[string]*proc{}
	s.mu.Unlock()
	var errs []error
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for name, p := range procs {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if p.err != nil {
			errs = append(errs, fmt.Errorf("%s stopped: %w (log %s)", name, p.err, s.LogPath(name)))
		}
	}
	if s.Sim != nil {
		errs = append(errs, s.Sim.Close())
	}
	return errors.Join(errs...)
}

// freePorts returns n ports free at the time of asking.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
