-- Queue statistics, step 5 (see 016): the covering indexes take the old
-- names, which plans and docs use. A rename only changes the catalog.
ALTER INDEX tasks_queued_cover_idx RENAME TO tasks_queued_idx;
ALTER INDEX tasks_claimed_cover_idx RENAME TO tasks_claimed_idx;

---- create above / drop below ----

ALTER INDEX tasks_claimed_idx RENAME TO tasks_claimed_cover_idx;
ALTER INDEX tasks_queued_idx RENAME TO tasks_queued_cover_idx;
