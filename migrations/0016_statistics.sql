-- The statistics of the 通报 (src/statistics.c), counted ahead by triggers: at 1,000,000
-- rectifications a count that walks every rectification takes most of a second, a sum over the
-- cells below a few milliseconds.
--
-- statistics_facts: one row per rectification with what the statistics count it by (its unit,
-- its inspection's target, batch, checklist, date and submission, its status, deadline,
-- urges, closure, and the working days from the submission to the closure), kept by triggers
-- on the tables it comes from (statistics_fact_refresh). A rectification counts in its own
-- inspection only: carried-over ones are linked to later inspections, never counted there.
--
-- statistics_months and statistics_days: the facts summed per responsible unit, checklist and
-- month (or day) of inspection, kept by a trigger on statistics_facts. A date range is summed
-- from the months it holds whole and the days at its two ends. Each cell also keeps the working
-- days to close of its closed rectifications (days, an array: a median needs the values).
--
-- statistics_units: per responsible unit and checklist, the working days to close of all its
-- closed rectifications, in order: the median of a unit with no date range is their middle.
--
-- statistics_trend: per unit (0: all units) and local date, the rectifications created, closed
-- and closed late that day.
--
-- What changes with the date without any write: `overdue` counts the open rectifications whose
-- deadline is before statistics_state.as_of; a report adds those whose deadline lies between
-- as_of and today (and the red ones near their threshold) from the facts' index, and the job
-- `statistics` moves as_of to today. The working days depend on the calendar: when it is
-- replaced (name_versions 'calendar' moves on) the reports count from the facts row by row
-- until the job has counted the days again with it (statistics_state.calendar_version).
--
-- Writers and the job take the advisory lock ducha_statistics_lock(): writers shared, the job
-- (and a rebuild) exclusive, so that as_of and the calendar a writer counts with are the ones
-- its cells are kept at.

CREATE FUNCTION ducha_local_date(t timestamptz) RETURNS date LANGUAGE sql STABLE AS $$
  SELECT (t AT TIME ZONE coalesce(nullif(current_setting('ducha.timezone', true), ''), 'Asia/Shanghai'))::date
$$;
CREATE FUNCTION ducha_statistics_lock() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT 7166297461866496016  -- 'statistics' as a number of its own
$$;

CREATE TABLE statistics_state (
  one               boolean PRIMARY KEY DEFAULT true CHECK (one),
  as_of             date NOT NULL,    -- the cells' overdue counts deadlines before it
  calendar_version  bigint NOT NULL   -- the calendar (name_versions) the working days were counted with
);

CREATE TABLE statistics_facts (
  rectification_id  bigint PRIMARY KEY REFERENCES rectifications (id) ON DELETE CASCADE,
  unit              bigint NOT NULL,  -- responsible_department_id
  target            bigint NOT NULL,  -- the inspection's target_department_id
  inspection_id     bigint NOT NULL,
  checklist_id      bigint NOT NULL,
  batch_id          bigint,
  inspected_on      date NOT NULL,
  status            text NOT NULL,
  deadline          date,
  urge_count        integer NOT NULL,
  closed_on_time    boolean,
  created_on        date NOT NULL,    -- local dates (DUCHA_TIMEZONE)
  closed_on         date,
  submitted_on      date,             -- the inspection's submission
  days              integer,          -- working days from submitted_on to closed_on, closed ones only
  prior_units       bigint[] NOT NULL DEFAULT '{}'  -- units it was assigned to before (they read it)
);
CREATE INDEX statistics_facts_batch_idx ON statistics_facts (batch_id) WHERE batch_id IS NOT NULL;
-- open ones by deadline: what changed with the date since as_of (read from the index alone)
CREATE INDEX statistics_facts_open_deadline_idx ON statistics_facts (deadline)
  INCLUDE (unit, checklist_id, inspected_on, urge_count) WHERE status IN ('pending', 'in_progress') AND deadline IS NOT NULL;
-- what a department user reads of other units through its inspections (from the index alone), or
-- through a former assignment
CREATE INDEX statistics_facts_target_idx ON statistics_facts (target, unit)
  INCLUDE (status, deadline, urge_count, closed_on_time, days, checklist_id, batch_id, inspected_on, created_on,
           closed_on, submitted_on) WHERE unit <> target;
