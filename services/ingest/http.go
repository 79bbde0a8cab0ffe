package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
)

// HTTP API limits.
const (
	MaxBatch    = 1000    // messages per POST
	MaxBodySize = 8 << 20 // bytes per POST: 1000 messages of about 8 KB
)

// HTTP-only error codes; the message codes are those of FieldError.
const (
	CodeUnauthorized       = "unauthorized"
	CodeRateLimited        = "rate_limited"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeBodyTooLarge       = "body_too_large"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodeEmptyBatch         = "empty_batch"
	CodeBatchTooLarge      = "batch_too_large"
	CodeDuplicateClientRef = "duplicate_client_ref"
	CodeUnavailable        = "unavailable"
)

// apiMessage is one message of POST /v1/messages: an sms.requests record
// without tenant, which comes from the API key.
type apiMessage struct {
	ClientRef  string            `json:"client_ref,omitempty"`
	CampaignID string            `json:"campaign_id,omitempty"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Text       string            `json:"text"`
	Priority   string            `json:"priority,omitempty"`
	SendAt     string            `json:"send_at,omitempty"`
	Validity   string            `json:"validity,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
}

func (m apiMessage) request(tenant string) message.Request {
	return message.Request{
		Tenant: tenant, ClientRef: m.ClientRef, CampaignID: m.CampaignID, From: m.From, To: m.To,
		Text: m.Text, Priority: m.Priority, SendAt: m.SendAt, Validity: m.Validity, Metadata: m.Metadata,
	}
}

// Result is what POST /v1/messages answers for each accepted message.
type Result struct {
	MessageID string `json:"message_id"`
	ClientRef string `json:"client_ref,omitempty"`
	Segments  int    `json:"segments"`
	Encoding  string `json:"encoding"`
	// Duplicate is set when (tenant, client_ref) was accepted before, within
	// the idempotency window: nothing new was sent.
	Duplicate bool `json:"duplicate,omitempty"`
}

// APIError is one error of an HTTP error body; Index is the position of the
// message in a batch.
type APIError struct {
	Index *int `json:"index,omitempty"`
	FieldError
}

// ErrorBody is the body of every HTTP error answer.
type ErrorBody struct {
	Errors []APIError `json:"errors"`
}

// tenantKey is one accepted API key hash.
type tenantKey struct {
	hash   []byte
	tenant string
}

// api serves the HTTP front door.
type api struct {
	in       *intake
	keys     []tenantKey
	kannel   []kannelKey
	limiters map[string]*rate.Limiter
	latency  metric.Float64Histogram
}

func newAPI(in *intake, tenants []config.Tenant, m metric.Meter) (*api, error) {
	a := &api{in: in, limiters: map[string]*rate.Limiter{}}
	for _, t := range tenants {
		for _, h := range t.APIKeySHA256 {
			b, err := hex.DecodeString(h)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: api key hash: %w", t.ID, err)
			}
			a.keys = append(a.keys, tenantKey{hash: b, tenant: t.ID})
		}
		if t.KannelUsername != "" {
			k, err := newKannelKey(t)
			if err != nil {
				return nil, err
			}
			a.kannel = append(a.kannel, k)
		}
		if t.HTTPRateLimit > 0 {
			a.limiters[t.ID] = rate.NewLimiter(rate.Limit(t.HTTPRateLimit), t.HTTPRateLimit)
		}
	}
	var err error
	a.latency, err = m.Float64Histogram("sluice_ingest_http_request_duration_seconds",
		metric.WithDescription("HTTP API request latency"), metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("metric: %w", err)
	}
	return a, nil
}

// Handler returns the routes of the HTTP API.
func (a *api) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", a.route("POST /v1/messages", a.post))
	mux.Handle("GET /v1/messages/{id}", a.route("GET /v1/messages/{id}", a.get))
	// Answer everything else in the API's own error format too.
	mux.Handle("/v1/messages", methodNotAllowed(http.MethodPost))
	mux.Handle("/v1/messages/{id}", methodNotAllowed(http.MethodGet))
	if len(a.kannel) > 0 {
		mux.Handle("GET "+SendSMSPath, a.instrument("GET "+SendSMSPath, a.sendSMS))
		mux.Handle("POST "+SendSMSPath, a.instrument("POST "+SendSMSPath, a.sendSMS))
		mux.Handle(SendSMSPath, methodNotAllowed("GET, POST"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, FieldError{Code: CodeNotFound, Message: "no such endpoint"})
	})
	return mux
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, FieldError{Code: CodeMethodNotAllowed, Message: r.Method + " is not allowed here, only " + allow})
	})
}

type tenantHandler func(w http.ResponseWriter, r *http.Request, tenant string) int

var httpPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// route wraps a handler with a server span, authentication, the tenant's
// request rate limit and the latency metric.
func (a *api) route(name string, h tenantHandler) http.Handler {
	return a.instrument(name, func(w http.ResponseWriter, r *http.Request) int {
		tenant, ok := a.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			return writeError(w, http.StatusUnauthorized, FieldError{Code: CodeUnauthorized, Message: "a valid API key is required: Authorization: Bearer <key>"})
		}
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("sluice.tenant", tenant))
		if wait, limited := a.limit(tenant, a.in.now()); limited {
			setRetryAfter(w, wait)
			return writeError(w, http.StatusTooManyRequests, FieldError{Code: CodeRateLimited, Message: "request rate limit of the tenant exceeded"})
		}
		return h(w, r, tenant)
	})
}

// instrument wraps a handler, which returns the status it answered, with a
// server span and the latency metric.
func (a *api) instrument(name string, h func(w http.ResponseWriter, r *http.Request) int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := httpPropagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := a.in.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		status := h(w, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		a.latency.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			attribute.String("route", name), attribute.Int("code", status)))
	})
}

