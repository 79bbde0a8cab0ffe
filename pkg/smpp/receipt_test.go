package smpp

import (
	"errors"
	"testing"
	"time"
)

func TestParseReceipt(t *testing.T) {
	date := func(s string) time.Time {
		layout := receiptDate
		if len(s) == 12 {
			layout = receiptDateSeconds
		}
		d, err := time.Parse(layout, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name string
		in   string
		want Receipt
		err  error
	}{
		{
			name: "standard",
			in:   "id:0a1b2c sub:001 dlvrd:001 submit date:2611270900 done date:2611270901 stat:DELIVRD err:000 text:Your code is 1234",
			want: Receipt{ID: "0a1b2c", Sub: 1, Dlvrd: 1, SubmitDate: date("2611270900"), DoneDate: date("2611270901"), Stat: "DELIVRD", Err: "000", Text: "Your code is 1234"},
		},
		{
			name: "upper case keys, seconds in dates",
			in:   "ID:77 SUB:001 DLVRD:000 SUBMIT DATE:261127090005 DONE DATE:261127100010 STAT:undeliv ERR:034 TEXT:x",
			want: Receipt{ID: "77", Sub: 1, SubmitDate: date("261127090005"), DoneDate: date("261127100010"), Stat: "UNDELIV", Err: "034", Text: "x"},
		},
		{
			name: "missing fields",
			in:   "id:12345 stat:EXPIRED",
			want: Receipt{ID: "12345", Stat: "EXPIRED"},
		},
		{
			name: "keys inside text are text",
			in:   "id:9 stat:DELIVRD err:000 text:id:fake stat:REJECTD",
			want: Receipt{ID: "9", Stat: "DELIVRD", Err: "000", Text: "id:fake stat:REJECTD"},
		},
		{
			name: "bad numbers and dates stay zero",
			in:   "id:9 sub:abc dlvrd:1 submit date:26113 done date:zzzzzzzzzz stat:DELIVRD",
			want: Receipt{ID: "9", Dlvrd: 1, Stat: "DELIVRD"},
		},
		{name: "not a receipt", in: "hello there", err: ErrNotReceipt},
		{name: "empty", in: "", err: ErrNotReceipt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReceipt([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReceiptFormat(t *testing.T) {
	r := Receipt{ID: "0a1b", Sub: 1, Dlvrd: 1,
		SubmitDate: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), DoneDate: time.Date(2026, 11, 27, 9, 1, 0, 0, time.UTC),
		Stat: StatDelivered, Err: "000", Text: "hi"}
	const want = "id:0a1b sub:001 dlvrd:001 submit date:2611270900 done date:2611270901 stat:DELIVRD err:000 text:hi"
	if got := string(r.Format()); got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	back, err := ParseReceipt(r.Format())
	if err != nil || back != r {
		t.Errorf("ParseReceipt(Format) = %+v, %v; want %+v", back, err, r)
	}
}

func TestMessageStateOf(t *testing.T) {
	for stat, want := range map[string]uint8{"DELIVRD": 2, "undeliv": 5, "EXPIRED": 3, "REJECTD": 8} {
		if got, ok := MessageStateOf(stat); !ok || got != want {
			t.Errorf("MessageStateOf(%q) = %d, %v; want %d", stat, got, ok, want)
		}
	}
	if _, ok := MessageStateOf("BOGUS"); ok {
		t.Error("MessageStateOf(BOGUS) ok")
	}
}

func TestStatOf(t *testing.T) {
	for state := range uint8(10) {
		stat, ok := StatOf(state)
		if back, _ := MessageStateOf(stat); ok != (state >= 1 && state <= 8) || ok && back != state {
			t.Errorf("StatOf(%d) = %q, %v", state, stat, ok)
		}
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add([]byte("id:0a1b2c sub:001 dlvrd:001 submit date:2611270900 done date:2611270901 stat:DELIVRD err:000 text:hi"))
	f.Add([]byte("ID:1 STAT:undeliv submit date:261127090005"))
	f.Add([]byte("text:id:1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			return
		}
		// What parsed survives a format and parse again (dates to the minute).
		r.SubmitDate, r.DoneDate = r.SubmitDate.Truncate(time.Minute), r.DoneDate.Truncate(time.Minute)
		back, err := ParseReceipt(r.Format())
		if err != nil {
			t.Fatalf("ParseReceipt(Format(%+v)): %v", r, err)
		}
		if back != r {
			t.Errorf("round trip: %+v -> %q -> %+v", r, r.Format(), back)
		}
	})
}