CREATE INDEX statistics_facts_prior_idx ON statistics_facts USING gin (prior_units) WHERE prior_units <> '{}';

CREATE TABLE statistics_months (
  unit          bigint NOT NULL,
  checklist_id  bigint NOT NULL,
  period        date NOT NULL,               -- the first day of the month of inspection
  n             integer NOT NULL DEFAULT 0,  -- rectifications
  open          integer NOT NULL DEFAULT 0,  -- not closed
  on_time       integer NOT NULL DEFAULT 0,  -- closed on time
  late          integer NOT NULL DEFAULT 0,  -- closed late
  overdue       integer NOT NULL DEFAULT 0,  -- pending or in progress, deadline before as_of
  days_sum      bigint NOT NULL DEFAULT 0,   -- working days to close, summed
  days          integer[] NOT NULL DEFAULT '{}',  -- and each
  PRIMARY KEY (unit, period, checklist_id)
);
CREATE TABLE statistics_days (LIKE statistics_months INCLUDING DEFAULTS);  -- period: the day of inspection
ALTER TABLE statistics_days ADD PRIMARY KEY (period, unit, checklist_id);
CREATE INDEX statistics_days_unit_idx ON statistics_days (unit, period);

CREATE TABLE statistics_units (
  unit          bigint NOT NULL,
  checklist_id  bigint NOT NULL,
  days          integer[] NOT NULL DEFAULT '{}',  -- ascending
  PRIMARY KEY (unit, checklist_id)
);

CREATE TABLE statistics_trend (
  unit         bigint NOT NULL,  -- 0: all units
  day          date NOT NULL,
  created      integer NOT NULL DEFAULT 0,
  closed       integer NOT NULL DEFAULT 0,
  closed_late  integer NOT NULL DEFAULT 0,
  PRIMARY KEY (unit, day)
);

-- What the fact of each rectification is, from its tables (written once for the triggers and
-- the backfill).
CREATE VIEW statistics_fact_source AS
SELECT r.id AS rectification_id, r.responsible_department_id AS unit, i.target_department_id AS target,
       i.id AS inspection_id, i.checklist_id, i.batch_id, i.inspected_on, r.status, r.deadline, r.urge_count,
       r.closed_on_time, ducha_local_date(r.created_at) AS created_on, ducha_local_date(r.closed_at) AS closed_on,
       ducha_local_date(i.submitted_at) AS submitted_on,
       CASE WHEN r.status = 'closed' THEN wc.ordinal - ws.ordinal END AS days,
       coalesce((SELECT array_agg(a.department_id ORDER BY a.department_id) FROM rectification_assignments a
                 WHERE a.rectification_id = r.id AND a.department_id <> r.responsible_department_id), '{}') AS prior_units
  FROM rectifications r JOIN problems p ON p.id = r.problem_id JOIN items it ON it.id = p.item_id
  JOIN inspections i ON i.id = it.inspection_id
  LEFT JOIN working_days wc ON wc.day = ducha_local_date(r.closed_at)
  LEFT JOIN working_days ws ON ws.day = ducha_local_date(i.submitted_at);

-- The fact of rectification r_id, or none when it is gone. One rectification a call, by primary
-- keys: planned once per connection.
CREATE FUNCTION statistics_fact_refresh(r_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM rectifications WHERE id = r_id) THEN
    DELETE FROM statistics_facts WHERE rectification_id = r_id;
    RETURN;
  END IF;
  INSERT INTO statistics_facts AS f SELECT * FROM statistics_fact_source s WHERE s.rectification_id = r_id
  ON CONFLICT (rectification_id) DO UPDATE
    SET unit = excluded.unit, target = excluded.target, inspection_id = excluded.inspection_id,
        checklist_id = excluded.checklist_id, batch_id = excluded.batch_id, inspected_on = excluded.inspected_on,
        status = excluded.status, deadline = excluded.deadline, urge_count = excluded.urge_count,
        closed_on_time = excluded.closed_on_time, created_on = excluded.created_on, closed_on = excluded.closed_on,
        submitted_on = excluded.submitted_on, days = excluded.days, prior_units = excluded.prior_units
    WHERE f IS DISTINCT FROM excluded;
END $$;

