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

-- The form finds a unit's earlier inspections in date order; the triggers below its later ones.
CREATE INDEX inspections_target_inspected_on_idx ON inspections (target_department_id, inspected_on, id);

-- The form's ETag (migrations/0010) must change when what it carries over changes: a
-- rectification of an earlier inspection of its unit added, removed, or changed in what the form
-- shows (status, deadline, measure, unit, ordinal), its problem's text or number, or the earlier
-- inspection's title, date or unit. Such a change touches the form versions of the inspections
-- of the same unit that come after the one it belongs to (later inspected_on, or the same day and
-- a higher id) — usually none, since the latest inspection is the one being worked on — in one
-- statement, in that order: a change locks its own form's counter first (0010's trigger runs
-- before these, by name) and then the later ones, so two changes take them in the same order and
-- cannot deadlock. PL/pgSQL, so that its statements are planned once per connection.
CREATE FUNCTION form_touch_later(p_target bigint, p_on date, p_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO form_versions AS f (inspection_id)
  SELECT l.id FROM inspections l
   WHERE l.target_department_id = p_target AND (l.inspected_on, l.id) > (p_on, p_id)
   ORDER BY l.inspected_on, l.id
  ON CONFLICT (inspection_id) DO UPDATE SET version = f.version + 1;
END $$;

-- The same for the inspection that a problem (p_kind 'rectifications': the parent of a
-- rectification), an item ('problems') or an inspection ('items') belongs to. Nothing when it is
-- gone: a row deleted with its inspection is covered by the inspection's own trigger.
CREATE FUNCTION form_touch_later_of(p_kind text, p_parent bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  e record;
BEGIN
  IF p_parent IS NULL THEN
    RETURN;
  END IF;
  CASE p_kind
  WHEN 'rectifications' THEN
    SELECT i.target_department_id, i.inspected_on, i.id INTO e
      FROM problems p JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id
     WHERE p.id = p_parent;
  WHEN 'problems' THEN
    SELECT i.target_department_id, i.inspected_on, i.id INTO e
      FROM items it JOIN inspections i ON i.id = it.inspection_id WHERE it.id = p_parent;
  ELSE
    SELECT i.target_department_id, i.inspected_on, i.id INTO e FROM inspections i WHERE i.id = p_parent;
  END CASE;
  IF e.id IS NOT NULL THEN
    PERFORM form_touch_later(e.target_department_id, e.inspected_on, e.id);
  END IF;
END $$;

-- A row's later forms, where it was and where it is (a row moved to another problem, item or
-- inspection, or an inspection given another date or unit, shows in other forms than before).
CREATE FUNCTION form_touch_later_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was bigint;   -- the row's problem, item or inspection before the change (NULL: inserted)
  now_ bigint;  -- and after it (NULL: deleted)
BEGIN
  CASE TG_TABLE_NAME
  WHEN 'rectifications' THEN was := OLD.problem_id; now_ := NEW.problem_id;
  WHEN 'problems' THEN was := OLD.item_id; now_ := NEW.item_id;
  WHEN 'items' THEN was := OLD.inspection_id; now_ := NEW.inspection_id;
  ELSE  -- inspections (updated or deleted): where it was, and where it is now
    PERFORM form_touch_later(OLD.target_department_id, OLD.inspected_on, OLD.id);
    PERFORM form_touch_later(NEW.target_department_id, NEW.inspected_on, NEW.id);
    RETURN NULL;
  END CASE;
  PERFORM form_touch_later_of(TG_TABLE_NAME, was);
  IF now_ IS DISTINCT FROM was THEN
    PERFORM form_touch_later_of(TG_TABLE_NAME, now_);
  END IF;
  RETURN NULL;
END $$;

-- Only the changes a later form shows, of rows it can show: an open rectification (one that
-- closes, or opens again, leaves or joins the later forms through its status).
CREATE TRIGGER rectifications_form_touch_later AFTER INSERT OR DELETE ON rectifications
  FOR EACH ROW EXECUTE FUNCTION form_touch_later_row();
CREATE TRIGGER rectifications_form_touch_later_update AFTER UPDATE ON rectifications
  FOR EACH ROW WHEN ((OLD.status, OLD.deadline, OLD.measure, OLD.responsible_department_id, OLD.ordinal, OLD.problem_id)
                     IS DISTINCT FROM (NEW.status, NEW.deadline, NEW.measure, NEW.responsible_department_id,
                                       NEW.ordinal, NEW.problem_id)
                     AND (OLD.status <> 'closed' OR NEW.status <> 'closed'))
  EXECUTE FUNCTION form_touch_later_row();
-- A problem deleted takes its rectifications along, which then find no inspection of their own.
CREATE TRIGGER problems_form_touch_later_delete AFTER DELETE ON problems
  FOR EACH ROW EXECUTE FUNCTION form_touch_later_row();
CREATE TRIGGER problems_form_touch_later AFTER UPDATE ON problems
  FOR EACH ROW WHEN ((OLD.description, OLD.ordinal, OLD.item_id) IS DISTINCT FROM (NEW.description, NEW.ordinal, NEW.item_id))
  EXECUTE FUNCTION form_touch_later_row();
CREATE TRIGGER items_form_touch_later AFTER UPDATE ON items
  FOR EACH ROW WHEN ((OLD.inspection_id, OLD.task_id) IS DISTINCT FROM (NEW.inspection_id, NEW.task_id))
  EXECUTE FUNCTION form_touch_later_row();
CREATE TRIGGER inspections_form_touch_later AFTER UPDATE ON inspections
  FOR EACH ROW WHEN ((OLD.title, OLD.inspected_on, OLD.target_department_id, OLD.submitted_at)
                     IS DISTINCT FROM (NEW.title, NEW.inspected_on, NEW.target_department_id, NEW.submitted_at))
  EXECUTE FUNCTION form_touch_later_row();
CREATE TRIGGER inspections_form_touch_later_delete AFTER DELETE ON inspections
  FOR EACH ROW EXECUTE FUNCTION form_touch_later_row();
