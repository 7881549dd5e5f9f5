-- The schema of a Drydock database at Alembic head 4713e7ebca9, as Drydock's
-- Alembic revisions create it (9593a123e7c5 base tables, 4a5bef3702b
-- build_data, 4713e7ebca9 result_links): the source the importer reads.
-- Tests load it into an empty database; sqlc compiles queries/drydock/
-- against it.
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); -- '4713e7ebca9'
CREATE TABLE tasks (task_id bytea PRIMARY KEY, parent_task_id bytea, subtask_id_list bytea[],
  result_status varchar(32), result_message varchar(128), result_reason varchar(128),
  result_error_count integer, result_successes varchar(32)[], result_failures varchar(32)[],
  retry integer, status varchar(32), created timestamp, created_by varchar(16), updated timestamp,
  design_ref varchar(128), request_context json, node_filter json, action varchar(32),
  terminated timestamp, terminated_by varchar(16), terminate boolean, result_links json);
CREATE TABLE result_message (sequence serial PRIMARY KEY, task_id bytea, message varchar(1024),
  error boolean, context varchar(64), context_type varchar(16), ts timestamp, extra json);
CREATE TABLE active_instance (dummy_key serial PRIMARY KEY, identity bytea, last_ping timestamp);
CREATE TABLE boot_action (node_name varchar(280) PRIMARY KEY, task_id bytea, identity_key bytea);
CREATE TABLE boot_action_status (node_name varchar(280), action_id bytea PRIMARY KEY,
  action_name varchar(64), task_id bytea, identity_key bytea, action_status varchar(32));
CREATE INDEX ix_boot_action_status_node_name ON boot_action_status (node_name);
CREATE INDEX ix_boot_action_status_task_id ON boot_action_status (task_id);
CREATE TABLE build_data (node_name varchar(32), task_id bytea, collected_date timestamp,
  generator varchar(256), data_format varchar(32), data_element text);
CREATE INDEX ix_build_data_node_name ON build_data (node_name);
CREATE INDEX ix_build_data_task_id ON build_data (task_id);
