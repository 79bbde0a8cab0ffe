package analytics

import (
	"testing"
	"time"
)

func TestRetentionExpired(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	month := func(y int, m time.Month) time.Time { return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }
	plus2 := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		name   string
		now    time.Time
		months int
		month  time.Time
		want   bool
	}{
		{"month before the straddling one", utc(2026, 5, 15, 12, 0), 3, month(2026, 1), true},
		{"month straddling the cutoff is kept", utc(2026, 5, 15, 12, 0), 3, month(2026, 2), false},
		{"recent month", utc(2026, 5, 15, 12, 0), 3, month(2026, 4), false},
		{"current month", utc(2026, 5, 15, 12, 0), 3, month(2026, 5), false},
		{"first instant of a month: cutoff on the 1st still straddles", utc(2026, 5, 1, 0, 0), 3, month(2026, 2), false},
		{"last instant of a month", utc(2026, 5, 31, 23, 59), 3, month(2026, 1), true},
		{"31st, one month: no overflow into the month after", utc(2026, 3, 31, 12, 0), 1, month(2026, 2), false},
		{"31st, one month, two back", utc(2026, 3, 31, 12, 0), 1, month(2026, 1), true},
		{"across the year", utc(2026, 1, 10, 0, 0), 1, month(2025, 12), false},
		{"across the year, two back", utc(2026, 1, 10, 0, 0), 1, month(2025, 11), true},
		{"thirteen months", utc(2026, 1, 10, 0, 0), 13, month(2024, 12), false},
		{"thirteen months, one more", utc(2026, 1, 10, 0, 0), 13, month(2024, 11), true},
		{"now in another zone counts in UTC", time.Date(2026, 6, 1, 1, 0, 0, 0, plus2), 1, month(2026, 4), false},
		{"now in another zone, one more", time.Date(2026, 6, 1, 1, 0, 0, 0, plus2), 1, month(2026, 3), true},
		{"months 0 keeps everything", utc(2026, 5, 15, 12, 0), 0, month(1970, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expired(tt.month, tt.now, tt.months); got != tt.want {
				t.Errorf("expired(%s, now %s, %d months) = %v, want %v", tt.month.Format("2006-01"), tt.now, tt.months, got, tt.want)
			}
		})
	}
}

func TestRetentionMonthlyKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"toYYYYMM(event_date)", true},
		{"toYYYYMM(minute)", true},
		{"toYYYYMM(`event date`)", false}, // not a column name sluice spells
		{"toYYYYMM(`d`)", true},
		{"toYYYYMM(toStartOfMinute(t))", false}, // a function of the column: not judged
		{"toYYYYMM(addMonths(d, -1))", false},   // would shift the months
		{"", false},                             // no partition key (messages, schema_migrations)
		{"tuple()", false},                      // how current releases may show none
		{"(toYYYYMM(d), tenant)", false},        // a partition is a month of one tenant
		{"toYYYYMM(d) % 2", false},              // not one month
		{"intDiv(toYYYYMM(d), 100)", false},     // a year
		{"toYYYYMMDD(d)", false},                // a day
		{"toYYYYMM(d), intHash32(x)", false},    // trailing text
		{"toYYYYMM(d", false},                   // unbalanced
	}
	for _, tt := range tests {
		if got := monthlyKey(tt.key); got != tt.want {
			t.Errorf("monthlyKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestRetentionMonthID(t *testing.T) {
	tests := []struct {
		id   string
		want time.Time
		ok   bool
	}{
		{"202601", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"199912", time.Date(1999, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{"202613", time.Time{}, false},
		{"202600", time.Time{}, false},
		{"20260", time.Time{}, false},
		{"20260101", time.Time{}, false},
		{"+20261", time.Time{}, false},
		{"all", time.Time{}, false},
		{"a1b2c3", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := monthID(tt.id)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("monthID(%q) = %v, %v; want %v, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
}
