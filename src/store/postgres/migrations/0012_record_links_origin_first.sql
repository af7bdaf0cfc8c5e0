-- record_links' primary key leads with the origin's record id: (peer,
-- origin record, origin exposed module). A page's lookup binds the peer,
-- the module and the origin ids, a reference's translation the peer and
-- the origin ids: the one key serves both, and record_links_origin (peer,
-- origin record), an index entry written for every link, goes. 200,000
-- links in pages of 500 with psql: 0.996 s with it, 0.810 s without.
ALTER TABLE record_links DROP CONSTRAINT record_links_pkey;
ALTER TABLE record_links ADD PRIMARY KEY (node_id, origin_record_id, exposed_module_id);
DROP INDEX IF EXISTS record_links_origin;
