package statestore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// ULID is a 128-bit Universally Unique Lexicographically Sortable
// Identifier: 48 bits of Unix milliseconds, then 80 random bits. Its text
// form is 26 characters of Crockford base32; it is stored in 16 bytes.
type ULID [16]byte

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewULID returns a ULID for now with random bits from crypto/rand.
func NewULID() (ULID, error) {
	var u ULID
	ms := uint64(time.Now().UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[:6], ts[2:])
	if _, err := rand.Read(u[6:]); err != nil {
		return ULID{}, fmt.Errorf("statestore: random ULID: %w", err)
	}
	return u, nil
}

// String returns the canonical 26-character form.
func (u ULID) String() string {
	var out [26]byte
	// 130 bits of base32 for 128 bits: the first character carries 3 bits.
	hi := binary.BigEndian.Uint64(u[:8])
	lo := binary.BigEndian.Uint64(u[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Time returns the ULID's timestamp.
func (u ULID) Time() time.Time {
	var ts [8]byte
	copy(ts[2:], u[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(ts[:]))).UTC()
}

// MarshalText implements encoding.TextMarshaler (the 26-character form).
func (u ULID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *ULID) UnmarshalText(b []byte) error {
	v, err := ParseULID(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// ParseULID reads the 26-character form (case-insensitive; I and L read as
// 1, O as 0, as Crockford allows). Anything else is an *InvalidInputError.
func ParseULID(s string) (ULID, error) {
	if len(s) != 26 {
		return ULID{}, invalid("action id", "must be a 26-character ULID, got %d characters", len(s))
	}
	var hi, lo uint64
	for i := 0; i < 26; i++ {
		v := decodeCrockford(s[i])
		if v < 0 {
			return ULID{}, invalid("action id", "has a character outside Crockford base32 at position %d", i+1)
		}
		if i == 0 && v > 7 {
			return ULID{}, invalid("action id", "is larger than 128 bits (first character above 7)")
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var u ULID
	binary.BigEndian.PutUint64(u[:8], hi)
	binary.BigEndian.PutUint64(u[8:], lo)
	return u, nil
}

func decodeCrockford(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		c -= 'a' - 'A'
	}
	switch c {
	case 'I', 'L':
		return 1
	case 'O':
		return 0
	}
	for i := 10; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}
