package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"

	"github.com/sluice-sms/sluice/pkg/message"
)

// SendSMSPath is the Kannel-compatible front door: smsbox's sendsms-url.
const SendSMSPath = "/cgi-bin/sendsms"

// kannelAnswer is one of Kannel's sendsms answers: smsbox's texts, with its
// HTTP statuses (gw/smsbox.c).
type kannelAnswer struct {
	status int
	text   string
}

// The answers this front door gives, as Kannel words them.
var (
	kannelAccepted     = kannelAnswer{http.StatusAccepted, "0: Accepted for delivery"}
	kannelQueued       = kannelAnswer{http.StatusAccepted, "3: Queued for later delivery"}
	kannelAuthFailed   = kannelAnswer{http.StatusForbidden, "Authorization failed for sendsms"}
	kannelNoTo         = kannelAnswer{http.StatusBadRequest, "Missing receiver number, rejected"}
	kannelEmptyTo      = kannelAnswer{http.StatusBadRequest, "Empty receiver number not allowed, rejected"}
	kannelDenied       = kannelAnswer{http.StatusBadRequest, "Number(s) has/have been denied by white- and/or black-lists."}
	kannelNoSender     = kannelAnswer{http.StatusBadRequest, "Sender missing and no global set, rejected"}
	kannelBadDLRURL    = kannelAnswer{http.StatusBadRequest, "DLR-URL field misformed, rejected"}
	kannelBadDLRMask   = kannelAnswer{http.StatusBadRequest, "DLR-Mask field misformed, rejected"}
	kannelBadCoding    = kannelAnswer{http.StatusBadRequest, "Coding field misformed, rejected"}
	kannelBadValidity  = kannelAnswer{http.StatusBadRequest, "Validity field misformed, rejected"}
	kannelBadDeferred  = kannelAnswer{http.StatusBadRequest, "Deferred field misformed, rejected"}
	kannelBadCharset   = kannelAnswer{http.StatusBadRequest, "Charset or body misformed, rejected"}
	kannelBadUDH       = kannelAnswer{http.StatusBadRequest, "UDH field misformed, rejected"}
	kannelContentType  = kannelAnswer{http.StatusBadRequest, "Invalid content-type"}
	kannelTemporary    = kannelAnswer{http.StatusServiceUnavailable, "Temporal failure, try again later."}
	kannelTooManyCalls = kannelAnswer{http.StatusTooManyRequests, "Temporal failure, try again later."}
)

// Kannel's codings (the sendsms coding parameter).
const (
	kannelUndefined = -1 // a parameter not given, or not a number
	coding7Bit      = 0
	coding8Bit      = 1
	codingUCS2      = 2
)

// kannelNumberChars are smsbox's default sendsms-chars: a receiver with any
// other character is denied.
const kannelNumberChars = "0123456789 +-"

// maxKannelReceivers bounds the receivers of one request, like the JSON
// API's batch.
const maxKannelReceivers = MaxBatch

// sendSMS is a parsed sendsms request, after authentication.
type sendSMS struct {
	To       []string // receivers, international with '+', each once
	Denied   []string // receivers refused for their characters, as given
	From     string
	Text     string
	DLRURL   string
	DLRMask  int // 0: no callbacks
	Deferred int // minutes; kannelUndefined: now
	Validity int // minutes; kannelUndefined: the default
}

// kannelUser is what a sendsms-user configures beyond its credentials.
type kannelUser struct {
	tenant        string
	defaultSender string
	dlrURL        string
}

// kannelCredentials are the username and password of a request, under
// either of the names smsbox accepts.
func kannelCredentials(q url.Values) (user, pass string, ok bool) {
	user, uok := firstOf(q, "username", "user")
	pass, pok := firstOf(q, "password", "pass")
	return user, pass, uok && pok
}

