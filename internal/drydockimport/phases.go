package drydockimport

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/gen/drydockdb"
)

// ---- tasks ----

// taskOrder orders the source's tasks parents first: every root, then every
// task one level down, and so on, by id within a level (the parent must be
// in the target before its subtasks: a foreign key). Tasks whose parent is
// missing, or that sit on a parent cycle, come back as orphans.
func taskOrder(graph []*drydockdb.SourceTaskGraphRow) (order [][]byte, orphans []Rejection) {
	children := map[string][][]byte{}
	known := map[string]bool{}
	for _, t := range graph {
		known[string(t.TaskID)] = true
	}
	var level [][]byte
	for _, t := range graph {
		switch {
		case t.ParentTaskID == nil:
			level = append(level, t.TaskID)
		case known[string(t.ParentTaskID)]:
			children[string(t.ParentTaskID)] = append(children[string(t.ParentTaskID)], t.TaskID)
		default:
			orphans = append(orphans, Rejection{Table: TableTasks, Key: keyOf(t.TaskID),
				Reason: "parent_task_id: parent " + keyOf(t.ParentTaskID) + " is not in the source"})
		}
	}
	placed := map[string]bool{}
	for len(level) > 0 {
		slices.SortFunc(level, func(a, b []byte) int { return slices.Compare(a, b) })
		var next [][]byte
		for _, id := range level {
			placed[string(id)] = true
			order = append(order, id)
			next = append(next, children[string(id)]...)
		}
		level = next
	}
	for _, t := range graph {
		if t.ParentTaskID != nil && known[string(t.ParentTaskID)] && !placed[string(t.TaskID)] {
			orphans = append(orphans, Rejection{Table: TableTasks, Key: keyOf(t.TaskID),
				Reason: "parent_task_id: on a cycle of parents (no root above it)"})
		}
	}
	return order, orphans
}

// subtaskListMismatches compares each source subtask_id_list with the
// parent_task_id of the tasks it names. This schema keeps no list: a task's
// subtasks are the tasks naming it as their parent, so where the two
// disagree the imported subtasks follow parent_task_id, and the report says
// where.
func subtaskListMismatches(graph []*drydockdb.SourceTaskGraphRow) (notes []string) {
	parent := make(map[string][]byte, len(graph))
	for _, t := range graph {
		parent[string(t.TaskID)] = t.ParentTaskID
	}
	listed := map[string]bool{}
	for _, t := range graph {
		for _, c := range t.SubtaskIDList {
			listed[string(t.TaskID)+string(c)] = true
			p, ok := parent[string(c)]
			switch {
			case !ok:
				notes = append(notes, fmt.Sprintf("task %s lists subtask %s, which is not in the source", keyOf(t.TaskID), keyOf(c)))
			case string(p) != string(t.TaskID):
				notes = append(notes, fmt.Sprintf("task %s lists subtask %s, whose parent_task_id is %s", keyOf(t.TaskID), keyOf(c), keyOf(p)))
			}
		}
	}
	for _, t := range graph {
		if t.ParentTaskID == nil {
			continue
		}
		if _, known := parent[string(t.ParentTaskID)]; known && !listed[string(t.ParentTaskID)+string(t.TaskID)] {
			notes = append(notes, fmt.Sprintf("task %s has parent %s, whose subtask list does not name it", keyOf(t.TaskID), keyOf(t.ParentTaskID)))
		}
	}
	slices.Sort(notes)
	return notes
}

