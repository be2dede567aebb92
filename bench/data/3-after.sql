-- The data set bench/run measures on, part 3 of 3: the indexes part 1 dropped, and what
-- happened to the rectifications since: progress notes, evidence, closures, requests for more
-- time, one audit event each. Then the blocks of ids, for bench/run.
--   psql -f bench/data/3-after.sql
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

-- progress notes: now and then one before the work starts, 1-3 while it goes on, 2-4 before a
-- submission
INSERT INTO progress_updates (rectification_id, note, percent, author_id, created_at)
SELECT r.id, ducha_bench.sentence(8 + (random() * 8)::int), least(100, 20 * g + (random() * 15)::int),
       coalesce(r.submitted_by, r.created_by), r.created_at + g * interval '9 days'
FROM rectifications r
CROSS JOIN LATERAL generate_series(1, CASE r.status WHEN 'pending' THEN (random() < 0.2)::int
                                                    WHEN 'in_progress' THEN 1 + (random() * 2)::int
                                                    ELSE 2 + (random() * 2)::int END + (r.id * 0)::int) g;

-- evidence with a submission (a small file each: the bytes are not what is measured)
INSERT INTO evidence (rectification_id, progress_id, filename, content_type, size, sha256, uploaded_by, uploaded_at)
SELECT r.id, (SELECT max(g.id) FROM progress_updates g WHERE g.rectification_id = r.id),
       '整改佐证材料' || r.id || '.pdf', 'application/pdf', 2064,
       sha256(convert_to('evidence ' || r.id, 'UTF8')), r.submitted_by, r.submitted_at
FROM rectifications r WHERE r.status IN ('submitted', 'closed');
INSERT INTO evidence_chunks (evidence_id, seq, data)
SELECT e.id, 0, convert_to(repeat('%PDF-1.4 bench evidence ', 86), 'UTF8') FROM evidence e;

INSERT INTO closures (rectification_id, closed_by, closed_at, opinion, on_time, evidence)
SELECT r.id, r.closed_by, r.closed_at, r.close_opinion, r.closed_on_time,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', e.id, 'filename', e.filename)) FROM evidence e
                 WHERE e.rectification_id = r.id), '[]')
FROM rectifications r WHERE r.status = 'closed';

-- a pending request for more time on 3 % of the open ones
INSERT INTO extension_requests (rectification_id, deadline, reason, requested_by, requested_at)
SELECT r.id, r.deadline + 30, '涉及多部门协调，需延期完成整改。', du.id, now() - interval '2 days'
FROM rectifications r JOIN users du ON du.role = 'department' AND du.department_id = r.responsible_department_id
WHERE r.status IN ('pending', 'in_progress') AND r.deadline IS NOT NULL AND random() < 0.03;

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

-- the blocks of ids, for bench/run
CREATE TABLE ducha_bench.blocks AS
SELECT min(id) FILTER (WHERE seen_by_district) AS district_lo, max(id) FILTER (WHERE seen_by_district) AS district_hi,
       min(id) FILTER (WHERE NOT seen_by_district AND takes_progress) AS progress_lo,
       max(id) FILTER (WHERE NOT seen_by_district AND takes_progress) AS progress_hi,
       min(id) AS all_lo, max(id) AS all_hi
FROM ducha_bench.rplan;
