-- Who may do what, and a trail no one can rewrite: sessions, login throttling, organisation
-- changes, and the hash-chained audit trail.

ALTER TABLE users
  ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
  ADD COLUMN password_changed_at timestamptz;
CREATE INDEX users_role_idx ON users (role);

ALTER TABLE tokens
  ADD COLUMN created_address text CHECK (char_length(created_address) <= 64);
CREATE INDEX tokens_active_idx ON tokens (user_id) WHERE revoked_at IS NULL;

-- 机构改革: a merged department keeps its id, name and closed records; its successor takes
-- over the open ones.
ALTER TABLE departments
  ADD COLUMN merged_into_id bigint REFERENCES departments (id),
  ADD COLUMN merged_at timestamptz,
  ADD CONSTRAINT departments_merged CHECK ((merged_into_id IS NULL) = (merged_at IS NULL));
CREATE INDEX departments_merged_into_id_idx ON departments (merged_into_id);

-- A department and everything under it: sub-units, and units merged into any of them.
CREATE FUNCTION ducha_subtree(root bigint) RETURNS bigint[] LANGUAGE sql STABLE AS $$
  WITH RECURSIVE t(id) AS (
    SELECT root
    UNION
    SELECT d.id FROM departments d JOIN t ON d.parent_id = t.id OR d.merged_into_id = t.id
  )
  SELECT array_agg(id ORDER BY id) FROM t
$$;

-- The caller's scope, set per request with the token check: empty for roles that see
-- everything, else the department ids a department user may see.
CREATE FUNCTION ducha_scope() RETURNS bigint[] LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN coalesce(current_setting('ducha.scope', true), '') = '' THEN NULL
              ELSE current_setting('ducha.scope', true)::bigint[] END
$$;
CREATE FUNCTION ducha_in_scope(department bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT ducha_scope() IS NULL OR department = ANY (ducha_scope())
$$;

-- Failed logins, by user and by client address, for slowing guessing down.
CREATE TABLE login_throttle (
  scope          text NOT NULL CHECK (scope IN ('user', 'address')),
  key            text NOT NULL CHECK (char_length(key) <= 200),
  failures       integer NOT NULL DEFAULT 0,
  last_failure   timestamptz NOT NULL DEFAULT now(),
  blocked_until  timestamptz,
  PRIMARY KEY (scope, key)
);

-- 留痕: one event per change, written in the change's own transaction. Events are chained by
-- SHA-256 in 16 chains (a transaction appends to the chain of its id), so writers do not all
-- wait on one row; editing or removing an event breaks its chain where it stood.
CREATE TABLE audit_chain_heads (
  chain  smallint PRIMARY KEY CHECK (chain BETWEEN 0 AND 15),
  seq    bigint NOT NULL DEFAULT 0,
  hash   bytea NOT NULL DEFAULT '\x'
);
INSERT INTO audit_chain_heads (chain) SELECT generate_series(0, 15);

CREATE TABLE audit_events (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  chain           smallint NOT NULL,
  chain_seq       bigint NOT NULL,
  occurred_at     timestamptz NOT NULL,
  actor_id        bigint,
  actor_name      text,
  action          text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 40),
  entity_type     text NOT NULL CHECK (char_length(entity_type) BETWEEN 1 AND 40),
  entity_id       bigint,
  request_id      text,
  client_address  text,
  before          jsonb,
  after           jsonb,
  scope_department_ids bigint[],
  prev_hash       bytea NOT NULL,
  hash            bytea NOT NULL,
  UNIQUE (chain, chain_seq)
);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id);
CREATE INDEX audit_events_action_idx ON audit_events (action);
CREATE INDEX audit_events_scope_idx ON audit_events USING gin (scope_department_ids);

-- What an event's hash covers, in a fixed text form.
CREATE FUNCTION audit_digest(e audit_events) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT sha256(e.prev_hash || convert_to(concat_ws('|', e.chain, e.chain_seq,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), e.actor_id, e.actor_name,
    e.action, e.entity_type, e.entity_id, e.request_id, e.client_address, e.before::text, e.after::text,
    e.scope_department_ids::text), 'UTF8'))
$$;

-- The one way in: appends an event to its chain. SECURITY DEFINER so the service's role needs
-- no right on the tables themselves.
CREATE FUNCTION audit_append(p_actor bigint, p_action text, p_entity_type text, p_entity_id bigint,
                             p_request_id text, p_client_address text, p_before jsonb, p_after jsonb,
                             p_scope bigint[])
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  head audit_chain_heads;
  e audit_events;
