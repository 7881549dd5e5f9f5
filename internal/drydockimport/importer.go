// Package drydockimport copies an OpenStack Airship Drydock database (Alembic
// head 4713e7ebca9) into a statemgmt database: tasks with their trees, result
// messages numbered per task, build data, boot actions (key digests only) and
// the leader row as leadership history.
//
// The source is read inside one REPEATABLE READ READ ONLY transaction, so
// every page comes from one snapshot and nothing is written there. The target
// is written in batches with COPY; every batch commits together with the
// import's bookkeeping (migration 011), so an interrupted import resumes after
// its last committed batch and a finished one is not repeated. Rows the
// target schema refuses are reported with their table, key and reason and
// skipped (Options.Strict stops at the first). A boot action key read from
// the source is hashed at once; it never reaches the target, a log line, the
// report or an error.
//
// It is internal: statectl import drydock is its one caller, and its report
// and options are an operator's, not an API anyone should build on.
package drydockimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/gen/drydockdb"
	"github.com/drydock-go/statemgmt/statestore"
)

// AlembicHead is the Drydock schema revision the importer reads.
const AlembicHead = "4713e7ebca9"

// Source tables, in the order they are imported.
const (
	TableTasks                  = "tasks"
	TableResultMessage          = "result_message"
	TableBuildData              = "build_data"
	TableBootAction             = "boot_action"
	TableBootActionStatus       = "boot_action_status"
	TableActiveInstance         = "active_instance"
	defaultBatchSize            = 5000
	importLockKey         int64 = 0x64727964_6f636b49 // "drydockI": the advisory lock two imports share
)

// Tables lists the source tables in import order.
var Tables = []string{TableTasks, TableResultMessage, TableBuildData, TableBootAction, TableBootActionStatus, TableActiveInstance}

// Errors callers branch on with errors.Is.
var (
	// ErrRejected: under Strict, a row was rejected; the import stopped there
	// (batches committed before it stay; the error names table, key, reason).
	ErrRejected = errors.New("drydockimport: a row was rejected")
	// ErrUnfinished: an earlier import into the target did not finish and
	// Resume was not set.
	ErrUnfinished = errors.New("drydockimport: an earlier import did not finish (resume it)")
	// ErrSourceChanged: the target holds an import of a source whose contents
	// differ from this source's (another database, or rows changed since).
	ErrSourceChanged = errors.New("drydockimport: the source differs from the one the target's import read")
	// ErrBadSource: the source is not a Drydock database at AlembicHead.
	ErrBadSource = errors.New("drydockimport: not a Drydock database at the expected revision")
	// ErrTargetSchema: the target is not migrated to this version's schema.
	ErrTargetSchema = errors.New("drydockimport: target schema is not current")
	// ErrBusy: another import into the target is running.
	ErrBusy = errors.New("drydockimport: another import into this database is running")
)

// Options steer an import.
type Options struct {
	// SourceTimezone is where the source's naive timestamps were written
	// (Drydock wrote UTC): nil means UTC.
	SourceTimezone *time.Location
	// DryRun reads everything and reports what an import would do, writing
	// nothing: the target is read in a READ ONLY transaction.
	DryRun bool
	// Resume continues an import that stopped before it finished.
	Resume bool
	// Strict stops at the first rejected row (ErrRejected).
	Strict bool
	// BatchSize is the number of source rows per target transaction (default 5000).
	BatchSize int
	// Progress receives one line per table per second or so (rows, rows/s,
	// ETA); nil: none.
	Progress io.Writer
	// AfterBatch, when set, runs after each committed batch (tests use it to
	// interrupt an import).
	AfterBatch func(table string)
}

// Rejection is one source row the import skipped.
type Rejection struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// TableReport counts one source table's rows.
type TableReport struct {
	Table    string `json:"table"`
	Source   int64  `json:"source"`   // rows in the source
	Imported int64  `json:"imported"` // rows written (or, dry run, that would be)
	Rejected int64  `json:"rejected"` // rows skipped
	Target   int64  `json:"target"`   // rows in the target table afterwards (leader_term for active_instance)
}

