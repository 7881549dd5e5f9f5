package statestore_test

// The Go snippets of README.md and docs/*.md are the regions marked
// "snippet:start name" below, copied by go generate (internal/doccheck
// keeps them equal). Each runs, against a fresh database from statetest, in
// an Example whose output go test checks.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// snippet:start testing-statetest
func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

func TestOrchestratorLoop(t *testing.T) {
	pool := statetest.NewPool(t) // fresh, fully migrated; dropped after the test
	store := statestore.New(pool, statestore.Options{})
	defer store.Close()
	ctx := t.Context()

	queued, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := store.ClaimTasks(ctx, "test-instance", 10, "deploy_node")
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != queued.ID {
		t.Fatalf("claimed %v, want the queued task %s", claimed, queued.ID)
	}
}

// snippet:end testing-statetest

// exampleDB is a fresh, migrated database for one Example (Examples have no
// testing.T, so they use the statetest server directly).
type exampleDB struct {
	srv   *statetest.Server
	db    *statetest.Database
	pool  *pgxpool.Pool
	store *statestore.Store
	env   map[string]*string // variables set by setenv, with their old values
}

func newExampleDB(ctx context.Context) *exampleDB {
	srv, err := statetest.DefaultServer(ctx)
	if err != nil {
		panic(err)
	}
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		panic(err)
	}
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		panic(err)
	}
	return &exampleDB{srv: srv, db: db, pool: pool, store: statestore.New(pool, statestore.Options{}), env: map[string]*string{}}
}

// setenv points the named variables at the database until close.
func (e *exampleDB) setenv(names ...string) {
	for _, n := range names {
		if old, ok := os.LookupEnv(n); ok {
			e.env[n] = &old
		} else {
			e.env[n] = nil
		}
		if err := os.Setenv(n, e.db.URL); err != nil {
			panic(err)
		}
	}
}

func (e *exampleDB) close() {
	for n, old := range e.env {
		if old == nil {
			_ = os.Unsetenv(n)
		} else {
			_ = os.Setenv(n, *old)
		}
	}
	e.store.Close()
	e.pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.srv.DropDatabase(ctx, e.db.Name); err != nil {
		panic(err)
	}
}

func (e *exampleDB) queue(ctx context.Context, action string) *statestore.Task {
	t, err := e.store.CreateTask(ctx, statestore.NewTask{Action: action, CreatedBy: "example"})
	if err != nil {
		panic(err)
	}
	return t
}

func (e *exampleDB) task(id uuid.UUID) *statestore.Task {
	t, err := e.store.GetTask(context.Background(), id)
	if err != nil {
		panic(err)
	}
	return t
}

// cancelWhenComplete calls cancel once task id is complete (or ctx ends).
func (e *exampleDB) cancelWhenComplete(ctx context.Context, cancel context.CancelFunc, id uuid.UUID) {
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t, err := e.store.GetTask(ctx, id)
		if err == nil && t.Status == statestore.StatusComplete {
			return
		}
	}
}

// readmeOrchestrator is the README's orchestrator loop, run by instance
// instanceID until ctx ends (Example_orchestrator,
// TestReadmeOrchestratorRecoversADeadLeadersClaims).
func readmeOrchestrator(ctx context.Context, logger *slog.Logger, instanceID string) error {
	// snippet:start readme-orchestrator
	// Migrate at start-up, over a direct connection (tern's lock is a session lock):
	// every instance may; one applies, the others wait and find nothing to do.
	conn, err := pgx.Connect(ctx, os.Getenv("STATEMGMT_ELECTOR_URL"))
	if err != nil {
		return err
	}
	_, err = statestore.Migrate(ctx, conn, logger)
	if err := errors.Join(err, conn.Close(ctx)); err != nil {
		return err
	}

	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	store := statestore.New(pool, statestore.Options{Logger: logger})
	defer store.Close()

	// snippet:start leadership-elector
	elector, err := statestore.NewElector(statestore.ElectorConfig{
		ConnString: os.Getenv("STATEMGMT_ELECTOR_URL"), // DIRECT to PostgreSQL, never PgBouncer
		Logger:     logger,
	})
	if err != nil {
		return err
	}
	return elector.Run(ctx, func(ctx context.Context, term int64) error {
		leader := store.AsLeader(term) // fenced: claims fail with ErrNotLeader once deposed
		// Only leaders claim, and this one has claimed nothing yet in this term: every open
		// claim is a former leader's (a dead one's, or this instance's own), so back to the
		// queue. A minute ahead: claims carry the server's clock, which may run ahead of ours.
		if _, err := leader.RequeueStaleTasks(ctx, time.Now().Add(time.Minute)); err != nil {
			return err
		}
		for ctx.Err() == nil { // ctx ends the moment leadership is lost
			tasks, err := leader.ClaimTasksWait(ctx, instanceID, 10, "deploy_node")
			if err != nil {
				return err // ErrNotLeader: deposed, stop at once
			}
			for _, t := range tasks {
				// … do the work, log it with store.AppendMessage …
				if _, err := leader.CompleteTasks(ctx, statestore.ResultSuccess, t.Claim()); err != nil {
					logger.Warn("not completed", "task", t.ID, "err", err) // ErrStaleAttempt: requeued meanwhile
				}
			}
		}
		return nil // returning resigns; Run campaigns again until ctx ends
	})
	// snippet:end leadership-elector
	// snippet:end readme-orchestrator
}

