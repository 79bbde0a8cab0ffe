package text

// EncodingName names the alphabet of a data_coding as sms.mo's encoding
// field does: gsm7, latin1 (IA5 too), ucs2, or binary for 8-bit data and
// what Decode cannot read.
func EncodingName(dataCoding uint8) string {
	switch alphabetOf(dataCoding) {
	case alphaGSM7:
		return "gsm7"
	case alphaLatin1:
		return "latin1"
	case alphaUCS2:
		return "ucs2"
	}
	return "binary"
}

// Concat is the concatenation information element of a user data header.
type Concat struct {
	Ref   uint16 // the sender's reference of the whole message
	Total uint8  // parts in all
	Seq   uint8  // this part, from 1
}

// SplitUDH splits a short_message that starts with a user data header into
// the header's concatenation element, if it has a valid one (IEI 0x00,
// 8-bit reference, or 0x08, 16-bit), and the text after the header. A
// header longer than the message is not one: the whole is returned as text.
func SplitUDH(b []byte) (c Concat, ok bool, body []byte) {
	if len(b) == 0 || int(b[0]) >= len(b) {
		return Concat{}, false, b
	}
	udh, body := b[1:1+int(b[0])], b[1+int(b[0]):]
	for len(udh) >= 2 {
		iei, n := udh[0], int(udh[1])
		if 2+n > len(udh) {
			break // a truncated element ends the header
		}
		ie := udh[2 : 2+n]
		switch {
		case iei == 0x00 && n == 3:
			c = Concat{Ref: uint16(ie[0]), Total: ie[1], Seq: ie[2]}
		case iei == 0x08 && n == 4:
			c = Concat{Ref: uint16(ie[0])<<8 | uint16(ie[1]), Total: ie[2], Seq: ie[3]}
		}
		udh = udh[2+n:]
	}
	ok = c.Total > 1 && c.Seq >= 1 && c.Seq <= c.Total
	if !ok {
		c = Concat{}
	}
	return c, ok, body
}
