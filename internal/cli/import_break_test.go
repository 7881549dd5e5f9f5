package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// A password in --from or --to never reaches stdout or stderr, whatever the
// form of the connection string (URL, keyword/value, query parameter) and
// whatever goes wrong (nothing listening, no such database, a URL that does
// not parse, a source that is not Drydock's) or right (a finished import).
func TestImportDrydockBreakPasswordsNeverPrinted(t *testing.T) {
	const pw = "pw-Zq7-secret"
	srcURL, _ := drydockSource(t, false)
	dstURL := statetest.New(t).URL
	withPassword := func(dsn, db string) string { // the test server's keyword/value string, another database, a password
		if !strings.Contains(dsn, "dbname=") {
			t.Skipf("the test server's connection string is not keyword/value: %s", statetest.Redact(dsn))
		}
		if db != "" {
			dsn = regexp.MustCompile(`dbname=\S+`).ReplaceAllString(dsn, "dbname="+db)
		}
		return dsn + " password=" + pw
	}
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"--to on a closed port", []string{"--from", srcURL, "--to", "postgres://statemgmt:" + pw + "@127.0.0.1:1/statemgmt?connect_timeout=2"}, 1},
		{"keyword/value on a closed port", []string{"--from", "host=127.0.0.1 port=1 user=drydock password=" + pw + " dbname=drydock connect_timeout=2", "--to", dstURL}, 1},
		{"password as a query parameter", []string{"--from", "postgres://drydock@127.0.0.1:1/drydock?connect_timeout=2&password=" + pw, "--to", dstURL}, 1},
		{"no such database", []string{"--from", withPassword(srcURL, "no_such_db_for_break"), "--to", dstURL}, 1},
		{"URL that does not parse", []string{"--from", "postgres://drydock:" + pw + "@127.0.0.1:notaport/drydock", "--to", dstURL}, 2},
		{"to URL that does not parse", []string{"--from", srcURL, "--to", "postgres://drydock:" + pw + "@[::1/x"}, 2},
		{"not a Drydock source", []string{"--from", withPassword(dstURL, ""), "--to", withPassword(statetest.New(t).URL, "")}, 1},
		{"an import that finishes", []string{"--from", withPassword(srcURL, ""), "--to", withPassword(dstURL, "")}, 0},
		{"dry run, json", []string{"--from", withPassword(srcURL, ""), "--to", withPassword(dstURL, ""), "--dry-run", "-o", "json"}, 0},
	} {
		r := run(t, "", "", append([]string{"import", "drydock"}, c.args...)...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d\nstderr: %s", c.name, r.code, c.code, strings.ReplaceAll(r.stderr, pw, "<pw>"))
		}
		if strings.Contains(r.stdout+r.stderr, pw) {
			t.Errorf("%s: the password appears in the output:\n%s", c.name, strings.ReplaceAll(r.stdout+r.stderr, pw, "<PASSWORD>"))
		}
	}
}
