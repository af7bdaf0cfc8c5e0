-- record_links_module (node, exposed module, seen run) served no lookup
-- better than the primary key does: the unseen links of a module are read
-- in origin-id order (the primary key's order, filtered by seen_run), and
-- without statistics the planner took it for a page's lookup by origin ids
-- and filtered every link of the module. Every link written updated it: a
-- fourth index on the table written most.
DROP INDEX IF EXISTS record_links_module;
