-- The fully migrated schema: pg_dump --schema-only of schema/*.sql applied in order,
-- normalised. Written by make generate (TestSchemaFile -update in gen/db); do not edit.

--
-- PostgreSQL database dump
--

--
-- Name: statemgmt_holds_advisory_lock(integer, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.statemgmt_holds_advisory_lock(backend integer, lock_key bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.pid = backend AND l.objsubid = 1
          AND ((l.classid::bigint << 32) | l.objid::bigint) = lock_key)
$$;

--
-- Name: statemgmt_notify_queued(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.statemgmt_notify_queued() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('statemgmt_task_queued', NEW.action);
    RETURN NULL;
END;
$$;

--
-- Name: statemgmt_subtask_ids(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.statemgmt_subtask_ids(parent uuid) RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(array_agg(c.task_id ORDER BY c.created_at, c.task_id), '{}')
    FROM tasks c WHERE c.parent_task_id = parent
$$;

--
-- Name: FUNCTION statemgmt_subtask_ids(parent uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.statemgmt_subtask_ids(parent uuid) IS 'Direct subtasks of a task, oldest first.';

--
-- Name: statemgmt_sync_standbys(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.statemgmt_sync_standbys() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
    -- Rows of others' sessions are hidden from roles without pg_read_all_stats
    -- (pg_monitor): such a role sees 0 here.
    SELECT count(*) FROM pg_catalog.pg_stat_replication r WHERE r.sync_state IN ('sync', 'quorum')
$$;

--
-- Name: FUNCTION statemgmt_sync_standbys(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.statemgmt_sync_standbys() IS 'Standbys streaming to this server as synchronous ones now.';

--
-- Name: statemgmt_terminate_fenced_sessions(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.statemgmt_terminate_fenced_sessions() RETURNS bigint
    LANGUAGE sql
    AS $$
    SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(l.pid))
    FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'relation' AND l.relation = 'active_instance'::regclass AND l.mode = 'RowShareLock'
      AND l.granted AND l.pid <> pg_catalog.pg_backend_pid()
$$;

--
-- Name: statemgmt_timeline(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.statemgmt_timeline() RETURNS bigint
    LANGUAGE sql
    AS $$
    -- The first 8 hex digits of the current WAL file name are the timeline
    -- new WAL is written on (a primary only: it fails during recovery).
    SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint
$$;

--
-- Name: FUNCTION statemgmt_timeline(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.statemgmt_timeline() IS 'The WAL timeline this primary writes on; a promotion moves to a new one.';

--
-- Name: active_instance; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.active_instance (
    dummy_key smallint DEFAULT 1 NOT NULL,
    identity uuid NOT NULL,
    term bigint NOT NULL,
    elected_at timestamp with time zone DEFAULT now() NOT NULL,
    last_ping timestamp with time zone DEFAULT now() NOT NULL,
    resigned_at timestamp with time zone,
    hostname text DEFAULT ''::text NOT NULL,
    pid integer DEFAULT 0 NOT NULL,
    backend_pid integer DEFAULT pg_backend_pid() NOT NULL,
    lock_key bigint,
    timeline bigint,
    CONSTRAINT active_instance_hostname_length CHECK ((char_length(hostname) <= 255)),
    CONSTRAINT active_instance_pid_nonnegative CHECK ((pid >= 0)),
    CONSTRAINT active_instance_single_row CHECK ((dummy_key = 1)),
    CONSTRAINT active_instance_term_positive CHECK ((term > 0))
);

--
-- Name: TABLE active_instance; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.active_instance IS 'The current (or last) leader; term is the fencing token.';

--
-- Name: COLUMN active_instance.backend_pid; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.active_instance.backend_pid IS 'PostgreSQL backend that holds the leadership advisory lock.';

--
-- Name: COLUMN active_instance.lock_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.active_instance.lock_key IS 'Advisory lock key the leader holds (NULL: recorded before version 7, the default key).';

--
-- Name: COLUMN active_instance.timeline; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.active_instance.timeline IS 'WAL timeline the term was elected on; its fenced writes pass only on it.';

--
-- Name: boot_action; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.boot_action (
    node_name text NOT NULL,
    task_id uuid NOT NULL,
    identity_key_hash bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT boot_action_identity_key_hash_length CHECK ((octet_length(identity_key_hash) = 32)),
    CONSTRAINT boot_action_node_name_check CHECK (((node_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'::text) AND (char_length(node_name) <= 280)))
);

--
-- Name: COLUMN boot_action.identity_key_hash; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.boot_action.identity_key_hash IS 'SHA-256 of the node''s 32-byte identity key; the key itself is never stored.';

--
-- Name: boot_action_status; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.boot_action_status (
    action_id uuid NOT NULL,
    node_name text NOT NULL,
    action_name text NOT NULL,
    task_id uuid NOT NULL,
    identity_key_hash bytea NOT NULL,
    action_status text DEFAULT 'incomplete'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    run_seq bigint NOT NULL,
    CONSTRAINT boot_action_status_action_name_check CHECK (((char_length(action_name) >= 1) AND (char_length(action_name) <= 64))),
    CONSTRAINT boot_action_status_action_status_check CHECK ((action_status = ANY (ARRAY['incomplete'::text, 'success'::text, 'partial_success'::text, 'failure'::text, 'unreported'::text]))),
    CONSTRAINT boot_action_status_identity_key_hash_length CHECK ((octet_length(identity_key_hash) = 32)),
    CONSTRAINT boot_action_status_node_name_check CHECK (((node_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'::text) AND (char_length(node_name) <= 280)))
);

--
-- Name: COLUMN boot_action_status.action_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.boot_action_status.action_id IS 'A ULID stored in its 16-byte binary form; rendered as 26-character text at the API.';

--
-- Name: COLUMN boot_action_status.run_seq; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.boot_action_status.run_seq IS 'Order in which runs were recorded; the newest run of an action has the highest.';

--
-- Name: boot_action_status_run_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.boot_action_status ALTER COLUMN run_seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.boot_action_status_run_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: build_data; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.build_data (
    build_data_id bigint NOT NULL,
    node_name text NOT NULL,
    task_id uuid NOT NULL,
    collected_at timestamp with time zone DEFAULT now() NOT NULL,
    generator text NOT NULL,
    data_format text NOT NULL,
    data_element text NOT NULL,
    CONSTRAINT build_data_data_format_check CHECK (((char_length(data_format) <= 255) AND (data_format ~ '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*( *;.*)?$'::text))),
    CONSTRAINT build_data_generator_check CHECK (((char_length(generator) >= 1) AND (char_length(generator) <= 256))),
    CONSTRAINT build_data_node_name_check CHECK (((node_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'::text) AND (char_length(node_name) <= 280)))
);

--
-- Name: TABLE build_data; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.build_data IS 'History of data collected from nodes; survives task deletion and node redeploys.';

--
-- Name: build_data_build_data_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.build_data ALTER COLUMN build_data_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.build_data_build_data_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: drydock_import; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.drydock_import (
    singleton boolean DEFAULT true NOT NULL,
    source_fingerprint text NOT NULL,
    source_timezone text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    CONSTRAINT drydock_import_singleton_check CHECK (singleton)
);

--
-- Name: TABLE drydock_import; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.drydock_import IS 'The Drydock import into this database: which source (counts, revision), when it started and finished.';

--
-- Name: drydock_import_progress; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.drydock_import_progress (
    source_table text NOT NULL,
    "position" text DEFAULT ''::text NOT NULL,
    rows_read bigint DEFAULT 0 NOT NULL,
    rows_written bigint DEFAULT 0 NOT NULL,
    rows_rejected bigint DEFAULT 0 NOT NULL,
    truncated bigint DEFAULT 0 NOT NULL,
    recovered bigint DEFAULT 0 NOT NULL,
    done boolean DEFAULT false NOT NULL,
    CONSTRAINT drydock_import_progress_rows_read_nonnegative CHECK ((rows_read >= 0))
);

--
-- Name: TABLE drydock_import_progress; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.drydock_import_progress IS 'Per source table: where the import stands (position: the last key done) and what it wrote.';

--
-- Name: drydock_import_rejected; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.drydock_import_rejected (
    rejected_id bigint NOT NULL,
    source_table text NOT NULL,
    source_key text NOT NULL,
    reason text NOT NULL
);

--
-- Name: TABLE drydock_import_rejected; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.drydock_import_rejected IS 'Source rows the import skipped, with why; never holds a boot action key.';

--
-- Name: drydock_import_rejected_rejected_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.drydock_import_rejected ALTER COLUMN rejected_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.drydock_import_rejected_rejected_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: leader_term; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.leader_term (
    term bigint NOT NULL,
    identity uuid NOT NULL,
    hostname text DEFAULT ''::text NOT NULL,
    pid integer DEFAULT 0 NOT NULL,
    backend_pid integer NOT NULL,
    elected_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    end_reason text,
    last_seen timestamp with time zone,
    CONSTRAINT leader_term_end_pair CHECK (((ended_at IS NULL) = (end_reason IS NULL))),
    CONSTRAINT leader_term_end_reason_check CHECK ((end_reason = ANY (ARRAY['resigned'::text, 'superseded'::text]))),
    CONSTRAINT leader_term_term_positive CHECK ((term > 0))
);

--
-- Name: TABLE leader_term; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.leader_term IS 'Every leadership term: who, when elected, when and how it ended.';

--
-- Name: COLUMN leader_term.end_reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.leader_term.end_reason IS 'resigned: the leader let go; superseded: a new leader found it still open (crash, partition).';

--
-- Name: COLUMN leader_term.last_seen; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.leader_term.last_seen IS 'Last heartbeat of the term''s leader; NULL until the first one.';

--
-- Name: leadership_fence; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.leadership_fence (
    singleton boolean DEFAULT true NOT NULL,
    max_term bigint NOT NULL,
    lock_key bigint,
    CONSTRAINT leadership_fence_max_term_nonnegative CHECK ((max_term >= 0)),
    CONSTRAINT leadership_fence_singleton CHECK (singleton)
);

--
-- Name: TABLE leadership_fence; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.leadership_fence IS 'Highest leadership term ever granted; deliberately kept by every down migration.';

--
-- Name: result_message; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.result_message (
    task_id uuid NOT NULL,
    sequence bigint NOT NULL,
    message text NOT NULL,
    error boolean DEFAULT false NOT NULL,
    context text DEFAULT ''::text NOT NULL,
    context_type text DEFAULT ''::text NOT NULL,
    ts timestamp with time zone DEFAULT now() NOT NULL,
    extra jsonb,
    client_message_id text,
    CONSTRAINT result_message_client_message_id_length CHECK (((char_length(client_message_id) >= 1) AND (char_length(client_message_id) <= 200))),
    CONSTRAINT result_message_context_length CHECK ((char_length(context) <= 1024)),
    CONSTRAINT result_message_context_type_length CHECK ((char_length(context_type) <= 64)),
    CONSTRAINT result_message_message_length CHECK ((char_length(message) <= 65536)),
    CONSTRAINT result_message_sequence_positive CHECK ((sequence > 0))
);

--
-- Name: TABLE result_message; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.result_message IS 'The ordered log of a task: sequence is 1, 2, 3 ... per task, without gaps.';

--
-- Name: COLUMN result_message.client_message_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.result_message.client_message_id IS 'Caller-chosen id making a retried append idempotent; unique per task.';

--
-- Name: tasks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tasks (
    task_id uuid DEFAULT gen_random_uuid() NOT NULL,
    parent_task_id uuid,
    status text DEFAULT 'requested'::text NOT NULL,
    action text NOT NULL,
    design_ref text DEFAULT ''::text NOT NULL,
    node_filter jsonb,
    request_context jsonb,
    retry integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text DEFAULT ''::text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    terminated_at timestamp with time zone,
    terminated_by text,
    terminate boolean DEFAULT false NOT NULL,
    result_status text DEFAULT 'incomplete'::text NOT NULL,
    result_message text DEFAULT ''::text NOT NULL,
    result_reason text DEFAULT ''::text NOT NULL,
    result_error_count integer DEFAULT 0 NOT NULL,
    result_successes text[] DEFAULT '{}'::text[] NOT NULL,
    result_failures text[] DEFAULT '{}'::text[] NOT NULL,
    result_links jsonb DEFAULT '[]'::jsonb NOT NULL,
    version bigint DEFAULT 1 NOT NULL,
    last_message_seq bigint DEFAULT 0 NOT NULL,
    claimed_by text,
    claimed_at timestamp with time zone,
    attempt bigint DEFAULT 0 NOT NULL,
    CONSTRAINT tasks_action_check CHECK ((action ~ '^[a-z][a-z0-9_]{0,63}$'::text)),
    CONSTRAINT tasks_attempt_nonnegative CHECK ((attempt >= 0)),
    CONSTRAINT tasks_claim_pair CHECK (((claimed_by IS NULL) = (claimed_at IS NULL))),
    CONSTRAINT tasks_claimed_by_length CHECK ((char_length(claimed_by) <= 256)),
    CONSTRAINT tasks_created_by_length CHECK ((char_length(created_by) <= 256)),
    CONSTRAINT tasks_design_ref_length CHECK ((char_length(design_ref) <= 2048)),
    CONSTRAINT tasks_last_message_seq_nonnegative CHECK ((last_message_seq >= 0)),
    CONSTRAINT tasks_parent_not_self CHECK ((parent_task_id <> task_id)),
    CONSTRAINT tasks_result_error_count_nonnegative CHECK ((result_error_count >= 0)),
    CONSTRAINT tasks_result_links_array CHECK ((jsonb_typeof(result_links) = 'array'::text)),
    CONSTRAINT tasks_result_message_length CHECK ((char_length(result_message) <= 65536)),
    CONSTRAINT tasks_result_reason_length CHECK ((char_length(result_reason) <= 65536)),
    CONSTRAINT tasks_result_status_check CHECK ((result_status = ANY (ARRAY['incomplete'::text, 'success'::text, 'partial_success'::text, 'failure'::text, 'unreported'::text]))),
    CONSTRAINT tasks_retry_nonnegative CHECK ((retry >= 0)),
    CONSTRAINT tasks_status_check CHECK ((status = ANY (ARRAY['requested'::text, 'queued'::text, 'running'::text, 'terminating'::text, 'terminated'::text, 'complete'::text]))),
    CONSTRAINT tasks_terminated_by_length CHECK ((char_length(terminated_by) <= 256)),
    CONSTRAINT tasks_version_positive CHECK ((version > 0))
);

--
-- Name: TABLE tasks; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.tasks IS 'Every orchestrator task; the orchestrator takes its work from here.';

--
-- Name: COLUMN tasks.version; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.tasks.version IS 'Incremented by every update; updates must name the version they read.';

--
-- Name: COLUMN tasks.last_message_seq; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.tasks.last_message_seq IS 'Sequence number of the newest result_message of this task (0: none).';

--
-- Name: COLUMN tasks.attempt; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.tasks.attempt IS 'Number of claims so far; a claimed task''s writes must name it.';

--
-- Name: active_instance active_instance_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.active_instance
    ADD CONSTRAINT active_instance_pkey PRIMARY KEY (dummy_key);

--
-- Name: boot_action boot_action_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.boot_action
    ADD CONSTRAINT boot_action_pkey PRIMARY KEY (node_name);

--
-- Name: boot_action_status boot_action_status_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.boot_action_status
    ADD CONSTRAINT boot_action_status_pkey PRIMARY KEY (action_id);

--
-- Name: boot_action_status boot_action_status_run_seq_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.boot_action_status
    ADD CONSTRAINT boot_action_status_run_seq_key UNIQUE (run_seq);

--
-- Name: build_data build_data_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.build_data
    ADD CONSTRAINT build_data_pkey PRIMARY KEY (build_data_id);

--
-- Name: drydock_import drydock_import_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.drydock_import
    ADD CONSTRAINT drydock_import_pkey PRIMARY KEY (singleton);

--
-- Name: drydock_import_progress drydock_import_progress_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.drydock_import_progress
    ADD CONSTRAINT drydock_import_progress_pkey PRIMARY KEY (source_table);

--
-- Name: drydock_import_rejected drydock_import_rejected_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.drydock_import_rejected
    ADD CONSTRAINT drydock_import_rejected_pkey PRIMARY KEY (rejected_id);

--
-- Name: leader_term leader_term_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.leader_term
    ADD CONSTRAINT leader_term_pkey PRIMARY KEY (term);

--
-- Name: leadership_fence leadership_fence_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.leadership_fence
    ADD CONSTRAINT leadership_fence_pkey PRIMARY KEY (singleton);

--
-- Name: result_message result_message_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.result_message
    ADD CONSTRAINT result_message_pkey PRIMARY KEY (task_id, sequence);

--
-- Name: tasks tasks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (task_id);

--
-- Name: boot_action_status_node_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX boot_action_status_node_idx ON public.boot_action_status USING btree (node_name, action_name, run_seq DESC);

--
-- Name: build_data_node_generator_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX build_data_node_generator_idx ON public.build_data USING btree (node_name, generator, collected_at DESC, build_data_id DESC);

--
-- Name: build_data_node_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX build_data_node_idx ON public.build_data USING btree (node_name, collected_at DESC);

--
-- Name: build_data_task_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX build_data_task_idx ON public.build_data USING btree (task_id, collected_at DESC);

--
-- Name: drydock_import_rejected_table_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX drydock_import_rejected_table_idx ON public.drydock_import_rejected USING btree (source_table, rejected_id);

--
-- Name: result_message_client_message_id_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX result_message_client_message_id_key ON public.result_message USING btree (task_id, client_message_id) WHERE (client_message_id IS NOT NULL);

--
-- Name: tasks_action_status_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_action_status_created_idx ON public.tasks USING btree (action, status, created_at, task_id);

--
-- Name: tasks_claimed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_claimed_idx ON public.tasks USING btree (claimed_at) INCLUDE (status, action) WHERE (status = ANY (ARRAY['running'::text, 'terminating'::text]));

--
-- Name: tasks_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_created_idx ON public.tasks USING btree (created_at, task_id);

--
-- Name: tasks_parent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_parent_idx ON public.tasks USING btree (parent_task_id, created_at, task_id) WHERE (parent_task_id IS NOT NULL);

--
-- Name: tasks_queued_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_queued_idx ON public.tasks USING btree (created_at, task_id) INCLUDE (action, updated_at) WHERE (status = 'queued'::text);

--
-- Name: tasks tasks_notify_queued_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER tasks_notify_queued_insert AFTER INSERT ON public.tasks FOR EACH ROW WHEN ((new.status = 'queued'::text)) EXECUTE FUNCTION public.statemgmt_notify_queued();

--
-- Name: tasks tasks_notify_queued_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER tasks_notify_queued_update AFTER UPDATE OF status ON public.tasks FOR EACH ROW WHEN (((new.status = 'queued'::text) AND (old.status <> 'queued'::text))) EXECUTE FUNCTION public.statemgmt_notify_queued();

--
-- Name: result_message result_message_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.result_message
    ADD CONSTRAINT result_message_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.tasks(task_id) ON DELETE CASCADE;

--
-- Name: tasks tasks_parent_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_parent_task_id_fkey FOREIGN KEY (parent_task_id) REFERENCES public.tasks(task_id) ON DELETE CASCADE;

--
-- PostgreSQL database dump complete
--
