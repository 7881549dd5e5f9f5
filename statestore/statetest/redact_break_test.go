package statetest

import (
	"strings"
	"testing"
)

// TestBreakRedactKeepsSSLPassword: Redact is what the kit logs for a kept
// database and what the demo prints for --database-url ("password
// redacted"). In the URL form it hides only the userinfo password and a
// `password` query parameter; `sslpassword` (the passphrase of the client
// key, which pgx honours) is printed as is. The keyword/value form happens
// to hide it (its regex matches the "password=" inside "sslpassword=").
// Suggested fix: redact every query parameter whose name contains
// "password" (sslpassword included).
func TestBreakRedactKeepsSSLPassword(t *testing.T) {
	for _, cs := range []string{
		"postgres://u@127.0.0.1/db?sslmode=verify-full&sslkey=/k.pem&sslpassword=s3cretpass",
		"host=127.0.0.1 dbname=db sslkey=/k.pem sslpassword=s3cretpass",
	} {
		if got := Redact(cs); strings.Contains(got, "s3cretpass") {
			t.Errorf("Redact(%q) = %q: the key passphrase is shown", cs, got)
		}
	}
}
