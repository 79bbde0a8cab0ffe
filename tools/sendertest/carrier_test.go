package sendertest

import (
	"strings"
	"testing"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

func health(h *harness) *collector[*sluicepb.CarrierHealth] {
	return collect(h, h.topic(schemas.TopicCarrierHealth), func() *sluicepb.CarrierHealth { return new(sluicepb.CarrierHealth) })
}

// A carrier that refuses binds keeps its backlog in Kafka and reports itself
// unbound; another carrier served by the same replica is not held up; once
// the dead one comes back its backlog goes out.
func TestDeadCarrierDoesNotHoldUpOthers(t *testing.T) {
	const n = 200
	dead, alive := simCarrier("sim-a", 0, 0), simCarrier("sim-b", 0, 0)
	dead.Down = true
	h := newHarness(t, []smscsim.CarrierConfig{dead, alive}, []config.Carrier{carrier(2, 1000, 10), carrier(2, 1000, 10)})
	subs, hl := submits(h), health(h)
	h.runSender()
	h.send(messages(n, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)
	h.send(messages(n, "sim-b", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)

	countOf := func(r []*sluicepb.SubmitResult, carrier string) int {
		ids := map[string]bool{}
		for _, s := range r {
			if s.Message.Carrier == carrier {
				ids[s.Message.Id] = true
			}
		}
		return len(ids)
	}
	got := subs.wait(h, "sim-b's messages submitted", func(r []*sluicepb.SubmitResult) bool { return countOf(r, "sim-b") == n })
	if c := countOf(got, "sim-a"); c != 0 {
		t.Fatalf("%d messages submitted to a carrier that refuses binds", c)
	}
	hl.wait(h, "sim-a reported down with the reason", func(r []*sluicepb.CarrierHealth) bool {
		down := map[uint32]bool{}
		for _, x := range r {
			if x.Carrier == "sim-a" && !x.Bound && strings.Contains(x.LastError, "ESME_RBINDFAIL") {
				down[x.Slot] = true
			}
		}
		return len(down) == 2
	})
	if st := h.sim.Stats()["sim-a"]; st.BindFailures == 0 || st.Received != 0 {
		t.Errorf("sim-a stats %+v, want refused binds and no submit", st)
	}

	if err := h.sim.SetFaults("sim-a", smscsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	subs.wait(h, "sim-a's backlog submitted", func(r []*sluicepb.SubmitResult) bool { return countOf(r, "sim-a") == n })
	hl.wait(h, "sim-a reported bound", func(r []*sluicepb.CarrierHealth) bool {
		up := map[uint32]bool{}
		for _, x := range r {
			if x.Carrier == "sim-a" {
				up[x.Slot] = x.Bound
			}
		}
		return up[0] && up[1]
	})
}

// Receipts go to sluice.dlr.raw under the id the submit result carries,
// whatever form the carrier writes each of its ids in, once receipt_ids says
// which; MO messages go to sluice.mo.
func TestReceiptsAndMO(t *testing.T) {
	tests := []struct {
		name  string
		forms func(*smscsim.CarrierConfig)
		ids   config.ReceiptIDs
	}{
		// Hex resp, decimal text, the TLV as the resp (SMPP 3.4): the scalar form says it.
		{"text decimal, TLV as the resp", func(c *smscsim.CarrierConfig) { c.DLRIDFormat = "decimal" },
			config.ReceiptIDsOf(config.ReceiptIDsDecimal)},
		{"text and TLV decimal, upper case, zero-padded", func(c *smscsim.CarrierConfig) {
			c.DLRTextIDForm, c.DLRTLVIDForm, c.IDCase, c.IDZeroPad = "decimal", "decimal", "upper", 20
		}, config.ReceiptIDs{Resp: config.ReceiptIDsHex, Text: config.ReceiptIDsDecimal, TLV: config.ReceiptIDsDecimal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := simCarrier("sim-a", 0, 0)
			tt.forms(&sim)
			c := carrier(1, 1000, 10)
			c.ReceiptIDs = tt.ids
			h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{c})
			subs := submits(h)
			dlrs := collect(h, h.topic(schemas.TopicDLRRaw), func() *sluicepb.RawDLR { return new(sluicepb.RawDLR) })
			mos := collect(h, h.topic(schemas.TopicMO), func() *sluicepb.MO { return new(sluicepb.MO) })
			h.runSender()
			h.send(messages(10, "sim-a", sluicepb.Priority_PRIORITY_OTP)...)

			ids := map[string]bool{}
			for _, s := range subs.wait(h, "submitted", func(r []*sluicepb.SubmitResult) bool { return len(byMessage(r)) == 10 }) {
				ids[s.SmscMessageId] = true
			}
			for _, d := range dlrs.wait(h, "receipts stored", func(r []*sluicepb.RawDLR) bool { return len(r) >= 10 }) {
				// No alternative id: the TLV and the text agreed once brought to one form.
				if !ids[d.SmscMessageId] || d.AltSmscMessageId != "" || d.Stat != "DELIVRD" || d.Carrier != "sim-a" {
					t.Errorf("receipt %s (text %q, %s) matches no submit result (ids %v)", d.SmscMessageId, d.AltSmscMessageId, d.Stat, ids)
				}
			}

			for _, text := range []string{"STOP", "Stop 🙏"} {
				if err := h.sim.SendMO(h.ctx, "sim-a", "447700900123", "12345", text); err != nil {
					t.Fatal(err)
				}
			}
			got := mos.wait(h, "MO stored", func(r []*sluicepb.MO) bool { return len(r) == 2 })
			for i, want := range []string{"STOP", "Stop 🙏"} {
				if m := got[i]; m.Text != want || m.SourceAddr != "+447700900123" || m.DestAddr != "12345" || m.Carrier != "sim-a" {
					t.Errorf("MO %d = %+v, want %q from +447700900123", i, m, want)
				}
			}
		})
	}
}

// Each long-message mode reaches the carrier as it should: three parts with
// a header or SAR TLVs, or one submit_sm with message_payload.
func TestLongMessageModes(t *testing.T) {
	long := strings.Repeat("0123456789", 40) // 3 GSM-7 parts
	tests := []struct {
		mode               string
		wantSubmits, parts int64
		wantResultsPerMsg  int
	}{
		{config.LongUDH, 3, 3, 3},
		{config.LongSAR, 3, 3, 3},
		{config.LongPayload, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			c := carrier(1, 1000, 10)
			c.LongMessages = tt.mode
			h := newHarness(t, []smscsim.CarrierConfig{simCarrier("sim-a", 0, 0)}, []config.Carrier{c})
			subs := submits(h)
			h.runSender()
			h.send(message("m1", "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL, long))
			got := subs.wait(h, "submitted", func(r []*sluicepb.SubmitResult) bool { return len(r) == tt.wantResultsPerMsg })
			segs := map[uint32]bool{}
			for _, r := range got {
				segs[r.Segment] = true
				if int(r.Message.Segments) != tt.wantResultsPerMsg {
					t.Errorf("result says %d segments, want %d", r.Message.Segments, tt.wantResultsPerMsg)
				}
			}
			if len(segs) != tt.wantResultsPerMsg {
				t.Errorf("segments %v", segs)
			}
			st := h.waitSim("sim-a", "receipts requested", func(st smscsim.CarrierStats) bool { return st.DLRsRequested == tt.wantSubmits })
			if st.Submits != tt.wantSubmits || st.SubmitParts != tt.parts || st.UniqueSubmits != tt.wantSubmits {
				t.Errorf("carrier stats %+v, want %d submits of which %d concatenated parts", st, tt.wantSubmits, tt.parts)
			}
		})
	}
}

// With bind_mode transmitter_receiver each slot submits on a transmitter bind
// and takes receipts on a receiver bind.
func TestTransmitterReceiverBinds(t *testing.T) {
	c := carrier(1, 1000, 10)
	c.BindMode = config.BindTransmitterReceiver
	h := newHarness(t, []smscsim.CarrierConfig{simCarrier("sim-a", 0, 0)}, []config.Carrier{c})
	subs := submits(h)
	dlrs := collect(h, h.topic(schemas.TopicDLRRaw), func() *sluicepb.RawDLR { return new(sluicepb.RawDLR) })
	h.runSender()
	h.send(messages(20, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)
	ids := map[string]bool{}
	for _, s := range subs.wait(h, "submitted", func(r []*sluicepb.SubmitResult) bool { return len(byMessage(r)) == 20 }) {
		ids[s.SmscMessageId] = true
	}
	for _, d := range dlrs.wait(h, "receipts stored", func(r []*sluicepb.RawDLR) bool { return len(r) >= 20 }) {
		if !ids[d.SmscMessageId] {
			t.Errorf("receipt %s matches no submit", d.SmscMessageId)
		}
	}
	if st := h.sim.Stats()["sim-a"]; st.BindsOpen != 2 || st.PeakBinds != 2 {
		t.Errorf("carrier stats %+v, want a transmitter and a receiver open", st)
	}
}
