// Package statetestdocker lets statetest run PostgreSQL in a Docker
// container through testcontainers-go. Importing it registers the provider:
//
//	import _ "github.com/drydock-go/statemgmt/statestore/statetest/statetestdocker"
//
// It is a module of its own so that a program importing only statetest does
// not carry testcontainers, Docker and moby in its go.mod. With it imported,
// statetest tries Docker third, after an explicit URL and libpq defaults and
// before local server binaries, exactly as documented in statetest; the
// image is postgres:15-alpine unless STATEMGMT_TEST_POSTGRES_IMAGE names
// another.
package statetestdocker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func init() { statetest.RegisterDockerProvider(Provider{}) }

// Provider starts PostgreSQL containers with testcontainers-go.
type Provider struct{}

// Available returns nil when a Docker engine answers (creating the client
// asks the engine for its information).
func (Provider) Available(ctx context.Context) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	return cli.Close()
}

// Start runs image with trust authentication, fsync off and room for many
// connections, and returns the admin URL and a function removing the
// container.
func (Provider) Start(ctx context.Context, image string) (string, func(context.Context) error, error) {
	if image == "" {
		image = statetest.DefaultPostgresImage
	}
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithEnv(map[string]string{"POSTGRES_HOST_AUTH_METHOD": "trust"}),
		testcontainers.WithExposedPorts("5432/tcp"),
		testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "max_connections=300"),
		// The entrypoint starts the server twice (init, then for real).
		testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").
			WithOccurrence(2).WithStartupTimeout(2*time.Minute)),
	)
	if err != nil {
		if ctr != nil {
			err = errors.Join(err, ctr.Terminate(context.WithoutCancel(ctx)))
		}
		return "", nil, err
	}
	endpoint, err := ctr.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("container endpoint: %w", err), ctr.Terminate(context.WithoutCancel(ctx)))
	}
	stop := func(ctx context.Context) error { return ctr.Terminate(ctx) }
	return "postgres://postgres@" + endpoint + "/postgres?sslmode=disable", stop, nil
}