func (im *importer) tasks(ctx context.Context) error {
	p := im.prog[TableTasks]
	order, orphans := taskOrder(im.graph)
	// Position: how many tasks of the order are done (orphans come last).
	done, err := positionInt(p)
	if err != nil {
		return err
	}
	for start := int(done); start < len(order); start += im.opts.BatchSize {
		end := min(start+im.opts.BatchSize, len(order))
		rows, err := im.sq.SourceTasks(ctx, im.srcTx, order[start:end])
		if err != nil {
			return fmt.Errorf("source: read tasks: %w", err)
		}
		byID := make(map[string]*drydockdb.SourceTasksRow, len(rows))
		for _, r := range rows {
			byID[string(r.TaskID)] = r
		}
		b := &batch{p: p, position: strconv.Itoa(end), read: int64(end - start), last: end == len(order) && len(orphans) == 0}
		// Ids the target already holds: rejected here, before the COPY, so
		// their subtasks in this batch go too (the server would let them in
		// under the target's own task).
		var ids []uuid.UUID
		for _, id := range order[start:end] {
			if len(id) == 16 {
				ids = append(ids, uuid.UUID(id))
			}
		}
		existing, err := im.q.ExistingTaskIDs(ctx, im.dstConn(), ids)
		if err != nil {
			return fmt.Errorf("target: look up task ids: %w", err)
		}
		inTarget := make(map[uuid.UUID]bool, len(existing))
		for _, id := range existing {
			inTarget[id] = true
		}
		var accepted []db.CopyImportTasksParams
		for _, id := range order[start:end] {
			r := byID[string(id)]
			t, why, recovered := im.mapTask(r)
			if why == "" && inTarget[t.TaskID] {
				why = "task_id: already in the target"
			}
			if why != "" {
				b.rejected = append(b.rejected, Rejection{Table: TableTasks, Key: keyOf(id), Reason: string(why)})
				im.rejectedTasks[keyOf(id)] = true // its subtasks in this batch go too
				continue
			}
			if recovered {
				b.recovered++
			}
			accepted = append(accepted, t)
		}
		if err := im.writeTasks(ctx, b, accepted); err != nil {
			return err
		}
		if err := im.commit(ctx, b); err != nil {
			return err
		}
	}
	if !p.done {
		b := &batch{p: p, position: strconv.Itoa(len(order)), read: int64(len(orphans)), rejected: orphans, last: true}
		return im.commit(ctx, b)
	}
	return nil
}

func (im *importer) writeTasks(ctx context.Context, b *batch, rows []db.CopyImportTasksParams) error {
	key := func(t db.CopyImportTasksParams) string { return t.TaskID.String() }
	if im.opts.DryRun {
		b.wouldWrite = int64(len(rows))
		return nil
	}
	b.write = func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error) {
		return copyBisect(ctx, tx, TableTasks, rows, key, func(ctx context.Context, tx pgx.Tx, rows []db.CopyImportTasksParams) error {
			_, err := im.q.CopyImportTasks(ctx, tx, rows)
			return err
		})
	}
	return nil
}

