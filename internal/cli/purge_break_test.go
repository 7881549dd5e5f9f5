package cli

import (
	"context"
	"testing"

	"github.com/drydock-go/statemgmt/statestore"
)

// Defect: parseAge multiplies the day count into a time.Duration without an
// overflow check: "106752d" (one day past time.Duration's ~292 years)
// wraps to about -292 years, so `task purge --older-than 106752d` (meant:
// "only trees older than 292 years", i.e. nothing) computes a cutoff ~292
// years in the FUTURE and purges every finished tree, including ones created
// a second ago (and, with --include-active, everything). The negative-age
// check (days < 0) runs before the multiplication, so it does not catch it.
// Suggested fix: reject days > math.MaxInt64/(24*time.Hour) (or cap it), and
// check d >= 0 after conversion.
func TestBreakPurgeOlderThanHugeDaysDeletesEverything(t *testing.T) {
	if d, err := parseAge("106752d"); err == nil && d < 0 {
		t.Errorf("parseAge(\"106752d\") = %v, nil: a negative age", d)
	}
	ctx := context.Background()
	url, s := setup(t)
	fresh, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TerminateTask(ctx, fresh.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	r := run(t, url, "", "task", "purge", "--older-than", "106752d", "--yes")
	if _, err := s.GetTask(ctx, fresh.ID); err != nil {
		t.Fatalf("purge --older-than 106752d deleted a task created a moment ago (get: %v)\nstdout: %s", err, r.stdout)
	}
}
