package db_test

// The access paths of the store's queries, checked with EXPLAIN on a
// realistic table (220 000 tasks, 1 000 000 messages, 200 000 build-data
// records, 100 000 boot action statuses) and with generic plans
// forced, as the prepared statements pgx uses may get them. A query that
// falls back to a sequential scan of tasks or result_message fails here.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// TestMain runs the tests, drops the seeded database (seededConn) and stops
// any server statetest started (what statetest.Main does, plus the drop).
func TestMain(m *testing.M) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if seeded.db != nil {
		if err := seeded.srv.DropDatabase(ctx, seeded.db.Name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}
	if err := statetest.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

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
INSERT INTO boot_action (node_name, task_id, identity_key_hash)
SELECT 'node' || g, gen_random_uuid(), decode(repeat('00', 32), 'hex') FROM generate_series(1, 2000) g;
INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash)
SELECT gen_random_uuid(), 'node' || (g % 2000), 'action' || (g % 7), gen_random_uuid(), decode(repeat('00', 32), 'hex')
FROM generate_series(1, 100000) g;
-- Statistics from every row (the sample covers the largest table): plans
-- that do not change with ANALYZE's random sample, so the plan files are stable.
INSERT INTO drydock_import_rejected (source_table, source_key, reason)
SELECT CASE WHEN g % 100 = 0 THEN 'tasks' ELSE 'result_message' END, g::text, 'x'
FROM generate_series(1, 100000) g;
SET default_statistics_target = 10000;
ANALYZE;
`

// seeded is the package's one database loaded with seed, shared by the plan
// tests (they only EXPLAIN: nothing is executed or changed) and dropped by
// TestMain.
var seeded struct {
	once sync.Once
	srv  *statetest.Server
	db   *statetest.Database
	err  error
}

// seededConn connects to the seeded database (loading it on first use) with
// generic plans forced, as the prepared statements pgx uses may get them,
// and JIT off (it changes no plan, only what EXPLAIN prints).
func seededConn(t *testing.T) *pgx.Conn {
	t.Helper()
	seeded.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if seeded.srv, seeded.err = statetest.DefaultServer(ctx); seeded.err != nil {
			return
		}
		if seeded.db, seeded.err = seeded.srv.CreateDatabase(ctx); seeded.err != nil {
			return
		}
		conn, err := pgx.Connect(ctx, seeded.db.URL)
		if err != nil {
			seeded.err = fmt.Errorf("connect to %s: %w", seeded.db.Name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, seed); err != nil {
			seeded.err = fmt.Errorf("seed %s: %w", seeded.db.Name, err)
		}
	})
	if seeded.err != nil {
		t.Fatal(seeded.err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, seeded.db.URL)
	if err != nil {
		t.Fatalf("connect to %s: %v", seeded.db.Name, err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan; SET jit = off"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// planCase is one query EXPLAINed on the seeded database: the arguments of
// its EXECUTE, the index its plan must use (one of a |-separated list), and
// for the hot paths the file under queries/plans its plan is kept in.
type planCase struct {
	name, sql, args, wantIndex, file string
}

const planID = "'00000000-0000-0000-0000-000000000001'::uuid"

var planCases = []planCase{
	{"claim", db.ClaimTasksSQL, "'{}'::text[], 10, 'w'::text, NULL::timestamptz", "tasks_queued_idx", "ClaimTasks"},
	{"claim by action", db.ClaimTasksSQL, "'{deploy_nodes}'::text[], 10, 'w'::text, NULL::timestamptz", "tasks_queued_idx", ""},
	{"list page", db.ListTasksSQL, "'{}'::text[], '{}'::text[], NULL::uuid, NULL::timestamptz, NULL::timestamptz, now(), " + planID + ", 101", "tasks_created_idx", "ListTasks"},
	{"subtasks", db.ListSubtasksSQL, planID + ", '{}'::text[]", "tasks_parent_idx", "ListSubtasks"},
	{"messages after", db.ListResultMessagesSQL, planID + ", 5::bigint, 1000", "result_message_pkey", "ListResultMessages"},
	{"messages of tasks", db.ListResultMessagesOfTasksSQL, "ARRAY[" + planID + "]", "result_message_pkey", "ListResultMessagesOfTasks"},
	{"requeue by claimer", db.RequeueTasksOfClaimerSQL, "'w'::text", "tasks_claimed_idx", ""},
	{"requeue stale", db.RequeueStaleTasksSQL, "now() - interval '1 hour'", "tasks_claimed_idx", ""},
	{"retention: lock roots", db.LockRetentionRootsSQL, "now() - interval '1 day', '-infinity'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid, 500", "tasks_created_idx", "LockRetentionRoots"},
	{"retention: lock trees", db.LockRetentionTreesSQL, "ARRAY[" + planID + "]", "tasks_parent_idx", "LockRetentionTrees"},
	{"retention: delete", db.DeleteTasksByIDSQL, "ARRAY[" + planID + "]", "tasks_pkey", "DeleteTasksByID"},
	// Not here: CountTaskTreesCreatedBefore, the purge prompt's preview, reads every old tree by design.
	{"terminate: lock tree", db.LockTaskTreeSQL, planID, "tasks_parent_idx", "LockTaskTree"},
	{"terminate: mark", db.TerminateTasksSQL, "'ops'::text, ARRAY[" + planID + "]", "tasks_pkey", "TerminateTasks"},
	{"complete", db.CompleteTasksSQL, "'success'::text, ARRAY[" + planID + "], ARRAY[1::bigint]", "tasks_claimed_idx|tasks_pkey", ""},
	{"requeue by owner", db.RequeueClaimedTasksSQL, "ARRAY[" + planID + "], ARRAY[1::bigint]", "tasks_claimed_idx|tasks_pkey", ""},
	{"get", db.GetTaskSQL, planID, "tasks_pkey", ""},
	{"build data by node", db.ListBuildDataByNodeSQL, "false, 'node7', now(), 9223372036854775807, 100", "build_data_node_idx|build_data_node_generator_idx", ""},
	{"build data by task", db.ListBuildDataByTaskSQL, "false, " + planID + ", now(), 9223372036854775807, 100", "build_data_task_idx", ""},
	{"build data by node and task", db.ListBuildDataByNodeTaskSQL, "false, 'node7', " + planID + ", now(), 9223372036854775807, 100", "build_data_task_idx|build_data_node_idx", ""},
	{"latest build data of a node", db.LatestBuildDataOfNodeSQL, "false, 'node7', ''::text, 101", "build_data_node_generator_idx", "LatestBuildDataOfNode"},
	{"latest build data of all nodes", db.LatestBuildDataOfAllNodesSQL, "false, 'node7'::text, 'lshw'::text, 101", "build_data_node_generator_idx", "LatestBuildDataOfAllNodes"},
	{"boot action statuses of a node", db.ListBootActionStatusesSQL, "'node7'", "boot_action_status_node_idx", ""},
	{"queued exists", db.QueuedTaskExistsSQL, "'{}'::text[]", "tasks_queued_idx", ""},
	{"queued exists by action", db.QueuedTaskExistsSQL, "'{deploy_nodes}'::text[]", "tasks_queued_idx", ""},
	{"list page by status", db.ListTasksFilteredSQL, "'{running,requested}'::text[], now(), " + planID + ", 101, '{}'::text[]", "tasks_action_status_created_idx", ""},
	{"list page by action", db.ListTasksFilteredSQL, "'{requested,queued,running,terminating,terminated,complete}'::text[], now(), " + planID + ", 101, '{deploy_nodes}'::text[]", "tasks_action_status_created_idx", ""},
	{"list page by action and status", db.ListTasksFilteredSQL, "'{running}'::text[], now(), " + planID + ", 101, '{deploy_nodes,noop}'::text[]", "tasks_action_status_created_idx", ""},
	{"task tree", db.ListTaskTreeSQL, planID + ", 5001", "tasks_parent_idx", ""},
	{"task ancestors", db.ListTaskAncestorsSQL, planID, "tasks_pkey", ""},
	{"latest build data previews of a node", db.BuildDataPreviewsSQL, "4096, 'node7', 101", "build_data_node_generator_idx", ""},
	{"boot action contexts", db.ListBootActionContextsSQL, "''::text, 101", "boot_action_pkey", ""},
	{"idempotent append: lock", db.LockTaskForAppendSQL, planID, "tasks_pkey", ""},
	{"idempotent append: client ids", db.ListMessagesByClientIDSQL, planID + ", '{c1,c2}'::text[]", "result_message_client_message_id_key", ""},
	{"retried create: tasks by id", db.GetTasksSQL, "ARRAY[" + planID + "]", "tasks_pkey", ""},
	{"queue statistics (metrics)", db.QueueStatsSQL, "", "tasks_queued_idx", ""},
	{"import: existing task ids", db.ExistingTaskIDsSQL, "ARRAY[" + planID + "]", "tasks_pkey", ""},
	{"import: rejected task keys", db.DrydockImportRejectedTaskKeysSQL, "", "drydock_import_rejected_table_idx", ""},
}

// explain PREPAREs the case's query as stmt on conn and returns the lines of
// EXPLAIN EXECUTE (not ANALYZE: nothing is executed or changed), with the
// given EXPLAIN options ("" for the defaults).
func explain(t *testing.T, conn *pgx.Conn, stmt, options string, tc planCase) []string {
	t.Helper()
	ctx := context.Background()
	body := tc.sql[strings.Index(tc.sql, "\n")+1:] // drop the "-- name:" line
	if _, err := conn.Exec(ctx, "PREPARE "+stmt+" AS "+body); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	args := "(" + tc.args + ")"
	if tc.args == "" {
		args = "" // a query without parameters
	}
	rows, err := conn.Query(ctx, "EXPLAIN "+options+" EXECUTE "+stmt+args)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestQueryPlansUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1.2 million rows")
	}
	conn := seededConn(t)
	for i, tc := range planCases {
		t.Run(tc.name, func(t *testing.T) {
			plan := strings.Join(explain(t, conn, fmt.Sprintf("q%d", i), "", tc), "\n")
			if containsAny(plan, []string{"Seq Scan on tasks", "Seq Scan on result_message", "Seq Scan on build_data", "Seq Scan on boot_action_status"}) {
				t.Errorf("sequential scan:\n%s", plan)
			}
			if !containsAny(plan, strings.Split(tc.wantIndex, "|")) {
				t.Errorf("plan does not use %s:\n%s", tc.wantIndex, plan)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
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
	if _, err := conn.Exec(ctx, seed); err != nil { // its own database: it changes rows
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