// mapTask converts one source task. recovered: it was running or terminating.
func (im *importer) mapTask(r *drydockdb.SourceTasksRow) (t db.CopyImportTasksParams, why problem, recovered bool) {
	if r == nil {
		return t, "vanished from the source snapshot", false
	}
	var p problem
	if t.TaskID, p = id16(r.TaskID, "task_id"); p != "" {
		return t, p, false
	}
	if r.ParentTaskID != nil {
		parent, p := id16(r.ParentTaskID, "parent_task_id")
		if p != "" {
			return t, p, false
		}
		if im.rejectedTasks[parent.String()] {
			return t, problem("parent_task_id: parent " + parent.String() + " was rejected"), false
		}
		t.ParentTaskID = &parent
	}
	switch {
	case r.Status == nil:
		return t, "status is NULL", false
	case !taskStatuses[*r.Status]:
		return t, problem("status " + quoted(*r.Status) + " is not a task status of this project"), false
	case r.Action == nil:
		return t, "action is NULL", false
	case !actionRE.MatchString(*r.Action):
		return t, problem("action " + quoted(*r.Action) + " is not an action name (a-z, 0-9, _)"), false
	case r.ResultStatus != nil && !resultStatuses[*r.ResultStatus]:
		return t, problem("result_status " + quoted(*r.ResultStatus) + " is not a result status of this project"), false
	case r.Retry != nil && *r.Retry < 0:
		return t, "retry is negative", false
	case r.ResultErrorCount != nil && *r.ResultErrorCount < 0:
		return t, "result_error_count is negative", false
	case r.OddArrays != "":
		return t, problem(r.OddArrays + ": a list holding NULL or of more than one dimension"), false
	}
	t.Status, t.Action, t.DesignRef, t.CreatedBy = *r.Status, *r.Action, str(r.DesignRef), str(r.CreatedBy)
	t.ResultStatus, t.ResultMessage, t.ResultReason = "incomplete", str(r.ResultMessage), str(r.ResultReason)
	if r.ResultStatus != nil {
		t.ResultStatus = *r.ResultStatus
	}
	if r.Retry != nil {
		t.Retry = *r.Retry
	}
	if r.ResultErrorCount != nil {
		t.ResultErrorCount = *r.ResultErrorCount
	}
	t.Terminate = r.Terminate != nil && *r.Terminate
	t.TerminatedBy = r.TerminatedBy
	t.ResultSuccesses, t.ResultFailures = nonNil(r.ResultSuccesses), nonNil(r.ResultFailures)
	created, p := naiveTime(r.Created, "created")
	if p != "" {
		return t, p, false
	}
	updated, p := naiveTime(r.Updated, "updated")
	if p != "" {
		return t, p, false
	}
	terminated, p := naiveTime(r.Terminated, "terminated")
	if p != "" {
		return t, p, false
	}
	switch {
	case created != nil:
		t.CreatedAt = InZone(*created, im.loc)
	case updated != nil:
		t.CreatedAt = InZone(*updated, im.loc)
	default:
		return t, "created and updated are both NULL", false
	}
	t.UpdatedAt = t.CreatedAt
	if updated != nil {
		t.UpdatedAt = InZone(*updated, im.loc)
	}
	if terminated != nil {
		at := InZone(*terminated, im.loc)
		t.TerminatedAt = &at
	}
	if t.NodeFilter, p = plainJSON(r.NodeFilter, "node_filter"); p != "" {
		return t, p, false
	}
	if t.RequestContext, p = decodeTwice(r.RequestContext, "request_context"); p != "" {
		return t, p, false
	}
	if t.ResultLinks, p = plainJSON(r.ResultLinks, "result_links"); p != "" {
		return t, p, false
	}
	if t.ResultLinks == nil {
		t.ResultLinks = []byte("[]")
	} else if t.ResultLinks[0] != '[' {
		return t, "result_links is not a JSON array", false
	}
	// Nobody runs these any more (the orchestrator that did is Drydock):
	// what migration 010 does with running tasks that have no claimer.
	switch t.Status {
	case "running":
		t.Status, t.Retry, recovered = "queued", t.Retry+1, true
	case "terminating":
		now := time.Now().UTC()
		t.Status, recovered = "terminated", true
		if t.TerminatedAt == nil {
			t.TerminatedAt = &now
		}
	}
	return t, "", recovered
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ---- result messages ----

type message struct {
	seq  int32 // source sequence
	task uuid.UUID
	row  db.CopyImportMessagesParams
}

func (im *importer) messages(ctx context.Context) error {
	p := im.prog[TableResultMessage]
	after, err := positionInt(p)
	if err != nil {
		return err
	}
	counters := map[uuid.UUID]int64{}
	if after > 0 && !im.opts.DryRun {
		seqs, err := im.q.ImportedMessageSeqs(ctx, im.dst)
		if err != nil {
			return fmt.Errorf("target: read message counters: %w", err)
		}
		for _, s := range seqs {
			counters[s.TaskID] = s.LastSeq
		}
	}
	for {
		rows, err := im.sq.SourceMessages(ctx, im.srcTx, drydockdb.SourceMessagesParams{AfterSequence: int32(after), MaxRows: int32(im.opts.BatchSize)})
		if err != nil {
			return fmt.Errorf("source: read result messages: %w", err)
		}
		last := len(rows) < im.opts.BatchSize
		if len(rows) > 0 {
			after = int64(rows[len(rows)-1].Sequence)
		}
		b := &batch{p: p, position: strconv.FormatInt(after, 10), read: int64(len(rows)), last: last}
		var accepted []message
		for _, r := range rows {
			m, why := im.mapMessage(r)
			if why != "" {
				b.rejected = append(b.rejected, Rejection{Table: TableResultMessage, Key: "sequence " + strconv.Itoa(int(r.Sequence)), Reason: string(why)})
				continue
			}
			if utf8.RuneCountInString(m.row.Message) == truncatedLength {
				b.truncated++
			}
			accepted = append(accepted, m)
		}
		im.writeMessages(b, accepted, counters)
		if err := im.commit(ctx, b); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

func (im *importer) mapMessage(r *drydockdb.SourceMessagesRow) (m message, why problem) {
	m.seq = r.Sequence
	task, p := id16(r.TaskID, "task_id")
	switch {
	case p != "":
		return m, p
	case !r.TaskFound:
		return m, problem("task_id: task " + task.String() + " is not in the source")
	case im.rejectedTasks[task.String()]:
		return m, problem("task_id: task " + task.String() + " was rejected")
	}
	m.task = task
	m.row = db.CopyImportMessagesParams{TaskID: task, Message: str(r.Message), Error: r.Error != nil && *r.Error,
		Context: str(r.Context), ContextType: str(r.ContextType)}
	ts, p := naiveTime(r.Ts, "ts")
	if p != "" {
		return m, p
	}
	taskCreated, p := naiveTime(r.TaskCreated, "its task's created")
	switch {
	case ts != nil:
		m.row.Ts = InZone(*ts, im.loc)
	case p != "":
		return m, "ts is NULL and " + p
	case taskCreated != nil: // no time: the task's creation, the earliest it can be
		m.row.Ts = InZone(*taskCreated, im.loc)
	default:
		return m, "ts is NULL and so is its task's created"
	}
	if m.row.Extra, p = decodeTwice(r.Extra, "extra"); p != "" {
		return m, p
	}
	return m, ""
}

// writeMessages numbers the accepted messages 1, 2, 3 … per task in source
// order and sets up their COPY. When the server refuses some, the batch is
// numbered again without them (numbers stay gap-free) and copied again.
func (im *importer) writeMessages(b *batch, msgs []message, counters map[uuid.UUID]int64) {
	number := func(msgs []message) map[uuid.UUID]int64 {
		next := map[uuid.UUID]int64{}
		for i := range msgs {
			t := msgs[i].task
			n, ok := next[t]
			if !ok {
				n = counters[t]
			}
			n++
			next[t] = n
			msgs[i].row.Sequence = n
		}
		return next
	}
	if im.opts.DryRun {
		for t, n := range number(msgs) {
			counters[t] = n
		}
		b.wouldWrite = int64(len(msgs))
		return
	}
	b.write = func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error) {
		var refused []Rejection
		for {
			next := number(msgs)
			sp, err := tx.Begin(ctx)
			if err != nil {
				return 0, nil, err
			}
			n, r, err := copyBisect(ctx, sp, TableResultMessage, msgs, func(m message) string { return "sequence " + strconv.Itoa(int(m.seq)) },
				func(ctx context.Context, tx pgx.Tx, ms []message) error {
					rows := make([]db.CopyImportMessagesParams, len(ms))
					for i := range ms {
						rows[i] = ms[i].row
					}
					_, err := im.q.CopyImportMessages(ctx, tx, rows)
					return err
				})
			if err != nil {
				return 0, nil, err
			}
			if len(r) > 0 { // renumber without them
				if err := sp.Rollback(ctx); err != nil {
					return 0, nil, err
				}
				refused = append(refused, r...)
				gone := map[string]bool{}
				for _, x := range r {
					gone[x.Key] = true
				}
				msgs = slices.DeleteFunc(msgs, func(m message) bool { return gone["sequence "+strconv.Itoa(int(m.seq))] })
				continue
			}
			if b.last {
				if err := im.q.SetImportedMessageSeqs(ctx, sp); err != nil {
					return 0, nil, err
				}
			}
			if err := sp.Commit(ctx); err != nil {
				return 0, nil, err
			}
			for t, s := range next { // only once the numbers are in
				counters[t] = s
			}
			return n, refused, nil
		}
	}
}

// ---- build data ----

// buildDataNodesPerBatch bounds a build data batch: every record of this many
// nodes (data elements such as lshw output run to hundreds of kilobytes).
const buildDataNodesPerBatch = 20

func (im *importer) buildData(ctx context.Context) error {
	p := im.prog[TableBuildData]
	// Position: "" before the start, else "nodes:" and the last node done.
	after, started := strings.CutPrefix(p.position, "nodes:")
	after, err := decodeNode(after)
	if err != nil {
		return err
	}
	if !started {
		// Records without a node name first (rejected), then node by node.
		rows, err := im.sq.SourceBuildDataWithoutNode(ctx, im.srcTx)
		if err != nil {
			return fmt.Errorf("source: read build data: %w", err)
		}
		b := &batch{p: p, position: "nodes:", read: int64(len(rows))}
		for _, r := range rows {
			node := "NULL"
			if r.NodeName != nil {
				node = quoted(*r.NodeName)
			}
			b.rejected = append(b.rejected, Rejection{Table: TableBuildData,
				Key: "node " + node + ", task " + keyOf(r.TaskID) + ", generator " + quoted(str(r.Generator)) + ", collected " + timeKey(r.CollectedDate, im.loc), Reason: "node_name is NULL or empty"})
		}
		if err := im.commit(ctx, b); err != nil {
			return err
		}
		after = ""
	}
	for {
		nodes, err := im.sq.SourceBuildDataNodes(ctx, im.srcTx, drydockdb.SourceBuildDataNodesParams{AfterNode: after, MaxNodes: buildDataNodesPerBatch})
		if err != nil {
			return fmt.Errorf("source: read build data nodes: %w", err)
		}
		if len(nodes) == 0 {
			return im.commit(ctx, &batch{p: p, position: "nodes:" + encodeNode(after), last: true})
		}
		rows, err := im.sq.SourceBuildData(ctx, im.srcTx, nodes)
		if err != nil {
			return fmt.Errorf("source: read build data: %w", err)
		}
		after = nodes[len(nodes)-1]
		b := &batch{p: p, position: "nodes:" + encodeNode(after), read: int64(len(rows))}
		var accepted []db.CopyBuildDataParams
		for _, r := range rows {
			key := "node " + str(r.NodeName) + ", task " + keyOf(r.TaskID) + ", generator " + quoted(str(r.Generator)) + ", collected " + timeKey(r.CollectedDate, im.loc)
			row, why := im.mapBuildData(r)
			if why != "" {
				b.rejected = append(b.rejected, Rejection{Table: TableBuildData, Key: key, Reason: string(why)})
				continue
			}
			accepted = append(accepted, row)
		}
		if im.opts.DryRun {
			b.wouldWrite = int64(len(accepted))
		} else {
			b.write = func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error) {
				return copyBisect(ctx, tx, TableBuildData, accepted,
					func(r db.CopyBuildDataParams) string {
						return "node " + r.NodeName + ", task " + r.TaskID.String() + ", generator " + quoted(r.Generator) + ", collected " + r.CollectedAt.Format(time.RFC3339Nano)
					},
					func(ctx context.Context, tx pgx.Tx, rows []db.CopyBuildDataParams) error {
						_, err := im.q.CopyBuildData(ctx, tx, rows)
						return err
					})
			}
		}
		if err := im.commit(ctx, b); err != nil {
			return err
		}
	}
}

func (im *importer) mapBuildData(r *drydockdb.SourceBuildDataRow) (row db.CopyBuildDataParams, why problem) {
	var p problem
	row.NodeName = str(r.NodeName)
	if !nodeNameRE.MatchString(row.NodeName) {
		return row, problem("node_name " + quoted(row.NodeName) + " is not a node name (letters, digits, . _ -)")
	}
	if row.TaskID, p = id16(r.TaskID, "task_id"); p != "" {
		return row, p
	}
	collected, p := naiveTime(r.CollectedDate, "collected_date")
	switch {
	case p != "":
		return row, p
	case collected == nil:
		return row, "collected_date is NULL"
	}
	row.CollectedAt = InZone(*collected, im.loc)
	row.Generator, row.DataFormat, row.DataElement = str(r.Generator), str(r.DataFormat), str(r.DataElement)
	switch {
	case r.Generator == nil || row.Generator == "":
		return row, "generator is empty"
	case r.DataFormat == nil:
		return row, "data_format is NULL"
	case !dataFormatRE.MatchString(row.DataFormat):
		return row, problem("data_format " + quoted(row.DataFormat) + " is not a MIME type")
	}
	return row, ""
}

// ---- boot actions ----

func (im *importer) bootActions(ctx context.Context) error {
	p := im.prog[TableBootAction]
	after, err := decodeNode(p.position)
	if err != nil {
		return err
	}
	for {
		rows, err := im.sq.SourceBootActions(ctx, im.srcTx, drydockdb.SourceBootActionsParams{AfterNode: after, FirstPage: p.read == 0, MaxRows: int32(im.opts.BatchSize)})
		if err != nil {
			return fmt.Errorf("source: read boot actions: %w", err)
		}
		if len(rows) > 0 {
			after = rows[len(rows)-1].NodeName
		}
		b := &batch{p: p, position: encodeNode(after), read: int64(len(rows)), last: len(rows) < im.opts.BatchSize}
		var accepted []db.CopyImportBootActionsParams
		for _, r := range rows {
			row := db.CopyImportBootActionsParams{NodeName: r.NodeName}
			var why problem
			if !nodeNameRE.MatchString(r.NodeName) || utf8.RuneCountInString(r.NodeName) > 280 {
				why = problem("node_name " + quoted(r.NodeName) + " is not a node name (letters, digits, . _ -)")
			} else if row.TaskID, why = id16(r.TaskID, "task_id"); why == "" {
				row.IdentityKeyHash, why = keyHash(r.IdentityKey, "identity_key")
			}
			r.IdentityKey = nil
			if why != "" {
				b.rejected = append(b.rejected, Rejection{Table: TableBootAction, Key: r.NodeName, Reason: string(why)})
				continue
			}
			accepted = append(accepted, row)
		}
		if im.opts.DryRun {
			b.wouldWrite = int64(len(accepted))
		} else {
			b.write = func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error) {
				return copyBisect(ctx, tx, TableBootAction, accepted, func(r db.CopyImportBootActionsParams) string { return r.NodeName },
					func(ctx context.Context, tx pgx.Tx, rows []db.CopyImportBootActionsParams) error {
						_, err := im.q.CopyImportBootActions(ctx, tx, rows)
						return err
					})
			}
		}
		if err := im.commit(ctx, b); err != nil {
			return err
		}
		if b.last {
			return nil
		}
	}
}

