package router

import (
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
)

func TestQuietHours(t *testing.T) {
	q, err := newQuietHours([]config.QuietHours{
		{Countries: []string{"GB"}, TimeZone: "Europe/London", Start: "21:00", End: "08:00"},
		{Countries: []string{"fr"}, TimeZone: "Europe/Paris", Start: "12:00", End: "14:00"},
		{Countries: []string{"*"}, TimeZone: "UTC", Start: "23:00", End: "06:00"},
	})
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		country, now string
		want         string // end of the window, "" if not quiet
	}{
		{"GB", "2026-11-27T20:59:00Z", ""},
		{"GB", "2026-11-27T21:00:00Z", "2026-11-28T08:00:00Z"}, // GMT in winter
		{"GB", "2026-11-28T03:00:00Z", "2026-11-28T08:00:00Z"},
		{"GB", "2026-11-28T08:00:00Z", ""},
		{"GB", "2026-07-01T20:30:00Z", "2026-07-02T07:00:00Z"}, // 21:30 BST, ends 08:00 BST
		{"FR", "2026-11-27T11:30:00Z", "2026-11-27T13:00:00Z"}, // 12:30 CET
		{"FR", "2026-11-27T22:00:00Z", ""},                     // FR has its own window: not the "*" one
		{"US", "2026-11-27T23:30:00Z", "2026-11-28T06:00:00Z"},
		{"US", "2026-11-27T12:00:00Z", ""},
	}
	for _, tt := range tests {
		end, quiet := q.Until(tt.country, utc(tt.now))
		if quiet != (tt.want != "") || (quiet && !end.Equal(utc(tt.want))) {
			t.Errorf("Until(%s, %s) = %v, %v; want %q", tt.country, tt.now, end.UTC(), quiet, tt.want)
		}
	}
}

func TestQuietHoursConfigErrors(t *testing.T) {
	tests := []config.QuietHours{
		{Countries: []string{"GB"}, TimeZone: "Mars/Olympus", Start: "21:00", End: "08:00"},
		{Countries: []string{"GB"}, TimeZone: "UTC", Start: "9pm", End: "08:00"},
		{Countries: []string{"GB"}, TimeZone: "UTC", Start: "08:00", End: "08:00"},
		{TimeZone: "UTC", Start: "21:00", End: "08:00"},
	}
	for _, tt := range tests {
		if _, err := newQuietHours([]config.QuietHours{tt}); err == nil {
			t.Errorf("%+v accepted", tt)
		}
	}
}
