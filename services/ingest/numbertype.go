package ingest

import (
	"regexp"
	"slices"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// numberRules answers what NormaliseNumber asks libphonenumber of a parsed
// number, its region (GetRegionCodeForNumber) and its type (GetNumberType),
// with the library's own metadata and the same steps, but with each pattern
// compiled once and matched once. The library builds every pattern's string
// and looks it up in a locked cache on each use, matches each pattern twice
// (possible, then valid), and GetNumberType followed by
// GetRegionCodeForNumber walks the regions of a shared country code (+1, +44,
// +7, ...) twice: together 40% of ingest's CPU. TestNumberRulesMatchLibrary
// and FuzzNormaliseNumber hold it to the library's answers.
type numberRules struct {
	regions map[string]*phonenumbers.PhoneMetadata // by region code
	nonGeo  map[int]*phonenumbers.PhoneMetadata    // region "001", by calling code
	byMeta  sync.Map                               // *phonenumbers.PhoneMetadata → *metadataRules, compiled on first use
}

// rules loads the library's metadata once, when the first number is checked.
var rules = sync.OnceValue(func() *numberRules {
	nr := &numberRules{regions: map[string]*phonenumbers.PhoneMetadata{}, nonGeo: map[int]*phonenumbers.PhoneMetadata{}}
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

// classify returns the region and type of num, as GetRegionCodeForNumber and
// GetNumberType would.
func (nr *numberRules) classify(num *phonenumbers.PhoneNumber) (string, phonenumbers.PhoneNumberType) {
	cc := int(num.GetCountryCode())
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	region := nr.region(cc, nsn)
	md := nr.regions[region]
	if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
		md = nr.nonGeo[cc]
	}
	r := nr.rulesOf(md)
	if r == nil {
		return region, phonenumbers.UNKNOWN
	}
	return region, r.numberType(nsn)
}

// region is GetRegionCodeForNumber: the only region of the calling code, or
// the first of its regions whose leading digits (or, without those, whose
// patterns) the number matches.
func (nr *numberRules) region(cc int, nsn string) string {
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	switch len(regions) {
	case 0:
		return ""
	case 1:
		return regions[0]
	}
	for _, region := range regions {
		r := nr.rulesOf(nr.regions[region])
		switch {
		case r == nil:
		case r.leading != nil:
			if r.leading.MatchString(nsn) {
				return region
			}
		case r.numberType(nsn) != phonenumbers.UNKNOWN:
			return region
		}
	}
	return ""
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
	leading *regexp.Regexp // nil when the region has no leading digits

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
