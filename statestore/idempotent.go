package statestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drydock-go/statemgmt/gen/db"
)

// Retrying a call whose outcome is unknown (the connection died during the
// commit, a failover happened) must not write twice. Which calls are safe
// to retry, and how, is tabled in docs/ha.md; this file holds the three
// that needed help: CreateTasks with caller-chosen ids, AppendMessages
// with client message ids, and CompleteTasks naming the attempt.

// MaxClientMessageIDLength is the longest NewMessage.ClientID accepted.
const MaxClientMessageIDLength = 200

// isTaskIDTaken reports whether err is the tasks primary key refusing an id
// that exists.
func isTaskIDTaken(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgUniqueViolation && pgErr.ConstraintName == "tasks_pkey"
}

// existingBatch is CreateTasks' answer when the insert found the batch's
// ids taken: if every task of the batch exists with the same content (the
// batch committed before, and this is a retry), those tasks; otherwise
// ErrConflict. A batch commits whole or not at all, so a retry finds all of
// its tasks or none.
func (s *Store) existingBatch(ctx context.Context, p db.InsertTasksParams) ([]*Task, error) {
	rows, err := s.q.GetTasks(ctx, s.conn, p.TaskIds)
	if err != nil {
		return nil, mapError("create tasks: read the existing tasks", err)
	}
	byID := make(map[uuid.UUID]*db.GetTasksRow, len(rows))
	for _, r := range rows {
		byID[r.TaskID] = r
	}
	out := make([]*Task, len(p.TaskIds))
	for i, id := range p.TaskIds {
		r := byID[id]
		if r == nil {
			return nil, fmt.Errorf("create tasks: %w: task_id already exists (other tasks of the batch do not: not a retry of it)", ErrConflict)
		}
		var parent uuid.UUID
		if r.ParentTaskID != nil {
			parent = *r.ParentTaskID
		}
		if parent != p.ParentTaskIds[i] || r.Action != p.Actions[i] || r.DesignRef != p.DesignRefs[i] ||
			r.CreatedBy != p.CreatedBys[i] || !sameJSON(r.NodeFilter, p.NodeFilters[i]) ||
			!sameJSON(r.RequestContext, p.RequestContexts[i]) {
			return nil, fmt.Errorf("create tasks: %w: task_id %s already exists with different content", ErrConflict, id)
		}
		row := db.GetTaskRow(*r)
		out[i] = taskFromRow(&row)
	}
	return out, nil
}

// existingBatchOr is CreateTasks' answer when a check before the insert
// refused the batch with err (its parent is closed): a retry of a batch
// that committed before the parent closed returns that batch (or
// ErrConflict, as existingBatch); when none of its tasks exists, err. The
// refusal came before any insert, so even a caller's transaction is
// intact (its savepoint was rolled back).
func (s *Store) existingBatchOr(ctx context.Context, p db.InsertTasksParams, err error) ([]*Task, error) {
	rows, gerr := s.q.GetTasks(ctx, s.conn, p.TaskIds)
	if gerr != nil {
		return nil, errors.Join(err, mapError("create tasks: look for an earlier attempt's tasks", gerr))
	}
	if len(rows) == 0 {
		return nil, err
	}
	return s.existingBatch(ctx, p)
}

// sameJSON compares two JSON documents by value (jsonb keeps neither
// spacing nor key order, and spells numbers its own way); nil and JSON
// null are the same. Numbers are compared exactly, not as float64, which
// cannot tell integers beyond 2^53 apart
// (TestBreakCreateRetryComparesJSONNumbersExactly).
func sameJSON(a, b json.RawMessage) bool {
	x, okx := decodeJSONExact(a)
	y, oky := decodeJSONExact(b)
	return okx && oky && reflect.DeepEqual(x, y)
}

