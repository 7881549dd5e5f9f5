package fetch

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseTarget: URI parsing and scheme dispatch never panic, and never
// put a URI's password into an error or the cache key.
func FuzzParseTarget(f *testing.F) {
	for _, seed := range []string{
		"file:///etc/drydock/site.yaml", "file:relative", "file://host/x", "http://u:p@h/x",
		"https://h:8443/a?b=c#sha256=00", "deckhand+https://u:pw@deckhand:9000/api/v1.0/revisions/1/rendered-documents",
		"promenade+http://h/", "ftp://x", "", "http://[::1", "http://h:99999", "HTTP://H/X", "file://localhost/tmp/x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		tgt, err := parseTarget(uri)
		password := ""
		if u, perr := url.Parse(uri); perr == nil && u.User != nil {
			password, _ = u.User.Password()
			// A password that also appears elsewhere in the URI (host, path,
			// scheme) may legitimately show up there: nothing to check.
			if strings.Contains(strings.Replace(uri, u.User.String(), "", 1), password) {
				password = ""
			}
		}
		if err != nil {
			if len(password) >= 4 && strings.Contains(err.Error(), password) {
				t.Fatalf("error %q leaks the password", err)
			}
			return
		}
		if _, ok := handlers[tgt.scheme]; !ok {
			t.Fatalf("dispatched to unknown scheme %q", tgt.scheme)
		}
		if tgt.u.User != nil || (len(password) >= 4 && strings.Contains(tgt.key, password)) {
			t.Fatalf("cache key %q keeps credentials", tgt.key)
		}
	})
}