// firstOf is the first given of the parameters names (Kannel's deprecated
// spellings after the current one).
func firstOf(q url.Values, names ...string) (string, bool) {
	for _, n := range names {
		if vs, ok := q[n]; ok && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

// kannelInt reads a number the way smsbox does (sscanf "%d"): leading
// blanks, a sign and the digits that follow; no digits is undefined.
func kannelInt(q url.Values, names ...string) int {
	s, ok := firstOf(q, names...)
	if !ok {
		return kannelUndefined
	}
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	digits := end
	for end < len(s) && s[end] >= '0' && s[end] <= '9' && end-digits < 10 {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil || end == digits {
		return kannelUndefined
	}
	return n
}

// parseSendSMS reads the parameters of an authenticated sendsms request in
// the order smsbox checks them, so that a request with several faults gets
// Kannel's answer to the first.
func parseSendSMS(q url.Values, u kannelUser) (sendSMS, *kannelAnswer) {
	to, ok := firstOf(q, "to")
	switch {
	case !ok:
		return sendSMS{}, &kannelNoTo
	case to == "":
		return sendSMS{}, &kannelEmptyTo
	}
	if udh, _ := firstOf(q, "udh"); udh != "" {
		// sluice sends text, and makes its own UDH for long messages.
		return sendSMS{}, &kannelBadUDH
	}
	var req sendSMS
	req.To, req.Denied = kannelReceivers(to)
	switch {
	case len(req.To) == 0:
		return sendSMS{}, &kannelDenied
	case len(req.To) > maxKannelReceivers:
		return sendSMS{}, &kannelAnswer{http.StatusBadRequest, fmt.Sprintf("At most %d receivers per request, rejected", maxKannelReceivers)}
	}
	req.From, _ = firstOf(q, "from")
	if req.From == "" {
		req.From = u.defaultSender
	}
	if req.From == "" {
		return sendSMS{}, &kannelNoSender
	}
	if ans := req.dlr(q, u); ans != nil {
		return sendSMS{}, ans
	}
	coding := kannelInt(q, "coding")
	if coding < kannelUndefined || coding > codingUCS2 {
		return sendSMS{}, &kannelBadCoding
	}
	if req.Validity = kannelInt(q, "validity"); req.Validity < kannelUndefined {
		return sendSMS{}, &kannelBadValidity
	}
	if req.Deferred = kannelInt(q, "deferred"); req.Deferred < kannelUndefined {
		return sendSMS{}, &kannelBadDeferred
	}
	raw, _ := firstOf(q, "text")
	charset, _ := firstOf(q, "charset")
	text, err := kannelText(raw, charset, coding)
	if err != nil {
		return sendSMS{}, &kannelBadCharset
	}
	req.Text = text
	return req, nil
}

// dlr reads dlr-url and dlr-mask (and their deprecated spellings): the URL
// must be http(s), the mask Kannel's 6 bits. A mask without a URL takes the
// user's dlr-url; a mask of -1 or 0 asks for no callbacks.
func (req *sendSMS) dlr(q url.Values, u kannelUser) *kannelAnswer {
	req.DLRURL, _ = firstOf(q, "dlr-url", "dlrurl")
	if req.DLRURL != "" {
		lower := strings.ToLower(req.DLRURL)
		if len(req.DLRURL) < 8 || !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
			return &kannelBadDLRURL
		}
	}
	mask := kannelInt(q, "dlr-mask", "dlrmask")
	if mask < kannelUndefined || mask > 63 {
		return &kannelBadDLRMask
	}
	req.DLRMask = max(mask, 0)
	if req.DLRURL == "" {
		req.DLRURL = u.dlrURL
	}
	if req.DLRURL == "" {
		req.DLRMask = 0 // nowhere to call
	}
	return nil
}

// kannelReceivers splits to into receivers as smsbox does (on blanks; a
// '+' in a query string is a blank too, so an international number's '+'
// comes as %2B), denies those with characters outside sendsms-chars, and
// writes the others in E.164 form for the shared validation: "-" dropped,
// "00" or no prefix read as international. A receiver given twice is sent
// once.
func kannelReceivers(to string) (allowed, denied []string) {
	for _, r := range strings.Fields(to) {
		if strings.Trim(r, kannelNumberChars) != "" {
			denied = append(denied, r)
			continue
		}
		n := strings.ReplaceAll(r, "-", "")
		switch {
		case strings.HasPrefix(n, "+"):
		case strings.HasPrefix(n, "00"):
			n = "+" + n[2:]
		default:
			n = "+" + n
		}
		if !slices.Contains(allowed, n) {
			allowed = append(allowed, n)
		}
	}
	return allowed, denied
}

var errCharset = errors.New("text not in its charset")

// kannelText decodes text to UTF-8. As in smsbox, charset names the
// encoding of the text parameter; without one, 7- and 8-bit texts are
// UTF-8 and UCS-2 texts are UTF-16BE octets. Whatever the coding, sluice
// then picks GSM-7 or UCS-2 from the characters, as on its other doors.
func kannelText(raw, charset string, coding int) (string, error) {
	if charset == "" {
		if coding == codingUCS2 {
			return decodeUTF16BE([]byte(raw))
		}
		return raw, nil // checked as UTF-8 by the shared validation
	}
	switch strings.ToUpper(charset) {
	case "UTF-8", "UTF8":
		return raw, nil
	case "UTF-16BE", "UCS-2", "UCS2", "UCS-2BE", "ISO-10646-UCS-2":
		return decodeUTF16BE([]byte(raw))
	}
	enc, err := ianaindex.IANA.Encoding(charset)
	if err != nil || enc == nil {
		return "", errCharset
	}
	if enc == unicode.UTF8 {
		return raw, nil
	}
	return decodeCharset(enc, raw)
}

// decodeCharset decodes with enc and refuses what it would replace.
func decodeCharset(enc encoding.Encoding, raw string) (string, error) {
	s, err := enc.NewDecoder().String(raw)
	if err != nil || strings.ContainsRune(s, utf8.RuneError) && !strings.ContainsRune(raw, utf8.RuneError) {
		return "", errCharset
	}
	return s, nil
}

// decodeUTF16BE decodes UTF-16BE octets, refusing an odd length and lone
// surrogates (which a decoder would turn into U+FFFD).
func decodeUTF16BE(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errCharset
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	for i := 0; i < len(units); i++ {
		switch u := units[i]; {
		case utf16.IsSurrogate(rune(u)) && u < 0xdc00 && i+1 < len(units) && units[i+1] >= 0xdc00 && units[i+1] <= 0xdfff:
			i++ // a pair
		case utf16.IsSurrogate(rune(u)):
			return "", errCharset
		}
	}
	return string(utf16.Decode(units)), nil
}

// requests are the messages of a parsed sendsms request, one per receiver.
// Kannel's deferred and validity are minutes from now.
func (req sendSMS) requests(tenant string, now time.Time) []*message.Request {
	out := make([]*message.Request, len(req.To))
	for i, to := range req.To {
		r := message.Request{Tenant: tenant, From: req.From, To: to, Text: req.Text}
		if req.Validity > 0 {
			r.Validity = strconv.Itoa(req.Validity) + "m"
		}
		if req.Deferred > 0 {
			r.SendAt = now.Add(time.Duration(req.Deferred) * time.Minute).UTC().Format(time.RFC3339)
		}
		out[i] = &r
	}
	return out
}