// Report is what an import did.
type Report struct {
	DryRun bool `json:"dry_run"`
	// AlreadyDone: the target already held this finished import; nothing was written.
	AlreadyDone bool          `json:"already_done"`
	Tables      []TableReport `json:"tables"`
	// Rejected lists the rejected rows (at most MaxListed), RejectedTotal counts all.
	Rejected      []Rejection `json:"rejected"`
	RejectedTotal int64       `json:"rejected_total"`
	// Truncated counts result messages of exactly 127 characters: Drydock cut
	// longer ones there. They are imported as they are.
	Truncated int64 `json:"truncated_messages"`
	// Recovered counts tasks found running or terminating: nobody runs them
	// any more, so running ones are queued again (retry + 1) and terminating
	// ones terminated, as migration 010 does.
	Recovered int64 `json:"recovered_tasks"`
	// SubtaskListNotes lists where a source subtask_id_list and the
	// parent_task_id of the tasks it names disagree. This schema derives a
	// task's subtasks from parent_task_id, so the imported trees follow it.
	SubtaskListNotes []string `json:"subtask_list_notes,omitempty"`
	// LeaderTerm is the history term the source's leader row became (0: none).
	LeaderTerm int64         `json:"leader_term,omitempty"`
	Elapsed    time.Duration `json:"elapsed"`
}

// MaxListed bounds the rejections a Report lists.
const MaxListed = 1000

// progress is one source table's state: where the import stands.
type progress struct {
	table                                                string
	position                                             string
	read, written, rejected, truncated, recovered, total int64
	done                                                 bool
	started                                              time.Time
	readAtStart                                          int64
	lastPrint                                            time.Time
}

// importer holds one run's state.
type importer struct {
	src, dst       *pgx.Conn
	srcTx, dstRead pgx.Tx // dstRead: the dry run's READ ONLY transaction
	sq             *drydockdb.Queries
	q              *db.Queries
	opts           Options
	loc            *time.Location
	prog           map[string]*progress
	rejectedTasks  map[string]bool // keys of rejected tasks (their subtasks and messages go too)
	graph          []*drydockdb.SourceTaskGraphRow
	listed         []Rejection
}

