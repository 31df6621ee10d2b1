package console

import (
	"strings"
)

// browserOf names the browser and system of a User-Agent header the way
// a person reads them ("Chrome 120 on Linux"), for the login history. It
// recognises the browsers and systems people use; anything else is
// shown as its first product token, cut short, so a crafted header
// cannot fill the page.
func browserOf(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return ""
	}
	name := ""
	for _, b := range []struct{ token, name string }{
		// Order matters: Edge and Opera also say Chrome; Chrome also says
		// Safari.
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"}, {"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Version/", "Safari"}, // Safari's version is under Version/
	} {
		if v, ok := versionAfter(ua, b.token); ok {
			if b.name == "Safari" && !strings.Contains(ua, "Safari/") {
				continue
			}
			name = b.name + " " + v
			break
		}
	}
	if name == "" {
		first, _, _ := strings.Cut(ua, " ")
		product, version, _ := strings.Cut(first, "/")
		version, _, _ = strings.Cut(version, ".")
		name = strings.TrimSpace(product + " " + version)
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		if strings.Contains(ua, "(") {
			if os := systemOf(ua); os != "" {
				return name + " on " + os
			}
		}
		return name
	}
	if os := systemOf(ua); os != "" {
		return name + " on " + os
	}
	return name
}

// versionAfter is the major version following token ("Chrome/120.0" →
// "120").
func versionAfter(ua, token string) (string, bool) {
	i := strings.Index(ua, token)
	if i < 0 {
		return "", false
	}
	v := ua[i+len(token):]
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	if end == 0 || end > 6 {
		return "", false
	}
	return v[:end], true
}

func systemOf(ua string) string {
	switch {
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"), strings.Contains(ua, "iPod"):
		return "iOS"
	case strings.Contains(ua, "Android"):
		return "Android"
	case strings.Contains(ua, "CrOS"):
		return "ChromeOS"
	case strings.Contains(ua, "Windows"):
		return "Windows"
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		return "macOS"
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		return "Linux"
	}
	return ""
}
