package dlr

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// FuzzCorrelate feeds arbitrary record values to the correlator: a receipt
// it cannot read is kept (sent to the unmatched topic), never an error or a
// panic; a submit it cannot read is an error (the sender's records are
// trusted), never a panic; and a match publishes one outcome.
func FuzzCorrelate(f *testing.F) {
	sub, _ := proto.Marshal(&sluicepb.SubmitResult{Message: &sluicepb.Message{Id: "m", Carrier: "hexco", Segments: 1}, SmscMessageId: "1a"})
	dlr, _ := proto.Marshal(&sluicepb.RawDLR{Carrier: "hexco", SmscMessageId: "26", Stat: "DELIVRD", MessageState: 2})
	f.Add([]byte("hexco:1a"), sub, dlr)
	f.Add([]byte("hexco:26"), []byte{0xff, 0x01}, []byte("id:x stat:DELIVRD"))
	db, err := state.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	s := db.Store('c', 0, "pending", pendingMeta)
	m, err := newMetrics(noopMeter(), db)
	if err != nil {
		f.Fatal(err)
	}
	c := &correlator{dlrTopic: "dlr", outcomes: "outcomes", unmatched: "unmatched", cfg: config.Default().DLR,
		m: m, tracer: noopTracer()}
	f.Fuzz(func(t *testing.T, key, submit, receipt []byte) {
		tx := s.Begin()
		defer tx.Discard()
		var d sluicepb.RawDLR
		out, err := c.step(tx, "dlr", kafka.Message{Topic: "dlr", Key: key, Value: receipt})
		if err != nil {
			t.Fatalf("receipt: %v", err)
		}
		if proto.Unmarshal(receipt, &d) != nil && (len(out) != 1 || out[0].Topic != "unmatched") {
			t.Fatalf("unreadable receipt gave %v", out)
		}
		var sr sluicepb.SubmitResult
		out, err = c.step(tx, "submits", kafka.Message{Topic: "submits", Key: key, Value: submit})
		if (err != nil) != (proto.Unmarshal(submit, &sr) != nil) {
			t.Fatalf("submit: %v", err)
		}
		for _, o := range out {
			if o.Topic == "outcomes" {
				var so sluicepb.SegmentOutcome
				if err := proto.Unmarshal(o.Value, &so); err != nil || so.Status == "" {
					t.Fatalf("outcome %v: %v", &so, err)
				}
			}
		}
	})
}
