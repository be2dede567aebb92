-- Working days (节假日 / 调休) and escalation (督办).
--
-- An admin keeps, per year, the holidays that fall on weekdays and the make-up working days that
-- fall on weekends (calendar_days); a year without a calendar counts Monday to Friday and says
-- so. working_days holds every day of 2000-2099 with whether it is worked and `ordinal`, the
-- number of working days from 2000-01-01 up to and including it: the working days after a and up
-- to b are ordinal(b) - ordinal(a), two primary-key lookups (or one hash join for a report)
-- instead of a walk over the calendar. Replacing a year rewrites its days and the ordinals after
-- it (calendar_replace).
CREATE TABLE calendar_years (
  year        integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2099),
  version     integer NOT NULL DEFAULT 1,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  bigint REFERENCES users (id)
);
CREATE TABLE calendar_days (
  day      date PRIMARY KEY CHECK (day BETWEEN '2000-01-01' AND '2099-12-31'),
  working  boolean NOT NULL,
  name     text NOT NULL DEFAULT '' CHECK (char_length(name) <= 100)
);
CREATE TABLE working_days (
  day       date PRIMARY KEY,
  working   boolean NOT NULL,
  ordinal   integer NOT NULL,
  complete  boolean NOT NULL DEFAULT false  -- the year has a calendar
);
INSERT INTO working_days (day, working, ordinal)
SELECT d::date, extract(isodow FROM d) < 6,
       count(*) FILTER (WHERE extract(isodow FROM d) < 6) OVER (ORDER BY d)
  FROM generate_series('2000-01-01'::date, '2099-12-31'::date, '1 day') d;
INSERT INTO name_versions (catalogue) VALUES ('calendar');

-- Replaces the calendar of p_year with p_days ([{date, working, name}], checked by the caller)
-- and renumbers the working days from that year on.
CREATE FUNCTION calendar_replace(p_year integer, p_days jsonb, p_user bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  first date := make_date(p_year, 1, 1);
  base integer;
  v integer;
BEGIN
  DELETE FROM calendar_days WHERE day BETWEEN first AND make_date(p_year, 12, 31);
  INSERT INTO calendar_days (day, working, name)
  SELECT (e->>'date')::date, (e->>'working')::boolean, coalesce(e->>'name', '')
    FROM jsonb_array_elements(p_days) e;
  INSERT INTO calendar_years AS y (year, updated_by) VALUES (p_year, p_user)
  ON CONFLICT (year) DO UPDATE SET version = y.version + 1, updated_at = now(), updated_by = p_user
  RETURNING version INTO v;
  UPDATE working_days w
     SET working = coalesce((SELECT c.working FROM calendar_days c WHERE c.day = w.day), extract(isodow FROM w.day) < 6),
         complete = true
   WHERE w.day BETWEEN first AND make_date(p_year, 12, 31);
  SELECT coalesce((SELECT ordinal FROM working_days WHERE day = first - 1), 0) INTO base;
  UPDATE working_days w SET ordinal = n.ordinal
    FROM (SELECT day, base + count(*) FILTER (WHERE working) OVER (ORDER BY day) AS ordinal
            FROM working_days WHERE day >= first) n
   WHERE n.day = w.day AND w.ordinal <> n.ordinal;
  UPDATE name_versions SET version = version + 1 WHERE catalogue = 'calendar';
  RETURN v;
END $$;

-- The date p_n working days after p_from (day 1 is the next working day after it).
CREATE FUNCTION ducha_add_working_days(p_from date, p_n integer) RETURNS date LANGUAGE sql STABLE AS $$
  SELECT w.day FROM working_days w
   WHERE w.working AND w.ordinal = (SELECT f.ordinal FROM working_days f WHERE f.day = p_from) + p_n
$$;

-- Escalation (督办) of an open rectification from its working days left (negative: late) and
-- its urges; N, M, K are the settings ducha.escalation_blue_days, _red_days, _red_urges that
-- every connection sets (DUCHA_ESCALATION_*). An expression only: inlined.
CREATE FUNCTION ducha_escalation(p_status text, p_deadline date, p_urges integer, p_left integer)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN p_status NOT IN ('pending', 'in_progress') OR p_deadline IS NULL THEN 'none'
    WHEN p_deadline < ducha_today() THEN
      CASE WHEN -p_left > coalesce(nullif(current_setting('ducha.escalation_red_days', true), ''), '5')::integer
             OR p_urges >= coalesce(nullif(current_setting('ducha.escalation_red_urges', true), ''), '2')::integer
           THEN 'red' ELSE 'yellow' END
    WHEN p_left <= coalesce(nullif(current_setting('ducha.escalation_blue_days', true), ''), '3')::integer THEN 'blue'
    ELSE 'none' END
$$;

-- The rectification's working days left and escalation, and whether the calendar behind them is
-- kept, beside where it sits (0011). Joins on working_days' primary key: PostgreSQL drops them
-- from a statement that does not read these columns.
CREATE OR REPLACE VIEW rectification_rows AS
SELECT r.*,
       p.ordinal AS problem_ordinal, p.description AS problem_description, p.item_id,
       it.seq AS item_seq, it.task_id, it.inspection_id,
       i.title AS inspection_title, i.status AS inspection_status, i.target_department_id, i.batch_id,
       wd.ordinal - wt.ordinal AS working_days_left,
       ducha_escalation(r.status, r.deadline, r.urge_count, wd.ordinal - wt.ordinal) AS escalation,
       coalesce(wd.complete, true) AND wt.complete AS calendar_complete
  FROM rectifications r
  LEFT JOIN problems p ON p.id = r.problem_id
  LEFT JOIN items it ON it.id = p.item_id
  LEFT JOIN inspections i ON i.id = it.inspection_id
  LEFT JOIN working_days wd ON wd.day = r.deadline
  LEFT JOIN working_days wt ON wt.day = ducha_today();

-- The moments a rectification turned yellow (overdue) or red (escalated), each recorded once
-- by the background job `escalation` with its audit event.
CREATE TABLE rectification_escalations (
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  level             text NOT NULL CHECK (level IN ('yellow', 'red')),
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rectification_id, level)
);
CREATE INDEX rectifications_open_deadline_idx ON rectifications (deadline)
  WHERE status IN ('pending', 'in_progress') AND deadline IS NOT NULL;
INSERT INTO jobs (name) VALUES ('escalation');
