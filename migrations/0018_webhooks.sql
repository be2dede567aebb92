-- Webhooks (issue 12): other systems subscribe to events; an outbox keeps them, written in the
-- transaction of the change that caused them, and the worker's delivery loop
-- (src/webhook_delivery.c) posts them.
--
-- Every change already writes one audit event in its transaction (audit_append), so the outbox is
-- filled by a trigger on audit_events: an event type of the change (webhook_event_types), a
-- snapshot of the resource (webhook_resource), one delivery per subscription that wants it, and
-- a NOTIFY that wakes the delivery loop once the transaction commits. Without a subscription that
-- wants the type the trigger writes nothing.

-- A subscription. The secret signs deliveries (HMAC-SHA256); it is write-only in the API. A new
-- secret keeps the one before it valid until previous_secret_until (DUCHA_WEBHOOK_SECRET_OVERLAP):
-- deliveries then carry a signature by each.
CREATE TABLE webhooks (
  id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  url                    text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2000),
  events                 text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 20),
  description            text CHECK (char_length(description) BETWEEN 1 AND 200),
  active                 boolean NOT NULL DEFAULT true,
  secret                 text NOT NULL CHECK (char_length(secret) BETWEEN 24 AND 256),
  previous_secret        text,
  previous_secret_until  timestamptz,
  secret_rotated_at      timestamptz,
  created_by             bigint REFERENCES users (id),
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  version                integer NOT NULL DEFAULT 1
);

-- An event, as every subscription and every redelivery receives it.
CREATE TABLE webhook_events (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type            text NOT NULL,
  occurred_at     timestamptz NOT NULL,
  audit_event_id  bigint NOT NULL,
  resource_type   text NOT NULL,
  resource_id     bigint,
  resource        jsonb,   -- the snapshot at the change; NULL when the record is gone
  change          jsonb NOT NULL
);

-- One event to one subscription. A pending delivery is due at next_attempt_at; the loop that
-- takes it moves next_attempt_at past its attempt's timeout first (the lease), so another replica
-- takes it again only when that one died mid-attempt.
CREATE TABLE webhook_deliveries (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  webhook_id        bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id          bigint NOT NULL REFERENCES webhook_events (id),
  redelivery_of     bigint REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts          integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  last_attempt_at   timestamptz,
  delivered_at      timestamptz,
  failed_at         timestamptz,
  response_status   integer,
  response_excerpt  text,
  error             text,
  duration_ms       integer,
  version           integer NOT NULL DEFAULT 1   -- each attempt's start and end: the ETag
);
-- the due ones of each subscription, oldest first (src/webhook_delivery.c: SQL_CLAIM)
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_id) WHERE redelivery_of IS NULL;

-- The event types an audit event stands for (none for most).
CREATE FUNCTION webhook_event_types(p_entity text, p_action text, p_before jsonb, p_after jsonb)
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_entity
    WHEN 'inspection' THEN CASE p_action
      WHEN 'create' THEN ARRAY['inspection.created']
      WHEN 'submit' THEN CASE WHEN p_after->>'status' = 'closed'
                              THEN ARRAY['inspection.submitted', 'inspection.closed']
                              ELSE ARRAY['inspection.submitted'] END
      WHEN 'close' THEN ARRAY['inspection.closed']
      WHEN 'reopen' THEN ARRAY['inspection.reopened']
      WHEN 'publish' THEN ARRAY['inspection.published']
      WHEN 'unpublish' THEN ARRAY['inspection.unpublished'] END
    WHEN 'rectification' THEN CASE p_action
      WHEN 'overdue' THEN ARRAY['rectification.overdue']
      WHEN 'escalated' THEN ARRAY['rectification.escalated']
      WHEN 'urge' THEN ARRAY['rectification.urged']
      ELSE array_remove(ARRAY[
        CASE WHEN p_before ? 'status' AND p_after ? 'status' AND p_before->>'status' <> p_after->>'status'
             THEN 'rectification.status_changed' END,
        CASE WHEN p_action IN ('reassign', 'update') AND p_after ? 'responsible_department_id'
             THEN 'rectification.reassigned' END,
        CASE WHEN p_action IN ('extend', 'update') AND p_after ? 'deadline'
             THEN 'rectification.deadline_changed' END], NULL) END
    WHEN 'evidence' THEN CASE p_action WHEN 'create' THEN ARRAY['evidence.added'] END
    WHEN 'audit_checkpoint' THEN CASE p_action WHEN 'checkpoint' THEN ARRAY['audit.checkpoint'] END
  END
$$;

