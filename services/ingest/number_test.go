package ingest

import (
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// libraryClassify is what numberRules replaces: libphonenumber's own answers.
func libraryClassify(num *phonenumbers.PhoneNumber) (string, phonenumbers.PhoneNumberType) {
	return phonenumbers.GetRegionCodeForNumber(num), phonenumbers.GetNumberType(num)
}

// numberCorpus is the library's example number of every type of every region
// and non-geographic calling code, each with its last digit replaced by every
// other, one digit more and one less: numbers of every type, valid and not,
// of every plan (including the shared calling codes +1, +7, +44, +262, ...).
func numberCorpus(t *testing.T) []string {
	t.Helper()
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	var examples []*phonenumbers.PhoneNumber
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			if n := phonenumbers.GetExampleNumberForType(region, typ); n != nil {
				examples = append(examples, n)
			}
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		if n := phonenumbers.GetExampleNumberForNonGeoEntity(cc); n != nil {
			examples = append(examples, n)
		}
	}
	if len(examples) < 1000 {
		t.Fatalf("only %d example numbers", len(examples))
	}
	var out []string
	for _, n := range examples {
		e164 := phonenumbers.Format(n, phonenumbers.E164)
		out = append(out, e164, e164+"7", e164[:len(e164)-1])
		for d := range 10 {
			out = append(out, e164[:len(e164)-1]+strconv.Itoa(d))
		}
	}
	return out
}

// TestNumberRulesMatchLibrary: numberRules gives libphonenumber's region and
// type for every number of the corpus, and NormaliseNumber accepts mobile
// numbers and refuses the others.
func TestNumberRulesMatchLibrary(t *testing.T) {
	kinds := map[phonenumbers.PhoneNumberType]int{}
	for _, raw := range numberCorpus(t) {
		num, err := phonenumbers.Parse(raw, "")
		if err != nil {
			continue
		}
		wantRegion, wantType := libraryClassify(num)
		region, typ := rules().classify(num)
		if region != wantRegion || typ != wantType {
			t.Errorf("%s: region %q type %v, libphonenumber says %q %v", raw, region, typ, wantRegion, wantType)
		}
		kinds[typ]++
	}
	// The corpus must hold what the rules tell apart.
	for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.UNKNOWN, phonenumbers.MOBILE, phonenumbers.FIXED_LINE,
		phonenumbers.FIXED_LINE_OR_MOBILE, phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.VOIP} {
		if kinds[typ] < 10 {
			t.Errorf("only %d numbers of type %v in the corpus", kinds[typ], typ)
		}
	}
}

func TestNormaliseNumber(t *testing.T) {
	for _, c := range []struct {
		raw, e164, country, code string
	}{
		{raw: "+447400123456", e164: "+447400123456", country: "GB"},
		{raw: "+44 7400 123-456", e164: "+447400123456", country: "GB"},
		{raw: "+447624123456", e164: "+447624123456", country: "IM"}, // +44, Isle of Man
		{raw: "+447781123456", e164: "+447781123456", country: "GG"}, // +44, Guernsey
		{raw: "+447700900123", e164: "+447700900123", country: "GB"}, // Ofcom's drama range
		{raw: "+12015550123", e164: "+12015550123", country: "US"},   // fixed line or mobile
		{raw: "+16135550123", e164: "+16135550123", country: "CA"},   // +1, after US in the regions
		{raw: "+33612345678", e164: "+33612345678", country: "FR"},
		{raw: "+4915112345678", e164: "+4915112345678", country: "DE"},
		{raw: "+79123456789", e164: "+79123456789", country: "RU"},
		{raw: "+442079460000", code: CodeNotMobile},     // London fixed line
		{raw: "+448001234567", code: CodeNotMobile},     // toll-free
		{raw: "+80012345678", code: CodeNotMobile},      // international freephone (region 001)
		{raw: "+441234", code: CodeInvalidNumber},       // not possible
		{raw: "+44740012345", code: CodeInvalidNumber},  // a digit short
		{raw: "+15555555555", code: CodeInvalidNumber},  // no plan has it
		{raw: "447400123456", code: CodeInvalidNumber},  // no '+'
		{raw: "+999123456789", code: CodeInvalidNumber}, // no such calling code
	} {
		e164, country, ferr := NormaliseNumber(c.raw)
		code := ""
		if ferr != nil {
			code = ferr.Code
		}
		if e164 != c.e164 || country != c.country || code != c.code {
			t.Errorf("%q: %q %q %q, want %q %q %q", c.raw, e164, country, code, c.e164, c.country, c.code)
		}
	}
}

// FuzzNumberRules: for any number the library parses, numberRules gives the
// library's region and type.
func FuzzNumberRules(f *testing.F) {
	for _, s := range []string{"+447400123456", "+447624123456", "+16135550123", "+15555555555", "+80012345678",
		"+262269123456", "+79123456789", "+590690123456", "+3906123456", "+44 (0) 7400 123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		num, err := phonenumbers.Parse(raw, "")
		if err != nil {
			return
		}
		wantRegion, wantType := libraryClassify(num)
		if region, typ := rules().classify(num); region != wantRegion || typ != wantType {
			t.Fatalf("%q: region %q type %v, libphonenumber says %q %v", raw, region, typ, wantRegion, wantType)
		}
	})
}

// parseSeeds are plain numbers the fast path must refuse or get right: short,
// long, leading zeros, unknown calling codes, national prefixes (GB's 0, the
// US's 1, Argentina's rewriting 9 and 15, Mexico's 1), non-geographic codes.
var parseSeeds = []string{"+", "+1", "+12", "+123", "+1234", "+0", "+044", "+4407400123456", "+440", "+447400123456789012",
	"+999123456789", "+80012345678", "+882123456789", "+11234567890", "+12015550123", "+5491123456789",
	"+541115123456", "+5215512345678", "+390612345678", "+3906123456", "+2250712345678", "+79123456789",
	"+447400123456", "+447400 123456", "+447400-123456", "+ 447400123456", "++447400123456", "+４４7400123456"}

// checkParse fails when the fast path answers raw other than the library.
func checkParse(t *testing.T, raw string) bool {
	t.Helper()
	got, ok := rules().parse(raw)
	if !ok {
		return false
	}
	want, err := phonenumbers.Parse(raw, "")
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("%q: parsed as %v, libphonenumber says %v, %v", raw, got, want, err)
	}
	if e164 := phonenumbers.Format(want, phonenumbers.E164); e164 != raw {
		t.Fatalf("%q: taken as E.164, libphonenumber writes it %q", raw, e164)
	}
	return true
}

// TestParseMatchesLibrary: what the fast path parses, it parses as the
// library does, and it parses most well-formed numbers.
func TestParseMatchesLibrary(t *testing.T) {
	corpus := numberCorpus(t)
	fast := 0
	for _, raw := range append(corpus, parseSeeds...) {
		if checkParse(t, raw) {
			fast++
		}
	}
	if fast < len(corpus)*3/4 {
		t.Errorf("the fast path parsed %d of %d numbers", fast, len(corpus))
	}
	// What the library rewrites or refuses is left to it.
	for _, raw := range []string{"+4407400123456", "+11234567890", "+5491123456789", "+390612345678", "+447400 123456", "+44", "+999123456789"} {
		if _, ok := rules().parse(raw); ok {
			t.Errorf("%q: the fast path took a number the library rewrites or refuses", raw)
		}
	}
}

// FuzzParse: for any input, the fast path either leaves it to the library or
// parses it as the library does.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) { checkParse(t, raw) })
}
