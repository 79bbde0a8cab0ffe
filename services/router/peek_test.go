package router

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// peek must agree with a full decode on every record a full decode accepts.
func FuzzPeek(f *testing.F) {
	for _, m := range []*sluicepb.Message{
		msg("id", "acme", sluicepb.Priority_PRIORITY_OTP),
		msg("id2", "", sluicepb.Priority_PRIORITY_MARKETING),
		{Metadata: map[string]string{"k": "v"}, Tenant: "t", Priority: 99},
		{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sluicepb.Message
		if proto.Unmarshal(b, &m) != nil {
			_, _, _ = peek(b) // must not panic
			return
		}
		tenant, prio, err := peek(b)
		if err != nil || tenant != m.Tenant || prio != m.Priority {
			t.Fatalf("peek = %q, %v, %v; decode = %q, %v", tenant, prio, err, m.Tenant, m.Priority)
		}
	})
}
