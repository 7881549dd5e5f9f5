package statestore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// MaxMessageLength is the longest message text stored, in characters.
// Longer messages are rejected, never truncated.
const MaxMessageLength = 65536

// ResultMessage is one entry of a task's log.
type ResultMessage struct {
	// TaskID is the task whose log holds the message.
	TaskID uuid.UUID
	// Sequence numbers a task's messages 1, 2, 3 … without gaps.
	Sequence int64
	// Message is the text.
	Message string
	// Error flags a message reporting an error (counted in
	// TaskResult.ErrorCount).
	Error       bool
	Context     string // e.g. a node name
	ContextType string // e.g. "node", "task"
	// Time is when it happened: NewMessage.Time, or the database's clock.
	Time  time.Time
	Extra json.RawMessage // nil when unset
	// ClientID is the caller's id for it (NewMessage.ClientID); "" when none.
	ClientID string
}

// NewMessage is a message to append.
type NewMessage struct {
	// Message is the text, at most MaxMessageLength characters.
	Message string
	// Error flags a message reporting an error.
	Error bool
	// Context names what the message is about, e.g. a node name.
	Context string
	// ContextType says what kind of thing Context names, e.g. "node".
	ContextType string
	// Time defaults to the database's clock when zero; otherwise it must be
	// one PostgreSQL stores (4714 BC to 294276 AD), or the call is refused.
	Time time.Time
	// Extra is any JSON to keep with the message, or nil.
	Extra json.RawMessage
	// ClientID, when set, is the caller's id for the message, unique per
	// task (at most MaxClientMessageIDLength characters): appending a message
	// whose ClientID the task already has stores nothing and returns the
	// stored message (its first sequence number), so a retry after an
	// unknown outcome appends once. The same ClientID with a different
	// message (text, error flag, context, context type, extra) is
	// ErrConflict.
	ClientID string
}

func messageFromRow(r *db.ResultMessage) ResultMessage {
	return ResultMessage{TaskID: r.TaskID, Sequence: r.Sequence, Message: r.Message, Error: r.Error,
		Context: r.Context, ContextType: r.ContextType, Time: r.Ts.UTC(), Extra: r.Extra,
		ClientID: deref(r.ClientMessageID)}
}

// AppendMessages appends messages to task id in one statement and returns
// them with their sequence numbers. Each message takes the task's next
// number under the task's row lock, in the same statement as the insert, so
// numbers are gap-free and unique however many writers append at once. A
// message flagged Error raises the task's Result.ErrorCount. A missing task
// is ErrNotFound; an invalid message fails the call and nothing is written.
//
// Messages with a ClientID are appended idempotently (see NewMessage): the
// call then runs in a transaction of three statements (lock the task, look
// the ids up, append the new ones) instead of one.
//
// Outside a transaction, calls of one Store appending to the same task at
// the same time may share one statement (one row lock, one commit); each
// call's messages still form one block of consecutive numbers in its own
// order. A call whose ctx ends while it waits for the statement before it
// returns ctx's error; its messages are written only if it had already
// been taken into a shared statement (when the one before it ended).
func (s *Store) AppendMessages(ctx context.Context, id uuid.UUID, msgs ...NewMessage) (_ []ResultMessage, err error) {
	ctx, span := s.start(ctx, "statestore.AppendMessages")
	defer finish(span, &err)
	if len(msgs) == 0 {
		return []ResultMessage{}, nil
	}
	n := len(msgs)
	clientIDs := make(map[string]bool)
	for i, m := range msgs {
		field := func(name string) string {
			if n == 1 {
				return "message." + name
			}
			return fmt.Sprintf("messages[%d].%s", i, name)
		}
		if err := validateMessage(m, field); err != nil {
			return nil, err
		}
		if m.ClientID == "" {
			continue
		}
		if err := validateText(m.ClientID, field("ClientID"), MaxClientMessageIDLength); err != nil {
			return nil, err
		}
		if clientIDs[m.ClientID] {
			return nil, invalid(field("ClientID"), "appears twice in the batch")
		}
		clientIDs[m.ClientID] = true
	}
	if len(clientIDs) > 0 {
		return s.appendIdempotent(ctx, id, msgs)
	}
	return s.appendMessages(ctx, id, msgs)
}

