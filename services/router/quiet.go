package router

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
)

// quietHours holds marketing during configured local night-time windows, per
// destination country.
type quietHours struct {
	byCountry map[string]quietWindow
	fallback  *quietWindow // "*": countries without a window of their own
}

type quietWindow struct {
	loc        *time.Location
	start, end int // minutes after local midnight
}

func newQuietHours(cfg []config.QuietHours) (*quietHours, error) {
	q := &quietHours{byCountry: map[string]quietWindow{}}
	for i, c := range cfg {
		loc, err := time.LoadLocation(c.TimeZone)
		if err != nil || c.TimeZone == "" {
			return nil, fmt.Errorf("router.quiet_hours[%d].time_zone %q: not an IANA time zone", i, c.TimeZone)
		}
		start, err := parseClock(c.Start)
		if err != nil {
			return nil, fmt.Errorf("router.quiet_hours[%d].start: %w", i, err)
		}
		end, err := parseClock(c.End)
		if err != nil {
			return nil, fmt.Errorf("router.quiet_hours[%d].end: %w", i, err)
		}
		if start == end {
			return nil, fmt.Errorf("router.quiet_hours[%d]: start and end are equal", i)
		}
		if len(c.Countries) == 0 {
			return nil, fmt.Errorf("router.quiet_hours[%d].countries: at least one country (or \"*\") is required", i)
		}
		w := quietWindow{loc: loc, start: start, end: end}
		for _, country := range c.Countries {
			country = strings.ToUpper(country)
			if country == "*" {
				if q.fallback != nil {
					return nil, fmt.Errorf("router.quiet_hours[%d]: \"*\" is listed twice", i)
				}
				q.fallback = &w
				continue
			}
			if _, dup := q.byCountry[country]; dup {
				return nil, fmt.Errorf("router.quiet_hours[%d]: country %s is listed twice", i, country)
			}
			q.byCountry[country] = w
		}
	}
	return q, nil
}

// parseClock reads "HH:MM" as minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Until returns the end of the quiet window the country is in at now, and
// false when it is in none.
func (q *quietHours) Until(country string, now time.Time) (time.Time, bool) {
	w, ok := q.byCountry[strings.ToUpper(country)]
	if !ok {
		if q.fallback == nil {
			return time.Time{}, false
		}
		w = *q.fallback
	}
	local := now.In(w.loc)
	m := local.Hour()*60 + local.Minute()
	endOn := func(day time.Time) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), w.end/60, w.end%60, 0, 0, w.loc)
	}
	switch {
	case w.start < w.end && m >= w.start && m < w.end:
		return endOn(local), true
	case w.start > w.end && m >= w.start: // before midnight: ends tomorrow
		return endOn(local.AddDate(0, 0, 1)), true
	case w.start > w.end && m < w.end: // after midnight: ends today
		return endOn(local), true
	}
	return time.Time{}, false
}
