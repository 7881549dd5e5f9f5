package statestore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// ErrKeyMismatch means a node presented a boot action key that is not its
// own. The error never contains either key.
var ErrKeyMismatch = errors.New("statestore: boot action key does not match")

// IdentityKey is a node's 32-byte boot action secret. It is shown to the
// caller once, when created; every way of printing or logging it (String,
// %v, %x, %#v, slog, JSON) yields "[REDACTED]". Reveal returns the bytes.
//
// The bytes sit behind a pointer: fmt cannot call Format on a key held in an
// unexported field of the caller's struct, and prints a nested pointer as its
// address, never the array it points to.
type IdentityKey struct{ b *[32]byte }

const redacted = "[REDACTED]"

// Reveal returns a copy of the key's bytes, for handing to the node.
func (k IdentityKey) Reveal() []byte { b := k.bytes(); return b[:] }

// RevealHex returns the key in hex, the form nodes usually present.
func (k IdentityKey) RevealHex() string { b := k.bytes(); return hex.EncodeToString(b[:]) }

// bytes returns a copy of the key (32 zero bytes for the zero IdentityKey).
func (k IdentityKey) bytes() (b [32]byte) {
	if k.b != nil {
		b = *k.b
	}
	return b
}

// String implements fmt.Stringer without revealing the key.
func (IdentityKey) String() string { return redacted }

// GoString implements fmt.GoStringer without revealing the key.
func (IdentityKey) GoString() string { return redacted }