// Example_orchestrator is the README's "An orchestrator in 30 lines": an
// elector and a store on a fresh database, one queued task, claimed and
// completed by the leader; the context ends once the task is complete.
func Example_orchestrator() {
	// The deadline only bounds a broken run: the output then says "deadline exceeded".
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newExampleDB(ctx)
	defer e.close()
	e.setenv("DATABASE_URL", "STATEMGMT_ELECTOR_URL")
	logger := slog.New(slog.DiscardHandler)
	instanceID := "orchestrator-1"
	queued := e.queue(ctx, "deploy_node")
	go e.cancelWhenComplete(ctx, cancel, queued.ID)

	err := readmeOrchestrator(ctx, logger, instanceID)
	fmt.Println("Run ended with ctx:", errors.Is(err, context.Canceled))
	done := e.task(queued.ID)
	fmt.Println(done.Status, done.Result.Status, done.ClaimedBy)
	// Output:
	// Run ended with ctx: true
	// complete success orchestrator-1
}

// ExampleStore_ClaimTasksWait is docs/tasks.md's loop: queue a task, claim
// it, log to it, and complete it with UpdateTask under the claim's attempt.
func ExampleStore_ClaimTasksWait() {
	// The deadline only bounds a broken run: the output then says "deadline exceeded".
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newExampleDB(ctx)
	defer e.close()
	e.setenv("DATABASE_URL")
	instanceID := "orchestrator-1"
	// The logger tells the example which task was queued; it cancels ctx
	// once that task is complete.
	queued := make(chan uuid.UUID, 1)
	logger := slog.New(onQueued{queued})
	var deployID uuid.UUID
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case deployID = <-queued:
			e.cancelWhenComplete(ctx, cancel, deployID)
		case <-ctx.Done():
		}
	}()

	loop := func(ctx context.Context) error {
		// snippet:start tasks-loop
		pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
		if err != nil {
			return err
		}
		defer pool.Close()
		store := statestore.New(pool, statestore.Options{Logger: logger})
		defer store.Close()

		// The API queues work …
		deploy, err := store.CreateTask(ctx, statestore.NewTask{
			Action: "deploy_nodes", DesignRef: "deckhand+https://deckhand/api/v1.0/revisions/1/rendered-documents", CreatedBy: "ops"})
		if err != nil {
			return err
		}
		logger.Info("queued", "task", deploy.ID)

		// … and every orchestrator instance runs this loop.
		for ctx.Err() == nil {
			// Oldest queued first; sleeps on LISTEN/NOTIFY (polling as fallback) when idle.
			tasks, err := store.ClaimTasksWait(ctx, instanceID, 10, "deploy_nodes", "deploy_node")
			if err != nil {
				return err
			}
			for _, t := range tasks {
				claim := t.Claim() // this attempt: keep it, every write names it
				if _, err := store.AppendMessage(ctx, t.ID, statestore.NewMessage{
					Message: "powering on", Context: "node01", ContextType: "node"}); err != nil {
					return err
				}
				// … work …
				ok, done := statestore.ResultSuccess, statestore.StatusComplete
				_, err := store.UpdateTask(ctx, t.ID, t.Version, statestore.TaskUpdate{
					Status: &done, ResultStatus: &ok, Successes: []string{"node01"}, Attempt: claim.Attempt})
				switch {
				case errors.Is(err, statestore.ErrStaleAttempt):
					// requeued meanwhile: drop the work
				case err != nil:
					return err
				}
				// or, for a batch: store.CompleteTasks(ctx, statestore.ResultSuccess, claims...)
			}
		}
		return ctx.Err()
		// snippet:end tasks-loop
	}

	err := loop(ctx)
	cancel()
	<-watched
	fmt.Println("loop ended with ctx:", errors.Is(err, context.Canceled)) // ctx.Err(), or wrapped by a call it cut short
	done := e.task(deployID)
	fmt.Println(done.Status, done.Result.Status, done.Result.Successes, done.Messages[0].Message)
	// Output:
	// loop ended with ctx: true
	// complete success [node01] powering on
}