func (im *importer) bootActionStatuses(ctx context.Context) error {
	p := im.prog[TableBootActionStatus]
	var after []byte
	if h, ok := strings.CutPrefix(p.position, "0x"); ok { // an action id that is not 16 bytes (keyOf)
		b, err := hex.DecodeString(h)
		if err != nil {
			return fmt.Errorf("target: the recorded boot_action_status position is not an action id: %w", err)
		}
		after = b
	} else if p.position != "" {
		u, err := uuid.Parse(p.position)
		if err != nil {
			return fmt.Errorf("target: the recorded boot_action_status position is not an action id: %w", err)
		}
		after = u[:]
	} else {
		after = []byte{}
	}
	for {
		rows, err := im.sq.SourceBootActionStatuses(ctx, im.srcTx, drydockdb.SourceBootActionStatusesParams{AfterActionID: after, FirstPage: p.read == 0, MaxRows: int32(im.opts.BatchSize)})
		if err != nil {
			return fmt.Errorf("source: read boot action statuses: %w", err)
		}
		position := p.position
		if len(rows) > 0 {
			after = rows[len(rows)-1].ActionID
			position = keyOf(after)
		}
		b := &batch{p: p, position: position, read: int64(len(rows)), last: len(rows) < im.opts.BatchSize}
		var accepted []db.CopyImportBootActionStatusesParams
		for _, r := range rows {
			row, why := mapBootActionStatus(r)
			r.IdentityKey = nil
			if why != "" {
				b.rejected = append(b.rejected, Rejection{Table: TableBootActionStatus, Key: keyOf(r.ActionID), Reason: string(why)})
				continue
			}
			accepted = append(accepted, row)
		}
		if im.opts.DryRun {
			b.wouldWrite = int64(len(accepted))
		} else {
			b.write = func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error) {
				return copyBisect(ctx, tx, TableBootActionStatus, accepted, func(r db.CopyImportBootActionStatusesParams) string { return r.ActionID.String() },
					func(ctx context.Context, tx pgx.Tx, rows []db.CopyImportBootActionStatusesParams) error {
						_, err := im.q.CopyImportBootActionStatuses(ctx, tx, rows)
						return err
					})
			}
		}
		if err := im.commit(ctx, b); err != nil {
			return err
		}
		if b.last {
			return nil
		}
	}
}

