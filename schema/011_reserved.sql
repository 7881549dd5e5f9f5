-- Placeholder for migration 011, which another branch adds: tern refuses a
-- gap before 013_ha.sql. DELETE THIS FILE AT MERGE (the real 011 replaces it).
SELECT 1;

---- create above / drop below ----

SELECT 1;
