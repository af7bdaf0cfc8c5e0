-- SQLite only (its record_links becomes a WITHOUT ROWID table, see the
-- SQLite step of the same name). PostgreSQL finds a link through the
-- primary key's index and reads it from the heap; nothing changes here.
-- The step exists so both engines list the same migrations.
SELECT 1;
