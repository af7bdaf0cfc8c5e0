-- PostgreSQL only (its record_links and local_records lose their foreign
-- keys, see the PostgreSQL step of the same name). Dropping a foreign key
-- in SQLite means rebuilding the table; nothing changes here. The step
-- exists so both engines list the same migrations.
SELECT 1;
