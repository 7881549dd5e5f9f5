package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

// versionView is what statectl version prints.
type versionView struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	// Revision, RevisionTime and Modified are the VCS stamp; null when the
	// binary carries none.
	Revision     *string    `json:"revision"`
	RevisionTime *string    `json:"revision_time"`
	Modified     *bool      `json:"modified"`
	GoVersion    string     `json:"go_version"`
	Schema       schemaView `json:"schema"`
}

// schemaView compares the connected database's schema with this binary's.
type schemaView struct {
	// Latest is the version this statectl's migrations lead to.
	Latest int32 `json:"latest"`
	// Database is the connected database's version; null when no database
	// answered.
	Database *int32 `json:"database"`
	// State says how the two compare, or why there is no database version.
	State string `json:"state"`
}

// versionTimeout bounds version's attempt to reach a database: it answers
// quickly without one.
const versionTimeout = 3 * time.Second

func (e *env) versionCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{Use: "version", Short: "Print statectl's version and VCS revision, and the database's schema version", Args: cobra.NoArgs,
		Long: `Print statectl's module version, the VCS revision it was built from, the Go
version, and the schema version its migrations lead to; when a database is
reachable (--database-url, DATABASE_URL or libpq defaults, waiting at most
3s), also that database's schema version compared with it. Without a
database it prints the rest and still exits 0.`,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			v := buildVersion()
			v.Schema = e.schemaOfDatabase(c.Context())
			return out.write(e.stdout, v, func(tw *tabwriter.Writer) {
				rev := "unknown (built without VCS information)"
				if v.Revision != nil {
					rev = *v.Revision
					if v.RevisionTime != nil {
						rev += " (" + *v.RevisionTime + ")"
					}
					if v.Modified != nil && *v.Modified {
						rev += ", with uncommitted changes"
					}
				}
				db := v.Schema.State
				if v.Schema.Database != nil {
					db = fmt.Sprintf("version %d of %d: %s", *v.Schema.Database, v.Schema.Latest, v.Schema.State)
				}
				for _, kv := range [][2]string{{"statectl", v.Version}, {"module", v.Module}, {"revision", rev}, {"go", v.GoVersion},
					{"schema", "migrates to version " + strconv.Itoa(int(v.Schema.Latest))}, {"database schema", db}} {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
			})
		}}
	addOutputFlag(cmd, &out, "output", "o")
	return cmd
}

// buildVersion reads the module version and VCS stamp the Go toolchain
// embedded in the binary.
func buildVersion() versionView {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return versionFrom(info)
}

// versionFrom reads a version from build information (nil: none). The
// VCS stamp is there when the binary was built from a git checkout with
// -buildvcs (the default; a git worktree, whose .git is a file, gets none).
func versionFrom(info *debug.BuildInfo) versionView {
	v := versionView{Module: "github.com/drydock-go/statemgmt", Version: "unknown", GoVersion: runtime.Version()}
	if info == nil {
		return v
	}
	if info.Main.Path != "" {
		v.Module = info.Main.Path
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = &s.Value
		case "vcs.time":
			v.RevisionTime = &s.Value
		case "vcs.modified":
			modified := s.Value == "true"
			v.Modified = &modified
		}
	}
	return v
}

// schemaOfDatabase reads the schema version of the database statectl
// would connect to; a database that cannot be reached is reported in State,
// not as an error.
func (e *env) schemaOfDatabase(ctx context.Context) schemaView {
	sv := schemaView{Latest: statestore.LatestSchemaVersion()}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	s, closeFn, err := e.openStore(ctx, versionTimeout, statestore.Options{Logger: e.logger})
	if err != nil {
		sv.State = "no database reachable (" + oneLine(err.Error()) + ")"
		return sv
	}
	defer closeFn()
	v, err := s.ReadSchemaVersion(ctx)
	if err != nil {
		sv.State = "schema version unreadable (" + oneLine(err.Error()) + ")"
		return sv
	}
	sv.Database = &v
	switch {
	case v == 0:
		sv.State = `not migrated: run "statectl migrate up"`
	case v < sv.Latest:
		sv.State = fmt.Sprintf(`%d migration(s) pending: run "statectl migrate up"`, sv.Latest-v)
	case v > sv.Latest:
		sv.State = "newer than this statectl knows: use a newer statectl"
	default:
		sv.State = "up to date"
	}
	return sv
}