// Run imports the Drydock database on src into the statemgmt database on
// dst. src is only read; dst must be migrated to the current schema. src and
// dst stay open: the caller closes them.
func Run(ctx context.Context, src, dst *pgx.Conn, opts Options) (_ *Report, err error) {
	began := time.Now()
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	loc := opts.SourceTimezone
	if loc == nil {
		loc = time.UTC
	}
	im := &importer{src: src, dst: dst, sq: drydockdb.New(), q: db.New(), opts: opts, loc: loc,
		prog: map[string]*progress{}, rejectedTasks: map[string]bool{}}

	v, err := statestore.SchemaVersion(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("target: read schema version: %w", err)
	}
	if want := statestore.LatestSchemaVersion(); v != want {
		return nil, fmt.Errorf("target is at schema version %d, this statectl needs %d (run statectl migrate up on it first): %w", v, want, ErrTargetSchema)
	}
	ok, err := im.q.TryAdvisoryLock(ctx, dst, importLockKey)
	if err != nil {
		return nil, fmt.Errorf("target: take the import lock: %w", err)
	}
	if !ok {
		return nil, ErrBusy
	}
	defer func() {
		// Released with the session too; this is for callers that keep dst,
		// who must hear that the lock may still be held.
		if _, rerr := im.q.ReleaseAdvisoryLock(context.WithoutCancel(ctx), dst, importLockKey); rerr != nil {
			err = errors.Join(err, fmt.Errorf("target: release the import lock: %w", rerr))
		}
	}()

	im.srcTx, err = src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("source: begin a read-only snapshot: %w", err)
	}
	defer func() { _ = im.srcTx.Rollback(context.WithoutCancel(ctx)) }()
	if opts.DryRun {
		im.dstRead, err = dst.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, fmt.Errorf("target: begin a read-only transaction: %w", err)
		}
		defer func() { _ = im.dstRead.Rollback(context.WithoutCancel(ctx)) }()
	}

	fp, err := im.sq.SourceFingerprint(ctx, im.srcTx)
	if err != nil {
		return nil, fmt.Errorf("source: read its tables: %w: %w", ErrBadSource, err)
	}
	if fp.AlembicVersion != AlembicHead {
		return nil, fmt.Errorf("source is at Alembic revision %q, the importer reads %q: %w", fp.AlembicVersion, AlembicHead, ErrBadSource)
	}
	fingerprint := fmt.Sprintf("alembic=%s tasks=%d result_message=%d max_sequence=%d build_data=%d boot_action=%d boot_action_status=%d active_instance=%d tasks_updated=%q build_data_collected=%q",
		fp.AlembicVersion, fp.Tasks, fp.ResultMessages, fp.MaxSequence, fp.BuildData, fp.BootActions, fp.BootActionStatuses, fp.ActiveInstances,
		fp.TasksUpdated, fp.BuildDataCollected)
	totals := map[string]int64{TableTasks: fp.Tasks, TableResultMessage: fp.ResultMessages, TableBuildData: fp.BuildData,
		TableBootAction: fp.BootActions, TableBootActionStatus: fp.BootActionStatuses, TableActiveInstance: fp.ActiveInstances}

	report := &Report{DryRun: opts.DryRun}
	if im.graph, err = im.sq.SourceTaskGraph(ctx, im.srcTx); err != nil {
		return nil, fmt.Errorf("source: read the task tree: %w", err)
	}
	report.SubtaskListNotes = subtaskListMismatches(im.graph)
	state, err := im.q.DrydockImportState(ctx, im.dstConn())
	haveState := err == nil
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if !opts.DryRun {
			if err := im.q.StartDrydockImport(ctx, dst, db.StartDrydockImportParams{SourceFingerprint: fingerprint, SourceTimezone: loc.String()}); err != nil {
				return nil, fmt.Errorf("target: record the import: %w", err)
			}
		}
	case err != nil:
		return nil, fmt.Errorf("target: read the import's state: %w", err)
	case state.SourceFingerprint != fingerprint:
		return nil, fmt.Errorf("the target's import read a source with %s; this source has %s: %w", state.SourceFingerprint, fingerprint, ErrSourceChanged)
	case state.FinishedAt != nil:
		report.AlreadyDone = true
	case !opts.Resume:
		return nil, fmt.Errorf("import started %s: %w", state.StartedAt.UTC().Format(time.RFC3339), ErrUnfinished)
	}
	if haveState && state.SourceTimezone != loc.String() {
		return nil, fmt.Errorf("--source-timezone %s differs from the earlier import's %s: %w", loc.String(), state.SourceTimezone, ErrSourceChanged)
	}

	saved, err := im.q.DrydockImportProgress(ctx, im.dstConn())
	if err != nil {
		return nil, fmt.Errorf("target: read the import's progress: %w", err)
	}
	for _, t := range Tables {
		im.prog[t] = &progress{table: t, total: totals[t]}
	}
	for _, s := range saved {
		if p := im.prog[s.SourceTable]; p != nil {
			p.position, p.read, p.written, p.rejected = s.Position, s.RowsRead, s.RowsWritten, s.RowsRejected
			p.truncated, p.recovered, p.done = s.Truncated, s.Recovered, s.Done
		}
	}
	keys, err := im.q.DrydockImportRejectedTaskKeys(ctx, im.dstConn())
	if err != nil {
		return nil, fmt.Errorf("target: read rejected tasks: %w", err)
	}
	for _, k := range keys {
		im.rejectedTasks[k] = true
	}

	if !report.AlreadyDone {
		phases := []func(context.Context) error{im.tasks, im.messages, im.buildData, im.bootActions, im.bootActionStatuses, im.activeInstance}
		for i, phase := range phases {
			p := im.prog[Tables[i]]
			if p.done {
				continue
			}
			p.started, p.readAtStart = time.Now(), p.read
			if err := phase(ctx); err != nil {
				return nil, err
			}
		}
		if !opts.DryRun {
			if err := im.q.FinishDrydockImport(ctx, dst); err != nil {
				return nil, fmt.Errorf("target: record the end of the import: %w", err)
			}
		}
	}
	if err := im.fillReport(ctx, report); err != nil {
		return nil, err
	}
	report.Elapsed = time.Since(began)
	return report, nil
}

// dstConn is what reads of the target go through: the dry run's read-only
// transaction, or the connection.
func (im *importer) dstConn() db.DBTX {
	if im.dstRead != nil {
		return im.dstRead
	}
	return im.dst
}

func (im *importer) fillReport(ctx context.Context, r *Report) error {
	counts, err := im.q.TargetRowCounts(ctx, im.dstConn())
	if err != nil {
		return fmt.Errorf("target: count rows: %w", err)
	}
	target := map[string]int64{TableTasks: counts.Tasks, TableResultMessage: counts.ResultMessages, TableBuildData: counts.BuildData,
		TableBootAction: counts.BootActions, TableBootActionStatus: counts.BootActionStatuses, TableActiveInstance: counts.LeaderTerms}
	for _, t := range Tables {
		p := im.prog[t]
		r.Tables = append(r.Tables, TableReport{Table: t, Source: p.total, Imported: p.written, Rejected: p.rejected, Target: target[t]})
		r.RejectedTotal += p.rejected
		r.Truncated += p.truncated
		r.Recovered += p.recovered
	}
	if im.opts.DryRun {
		r.Rejected = im.listed
		return nil
	}
	rows, err := im.q.ListDrydockImportRejected(ctx, im.dst, MaxListed)
	if err != nil {
		return fmt.Errorf("target: read rejected rows: %w", err)
	}
	for _, x := range rows {
		r.Rejected = append(r.Rejected, Rejection{Table: x.SourceTable, Key: x.SourceKey, Reason: x.Reason})
	}
	term, err := positionInt(im.prog[TableActiveInstance])
	if err != nil {
		return err
	}
	r.LeaderTerm = term
	return nil
}

