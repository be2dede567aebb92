-- Checkpoints of the audit chains (issue 7 §5): numbered copies of every chain's head, signed by
-- the service with HMAC-SHA256 under a key the database never holds (DUCHA_AUDIT_KEY_FILE). The
-- owner can rewrite a chain and its head consistently, but not re-sign the checkpoints that
-- named the old heads; verification compares the two. What the signature covers is written down
-- in src/checkpoint.c.

CREATE TABLE audit_checkpoints (
  seq             bigint PRIMARY KEY CHECK (seq >= 1),
  created_at      timestamptz NOT NULL,
  -- [{chain, seq, hash (hex)}] for chains 0..15 in order, as read in one statement
  heads           jsonb NOT NULL CHECK (jsonb_typeof(heads) = 'array'),
  -- the signature of checkpoint seq - 1; NULL for the first
  prev_signature  text CHECK (prev_signature ~ '^[0-9a-f]{64}$'),
  -- which key signed it: the first 16 hex digits of HMAC(key, 'ducha audit key id')
  key_id          text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
  signature       text NOT NULL CHECK (signature ~ '^[0-9a-f]{64}$'),
  CHECK ((seq = 1) = (prev_signature IS NULL))
);
CREATE INDEX audit_checkpoints_created_at_idx ON audit_checkpoints (created_at);

-- Append-only for everyone, as audit_events: the service's role may insert and read (migrate
-- grants it the rest of the table rights, which these triggers make useless); the owner must
-- disable the trigger to change or remove one, and then verification names it.
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit checkpoints are append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();
