package admin

// JSONScan is what one pass over a JSON text finds before it is decoded.
type JSONScan struct {
	// Depth is the deepest nesting of arrays and objects.
	Depth int
	// LoneSurrogate: a string escapes half of a UTF-16 surrogate pair
	// ("\ud800" not followed by a low half, or a low half alone).
	// encoding/json decodes it as U+FFFD without an error, so two
	// different strings sent by a client (an IdP's "sur\ud800x" and
	// "sur\udbffx") would be stored as one.
	LoneSurrogate bool
}

// ScanJSON scans a JSON text for what encoding/json does not refuse on
// its own. It counts brackets outside strings and reads \u escapes, in one
// pass, so a body of a million "[" costs one pass, not a recursive decode.
// It does not validate the text: a malformed one is left to the decoder.
func ScanJSON(b []byte) JSONScan {
	var s JSONScan
	d := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] != '\\' {
					continue
				}
				i++ // the escaped character
				if i >= len(b) || b[i] != 'u' {
					continue
				}
				r := hex4(b, i+1)
				switch {
				case r >= 0xD800 && r < 0xDC00: // high half: a low half must follow
					if i+10 < len(b) && b[i+5] == '\\' && b[i+6] == 'u' {
						if lo := hex4(b, i+7); lo >= 0xDC00 && lo < 0xE000 {
							i += 10
							continue
						}
					}
					s.LoneSurrogate = true
				case r >= 0xDC00 && r < 0xE000:
					s.LoneSurrogate = true
				}
			}
		case '[', '{':
			d++
			s.Depth = max(s.Depth, d)
		case ']', '}':
			d--
		}
	}
	return s
}

// hex4 is the value of the four hex digits at b[i:], or -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