// batch is one target transaction's worth of one table.
type batch struct {
	p         *progress
	position  string // the table's position once this batch is in
	read      int64  // source rows this batch consumed
	rejected  []Rejection
	truncated int64
	recovered int64
	last      bool // the table is done with this batch
	// write writes the accepted rows in tx and returns how many it wrote
	// and the rows the server refused. nil: nothing to write.
	write func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error)
	// wouldWrite is the dry run's count of rows write would send.
	wouldWrite int64
}

// commit writes a batch and its bookkeeping in one transaction (or, dry run,
// only counts it).
func (im *importer) commit(ctx context.Context, b *batch) error {
	for i := range b.rejected {
		b.rejected[i] = printableRejection(b.rejected[i])
	}
	if im.opts.Strict && len(b.rejected) > 0 {
		return im.strictError(b.rejected[0])
	}
	if im.opts.DryRun {
		im.account(b, b.wouldWrite, b.rejected)
		return nil
	}
	tx, err := im.dst.Begin(ctx)
	if err != nil {
		return fmt.Errorf("target: begin a batch of %s: %w", b.p.table, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var written int64
	rejected := b.rejected
	if b.write != nil {
		n, refused, err := b.write(ctx, tx)
		if err != nil {
			return fmt.Errorf("target: write a batch of %s: %w", b.p.table, err)
		}
		for i := range refused {
			refused[i] = printableRejection(refused[i])
		}
		if im.opts.Strict && len(refused) > 0 {
			return im.strictError(refused[0])
		}
		written, rejected = n, append(rejected, refused...)
	}
	if len(rejected) > 0 {
		rows := make([]db.CopyDrydockImportRejectedParams, len(rejected))
		for i, r := range rejected {
			rows[i] = db.CopyDrydockImportRejectedParams{SourceTable: r.Table, SourceKey: r.Key, Reason: r.Reason}
		}
		if _, err := im.q.CopyDrydockImportRejected(ctx, tx, rows); err != nil {
			return fmt.Errorf("target: record rejected rows of %s: %w", b.p.table, err)
		}
	}
	p := *b.p
	p.position, p.read, p.written, p.rejected = b.position, p.read+b.read, p.written+written, p.rejected+int64(len(rejected))
	p.truncated, p.recovered, p.done = p.truncated+b.truncated, p.recovered+b.recovered, b.last
	if err := im.q.SaveDrydockImportProgress(ctx, tx, db.SaveDrydockImportProgressParams{SourceTable: p.table, Position: p.position,
		RowsRead: p.read, RowsWritten: p.written, RowsRejected: p.rejected, Truncated: p.truncated, Recovered: p.recovered, Done: p.done}); err != nil {
		return fmt.Errorf("target: record progress of %s: %w", b.p.table, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("target: commit a batch of %s: %w", b.p.table, err)
	}
	*b.p = p
	im.noteRejected(rejected)
	im.printProgress(b.p, p.done)
	if im.opts.AfterBatch != nil {
		im.opts.AfterBatch(b.p.table)
	}
	return nil
}

// account is the dry run's commit: counts only.
func (im *importer) account(b *batch, written int64, rejected []Rejection) {
	p := b.p
	p.position, p.read, p.written, p.rejected = b.position, p.read+b.read, p.written+written, p.rejected+int64(len(rejected))
	p.truncated, p.recovered, p.done = p.truncated+b.truncated, p.recovered+b.recovered, b.last
	im.noteRejected(rejected)
	for _, r := range rejected {
		if len(im.listed) < MaxListed {
			im.listed = append(im.listed, r)
		}
	}
	im.printProgress(p, p.done)
	if im.opts.AfterBatch != nil {
		im.opts.AfterBatch(p.table)
	}
}

func (im *importer) noteRejected(rs []Rejection) {
	for _, r := range rs {
		if r.Table == TableTasks {
			im.rejectedTasks[r.Key] = true
		}
	}
}

func (im *importer) strictError(r Rejection) error {
	return fmt.Errorf("--strict: %s %s rejected: %s: %w", r.Table, r.Key, r.Reason, ErrRejected)
}

func (im *importer) printProgress(p *progress, final bool) {
	if im.opts.Progress == nil || (!final && time.Since(p.lastPrint) < time.Second) {
		return
	}
	p.lastPrint = time.Now()
	el := time.Since(p.started).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.read-p.readAtStart) / el
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.read)/rate) * time.Second).Round(time.Second).String()
	}
	if final {
		eta = "done"
	}
	fmt.Fprintf(im.opts.Progress, "import %s: %d/%d rows (%d written, %d rejected), %.0f rows/s, ETA %s\n",
		p.table, p.read, p.total, p.written, p.rejected, rate, eta)
}

