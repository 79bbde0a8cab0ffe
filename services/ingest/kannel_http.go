package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Headers the Kannel front door adds to Kannel's answers: an application
// written for Kannel reads the body, a newer one can read these.
const (
	HeaderMessageID = "X-Sluice-Message-Id" // the ids of the accepted messages, one per receiver, comma-separated
	HeaderErrorCode = "X-Sluice-Error-Code" // the shared validation's code of a refused message
)

// kannelKey is one sendsms-user: the SHA-256 of its username and password.
type kannelKey struct {
	user, pass []byte
	kannelUser
}

func newKannelKey(t config.Tenant) (kannelKey, error) {
	pass, err := hex.DecodeString(t.KannelPasswordSHA256)
	if err != nil {
		return kannelKey{}, fmt.Errorf("tenant %s: kannel password hash: %w", t.ID, err)
	}
	user := sha256.Sum256([]byte(t.KannelUsername))
	return kannelKey{user: user[:], pass: pass, kannelUser: kannelUser{
		tenant: t.ID, defaultSender: t.KannelDefaultSender, dlrURL: t.KannelDLRURL,
	}}, nil
}

// authenticateKannel finds the sendsms-user of a username and password.
// Every user is compared, in constant time (hashes of equal length), so that
// neither names nor passwords can be timed.
func (a *api) authenticateKannel(user, pass string) (kannelUser, bool) {
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	var found kannelUser
	ok := false
	for _, k := range a.kannel {
		if subtle.ConstantTimeCompare(u[:], k.user)&subtle.ConstantTimeCompare(p[:], k.pass) == 1 {
			found, ok = k.kannelUser, true
		}
	}
	return found, ok
}

// sendSMS serves Kannel's sendsms: GET with the parameters in the query,
// POST with them in an application/x-www-form-urlencoded body (or the
// query). Each receiver becomes one message of an all-or-nothing batch of
// the shared HTTP path: the same validation, ids and durable write as POST
// /v1/messages, answered 202 only once Kafka has every record.
func (a *api) sendSMS(w http.ResponseWriter, r *http.Request) int {
	q, ans := kannelParams(w, r)
	if ans != nil {
		return writeKannel(w, *ans)
	}
	user, pass, _ := kannelCredentials(q)
	u, ok := a.authenticateKannel(user, pass)
	if !ok {
		return writeKannel(w, kannelAuthFailed)
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("sluice.tenant", u.tenant))
	if wait, limited := a.limit(u.tenant, a.in.now()); limited {
		setRetryAfter(w, wait)
		return writeKannel(w, kannelTooManyCalls)
	}
	req, ans := parseSendSMS(q, u)
	if ans != nil {
		a.in.rejected(r.Context(), frontKannel, []APIError{{FieldError: FieldError{Code: kannelParamsCode}}})
		return writeKannel(w, *ans)
	}
	if len(req.Denied) > 0 {
		a.in.env.Log.InfoContext(r.Context(), "sendsms receivers denied for their characters", "tenant", u.tenant, "denied", len(req.Denied))
	}
	return a.acceptSendSMS(w, r, u.tenant, req)
}

// acceptSendSMS publishes the messages of a parsed request.
func (a *api) acceptSendSMS(w http.ResponseWriter, r *http.Request, tenant string, req sendSMS) int {
	reqs := req.requests(tenant, a.in.now())
	door := httpDoor{front: frontKannel}
	if req.DLRMask != 0 {
		door.add = func(m *sluicepb.Message) { m.DlrUrl, m.DlrMask = req.DLRURL, uint32(req.DLRMask) }
	}
	results, errs, err := a.in.acceptMany(r.Context(), door, tenant, reqs, len(reqs) > 1, nil)
	switch {
	case err != nil:
		a.in.env.Log.ErrorContext(r.Context(), "accept over sendsms", "tenant", tenant, "messages", len(reqs), "err", err)
		return writeKannel(w, kannelTemporary)
	case errs != nil:
		a.in.rejected(r.Context(), frontKannel, errs)
		w.Header().Set(HeaderErrorCode, errs[0].Code)
		return writeKannel(w, kannelRefusal(req, errs[0]))
	}
	ids := make([]string, len(results))
	for i, res := range results {
		ids[i] = res.MessageID
	}
	w.Header().Set(HeaderMessageID, strings.Join(ids, ","))
	if req.Deferred > 0 {
		return writeKannel(w, kannelQueued)
	}
	return writeKannel(w, kannelAccepted)
}

// kannelRefusal words a refusal of the shared validation as smsbox words
// its own field errors ("…, rejected"), naming the receiver when there
// are several. Kannel itself has no such checks: it would take the message
// and fail it later.
func kannelRefusal(req sendSMS, e APIError) kannelAnswer {
	text := e.FieldError.Error()
	if e.Index != nil && *e.Index < len(req.To) {
		text = fmt.Sprintf("%s (receiver %s)", text, req.To[*e.Index])
	}
	return kannelAnswer{http.StatusBadRequest, text + ", rejected"}
}

// kannelParams are a request's parameters: the query of a GET, the form
// (and the query) of a POST.
func kannelParams(w http.ResponseWriter, r *http.Request) (url.Values, *kannelAnswer) {
	if r.Method != http.MethodPost {
		return r.URL.Query(), nil // GET or HEAD: the mux lets no other through
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &kannelContentType
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodySize)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &kannelAnswer{http.StatusRequestEntityTooLarge, "Request too large, rejected"}
		}
		return nil, &kannelAnswer{http.StatusBadRequest, "Malformed form body, rejected"}
	}
	return r.Form, nil
}

// writeKannel answers as smsbox does: the text, as text/html.
func writeKannel(w http.ResponseWriter, ans kannelAnswer) int {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(ans.status)
	_, _ = w.Write([]byte(ans.text)) // the client went away: nothing to do
	return ans.status
}

// kannelParamsCode counts, in sluice_ingest_rejected_total, requests refused
// with one of Kannel's own parameter answers.
const kannelParamsCode = "kannel_parameters"
