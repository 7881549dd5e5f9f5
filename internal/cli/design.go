package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/fetch"
)

func (e *env) designCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "design", Short: "Resolve design-document URIs"}
	var out output
	var file string
	var roots []string
	get := &cobra.Command{Use: "fetch URI", Short: "Fetch a design document", Args: cobra.ExactArgs(1),
		Long: `Fetch a design document: the URIs a task's design_ref takes (file://, http(s)://,
deckhand+http(s)://, promenade+http(s)://).

The document goes to stdout, or with --out-file FILE into FILE ("--out-file -"
is stdout; a new FILE is created readable by its owner only, mode 0600, as
design documents may hold credentials). Its metadata (URL, content type, size, sha256) is printed in the
-o/--output format: on stdout when the document went to a file, on stderr when
the document itself is on stdout.

--root DIR (repeatable) confines file:// URIs to DIR: symbolic links may not
lead out, and only regular files are read. deckhand+ and promenade+ URIs send
the token in $STATECTL_SERVICE_TOKEN.`,
		Example: "  statectl design fetch file:///etc/drydock/site.yaml --root /etc/drydock > site.yaml\n" +
			"  statectl design fetch https://user:pass@designs.example/site.yaml --out-file site.yaml -o json\n" +
			"  STATECTL_SERVICE_TOKEN=... statectl design fetch deckhand+https://deckhand/api/v1.0/revisions/3/rendered-documents",
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return usagef("-o/--output %q: unknown output format (want table, json or yaml; to write the document to a file use --out-file FILE)", out.format)
			}
			uri := args[0]
			scheme, _, _ := strings.Cut(strings.ToLower(uri), ":")
			service := strings.HasPrefix(scheme, "deckhand+") || strings.HasPrefix(scheme, "promenade+")
			tok := os.Getenv("STATECTL_SERVICE_TOKEN")
			if service && strings.TrimSpace(tok) == "" {
				return usagef("%s URIs need a service token: set STATECTL_SERVICE_TOKEN", scheme)
			}
			roots, err := checkRoots(roots)
			if err != nil {
				return err
			}
			if err := checkOutFileDir(file); err != nil {
				return err
			}
			// The returned error says everything a log line would (the
			// attempts included): the fetch logs nothing, so a failure is
			// one line.
			opts := fetch.Options{Roots: roots, Logger: slog.New(slog.DiscardHandler)}
			if strings.TrimSpace(tok) != "" {
				opts.Tokens = fetch.StaticToken(tok)
			}
			r, err := fetch.New(opts)
			if err != nil {
				return usageError{err}
			}
			defer r.Close()
			res, err := r.Fetch(c.Context(), uri)
			switch {
			case errors.Is(err, fetch.ErrOutsideRoots):
				return fmt.Errorf("%w (allowed by --root: %s)", err, strings.Join(roots, ", "))
			case errors.Is(err, fetch.ErrNoTokenSource), errors.Is(err, fetch.ErrEmptyToken):
				return usagef("%s URIs need a service token: set STATECTL_SERVICE_TOKEN", scheme)
			case errors.Is(err, fetch.ErrUnsupportedScheme), errors.Is(err, fetch.ErrInvalidURI):
				// Not a URI statectl can fetch: the command line is wrong. The
				// URI itself is not repeated (it may hold a password).
				return usageError{fmt.Errorf("the URI argument: %w", unprefixed{err, "fetch: "})}
			case err != nil:
				return err
			}
			metaOut := e.stdout
			if file == "" || file == "-" {
				if _, err := e.stdout.Write(res.Data); err != nil {
					return fmt.Errorf("write the document to stdout: %w", err)
				}
				metaOut, file = e.stderr, ""
			} else if err := os.WriteFile(file, res.Data, 0o600); err != nil { // documents may hold credentials
				return fmt.Errorf("--out-file: %w", err)
			}
			meta := struct {
				URL         string `json:"url"`
				ContentType string `json:"content_type"`
				Size        int64  `json:"size"`
				SHA256      string `json:"sha256"`
				WrittenTo   string `json:"written_to,omitempty"`
			}{res.URL, res.ContentType, res.Size, res.SHA256, file}
			return out.write(metaOut, meta, func(tw *tabwriter.Writer) {
				for _, kv := range [][2]string{{"url", meta.URL}, {"content type", orDash(meta.ContentType)},
					{"size", strconv.FormatInt(meta.Size, 10)}, {"sha256", meta.SHA256}, {"written to", orDash(meta.WrittenTo)}} {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
			})
		}}
	get.Flags().StringVar(&file, "out-file", "", `write the document to this file ("-" or none: stdout)`)
	get.Flags().StringArrayVar(&roots, "root", nil, "confine file:// URIs to these directories (repeatable)")
	addOutputFlag(get, &out, "output", "o")
	cmd.AddCommand(get)
	return cmd
}

// unprefixed is err with prefix cut from its message (the package name a
// statectl message need not repeat); errors.Is and As still see err.
type unprefixed struct {
	err    error
	prefix string
}

func (u unprefixed) Error() string { return strings.TrimPrefix(u.err.Error(), u.prefix) }
func (u unprefixed) Unwrap() error { return u.err }

// checkOutFileDir checks, before anything is fetched, that --out-file's
// directory exists.
func checkOutFileDir(file string) error {
	if file == "" || file == "-" {
		return nil
	}
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usagef("--out-file %s: no such directory %s", file, dir)
	case err != nil:
		return usagef("--out-file %s: %v", file, err)
	case !fi.IsDir():
		return usagef("--out-file %s: %s is not a directory", file, dir)
	}
	return nil
}

// checkRoots makes each --root absolute and checks that it is a directory,
// with errors that name the flag.
func checkRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, usagef("--root %s: %v", r, err)
		}
		fi, err := os.Stat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, usagef("--root %s: no such directory", r)
		case err != nil:
			return nil, usagef("--root %s: %v", r, err)
		case !fi.IsDir():
			return nil, usagef("--root %s: not a directory", r)
		}
		out = append(out, abs)
	}
	return out, nil
}
