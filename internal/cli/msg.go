package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

func (e *env) msgCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "msg", Short: "Read a task's messages"}
	var follow bool
	var out output
	tail := &cobra.Command{Use: "tail ID", Short: "Print a task's messages; -f follows new ones live", Args: cobra.ExactArgs(1),
		Example: "  statectl msg tail 0192f7c4-... -f",
		RunE: func(c *cobra.Command, args []string) error {
			s, closeFn, id, err := e.openForTask(c, &out, args)
			if err != nil {
				return err
			}
			defer closeFn()
			if _, err := s.GetTask(c.Context(), id); err != nil {
				return err
			}
			// One record per message: a table line, a JSON Lines object or
			// a YAML document, so -f can print each as it comes.
			print := func(m statestore.ResultMessage) error {
				return out.writeRecord(e.stdout, viewMessage(m), func() error {
					_, err := fmt.Fprintf(e.stdout, "#%d %s %s%s %s\n", m.Sequence, ago(m.Time), errMark(m.Error), orDash(m.Context), m.Message)
					return err
				})
			}
			if !follow {
				for after := int64(0); ; {
					batch, err := s.Messages(c.Context(), id, after, 1000)
					if err != nil {
						return err
					}
					for _, m := range batch {
						if err := print(m); err != nil {
							return err
						}
						after = m.Sequence
					}
					if len(batch) < 1000 {
						return nil
					}
				}
			}
			err = e.follow(c.Context(), s, id, print)
			if errors.Is(err, context.Canceled) {
				return nil // Ctrl-C ends a follow normally
			}
			return err
		}}
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep following new messages until interrupted")
	tail.Flags().StringVarP(&out.format, "output", "o", "table",
		"output format: table (a line per message), json (JSON Lines: one object per line) or yaml (a document per message, each opened by ---)")
	cmd.AddCommand(tail)
	return cmd
}

// printError marks an error of the printing side of a follow (stdout
// closed): it ends the follow, unlike a lost database connection.
type printError struct{ err error }

// follow prints task id's messages as they come until ctx ends. When the
// database goes away (a restart, a dropped connection) it says so on
// stderr, retries with a capped backoff that starts over once the database
// answers again, and resumes after the last sequence it printed: nothing
// is printed twice or skipped.
func (e *env) follow(ctx context.Context, s *statestore.Store, id uuid.UUID, print func(statestore.ResultMessage) error) error {
	after := int64(0)
	printed := func(m statestore.ResultMessage) error {
		if err := print(m); err != nil {
			return printError{err}
		}
		after = m.Sequence
		return nil
	}
	backoff := followRetryMin
	for {
		err := s.TailMessages(ctx, id, after, printed)
		var perr printError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &perr), errors.Is(err, statestore.ErrNotFound), errors.Is(err, statestore.ErrInvalidInput):
			return err
		}
		// The database is unreachable: wait, and try it before tailing again.
		for {
			fmt.Fprintf(e.stderr, "statectl: lost the database (%s); retrying in %s\n", oneLine(err.Error()), backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			if _, err = s.Now(ctx); err == nil {
				backoff = followRetryMin
				fmt.Fprintf(e.stderr, "statectl: reconnected; following after #%d\n", after)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			backoff = min(backoff*2, followRetryMax)
		}
	}
}

func (p printError) Error() string { return p.err.Error() }

func (p printError) Unwrap() error { return p.err }

// Backoff of msg tail -f between attempts to reach the database again.
const (
	followRetryMin = 100 * time.Millisecond
	followRetryMax = 5 * time.Second
)
