-- Validates 013's client message id length check on existing rows, in its
-- own transaction: VALIDATE CONSTRAINT takes only a SHARE UPDATE EXCLUSIVE
-- lock, so writes go on while it scans.
ALTER TABLE result_message VALIDATE CONSTRAINT result_message_client_message_id_length;

---- create above / drop below ----

-- Nothing to undo: 013's down drops the column with its constraint.
