-- Who may read each rectification, kept in a table (issue 8). A department user's ledger used to
-- test every rectification against ducha_rectification_visible() while walking the deadline
-- order, so a unit that sees 12 of 1,000,000 waited for all 1,000,000. The ledger now starts from
-- the rows of the caller's units here.
--
-- The table holds the direct reasons only: a rectification's responsible unit, every unit it was
-- assigned to before (rectification_assignments) and the target of its inspection. What a user
-- reaches through the tree (sub-units, and units merged into any of them) is in its scope array,
-- ducha_subtree() of its unit, computed with each request. So moving a unit in the tree, moving a
-- user to another unit or merging a unit (0004: its users and sub-units go to the successor,
-- whose subtree then holds the merged unit) changes no row here; only the open rectifications a
-- merge hands over get their new unit, through the triggers below. A closure of the tree would
-- need rewriting for every move and merge, for every rectification below the moved unit.
--
-- deadline, updated_at and status are copies of the rectification's own: each unit's rows are read
-- from an index in the ledger's orders, and the ledger's status, overdue and deadline filters
-- are answered from the index alone (deadline and status are INCLUDEd for index-only scans), so a
-- page costs what the page holds, whatever the size of the unit or of the table.
CREATE TABLE rectification_readers (
  rectification_id  bigint NOT NULL REFERENCES rectifications (id) ON DELETE CASCADE,
  department_id     bigint NOT NULL REFERENCES departments (id),
  deadline          date,
  updated_at        timestamptz NOT NULL,
  status            text NOT NULL,
  PRIMARY KEY (rectification_id, department_id)
);
CREATE INDEX rectification_readers_deadline_idx
  ON rectification_readers (department_id, (coalesce(deadline, 'infinity'::date)), rectification_id)
  INCLUDE (deadline, status);
CREATE INDEX rectification_readers_updated_at_idx
  ON rectification_readers (department_id, updated_at, rectification_id) INCLUDE (deadline, status);

-- The rules, once: every (rectification, unit) pair that has a reason of its own.
CREATE VIEW rectification_reader_reasons (rectification_id, department_id) AS
  SELECT r.id, r.responsible_department_id FROM rectifications r
  UNION
  SELECT a.rectification_id, a.department_id FROM rectification_assignments a
  UNION
  SELECT r.id, i.target_department_id
  FROM rectifications r JOIN problems p ON p.id = r.problem_id JOIN items it ON it.id = p.item_id
  JOIN inspections i ON i.id = it.inspection_id;

-- Makes the rows of a rectification what the rules say, copies included. One rectification a
-- call, with an equality: its statements are planned once per connection (an array would be
-- planned again for every call).
CREATE FUNCTION ducha_rectification_readers_refresh(r_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM rectification_readers x
  WHERE x.rectification_id = r_id
    AND x.department_id NOT IN (SELECT w.department_id FROM rectification_reader_reasons w
                                WHERE w.rectification_id = r_id);
  INSERT INTO rectification_readers AS x (rectification_id, department_id, deadline, updated_at, status)
  SELECT w.rectification_id, w.department_id, r.deadline, r.updated_at, r.status
  FROM rectification_reader_reasons w JOIN rectifications r ON r.id = w.rectification_id
  WHERE w.rectification_id = r_id
  ON CONFLICT (rectification_id, department_id) DO UPDATE
    SET deadline = excluded.deadline, updated_at = excluded.updated_at, status = excluded.status
    WHERE (x.deadline, x.updated_at, x.status) IS DISTINCT FROM (excluded.deadline, excluded.updated_at, excluded.status);
END $$;

-- The triggers are per row, with parameters, so that each statement is an index lookup whatever
-- the size of the statement that fired it (a statement trigger's transition tables have no index,
-- and a plan cached for a small one would be reused for a merge of thousands).

-- A new rectification: its responsible unit and its inspection's target (the first assignment
-- comes through rectification_assignments as well).
CREATE FUNCTION rectification_readers_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rectification_readers (rectification_id, department_id, deadline, updated_at, status)
  SELECT NEW.id, d, NEW.deadline, NEW.updated_at, NEW.status
  FROM (SELECT NEW.responsible_department_id
        UNION
        SELECT i.target_department_id FROM problems p JOIN items it ON it.id = p.item_id
        JOIN inspections i ON i.id = it.inspection_id WHERE p.id = NEW.problem_id) u(d)
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER rectification_readers_insert AFTER INSERT ON rectifications
  FOR EACH ROW EXECUTE FUNCTION rectification_readers_insert();

-- Another responsible unit (reassign, merge, PATCH): the new unit reads it; the unit it leaves
-- keeps reading it through rectification_assignments (rectifications_history wrote the row when
-- it became responsible), unless it has no reason left. Another problem: the reasons again.
-- Single-row statements: a merge runs them for each rectification it hands over.
CREATE FUNCTION rectification_readers_reasons() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.problem_id IS DISTINCT FROM OLD.problem_id THEN
    PERFORM ducha_rectification_readers_refresh(NEW.id);
    RETURN NULL;
  END IF;
  INSERT INTO rectification_readers (rectification_id, department_id, deadline, updated_at, status)
  VALUES (NEW.id, NEW.responsible_department_id, NEW.deadline, NEW.updated_at, NEW.status)
  ON CONFLICT DO NOTHING;
  DELETE FROM rectification_readers x
  WHERE x.rectification_id = NEW.id AND x.department_id = OLD.responsible_department_id
    AND NOT EXISTS (SELECT 1 FROM rectification_assignments a
                    WHERE a.rectification_id = NEW.id AND a.department_id = OLD.responsible_department_id)
    AND NOT EXISTS (SELECT 1 FROM problems p JOIN items it ON it.id = p.item_id
                    JOIN inspections i ON i.id = it.inspection_id
                    WHERE p.id = NEW.problem_id AND i.target_department_id = OLD.responsible_department_id);
  RETURN NULL;
