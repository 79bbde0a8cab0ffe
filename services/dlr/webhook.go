package dlr

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/schemas"
)

// Headers of a webhook request. The body is the sms.status event (or, to a
// mo_webhook, the sms.mo record), as JSON.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// tenant's webhook_secret, of the timestamp header, a '.', and the body.
	HeaderSignature = "X-Sluice-Signature"
	HeaderTimestamp = "X-Sluice-Timestamp" // Unix seconds when the request was signed
	HeaderEventID   = "X-Sluice-Event-Id"  // event_id (mo_id of an MO), the same for every retry
)

// Headers of a sluice.webhooks.retry record.
const (
	headerAttempt = "sluice-webhook-attempt" // failed attempts so far, decimal
	headerDue     = "sluice-webhook-due"     // next attempt, Unix milliseconds
)

// Consumer groups of the webhook deliveries.
const (
	GroupWebhooks     = "sluice-dlr-webhooks"
	GroupMOWebhooks   = "sluice-dlr-mo-webhooks"
	GroupWebhookRetry = "sluice-dlr-webhook-retry"
)

const (
	webhookParallel   = 16
	webhookMaxBackoff = 10 * time.Minute
)

// Sign returns the X-Sluice-Signature value of a body sent at timestamp.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify tells, in constant time, whether signature is body's.
func Verify(secret, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

// webhooks posts every sms.status event of a tenant with a webhook URL to
// it, every sms.mo record of a tenant with an mo_webhook to that, and fires the Kannel dlr-url of a message for each event its dlr-mask
// selects, at least once. They run in their own consumer groups, so a slow or
// dead endpoint delays webhooks only, never correlation: a delivery that
// fails goes to sluice.webhooks.retry and is tried again with backoff until
// webhook_give_up after the event.
type webhooks struct {
	tenants   map[string]config.Tenant // with a webhook
	moTenants map[string]config.Tenant // with an mo_webhook
	kannel    map[string]bool          // tenants of the Kannel front door
	cfg       config.DLR
	client    *http.Client
	env       *service.Env
	m         *metrics
}

func newWebhooks(env *service.Env, m *metrics) *webhooks {
	tenants, moTenants := map[string]config.Tenant{}, map[string]config.Tenant{}
	for _, t := range env.Cfg.Tenants {
		if t.Webhook != "" {
			tenants[t.ID] = t
		}
		if t.MOWebhook != "" {
			moTenants[t.ID] = t
		}
	}
	return &webhooks{tenants: tenants, moTenants: moTenants, kannel: kannelTenants(env.Cfg.Tenants), cfg: env.Cfg.DLR, client: &http.Client{Timeout: env.Cfg.DLR.WebhookTimeout}, env: env, m: m}
}

// run delivers new events and retries failed ones until ctx ends.
func (w *webhooks) run(ctx context.Context) error {
	var runs []func(context.Context) error
	if len(w.tenants) > 0 || len(w.kannel) > 0 {
		runs = append(runs, func(ctx context.Context) error {
			return w.runFirst(ctx, w.env.Group(GroupWebhooks, schemas.TopicStatus), w.callbacks)
		})
	}
	if len(w.moTenants) > 0 {
		runs = append(runs, func(ctx context.Context) error {
			return w.runFirst(ctx, w.env.Group(GroupMOWebhooks, schemas.TopicPublicMO), w.moCallbacks)
		})
	}
	if len(runs) == 0 {
		<-ctx.Done()
		return nil
	}
	return runAll(ctx, append(runs, w.runRetries))
}

// runFirst tries each event of group's topic once, a batch's deliveries in
// parallel; the ones that fail go to the retry topic.
func (w *webhooks) runFirst(ctx context.Context, group kafka.GroupConfig, callbacks func([]byte) []callback) error {
	retryTopic := w.env.Topic(schemas.TopicWebhookRetry)
	return kafka.ConsumeBatches(ctx, group, kafka.BatchOptions{Max: 500, Linger: 5 * time.Millisecond}, func(ctx context.Context, _ string, batch []kafka.Message) error {
		var (
			mu      sync.Mutex
			retries []kafka.Message
			wg      sync.WaitGroup
			slots   = make(chan struct{}, webhookParallel)
		)
		for _, rec := range batch {
			for _, cb := range callbacks(rec.Value) {
				wg.Add(1)
				slots <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-slots }()
					if err := cb.send(ctx); err != nil {
						w.env.Log.Warn("webhook failed; will retry", "tenant", cb.tenant, "target", cb.target, "err", err)
						mu.Lock()
						retries = append(retries, w.retryRecord(retryTopic, rec, cb.target, 1))
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		return w.env.Producer.Produce(ctx, retries...)
	})
}

// runRetries takes the retry topic in order, waiting for each record's due
// time; a failure goes back to the topic with the next due time.
func (w *webhooks) runRetries(ctx context.Context) error {
	topic := w.env.Topic(schemas.TopicWebhookRetry)
	return kafka.RunGroup(ctx, w.env.Group(GroupWebhookRetry, schemas.TopicWebhookRetry), func(ctx context.Context, c *kafka.Claim) error {
		for ctx.Err() == nil {
			batch, err := c.FetchBatch(ctx, topic, time.Second, kafka.BatchOptions{Max: 100, Linger: time.Millisecond})
			if err != nil {
				return err
			}
			for _, rec := range batch {
				// ctx ends on a stop or a rebalance: the record is not
				// committed and will be tried again.
				if err := w.redeliver(ctx, topic, rec); err != nil {
					return err
				}
				if err := c.Commit(topic, rec.Offset+1); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// redeliver makes the next attempt of a retry record when it is due.
func (w *webhooks) redeliver(ctx context.Context, topic string, rec kafka.Message) error {
	attempt, due, target := 1, time.Now(), targetWebhook
	for _, h := range rec.Headers {
		switch h.Key {
		case headerTarget:
			target = string(h.Value)
		case headerAttempt:
			attempt, _ = strconv.Atoi(string(h.Value)) // bad header: retry as the first
		case headerDue:
			if ms, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				due = time.UnixMilli(ms)
			}
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(due)):
	}
	cb, ok := w.callbackOf(target, rec.Value)
	if !ok {
		return nil // the tenant's webhook (or Kannel door) was removed from the config
	}
	err := cb.send(ctx)
	if err == nil {
		return nil
	}
	if time.Since(cb.at) > w.cfg.WebhookGiveUp {
		w.m.webhooks.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "abandoned"), attribute.String("target", cb.target)))
		w.env.Log.Error("webhook abandoned", "tenant", cb.tenant, "target", cb.target, "event_id", cb.id, "attempts", attempt+1, "err", err)
		return nil
	}
	return w.env.Producer.Produce(ctx, w.retryRecord(topic, rec, cb.target, attempt+1))
}

// retryRecord schedules the next attempt after failed ones.
func (w *webhooks) retryRecord(topic string, rec kafka.Message, target string, failed int) kafka.Message {
	backoff := w.cfg.WebhookBackoff << min(failed-1, 20)
	backoff = min(backoff, webhookMaxBackoff)
	return kafka.Message{Topic: topic, Key: rec.Key, Value: rec.Value, Headers: []kafka.Header{
		{Key: headerAttempt, Value: []byte(strconv.Itoa(failed))},
		{Key: headerDue, Value: []byte(strconv.FormatInt(time.Now().Add(backoff).UnixMilli(), 10))},
		{Key: headerTarget, Value: []byte(target)},
	}}
}

// deliver posts one event of tenant t to its target at u; any answer but
// 2xx is a failure.
func (w *webhooks) deliver(ctx context.Context, t config.Tenant, target, u, eventID string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderEventID, eventID)
	if t.WebhookSecret != "" {
		req.Header.Set(HeaderSignature, Sign(t.WebhookSecret, ts, body))
	}
	resp, err := w.client.Do(req)
	if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
		// The URL may hold a token: keep it out of errors and logs.
		err = fmt.Errorf("%s of tenant %s: %s: %w", target, t.ID, uerr.Op, uerr.Err)
	}
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			err = fmt.Errorf("%s of tenant %s answered %s", target, t.ID, resp.Status)
		}
	}
	w.count(ctx, target, err)
	return err
}

// count records one delivery attempt of target.
func (w *webhooks) count(ctx context.Context, target string, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	w.m.webhooks.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result), attribute.String("target", target)))
}
