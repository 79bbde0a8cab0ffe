package dlr

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
)

// Kannel's DLR types: the bits of a dlr-mask, and the %d of a dlr-url.
const (
	kannelDelivered = 1  // delivered to the handset
	kannelFailed    = 2  // not delivered to the handset
	kannelBuffered  = 4  // queued (sluice: scheduled)
	kannelSMSCAck   = 8  // the SMSC took it (sluice: submitted)
	kannelSMSCNack  = 16 // it never reached an SMSC (a carrier's refusal, or sluice's)
)

// kannelType is the DLR type a status event reports under mask, 0 for none.
// A final failure that never reached an SMSC is type 16, as in Kannel; under
// a mask that asks for 2 but not 16 it is reported as 2, so that a message's
// end is never silent for a client that asked to hear of failures.
func kannelType(st message.Status, mask uint32) int {
	typ := 0
	switch st.Status {
	case message.StatusScheduled:
		typ = kannelBuffered
	case message.StatusSubmitted:
		typ = kannelSMSCAck
	case message.StatusDelivered:
		typ = kannelDelivered
	case message.StatusUndelivered, message.StatusExpired, message.StatusFailed, message.StatusUnknown, message.StatusRejected:
		typ = kannelFailed
		if st.SubmittedAt == nil {
			typ = kannelSMSCNack
		}
	}
	switch {
	case typ == 0:
		return 0
	case mask&uint32(typ) != 0:
		return typ
	case typ == kannelSMSCNack && mask&kannelFailed != 0:
		return kannelFailed
	}
	return 0
}

// kannelURL fills in a dlr-url's escapes for one status event, as Kannel's
// smsbox does (gw/urltrans.c): values URL-encoded; an escape Kannel knows
// but sluice has no value for (%F, %a, %b…) is empty; an unknown one is
// kept as written.
func kannelURL(pattern string, st message.Status, typ int) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' || i+1 == len(pattern) {
			b.WriteByte(c)
			continue
		}
		i++
		b.WriteString(kannelEscape(pattern[i], st, typ))
	}
	return b.String()
}

// kannelEscapesEmpty are Kannel's escapes that sluice has no value for.
const kannelEscapesEmpty = "abBDfFkmMnoOrsSu"

func kannelEscape(c byte, st message.Status, typ int) string {
	from := ""
	if st.DLRCallback != nil {
		from = st.DLRCallback.From
	}
	switch c {
	case 'd':
		return strconv.Itoa(typ)
	case 'p', 'q':
		return url.QueryEscape(st.To)
	case 'P':
		return url.QueryEscape(from)
	case 'Q':
		if rest, ok := strings.CutPrefix(from, "00"); ok {
			from = "+" + rest
		}
		return url.QueryEscape(from)
	case 'A':
		return url.QueryEscape(kannelReply(st, typ))
	case 'T':
		return strconv.FormatInt(st.EventTime.Unix(), 10)
	case 't':
		return st.EventTime.UTC().Format("2006-01-02+15:04:05") // Kannel's '+': an encoded blank
	case 'i':
		return url.QueryEscape(st.Carrier)
	case 'I':
		return url.QueryEscape(st.MessageID)
	case 'c':
		if st.Encoding == message.EncodingUCS2 {
			return "2"
		}
		return "0"
	case 'C':
		if st.Encoding == message.EncodingUCS2 {
			return "UTF-16BE"
		}
		return "UTF-8"
	case '%':
		return "%"
	}
	if strings.IndexByte(kannelEscapesEmpty, c) >= 0 {
		return ""
	}
	return "%" + string(c)
}

// kannelReply is %A, the SMSC's answer as Kannel reports it: "ACK/" for a
// submit, "NACK/<code>/<reason>" for a refusal, and for a receipt its text
// in the SMPP 3.4 appendix B form.
func kannelReply(st message.Status, typ int) string {
	switch typ {
	case kannelSMSCAck:
		return "ACK/"
	case kannelBuffered:
		return "BUFFERED/" + st.Reason
	}
	if typ == kannelFailed && st.SubmittedAt != nil || typ == kannelDelivered {
		return receiptText(st)
	}
	return "NACK/" + st.ErrorCode + "/" + st.Reason
}

// receiptText is a receipt of a final status: id, parts, dates, stat, err.
func receiptText(st message.Status) string {
	delivered := 0
	if st.Status == message.StatusDelivered {
		delivered = max(st.Segments, 1)
	}
	err := st.ErrorCode
	if err == "" {
		err = "000"
	}
	return fmt.Sprintf("id:%s sub:%03d dlvrd:%03d submit date:%s done date:%s stat:%s err:%s",
		st.MessageID, max(st.Segments, 1), delivered, receiptDate(st.SubmittedAt), receiptDate(&st.EventTime), receiptStat(st.Status), err)
}

func receiptDate(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("0601021504")
}

func receiptStat(status string) string {
	switch status {
	case message.StatusDelivered:
		return "DELIVRD"
	case message.StatusUndelivered:
		return "UNDELIV"
	case message.StatusExpired:
		return "EXPIRED"
	case message.StatusUnknown:
		return "UNKNOWN"
	}
	return "REJECTD"
}
