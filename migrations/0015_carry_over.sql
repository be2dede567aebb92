-- Carry-over (上轮问题复查, issue 10): a new inspection of a unit shows, on each row, the open
-- rectifications of that unit's earlier inspections of the same task — the rows themselves,
-- read by the form (SQL_FORM in src/inspections.c), never copied.
--
-- "The same task" across the versions of a checklist: the same seq of the same code, unless a
-- version maps its tasks otherwise. Each task continues the task whose seq is its carries_over_seq
-- in the latest earlier version (same code) that has that seq, or none (NULL: a new task, or no
-- earlier version has it). lineage_id names the chain: the lineage of the task it continues, else
-- the task's own id. Two tasks are the same when their lineages are equal, so the form joins on
-- one column instead of walking the versions. Both are written once, with the task (checklists.c,
-- SQL_INSERT_TASKS); a version in use never changes.
ALTER TABLE tasks
  ADD COLUMN carries_over_seq integer CHECK (carries_over_seq >= 1),
  ADD COLUMN lineage_id bigint;

-- A task that continues none starts its own lineage (the id exists by now: identity columns get
-- their value before BEFORE triggers run).
CREATE FUNCTION tasks_lineage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.lineage_id := coalesce(NEW.lineage_id, NEW.id);
  RETURN NEW;
END $$;
CREATE TRIGGER tasks_lineage BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_lineage();

-- The versions made before this migration mapped nothing: a task continues the same seq, and its
-- lineage is the task of the first version with that seq.
UPDATE tasks t SET lineage_id = f.first_id,
                   carries_over_seq = CASE WHEN f.first_id <> t.id THEN t.seq END
  FROM (SELECT DISTINCT ON (c.code, x.seq) c.code, x.seq, x.id AS first_id
          FROM tasks x JOIN checklists c ON c.id = x.checklist_id ORDER BY c.code, x.seq, c.version) f,
       checklists c
 WHERE c.id = t.checklist_id AND f.code = c.code AND f.seq = t.seq;
ALTER TABLE tasks ALTER lineage_id SET NOT NULL;
CREATE INDEX tasks_lineage_id_idx ON tasks (lineage_id);