// appendMessages appends validated messages in one statement.
func (s *Store) appendMessages(ctx context.Context, id uuid.UUID, msgs []NewMessage) ([]ResultMessage, error) {
	if len(msgs) == 0 {
		return []ResultMessage{}, nil
	}
	n := len(msgs)
	p := db.AppendResultMessagesParams{TaskID: id,
		Messages: make([]string, n), Errors: make([]bool, n), Contexts: make([]string, n),
		ContextTypes: make([]string, n), HasTs: make([]bool, n), Tss: make([]time.Time, n),
		Extras: make([]json.RawMessage, n), ClientMessageIds: make([]string, n)}
	for i, m := range msgs {
		p.Messages[i], p.Errors[i], p.Contexts[i], p.ContextTypes[i] = m.Message, m.Error, m.Context, m.ContextType
		p.HasTs[i], p.Tss[i], p.Extras[i], p.ClientMessageIds[i] = !m.Time.IsZero(), m.Time, m.Extra, m.ClientID
	}
	var rows []*db.AppendResultMessagesRow
	var err error
	if s.tx == nil && groupAppends {
		// Concurrent appends to this task share a statement (appendGroups).
		rows, err = s.appendGrouped(ctx, id, &appendCall{ctx: ctx, p: p, n: n, done: make(chan struct{})})
	} else {
		rows, err = s.q.AppendResultMessages(ctx, s.conn, p)
	}
	if err != nil {
		return nil, mapError("append messages to task "+id.String(), err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("append messages to task %s: %w", id, ErrNotFound)
	}
	if len(rows) != n {
		return nil, fmt.Errorf("append messages to task %s: %d of %d messages stored", id, len(rows), n)
	}
	s.messagesAppended(ctx, msgs)
	if err := s.wakeTailers(ctx, id); err != nil {
		return nil, err
	}
	// RETURNING order is not guaranteed: the numbers are, so sort by them.
	sort.Slice(rows, func(i, j int) bool { return rows[i].Sequence < rows[j].Sequence })
	out := make([]ResultMessage, n)
	for i, r := range rows {
		m := msgs[i]
		out[i] = ResultMessage{TaskID: id, Sequence: r.Sequence, Message: m.Message, Error: m.Error,
			Context: m.Context, ContextType: m.ContextType, Time: r.Ts.UTC(), Extra: m.Extra, ClientID: m.ClientID}
	}
	return out, nil
}

// pendingWakeups collects, inside the store's own InTx, the tasks whose
// tailers to wake once the transaction commits.
type pendingWakeups struct{ tasks []uuid.UUID }

// wakeTailers arranges the wake-up of task id's tailers for messages just
// appended. Outside a transaction the append has committed: the store's
// notifier sends it (batched, from its own transaction). Inside the store's
// own InTx it is sent after the commit. Inside a caller's transaction
// (WithTx) the store cannot know when that commits, so the wake-up is
// queued in the transaction itself (pg_notify, sent at its commit; that
// one commit takes PostgreSQL's notify lock).
func (s *Store) wakeTailers(ctx context.Context, id uuid.UUID) error {
	switch {
	case s.tx == nil:
		s.notify.messages(id)
	case s.pending != nil:
		s.pending.tasks = append(s.pending.tasks, id)
	case s.notify.enabled:
		if err := s.q.NotifyMessagesInTx(ctx, s.conn, id.String()); err != nil {
			return mapError("wake tailers of task "+id.String(), err)
		}
	}
	return nil
}

// AppendMessage appends one message; see AppendMessages.
func (s *Store) AppendMessage(ctx context.Context, id uuid.UUID, m NewMessage) (_ ResultMessage, err error) {
	ctx, span := s.start(ctx, "statestore.AppendMessage")
	defer finish(span, &err)
	out, err := s.AppendMessages(ctx, id, m)
	if err != nil {
		return ResultMessage{}, err
	}
	return out[0], nil
}

// Messages returns up to limit (default 1000, at most 100000) messages of
// task id with sequence greater than after, in order. Page by passing the
// last sequence read as after.
func (s *Store) Messages(ctx context.Context, id uuid.UUID, after int64, limit int) (_ []ResultMessage, err error) {
	ctx, span := s.start(ctx, "statestore.Messages")
	defer finish(span, &err)
	if limit == 0 {
		limit = 1000
	}
	if limit < 0 || limit > 100000 {
		return nil, invalid("limit", "must be between 1 and 100000, got %d", limit)
	}
	rows, err := s.q.ListResultMessages(ctx, s.conn, db.ListResultMessagesParams{
		TaskID: id, AfterSequence: after, MaxRows: int32(limit)})
	if err != nil {
		return nil, mapError("read messages of task "+id.String(), err)
	}
	out := make([]ResultMessage, len(rows))
	for i, r := range rows {
		out[i] = messageFromRow(r)
	}
	return out, nil
}

// TailMessages calls fn with every message of task id after sequence
// after, in order, then follows the task live: new messages are delivered
// as they commit (LISTEN/NOTIFY wake-ups for this task only, polling as
// the fallback). It returns when ctx ends (with ctx's error), fn returns an
// error (that error), or reading fails (e.g. the connection is lost; resume
// by calling it again with the last sequence fn saw).
func (s *Store) TailMessages(ctx context.Context, id uuid.UUID, after int64, fn func(ResultMessage) error) (err error) {
	ctx, span := s.start(ctx, "statestore.TailMessages")
	defer finish(span, &err)
	key := id.String()
	for {
		sub := s.wake.subscribe(channelMessage, key) // before reading: nothing slips between
		err := s.tailOnce(ctx, id, &after, fn)
		if err == nil {
			err = wait(ctx, sub.ch, s.poll)
		}
		s.wake.unsubscribe(sub)
		if err != nil {
			return err
		}
	}
}

// tailOnce delivers every message after *after, advancing it.
func (s *Store) tailOnce(ctx context.Context, id uuid.UUID, after *int64, fn func(ResultMessage) error) error {
	for {
		batch, err := s.Messages(ctx, id, *after, 1000)
		if err != nil {
			return err
		}
		for _, m := range batch {
			if err := fn(m); err != nil {
				return err
			}
			*after = m.Sequence
		}
		if len(batch) < 1000 {
			return nil
		}
	}
}

// attachMessages fills Messages of every task with one query for all.
func (s *Store) attachMessages(ctx context.Context, tasks []*Task) error {
	if len(tasks) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(tasks))
	byID := make(map[uuid.UUID]*Task, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
		byID[t.ID] = t
		t.Messages = []ResultMessage{}
	}
	rows, err := s.q.ListResultMessagesOfTasks(ctx, s.conn, ids)
	if err != nil {
		return mapError("read messages of tasks", err)
	}
	for _, r := range rows {
		t := byID[r.TaskID]
		t.Messages = append(t.Messages, messageFromRow(r))
	}
	for _, t := range tasks {
		m := t.Messages
		if !sort.SliceIsSorted(m, func(i, j int) bool { return m[i].Sequence < m[j].Sequence }) {
			sort.Slice(m, func(i, j int) bool { return m[i].Sequence < m[j].Sequence })
		}
	}
	return nil
}
