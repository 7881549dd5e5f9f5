package cli

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// versionFrom reads the module version and the VCS stamp; without build
// information it says "unknown". (The binary test cannot see a revision
// when built in a git worktree, which the Go toolchain does not stamp.)
func TestVersionFromBuildInfo(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/drydock-go/statemgmt", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-25T12:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	rev, at, modified := "0123456789abcdef0123456789abcdef01234567", "2026-11-25T12:00:00Z", true
	want := versionView{Module: "github.com/drydock-go/statemgmt", Version: "v1.4.0", Revision: &rev,
		RevisionTime: &at, Modified: &modified, GoVersion: runtime.Version()}
	if diff := cmp.Diff(want, versionFrom(info)); diff != "" {
		t.Errorf("versionFrom (-want +got):\n%s", diff)
	}
	want = versionView{Module: "github.com/drydock-go/statemgmt", Version: "unknown", GoVersion: runtime.Version()}
	if diff := cmp.Diff(want, versionFrom(nil)); diff != "" {
		t.Errorf("versionFrom(nil) (-want +got):\n%s", diff)
	}
}