// onQueued is a slog handler passing the "task" of a "queued" record on.
type onQueued struct{ ch chan<- uuid.UUID }

func (onQueued) Enabled(context.Context, slog.Level) bool { return true }
func (h onQueued) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "queued" {
		r.Attrs(func(a slog.Attr) bool {
			if id, ok := a.Value.Any().(uuid.UUID); ok && a.Key == "task" {
				select {
				case h.ch <- id:
				default: // only the first is watched; never block a logger
				}
			}
			return true
		})
	}
	return nil
}
func (h onQueued) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onQueued) WithGroup(string) slog.Handler      { return h }

// ExampleStore_BuildData is docs/builddata.md's build data snippet.
func ExampleStore_BuildData() {
	ctx := context.Background()
	e := newExampleDB(ctx)
	defer e.close()
	store := e.store
	task := e.queue(ctx, "deploy_nodes").ID
	lshwJSON := `{"id": "node01", "class": "system"}`
	records := []statestore.NewBuildData{
		{NodeName: "node02", TaskID: task, Generator: "lshw", DataFormat: "application/json", DataElement: `{"id": "node02"}`},
		{NodeName: "node02", TaskID: task, Generator: "dmesg", DataFormat: "text/plain", DataElement: "booted"},
	}

	run := func() error {
		// snippet:start builddata
		// One record, or thousands in one COPY.
		if _, err := store.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "node01", TaskID: task,
			Generator: "lshw", DataFormat: "application/json", DataElement: lshwJSON}); err != nil {
			return err
		}
		if _, err := store.BulkInsertBuildData(ctx, records); err != nil { // collected_at defaults to the database clock
			return err
		}

		// Queries: by node, by task, by node AND task, latest per generator (one node
		// or all nodes); Full: false gives the summary (no element, its size).
		// BuildData returns one page (default 1000 records, Limit up to 10000);
		// page.Next continues, empty on the last page.
		q := statestore.BuildDataQuery{NodeName: "node01", TaskID: &task, Full: true}
		for {
			page, err := store.BuildData(ctx, q)
			if err != nil {
				return err
			}
			for _, b := range page.Records {
				fmt.Println(b.NodeName, b.Generator, b.DataElement)
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		// Or let the store page: streamed 100 records per query.
		return store.EachBuildData(ctx, statestore.BuildDataQuery{LatestAllNodes: true}, func(b statestore.BuildData) error {
			fmt.Println("latest:", b.NodeName, b.Generator, b.DataSize, "bytes")
			return nil
		})
		// snippet:end builddata
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// node01 lshw {"id": "node01", "class": "system"}
	// latest: node01 lshw 35 bytes
	// latest: node02 dmesg 6 bytes
	// latest: node02 lshw 16 bytes
}

// ExampleStore_VerifyBootActionKey is docs/builddata.md's boot action
// snippet: the node presents the hex key it was handed.
func ExampleStore_VerifyBootActionKey() {
	ctx := context.Background()
	e := newExampleDB(ctx)
	defer e.close()
	store := e.store
	task := e.queue(ctx, "deploy_nodes").ID
	// The request the node will send; renderCloudInit hands it the key.
	r := httptest.NewRequest(http.MethodPost, "/api/v1.0/bootactions/nodes/node01/units", nil)
	renderCloudInit := func(node, hexKey string) { r.Header.Set("X-Bootaction-Key", hexKey) }

	run := func() error {
		// snippet:start bootaction
		bctx, key, err := store.CreateBootActionContext(ctx, "node01", task) // fresh 32-byte key, shown once
		if err != nil {
			return err
		}
		renderCloudInit(bctx.NodeName, key.RevealHex()) // hand it to the node
		// …
		// The node presents the 64 hex digits it was given (or the 32 raw bytes).
		_, err = store.VerifyBootActionKey(ctx, "node01", []byte(r.Header.Get("X-Bootaction-Key")))
		switch {
		case errors.Is(err, statestore.ErrKeyMismatch):
			return fmt.Errorf("403: %w", err)
		case errors.Is(err, statestore.ErrNotFound):
			return fmt.Errorf("no context for this node: %w", err)
		case err != nil:
			return err
		}
		st, err := store.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "hw_config", TaskID: task})
		if err != nil {
			return err
		}
		if _, err := store.UpdateBootActionStatus(ctx, st.ActionID, statestore.ResultSuccess); err != nil { // ActionID is a ULID: 26 characters
			return err
		}
		_, err = store.UpdateBootActionStatus(ctx, st.ActionID, statestore.ResultFailure)
		fmt.Println("success is final:", errors.Is(err, statestore.ErrConflict))
		byName, err := store.BootActionStatuses(ctx, "node01") // the newest run of each action
		if err != nil {
			return err
		}
		fmt.Println("hw_config:", byName["hw_config"].Status)
		// snippet:end bootaction
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// success is final: true
	// hw_config: success
}

