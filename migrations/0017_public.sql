-- 公示: the public view of published inspections (issue 11).
--
-- Redaction: an inspector withholds a problem or a measure (public = false: nothing of it is
-- shown, nor are the measures of a withheld problem) or gives it a public wording (public_text,
-- shown instead of its text). These two fields stay editable after the findings are final
-- (problems.c, rectifications.c: public_fields_only).
ALTER TABLE problems
  ADD COLUMN public boolean NOT NULL DEFAULT true,
  ADD COLUMN public_text text CONSTRAINT problems_public_text_check CHECK (char_length(public_text) BETWEEN 1 AND 2000);
ALTER TABLE rectifications
  ADD COLUMN public boolean NOT NULL DEFAULT true,
  ADD COLUMN public_text text CONSTRAINT rectifications_public_text_check
    CHECK (char_length(public_text) BETWEEN 1 AND 2000);

-- A view's r.* is expanded when the view is made: rectification_rows (0011, 0013) is made again
-- from its own stored definition, with the two new columns beside r.version.
DO $$
DECLARE
  body text := pg_get_viewdef('rectification_rows'::regclass);
BEGIN
  IF position(' r.version,' IN body) = 0 THEN
    RAISE EXCEPTION 'rectification_rows no longer lists r.version: update 0017';
  END IF;
  DROP VIEW rectification_rows;
  EXECUTE 'CREATE VIEW rectification_rows AS '
       || overlay(body PLACING ' r.version, r.public, r.public_text,' FROM position(' r.version,' IN body) FOR 11);
END $$;

-- The public view reads nothing but the schema `disclosure`: its requests run with the search
-- path set to it (public.c), so a statement there that names a table of the service (inspections,
-- problems, ...) fails instead of reading it. Its views hold only what may be published, only of
-- published inspections whose findings are final (a reopened one is hidden until it is submitted
-- again): no notes, no people, no evidence, no withheld problem or measure, the public wording
-- instead of the text where there is one. The transaction's identity is the anonymous one as
-- well (0006: an unset scope sees nothing), so a statement of the private API sees nothing.
CREATE SCHEMA disclosure;

-- Functions the views call are parsed with the caller's search path (SQL functions are inlined):
-- ducha_overdue names ducha_today by its schema from now on.
CREATE OR REPLACE FUNCTION ducha_overdue(deadline date, status text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT deadline IS NOT NULL AND deadline < public.ducha_today() AND status NOT IN ('submitted', 'closed')
$$;

-- The public list walks the published inspections newest first.
CREATE INDEX inspections_published_idx ON inspections (id) WHERE published;

CREATE VIEW disclosure.published_inspections AS
SELECT i.id, i.title, i.target_department_id, d.name AS target_department_name, i.inspected_on, i.status,
       i.published_at, i.closed_at, i.version
  FROM public.inspections i JOIN public.departments d ON d.id = i.target_department_id
 WHERE i.published AND i.status IN ('submitted', 'closed');

-- One row of the form (工作任务, 完成情况); not its note nor its material departments.
CREATE VIEW disclosure.published_items AS
SELECT it.inspection_id, it.seq, t.content AS task, it.completion
  FROM public.items it JOIN disclosure.published_inspections i ON i.id = it.inspection_id
  JOIN public.tasks t ON t.id = it.task_id;

CREATE VIEW disclosure.published_problems AS
SELECT p.id, it.inspection_id, it.seq, p.ordinal, coalesce(p.public_text, p.description) AS description
  FROM public.problems p JOIN public.items it ON it.id = p.item_id
  JOIN disclosure.published_inspections i ON i.id = it.inspection_id
 WHERE p.public;

-- A measure's responsible unit (整改责任主体), status and dates; not who submitted or closed it,
-- nor the closing opinion, progress or evidence.
CREATE VIEW disclosure.published_measures AS
SELECT r.problem_id, it.inspection_id, r.ordinal, coalesce(r.public_text, r.measure) AS measure,
       r.responsible_department_id, d.name AS responsible_department_name, r.deadline, r.status,
       public.ducha_overdue(r.deadline, r.status) AS overdue, r.closed_at
  FROM public.rectifications r JOIN public.problems p ON p.id = r.problem_id AND p.public
  JOIN public.items it ON it.id = p.item_id
  JOIN disclosure.published_inspections i ON i.id = it.inspection_id
  JOIN public.departments d ON d.id = r.responsible_department_id
 WHERE r.public;

-- The entity tag of a published inspection's public page, without reading it: the form's
-- counters (0010: the inspection's version, which publishing changes too, the changes to its
-- rows, problems and measures, redaction included, and the unit names) and the local date, on
-- which `overdue` turns.
CREATE VIEW disclosure.published_tags AS
SELECT i.id, concat_ws('.', i.version, coalesce(f.version, 0), n.version, to_char(public.ducha_today(), 'YYYYMMDD')) AS tag
  FROM disclosure.published_inspections i LEFT JOIN public.form_versions f ON f.inspection_id = i.id
  JOIN public.name_versions n ON n.catalogue = 'departments';

-- Public data only, for anyone who may connect: the service's role needs no grant of its own.
GRANT USAGE ON SCHEMA disclosure TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA disclosure TO PUBLIC;
