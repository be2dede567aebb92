-- The backbone: organisations, users and tokens, checklists, batches, inspections and their form.
-- Every enum has a CHECK, every reference a foreign key, every text a length limit, and every
-- filter the API offers an index.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE departments (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  kind        text NOT NULL DEFAULT 'department' CHECK (kind IN ('department', 'group')),
  parent_id   bigint REFERENCES departments (id),
  created_by  bigint,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  version     integer NOT NULL DEFAULT 1,
  CONSTRAINT departments_not_own_parent CHECK (parent_id <> id)
);
CREATE UNIQUE INDEX departments_name_key ON departments (coalesce(parent_id, 0), name);
CREATE INDEX departments_parent_id_idx ON departments (parent_id);
CREATE INDEX departments_kind_idx ON departments (kind);
CREATE INDEX departments_name_trgm_idx ON departments USING gin (name gin_trgm_ops);

-- A parent chain must never loop: checked under a lock so two concurrent moves cannot race.
CREATE FUNCTION departments_no_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.parent_id IS NULL THEN
    RETURN NEW;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('departments_tree'));
  IF EXISTS (
    WITH RECURSIVE up(id, parent_id) AS (
      SELECT id, parent_id FROM departments WHERE id = NEW.parent_id
      UNION
      SELECT d.id, d.parent_id FROM departments d JOIN up ON d.id = up.parent_id
    )
    SELECT 1 FROM up WHERE up.id = NEW.id
  ) THEN
    RAISE EXCEPTION 'department % would become its own ancestor', NEW.id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'departments_no_cycle';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER departments_no_cycle BEFORE INSERT OR UPDATE OF parent_id ON departments
  FOR EACH ROW EXECUTE FUNCTION departments_no_cycle();

CREATE TABLE users (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._-]{1,64}$'),
  display_name   text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 100),
  role           text NOT NULL CHECK (role IN ('admin', 'inspector', 'department', 'viewer')),
  department_id  bigint REFERENCES departments (id),
  password_hash  text,
  disabled       boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  version        integer NOT NULL DEFAULT 1,
  CONSTRAINT users_department_role CHECK ((role = 'department') = (department_id IS NOT NULL))
);
CREATE INDEX users_department_id_idx ON users (department_id);
ALTER TABLE departments ADD FOREIGN KEY (created_by) REFERENCES users (id);

-- Tokens are random; only their SHA-256 is kept.
CREATE TABLE tokens (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users (id),
  token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);
CREATE INDEX tokens_user_id_idx ON tokens (user_id);

CREATE TABLE checklists (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code        text NOT NULL CHECK (code ~ '^[a-z0-9_-]{1,50}$'),
  version     integer NOT NULL CHECK (version >= 1),
  title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  row_version integer NOT NULL DEFAULT 1,
  UNIQUE (code, version)
);

CREATE TABLE tasks (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  checklist_id      bigint NOT NULL REFERENCES checklists (id) ON DELETE CASCADE,
  seq               integer NOT NULL CHECK (seq >= 1),
  content           text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 2000),
  source_truncated  boolean NOT NULL DEFAULT false,
  UNIQUE (checklist_id, seq)
);

CREATE TABLE task_material_departments (
  task_id        bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  department_id  bigint NOT NULL REFERENCES departments (id),
  position       integer NOT NULL,
  PRIMARY KEY (task_id, department_id)
);
CREATE INDEX task_material_departments_department_id_idx ON task_material_departments (department_id);

CREATE TABLE batches (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  checklist_id  bigint NOT NULL REFERENCES checklists (id),
  created_by    bigint REFERENCES users (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  version       integer NOT NULL DEFAULT 1
);
CREATE INDEX batches_checklist_id_idx ON batches (checklist_id);
CREATE INDEX batches_name_trgm_idx ON batches USING gin (name gin_trgm_ops);

CREATE TABLE inspections (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title                 text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  checklist_id          bigint NOT NULL REFERENCES checklists (id),
  batch_id              bigint REFERENCES batches (id),
  target_department_id  bigint NOT NULL REFERENCES departments (id),
  inspected_on          date NOT NULL,
  inspectors            text[] NOT NULL DEFAULT '{}' CHECK (cardinality(inspectors) <= 20),
  status                text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'in_progress', 'submitted', 'closed')),
  published             boolean NOT NULL DEFAULT false,
  published_at          timestamptz,
  submitted_at          timestamptz,
  closed_at             timestamptz,
  created_by            bigint REFERENCES users (id),
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  version               integer NOT NULL DEFAULT 1,
  CHECK (published = (published_at IS NOT NULL))
);
CREATE INDEX inspections_status_idx ON inspections (status);
CREATE INDEX inspections_target_department_id_idx ON inspections (target_department_id);
CREATE INDEX inspections_batch_id_idx ON inspections (batch_id);
CREATE INDEX inspections_checklist_id_idx ON inspections (checklist_id);
CREATE INDEX inspections_inspected_on_idx ON inspections (inspected_on);
CREATE INDEX inspections_title_trgm_idx ON inspections USING gin (title gin_trgm_ops);

