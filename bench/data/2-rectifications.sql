-- The data set bench/run measures on, part 2 of 3: the rectifications planned by part 1, with
-- the ids it gave them; one session per CPU, each inserting those of the inspections with
-- id % :parts = :part (two sessions writing to one inspection would deadlock on its form
-- version, which every change of its rectifications counts up).
--   psql -v part=0 -v parts=2 -f bench/data/2-rectifications.sql
-- Every trigger of rectifications runs: search_text and search_grams, the history rows, the
-- readers; only the secondary indexes and the statistics' counts wait for part 3.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT setseed(0.31 + :part / 100.0);

INSERT INTO rectifications (id, problem_id, ordinal, measure, responsible_department_id, deadline, created_by,
                            status, submitted_by, submitted_at, closed_by, closed_at, close_opinion,
                            closed_on_time, urge_count, last_urged_at, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT s.id, s.problem_id, s.ordinal, ducha_bench.sentence(10 + (random() * 6)::int), s.dept, s.deadline, s.inspector,
       s.status,
       CASE WHEN s.status IN ('submitted', 'closed') THEN s.dept_user END,
       CASE WHEN s.status IN ('submitted', 'closed') THEN s.done END,
       CASE WHEN s.status = 'closed' THEN s.inspector END,
       CASE WHEN s.status = 'closed' THEN s.done + interval '3 days' END,
       CASE WHEN s.status = 'closed' THEN '经核查，整改措施已落实到位，同意销号。' END,
       CASE WHEN s.status = 'closed' THEN s.done::date <= s.deadline END,
       s.urges, CASE WHEN s.urges > 0 THEN s.created + interval '40 days' END,
       s.created,
       CASE WHEN s.status = 'closed' THEN s.done + interval '3 days'
            WHEN s.status = 'submitted' THEN s.done ELSE s.created + (now() - s.created) * s.r END
FROM (SELECT s.*, least(s.created + (s.deadline - s.inspected_on) * interval '1 day' * (0.5 + s.r * 0.7),
                        now() - interval '4 days') AS done
      FROM ducha_bench.rplan s WHERE s.inspection_id % :parts = :part) s
ORDER BY s.id;