// Format implements fmt.Formatter: every verb prints "[REDACTED]".
func (IdentityKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (IdentityKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML) without revealing the key.
func (IdentityKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// BootActionContext is a node's boot action context; it never holds the key.
type BootActionContext struct {
	// NodeName is the node the context belongs to.
	NodeName string
	// TaskID is the task deploying the node.
	TaskID uuid.UUID
	// CreatedAt is when the node's first context was created; replacing it
	// keeps this time.
	CreatedAt time.Time
	// UpdatedAt is when the context (task and key) was last created or
	// replaced.
	UpdatedAt time.Time
}

// CreateBootActionContext creates or replaces the boot action context of a
// node: the task that deploys it and a fresh 32-byte identity key from
// crypto/rand. The key is returned once; only its SHA-256 digest is stored.
func (s *Store) CreateBootActionContext(ctx context.Context, node string, task uuid.UUID) (_ *BootActionContext, _ IdentityKey, err error) {
	ctx, span := s.start(ctx, "statestore.CreateBootActionContext")
	defer finish(span, &err)
	var key IdentityKey
	if err := validateNodeName(node, "node"); err != nil {
		return nil, key, err
	}
	if task == uuid.Nil {
		return nil, key, invalid("task", "must not be the nil UUID")
	}
	key.b = new([32]byte)
	if _, err := rand.Read(key.b[:]); err != nil {
		return nil, IdentityKey{}, fmt.Errorf("statestore: generate identity key: %w", err)
	}
	digest := sha256.Sum256(key.b[:])
	r, err := s.q.UpsertBootAction(ctx, s.conn, db.UpsertBootActionParams{NodeName: node, TaskID: task, IdentityKeyHash: digest[:]})
	if err != nil {
		return nil, IdentityKey{}, mapError("create boot action context of "+node, err)
	}
	return bootActionFromRow(r), key, nil
}

// GetBootActionContext reads a node's context; ErrNotFound if it has none.
func (s *Store) GetBootActionContext(ctx context.Context, node string) (_ *BootActionContext, err error) {
	ctx, span := s.start(ctx, "statestore.GetBootActionContext")
	defer finish(span, &err)
	if err := validateNodeName(node, "node"); err != nil {
		return nil, err
	}
	r, err := s.q.GetBootAction(ctx, s.conn, node)
	if err != nil {
		return nil, mapError("get boot action context of "+node, err)
	}
	return bootActionFromRow(r), nil
}

// VerifyBootActionKey checks the key a node presents against the node's
// stored digest in constant time. The node may present the key in either
// form the store hands out: the 32 raw bytes (IdentityKey.Reveal) or its 64
// hexadecimal digits (IdentityKey.RevealHex; upper or lower case, nothing
// around them: no whitespace, prefix or newline). Anything else is a
// mismatch. Decoding the hex form and comparing digests take the same time
// whatever the digits are; only the length of the presented value (32, 64
// or other) changes the work done.
//
// It returns the context on a match, ErrKeyMismatch on a mismatch (logged
// with the node name only) and ErrNotFound for a node without a context.
// Neither key ever appears in an error or a log line.
func (s *Store) VerifyBootActionKey(ctx context.Context, node string, presented []byte) (_ *BootActionContext, err error) {
	ctx, span := s.start(ctx, "statestore.VerifyBootActionKey")
	defer finish(span, &err)
	if err := validateNodeName(node, "node"); err != nil {
		return nil, err
	}
	r, err := s.q.GetBootAction(ctx, s.conn, node)
	if err != nil {
		return nil, mapError("verify boot action key of "+node, err)
	}
	key, ok := decodePresentedKey(presented)
	digest := sha256.Sum256(key[:])
	if subtle.ConstantTimeCompare(digest[:], r.IdentityKeyHash)&ok != 1 {
		s.logger.WarnContext(ctx, "statestore: boot action key mismatch", "node", node)
		return nil, fmt.Errorf("verify boot action key of %s: %w", node, ErrKeyMismatch)
	}
	return bootActionFromRow(r), nil
}

// decodePresentedKey reads a presented key: 32 raw bytes, or 64 hex digits
// decoded without branches or table lookups on their values. ok is 1 for
// one of these forms, else 0 (and key is then meaningless).
func decodePresentedKey(p []byte) (key [32]byte, ok int) {
	switch len(p) {
	case 32:
		copy(key[:], p)
		return key, 1
	case 64:
		valid := uint32(1)
		for i := range key {
			hi, okHi := hexDigit(p[2*i])
			lo, okLo := hexDigit(p[2*i+1])
			key[i] = byte(hi<<4 | lo)
			valid &= okHi & okLo
		}
		return key, int(valid)
	}
	return key, 0
}

// hexDigit decodes one hex digit in constant time (libsodium's
// sodium_hex2bin arithmetic): v is its value and ok 1 for 0-9, a-f, A-F;
// ok is 0 for any other byte.
func hexDigit(c byte) (v, ok uint32) {
	x := uint32(c)
	num := x ^ '0'                                  // 0-9 for a decimal digit
	numMask := (num - 10) >> 8                      // all ones (low 24 bits) iff num < 10
	alpha := (x &^ 0x20) - 55                       // 10-15 for a-f and A-F
	alphaMask := ((alpha - 10) ^ (alpha - 16)) >> 8 // all ones iff 10 <= alpha < 16
	return ((numMask & num) | (alphaMask & alpha)) & 0xF, (numMask | alphaMask) & 1
}

func bootActionFromRow(r *db.BootAction) *BootActionContext {
	return &BootActionContext{NodeName: r.NodeName, TaskID: r.TaskID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// BootActionStatus is the status of one boot action run on a node.
type BootActionStatus struct {
	// ActionID identifies the run: a ULID, 26 characters as text.
	ActionID ULID
	// NodeName is the node the action ran on.
	NodeName string
	// ActionName names the boot action, e.g. "hw_config".
	ActionName string
	// TaskID is the task the run belongs to.
	TaskID uuid.UUID
	// Status is the run's result; once final (FinalBootActionStatus) it no
	// longer changes.
	Status ResultStatus
	// CreatedAt is when the run was recorded.
	CreatedAt time.Time
	// UpdatedAt is when its status last changed.
	UpdatedAt time.Time
}

// NewBootActionStatus is a boot action run to record.
type NewBootActionStatus struct {
	// ActionID is generated when zero.
	ActionID ULID
	// NodeName is the node; it must have a boot action context.
	NodeName string
	// ActionName names the boot action; required.
	ActionName string
	// TaskID is the task the run belongs to; not the nil UUID.
	TaskID uuid.UUID
	// Status defaults to incomplete.
	Status ResultStatus
}

// CreateBootActionStatus records a boot action run. The node must have a
// boot action context (else ErrNotFound); the run is bound to the node's
// current key. A taken action id is ErrConflict.
func (s *Store) CreateBootActionStatus(ctx context.Context, n NewBootActionStatus) (_ *BootActionStatus, err error) {
	ctx, span := s.start(ctx, "statestore.CreateBootActionStatus")
	defer finish(span, &err)
	if err := validateNodeName(n.NodeName, "status.NodeName"); err != nil {
		return nil, err
	}
	if n.ActionName == "" {
		return nil, invalid("status.ActionName", "must not be empty")
	}
	if err := validateText(n.ActionName, "status.ActionName", 64); err != nil {
		return nil, err
	}
	if n.TaskID == uuid.Nil {
		return nil, invalid("status.TaskID", "must not be the nil UUID")
	}
	if n.Status == "" {
		n.Status = ResultIncomplete
	}
	if err := validateResultStatus(n.Status, "status.Status"); err != nil {
		return nil, err
	}
	if n.ActionID == (ULID{}) {
		id, err := NewULID()
		if err != nil {
			return nil, err
		}
		n.ActionID = id
	}
	r, err := s.q.CreateBootActionStatus(ctx, s.conn, db.CreateBootActionStatusParams{
		ActionID: uuid.UUID(n.ActionID), ActionName: n.ActionName, TaskID: n.TaskID,
		ActionStatus: string(n.Status), NodeName: n.NodeName})
	if err != nil {
		mapped := mapError("create boot action status", err)
		if isNotFound(mapped) {
			return nil, fmt.Errorf("create boot action status: node %s has no boot action context: %w", n.NodeName, ErrNotFound)
		}
		return nil, mapped
	}
	return statusFromRow(r), nil
}

// FinalBootActionStatus reports whether a boot action status is final:
// every status but incomplete (success, partial_success, failure, and
// unreported, the status of an action that does not report). A final status
// never changes again, as in the original, whose API answered 409 to any
// report on a run that was no longer incomplete.
func FinalBootActionStatus(st ResultStatus) bool { return st != ResultIncomplete }

// UpdateBootActionStatus sets the status of a run. A run whose status is
// already final (FinalBootActionStatus) is not changed: ErrConflict, nothing
// written, even when two updates race (the update is conditional on the
// status, re-checked after waiting for the other's row lock). ErrNotFound
// for an unknown action id.
func (s *Store) UpdateBootActionStatus(ctx context.Context, id ULID, st ResultStatus) (_ *BootActionStatus, err error) {
	ctx, span := s.start(ctx, "statestore.UpdateBootActionStatus")
	defer finish(span, &err)
	if err := validateResultStatus(st, "status"); err != nil {
		return nil, err
	}
	op := "update boot action status " + id.String()
	r, err := s.q.UpdateBootActionStatus(ctx, s.conn, db.UpdateBootActionStatusParams{ActionID: uuid.UUID(id), ActionStatus: string(st)})
	if err == nil {
		return statusFromRow(r), nil
	}
	if mapped := mapError(op, err); !isNotFound(mapped) {
		return nil, mapped
	}
	// No row updated: an unknown id, or a final status.
	cur, err := s.q.GetBootActionStatus(ctx, s.conn, uuid.UUID(id))
	if err != nil {
		return nil, mapError(op, err)
	}
	if !FinalBootActionStatus(ResultStatus(cur.ActionStatus)) { // recorded between the two statements
		return nil, fmt.Errorf("%s: %w: the run was recorded concurrently; retry", op, ErrConflict)
	}
	return nil, fmt.Errorf("%s: %w: status is already final (%s)", op, ErrConflict, cur.ActionStatus)
}

// GetBootActionStatus reads one run by action id; ErrNotFound if unknown.
func (s *Store) GetBootActionStatus(ctx context.Context, id ULID) (_ *BootActionStatus, err error) {
	ctx, span := s.start(ctx, "statestore.GetBootActionStatus")
	defer finish(span, &err)
	r, err := s.q.GetBootActionStatus(ctx, s.conn, uuid.UUID(id))
	if err != nil {
		return nil, mapError("get boot action status "+id.String(), err)
	}
	return statusFromRow(r), nil
}

// BootActionStatuses returns a node's statuses keyed by action name (the
// newest run of each name).
func (s *Store) BootActionStatuses(ctx context.Context, node string) (_ map[string]BootActionStatus, err error) {
	ctx, span := s.start(ctx, "statestore.BootActionStatuses")
	defer finish(span, &err)
	if err := validateNodeName(node, "node"); err != nil {
		return nil, err
	}
	rows, err := s.q.ListBootActionStatusesOfNode(ctx, s.conn, node)
	if err != nil {
		return nil, mapError("list boot action statuses of "+node, err)
	}
	out := make(map[string]BootActionStatus, len(rows))
	for _, r := range rows {
		out[r.ActionName] = *statusFromRow(r)
	}
	return out, nil
}

func statusFromRow(r *db.BootActionStatus) *BootActionStatus {
	return &BootActionStatus{ActionID: ULID(r.ActionID), NodeName: r.NodeName, ActionName: r.ActionName,
		TaskID: r.TaskID, Status: ResultStatus(r.ActionStatus), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}