func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
}

// authenticate finds the tenant of the request's API key. Every configured
// hash is compared, in constant time, whatever matches.
func (a *api) authenticate(r *http.Request) (string, bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	tenant := ""
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], k.hash) == 1 {
			tenant = k.tenant
		}
	}
	return tenant, tenant != ""
}

// limit takes one request from the tenant's budget, or says how long until
// one is available.
func (a *api) limit(tenant string, now time.Time) (time.Duration, bool) {
	l, ok := a.limiters[tenant]
	if !ok || l.AllowN(now, 1) {
		return 0, false
	}
	res := l.ReserveN(now, 1)
	defer res.CancelAt(now)
	return res.DelayFrom(now), true
}

func (a *api) get(w http.ResponseWriter, r *http.Request, tenant string) int {
	value, ok, err := a.in.store.get(r.Context(), tenant, r.PathValue("id"))
	if err != nil {
		return writeError(w, http.StatusServiceUnavailable, FieldError{Code: CodeUnavailable, Message: "status index unavailable; retry"})
	}
	if !ok {
		return writeError(w, http.StatusNotFound, FieldError{Code: CodeNotFound, Message: "no such message"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(value)
	return http.StatusOK
}

func (a *api) post(w http.ResponseWriter, r *http.Request, tenant string) int {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return writeError(w, http.StatusUnsupportedMediaType, FieldError{Code: CodeUnsupportedMedia, Message: "the body must be application/json"})
		}
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, http.StatusRequestEntityTooLarge, FieldError{Code: CodeBodyTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", MaxBodySize)})
		}
		return writeError(w, http.StatusBadRequest, FieldError{Code: CodeMalformedJSON, Message: "could not read the body"})
	}
	reqs, batch, errs := DecodeBody(body, tenant)
	if reqs == nil {
		a.in.rejected(r.Context(), frontHTTP, errs)
		return writeErrors(w, http.StatusBadRequest, errs)
	}
	results, errs, err := a.in.acceptHTTP(r.Context(), tenant, reqs, batch, errs)
	switch {
	case err != nil:
		a.in.env.Log.ErrorContext(r.Context(), "accept over HTTP", "tenant", tenant, "messages", len(reqs), "err", err)
		return writeError(w, http.StatusServiceUnavailable, FieldError{Code: CodeUnavailable, Message: "could not store the messages; retry with the same client_ref"})
	case errs != nil:
		a.in.rejected(r.Context(), frontHTTP, errs)
		return writeErrors(w, http.StatusBadRequest, errs)
	}
	if batch {
		return writeJSON(w, http.StatusAccepted, struct {
			Messages []Result `json:"messages"`
		}{results})
	}
	return writeJSON(w, http.StatusAccepted, results[0])
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodySize))
	return buf.Bytes(), err
}

// DecodeBody parses the body of POST /v1/messages: one message, or
// {"messages": [...]} with 1 to MaxBatch of them. batch says which form it
// was. A message that cannot be decoded is nil in reqs and has an error
// naming its index; an error about the body as a whole comes with no reqs.
func DecodeBody(body []byte, tenant string) (reqs []*message.Request, batch bool, errs []APIError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, false, []APIError{{FieldError: *fieldErr(CodeMalformedJSON, "", "empty body")}}
	}
	var top map[string]skipped
	if ferr := decodeChecked(body, &top, false); ferr != nil {
		return nil, false, []APIError{{FieldError: *ferr}}
	}
	raws := []json.RawMessage{body}
	if _, ok := top["messages"]; ok {
		batch = true
		var envelope struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if ferr := decodeChecked(body, &envelope, false); ferr != nil {
			return nil, true, []APIError{{FieldError: *ferr}}
		}
		switch {
		case len(envelope.Messages) == 0: // [] or null
			return nil, true, []APIError{{FieldError: *fieldErr(CodeEmptyBatch, "messages", "at least one message is required")}}
		case len(envelope.Messages) > MaxBatch:
			return nil, true, []APIError{{FieldError: *fieldErr(CodeBatchTooLarge, "messages", "at most %d messages per request, got %d", MaxBatch, len(envelope.Messages))}}
		}
		raws = envelope.Messages
	}
	reqs = make([]*message.Request, len(raws))
	for i, raw := range raws {
		var m apiMessage
		if ferr := decodeStrict(raw, &m); ferr != nil {
			errs = append(errs, indexed(batch, i, *ferr))
			continue
		}
		req := m.request(tenant)
		reqs[i] = &req
	}
	return reqs, batch, errs
}

// skipped is a JSON value of any kind, checked by the decoder but not kept:
// the first pass over a body only looks for the "messages" key.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

func indexed(batch bool, i int, ferr FieldError) APIError {
	e := APIError{FieldError: ferr}
	if batch {
		e.Index = &i
	}
	return e
}

func writeError(w http.ResponseWriter, status int, e FieldError) int {
	return writeErrors(w, status, []APIError{{FieldError: e}})
}

func writeErrors(w http.ResponseWriter, status int, errs []APIError) int {
	return writeJSON(w, status, ErrorBody{Errors: errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
	return status
}

// serveHTTP runs the API on addr until ctx ends, then lets requests in
// flight finish.
func serveHTTP(ctx context.Context, addr string, h http.Handler, ready func(addr string)) error {
	ln, err := listen(ctx, addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	return serveOn(ctx, ln, h)
}

// serveOn serves h on ln until ctx ends, then shuts down gracefully.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http api shutdown: %w", err)
	}
	<-errc
	return nil
}

func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http api: %w", err)
	}
	return ln, nil
}
