package statetest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportingStatetestPullsNoDocker builds a tiny consumer module that
// imports only statetest (replaced by this checkout) and checks that neither
// its go.mod, its go.sum nor its package graph mention testcontainers,
// Docker or moby: those live in the statetestdocker module.
func TestImportingStatetestPullsNoDocker(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build a consumer module with")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/consumer\n\ngo 1.26.8\n\nrequire github.com/drydock-go/statemgmt v0.0.0\n\n" +
			"replace github.com/drydock-go/statemgmt => " + root + "\n",
		"consumer_test.go": "package consumer\n\nimport (\n\t\"os\"\n\t\"testing\"\n\n" +
			"\t\"github.com/drydock-go/statemgmt/statestore/statetest\"\n)\n\n" +
			"func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }\n",
		"consumer.go": "// Package consumer uses statetest in its tests only.\npackage consumer\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(context.Background(), goBin, args...)
		cmd.Dir = dir
		// GOPROXY, GOMODCACHE and the rest come from the environment.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	deps := run("list", "-deps", "-test", "./...")
	if !strings.Contains(deps, "github.com/drydock-go/statemgmt/statestore/statetest") {
		t.Fatalf("go list -deps does not list statetest; the consumer is not built as intended:\n%s", deps)
	}
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		checkNoDocker(t, name, string(b))
	}
	checkNoDocker(t, "go list -deps -test", deps)
}

func checkNoDocker(t *testing.T, what, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		l := strings.ToLower(line)
		for _, bad := range []string{"testcontainers", "docker", "moby"} {
			if strings.Contains(l, bad) {
				t.Errorf("%s of a module importing only statetest mentions %s: %s", what, bad, line)
			}
		}
	}
}

// TestDockerSourceWithoutProvider checks that, with no provider registered,
// the Docker source is skipped and forcing it says what to import.
func TestDockerSourceWithoutProvider(t *testing.T) {
	if registeredDocker() != nil {
		t.Skip("a Docker provider is registered in this binary")
	}
	err := probeDocker(context.Background())
	if !errors.Is(err, errNoDockerProvider) || !strings.Contains(err.Error(), DockerModule) {
		t.Fatalf("probeDocker() = %v, want errNoDockerProvider naming %s", err, DockerModule)
	}
	_, err = startDocker(context.Background(), "")
	if !errors.Is(err, errNoDockerProvider) {
		t.Fatalf("startDocker() = %v, want errNoDockerProvider", err)
	}
}