// copyBisect copies rows with copyFn inside a savepoint of tx. When the
// server refuses the data (SQLSTATE class 22 or 23: a value, a constraint, a
// key), it splits the rows in halves and tries each, down to the single rows
// to blame, which it returns as rejections: the server's verdict decides,
// and one bad row costs about log2(len(rows)) more COPYs.
func copyBisect[T any](ctx context.Context, tx pgx.Tx, table string, rows []T, key func(T) string,
	copyFn func(context.Context, pgx.Tx, []T) error) (int64, []Rejection, error) {
	if len(rows) == 0 {
		return 0, nil, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	err = copyFn(ctx, sp, rows)
	if err == nil {
		return int64(len(rows)), nil, sp.Commit(ctx)
	}
	if rbErr := sp.Rollback(ctx); rbErr != nil {
		return 0, nil, errors.Join(err, rbErr)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (!strings.HasPrefix(pgErr.Code, "22") && !strings.HasPrefix(pgErr.Code, "23")) {
		return 0, nil, err
	}
	if len(rows) == 1 {
		return 0, []Rejection{{Table: table, Key: key(rows[0]), Reason: serverReason(pgErr)}}, nil
	}
	mid := len(rows) / 2
	n1, r1, err := copyBisect(ctx, tx, table, rows[:mid], key, copyFn)
	if err != nil {
		return 0, nil, err
	}
	n2, r2, err := copyBisect(ctx, tx, table, rows[mid:], key, copyFn)
	if err != nil {
		return 0, nil, err
	}
	return n1 + n2, append(r1, r2...), nil
}

// serverReason describes a refusal by the target server by column and kind,
// never with the server's detail (which repeats the row's values).
func serverReason(e *pgconn.PgError) string {
	col := e.ColumnName
	if col == "" {
		// The context holds `COPY table, line N, column name: "value"`: keep the name only.
		if _, copyLine, ok := strings.Cut(e.Where, "COPY "); ok {
			if _, rest, ok := strings.Cut(copyLine, ", column "); ok {
				col, _, _ = strings.Cut(rest, ":")
				col, _, _ = strings.Cut(col, "\n")
			}
		}
	}
	if col == "" && (e.Code == "23505" || e.Code == "23503") {
		if rest, ok := strings.CutPrefix(e.Detail, "Key ("); ok {
			col, _, _ = strings.Cut(rest, ")=(")
		}
	}
	if col == "" && e.ConstraintName != "" {
		// This schema names constraints <table>_<column>_<suffix> (statestore's TestEveryConstraintNamesItsColumn).
		if rest, ok := strings.CutPrefix(e.ConstraintName, e.TableName+"_"); ok {
			for _, suffix := range []string{"_check", "_length", "_positive", "_nonnegative", "_array", "_key", "_fkey"} {
				if c, ok := strings.CutSuffix(rest, suffix); ok && c != "" {
					col = c
					break
				}
			}
		}
	}
	what := map[string]string{"23505": "already in the target", "23503": "references a row the target does not have",
		"23514": "outside this project's rules (" + e.ConstraintName + ")", "23502": "must not be NULL"}[e.Code]
	if what == "" {
		what = e.Message + " (SQLSTATE " + e.Code + ")"
	}
	if col == "" {
		return "refused by the target: " + what
	}
	return col + ": " + what
}

// positionInt reads a progress position that is a number (0 when the table
// has not started). A position that is not a number means the bookkeeping
// was changed by hand: an error, never a silent restart from 0.
func positionInt(p *progress) (int64, error) {
	if p.position == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(p.position, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("target: the recorded position of %s, %q, is not a count: resume cannot continue (restore the bookkeeping or import into a fresh database)", p.table, p.position)
	}
	return n, nil
}
