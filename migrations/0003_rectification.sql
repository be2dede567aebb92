-- Rectification to closure: the lifecycle's records, progress, evidence, and the ledger's search.

ALTER TABLE rectifications
  ADD COLUMN submitted_by   bigint REFERENCES users (id),
  ADD COLUMN submitted_at   timestamptz,
  ADD COLUMN closed_by      bigint REFERENCES users (id),
  ADD COLUMN closed_at      timestamptz,
  ADD COLUMN close_opinion  text CHECK (char_length(close_opinion) <= 2000),
  ADD COLUMN closed_on_time boolean,
  ADD COLUMN urge_count     integer NOT NULL DEFAULT 0,
  ADD COLUMN last_urged_at  timestamptz,
  ADD COLUMN search_text    text NOT NULL DEFAULT '';
CREATE INDEX rectifications_updated_at_idx ON rectifications (updated_at, id);
CREATE INDEX rectifications_deadline_id_idx ON rectifications ((coalesce(deadline, 'infinity'::date)), id);
CREATE INDEX rectifications_problem_id_idx ON rectifications (problem_id);

-- Every deadline a rectification had.
CREATE TABLE rectification_deadlines (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  deadline          date,
  kind              text NOT NULL CHECK (kind IN ('initial', 'set', 'extension')),
  reason            text CHECK (char_length(reason) <= 2000),
  set_by            bigint REFERENCES users (id),
  set_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rectification_deadlines_rectification_id_idx ON rectification_deadlines (rectification_id, id);

-- Each unit a rectification was assigned to; earlier units keep read access.
CREATE TABLE rectification_assignments (
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  department_id     bigint NOT NULL REFERENCES departments (id),
  assigned_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rectification_id, department_id)
);
CREATE INDEX rectification_assignments_department_id_idx ON rectification_assignments (department_id);

CREATE TABLE extension_requests (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  deadline          date NOT NULL,
  reason            text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 2000),
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'granted', 'refused')),
  requested_by      bigint REFERENCES users (id),
  requested_at      timestamptz NOT NULL DEFAULT now(),
  decided_by        bigint REFERENCES users (id),
  decided_at        timestamptz,
  decision_reason   text CHECK (char_length(decision_reason) <= 2000)
);
CREATE UNIQUE INDEX extension_requests_one_pending ON extension_requests (rectification_id) WHERE status = 'pending';

CREATE TABLE progress_updates (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  note              text NOT NULL CHECK (char_length(note) BETWEEN 1 AND 2000),
  percent           integer NOT NULL CHECK (percent BETWEEN 0 AND 100),
  reason            text CHECK (char_length(reason) <= 2000),
  author_id         bigint REFERENCES users (id),
  created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX progress_updates_rectification_id_idx ON progress_updates (rectification_id, id);

-- 佐证材料: metadata here, the bytes in evidence_chunks (same transaction, same backup).
CREATE TABLE evidence (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rectification_id  bigint REFERENCES rectifications (id) ON DELETE CASCADE,
  progress_id       bigint REFERENCES progress_updates (id) ON DELETE CASCADE,
  item_id           bigint REFERENCES items (id) ON DELETE CASCADE,
  filename          text NOT NULL CHECK (char_length(filename) BETWEEN 1 AND 255),
  content_type      text NOT NULL CHECK (char_length(content_type) BETWEEN 1 AND 100),
  size              bigint NOT NULL CHECK (size > 0),
  sha256            bytea NOT NULL CHECK (octet_length(sha256) = 32),
  uploaded_by       bigint REFERENCES users (id),
  uploaded_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((rectification_id IS NOT NULL AND item_id IS NULL) OR
         (rectification_id IS NULL AND progress_id IS NULL AND item_id IS NOT NULL))
);
CREATE INDEX evidence_rectification_id_idx ON evidence (rectification_id, id);
CREATE INDEX evidence_progress_id_idx ON evidence (progress_id);
CREATE INDEX evidence_item_id_idx ON evidence (item_id, id);

CREATE TABLE evidence_chunks (
  evidence_id  bigint NOT NULL REFERENCES evidence (id) ON DELETE CASCADE,
  seq          integer NOT NULL,
  data         bytea NOT NULL,
  PRIMARY KEY (evidence_id, seq)
);

-- 销号: what the verifier saw, kept even when the closure is later revoked.
CREATE TABLE closures (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  closed_by         bigint REFERENCES users (id),
  closed_at         timestamptz NOT NULL DEFAULT now(),
  opinion           text NOT NULL CHECK (char_length(opinion) BETWEEN 1 AND 2000),
  on_time           boolean NOT NULL,
  evidence          jsonb NOT NULL,
  revoked_by        bigint REFERENCES users (id),
  revoked_at        timestamptz,
  revoke_reason     text CHECK (char_length(revoke_reason) <= 2000)
);
CREATE INDEX closures_rectification_id_idx ON closures (rectification_id, id);

-- The ledger's search: every character and every pair of adjacent characters of the measure
-- and the problem, so that a word of any length, one or two characters included, is found
-- through the index (trigrams find nothing for two-character words).
CREATE FUNCTION ducha_ngrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr(lower(t), i, n) AS g
    FROM generate_series(1, char_length(t)) i, (VALUES (1), (2)) v(n)
    WHERE i + n - 1 <= char_length(t)
  ) s WHERE g !~ '\s'
