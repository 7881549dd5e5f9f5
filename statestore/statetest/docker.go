package statetest

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// defaultPostgresImage is the image started when Docker is the source.
const defaultPostgresImage = "postgres:15-alpine"

// probeDocker reports whether a Docker engine answers (nil) or why not.
func probeDocker(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	return cli.Close()
}

// startDocker runs PostgreSQL in a container with testcontainers-go. This
// path cannot run on machines without a Docker engine (such as this
// project's CI); it is compiled everywhere and exercised where Docker runs.
func startDocker(ctx context.Context, image string) (*Server, error) {
	if image == "" {
		image = defaultPostgresImage
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
			_ = ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("statetest: start %s container: %w", image, err)
	}
	endpoint, err := ctr.PortEndpoint(ctx, "5432/tcp", "")
	if err != nil {
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("statetest: container endpoint: %w", err)
	}
	admin := "postgres://postgres@" + endpoint + "/postgres?sslmode=disable"
	if err := checkAdmin(ctx, admin); err != nil {
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("statetest: container server: %w", err)
	}
	return &Server{Source: SourceDocker, AdminURL: admin, stop: func(ctx context.Context, _ []string) error {
		return ctr.Terminate(ctx)
	}}, nil
}
