//go:build !unix

package statetest

import (
	"context"
	"errors"
)

func startCluster(context.Context, string) (*Server, error) {
	return nil, errors.New("statetest: throwaway clusters need a unix system")
}
