package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// DefaultPostgresImage is the image a Docker provider starts unless
// EnvPostgresImage names another.
const DefaultPostgresImage = "postgres:15-alpine"

// DockerModule is the import path of the nested module whose blank import
// registers the Docker provider. It is a module of its own so that importing
// statetest does not pull testcontainers, Docker or moby into a consumer's
// go.mod.
const DockerModule = "github.com/drydock-go/statemgmt/statestore/statetest/statetestdocker"

// DockerProvider runs PostgreSQL in a container. The statetestdocker module
// (see DockerModule) registers one when imported:
//
//	import _ "github.com/drydock-go/statemgmt/statestore/statetest/statetestdocker"
//
// Without a registered provider the Docker source is skipped as if no engine
// answered, and forcing it (STATEMGMT_TEST_SERVER=docker) fails saying what to
// import. The order in which sources are tried does not change.
type DockerProvider interface {
	// Available returns nil when a Docker engine answers, or why not.
	Available(ctx context.Context) error
	// Start runs image (DefaultPostgresImage when empty) with trust
	// authentication and returns a connection URL to its postgres database
	// as user postgres, and a function that removes the container.
	Start(ctx context.Context, image string) (adminURL string, stop func(context.Context) error, err error)
}

var (
	dockerMu       sync.Mutex
	dockerProvider DockerProvider
)

// RegisterDockerProvider makes p the way the Docker source starts servers;
// the last registration wins. statetestdocker calls it from its init.
func RegisterDockerProvider(p DockerProvider) {
	dockerMu.Lock()
	defer dockerMu.Unlock()
	dockerProvider = p
}

func registeredDocker() DockerProvider {
	dockerMu.Lock()
	defer dockerMu.Unlock()
	return dockerProvider
}

// errNoDockerProvider says why the Docker source is unavailable when nothing
// registered a provider.
var errNoDockerProvider = errors.New("no Docker provider registered (import _ \"" + DockerModule + "\", a module of its own)")

// probeDocker reports whether a Docker engine answers (nil) or why not.
func probeDocker(ctx context.Context) error {
	p := registeredDocker()
	if p == nil {
		return errNoDockerProvider
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := p.Available(ctx); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	return nil
}

// startDocker runs PostgreSQL in a container through the registered
// provider. This path cannot run on machines without a Docker engine (such
// as this project's CI); it is compiled everywhere and exercised where
// Docker runs.
func startDocker(ctx context.Context, image string) (*Server, error) {
	p := registeredDocker()
	if p == nil {
		return nil, fmt.Errorf("statetest: %w", errNoDockerProvider)
	}
	if image == "" {
		image = DefaultPostgresImage
	}
	admin, stop, err := p.Start(ctx, image)
	if err != nil {
		return nil, fmt.Errorf("statetest: start %s container: %w", image, err)
	}
	if err := checkAdmin(ctx, admin); err != nil {
		if stopErr := stop(context.WithoutCancel(ctx)); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("remove container: %w", stopErr))
		}
		return nil, fmt.Errorf("statetest: container server %s: %w", Redact(admin), err)
	}
	return &Server{Source: SourceDocker, AdminURL: admin, stop: func(ctx context.Context, _ []string) error {
		return stop(ctx)
	}}, nil
}
