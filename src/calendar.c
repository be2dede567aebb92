/* 节假日 / 调休: the working-day calendar, one year at a time, and deadlines given in working days.
 *
 * Where its rules live:
 *   - the days: calendar_days holds the exceptions (a holiday on a weekday, a make-up working
 *     day on a weekend); working_days every day of 2000-2099 with its running count, which
 *     calendar_replace (migrations/0013) rewrites from the replaced year on;
 *   - a year without a calendar counts Monday to Friday: `complete: false` here, and
 *     `calendar_complete: false` on what is computed from it (rectifications.c);
 *   - deadline_in_working_days: calendar_deadline, run before the handlers of the routes marked
 *     R_DEADLINE (routes.c). */
#include "audit.h"
#include "resources.h"

#include <stdio.h>
#include <string.h>

#define YEAR_MIN 2000
#define YEAR_MAX 2099
#define DAYS_MAX 366

static const struct field DAY[] = {
  {"date", F_DATE, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"working", F_BOOL, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"name", F_LINE, 0, 0, 100, NULL, 0},
  {0},
};
static const struct field NOTHING_ELSE[] = {{0}}; /* a body has days (checked by check_days) only */

/* $1 year -> (version, json); version 0 for a year without a calendar. */
static const char *SQL_GET =
    "SELECT coalesce(y.version, 0), json_build_object('year', q.year, 'complete', y.year IS NOT NULL,"
    " 'days', coalesce((SELECT json_agg(json_build_object('date', d.day, 'working', d.working, 'name', d.name)"
    "   ORDER BY d.day) FROM calendar_days d WHERE d.day BETWEEN q.first AND q.last), '[]'),"
    " 'working_days', (SELECT count(*) FROM working_days w WHERE w.day BETWEEN q.first AND q.last AND w.working),"
    " 'updated_at', y.updated_at, 'updated_by', " USER_REF("u") ")"
    " FROM (SELECT $1::int AS year, make_date($1::int, 1, 1) AS first, make_date($1::int, 12, 31) AS last) q"
    " LEFT JOIN calendar_years y ON y.year = q.year LEFT JOIN users u ON u.id = y.updated_by";
/* Replacements of one year wait for each other; $1 year -> its version now. */
static const char *SQL_LOCK =
    "SELECT coalesce((SELECT version FROM calendar_years WHERE year = $1::int), 0)"
    " FROM pg_advisory_xact_lock(hashtext('calendar'), $1::int)";
static const char *SQL_REPLACE = "SELECT calendar_replace($1::int, $2::jsonb, nullif($3, '0')::bigint)";

/* The year of the path, or ST_NOT_FOUND outside the years kept. */
static status year_of(struct call *c, char *year, size_t size) {
  if (c->id < YEAR_MIN || c->id > YEAR_MAX)
    return fail(c, ST_NOT_FOUND, "calendars are kept for %d to %d", YEAR_MIN, YEAR_MAX);
  snprintf(year, size, "%lld", (long long)c->id);
  return ST_OK;
}

/* The year's representation into c->result, its version as the ETag. */
static status load(struct call *c, const char *year) {
  const char *params[] = {year};
  PGresult *r;
  status s = resource_row(c, "calendar", &r, SQL_GET, 1, params);
  if (s != ST_OK)
    return s;
  c->etag = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  snprintf(c->etag_text, sizeof c->etag_text, "\"%ld\"", c->etag); /* "0" too: If-Match for a first calendar */
  json_decref(c->result);
  c->result = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
  PQclear(r);
  return c->result ? ST_OK : fail(c, ST_INTERNAL, "could not read the calendar");
}

status calendar_get(struct call *c) {
  char year[16];
  status s = year_of(c, year, sizeof year);
  return s == ST_OK ? load(c, year) : s;
}

static const char *date_of(const json_t *day) {
  const char *date = json_string_value(json_object_get(day, "date"));
  return date ? date : "";
}

