package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
)

// HTTPTarget is ingest's HTTP front door, for campaigns sent through it
// rather than to sms.requests.
type HTTPTarget struct {
	URL    string // base URL, e.g. http://127.0.0.1:8080
	APIKey string // of the campaign's tenant
	// Batch is the messages per POST /v1/messages (1 sends single messages,
	// up to 1000 in {"messages": [...]}); 0 means 100.
	Batch int
	// Concurrency is the requests in flight at once; 0 means 4.
	Concurrency int
	Client      *http.Client // nil: a client with a 30 s timeout
}

// httpRequest is a request as the HTTP API takes it: the tenant comes from
// the API key and may not be in the body. The outer field hides the
// embedded one from encoding/json.
type httpRequest struct {
	message.Request
	Tenant *struct{} `json:"tenant,omitempty"`
}

// PublishHTTP posts the requests to target at rate messages a second (0: as
// fast as ingest takes them), calling sent as PublishPaced does once ingest
// has accepted each batch. A batch answered 429 (the tenant's rate limit),
// 5xx or not at all is sent again after a pause (Retry-After when given):
// copies are harmless, ingest drops them by (tenant, client_ref). Any other
// refusal ends the run with ingest's answer.
func PublishHTTP(ctx context.Context, target HTTPTarget, reqs []message.Request, rate float64, sent func(done int, chunk []message.Request, at time.Time)) error {
	size := target.Batch
	if size <= 0 {
		size = 100
	}
	workers := target.Concurrency
	if workers <= 0 {
		workers = 4
	}
	client := target.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return pace(ctx, reqs, rate, size, workers, func(ctx context.Context, chunk []message.Request) error {
		body, err := encodeHTTP(chunk, size > 1)
		if err != nil {
			return err
		}
		for {
			wait, err := post(ctx, client, target, body)
			if err != nil || wait == 0 {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("publish over HTTP: %w", ctx.Err())
			case <-time.After(wait):
			}
		}
	}, sent)
}

// encodeHTTP is the body of one POST: one message, or a batch.
func encodeHTTP(chunk []message.Request, batch bool) ([]byte, error) {
	msgs := make([]httpRequest, len(chunk))
	for i, r := range chunk {
		msgs[i] = httpRequest{Request: r}
	}
	var v any = msgs[0]
	if batch {
		v = struct {
			Messages []httpRequest `json:"messages"`
		}{msgs}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// post sends one request and returns how long to wait before sending it
// again (0 when it was accepted), or the error that ends the run.
func post(ctx context.Context, client *http.Client, target HTTPTarget, body []byte) (time.Duration, error) {
	const pause = 500 * time.Millisecond
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.URL+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("publish over HTTP: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+target.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("publish over HTTP: %w", ctx.Err())
		}
		return pause, nil // ingest away or restarting
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			return time.Duration(s) * time.Second, nil
		}
		return pause, nil
	case resp.StatusCode >= 500:
		return pause, nil
	}
	return 0, fmt.Errorf("publish over HTTP: %s: %.500s", resp.Status, answer)
}
