package cli

import (
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

func (e *env) leaderCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "leader", Short: "Who leads the orchestrator instances"}
	var out output
	show := &cobra.Command{Use: "show", Short: "Show the current leader and recent terms", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			l, err := s.Leader(c.Context())
			if errors.Is(err, statestore.ErrNotFound) {
				return errors.New("no instance has ever led")
			}
			if err != nil {
				return err
			}
			history, err := s.LeaderHistory(c.Context(), 10)
			if err != nil {
				return err
			}
			view := struct {
				Leader  *statestore.Leader      `json:"leader"`
				History []statestore.LeaderTerm `json:"history"`
			}{l, history}
			return out.write(e.stdout, view, func(tw *tabwriter.Writer) {
				state := "leading"
				switch {
				case l.ResignedAt != nil:
					state = "resigned " + ago(*l.ResignedAt)
				case !l.LockHeld:
					state = "gone (lock not held; the next candidate takes over)"
				}
				for _, kv := range [][2]string{{"identity", l.Identity.String()}, {"term", strconv.FormatInt(l.Term, 10)},
					{"host", fmt.Sprintf("%s (pid %d, backend %d)", orDash(l.Hostname), l.PID, l.BackendPID)},
					{"since", ago(l.ElectedAt)}, {"last seen", ago(l.LastPing)}, {"state", state}} {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
				fmt.Fprintln(tw, "\nTERM\tIDENTITY\tHOST\tELECTED\tENDED\tHOW")
				for _, h := range history {
					ended := "-"
					if h.EndedAt != nil {
						ended = ago(*h.EndedAt)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.Term, h.Identity, orDash(h.Hostname), ago(h.ElectedAt), ended, orDash(h.EndReason))
				}
			})
		}}
	addOutputFlag(show, &out, "output", "o")
	cmd.AddCommand(show)
	return cmd
}
