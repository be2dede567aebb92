/* 公示: the public view of published inspections, read without a token.
 *
 * Where its rules live:
 *   - what may be shown, and of which inspections: the views of the schema `disclosure`
 *     (migrations/0017), the only relations these statements read: each request first sets the
 *     search path to that schema (enter_disclosure), so a statement here that names a table of
 *     the service fails rather than reading it; and it runs as no one (routes.c: R_PUBLIC), whose
 *     scope sees nothing of the private API (migrations/0006);
 *   - withholding a problem or measure and its public wording: the fields `public` and
 *     `public_text` (PUBLIC_FIELDS in resources.h), editable after submit (public_fields_only);
 *   - publishing: inspection_publish / inspection_unpublish, inspections.c;
 *   - caching (Cache-Control, 304) and the per-address rate limit: R_PUBLIC_VIEW, http.c and
 *     throttle.c. */
#include "resources.h"

#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>

int public_fields_only(const json_t *body) {
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)body, key, value) {
    if (strcmp(key, "public") && strcmp(key, "public_text"))
      return 0;
  }
  return 1;
}

/* The transaction's search path: the schema of what may be published, and nothing else. */
static status enter_disclosure(struct call *c) {
  if (c->who.user_id || c->who.scope)
    return fail(c, ST_INTERNAL, "the public view runs as no one");
  status s = db_exec(c->db, NULL, "SELECT set_config('search_path', 'disclosure', true)", 0, NULL);
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}

/* A published inspection's header (i: published_inspections) with its counts and closure rate
 * (closed measures of all those shown), as the fields of a JSON object. */
#define HEADER                                                                                 \
  "'id', i.id, 'title', i.title,"                                                              \
  " 'target_department', json_build_object('id', i.target_department_id, 'name', i.target_department_name)," \
  " 'inspected_on', i.inspected_on, 'status', i.status, 'published_at', i.published_at, 'closed_at', i.closed_at," \
  " 'counts', json_build_object('items', w.items, 'completed', w.completed, 'not_completed', w.not_completed," \
  "   'problems', p.problems, 'rectifications', m.measures, 'closed', m.closed, 'overdue', m.overdue),"  \
  " 'closure_rate', round(m.closed::numeric / nullif(m.measures, 0), 4)"
#define FROM_HEADER                                                                            \
  " FROM published_inspections i"                                                              \
  " CROSS JOIN LATERAL (SELECT count(*) AS items, count(*) FILTER (WHERE x.completion = 'completed') AS completed," \
  "   count(*) FILTER (WHERE x.completion = 'not_completed') AS not_completed"                  \
  "   FROM published_items x WHERE x.inspection_id = i.id) w"                                   \
  " CROSS JOIN LATERAL (SELECT count(*) AS problems FROM published_problems x WHERE x.inspection_id = i.id) p" \
  " CROSS JOIN LATERAL (SELECT count(*) AS measures, count(*) FILTER (WHERE x.status = 'closed') AS closed," \
  "   count(*) FILTER (WHERE x.overdue) AS overdue FROM published_measures x WHERE x.inspection_id = i.id) m"

/* The rows of the form, each with its problems and their measures as shown: a withheld one
 * leaves no gap, the ones shown are numbered 1, 2, ... in their order. */
#define ROWS                                                                                   \
  "coalesce((SELECT json_agg(json_build_object('seq', x.seq, 'task', x.task, 'completion', x.completion," \
  "   'problems', coalesce((SELECT json_agg(json_build_object('ordinal', q.n, 'description', q.description," \
  "      'rectifications', coalesce((SELECT json_agg(json_build_object('ordinal', r.n, 'measure', r.measure," \
  "         'responsible_department', json_build_object('id', r.responsible_department_id,"    \
  "           'name', r.responsible_department_name),"                                         \
  "         'deadline', r.deadline, 'status', r.status, 'overdue', r.overdue, 'closed_at', r.closed_at)" \
  "         ORDER BY r.n) FROM (SELECT y.*, row_number() OVER (ORDER BY y.ordinal) AS n"         \
  "           FROM published_measures y WHERE y.problem_id = q.id) r), '[]'))"                  \
  "      ORDER BY q.n) FROM (SELECT y.*, row_number() OVER (ORDER BY y.ordinal) AS n"           \
  "        FROM published_problems y WHERE y.inspection_id = i.id AND y.seq = x.seq) q), '[]'))" \
  "   ORDER BY x.seq) FROM published_items x WHERE x.inspection_id = i.id), '[]')"

static const char *SQL_TAG = "SELECT tag FROM published_tags WHERE id = $1";
static const char *SQL_INSPECTION =
    "SELECT json_build_object(" HEADER ", 'rows', " ROWS ")" FROM_HEADER " WHERE i.id = $1";

const struct qparam PUBLIC_FILTERS[] = {
  {"target_department_id", Q_ID, NULL},
  {"inspected_from", Q_DATE, NULL},
  {"inspected_to", Q_DATE, NULL},
  {0},
};
#define FILTER_PUBLIC                                                                          \
  " WHERE ($1::bigint IS NULL OR i.target_department_id = $1)"                                 \
  "   AND ($2::date IS NULL OR i.inspected_on >= $2) AND ($3::date IS NULL OR i.inspected_on <= $3)"

/* Newest first, as the private list. */
static const struct resource PUBLISHED = {
  .name = "published inspection",
  .list = {
    .sql_page = "SELECT i.id, json_build_object(" HEADER ")" FROM_HEADER FILTER_PUBLIC
                " AND ($4::bigint IS NULL OR i.id < $4) ORDER BY i.id DESC LIMIT $5",
    .sql_count = "SELECT count(*) FROM published_inspections i" FILTER_PUBLIC,
  },
};

status public_inspection_get(struct call *c) {
  status s = enter_disclosure(c);
  return s == ST_OK ? resource_tagged(c, "published inspection", SQL_TAG, "p", SQL_INSPECTION) : s;
}

/* A page's entity tag is its content's: whatever it shows changes it, the counts that turn with
 * the date (overdue) included. */
status public_inspection_list(struct call *c) {
  status s = enter_disclosure(c);
  if (s == ST_OK)
    s = resource_list(c, &PUBLISHED);
  unsigned char digest[32];
  if (s != ST_OK || gnutls_hash_fast(GNUTLS_DIG_SHA256, c->text, c->text_len, digest) < 0)
    return s != ST_OK ? s : fail(c, ST_INTERNAL, "could not hash the page");
  size_t n = (size_t)snprintf(c->etag_text, sizeof c->etag_text, "\"l");
  for (size_t i = 0; i < 16; i++)
    n += (size_t)snprintf(c->etag_text + n, sizeof c->etag_text - n, "%02x", digest[i]);
  snprintf(c->etag_text + n, sizeof c->etag_text - n, "\"");
  return ST_OK;
}
