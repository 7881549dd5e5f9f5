package statestore_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/drydock-go/statemgmt/statestore"
)

// keyIsConstant compiles only while DefaultLeaderLockKey is a constant: a
// mutable exported variable would let any importer change the key other
// instances compete for.
const keyIsConstant = statestore.DefaultLeaderLockKey

// TestDefaultLeaderLockKeyDerivation checks the constant against the
// derivation its doc comment states, so the key never changes by accident
// (instances of two versions must compete for the same lock).
func TestDefaultLeaderLockKeyDerivation(t *testing.T) {
	sum := sha256.Sum256([]byte("github.com/drydock-go/statemgmt leadership"))
	want := int64(binary.BigEndian.Uint64(sum[:8]) &^ (1 << 63))
	if keyIsConstant != want {
		t.Fatalf("DefaultLeaderLockKey = %d, want %d", keyIsConstant, want)
	}
}