// decodeJSONExact decodes a JSON document with every number as its exact
// value in lowest terms (a big.Rat's string), so that 100, 1e2 and 100.0
// decode alike; nil for an empty document.
func decodeJSONExact(raw json.RawMessage) (any, bool) {
	if len(raw) == 0 {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return exactNumbers(v)
}

// exactNumber is a JSON number's exact value: a type of its own, so that
// the number 100 and the string "100" differ.
type exactNumber string

func exactNumbers(v any) (any, bool) {
	switch t := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(t))
		if !ok {
			return nil, false
		}
		return exactNumber(r.RatString()), true
	case []any:
		for i := range t {
			var ok bool
			if t[i], ok = exactNumbers(t[i]); !ok {
				return nil, false
			}
		}
	case map[string]any:
		for k := range t {
			n, ok := exactNumbers(t[k])
			if !ok {
				return nil, false
			}
			t[k] = n
		}
	}
	return v, true
}

// appendIdempotent appends msgs, some of which carry client message ids,
// in a transaction: it takes the task's row lock (a duplicate append waits
// for the original and then sees it), returns the messages already stored
// under those ids as they are, and appends only the others.
func (s *Store) appendIdempotent(ctx context.Context, id uuid.UUID, msgs []NewMessage) ([]ResultMessage, error) {
	var out []ResultMessage
	err := s.InTx(ctx, func(ctx context.Context, tx *Store) error {
		if _, err := tx.q.LockTaskForAppend(ctx, tx.conn, id); err != nil {
			return mapError("append messages to task "+id.String(), err)
		}
		ids := []string{}
		for _, m := range msgs {
			if m.ClientID != "" {
				ids = append(ids, m.ClientID)
			}
		}
		rows, err := tx.q.ListMessagesByClientID(ctx, tx.conn, db.ListMessagesByClientIDParams{
			TaskID: id, ClientMessageIds: ids})
		if err != nil {
			return mapError("append messages to task "+id.String()+": read client message ids", err)
		}
		stored := make(map[string]*db.ResultMessage, len(rows))
		for _, r := range rows {
			stored[*r.ClientMessageID] = r
		}
		var fresh []NewMessage
		for i, m := range msgs {
			if r := stored[m.ClientID]; m.ClientID != "" && r != nil {
				if r.Message != m.Message || r.Error != m.Error || r.Context != m.Context ||
					r.ContextType != m.ContextType || !sameJSON(r.Extra, m.Extra) {
					return fmt.Errorf("append messages to task %s: %w: messages[%d].ClientID is taken by a different message",
						id, ErrConflict, i)
				}
				continue
			}
			fresh = append(fresh, m)
		}
		added, err := tx.appendMessages(ctx, id, fresh)
		if err != nil {
			return err
		}
		out = make([]ResultMessage, len(msgs))
		for i, m := range msgs {
			if r := stored[m.ClientID]; m.ClientID != "" && r != nil {
				out[i] = messageFromRow(r)
				continue
			}
			out[i], added = added[0], added[1:]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// alreadyCompleted returns, of the claims CompleteTasks did not apply, the
// tasks already complete under that very attempt with that result status:
// an earlier call (whose answer was lost) completed them, so a retry
// succeeds. The claims still missing are returned too.
func (s *Store) alreadyCompleted(ctx context.Context, rs ResultStatus, claims []Claim, done []*Task) ([]*Task, error) {
	if len(done) == len(claims) {
		return nil, nil
	}
	applied := make(map[uuid.UUID]bool, len(done))
	for _, t := range done {
		applied[t.ID] = true
	}
	var ids []uuid.UUID
	want := map[uuid.UUID]int64{}
	for _, c := range claims {
		if !applied[c.TaskID] {
			ids = append(ids, c.TaskID)
			want[c.TaskID] = c.Attempt
		}
	}
	states, err := s.q.GetClaimStates(ctx, s.conn, ids)
	if err != nil {
		return nil, mapError("complete tasks: read claim states", err)
	}
	var again []uuid.UUID
	for _, st := range states {
		if st.Status == string(StatusComplete) && st.Attempt == want[st.TaskID] && st.ClaimedBy != nil &&
			st.ResultStatus == string(rs) {
			again = append(again, st.TaskID)
		}
	}
	if len(again) == 0 {
		return nil, nil
	}
	rows, err := s.q.GetTasks(ctx, s.conn, again)
	if err != nil {
		return nil, mapError("complete tasks: read completed tasks", err)
	}
	out := make([]*Task, len(rows))
	for i, r := range rows {
		row := db.GetTaskRow(*r)
		out[i] = taskFromRow(&row)
	}
	return out, nil
}
