package drydockdb_test

// The access paths of the importer's page queries on a Drydock database,
// checked with EXPLAIN on realistic counts (200 000 tasks, 1 000 000
// messages, 200 000 build data records of 2 000 nodes, 2 000 boot actions,
// 100 000 runs) with generic plans forced, as pgx's prepared statements may
// get them. Whole-table reads (the task graph, the fingerprint's counts)
// are sequential by design and not checked here.

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/gen/drydockdb"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

const seed = `
INSERT INTO tasks (task_id, status, action, created)
SELECT decode(md5(g::text), 'hex'), 'complete', 'deploy_nodes', now() - make_interval(secs => g)
FROM generate_series(1, 200000) g;
INSERT INTO result_message (task_id, message, ts, extra)
SELECT decode(md5((g % 200000)::text), 'hex'), 'msg', now(), '"{}"' FROM generate_series(1, 1000000) g;
INSERT INTO build_data (node_name, task_id, collected_date, generator, data_format, data_element)
SELECT 'node' || (g % 2000), decode(md5(g::text), 'hex'), now() - make_interval(secs => g),
       (ARRAY['lshw','dmesg','lldp'])[1 + g % 3], 'text/plain', 'x'
FROM generate_series(1, 200000) g;
INSERT INTO boot_action SELECT 'node' || g, decode(md5(g::text), 'hex'), decode(md5(g::text) || md5(g::text), 'hex')
FROM generate_series(1, 2000) g;
INSERT INTO boot_action_status (node_name, action_id, action_name, task_id, identity_key, action_status)
SELECT 'node' || (g % 2000), decode(md5('a' || g), 'hex'), 'hw_config', decode(md5(g::text), 'hex'), NULL, 'success'
FROM generate_series(1, 100000) g;
ANALYZE;
`

func TestSourceQueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1.5 million rows")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, statetest.NewEmpty(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, err := os.ReadFile("../../internal/drydockimport/testdata/drydock_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, seed); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	ids := "ARRAY[decode(md5('1'), 'hex'), decode(md5('2'), 'hex')]"
	for i, tc := range []struct{ name, sql, args, wantIndex string }{
		{"tasks by id", drydockdb.SourceTasksSQL, ids, "tasks_pkey"},
		{"messages page", drydockdb.SourceMessagesSQL, "500000, 5000", "result_message_pkey"},
		{"build data nodes", drydockdb.SourceBuildDataNodesSQL, "'node5'::text, 200", "ix_build_data_node_name"},
		{"build data of nodes", drydockdb.SourceBuildDataSQL, "ARRAY['node5', 'node6']", "ix_build_data_node_name"},
		{"boot actions page", drydockdb.SourceBootActionsSQL, "'node5'::text, false, 5000", "Index Cond: ((node_name)::text >= $1)"},
		{"boot action runs page", drydockdb.SourceBootActionStatusesSQL, "decode(md5('x'), 'hex'), false, 5000", "Index Cond: (action_id >= $1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.sql[strings.Index(tc.sql, "\n")+1:] // drop the "-- name:" line
			stmt := "q" + string(rune('a'+i))
			if _, err := conn.Exec(ctx, "PREPARE "+stmt+" AS "+body); err != nil {
				t.Fatalf("prepare: %v", err)
			}
			rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+stmt+"("+tc.args+")")
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			if !strings.Contains(plan, tc.wantIndex) {
				t.Errorf("plan does not use %s:\n%s", tc.wantIndex, plan)
			}
			t.Logf("%s:\n%s", tc.name, plan)
		})
	}
}
