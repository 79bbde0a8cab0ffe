package devstack

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/tools/loadgen"
)

// span is one exported span, as the collector received it.
type span struct {
	service, name     string
	trace, id, parent string
	links             []spanRef
	messageID         string
}

type spanRef struct{ trace, id string }

// collector is an in-memory OTLP/HTTP trace receiver: the services export
// to it exactly as they would to a real collector, configured only by the
// standard OTEL_* variables.
type collector struct {
	mu    sync.Mutex
	spans []span
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out := span{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId)}
				for _, a := range s.Attributes {
					if a.Key == "sluice.message_id" {
						out.messageID = a.GetValue().GetStringValue()
					}
				}
				for _, l := range s.Links {
					out.links = append(out.links, spanRef{trace: hex.EncodeToString(l.TraceId), id: hex.EncodeToString(l.SpanId)})
				}
				c.spans = append(c.spans, out)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

func (c *collector) snapshot() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

// messageTrace is what the spans say about one message.
type messageTrace struct {
	ingest  span
	routes  []span
	submits []span
	dlrs    []span
}

// traces groups spans by message: ingest's span names the message and
// starts its trace; router and sender spans join it by trace id, DLR spans
// by their link to a submit span.
func traces(spans []span) (map[string]*messageTrace, []string) {
	byTrace := map[string]*messageTrace{}
	out := map[string]*messageTrace{}
	var problems []string
	for _, s := range spans {
		if s.service == "sluice-ingest" && s.name == "ingest.accept" && s.messageID != "" {
			if _, dup := byTrace[s.trace]; dup {
				problems = append(problems, fmt.Sprintf("two messages in trace %s", s.trace))
			}
			mt := &messageTrace{ingest: s}
			byTrace[s.trace], out[s.messageID] = mt, mt
		}
	}
	submits := map[spanRef]*messageTrace{}
	for _, s := range spans {
		mt := byTrace[s.trace]
		switch s.service {
		case "sluice-router":
			if mt == nil {
				problems = append(problems, fmt.Sprintf("router span %s (message %s) is in no message's trace", s.name, s.messageID))
				continue
			}
			mt.routes = append(mt.routes, s)
		case "sluice-sender":
			if s.name != "sender.submit" {
				continue
			}
			if mt == nil {
				problems = append(problems, fmt.Sprintf("sender span %s (message %s) is in no message's trace", s.name, s.messageID))
				continue
			}
			mt.submits = append(mt.submits, s)
			submits[spanRef{s.trace, s.id}] = mt
		}
	}
	for _, s := range spans {
		if s.service != "sluice-dlr" {
			continue
		}
		for _, l := range s.links {
			if mt := submits[l]; mt != nil {
				mt.dlrs = append(mt.dlrs, s)
			}
		}
	}
	return out, problems
}

// ancestry names a span's ancestors, root first ("service name <- ..."),
// as far as byID knows them.
func ancestry(s span, byID map[string]span) string {
	path := []string{s.service + " " + s.name}
	for seen := 0; s.parent != "" && seen < 16; seen++ {
		p, ok := byID[s.parent]
		if !ok {
			path = append(path, "? "+s.parent)
			break
		}
		path, s = append(path, p.service+" "+p.name), p
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return strings.Join(path, " <- ")
}

// TestTraceAcrossServices sends a campaign through the four services with
// OTLP export pointed at an in-memory collector and checks that each
// message is one trace from ingest through router to its submits, parent to
// child across Kafka, and that the DLR service's span for it links to its
// submit span.
func TestTraceAcrossServices(t *testing.T) {
	const n = 60
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms: export as the test goes

	s, _ := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	campaign := loadgen.Campaign{Tenant: "demo", ID: "trace", Count: n, Seed: 7, Long: 0.2, Unicode: 0.1, OTP: 0.3, Marketing: 0.3}
	res, err := s.RunCampaign(ctx, campaign, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tally.Final(); got != n {
		t.Fatalf("%d messages with a final status, want %d", got, n)
	}

	// Spans are exported in batches: wait until every message's are in.
	complete := func() bool {
		ts, _ := traces(col.snapshot())
		if len(ts) < n {
			return false
		}
		for _, mt := range ts {
			if len(mt.routes) == 0 || len(mt.submits) == 0 || len(mt.dlrs) == 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !complete() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}

	spans := col.snapshot()
	ts, problems := traces(spans)
	for _, p := range problems {
		t.Error(p)
	}
	if len(ts) != n {
		t.Errorf("%d messages have an ingest span, want %d", len(ts), n)
	}
	counts := map[string]int{}
	for _, s := range spans {
		counts[s.service+" "+s.name]++
	}
	t.Logf("spans received: %v", counts)

	var missing []string
	ids := make([]string, 0, len(ts))
	for id := range ts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		mt := ts[id]
		if len(mt.submits) == 0 {
			missing = append(missing, id+": no submit span in its trace")
			continue
		}
		// Each submit descends from the message's ingest span through the
		// router's: parent to child across both Kafka hops.
		byID := map[string]span{mt.ingest.id: mt.ingest}
		for _, r := range mt.routes {
			byID[r.id] = r
		}
		for _, sub := range mt.submits {
			if sub.messageID != id {
				t.Errorf("message %s: a submit span in its trace names message %q", id, sub.messageID)
			}
			if path := ancestry(sub, byID); !strings.Contains(path, "sluice-ingest ingest.accept <- sluice-router ") {
				t.Errorf("message %s: submit span's ancestry %q, want ingest.accept <- router <- sender.submit", id, path)
			}
		}
		if len(mt.dlrs) == 0 {
			missing = append(missing, id+": no DLR span links to its submit spans")
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d messages lack spans, e.g. %s", len(missing), len(ts), strings.Join(missing[:min(5, len(missing))], "; "))
	}
}