CREATE TABLE items (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  inspection_id  bigint NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
  task_id        bigint NOT NULL REFERENCES tasks (id),
  seq            integer NOT NULL,
  completion     text NOT NULL DEFAULT 'not_assessed'
                 CHECK (completion IN ('not_assessed', 'completed', 'not_completed')),
  note           text CHECK (char_length(note) <= 2000),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  version        integer NOT NULL DEFAULT 1,
  UNIQUE (inspection_id, task_id),
  UNIQUE (inspection_id, seq)
);
CREATE INDEX items_task_id_idx ON items (task_id);
CREATE INDEX items_completion_idx ON items (inspection_id, completion);

CREATE TABLE item_material_departments (
  item_id        bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
  department_id  bigint NOT NULL REFERENCES departments (id),
  position       integer NOT NULL,
  PRIMARY KEY (item_id, department_id)
);
CREATE INDEX item_material_departments_department_id_idx ON item_material_departments (department_id);

CREATE TABLE problems (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  item_id      bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
  ordinal      integer NOT NULL CHECK (ordinal >= 1),
  description  text NOT NULL CHECK (char_length(description) BETWEEN 1 AND 2000),
  created_by   bigint REFERENCES users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  version      integer NOT NULL DEFAULT 1,
  CONSTRAINT problems_ordinal_key UNIQUE (item_id, ordinal) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE rectifications (
  id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  problem_id                 bigint NOT NULL REFERENCES problems (id) ON DELETE CASCADE,
  ordinal                    integer NOT NULL CHECK (ordinal >= 1),
  measure                    text NOT NULL CHECK (char_length(measure) BETWEEN 1 AND 2000),
  responsible_department_id  bigint NOT NULL REFERENCES departments (id),
  deadline                   date,
  created_by                 bigint REFERENCES users (id),
  status                     text NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'in_progress', 'submitted', 'closed')),
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now(),
  version                    integer NOT NULL DEFAULT 1,
  CONSTRAINT rectifications_ordinal_key UNIQUE (problem_id, ordinal) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX rectifications_responsible_department_id_idx ON rectifications (responsible_department_id);
CREATE INDEX rectifications_status_idx ON rectifications (status);
CREATE INDEX rectifications_deadline_idx ON rectifications (deadline);

-- Idempotency-Key: the first successful response of a (user, key) pair, replayed for 24 h.
CREATE TABLE idempotency_keys (
  user_id       bigint NOT NULL REFERENCES users (id),
  key           text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 200),
  method        text NOT NULL,
  path          text NOT NULL,
  body_hash     bytea NOT NULL,
  state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
  status        integer,
  location      text,
  etag          text,
  body          text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Today in the zone of deadlines (each connection sets ducha.timezone; Asia/Shanghai otherwise).
CREATE FUNCTION ducha_today() RETURNS date LANGUAGE sql STABLE AS $$
  SELECT (now() AT TIME ZONE coalesce(nullif(current_setting('ducha.timezone', true), ''), 'Asia/Shanghai'))::date
$$;

-- Overdue from 00:00 the day after the deadline, while neither submitted nor closed.
CREATE FUNCTION ducha_overdue(deadline date, status text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT deadline IS NOT NULL AND deadline < ducha_today() AND status NOT IN ('submitted', 'closed')
$$;

-- A LIKE pattern that finds text anywhere, with the user's %, _ and \ taken literally.
CREATE FUNCTION ducha_contains(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '%' || replace(replace(replace($1, '\', '\\'), '%', '\%'), '_', '\_') || '%'
$$;