$$;
-- What a query must contain: its pairs of characters, or the one character it is.
CREATE FUNCTION ducha_query_ngrams(q text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN char_length(q) = 1 THEN ARRAY[lower(q)]
    ELSE coalesce((SELECT array_agg(DISTINCT substr(lower(q), i, 2)) FROM generate_series(1, char_length(q) - 1) i
                   WHERE substr(q, i, 2) !~ '\s'), ARRAY[lower(q)]) END
$$;

ALTER TABLE rectifications ADD COLUMN search_grams text[] GENERATED ALWAYS AS (ducha_ngrams(search_text)) STORED;
CREATE INDEX rectifications_search_grams_idx ON rectifications USING gin (search_grams);

-- search_text follows the measure and its problem's description.
CREATE FUNCTION rectifications_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_text := NEW.measure || E'\n' || coalesce((SELECT description FROM problems WHERE id = NEW.problem_id), '');
  RETURN NEW;
END $$;
CREATE TRIGGER rectifications_search_text BEFORE INSERT OR UPDATE OF measure, problem_id ON rectifications
  FOR EACH ROW EXECUTE FUNCTION rectifications_search_text();
CREATE FUNCTION problems_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE rectifications SET search_text = measure || E'\n' || NEW.description WHERE problem_id = NEW.id;
  RETURN NEW;
END $$;
CREATE TRIGGER problems_search_text AFTER UPDATE OF description ON problems
  FOR EACH ROW EXECUTE FUNCTION problems_search_text();
UPDATE rectifications SET measure = measure;

-- Rectifications made before this migration: their first deadline and unit.
INSERT INTO rectification_deadlines (rectification_id, deadline, kind, set_at)
  SELECT id, deadline, 'initial', created_at FROM rectifications;
INSERT INTO rectification_assignments (rectification_id, department_id, assigned_at)
  SELECT id, responsible_department_id, created_at FROM rectifications;

-- Who may read what a rectification is about: a department user sees the rectifications
-- assigned to its units now or before, and those of inspections of its units.
CREATE FUNCTION ducha_rectification_visible(r_id bigint, responsible bigint, target bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT ducha_scope() IS NULL OR responsible = ANY (ducha_scope()) OR target = ANY (ducha_scope())
      OR EXISTS (SELECT 1 FROM rectification_assignments a
                 WHERE a.rectification_id = r_id AND a.department_id = ANY (ducha_scope()))
$$;

-- Events on a rectification are visible to every unit it was assigned to.
CREATE OR REPLACE FUNCTION ducha_entity_scope(p_type text, p_id bigint) RETURNS bigint[] LANGUAGE sql STABLE AS $$
  SELECT CASE p_type
    WHEN 'department' THEN ARRAY[p_id]
    WHEN 'inspection' THEN (SELECT ARRAY[i.target_department_id] FROM inspections i WHERE i.id = p_id)
    WHEN 'item' THEN (SELECT ARRAY[i.target_department_id] FROM items it
                      JOIN inspections i ON i.id = it.inspection_id WHERE it.id = p_id)
    WHEN 'problem' THEN (SELECT ARRAY[i.target_department_id] FROM problems p JOIN items it ON it.id = p.item_id
                         JOIN inspections i ON i.id = it.inspection_id WHERE p.id = p_id)
    WHEN 'rectification' THEN (SELECT ARRAY[i.target_department_id, r.responsible_department_id]
                                 || coalesce((SELECT array_agg(a.department_id) FROM rectification_assignments a
                                              WHERE a.rectification_id = r.id), '{}')
                               FROM rectifications r JOIN problems p ON p.id = r.problem_id
                               JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id
                               WHERE r.id = p_id)
    WHEN 'user' THEN (SELECT ARRAY[u.department_id] FROM users u WHERE u.id = p_id AND u.department_id IS NOT NULL)
    ELSE NULL
  END
$$;

-- Every deadline and every responsible unit a rectification had, whichever way it changed.
-- The acting user and, for extensions, the kind and reason come from transaction settings.
CREATE FUNCTION rectifications_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.deadline IS DISTINCT FROM OLD.deadline THEN
    INSERT INTO rectification_deadlines (rectification_id, deadline, kind, reason, set_by)
    VALUES (NEW.id, NEW.deadline,
            CASE WHEN TG_OP = 'INSERT' THEN 'initial'
                 ELSE coalesce(nullif(current_setting('ducha.deadline_kind', true), ''), 'set') END,
            nullif(current_setting('ducha.deadline_reason', true), ''),
            nullif(current_setting('ducha.actor', true), '')::bigint);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.responsible_department_id <> OLD.responsible_department_id THEN
    INSERT INTO rectification_assignments (rectification_id, department_id)
    VALUES (NEW.id, NEW.responsible_department_id) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER rectifications_history AFTER INSERT OR UPDATE OF deadline, responsible_department_id
  ON rectifications FOR EACH ROW EXECUTE FUNCTION rectifications_history();

-- The actions the calling user may take on a rectification now (ducha.role and ducha.actor are
-- set with the token check).
CREATE FUNCTION ducha_rectification_actions(p_status text, p_responsible bigint, p_submitted_by bigint,
                                            p_pending boolean) RETURNS text[] LANGUAGE sql STABLE AS $$
  WITH who AS (SELECT coalesce(current_setting('ducha.role', true), '') AS role,
                      nullif(current_setting('ducha.actor', true), '')::bigint AS actor),
  a(action, states, roles, n) AS (VALUES
    ('start', '{pending}'::text[], '{admin,inspector,department}'::text[], 1),
    ('submit', '{in_progress}', '{admin,inspector,department}', 2),
    ('close', '{submitted}', '{admin,inspector}', 3),
    ('reject', '{submitted}', '{admin,inspector}', 4),
    ('request-extension', '{pending,in_progress}', '{admin,department}', 5),
    ('extend', '{pending,in_progress,submitted}', '{admin,inspector}', 6),
    ('refuse-extension', '{pending,in_progress,submitted}', '{admin,inspector}', 7),
    ('reassign', '{pending,in_progress,submitted}', '{admin,inspector}', 8),
    ('urge', '{pending,in_progress}', '{admin,inspector}', 9),
    ('revoke', '{closed}', '{admin}', 10))
  SELECT coalesce(array_agg(a.action ORDER BY a.n), '{}') FROM a, who
  WHERE p_status = ANY (a.states) AND who.role = ANY (a.roles)
    AND (who.role <> 'department' OR p_responsible = ANY (coalesce(ducha_scope(), '{}')))
    AND NOT (a.action IN ('close', 'reject') AND p_submitted_by IS NOT DISTINCT FROM who.actor)
    AND NOT (a.action = 'request-extension' AND p_pending)
    AND NOT (a.action = 'refuse-extension' AND NOT p_pending)
$$;
