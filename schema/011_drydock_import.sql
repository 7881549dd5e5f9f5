-- Importing a Drydock database (statectl import drydock): what the import has
-- done so far, so an interrupted import resumes where it stopped and a
-- finished one is not repeated. Each batch the importer writes commits in the
-- same transaction as its progress row and its rejected rows, so the
-- bookkeeping never disagrees with the imported rows.

CREATE TABLE drydock_import (
    singleton          boolean     PRIMARY KEY DEFAULT true,
    source_fingerprint text        NOT NULL,
    source_timezone    text        NOT NULL,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,

    CONSTRAINT drydock_import_singleton_check CHECK (singleton)
);

COMMENT ON TABLE drydock_import IS 'The Drydock import into this database: which source (counts, revision), when it started and finished.';

CREATE TABLE drydock_import_progress (
    source_table text   PRIMARY KEY,
    position     text   NOT NULL DEFAULT '',
    rows_read    bigint NOT NULL DEFAULT 0,
    rows_written bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    truncated    bigint NOT NULL DEFAULT 0,
    recovered    bigint NOT NULL DEFAULT 0,
    done         boolean NOT NULL DEFAULT false,

    CONSTRAINT drydock_import_progress_rows_read_nonnegative CHECK (rows_read >= 0)
);

COMMENT ON TABLE drydock_import_progress IS 'Per source table: where the import stands (position: the last key done) and what it wrote.';

CREATE TABLE drydock_import_rejected (
    rejected_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_table text   NOT NULL,
    source_key   text   NOT NULL,
    reason       text   NOT NULL
);

COMMENT ON TABLE drydock_import_rejected IS 'Source rows the import skipped, with why; never holds a boot action key.';

-- The report lists rejections by table, in the order they were found.
CREATE INDEX drydock_import_rejected_table_idx ON drydock_import_rejected (source_table, rejected_id);

---- create above / drop below ----

-- squawk-ignore ban-drop-table -- the down section drops only what this migration created
DROP TABLE drydock_import_rejected;
-- squawk-ignore ban-drop-table -- the down section drops only what this migration created
DROP TABLE drydock_import_progress;
-- squawk-ignore ban-drop-table -- the down section drops only what this migration created
DROP TABLE drydock_import;
