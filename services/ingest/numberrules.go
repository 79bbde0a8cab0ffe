package ingest

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// numberRules answers what NormaliseNumber asks libphonenumber of a parsed
// number, its region (GetRegionCodeForNumber) and its type (GetNumberType),
// with the library's own metadata and the same steps, but with each pattern
// compiled once and matched once. The library builds every pattern's string
// and looks it up in a locked cache on each use, matches each pattern twice
// (possible, then valid), and GetNumberType followed by
// GetRegionCodeForNumber walks the regions of a shared country code (+1, +44,
// +7, ...) twice: together 40% of ingest's CPU. TestNumberRulesMatchLibrary
// and FuzzNumberRules hold it to the library's answers.
type numberRules struct {
	callingCodes map[int]bool                           // the library's, read only
	regions      map[string]*phonenumbers.PhoneMetadata // by region code
	nonGeo       map[int]*phonenumbers.PhoneMetadata    // region "001", by calling code
	byMeta       sync.Map                               // *phonenumbers.PhoneMetadata → *metadataRules, compiled on first use
}

// rules loads the library's metadata once, when the first number is checked.
var rules = sync.OnceValue(func() *numberRules {
	nr := &numberRules{callingCodes: phonenumbers.GetSupportedCallingCodes(),
		regions: map[string]*phonenumbers.PhoneMetadata{}, nonGeo: map[int]*phonenumbers.PhoneMetadata{}}
	// The collection is parsed when the library loads (it panics otherwise)
	// and cached: these are the very records its own lookups use.
	coll, _ := phonenumbers.MetadataCollection()
	for _, md := range coll.GetMetadata() {
		if md.GetId() == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
			nr.nonGeo[int(md.GetCountryCode())] = md
		} else {
			nr.regions[md.GetId()] = md
		}
	}
	return nr
})

// parse is phonenumbers.Parse(raw, "") for the usual form, '+' and digits
// only, when the number needs none of the library's rewriting (no leading
// zero, nothing its country's national prefix pattern matches): then the
// library's steps come down to splitting off the calling code, and skipping
// them saves its extension and punctuation patterns, half of the cost of
// validating a message. ok is false for anything else, which the library
// must parse; what it parses is written in E.164 already. TestParseMatchesLibrary
// and FuzzParse hold it to the library.
func (nr *numberRules) parse(raw string) (_ *phonenumbers.PhoneNumber, ok bool) {
	digits, plus := strings.CutPrefix(raw, "+")
	if !plus || digits == "" || digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
		return nil, false
	}
	// The first prefix of 1 to 3 digits that is a calling code is the one.
	for i := 1; i <= 3 && i < len(digits); i++ {
		cc, _ := strconv.Atoi(digits[:i])
		if !nr.callingCodes[cc] {
			continue
		}
		nsn := digits[i:]
		if len(nsn) < 2 || len(nsn) > 17 || nsn[0] == '0' {
			return nil, false // too short, too long, or an Italian leading zero
		}
		r := nr.rulesOf(nr.metadata(cc, phonenumbers.GetRegionCodeForCountryCode(cc)))
		if r != nil && r.nationalPrefix != nil && r.nationalPrefix.MatchString(nsn) {
			return nil, false // the library may strip or rewrite it
		}
		n, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			return nil, false
		}
		return &phonenumbers.PhoneNumber{CountryCode: proto.Int32(int32(cc)), NationalNumber: proto.Uint64(n)}, true
	}
	return nil, false
}

// metadata is the metadata of a calling code's region, as the library looks
// it up.
func (nr *numberRules) metadata(cc int, region string) *phonenumbers.PhoneMetadata {
	if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
		return nr.nonGeo[cc]
	}
	return nr.regions[region]
}

// classify returns the region and type of num, as GetRegionCodeForNumber and
// GetNumberType would.
func (nr *numberRules) classify(num *phonenumbers.PhoneNumber) (string, phonenumbers.PhoneNumberType) {
	cc := int(num.GetCountryCode())
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	region, t, typed := nr.region(cc, nsn)
	if typed {
		return region, t
	}
	r := nr.rulesOf(nr.metadata(cc, region))
	if r == nil {
		return region, phonenumbers.UNKNOWN
	}
	return region, r.numberType(nsn)
}

