package smpp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Receipt-related TLV tags (SMPP 3.4 section 5.3.2).
const (
	TagReceiptedMessageID uint16 = 0x001E // SMSC message id the receipt is about, C-string
	TagNetworkErrorCode   uint16 = 0x0423 // 3 octets: network type, error code (2)
	TagMessageState       uint16 = 0x0427 // 1 octet, one of the MessageState values
	TagMessagePayload     uint16 = 0x0424 // message body beyond short_message's 254 octets
)

// message_state values (SMPP 3.4 section 5.2.28).
const (
	MessageStateEnroute       uint8 = 1
	MessageStateDelivered     uint8 = 2
	MessageStateExpired       uint8 = 3
	MessageStateDeleted       uint8 = 4
	MessageStateUndeliverable uint8 = 5
	MessageStateAccepted      uint8 = 6
	MessageStateUnknown       uint8 = 7
	MessageStateRejected      uint8 = 8
)

// The "stat" values of the receipt text, SMPP 3.4 appendix B.
const (
	StatDelivered     = "DELIVRD"
	StatExpired       = "EXPIRED"
	StatDeleted       = "DELETED"
	StatUndeliverable = "UNDELIV"
	StatAccepted      = "ACCEPTD"
	StatUnknown       = "UNKNOWN"
	StatRejected      = "REJECTD"
	StatEnroute       = "ENROUTE"
)

var statStates = map[string]uint8{
	StatEnroute:       MessageStateEnroute,
	StatDelivered:     MessageStateDelivered,
	StatExpired:       MessageStateExpired,
	StatDeleted:       MessageStateDeleted,
	StatUndeliverable: MessageStateUndeliverable,
	StatAccepted:      MessageStateAccepted,
	StatUnknown:       MessageStateUnknown,
	StatRejected:      MessageStateRejected,
}

// MessageStateOf maps a receipt "stat" value to its message_state.
func MessageStateOf(stat string) (uint8, bool) {
	s, ok := statStates[strings.ToUpper(stat)]
	return s, ok
}

// StatOf maps a message_state to its receipt "stat" value.
func StatOf(state uint8) (string, bool) {
	for stat, st := range statStates {
		if st == state {
			return stat, true
		}
	}
	return "", false
}

// Receipt is the text of an SMSC delivery receipt.
type Receipt struct {
	ID                   string
	Sub, Dlvrd           int
	SubmitDate, DoneDate time.Time // UTC; the text carries no zone
	Stat, Err, Text      string
}

// ErrNotReceipt means the text has no "id:" field.
var ErrNotReceipt = errors.New("smpp: not a delivery receipt")

const (
	receiptDate        = "0601021504"
	receiptDateSeconds = "060102150405"
)

// receiptKeys are the fields before "text:", longest first where one is a suffix of
// another's words.
var receiptKeys = []string{"submit date:", "done date:", "dlvrd:", "stat:", "sub:", "err:", "id:"}

// ParseReceipt reads the de-facto standard receipt text
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//
// Keys are matched in any case and order; missing fields stay zero, and so do numbers or
// dates that do not parse (12-digit dates with seconds are accepted). Stat is upper-cased.
// Only a missing "id:" is an error.
func ParseReceipt(b []byte) (Receipt, error) {
	s := string(b)
	lower := asciiLower(s) // byte for byte, so indexes into it are indexes into s
	var r Receipt
	// text: runs to the end and may contain anything, keys included.
	if i := keyIndex(lower, "text:"); i >= 0 {
		r.Text = s[i+len("text:"):]
		s, lower = s[:i], lower[:i]
	}
	found := false
	for i := 0; i < len(s); {
		key := ""
		if i == 0 || s[i-1] == ' ' {
			for _, k := range receiptKeys {
				if strings.HasPrefix(lower[i:], k) {
					key = k
					break
				}
			}
		}
		if key == "" {
			i++
			continue
		}
		i += len(key)
		end := strings.IndexByte(s[i:], ' ')
		if end < 0 {
			end = len(s) - i
		}
		v := s[i : i+end]
		i += end
		switch key {
		case "id:":
			r.ID, found = v, true
		case "sub:":
			r.Sub, _ = strconv.Atoi(v) // tolerated: stays zero
		case "dlvrd:":
			r.Dlvrd, _ = strconv.Atoi(v) // tolerated: stays zero
		case "submit date:":
			r.SubmitDate = parseReceiptDate(v)
		case "done date:":
			r.DoneDate = parseReceiptDate(v)
		case "stat:":
			r.Stat = strings.ToUpper(v)
		case "err:":
			r.Err = v
		}
	}
	if !found {
		return Receipt{}, ErrNotReceipt
	}
	return r, nil
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// keyIndex finds key at the start of s or after a space.
func keyIndex(s, key string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], key)
		if i < 0 {
			return -1
		}
		if off+i == 0 || s[off+i-1] == ' ' {
			return off + i
		}
		off += i + 1
	}
}

func parseReceiptDate(v string) time.Time {
	layout := receiptDate
	if len(v) == len(receiptDateSeconds) {
		layout = receiptDateSeconds
	}
	t, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Format writes the receipt in the standard text form, dates to the minute, sub and
// dlvrd on three digits.
func (r Receipt) Format() []byte {
	return fmt.Appendf(nil, "id:%s sub:%03d dlvrd:%03d submit date:%s done date:%s stat:%s err:%s text:%s",
		r.ID, r.Sub, r.Dlvrd, formatReceiptDate(r.SubmitDate), formatReceiptDate(r.DoneDate), r.Stat, r.Err, r.Text)
}

func formatReceiptDate(t time.Time) string {
	if t.IsZero() {
		return "0000000000"
	}
	return t.UTC().Format(receiptDate)
}