func mapBootActionStatus(r *drydockdb.SourceBootActionStatusesRow) (row db.CopyImportBootActionStatusesParams, why problem) {
	if row.ActionID, why = id16(r.ActionID, "action_id"); why != "" {
		return row, why
	}
	row.NodeName, row.ActionName, row.ActionStatus = str(r.NodeName), str(r.ActionName), "incomplete"
	if r.ActionStatus != nil {
		row.ActionStatus = *r.ActionStatus
	}
	switch {
	case !nodeNameRE.MatchString(row.NodeName) || utf8.RuneCountInString(row.NodeName) > 280:
		return row, problem("node_name " + quoted(row.NodeName) + " is not a node name (letters, digits, . _ -)")
	case row.ActionName == "":
		return row, "action_name is empty"
	case !resultStatuses[row.ActionStatus]:
		return row, problem("action_status " + quoted(row.ActionStatus) + " is not a result status of this project")
	}
	if row.TaskID, why = id16(r.TaskID, "task_id"); why != "" {
		return row, why
	}
	if row.IdentityKeyHash, why = keyHash(r.IdentityKey, "identity_key"); why != "" {
		return row, why
	}
	// A ULID starts with its creation time in milliseconds: the run's time.
	ms := int64(0)
	for _, c := range row.ActionID[:6] {
		ms = ms<<8 | int64(c)
	}
	row.CreatedAt = time.UnixMilli(ms).UTC()
	row.UpdatedAt = row.CreatedAt
	return row, ""
}

