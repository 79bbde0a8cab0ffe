package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Traffic is one service's Kafka traffic counters (sluice_kafka_requests and
// sluice_kafka_records by kind), as its /metrics says.
type Traffic struct {
	FetchRequests, ProduceRequests, Fetched, Produced int64
}

// Add is t plus u.
func (t Traffic) Add(u Traffic) Traffic {
	return Traffic{t.FetchRequests + u.FetchRequests, t.ProduceRequests + u.ProduceRequests, t.Fetched + u.Fetched, t.Produced + u.Produced}
}

// Sub is t minus an earlier reading.
func (t Traffic) Sub(u Traffic) Traffic {
	return Traffic{t.FetchRequests - u.FetchRequests, t.ProduceRequests - u.ProduceRequests, t.Fetched - u.Fetched, t.Produced - u.Produced}
}

// Traffic reads every service's Kafka traffic counters.
func (s *Stack) Traffic(ctx context.Context) (map[string]Traffic, error) {
	out := map[string]Traffic{}
	for _, name := range Services {
		t, err := scrapeTraffic(ctx, "http://"+s.adminAddr(name)+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func scrapeTraffic(ctx context.Context, url string) (Traffic, error) {
	var t Traffic
	fields := map[string]*int64{
		`sluice_kafka_requests_total{kind="fetch"`:   &t.FetchRequests,
		`sluice_kafka_requests_total{kind="produce"`: &t.ProduceRequests,
		`sluice_kafka_records_total{kind="fetched"`:  &t.Fetched,
		`sluice_kafka_records_total{kind="produced"`: &t.Produced,
	}
	err := scrapeMetrics(ctx, url, func(line string, v float64) {
		for prefix, f := range fields {
			if strings.HasPrefix(line, prefix) {
				*f += int64(v)
			}
		}
	})
	return t, err
}

// Lag returns every service's consumer lag series that are not zero, as
// /metrics prints them: where a stalled campaign's messages wait.
func (s *Stack) Lag(ctx context.Context) ([]string, error) {
	var out []string
	for _, name := range Services {
		err := scrapeMetrics(ctx, "http://"+s.adminAddr(name)+"/metrics", func(line string, v float64) {
			if strings.HasPrefix(line, "sluice_kafka_consumer_lag") && v != 0 {
				out = append(out, name+": "+line)
			}
		})
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, nil
}

// scrapeMetrics calls fn with every sample line of url's Prometheus text
// and its value.
func scrapeMetrics(ctx context.Context, url string, fn func(line string, v float64)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return fmt.Errorf("%q: %w", line, err)
		}
		fn(line, v)
	}
	return sc.Err()
}
