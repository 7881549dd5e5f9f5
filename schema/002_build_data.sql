-- Build data: the history of what was collected from each node (lshw output,
-- logs, ...). It deliberately has no foreign key to tasks: the history must
-- survive the deletion of the task that collected it.

CREATE TABLE build_data (
    build_data_id  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_name      text        NOT NULL,
    task_id        uuid        NOT NULL,
    collected_at   timestamptz NOT NULL DEFAULT now(),
    generator      text        NOT NULL,
    data_format    text        NOT NULL,
    data_element   text        NOT NULL,

    CONSTRAINT build_data_node_name_check CHECK (node_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(node_name) <= 280),
    CONSTRAINT build_data_generator_check CHECK (char_length(generator) BETWEEN 1 AND 256),
    -- A MIME type: type "/" subtype, optional parameters (RFC 6838 token shape).
    CONSTRAINT build_data_data_format_check CHECK (
        char_length(data_format) <= 255 AND
        data_format ~ '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*( *;.*)?$')
);

COMMENT ON TABLE build_data IS 'History of data collected from nodes; survives task deletion and node redeploys.';

-- By node, newest first.
CREATE INDEX build_data_node_idx ON build_data (node_name, collected_at DESC);
-- By task (and by node and task), newest first.
CREATE INDEX build_data_task_idx ON build_data (task_id, collected_at DESC);
-- Latest record per generator, for one node or all nodes.
CREATE INDEX build_data_node_generator_idx ON build_data (node_name, generator, collected_at DESC, build_data_id DESC);

---- create above / drop below ----

-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE build_data;