// ---- active_instance ----

func (im *importer) activeInstance(ctx context.Context) error {
	p := im.prog[TableActiveInstance]
	rows, err := im.sq.SourceActiveInstances(ctx, im.srcTx)
	if err != nil {
		return fmt.Errorf("source: read active_instance: %w", err)
	}
	b := &batch{p: p, read: int64(len(rows)), last: true}
	var leaders []db.RecordImportedLeaderParams
	for _, r := range rows {
		id, why := id16(r.Identity, "identity")
		var lastPing *time.Time
		if why == "" {
			lastPing, why = naiveTime(r.LastPing, "last_ping")
		}
		if why == "" && lastPing == nil {
			why = "last_ping is NULL"
		}
		if why != "" {
			b.rejected = append(b.rejected, Rejection{Table: TableActiveInstance, Key: "dummy_key " + strconv.Itoa(int(r.DummyKey)), Reason: string(why)})
			continue
		}
		leaders = append(leaders, db.RecordImportedLeaderParams{Identity: id, Hostname: "drydock (imported)", LastPing: InZone(*lastPing, im.loc)})
	}
	if im.opts.DryRun {
		b.wouldWrite = int64(len(leaders))
		return im.commit(ctx, b)
	}
	b.write = func(ctx context.Context, tx pgx.Tx) (int64, []Rejection, error) {
		for _, l := range leaders {
			term, err := im.q.RecordImportedLeader(ctx, tx, l)
			if err != nil {
				return 0, nil, err
			}
			b.position = strconv.FormatInt(term, 10)
		}
		return int64(len(leaders)), nil, nil
	}
	return im.commit(ctx, b)
}
