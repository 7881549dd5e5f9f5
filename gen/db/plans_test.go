package db_test

// The access paths of the store's queries, checked with EXPLAIN on a
// realistic table (220 000 tasks, 1 000 000 messages, 200 000 build-data
// records, 100 000 boot action statuses) and with generic plans
// forced, as the prepared statements pgx uses may get them. A query that
// falls back to a sequential scan of tasks or result_message fails here.

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

const seed = `
INSERT INTO tasks (task_id, status, action, created_at, result_status)
SELECT gen_random_uuid(),
       CASE WHEN g % 1000 = 0 THEN 'queued' WHEN g % 997 = 0 THEN 'running' ELSE 'complete' END,
       (ARRAY['noop','deploy_nodes','prepare_nodes','verify_nodes'])[1 + g % 4],
       now() - make_interval(secs => g), 'success'
FROM generate_series(1, 200000) g;
UPDATE tasks SET claimed_by = 'w', claimed_at = now() WHERE status = 'running';
INSERT INTO tasks (task_id, parent_task_id, status, action, created_at)
SELECT gen_random_uuid(), p.task_id, 'complete', 'deploy_node', p.created_at
FROM (SELECT task_id, created_at FROM tasks ORDER BY created_at LIMIT 2000) p, generate_series(1, 10);
INSERT INTO result_message (task_id, sequence, message)
SELECT t.task_id, s, 'msg' FROM (SELECT task_id FROM tasks LIMIT 100000) t, generate_series(1, 10) s;
INSERT INTO build_data (node_name, task_id, collected_at, generator, data_format, data_element)
SELECT 'node' || (g % 2000), gen_random_uuid(), now() - make_interval(secs => g),
       (ARRAY['lshw','dmesg','lldp'])[1 + g % 3], 'text/plain', 'x'
FROM generate_series(1, 200000) g;
INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash)
SELECT gen_random_uuid(), 'node' || (g % 2000), 'action' || (g % 7), gen_random_uuid(), decode(repeat('00', 32), 'hex')
FROM generate_series(1, 100000) g;
ANALYZE;
`

func TestQueryPlansUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1.2 million rows")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, statetest.New(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, seed); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	id := "'00000000-0000-0000-0000-000000000001'::uuid"
	tests := []struct {
		name, sql, args, wantIndex string
	}{
		{"claim", db.ClaimTasksSQL, "'w'::text, NULL::timestamptz, '{}'::text[], 10", "tasks_queued_idx"},
		{"claim by action", db.ClaimTasksSQL, "'w'::text, NULL::timestamptz, '{deploy_nodes}'::text[], 10", "tasks_queued_idx"},
		{"list page", db.ListTasksSQL, "'{}'::text[], '{}'::text[], NULL::uuid, NULL::timestamptz, NULL::timestamptz, now(), " + id + ", 101", "tasks_created_idx"},
		{"subtasks", db.ListSubtasksSQL, id + ", '{}'::text[]", "tasks_parent_idx"},
		{"messages after", db.ListResultMessagesSQL, id + ", 5::bigint, 1000", "result_message_pkey"},
		{"messages of tasks", db.ListResultMessagesOfTasksSQL, "ARRAY[" + id + "]", "result_message_pkey"},
		{"requeue by claimer", db.RequeueTasksOfClaimerSQL, "'w'::text", "tasks_claimed_idx"},
		{"requeue stale", db.RequeueStaleTasksSQL, "now() - interval '1 hour'", "tasks_claimed_idx"},
		{"retention: lock roots", db.LockRetentionRootsSQL, "now() - interval '1 day', '-infinity'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid, 500", "tasks_created_idx"},
		{"retention: lock trees", db.LockRetentionTreesSQL, "ARRAY[" + id + "]", "tasks_parent_idx"},
		{"retention: delete", db.DeleteTasksByIDSQL, "ARRAY[" + id + "]", "tasks_pkey"},
		// Not here: CountTaskTreesCreatedBefore, the purge prompt's preview, reads every old tree by design.
		{"terminate: lock tree", db.LockTaskTreeSQL, id, "tasks_parent_idx"},
		{"terminate: mark", db.TerminateTasksSQL, "'ops'::text, ARRAY[" + id + "]", "tasks_pkey"},
		{"complete", db.CompleteTasksSQL, "'success'::text, ARRAY[" + id + "], ARRAY[1::bigint]", "tasks_claimed_idx|tasks_pkey"},
		{"requeue by owner", db.RequeueClaimedTasksSQL, "ARRAY[" + id + "], ARRAY[1::bigint]", "tasks_claimed_idx|tasks_pkey"},
		{"get", db.GetTaskSQL, id, "tasks_pkey"},
		{"build data by node", db.ListBuildDataByNodeSQL, "false, 'node7', now(), 9223372036854775807, 100", "build_data_node_idx|build_data_node_generator_idx"},
		{"build data by task", db.ListBuildDataByTaskSQL, "false, " + id + ", now(), 9223372036854775807, 100", "build_data_task_idx"},
		{"build data by node and task", db.ListBuildDataByNodeTaskSQL, "false, 'node7', " + id + ", now(), 9223372036854775807, 100", "build_data_task_idx|build_data_node_idx"},
		{"latest build data of a node", db.LatestBuildDataOfNodeSQL, "false, 'node7', ''::text, 101", "build_data_node_generator_idx"},
		{"latest build data of all nodes", db.LatestBuildDataOfAllNodesSQL, "false, 'node7'::text, 'lshw'::text, 101", "build_data_node_generator_idx"},
		{"boot action statuses of a node", db.ListBootActionStatusesSQL, "'node7'", "boot_action_status_node_idx"},
		{"queued exists", db.QueuedTaskExistsSQL, "'{}'::text[]", "tasks_queued_idx"},
		{"queued exists by action", db.QueuedTaskExistsSQL, "'{deploy_nodes}'::text[]", "tasks_queued_idx"},
		// Both queue statistics' scans on their partial indexes; index-only on a deep queue: below.
		{"queue statistics (metrics)", db.QueueStatsSQL, "", "tasks_queued_idx"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.sql[strings.Index(tc.sql, "\n")+1:] // drop the "-- name:" line
			stmt := "q" + string(rune('a'+i))
			if _, err := conn.Exec(ctx, "PREPARE "+stmt+" AS "+body); err != nil {
				t.Fatalf("prepare: %v", err)
			}
			// EXPLAIN (not ANALYZE): nothing is executed or changed.
			explain := "EXPLAIN EXECUTE " + stmt
			if tc.args != "" {
				explain += "(" + tc.args + ")"
			}
			rows, err := conn.Query(ctx, explain)
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			if containsAny(plan, []string{"Seq Scan on tasks", "Seq Scan on result_message", "Seq Scan on build_data", "Seq Scan on boot_action_status"}) {
				t.Errorf("sequential scan:\n%s", plan)
			}
			if !containsAny(plan, strings.Split(tc.wantIndex, "|")) {
				t.Errorf("plan does not use %s:\n%s", tc.wantIndex, plan)
			}
		})
	}
}

// TestQueueStatsPlanDeepQueue: with 100 000 tasks queued (and 200 running)
// among 220 000, the metrics' queue statistics read only tasks_queued_idx and
// tasks_claimed_idx, index-only (their INCLUDE columns); without those
// columns PostgreSQL scans the whole table.
func TestQueueStatsPlanDeepQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1.2 million rows")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, statetest.New(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, seed); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE tasks SET status = 'queued', claimed_by = NULL, claimed_at = NULL
		WHERE task_id IN (SELECT task_id FROM tasks WHERE status = 'complete' AND parent_task_id IS NULL LIMIT 100000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
		t.Fatal(err)
	}
	body := db.QueueStatsSQL[strings.Index(db.QueueStatsSQL, "\n")+1:]
	rows, err := conn.Query(ctx, "EXPLAIN "+body)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "Index Only Scan using tasks_queued_idx") || !strings.Contains(plan, "Index Only Scan using tasks_claimed_idx") ||
		strings.Contains(plan, "Seq Scan") {
		t.Errorf("queue statistics do not read only tasks_queued_idx and tasks_claimed_idx, index-only:\n%s", plan)
	}
	// For the record (go test -v): the plan as run, with its time.
	rows, err = conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+body)
	if err != nil {
		t.Fatalf("explain analyze: %v", err)
	}
	lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("queue statistics over 100 000 queued tasks:\n%s", strings.Join(lines, "\n"))
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
