-- The data set bench/run measures on, part 3 of 3, second session (beside 3-indexes.sql): what
-- happened to the rectifications since they were made: progress notes, evidence, closures,
-- requests for more time.
--   psql -f bench/data/3-activity.sql
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT setseed(0.78);

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
