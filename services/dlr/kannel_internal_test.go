package dlr

import (
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
)

func TestKannelType(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	status := func(s string, submitted bool) message.Status {
		st := message.Status{Status: s}
		if submitted {
			st.SubmittedAt = &at
		}
		return st
	}
	tests := []struct {
		name string
		st   message.Status
		mask uint32
		want int
	}{
		{"accepted: never", status(message.StatusAccepted, false), 63, 0},
		{"scheduled: buffered", status(message.StatusScheduled, false), 4, 4},
		{"scheduled not asked for", status(message.StatusScheduled, false), 3, 0},
		{"submitted: smsc ack", status(message.StatusSubmitted, true), 8, 8},
		{"submitted not asked for", status(message.StatusSubmitted, true), 7, 0},
		{"delivered", status(message.StatusDelivered, true), 1, 1},
		{"delivered under 31", status(message.StatusDelivered, true), 31, 1},
		{"delivered not asked for", status(message.StatusDelivered, true), 2, 0},
		{"undelivered after submit", status(message.StatusUndelivered, true), 3, 2},
		{"expired after submit", status(message.StatusExpired, true), 2, 2},
		{"unknown after submit", status(message.StatusUnknown, true), 2, 2},
		{"carrier refused: smsc reject", status(message.StatusFailed, false), 16, 16},
		{"carrier refused under 18", status(message.StatusFailed, false), 18, 16},
		{"carrier refused under 3: reported as failed", status(message.StatusFailed, false), 3, 2},
		{"router rejected under 1 only", status(message.StatusRejected, false), 1, 0},
		{"failure after submit under 16 only", status(message.StatusUndelivered, true), 16, 0},
	}
	for _, tt := range tests {
		if got := kannelType(tt.st, tt.mask); got != tt.want {
			t.Errorf("%s: type %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestKannelURL fills in the dlr-url patterns of Kannel's user guide and
// every escape this door supports.
func TestKannelURL(t *testing.T) {
	submitted := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	done := time.Date(2026, 11, 27, 9, 0, 3, 0, time.UTC)
	st := message.Status{
		MessageID: "019a6b7c-1d2e-7f30-8a41-b52c63d74e85", Tenant: "acme", To: "+447700900123", Carrier: "sim-a",
		Status: message.StatusDelivered, ErrorCode: "000", Segments: 1, Encoding: message.EncodingGSM7,
		EventTime: done, SubmittedAt: &submitted, DoneAt: &done,
		DLRCallback: &message.DLRCallback{URL: "unused", Mask: 31, From: "ACME Ltd"},
	}
	failed := st
	failed.Status, failed.ErrorCode, failed.Reason, failed.SubmittedAt, failed.Encoding = message.StatusFailed, "0x45", "submit refused", nil, message.EncodingUCS2
	failed.DLRCallback = &message.DLRCallback{URL: "unused", Mask: 16, From: "0044700"}
	tests := []struct {
		name, pattern string
		st            message.Status
		typ           int
		want          string
	}{
		{"guide: type only", "http://my.host.com/dlr.php?type=%d", st, 1, "http://my.host.com/dlr.php?type=1"},
		{"guide: the usual set", "http://h/dlr?id=%I&type=%d&to=%p&from=%P&smsc=%i&ts=%T&reply=%A", st, 1,
			"http://h/dlr?id=019a6b7c-1d2e-7f30-8a41-b52c63d74e85&type=1&to=%2B447700900123&from=ACME+Ltd&smsc=sim-a&ts=1795770003" +
				"&reply=id%3A019a6b7c-1d2e-7f30-8a41-b52c63d74e85+sub%3A001+dlvrd%3A001+submit+date%3A2611270900+done+date%3A2611270900+stat%3ADELIVRD+err%3A000"},
		{"time, coding, charset, percent", "http://h/?t=%t&c=%c&C=%C&pct=100%%", st, 1, "http://h/?t=2026-11-27+09:00:03&c=0&C=UTF-8&pct=100%"},
		{"submitted: ACK/", "http://h/?r=%A&d=%d", st, 8, "http://h/?r=ACK%2F&d=8"},
		{"refused: NACK, %Q with 00", "http://h/?r=%A&d=%d&q=%Q&c=%c&C=%C", failed, 16, "http://h/?r=NACK%2F0x45%2Fsubmit+refused&d=16&q=%2B44700&c=2&C=UTF-16BE"},
		{"known without a value, unknown kept, trailing %", "http://h/?f=%F&b=%b&n=%n&x=%x&y=%", st, 1, "http://h/?f=&b=&n=&x=%x&y=%"},
	}
	for _, tt := range tests {
		if got := kannelURL(tt.pattern, tt.st, tt.typ); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
