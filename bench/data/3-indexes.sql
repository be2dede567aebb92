-- The data set bench/run measures on, part 3 of 3, first session (the second runs
-- 3-activity.sql meanwhile): the indexes part 1 dropped, one audit event per rectification,
-- then the statistics (migrations/0016).
--   psql -f bench/data/3-indexes.sql
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET maintenance_work_mem = '256MB';
SELECT setseed(0.77);

DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT def FROM ducha_bench.dropped_indexes LOOP
    EXECUTE r.def;
  END LOOP;
END $$;
SELECT setval(pg_get_serial_sequence('rectifications', 'id'), (SELECT max(id) FROM rectifications));

-- One audit event per rectification, computed as audit_append computes it (0002_access.sql),
-- appended to chain 0. audit_append itself, called 40,000 times in one transaction, updates
-- its chain's head row as often, and each call walks the versions the earlier ones left.
DO $$
DECLARE
  h audit_chain_heads;
  e audit_events;
  r record;
BEGIN
  SELECT * INTO h FROM audit_chain_heads WHERE chain = 0 FOR UPDATE;
  FOR r IN SELECT x.id, x.created_by, u.username, x.measure, x.deadline, x.responsible_department_id
           FROM rectifications x LEFT JOIN users u ON u.id = x.created_by ORDER BY x.id LOOP
    e.chain := 0;
    e.chain_seq := h.seq + 1;
    e.occurred_at := clock_timestamp();
    e.actor_id := r.created_by;
    e.actor_name := r.username;
    e.action := 'create';
    e.entity_type := 'rectification';
    e.entity_id := r.id;
    e.request_id := 'bench-' || r.id;
    e.client_address := '10.0.0.1';
    e.before := NULL;
    e.after := jsonb_build_object('id', r.id, 'measure', r.measure, 'deadline', r.deadline,
                                  'responsible_department_id', r.responsible_department_id);
    e.scope_department_ids := ducha_entity_scope('rectification', r.id);
    e.prev_hash := h.hash;
    e.hash := audit_digest(e);
    INSERT INTO audit_events (chain, chain_seq, occurred_at, actor_id, actor_name, action, entity_type,
                              entity_id, request_id, client_address, before, after, scope_department_ids,
                              prev_hash, hash)
    VALUES (e.chain, e.chain_seq, e.occurred_at, e.actor_id, e.actor_name, e.action, e.entity_type,
            e.entity_id, e.request_id, e.client_address, e.before, e.after, e.scope_department_ids,
            e.prev_hash, e.hash);
    h.seq := e.chain_seq;
    h.hash := e.hash;
  END LOOP;
  UPDATE audit_chain_heads SET seq = h.seq, hash = h.hash WHERE chain = 0;
END $$;

-- The statistics' facts and cells, as migrations/0016 counts them.
ALTER TABLE rectifications ENABLE TRIGGER rectifications_statistics;
ALTER TABLE rectification_assignments ENABLE TRIGGER rectification_assignments_statistics;
ALTER TABLE rectifications ENABLE TRIGGER rectifications_form_touch_later;
ALTER TABLE rectifications ENABLE TRIGGER rectifications_form_touch_later_update;
SELECT statistics_backfill();