-- What a receiver is told of the record an event is about, as it is at the event. An audit
-- checkpoint's event comes before the checkpoint's row (its heads include the event): its
-- snapshot is taken when it is sent (webhook_body), checkpoints never change.
-- PL/pgSQL rather than SQL: a SQL function with sub-selects is not inlined, and its body was
-- planned again at every call (0.4 ms an event); PL/pgSQL keeps each query's plan for the session.
CREATE FUNCTION webhook_resource(p_type text, p_id bigint) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
  CASE p_type
  WHEN 'inspection' THEN
    RETURN (SELECT jsonb_build_object('id', i.id, 'title', i.title, 'status', i.status,
        'checklist_id', i.checklist_id, 'batch_id', i.batch_id, 'target_department_id', i.target_department_id,
        'inspected_on', i.inspected_on, 'published', i.published, 'published_at', i.published_at,
        'submitted_at', i.submitted_at, 'closed_at', i.closed_at, 'version', i.version)
      FROM inspections i WHERE i.id = p_id);
  WHEN 'rectification' THEN
    RETURN (SELECT jsonb_build_object('id', r.id, 'problem_id', r.problem_id,
        'item_id', p.item_id, 'inspection_id', it.inspection_id, 'measure', r.measure,
        'responsible_department_id', r.responsible_department_id, 'deadline', r.deadline, 'status', r.status,
        'urge_count', r.urge_count, 'version', r.version)
      FROM rectifications r JOIN problems p ON p.id = r.problem_id JOIN items it ON it.id = p.item_id
      WHERE r.id = p_id);
  WHEN 'evidence' THEN
    RETURN (SELECT jsonb_build_object('id', e.id, 'rectification_id', e.rectification_id,
        'item_id', e.item_id, 'filename', e.filename, 'content_type', e.content_type, 'size', e.size,
        'sha256', encode(e.sha256, 'hex'), 'uploaded_at', e.uploaded_at)
      FROM evidence e WHERE e.id = p_id);
  WHEN 'audit_checkpoint' THEN
    RETURN (SELECT jsonb_build_object('seq', k.seq, 'created_at', k.created_at,
        'key_id', k.key_id, 'signature', k.signature)
      FROM audit_checkpoints k WHERE k.seq = p_id);
  ELSE
    RETURN NULL;
  END CASE;
END $$;

CREATE FUNCTION webhook_href(p_type text, p_id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_type
    WHEN 'inspection' THEN '/api/v1/inspections/'
    WHEN 'rectification' THEN '/api/v1/rectifications/'
    WHEN 'evidence' THEN '/api/v1/evidence/'
    WHEN 'audit_checkpoint' THEN '/api/v1/audit-events/checkpoints/' END || p_id
$$;

CREATE FUNCTION webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  types text[] := webhook_event_types(NEW.entity_type, NEW.action, NEW.before, NEW.after);
  t text;
  snapshot jsonb;
  event bigint;
BEGIN
  IF cardinality(types) IS NULL OR cardinality(types) = 0
     OR NOT EXISTS (SELECT 1 FROM webhooks WHERE active AND events && types) THEN
    RETURN NULL;
  END IF;
  snapshot := webhook_resource(NEW.entity_type, NEW.entity_id);
  FOREACH t IN ARRAY types LOOP
    INSERT INTO webhook_events (type, occurred_at, audit_event_id, resource_type, resource_id, resource, change)
    VALUES (t, NEW.occurred_at, NEW.id, NEW.entity_type, NEW.entity_id, snapshot,
            jsonb_build_object('action', NEW.action, 'audit_event_id', NEW.id, 'actor_id', NEW.actor_id,
                               'request_id', NEW.request_id, 'before', NEW.before, 'after', NEW.after))
    RETURNING id INTO event;
    INSERT INTO webhook_deliveries (webhook_id, event_id)
    SELECT w.id, event FROM webhooks w WHERE w.active AND t = ANY (w.events);
  END LOOP;
  PERFORM pg_notify('ducha_webhooks', '');
  RETURN NULL;
END $$;
-- Only for the records events are about: the other changes (progress, users, ...) do not call it.
CREATE TRIGGER audit_events_webhooks AFTER INSERT ON audit_events
  FOR EACH ROW WHEN (NEW.entity_type IN ('inspection', 'rectification', 'evidence', 'audit_checkpoint'))
  EXECUTE FUNCTION webhook_enqueue();

-- The body a receiver gets: the same text for each attempt of a delivery.
CREATE FUNCTION webhook_body(e webhook_events) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT json_build_object('id', e.id, 'type', e.type, 'occurred_at', e.occurred_at,
    'resource_type', e.resource_type, 'resource_id', e.resource_id,
    'href', webhook_href(e.resource_type, e.resource_id),
    'resource', coalesce(e.resource, webhook_resource(e.resource_type, e.resource_id)), 'change', e.change)::text
$$;
