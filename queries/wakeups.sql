-- name: NotifyMessages :exec
-- Sends the message wake-ups the store's notifier batched (payload: comma-separated task ids) in a
-- transaction of its own, committed asynchronously: it does not hold the server's notify lock while a
-- commit record is flushed, and a wake-up lost in a crash costs a tailer one poll, never a message.
SELECT set_config('synchronous_commit', 'off', true), pg_notify('statemgmt_message', p)
FROM unnest(@payloads::text[]) AS p;

-- name: NotifyMessagesInTx :exec
-- Queues message wake-ups in the caller's transaction (a Store bound by WithTx), sent when it commits.
SELECT pg_notify('statemgmt_message', @payload::text);

-- name: QueuedTaskExists :one
-- Tells a claimer that found nothing whether queued tasks (of the given actions) exist all the same,
-- i.e. were skipped because another transaction held their row locks: then it retries soon.
SELECT EXISTS (
    SELECT 1 FROM tasks
    WHERE status = 'queued'
      AND (cardinality(@actions::text[]) = 0 OR action = ANY(@actions::text[]))
) AS queued;