/* Each day an object of DAY, in the year, named once. */
static void check_days(struct call *c, const json_t *days) {
  size_t i;
  json_t *day;
  char ptr[32], first[11], last[11];
  snprintf(first, sizeof first, "%lld-01-01", (long long)c->id);
  snprintf(last, sizeof last, "%lld-12-31", (long long)c->id);
  json_array_foreach(days, i, day) {
    snprintf(ptr, sizeof ptr, "/days/%zu", i);
    if (!json_is_object(day)) {
      invalid(c, ptr, "must be an object {date, working, name}");
      continue;
    }
    if (validate_body_at(day, DAY, 1, ptr, c->errors))
      continue;
    const char *date = date_of(day);
    snprintf(ptr, sizeof ptr, "/days/%zu/date", i);
    if (strcmp(date, first) < 0 || strcmp(date, last) > 0)
      invalid(c, ptr, "must be in the year of the path");
    for (size_t j = 0; j < i; j++)
      if (!strcmp(date, date_of(json_array_get(days, j)))) {
        invalid(c, ptr, "names a date already listed");
        break;
      }
  }
}

status calendar_put(struct call *c) {
  char year[16];
  status s = year_of(c, year, sizeof year);
  if (s != ST_OK)
    return s;
  json_t *days = json_object_get(c->body, "days");
  json_t *rest = json_deep_copy(c->body);
  json_object_del(rest, "days");
  validate_body(rest, NOTHING_ELSE, 1, c->errors);
  json_decref(rest);
  if (!json_is_array(days) || json_array_size(days) > DAYS_MAX)
    invalid(c, "/days", "must be an array of at most 366 days {date, working, name}");
  else
    check_days(c, days);
  if (json_array_size(c->errors))
    return fail(c, ST_INVALID, "the calendar has invalid days; see errors");
  char version[24];
  const char *params[] = {year};
  if ((s = resource_value(c, "calendar", version, sizeof version, SQL_LOCK, 1, params)) != ST_OK)
    return s;
  long current = strtol(version, NULL, 10);
  if (!etag_matches(c->if_match, current))
    return fail(c, ST_PRECONDITION_FAILED, "the calendar of %s has changed since you read it (ETag \"%ld\")", year,
                current);
  if ((s = load(c, year)) != ST_OK)
    return s;
  json_t *before = json_incref(json_object_get(c->result, "days"));
  char *body = json_dumps(days, JSON_COMPACT);
  struct num user = num(c->who.user_id);
  const char *replace[] = {year, body, user.s};
  if (!body)
    s = fail(c, ST_INTERNAL, "out of memory");
  else if ((s = db_exec(c->db, NULL, SQL_REPLACE, 3, replace)) != ST_OK)
    s = resource_db_failure(c, s);
  else if ((s = load(c, year)) == ST_OK)
    s = audit_write(c, "replace", "calendar", c->id, before, json_object_get(c->result, "days"));
  free(body);
  json_decref(before);
  return s;
}

/* Today in DUCHA_TIMEZONE plus $1 working days (day 1: the next working day). */
static const char *SQL_RESOLVE = "SELECT ducha_add_working_days(ducha_today(), $1::int)::text";

status calendar_deadline(struct call *c) {
  json_t *n = json_object_get(c->body, "deadline_in_working_days");
  if (!n)
    return ST_OK;
  if (json_object_get(c->body, "deadline")) {
    invalid(c, "/deadline_in_working_days", "give deadline or deadline_in_working_days, not both");
    return fail(c, ST_INVALID, "see errors");
  }
  if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 1000) {
    invalid(c, "/deadline_in_working_days", "must be a whole number of working days from 1 to 1000");
    return fail(c, ST_INVALID, "see errors");
  }
  struct num days = num(json_integer_value(n));
  const char *params[] = {days.s};
  PGresult *r;
  status s = db_row(c->db, &r, SQL_RESOLVE, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (PQgetisnull(r, 0, 0)) {
    PQclear(r);
    invalid(c, "/deadline_in_working_days", "falls after the last day the calendar keeps");
    return fail(c, ST_INVALID, "see errors");
  }
  json_object_set_new(c->body, "deadline", json_string(PQgetvalue(r, 0, 0)));
  json_object_del(c->body, "deadline_in_working_days");
  PQclear(r);
  return ST_OK;
}
