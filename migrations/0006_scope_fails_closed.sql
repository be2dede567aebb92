-- The caller's identity (ducha.scope, ducha.actor, ducha.role) is set per request and per
-- transaction (set_config(..., true)), never per session: a pooled connection, or PgBouncer in
-- transaction mode, cannot carry one caller's scope into the next request. An unset scope now
-- means "sees nothing"; staff and viewers get the explicit 'all'.
CREATE OR REPLACE FUNCTION ducha_scope() RETURNS bigint[] LANGUAGE sql STABLE AS $$
  SELECT CASE coalesce(current_setting('ducha.scope', true), '')
           WHEN 'all' THEN NULL
           WHEN '' THEN '{}'::bigint[]
           ELSE current_setting('ducha.scope', true)::bigint[] END
$$;
