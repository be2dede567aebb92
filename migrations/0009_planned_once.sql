-- Functions the request path calls on every request, written so that PostgreSQL plans them
-- once. A LANGUAGE sql function is inlined into the calling (prepared) statement only when its
-- body is one SELECT of expressions: no FROM, no sub-SELECT, no aggregate, no CTE. Otherwise its
-- body is planned again at every call (pg_stat_statements: 1.4 ms of planning per audit event).

-- Who is calling, from the transaction's settings (see 0006): inlined.
CREATE OR REPLACE FUNCTION ducha_caller_role() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('ducha.role', true), '')
$$;
CREATE OR REPLACE FUNCTION ducha_caller_id() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('ducha.actor', true), '')::bigint
$$;
-- A department user acting on a rectification of one of its units.
CREATE OR REPLACE FUNCTION ducha_caller_responsible(p_responsible bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT ducha_caller_role() = 'department' AND p_responsible = ANY (coalesce(ducha_scope(), '{}'))
$$;

-- The actions the calling user may take on a rectification now, in a fixed order. The rules
-- of PRODUCT.md's table, one line each; an expression only, so it is inlined.
CREATE OR REPLACE FUNCTION ducha_rectification_actions(p_status text, p_responsible bigint, p_submitted_by bigint,
                                                       p_pending boolean) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN p_status = 'pending' AND (ducha_caller_role() IN ('admin', 'inspector')
                                        OR ducha_caller_responsible(p_responsible)) THEN 'start' END,
    CASE WHEN p_status = 'in_progress' AND (ducha_caller_role() IN ('admin', 'inspector')
                                            OR ducha_caller_responsible(p_responsible)) THEN 'submit' END,
    CASE WHEN p_status = 'submitted' AND ducha_caller_role() IN ('admin', 'inspector')
              AND p_submitted_by IS DISTINCT FROM ducha_caller_id() THEN 'close' END,
    CASE WHEN p_status = 'submitted' AND ducha_caller_role() IN ('admin', 'inspector')
              AND p_submitted_by IS DISTINCT FROM ducha_caller_id() THEN 'reject' END,
    CASE WHEN p_status IN ('pending', 'in_progress') AND NOT p_pending
              AND (ducha_caller_role() = 'admin' OR ducha_caller_responsible(p_responsible)) THEN 'request-extension' END,
    CASE WHEN p_status IN ('pending', 'in_progress', 'submitted')
              AND ducha_caller_role() IN ('admin', 'inspector') THEN 'extend' END,
    CASE WHEN p_status IN ('pending', 'in_progress', 'submitted') AND p_pending
              AND ducha_caller_role() IN ('admin', 'inspector') THEN 'refuse-extension' END,
    CASE WHEN p_status IN ('pending', 'in_progress', 'submitted')
              AND ducha_caller_role() IN ('admin', 'inspector') THEN 'reassign' END,
    CASE WHEN p_status IN ('pending', 'in_progress')
              AND ducha_caller_role() IN ('admin', 'inspector') THEN 'urge' END,
    CASE WHEN p_status = 'closed' AND ducha_caller_role() = 'admin' THEN 'revoke' END]::text[], NULL)
$$;

-- The departments whose users may read the events of a record (see 0002/0003): PL/pgSQL, whose
-- statements are planned once per connection, instead of a CASE of sub-SELECTs planned at
-- every call.
CREATE OR REPLACE FUNCTION ducha_entity_scope(p_type text, p_id bigint) RETURNS bigint[] LANGUAGE plpgsql STABLE AS $$
DECLARE
  result bigint[];
BEGIN
  CASE p_type
  WHEN 'department' THEN
    result := ARRAY[p_id];
  WHEN 'inspection' THEN
    SELECT ARRAY[i.target_department_id] INTO result FROM inspections i WHERE i.id = p_id;
  WHEN 'item' THEN
    SELECT ARRAY[i.target_department_id] INTO result
      FROM items it JOIN inspections i ON i.id = it.inspection_id WHERE it.id = p_id;
  WHEN 'problem' THEN
    SELECT ARRAY[i.target_department_id] INTO result
      FROM problems p JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id
     WHERE p.id = p_id;
  WHEN 'rectification' THEN
    SELECT ARRAY[i.target_department_id, r.responsible_department_id]
           || coalesce((SELECT array_agg(a.department_id) FROM rectification_assignments a
                         WHERE a.rectification_id = r.id), '{}')
      INTO result
      FROM rectifications r JOIN problems p ON p.id = r.problem_id
      JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id
     WHERE r.id = p_id;
  WHEN 'user' THEN
    SELECT ARRAY[u.department_id] INTO result FROM users u WHERE u.id = p_id AND u.department_id IS NOT NULL;
  ELSE
    result := NULL;
  END CASE;
  RETURN result;
END $$;
