package dlr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
)

// Targets of the HTTP callbacks a status event asks for: a retry record
// names its own in headerTarget, so that retrying one does not repeat the
// other.
const (
	headerTarget  = "sluice-webhook-target"
	targetWebhook = "webhook" // the tenant's webhook (a record without the header too)
	targetDLRURL  = "dlr_url" // the message's Kannel dlr-url
	// targetMOWebhook is the tenant's mo_webhook, the one target of an
	// sms.mo record.
	targetMOWebhook = "mo_webhook"
)

// callback is one HTTP delivery of one event.
type callback struct {
	target string
	tenant string
	at     time.Time // the event's time, from which webhook_give_up counts
	id     string    // the event's id, for logs
	send   func(ctx context.Context) error
}

// callbacks are the deliveries an event asks for: the tenant's webhook, if
// it has one, and the message's dlr-url when its mask selects the event.
func (w *webhooks) callbacks(body []byte) []callback {
	var ev message.Status
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil
	}
	var out []callback
	for _, target := range []string{targetWebhook, targetDLRURL} {
		if c, ok := w.callbackFor(target, ev, body); ok {
			out = append(out, c)
		}
	}
	return out
}

// moCallbacks are the deliveries an sms.mo record asks for: the tenant's
// mo_webhook, if it has one.
func (w *webhooks) moCallbacks(body []byte) []callback {
	if c, ok := w.moCallback(body); ok {
		return []callback{c}
	}
	return nil
}

func (w *webhooks) moCallback(body []byte) (callback, bool) {
	var mo message.MO
	if err := json.Unmarshal(body, &mo); err != nil {
		return callback{}, false
	}
	t, ok := w.moTenants[mo.Tenant]
	if !ok {
		return callback{}, false
	}
	return callback{target: targetMOWebhook, tenant: t.ID, at: mo.ReceivedAt, id: mo.MOID, send: func(ctx context.Context) error {
		return w.deliver(ctx, t, targetMOWebhook, t.MOWebhook, mo.MOID, body)
	}}, true
}

// callbackOf is the delivery of one target an event asks for, if any.
func (w *webhooks) callbackOf(target string, body []byte) (callback, bool) {
	if target == targetMOWebhook {
		return w.moCallback(body)
	}
	var ev message.Status
	if err := json.Unmarshal(body, &ev); err != nil {
		return callback{}, false
	}
	return w.callbackFor(target, ev, body)
}

// callbackFor is callbackOf for the event ev, decoded from body.
func (w *webhooks) callbackFor(target string, ev message.Status, body []byte) (callback, bool) {
	switch target {
	case "", targetWebhook:
		t, ok := w.tenants[ev.Tenant]
		if !ok {
			return callback{}, false
		}
		return callback{target: targetWebhook, tenant: t.ID, at: ev.EventTime, id: ev.EventID, send: func(ctx context.Context) error {
			return w.deliver(ctx, t, targetWebhook, t.Webhook, ev.EventID, body)
		}}, true
	case targetDLRURL:
		if ev.DLRCallback == nil || !w.kannel[ev.Tenant] {
			return callback{}, false
		}
		typ := kannelType(ev, ev.DLRCallback.Mask)
		if typ == 0 {
			return callback{}, false
		}
		u := kannelURL(ev.DLRCallback.URL, ev, typ)
		return callback{target: targetDLRURL, tenant: ev.Tenant, at: ev.EventTime, id: ev.EventID, send: func(ctx context.Context) error { return w.fetchDLRURL(ctx, ev.Tenant, u) }}, true
	}
	return callback{}, false
}

// kannelTenants are the tenants that may send with a dlr-url: those of the
// Kannel front door. An event of another tenant names no URL to call.
func kannelTenants(tenants []config.Tenant) map[string]bool {
	out := map[string]bool{}
	for _, t := range tenants {
		if t.KannelUsername != "" {
			out[t.ID] = true
		}
	}
	return out
}

// fetchDLRURL fires a dlr-url as smsbox does, by GET; any answer but 2xx
// is a failure, retried like a webhook.
func (w *webhooks) fetchDLRURL(ctx context.Context, tenant, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("dlr-url of tenant %s: not a URL", tenant)
	}
	resp, err := w.client.Do(req)
	if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
		// The URL may hold a token: keep it out of errors and logs.
		err = fmt.Errorf("dlr-url of tenant %s: %s: %w", tenant, uerr.Op, uerr.Err)
	}
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			err = fmt.Errorf("dlr-url of tenant %s answered %s", tenant, resp.Status)
		}
	}
	w.count(ctx, targetDLRURL, err)
	return err
}
