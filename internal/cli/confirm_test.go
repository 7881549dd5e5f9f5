package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("stdin broke") }

// TestConfirm: only y or yes confirms; end of input is a no; a failing
// stdin is an error, not a silent no.
func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stdin   io.Reader
		want    bool
		wantErr bool
	}{
		{"yes", strings.NewReader("yes\n"), true, false},
		{"Y without newline", strings.NewReader("Y"), true, false},
		{"no", strings.NewReader("n\n"), false, false},
		{"empty input", strings.NewReader(""), false, false},
		{"failing stdin", failingReader{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := &env{stdin: tc.stdin, stderr: &stderr}
			got, err := e.confirm("sure? ")
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("confirm = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
			if stderr.String() != "sure? " {
				t.Fatalf("prompt %q", stderr.String())
			}
		})
	}
}
