package statetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) { exit(Main(m)) }

// fakeProbes builds probes whose answers the test sets.
func fakeProbes(env map[string]string, libpqOK, dockerOK, binOK bool) probes {
	return probes{
		getenv: func(k string) string { return env[k] },
		libpq: func(context.Context) (string, error) {
			if libpqOK {
				return "user=postgres", nil
			}
			return "", errors.New("connection refused")
		},
		docker: func(context.Context) error {
			if dockerOK {
				return nil
			}
			return errors.New("no engine")
		},
		binaries: func() (string, error) {
			if binOK {
				return "/usr/lib/postgresql/15/bin", nil
			}
			return "", errors.New("not found")
		},
	}
}

func TestChooseOrder(t *testing.T) {
	tests := []struct {
		name                    string
		env                     map[string]string
		libpq, docker, binaries bool
		want                    choice
		wantErr                 string
	}{
		{name: "explicit test URL wins", env: map[string]string{EnvDatabaseURL: "postgres://a/b", EnvFallbackDatabaseURL: "postgres://c/d"},
			libpq: true, docker: true, binaries: true,
			want: choice{source: SourceURL, url: "postgres://a/b", envVar: EnvDatabaseURL}},
		{name: "DATABASE_URL next", env: map[string]string{EnvFallbackDatabaseURL: "postgres://c/d"},
			libpq: true, docker: true, binaries: true,
			want: choice{source: SourceURL, url: "postgres://c/d", envVar: EnvFallbackDatabaseURL}},
		{name: "libpq defaults before docker", libpq: true, docker: true, binaries: true,
			want: choice{source: SourceLibpq, url: "user=postgres"}},
		{name: "docker before binaries", docker: true, binaries: true,
			want: choice{source: SourceDocker}},
		{name: "binaries last", binaries: true,
			want: choice{source: SourceCluster, binDir: "/usr/lib/postgresql/15/bin"}},
		{name: "forced cluster skips the rest", env: map[string]string{EnvServer: "cluster", EnvDatabaseURL: "postgres://a/b"},
			libpq: true, docker: true, binaries: true,
			want: choice{source: SourceCluster, binDir: "/usr/lib/postgresql/15/bin"}},
		{name: "forced docker without docker fails", env: map[string]string{EnvServer: "docker"},
			libpq: true, binaries: true, wantErr: "docker: no engine"},
		{name: "unknown forced source", env: map[string]string{EnvServer: "kubernetes"},
			wantErr: "must be one of url, libpq, docker, cluster"},
		{name: "nothing available", wantErr: "provide one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := choose(context.Background(), fakeProbes(tc.env, tc.libpq, tc.docker, tc.binaries))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("choose() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("choose() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(choice{})); diff != "" {
				t.Errorf("choose() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoServerErrorListsAllFourWays(t *testing.T) {
	_, err := choose(context.Background(), fakeProbes(nil, false, false, false))
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("error = %v, want ErrNoServer", err)
	}
	for _, want := range []string{EnvDatabaseURL, "libpq defaults", "Docker", "initdb", "tried:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error text lacks %q:\n%s", want, err)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:p@h:5/old?sslmode=disable", "postgres://u:p@h:5/new?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/new"},
		{"postgres://h/?dbname=old", "postgres://h/new"},
		{"postgres://u@h/x?sslmode=disable&dbname=old&database=old2&application_name=a", "postgres://u@h/new?sslmode=disable&application_name=a"},
		{"postgres://u@?host=%2Ftmp&dbname=old", "postgres://u@/new?host=%2Ftmp"},
		{"host=/tmp/x port=5432 user=postgres dbname=postgres", "host=/tmp/x port=5432 user=postgres dbname=postgres dbname=new"},
		{"", "dbname=new"},
	}
	for _, tc := range tests {
		got, err := withDatabase(tc.in, "new")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, secret string }{
		{"postgres://user:s3cret@host/db", "s3cret"},
		{"postgres://user@host/db?password=s3cret", "s3cret"},
		{"host=h user=u password=s3cret dbname=d", "s3cret"},
		{"host=h password='s3 cr\\'et' dbname=d", "cr"},
		{"host=h PASSWORD = s3cret", "s3cret"},
	}
	for _, tc := range tests {
		got := Redact(tc.in)
		if strings.Contains(got, tc.secret) {
			t.Errorf("Redact(%q) = %q still holds the password", tc.in, got)
		}
		if !strings.Contains(got, "xxxxx") || !strings.Contains(got, "h") {
			t.Errorf("Redact(%q) = %q: want the password replaced by xxxxx and the rest kept", tc.in, got)
		}
	}
}

func TestMigrationsHashIsStable(t *testing.T) {
	a, b := MigrationsHash(), MigrationsHash()
	if a != b || len(a) != 64 {
		t.Fatalf("MigrationsHash() = %q then %q", a, b)
	}
	if !strings.HasPrefix(TemplateName(), templatePrefix) || len(TemplateName()) != len(templatePrefix)+16 {
		t.Fatalf("TemplateName() = %q", TemplateName())
	}
}
