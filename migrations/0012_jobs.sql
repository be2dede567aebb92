-- Background jobs (src/worker.c): one row per job, its next run and how the last ones went. A
-- replica takes a due job's row FOR UPDATE SKIP LOCKED and runs the job in the same
-- transaction, so with several replicas on one database each run happens once; a failure moves
-- next_run_at on by a growing pause and keeps the error for the operator.
CREATE TABLE jobs (
  name             text PRIMARY KEY,
  next_run_at      timestamptz NOT NULL DEFAULT now(),
  runs             bigint NOT NULL DEFAULT 0,
  failures         integer NOT NULL DEFAULT 0,  -- in a row, since the last success
  last_success_at  timestamptz,
  last_failure_at  timestamptz,
  last_error       text,
  last_worker      text,                        -- host:pid of the replica that ran it last
  last_result      jsonb                        -- what the last successful run did
);
INSERT INTO jobs (name) VALUES ('purge-idempotency-keys'), ('audit-checkpoint');
