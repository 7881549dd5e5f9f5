package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// DEFECT: --root is a StringSlice flag, so pflag splits its value as CSV: a
// root directory whose name contains a comma ("designs,v2") becomes two
// roots, "…/designs" and "v2", and the command fails with "--root …/designs:
// no such directory" — a directory the user never named; a name with a
// double quote is a CSV parse error. The help says "--root DIR
// (repeatable)": repetition is the way to give several. Suggested fix:
// StringArrayVar (one flag, one directory).
func TestBreakDesignFetchRootWithComma(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"designs,v2", `say "hi"`} {
		root := filepath.Join(dir, name)
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		doc := filepath.Join(root, "site.yaml")
		if err := os.WriteFile(doc, []byte("kind: Site\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := run(t, "", "", "design", "fetch", "file://"+doc, "--root", root)
		if r.code != 0 || r.stdout != "kind: Site\n" {
			t.Errorf("--root %q: exit %d, stderr %q", root, r.code, r.stderr)
		}
	}
}

// --out-file creates the file readable by its owner only (0600): design
// documents may hold credentials (passwords, keys), and 0644 handed them to
// every local user.
func TestDesignFetchOutFileOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(doc, []byte("password: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "copy.yaml")
	run(t, "", "", "design", "fetch", "file://"+doc, "--out-file", out).want(t, 0, "written to:")
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("--out-file created %s with mode %v, want 0600", out, perm)
	}
}
