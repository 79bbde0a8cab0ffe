package sender

import "sync"

// recentCapacity is how many messages a slot remembers: more than the
// router can replay into one slot after a crash (its input since the last
// commit, a fraction of a second of traffic).
const recentCapacity = 1 << 15

// recentIDs remembers the last messages a slot has taken on, so that a copy
// written twice upstream (the router replays its uncommitted input after a
// crash) is not submitted twice. An attempt from the retry lane is a new
// message: the same id with a higher attempt.
type recentIDs struct {
	mu   sync.Mutex
	seen map[recentKey]struct{}
	ring []recentKey // the oldest is forgotten first
	next int
}

type recentKey struct {
	id      string
	attempt uint32
}

func newRecentIDs(capacity int) *recentIDs {
	return &recentIDs{seen: make(map[recentKey]struct{}, capacity), ring: make([]recentKey, 0, capacity)}
}

// add remembers (id, attempt) and reports whether it was new.
func (r *recentIDs) add(id string, attempt uint32) bool {
	k := recentKey{id, attempt}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[k]; ok {
		return false
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, k)
	} else {
		delete(r.seen, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % len(r.ring)
	}
	r.seen[k] = struct{}{}
	return true
}