-- The rectification itself, its assignments, and the rows above it.
CREATE FUNCTION statistics_facts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  CASE TG_TABLE_NAME
  WHEN 'rectifications' THEN
    PERFORM statistics_fact_refresh(NEW.id);
  WHEN 'rectification_assignments' THEN
    IF TG_OP <> 'INSERT' THEN
      PERFORM statistics_fact_refresh(OLD.rectification_id);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.rectification_id <> OLD.rectification_id) THEN
      PERFORM statistics_fact_refresh(NEW.rectification_id);
    END IF;
  WHEN 'inspections' THEN
    PERFORM statistics_fact_refresh(r.id)
       FROM items it JOIN problems p ON p.item_id = it.id JOIN rectifications r ON r.problem_id = p.id
      WHERE it.inspection_id = NEW.id;
  WHEN 'items' THEN
    PERFORM statistics_fact_refresh(r.id)
       FROM problems p JOIN rectifications r ON r.problem_id = p.id WHERE p.item_id = NEW.id;
  WHEN 'problems' THEN
    PERFORM statistics_fact_refresh(r.id) FROM rectifications r WHERE r.problem_id = NEW.id;
  END CASE;
  RETURN NULL;
END $$;
CREATE TRIGGER rectifications_statistics AFTER INSERT ON rectifications
  FOR EACH ROW EXECUTE FUNCTION statistics_facts_follow();
CREATE TRIGGER rectifications_statistics_change
  AFTER UPDATE OF responsible_department_id, problem_id, status, deadline, urge_count, closed_on_time, closed_at,
                  created_at ON rectifications
  FOR EACH ROW WHEN ((OLD.responsible_department_id, OLD.problem_id, OLD.status, OLD.deadline, OLD.urge_count,
                      OLD.closed_on_time, OLD.closed_at, OLD.created_at)
                     IS DISTINCT FROM (NEW.responsible_department_id, NEW.problem_id, NEW.status, NEW.deadline,
                                       NEW.urge_count, NEW.closed_on_time, NEW.closed_at, NEW.created_at))
  EXECUTE FUNCTION statistics_facts_follow();
CREATE TRIGGER rectification_assignments_statistics AFTER INSERT OR UPDATE OR DELETE ON rectification_assignments
  FOR EACH ROW EXECUTE FUNCTION statistics_facts_follow();
CREATE TRIGGER inspections_statistics
  AFTER UPDATE OF target_department_id, batch_id, checklist_id, inspected_on, submitted_at ON inspections
  FOR EACH ROW WHEN ((OLD.target_department_id, OLD.batch_id, OLD.checklist_id, OLD.inspected_on, OLD.submitted_at)
                     IS DISTINCT FROM (NEW.target_department_id, NEW.batch_id, NEW.checklist_id, NEW.inspected_on,
                                       NEW.submitted_at))
  EXECUTE FUNCTION statistics_facts_follow();
CREATE TRIGGER items_statistics AFTER UPDATE OF inspection_id ON items
  FOR EACH ROW WHEN (OLD.inspection_id IS DISTINCT FROM NEW.inspection_id)
  EXECUTE FUNCTION statistics_facts_follow();
CREATE TRIGGER problems_statistics AFTER UPDATE OF item_id ON problems
  FOR EACH ROW WHEN (OLD.item_id IS DISTINCT FROM NEW.item_id)
  EXECUTE FUNCTION statistics_facts_follow();