BEGIN
  SELECT * INTO head FROM audit_chain_heads WHERE chain = (txid_current() % 16) FOR UPDATE;
  e.chain := head.chain;
  e.chain_seq := head.seq + 1;
  e.occurred_at := clock_timestamp();
  e.actor_id := p_actor;
  e.actor_name := (SELECT username FROM users WHERE id = p_actor);
  e.action := p_action;
  e.entity_type := p_entity_type;
  e.entity_id := p_entity_id;
  e.request_id := p_request_id;
  e.client_address := p_client_address;
  e.before := p_before;
  e.after := p_after;
  e.scope_department_ids := p_scope;
  e.prev_hash := head.hash;
  e.hash := audit_digest(e);
  INSERT INTO audit_events (chain, chain_seq, occurred_at, actor_id, actor_name, action, entity_type,
                            entity_id, request_id, client_address, before, after, scope_department_ids,
                            prev_hash, hash)
  VALUES (e.chain, e.chain_seq, e.occurred_at, e.actor_id, e.actor_name, e.action, e.entity_type,
          e.entity_id, e.request_id, e.client_address, e.before, e.after, e.scope_department_ids,
          e.prev_hash, e.hash)
  RETURNING id INTO e.id;
  UPDATE audit_chain_heads SET seq = e.chain_seq, hash = e.hash WHERE chain = e.chain;
  RETURN e.id;
END $$;

-- Append-only for everyone: even the owner must disable this trigger to change the past,
-- and then verification names the event.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Verification of a range of events: every event's hash is recomputed, and every link to the
-- event before it in its chain is checked, including the link into the range and, for events
-- that end their chain, the chain head. Returns one row per problem.
CREATE FUNCTION audit_verify(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (event_id bigint, chain smallint, chain_seq bigint, problem text)
LANGUAGE sql STABLE AS $$
  WITH r AS (
    SELECT e.*, audit_digest(e) AS recomputed,
           lag(e.chain_seq) OVER w AS prev_seq, lag(e.hash) OVER w AS prev_hash_seen,
           lead(e.chain_seq) OVER w AS next_seq
    FROM audit_events e
    WHERE e.occurred_at >= p_from AND e.occurred_at < p_to
    WINDOW w AS (PARTITION BY e.chain ORDER BY e.chain_seq)
  )
  SELECT r.id, r.chain, r.chain_seq, 'the event was changed: its content does not match its hash'
  FROM r WHERE r.recomputed <> r.hash
  UNION ALL
  SELECT r.id, r.chain, r.chain_seq, 'events before this one in its chain are missing or were changed'
  FROM r
  WHERE (r.prev_seq IS NOT NULL AND (r.prev_seq <> r.chain_seq - 1 OR r.prev_hash_seen <> r.prev_hash))
     OR (r.prev_seq IS NULL AND r.chain_seq > 1 AND NOT EXISTS (
           SELECT 1 FROM audit_events p WHERE p.chain = r.chain AND p.chain_seq = r.chain_seq - 1
             AND p.hash = r.prev_hash))
     OR (r.prev_seq IS NULL AND r.chain_seq = 1 AND r.prev_hash <> '\x')
  UNION ALL
  SELECT r.id, r.chain, r.chain_seq, 'events after this one in its chain are missing'
  FROM r JOIN audit_chain_heads h ON h.chain = r.chain
  WHERE r.next_seq IS NULL AND h.seq > r.chain_seq AND NOT EXISTS (
          SELECT 1 FROM audit_events n WHERE n.chain = r.chain AND n.chain_seq = r.chain_seq + 1)
     OR (r.next_seq IS NULL AND h.seq = r.chain_seq AND h.hash <> r.hash)
  ORDER BY 1
$$;

-- The departments whose users may read the events of a record: the inspection's target for
-- what belongs to an inspection, also the responsible unit for a rectification, the department
-- itself, a department user's unit. NULL (staff only) for the rest.
CREATE FUNCTION ducha_entity_scope(p_type text, p_id bigint) RETURNS bigint[] LANGUAGE sql STABLE AS $$
  SELECT CASE p_type
    WHEN 'department' THEN ARRAY[p_id]
    WHEN 'inspection' THEN (SELECT ARRAY[i.target_department_id] FROM inspections i WHERE i.id = p_id)
    WHEN 'item' THEN (SELECT ARRAY[i.target_department_id] FROM items it
                      JOIN inspections i ON i.id = it.inspection_id WHERE it.id = p_id)
    WHEN 'problem' THEN (SELECT ARRAY[i.target_department_id] FROM problems p JOIN items it ON it.id = p.item_id
                         JOIN inspections i ON i.id = it.inspection_id WHERE p.id = p_id)
    WHEN 'rectification' THEN (SELECT ARRAY[i.target_department_id, r.responsible_department_id]
                               FROM rectifications r JOIN problems p ON p.id = r.problem_id
                               JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id
                               WHERE r.id = p_id)
    WHEN 'user' THEN (SELECT ARRAY[u.department_id] FROM users u WHERE u.id = p_id AND u.department_id IS NOT NULL)
    ELSE NULL
  END
$$;
