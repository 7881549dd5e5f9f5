package statestore

import "context"

// ReadSchemaVersion returns the schema version recorded in
// SchemaVersionTable for the database behind the store, only reading: unlike
// SchemaVersion it never creates that table, so it suits read-only users and
// checks before every command. A database never migrated (no such table)
// is at version 0. Compare the result with LatestSchemaVersion.
func (s *Store) ReadSchemaVersion(ctx context.Context) (int32, error) {
	v, err := s.q.ReadSchemaVersion(ctx, s.conn)
	if err != nil {
		return 0, mapError("read schema version", err)
	}
	return max(v, 0), nil
}
