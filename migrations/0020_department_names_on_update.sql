-- The departments' names version (name_versions 'departments': part of the form's, a
-- rectification's and the public pages' ETags, migrations 0010 and 0017) moved on at every
-- statement that inserted or deleted a department too. A new unit is on no page yet, and one that
-- a page names cannot be deleted (its references), so only an update changes what a page shows:
-- each unit that somebody created anywhere made every cached form and public page stale, and every
-- creation of a unit waited on that one row.
DROP TRIGGER departments_names_touch ON departments;
CREATE TRIGGER departments_names_touch AFTER UPDATE ON departments
  FOR EACH STATEMENT EXECUTE FUNCTION department_names_touch();
