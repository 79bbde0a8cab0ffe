package ingest

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// testRanges are number ranges reserved for fiction and tests, which
// libphonenumber calls invalid but sluice accepts as mobile numbers (the
// spec's examples use them): Ofcom's drama range for UK mobiles.
var testRanges = []string{"+447700900"}

var errNotPossible = errors.New("not a possible phone number")

// parseE164 parses a number written in international form and returns it
// with its E.164 form.
func parseE164(raw string) (*phonenumbers.PhoneNumber, string, error) {
	num, ok := rules().parse(raw)
	e164 := raw // what the fast path takes is E.164 already
	if !ok {
		var err error
		if num, err = phonenumbers.Parse(raw, ""); err != nil {
			return nil, "", err
		}
		e164 = phonenumbers.Format(num, phonenumbers.E164)
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return nil, "", errNotPossible
	}
	return num, e164, nil
}

// NormaliseNumber checks that raw is a mobile number in E.164 form (spaces,
// dashes and brackets are tolerated) and returns it normalised, with its
// country (ISO 3166 alpha-2).
func NormaliseNumber(raw string) (e164, country string, _ *FieldError) {
	if !strings.HasPrefix(raw, "+") {
		return "", "", fieldErr(CodeInvalidNumber, "to", "must be in E.164 form with a leading '+'")
	}
	num, e164, err := parseE164(raw)
	if err != nil {
		return "", "", fieldErr(CodeInvalidNumber, "to", "is not a possible phone number")
	}
	if isTestNumber(e164) {
		return e164, phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode())), nil
	}
	// The type is UNKNOWN exactly when libphonenumber calls the number
	// invalid (FuzzNumberTypeIsValidity).
	region, t := rules().classify(num)
	switch t {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	case phonenumbers.UNKNOWN:
		return "", "", fieldErr(CodeInvalidNumber, "to", "is not a valid number in its country's numbering plan")
	default:
		return "", "", fieldErr(CodeNotMobile, "to", "is a %s number, not a mobile one", numberTypeName(t))
	}
	return e164, region, nil
}

func isTestNumber(e164 string) bool {
	for _, p := range testRanges {
		if strings.HasPrefix(e164, p) {
			return true
		}
	}
	return false
}

func numberTypeName(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.FIXED_LINE:
		return "fixed-line"
	case phonenumbers.TOLL_FREE:
		return "toll-free"
	case phonenumbers.PREMIUM_RATE:
		return "premium-rate"
	case phonenumbers.SHARED_COST:
		return "shared-cost"
	case phonenumbers.VOIP:
		return "VoIP"
	case phonenumbers.PERSONAL_NUMBER:
		return "personal"
	case phonenumbers.PAGER:
		return "pager"
	case phonenumbers.UAN:
		return "UAN"
	case phonenumbers.VOICEMAIL:
		return "voicemail"
	default:
		return "non-mobile"
	}
}
