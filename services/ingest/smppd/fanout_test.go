package smppd

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// Each record goes to the topic of the SMPP tenant it is a receipt or an MO
// for, and nowhere when it is neither.
func TestFanOutCopies(t *testing.T) {
	tenants := map[string]*tenant{
		"acme":   {id: "acme", moNumbers: map[string]bool{"12345": true}},
		"globex": {id: "globex-co", moNumbers: map[string]bool{"12345": true, "777": true}},
	}
	f := newFanOut("p.", tenants, nil)
	status := func(tenant, st, rd string) []byte {
		v, err := message.Status{MessageID: "m", Tenant: tenant, Status: st, Metadata: map[string]string{MetaRegisteredDelivery: rd}}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	mo := func(dest string) []byte {
		v, err := proto.Marshal(&sluicepb.MO{DestAddr: dest, Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		topic string
		value []byte
		want  []string
	}{
		{"receipt asked for", schemas.TopicStatus, status("acme", message.StatusDelivered, "1"), []string{schemas.SMPPReceiptsTopic("p.", "acme")}},
		{"failure receipt asked for", schemas.TopicStatus, status("globex-co", message.StatusUndelivered, "2"), []string{schemas.SMPPReceiptsTopic("p.", "globex-co")}},
		{"delivered, failures only", schemas.TopicStatus, status("acme", message.StatusDelivered, "2"), nil},
		{"no receipt asked", schemas.TopicStatus, status("acme", message.StatusDelivered, "0"), nil},
		{"not final", schemas.TopicStatus, status("acme", message.StatusSubmitted, "1"), nil},
		{"not an SMPP tenant", schemas.TopicStatus, status("slow", message.StatusDelivered, "1"), nil},
		{"undecodable status", schemas.TopicStatus, []byte("{"), nil},
		{"MO to a shared number", schemas.TopicMO, mo("+12345"), []string{schemas.SMPPMOTopic("p.", "acme"), schemas.SMPPMOTopic("p.", "globex-co")}},
		{"MO to one tenant", schemas.TopicMO, mo("777"), []string{schemas.SMPPMOTopic("p.", "globex-co")}},
		{"MO to nobody", schemas.TopicMO, mo("999"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.copies("p."+tt.topic, []kafka.Message{{Key: []byte("k"), Value: tt.value}})
			var topics []string
			for _, c := range got {
				topics = append(topics, c.Topic)
				if string(c.Key) != "k" || string(c.Value) != string(tt.value) {
					t.Errorf("copy %s changed the record: %q=%q", c.Topic, c.Key, c.Value)
				}
			}
			if len(topics) != len(tt.want) {
				t.Fatalf("copies to %v, want %v", topics, tt.want)
			}
			for _, w := range tt.want {
				found := false
				for _, g := range topics {
					found = found || g == w
				}
				if !found {
					t.Errorf("copies to %v, want %v", topics, tt.want)
				}
			}
		})
	}
}
