package statetest

import (
	"context"
	"fmt"
)

// ServerAt returns a Server over the PostgreSQL server adminURL reaches, as
// its user, who must be allowed to CREATE DATABASE: CreateDatabase and
// CreateEmptyDatabase make databases on it, DropDatabase drops them. It
// starts nothing; Close releases its connections and leaves the server
// running. Unlike DefaultServer it reads no environment variable.
func ServerAt(ctx context.Context, adminURL string) (*Server, error) {
	if err := checkAdmin(ctx, adminURL); err != nil {
		return nil, fmt.Errorf("statetest: server at %s: %w", Redact(adminURL), err)
	}
	return &Server{Source: SourceURL, AdminURL: adminURL}, nil
}
