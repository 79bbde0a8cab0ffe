package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/tools/loadgen"
)

// TestCampaignOverHTTP sends campaigns through ingest's HTTP API, in
// batches and one message a request, and follows them on sms.status: every
// message accepted and ended exactly once. A refused request ends the run
// with ingest's answer.
func TestCampaignOverHTTP(t *testing.T) {
	s := startStack(t)
	run := func(target loadgen.HTTPTarget, c loadgen.Campaign) (loadgen.Report, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return loadgen.Run(ctx, loadgen.RunOptions{Brokers: s.Cfg.Kafka.Brokers, TopicPrefix: s.Cfg.Kafka.TopicPrefix,
			HTTP: &target, Requests: c.Requests()})
	}
	for _, tc := range []struct{ batch, n int }{{100, 500}, {1, 100}} {
		t.Run(fmt.Sprintf("batch=%d", tc.batch), func(t *testing.T) {
			c := Campaign(fmt.Sprintf("http-%d", tc.batch), tc.n, uint64(tc.batch))
			target := s.HTTP()
			target.Batch = tc.batch
			rep, err := run(target, c)
			if err != nil {
				t.Fatal(err)
			}
			finals := 0
			for _, n := range rep.Statuses {
				finals += n
			}
			if rep.Accepted != tc.n || finals != tc.n || rep.Missing != 0 || rep.Conflicts != 0 {
				t.Errorf("%d sent: %d accepted, %d final (%v), %d missing, %d with two finals", tc.n, rep.Accepted, finals, rep.Statuses, rep.Missing, rep.Conflicts)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		target := s.HTTP()
		target.APIKey = "not-the-key"
		_, err := run(target, loadgen.Campaign{Tenant: "demo", ID: "http-refused", Count: 10, Seed: 1})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("run with a wrong key: %v, want ingest's 401", err)
		}
	})
}
