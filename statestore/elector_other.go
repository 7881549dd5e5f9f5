//go:build !linux

package statestore

import (
	"syscall"
	"time"
)

// userTimeoutControl is a no-op where TCP_USER_TIMEOUT is not available;
// keepalives still bound how long a dead peer goes unnoticed.
func userTimeoutControl(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