// ExampleMigrate is docs/operations.md's migration snippet, on an empty
// database.
func ExampleMigrate() {
	ctx := context.Background()
	srv, err := statetest.DefaultServer(ctx)
	if err != nil {
		panic(err)
	}
	db, err := srv.CreateEmptyDatabase(ctx)
	if err != nil {
		panic(err)
	}
	defer func() {
		if err := srv.DropDatabase(context.WithoutCancel(ctx), db.Name); err != nil {
			panic(err)
		}
	}()
	directURL := db.URL
	logger := slog.New(slog.DiscardHandler)

	run := func() error {
		// snippet:start migrate
		conn, err := pgx.Connect(ctx, directURL) // a direct connection, not PgBouncer
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		res, err := statestore.Migrate(ctx, conn, logger) // to the latest version
		if err != nil {
			return err
		}
		fmt.Println("from", res.From, "to latest:", res.To == statestore.LatestSchemaVersion())
		res, err = statestore.MigrateTo(ctx, conn, 2, logger) // up or down to version 2
		if err != nil {
			return err
		}
		v, err := statestore.SchemaVersion(ctx, conn)
		if err != nil {
			return err
		}
		fmt.Println("now at", v, "=", res.To)
		// snippet:end migrate
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// from 0 to latest: true
	// now at 2 = 2
}

// ExampleConfigureForPooler is docs/operations.md's PgBouncer snippet. Here
// the "pooled" URL is a direct one: the settings work on either.
func ExampleConfigureForPooler() {
	ctx := context.Background()
	e := newExampleDB(ctx)
	defer e.close()
	pooledURL := e.db.URL

	run := func() error {
		// snippet:start pooler
		cfg, err := pgxpool.ParseConfig(pooledURL)
		if err != nil {
			return err
		}
		statestore.ConfigureForPooler(cfg) // unnamed statements: pgx QueryExecModeCacheDescribe
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		store := statestore.New(pool, statestore.Options{DisableListen: true}) // LISTEN needs a session: poll instead
		defer store.Close()
		// snippet:end pooler
		task, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
		if err != nil {
			return err
		}
		fmt.Println(cfg.ConnConfig.DefaultQueryExecMode, task.Status)
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// cache describe queued
}

// ExampleConfigureForFailover is docs/ha.md's configuration for several
// hosts: the store's pool through two PgBouncers in front of an HA pair,
// and the elector on a direct multi-host URL. Nothing connects until used.
func ExampleConfigureForFailover() {
	ctx := context.Background()
	run := func() error {
		// snippet:start ha-config
		// The store: both poolers, read-write only, and the role check.
		cfg, err := pgxpool.ParseConfig("host=pgb1,pgb2 port=6432,6432 dbname=statemgmt " +
			"target_session_attrs=read-write connect_timeout=3")
		if err != nil {
			return err
		}
		statestore.ConfigureForPooler(cfg)   // PgBouncer in transaction mode
		statestore.ConfigureForFailover(cfg) // only a durable primary, never a standby or a zombie
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		store := statestore.New(pool, statestore.Options{DisableListen: true, FailoverAware: true})
		defer store.Close()

		elector, err := statestore.NewElector(statestore.ElectorConfig{
			ConnString:    "host=db1,db2 port=5432,5432 dbname=statemgmt target_session_attrs=read-write",
			FailoverAware: true,
		})
		if err != nil {
			return err
		}
		defer elector.Close()
		// snippet:end ha-config
		hosts := map[string]bool{cfg.ConnConfig.Host: true}
		for _, fb := range cfg.ConnConfig.Fallbacks { // each host, with and without TLS
			hosts[fb.Host] = true
		}
		fmt.Println("store hosts:", len(hosts))
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// store hosts: 2
}
