-- The form's ETag: it must change with any change to the inspection's rows, problems, measures
-- or their status, and with the names it shows, without reading the form. Triggers count the
-- changes per inspection (a table of its own, so an inspection's row is never locked by the
-- work on its measures) and per catalogue of names; the ETag adds the local date, on which
-- `overdue` turns.
CREATE TABLE form_versions (
  inspection_id bigint PRIMARY KEY, -- no foreign key: rows of a deleted inspection are harmless
  version       bigint NOT NULL DEFAULT 1
);
CREATE TABLE name_versions (
  catalogue text PRIMARY KEY,
  version   bigint NOT NULL DEFAULT 1
);
INSERT INTO name_versions (catalogue) VALUES ('departments');

CREATE FUNCTION form_touch(p_inspection bigint) RETURNS void LANGUAGE sql AS $$
  INSERT INTO form_versions AS f (inspection_id) VALUES (p_inspection)
  ON CONFLICT (inspection_id) DO UPDATE SET version = f.version + 1
$$;

CREATE FUNCTION form_touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rec record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  inspection bigint;
BEGIN
  CASE TG_TABLE_NAME
  WHEN 'items' THEN
    inspection := rec.inspection_id;
  WHEN 'item_material_departments' THEN
    SELECT it.inspection_id INTO inspection FROM items it WHERE it.id = rec.item_id;
  WHEN 'problems' THEN
    SELECT it.inspection_id INTO inspection FROM items it WHERE it.id = rec.item_id;
  WHEN 'rectifications' THEN
    SELECT it.inspection_id INTO inspection FROM problems p JOIN items it ON it.id = p.item_id
     WHERE p.id = rec.problem_id;
  END CASE;
  IF inspection IS NOT NULL THEN
    PERFORM form_touch(inspection);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER items_form_touch AFTER UPDATE OR DELETE ON items
  FOR EACH ROW EXECUTE FUNCTION form_touch_row();
CREATE TRIGGER item_material_departments_form_touch AFTER INSERT OR UPDATE OR DELETE ON item_material_departments
  FOR EACH ROW EXECUTE FUNCTION form_touch_row();
CREATE TRIGGER problems_form_touch AFTER INSERT OR UPDATE OR DELETE ON problems
  FOR EACH ROW EXECUTE FUNCTION form_touch_row();
CREATE TRIGGER rectifications_form_touch AFTER INSERT OR UPDATE OR DELETE ON rectifications
  FOR EACH ROW EXECUTE FUNCTION form_touch_row();

CREATE FUNCTION department_names_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE name_versions SET version = version + 1 WHERE catalogue = 'departments';
  RETURN NULL;
END $$;
CREATE TRIGGER departments_names_touch AFTER INSERT OR UPDATE OR DELETE ON departments
  FOR EACH STATEMENT EXECUTE FUNCTION department_names_touch();
