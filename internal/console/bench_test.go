package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/internal/console"
	"github.com/drydock-go/statemgmt/statestore"
)

// benchTasks is the size of the benchmark's task table:
// $STATEMGMT_CONSOLE_BENCH_TASKS, default 100 000.
func benchTasks(b *testing.B) int {
	n := 100000
	if v := os.Getenv("STATEMGMT_CONSOLE_BENCH_TASKS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("STATEMGMT_CONSOLE_BENCH_TASKS=%q: want a number of tasks, at least 1000", v)
		}
	}
	return n
}

// BenchmarkConsolePages times the console's pages, through the handler
// (httptest), over a table of benchTasks tasks, mostly finished as in a
// long-running site: 94% complete, 3% queued, 2% requested, 1% running,
// and a few terminating; plus a tree of 1 000 subtasks (100 children with
// 9 subtasks each).
func BenchmarkConsolePages(b *testing.B) {
	ctx := context.Background()
	n := benchTasks(b)
	f := seed(b, 0, 0)
	s := f.store
	actions := []string{"deploy_node", "prepare_site", "verify_site", "prepare_node", "destroy_node"}
	for start := 0; start < n; start += 5000 {
		batch := make([]statestore.NewTask, 0, 5000)
		for i := start; i < min(n, start+5000); i++ {
			batch = append(batch, statestore.NewTask{Action: actions[i%len(actions)], CreatedBy: "bench"})
		}
		if _, err := s.CreateTasks(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	// The status mix, set directly (a fixture, not a lifecycle).
	if _, err := f.pool.Exec(ctx, `UPDATE tasks SET
		status = CASE WHEN h < 94 THEN 'complete' WHEN h < 97 THEN 'queued' WHEN h < 99 THEN 'requested' ELSE 'running' END,
		result_status = CASE WHEN h < 94 THEN 'success' ELSE 'incomplete' END,
		claimed_by = CASE WHEN h >= 99 THEN 'orchestrator-1' END,
		claimed_at = CASE WHEN h >= 99 THEN now() END,
		attempt = CASE WHEN h >= 94 AND h < 97 THEN 0 ELSE 1 END
		FROM (SELECT task_id AS id, abs(hashtext(task_id::text)) % 100 AS h FROM tasks WHERE created_by = 'bench') x
		WHERE task_id = x.id`); err != nil {
		b.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE tasks SET status = 'terminating', terminate = true
		WHERE task_id IN (SELECT task_id FROM tasks WHERE status = 'running' ORDER BY task_id LIMIT 10)`); err != nil {
		b.Fatal(err)
	}
	root, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_site"})
	if err != nil {
		b.Fatal(err)
	}
	var tree []statestore.NewTask
	for range 100 {
		child := uuid.Must(uuid.NewV7())
		tree = append(tree, statestore.NewTask{ID: child, ParentID: &root.ID, Action: "deploy_node"})
		for range 9 {
			tree = append(tree, statestore.NewTask{ParentID: &child, Action: "prepare_node"})
		}
	}
	if _, err := s.CreateTasks(ctx, tree...); err != nil {
		b.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `ANALYZE tasks`); err != nil {
		b.Fatal(err)
	}
	// Cursors about 90% deep into the whole list and the queued list.
	deep := func(filter statestore.TaskFilter, frac float64) string {
		total := 0
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE cardinality($1::text[]) = 0 OR status = ANY($1::text[])`,
			filter.Statuses).Scan(&total); err != nil {
			b.Fatal(err)
		}
		skip, cursor := int(float64(total)*frac), ""
		for skip > 0 {
			filter.Limit, filter.Cursor = min(skip, 10000), cursor
			page, err := s.ListTasks(ctx, filter)
			if err != nil {
				b.Fatal(err)
			}
			skip -= len(page.Tasks)
			cursor = page.Next
		}
		return cursor
	}
	queued := statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.StatusQueued}}
	h, err := console.New(s, console.Options{Prefix: "/console"})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d tasks; a tree of %d subtasks", n+1+len(tree), len(tree))
	for _, tc := range []struct{ name, path string }{
		{"first-page", "/console/tasks"},
		{"deep-page-90pct", "/console/tasks?cursor=" + deep(statestore.TaskFilter{}, 0.9)},
		{"queued-first-page", "/console/tasks?status=queued"},
		{"queued-deep-page-90pct", "/console/tasks?status=queued&cursor=" + deep(queued, 0.9)},
		{"action-filter-first-page", "/console/tasks?action=destroy_node"},
		{"rare-status-terminating", "/console/tasks?status=terminating"},
		{"tree-1000-subtasks", "/console/tasks/" + root.ID.String()},
		{"leadership", "/console/leadership"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %.200s", tc.path, rec.Code, rec.Body.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
		})
	}
}
