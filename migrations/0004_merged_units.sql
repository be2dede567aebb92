-- A merged department takes no new work: no new rectifications, users, sub-units or
-- inspections point at it (its successor does); the records it had keep pointing at it.
CREATE FUNCTION refuse_merged_department() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  dept bigint := (to_jsonb(NEW) ->> TG_ARGV[0])::bigint;
BEGIN
  IF dept IS NOT NULL
     AND (TG_OP = 'INSERT' OR dept IS DISTINCT FROM (to_jsonb(OLD) ->> TG_ARGV[0])::bigint)
     AND EXISTS (SELECT 1 FROM departments WHERE id = dept AND merged_into_id IS NOT NULL) THEN
    RAISE EXCEPTION 'department % was merged into another', dept
      USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_' || TG_ARGV[0] || '_merged';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER rectifications_responsible_department_id_merged
  BEFORE INSERT OR UPDATE OF responsible_department_id ON rectifications
  FOR EACH ROW EXECUTE FUNCTION refuse_merged_department('responsible_department_id');
CREATE TRIGGER users_department_id_merged BEFORE INSERT OR UPDATE OF department_id ON users
  FOR EACH ROW EXECUTE FUNCTION refuse_merged_department('department_id');
CREATE TRIGGER departments_parent_id_merged BEFORE INSERT OR UPDATE OF parent_id ON departments
  FOR EACH ROW EXECUTE FUNCTION refuse_merged_department('parent_id');
CREATE TRIGGER inspections_target_department_id_merged BEFORE INSERT OR UPDATE OF target_department_id ON inspections
  FOR EACH ROW EXECUTE FUNCTION refuse_merged_department('target_department_id');