-- v without one element equal to x (all of them would be array_remove).
CREATE FUNCTION ducha_array_remove_one(v integer[], x integer) RETURNS integer[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN i IS NULL THEN v ELSE v[:i - 1] || v[i + 1:] END FROM (SELECT array_position(v, x) AS i) s
$$;

-- v, ascending, with x in its place (width_bucket: how many elements are at most x, by bisection).
CREATE FUNCTION ducha_array_insert_sorted(v integer[], x integer) RETURNS integer[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN cardinality(v) = 0 THEN ARRAY[x] ELSE v[:width_bucket(x, v)] || x || v[width_bucket(x, v) + 1:] END
$$;

-- Adds fact f (sign 1) to its cells and its days of the trend, or takes it away (sign -1).
CREATE FUNCTION statistics_count(f statistics_facts, sign integer, as_of date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_open integer := sign * (f.status <> 'closed')::integer;
  v_on_time integer := sign * (f.status = 'closed' AND f.closed_on_time IS TRUE)::integer;
  v_late integer := sign * (f.status = 'closed' AND f.closed_on_time IS FALSE)::integer;
  v_overdue integer := sign * (f.status IN ('pending', 'in_progress') AND f.deadline < as_of IS TRUE)::integer;
  v_days integer[] := CASE WHEN f.days IS NOT NULL AND sign > 0 THEN ARRAY[f.days] ELSE '{}' END;
BEGIN
  INSERT INTO statistics_months AS c (unit, checklist_id, period, n, open, on_time, late, overdue, days_sum, days)
  VALUES (f.unit, f.checklist_id, date_trunc('month', f.inspected_on)::date, sign, v_open, v_on_time, v_late,
          v_overdue, sign * coalesce(f.days, 0), v_days)
  ON CONFLICT (unit, period, checklist_id) DO UPDATE
    SET n = c.n + excluded.n, open = c.open + excluded.open, on_time = c.on_time + excluded.on_time,
        late = c.late + excluded.late, overdue = c.overdue + excluded.overdue, days_sum = c.days_sum + excluded.days_sum,
        days = CASE WHEN f.days IS NULL THEN c.days WHEN sign > 0 THEN c.days || f.days
                    ELSE ducha_array_remove_one(c.days, f.days) END;
  INSERT INTO statistics_days AS c (unit, checklist_id, period, n, open, on_time, late, overdue, days_sum, days)
  VALUES (f.unit, f.checklist_id, f.inspected_on, sign, v_open, v_on_time, v_late, v_overdue,
          sign * coalesce(f.days, 0), v_days)
  ON CONFLICT (period, unit, checklist_id) DO UPDATE
    SET n = c.n + excluded.n, open = c.open + excluded.open, on_time = c.on_time + excluded.on_time,
        late = c.late + excluded.late, overdue = c.overdue + excluded.overdue, days_sum = c.days_sum + excluded.days_sum,
        days = CASE WHEN f.days IS NULL THEN c.days WHEN sign > 0 THEN c.days || f.days
                    ELSE ducha_array_remove_one(c.days, f.days) END;
  IF f.days IS NOT NULL THEN
    INSERT INTO statistics_units AS u (unit, checklist_id, days) VALUES (f.unit, f.checklist_id, v_days)
    ON CONFLICT (unit, checklist_id) DO UPDATE
      SET days = CASE WHEN sign > 0 THEN ducha_array_insert_sorted(u.days, f.days)
                      ELSE ducha_array_remove_one(u.days, f.days) END;
  END IF;
  INSERT INTO statistics_trend AS t (unit, day, created, closed, closed_late)
  SELECT y.u, x.d, sum(x.cr), sum(x.cl), sum(x.lt)
    FROM (VALUES (f.created_on, sign, 0, 0),
                 (f.closed_on, 0, sign * (f.status = 'closed')::integer, v_late)) x(d, cr, cl, lt),
         (VALUES (f.unit), (0)) y(u)
   WHERE x.d IS NOT NULL AND (x.cr <> 0 OR x.cl <> 0)
   GROUP BY y.u, x.d ORDER BY y.u, x.d
  ON CONFLICT (unit, day) DO UPDATE
    SET created = t.created + excluded.created, closed = t.closed + excluded.closed,
        closed_late = t.closed_late + excluded.closed_late;
END $$;

CREATE FUNCTION statistics_facts_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  as_of date;
BEGIN
  IF current_setting('ducha.statistics_rebuild', true) = 'on' THEN
    RETURN NULL;  -- statistics_rebuild counts everything at once
  END IF;
  IF TG_OP = 'UPDATE' AND (OLD.unit, OLD.checklist_id, OLD.inspected_on, OLD.status, OLD.deadline,
                           OLD.closed_on_time, OLD.created_on, OLD.closed_on, OLD.days)
                          IS NOT DISTINCT FROM
                          (NEW.unit, NEW.checklist_id, NEW.inspected_on, NEW.status, NEW.deadline,
                           NEW.closed_on_time, NEW.created_on, NEW.closed_on, NEW.days) THEN
    RETURN NULL;  -- nothing the cells count changed (a former unit, the target, the batch)
  END IF;
  PERFORM pg_advisory_xact_lock_shared(ducha_statistics_lock());
  SELECT s.as_of INTO as_of FROM statistics_state s;
  IF TG_OP <> 'INSERT' THEN
    PERFORM statistics_count(OLD, -1, as_of);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM statistics_count(NEW, 1, as_of);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER statistics_facts_count AFTER INSERT OR UPDATE OR DELETE ON statistics_facts
  FOR EACH ROW EXECUTE FUNCTION statistics_facts_count();

-- Counts every cell again from the facts, the working days with the calendar of now, as of
-- p_as_of (default today): the migration, and by hand (SELECT statistics_rebuild()) should cells
-- ever be doubted; tests pass an earlier day. About 15 s at 1,000,000 rectifications, while
-- writers wait.
CREATE FUNCTION statistics_rebuild(p_as_of date DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_as_of date := coalesce(p_as_of, ducha_today());
BEGIN
  PERFORM pg_advisory_xact_lock(ducha_statistics_lock());
  PERFORM set_config('ducha.statistics_rebuild', 'on', true);
  UPDATE statistics_facts f SET days = wc.ordinal - ws.ordinal
    FROM working_days wc, working_days ws
   WHERE f.status = 'closed' AND wc.day = f.closed_on AND ws.day = f.submitted_on
     AND f.days IS DISTINCT FROM wc.ordinal - ws.ordinal;
  PERFORM set_config('ducha.statistics_rebuild', 'off', true);
  DELETE FROM statistics_months;
  DELETE FROM statistics_days;
  DELETE FROM statistics_trend;
  DELETE FROM statistics_units;
  INSERT INTO statistics_units (unit, checklist_id, days)
  SELECT unit, checklist_id, array_agg(days ORDER BY days) FROM statistics_facts WHERE days IS NOT NULL
   GROUP BY unit, checklist_id;
  INSERT INTO statistics_days (unit, checklist_id, period, n, open, on_time, late, overdue, days_sum, days)
  SELECT unit, checklist_id, inspected_on, count(*), count(*) FILTER (WHERE status <> 'closed'),
         count(*) FILTER (WHERE status = 'closed' AND closed_on_time),
         count(*) FILTER (WHERE status = 'closed' AND NOT closed_on_time),
         count(*) FILTER (WHERE status IN ('pending', 'in_progress') AND deadline < v_as_of),
         coalesce(sum(days), 0), coalesce(array_agg(days) FILTER (WHERE days IS NOT NULL), '{}')
    FROM statistics_facts GROUP BY unit, checklist_id, inspected_on;
  INSERT INTO statistics_months (unit, checklist_id, period, n, open, on_time, late, overdue, days_sum, days)
  SELECT unit, checklist_id, date_trunc('month', inspected_on)::date, count(*), count(*) FILTER (WHERE status <> 'closed'),
         count(*) FILTER (WHERE status = 'closed' AND closed_on_time),
         count(*) FILTER (WHERE status = 'closed' AND NOT closed_on_time),
         count(*) FILTER (WHERE status IN ('pending', 'in_progress') AND deadline < v_as_of),
         coalesce(sum(days), 0), coalesce(array_agg(days) FILTER (WHERE days IS NOT NULL), '{}')
    FROM statistics_facts GROUP BY unit, checklist_id, date_trunc('month', inspected_on);
  INSERT INTO statistics_trend (unit, day, created, closed, closed_late)
  SELECT u, d, sum(cr), sum(cl), sum(lt)
    FROM statistics_facts f,
         LATERAL (VALUES (f.created_on, 1, 0, 0),
                         (f.closed_on, 0, (f.status = 'closed')::integer,
                          (f.status = 'closed' AND f.closed_on_time IS FALSE)::integer)) x(d, cr, cl, lt),
         LATERAL (VALUES (f.unit), (0)) y(u)
   WHERE x.d IS NOT NULL AND (x.cr <> 0 OR x.cl <> 0)
   GROUP BY u, d;
  INSERT INTO statistics_state AS s (as_of, calendar_version)
  SELECT v_as_of, version FROM name_versions WHERE catalogue = 'calendar'
  ON CONFLICT (one) DO UPDATE SET as_of = excluded.as_of, calendar_version = excluded.calendar_version;
END $$;

-- The job `statistics` (src/statistics.c). After a calendar was replaced: the working days of up
-- to 500 closed rectifications counted again with it, through the facts' trigger as any change
-- (the reports count them from the facts until none is left to count; `more` brings the worker
-- back a second later). Then, under the lock that writers take shared, the open rectifications
-- whose deadline passed since as_of join the cells' overdue counts, and as_of becomes today.
-- Returns what it did.
CREATE FUNCTION statistics_catch_up() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  today date := ducha_today();
  calendar bigint := (SELECT version FROM name_versions WHERE catalogue = 'calendar');
  s statistics_state;
  recounted integer := 0;
  moved bigint := 0;
  current boolean;
BEGIN
  SELECT * INTO s FROM statistics_state;
  IF s.calendar_version <> calendar THEN
    UPDATE statistics_facts f SET days = x.days
      FROM (SELECT f.rectification_id, wc.ordinal - ws.ordinal AS days FROM statistics_facts f
              JOIN working_days wc ON wc.day = f.closed_on JOIN working_days ws ON ws.day = f.submitted_on
             WHERE f.status = 'closed' AND f.days IS DISTINCT FROM wc.ordinal - ws.ordinal LIMIT 500) x
     WHERE f.rectification_id = x.rectification_id;
    GET DIAGNOSTICS recounted = ROW_COUNT;
    IF recounted < 500 THEN
      UPDATE statistics_state SET calendar_version = calendar;
    END IF;
  END IF;
  PERFORM pg_advisory_xact_lock(ducha_statistics_lock());
  SELECT * INTO s FROM statistics_state;
  IF s.as_of <> today THEN
    WITH m AS (
      SELECT f.unit, f.checklist_id, f.inspected_on, sign(today - s.as_of)::integer * count(*) AS k
        FROM statistics_facts f
       WHERE f.status IN ('pending', 'in_progress') AND f.deadline IS NOT NULL
         AND f.deadline >= least(s.as_of, today) AND f.deadline < greatest(s.as_of, today)
       GROUP BY 1, 2, 3),
    d AS (UPDATE statistics_days c SET overdue = c.overdue + m.k FROM m
           WHERE c.unit = m.unit AND c.checklist_id = m.checklist_id AND c.period = m.inspected_on RETURNING m.k),
    mo AS (UPDATE statistics_months c SET overdue = c.overdue + x.k
             FROM (SELECT unit, checklist_id, date_trunc('month', inspected_on)::date AS period, sum(k) AS k
                     FROM m GROUP BY 1, 2, 3) x
            WHERE c.unit = x.unit AND c.checklist_id = x.checklist_id AND c.period = x.period)
    SELECT coalesce(sum(abs(k)), 0) INTO moved FROM d;
    UPDATE statistics_state SET as_of = today;
  END IF;
  current := s.calendar_version = calendar;
  RETURN jsonb_build_object('as_of', today, 'overdue_moved', moved, 'days_recounted', recounted,
                            'calendar_current', current, 'more', NOT current);
END $$;

-- Concatenates integer arrays (the working days of cells).
CREATE AGGREGATE ducha_array_cat(integer[]) (sfunc = array_cat, stype = integer[], initcond = '{}');

-- Every rectification's fact made again from its tables, and every cell counted again: the
-- migration, and bulk loads that ran with the statistics' triggers disabled (bench/; per row
-- they would serialise parallel loads on the cells, or deadlock them).
CREATE FUNCTION statistics_backfill() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(ducha_statistics_lock());
  PERFORM set_config('ducha.statistics_rebuild', 'on', true);
  DELETE FROM statistics_facts;
  INSERT INTO statistics_facts SELECT * FROM statistics_fact_source;
  PERFORM set_config('ducha.statistics_rebuild', 'off', true);
  PERFORM statistics_rebuild();  -- the working days, the cells, as_of
END $$;

SELECT statistics_backfill();
ANALYZE statistics_facts;
ANALYZE statistics_months;
ANALYZE statistics_days;
ANALYZE statistics_trend;
ANALYZE statistics_units;
INSERT INTO jobs (name) VALUES ('statistics');
