package sender

import (
	"sync"
	"time"
)

// warnLogEvery bounds the warn lines about one kind of recurring event (a
// refused deliver_sm, a receipt whose ids disagree) to one per carrier per
// interval: an SMSC resending into a Kafka outage, or one whose every
// receipt is written so, would otherwise write a line per receipt. The
// metrics count every event.
const warnLogEvery = 10 * time.Second

// logLimiter lets one log line through per interval and counts the events it
// holds back, for the next line to say how many there were.
type logLimiter struct {
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	last       time.Time // of the last line let through; zero before the first
	suppressed int64     // events held back since
}

func newLogLimiter(every time.Duration, now func() time.Time) *logLimiter {
	return &logLimiter{every: every, now: now}
}

// allow says whether to log this event and, when it does, how many events
// went unlogged since the previous line.
func (l *logLimiter) allow() (ok bool, unlogged int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	unlogged = l.suppressed
	l.last, l.suppressed = now, 0
	return true, unlogged
}