// region is GetRegionCodeForNumber: the only region of the calling code, or
// the first of its regions whose leading digits (or, without those, whose
// patterns) the number matches. When a region's patterns decided, the
// number's type there comes with it (typed), so that classify need not
// match them again as the library does (the main regions of +1, +44 and +7
// have no leading digits).
func (nr *numberRules) region(cc int, nsn string) (_ string, _ phonenumbers.PhoneNumberType, typed bool) {
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	switch len(regions) {
	case 0:
		return "", phonenumbers.UNKNOWN, false
	case 1:
		return regions[0], phonenumbers.UNKNOWN, false
	}
	for _, region := range regions {
		r := nr.rulesOf(nr.regions[region])
		switch {
		case r == nil:
		case r.leading != nil:
			if r.leading.MatchString(nsn) {
				return region, phonenumbers.UNKNOWN, false
			}
		default:
			if t := r.numberType(nsn); t != phonenumbers.UNKNOWN {
				return region, t, true
			}
		}
	}
	return "", phonenumbers.UNKNOWN, false
}

func (nr *numberRules) rulesOf(md *phonenumbers.PhoneMetadata) *metadataRules {
	if md == nil {
		return nil
	}
	if r, ok := nr.byMeta.Load(md); ok {
		return r.(*metadataRules)
	}
	r, _ := nr.byMeta.LoadOrStore(md, compileRules(md))
	return r.(*metadataRules)
}

// metadataRules are the compiled patterns of one region's metadata.
type metadataRules struct {
	leading        *regexp.Regexp // nil when the region has no leading digits
	nationalPrefix *regexp.Regexp // the national prefix for parsing; nil without

	general, premiumRate, tollFree, sharedCost, voip, personal, pager, uan, voicemail, fixedLine, mobile descRule

	sameMobileAndFixedLine bool
}

func compileRules(md *phonenumbers.PhoneMetadata) *metadataRules {
	r := &metadataRules{
		general:                newDescRule(md.GetGeneralDesc()),
		premiumRate:            newDescRule(md.GetPremiumRate()),
		tollFree:               newDescRule(md.GetTollFree()),
		sharedCost:             newDescRule(md.GetSharedCost()),
		voip:                   newDescRule(md.GetVoip()),
		personal:               newDescRule(md.GetPersonalNumber()),
		pager:                  newDescRule(md.GetPager()),
		uan:                    newDescRule(md.GetUan()),
		voicemail:              newDescRule(md.GetVoicemail()),
		fixedLine:              newDescRule(md.GetFixedLine()),
		mobile:                 newDescRule(md.GetMobile()),
		sameMobileAndFixedLine: md.GetSameMobileAndFixedLinePattern(),
	}
	if ld := md.GetLeadingDigits(); ld != "" {
		r.leading = regexp.MustCompile("^(?:" + ld + ")")
	}
	if np := md.GetNationalPrefixForParsing(); np != "" {
		r.nationalPrefix = regexp.MustCompile("^(?:" + np + ")")
	}
	return r
}

// numberType is the library's getNumberTypeHelper, step for step.
func (r *metadataRules) numberType(nsn string) phonenumbers.PhoneNumberType {
	switch {
	case !r.general.match(nsn):
		return phonenumbers.UNKNOWN
	case r.premiumRate.match(nsn):
		return phonenumbers.PREMIUM_RATE
	case r.tollFree.match(nsn):
		return phonenumbers.TOLL_FREE
	case r.sharedCost.match(nsn):
		return phonenumbers.SHARED_COST
	case r.voip.match(nsn):
		return phonenumbers.VOIP
	case r.personal.match(nsn):
		return phonenumbers.PERSONAL_NUMBER
	case r.pager.match(nsn):
		return phonenumbers.PAGER
	case r.uan.match(nsn):
		return phonenumbers.UAN
	case r.voicemail.match(nsn):
		return phonenumbers.VOICEMAIL
	case r.fixedLine.match(nsn):
		if r.sameMobileAndFixedLine || r.mobile.match(nsn) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	case !r.sameMobileAndFixedLine && r.mobile.match(nsn):
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}

// descRule is one number description: its possible lengths (none: any) and
// its whole-number pattern.
type descRule struct {
	lengths []int32
	pattern *regexp.Regexp
}

func newDescRule(d *phonenumbers.PhoneNumberDesc) descRule {
	// A missing description has the empty pattern, which no number matches,
	// as in the library.
	return descRule{lengths: d.GetPossibleLength(), pattern: regexp.MustCompile("^(?:" + d.GetNationalNumberPattern() + ")$")}
}

// match is the library's isNumberMatchingDesc, which tests the pattern twice
// (once as "possible", once as "matching") after the length.
func (d descRule) match(nsn string) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.pattern.MatchString(nsn)
}
