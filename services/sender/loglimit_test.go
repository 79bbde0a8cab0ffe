package sender

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// One line per interval, the first at once, each with the events held back
// since the previous one.
func TestLogLimiter(t *testing.T) {
	var clock time.Time
	l := newLogLimiter(10*time.Second, func() time.Time { return clock })
	tests := []struct {
		at       time.Duration
		ok       bool
		unlogged int64
	}{
		{0, true, 0},
		{0, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2}, // a full interval after the last line
		{15 * time.Second, false, 0},
		{19 * time.Second, false, 0},
		{time.Minute, true, 2},
		{2 * time.Minute, true, 0}, // quiet since: nothing held back
	}
	for i, tt := range tests {
		clock = time.Unix(0, 0).Add(tt.at)
		if ok, unlogged := l.allow(); ok != tt.ok || unlogged != tt.unlogged {
			t.Errorf("step %d at %v: allow() = %v, %d; want %v, %d", i, tt.at, ok, unlogged, tt.ok, tt.unlogged)
		}
	}
}

// Every disagreement is counted; at most one line per carrier per
// warnLogEvery says so, with the count held back, whatever the refusals
// of the same carrier do.
func TestDisagreementsCountedAndLogRateLimited(t *testing.T) {
	obs, reader, buf, clock := testObservers(t)
	obs["a"].refused(&smpp.Deliver{ESMClass: smpp.ESMClassDeliveryReceipt}, errors.New("kafka down")) // uses the refusals' allowance, not this one's
	buf.Reset()
	tests := []struct {
		at       time.Duration
		carrier  string
		logged   bool
		unlogged int64
	}{
		{0, "a", true, 0},
		{time.Second, "a", false, 0},
		{time.Second, "b", true, 0},
		{warnLogEvery - time.Millisecond, "a", false, 0},
		{warnLogEvery, "a", true, 2},
		{warnLogEvery, "b", false, 0},
	}
	for i, tt := range tests {
		*clock = time.Unix(0, 0).Add(tt.at)
		buf.Reset()
		obs[tt.carrier].disagreed(t.Context(), "268435528", "268435529")
		if !tt.logged {
			if buf.Len() != 0 {
				t.Errorf("step %d: logged %s, want nothing", i, buf.String())
			}
			continue
		}
		var line struct {
			Level, Msg, Carrier string
			TLV                 string `json:"tlv_id"`
			Text                string `json:"text_id"`
			Unlogged            int64  `json:"disagreements_unlogged_since_last"`
		}
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("step %d: %q: %v", i, buf.String(), err)
		}
		if line.Level != "WARN" || line.Msg != "receipt's TLV and text ids disagree" || line.Carrier != tt.carrier ||
			line.TLV != "268435528" || line.Text != "268435529" || line.Unlogged != tt.unlogged {
			t.Errorf("step %d: logged %+v, want a warning for %s with %d unlogged", i, line, tt.carrier, tt.unlogged)
		}
	}

	got := testenv.Counters(t, reader, "sluice_sender_receipt_id_disagreements_total", "carrier")
	if got["a"] != 4 || got["b"] != 2 || len(got) != 2 {
		t.Errorf("disagreements counted %v, want a: 4, b: 2", got)
	}
}