END $$;
CREATE TRIGGER rectification_readers_reasons AFTER UPDATE OF responsible_department_id, problem_id ON rectifications
  FOR EACH ROW WHEN (OLD.responsible_department_id IS DISTINCT FROM NEW.responsible_department_id
                     OR OLD.problem_id IS DISTINCT FROM NEW.problem_id)
  EXECUTE FUNCTION rectification_readers_reasons();

-- The copies follow every change of the rectification.
CREATE FUNCTION rectification_readers_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE rectification_readers SET deadline = NEW.deadline, updated_at = NEW.updated_at, status = NEW.status
  WHERE rectification_id = NEW.id
    AND (deadline, updated_at, status) IS DISTINCT FROM (NEW.deadline, NEW.updated_at, NEW.status);
  RETURN NULL;
END $$;
CREATE TRIGGER rectification_readers_keys AFTER UPDATE OF deadline, updated_at, status ON rectifications
  FOR EACH ROW WHEN ((OLD.deadline, OLD.updated_at, OLD.status) IS DISTINCT FROM (NEW.deadline, NEW.updated_at, NEW.status))
  EXECUTE FUNCTION rectification_readers_keys();

-- An assignment added (rectifications_history, on every change of unit) or removed.
CREATE FUNCTION rectification_assignments_readers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO rectification_readers (rectification_id, department_id, deadline, updated_at, status)
    SELECT r.id, NEW.department_id, r.deadline, r.updated_at, r.status FROM rectifications r
    WHERE r.id = NEW.rectification_id
    ON CONFLICT DO NOTHING;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM ducha_rectification_readers_refresh(OLD.rectification_id);
    PERFORM ducha_rectification_readers_refresh(NEW.rectification_id);
  ELSE
    PERFORM ducha_rectification_readers_refresh(OLD.rectification_id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER rectification_assignments_readers AFTER INSERT OR UPDATE OR DELETE ON rectification_assignments
  FOR EACH ROW EXECUTE FUNCTION rectification_assignments_readers();

-- An inspection given another target, or rows moved between inspections or problems (the API
-- does neither for a rectification's row, but the rules must hold whichever way it happens).
CREATE FUNCTION rectification_readers_of_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'inspections' THEN
    PERFORM ducha_rectification_readers_refresh(r.id)
    FROM items it JOIN problems p ON p.item_id = it.id JOIN rectifications r ON r.problem_id = p.id
    WHERE it.inspection_id = NEW.id;
  ELSIF TG_TABLE_NAME = 'items' THEN
    PERFORM ducha_rectification_readers_refresh(r.id)
    FROM problems p JOIN rectifications r ON r.problem_id = p.id WHERE p.item_id = NEW.id;
  ELSE
    PERFORM ducha_rectification_readers_refresh(r.id) FROM rectifications r WHERE r.problem_id = NEW.id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER rectification_readers_target AFTER UPDATE OF target_department_id ON inspections
  FOR EACH ROW WHEN (OLD.target_department_id IS DISTINCT FROM NEW.target_department_id)
  EXECUTE FUNCTION rectification_readers_of_parent();
CREATE TRIGGER rectification_readers_inspection AFTER UPDATE OF inspection_id ON items
  FOR EACH ROW WHEN (OLD.inspection_id IS DISTINCT FROM NEW.inspection_id)
  EXECUTE FUNCTION rectification_readers_of_parent();
CREATE TRIGGER rectification_readers_item AFTER UPDATE OF item_id ON problems
  FOR EACH ROW WHEN (OLD.item_id IS DISTINCT FROM NEW.item_id)
  EXECUTE FUNCTION rectification_readers_of_parent();

-- The rectifications made before this migration.
INSERT INTO rectification_readers (rectification_id, department_id, deadline, updated_at, status)
SELECT w.rectification_id, w.department_id, r.deadline, r.updated_at, r.status
FROM rectification_reader_reasons w JOIN rectifications r ON r.id = w.rectification_id;
ANALYZE rectification_readers;

-- The units of the caller's scope that may read a rectification (for staff, scope NULL, every unit
-- that may); it is visible to the caller when there is one. Every rectification has a reader (its
-- inspection's target), so staff see all. A set-returning function of one SELECT, STABLE, without
-- SECURITY DEFINER or SET: PostgreSQL inlines it into the calling statement, which is planned
-- once; EXISTS (SELECT FROM ducha_rectification_readers(r.id)) becomes a lookup in the primary key.
-- (A boolean SQL function with a subquery in it is never inlined, and was run as a function call
-- of its own for every row.)
CREATE FUNCTION ducha_rectification_readers(r_id bigint) RETURNS SETOF bigint LANGUAGE sql STABLE ROWS 2 AS $$
  SELECT x.department_id FROM rectification_readers x
  WHERE x.rectification_id = r_id AND (ducha_scope() IS NULL OR x.department_id = ANY (ducha_scope()))
$$;

-- Kept for SQL written against it; the service calls ducha_rectification_readers().
CREATE OR REPLACE FUNCTION ducha_rectification_visible(r_id bigint, responsible bigint, target bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT FROM ducha_rectification_readers(r_id))
$$;
