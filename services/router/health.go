package router

import (
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// health is the senders' view of each carrier's binds, from the compacted
// sluice.carrier.health topic.
type health struct {
	mu    sync.RWMutex
	slots map[string]map[string]*sluicepb.CarrierHealth // carrier, record key ("carrier:slot")
}

func newHealth() *health { return &health{slots: map[string]map[string]*sluicepb.CarrierHealth{}} }

func (h *health) apply(rec kafka.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rec.Value == nil { // a slot no longer reported on
		carrier, _, _ := strings.Cut(string(rec.Key), ":")
		delete(h.slots[carrier], string(rec.Key))
		return
	}
	var ch sluicepb.CarrierHealth
	if proto.Unmarshal(rec.Value, &ch) != nil {
		return // not a sender's report: no news about any carrier
	}
	s, ok := h.slots[ch.Carrier]
	if !ok {
		s = map[string]*sluicepb.CarrierHealth{}
		h.slots[ch.Carrier] = s
	}
	s[string(rec.Key)] = &ch
}

// down reports whether a carrier has had no bind up for at least after: it
// has reports, and every slot says unbound since before now-after. A carrier
// nobody reports on is up: without a sender its lane just waits in Kafka,
// and failing over would only move the wait.
func (h *health) down(carrier string, now time.Time, after time.Duration) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s := h.slots[carrier]
	if len(s) == 0 {
		return false
	}
	cutoff := now.Add(-after).UnixMilli()
	for _, ch := range s {
		if ch.Bound || ch.SinceMs > cutoff {
			return false
		}
	}
	return true
}
