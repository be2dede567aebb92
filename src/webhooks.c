/* Webhook subscriptions (/api/v1/webhooks) and their delivery log (/webhooks/{id}/deliveries,
 * /webhook-deliveries/{id}): administrators only. The outbox is filled by a trigger
 * (migrations/0018) and delivered by webhook_delivery.c.
 *
 * Where its rules live:
 *   - the event types a subscription may name: EVENT_TYPES, the same list as
 *     webhook_event_types() (migrations/0018) and openapi.yaml's WebhookEventType;
 *   - where a delivery may go: url_check below at registration, and again at each connection
 *     (webhook_delivery.c), both through address_refused (address.c) and DUCHA_WEBHOOK_ALLOW;
 *   - the secret: written, never read back — no representation or audit event holds it; a new
 *     one keeps the old one signing for DUCHA_WEBHOOK_SECRET_OVERLAP (the setting
 *     ducha.webhook_secret_overlap of every connection, db.c). */
#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "audit.h"
#include "resources.h"

static const char *const EVENT_TYPES[] = {
  "inspection.created", "inspection.submitted", "inspection.closed", "inspection.reopened",
  "inspection.published", "inspection.unpublished", "rectification.status_changed",
  "rectification.reassigned", "rectification.deadline_changed", "rectification.overdue",
  "rectification.escalated", "rectification.urged", "evidence.added", "audit.checkpoint", NULL,
};

static const struct field CREATE[] = {
  {"url", F_LINE, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {"events", F_ENUMS, FIELD_REQUIRED, 1, 20, EVENT_TYPES, 0},
  {"secret", F_LINE, FIELD_REQUIRED, 24, 256, NULL, 0},
  {"description", F_LINE, FIELD_NULLABLE, 1, 200, NULL, 0},
  {"active", F_BOOL, 0, 0, 0, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"url", F_LINE, 0, 1, 2000, NULL, 0},
  {"events", F_ENUMS, 0, 1, 20, EVENT_TYPES, 0},
  {"secret", F_LINE, 0, 24, 256, NULL, 0},
  {"description", F_LINE, FIELD_NULLABLE, 1, 200, NULL, 0},
  {"active", F_BOOL, 0, 0, 0, NULL, 0},
  {0},
};

/* The URL's host, resolved: each of its addresses must be one a delivery may reach. */
static status url_check(struct call *c, const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *user = NULL, *fragment = NULL;
  const char *why = NULL;
  char text[300];
  if (!u)
    return fail(c, ST_INTERNAL, "out of memory");
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
      curl_url_get(u, CURLUPART_HOST, &host, 0))
    why = "is not a URL";
  else if (strcmp(scheme, "http") && strcmp(scheme, "https"))
    why = "must be an http or https URL";
  else if (!curl_url_get(u, CURLUPART_USER, &user, 0))
    why = "may not hold a user name or password: the secret authenticates deliveries";
  else if (!curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0))
    why = "may not have a fragment (#...)";
  else if (strlen(host) > 255)
    why = "names a host longer than DNS allows";
  if (!why) {
    size_t n = strlen(host);
    char name[258];
    /* an IPv6 literal is [addr] in a URL */
    snprintf(name, sizeof name, "%.*s", host[0] == '[' ? (int)n - 2 : (int)n, host + (host[0] == '['));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &list);
    if (rc) {
      snprintf(text, sizeof text, "names a host that does not resolve (%s)", gai_strerror(rc));
      why = text;
    }
    for (struct addrinfo *a = list; a && !why; a = a->ai_next) {
      char refused[128];
      if (address_refused(a->ai_addr, c->cfg->webhook_allow, refused, sizeof refused)) {
        snprintf(text, sizeof text, "is refused: %s; webhooks go to public addresses only (DUCHA_WEBHOOK_ALLOW)",
                 refused);
        why = text;
      }
    }
    freeaddrinfo(list);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_free(fragment);
  curl_url_cleanup(u);
  return why ? invalid(c, "/url", why) : ST_OK;
}

/* The body's url, when given, is one deliveries may go to. */
static status subscription_check(struct call *c) {
  const char *url = json_string_value(json_object_get(c->body, "url"));
  return url ? url_check(c, url) : ST_OK;
}

static status before_change(struct call *c, int deleting) { return deleting ? ST_OK : subscription_check(c); }

#define JSON_OF_W                                                                              \
  "json_build_object('id', w.id, 'url', w.url, 'events', w.events, 'description', w.description," \
  " 'active', w.active, 'secret_rotated_at', w.secret_rotated_at,"                             \
  " 'previous_secret_valid_until', CASE WHEN w.previous_secret_until > now() THEN w.previous_secret_until END," \
  " 'created_by', w.created_by, 'created_at', w.created_at, 'updated_at', w.updated_at)"

#define CHANGED(f) "CASE WHEN b ? '" f "' THEN "
const struct resource WEBHOOKS = {
  .name = "webhook",
  .collection = "/api/v1/webhooks",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT w.version, " JSON_OF_W " FROM webhooks w WHERE w.id = $1",
  .sql_lock = "SELECT version FROM webhooks WHERE id = $1 FOR UPDATE",
  .sql_insert = "INSERT INTO webhooks (url, events, description, active, secret, created_by)"
                " SELECT b->>'url', ARRAY(SELECT jsonb_array_elements_text(b->'events')), b->>'description',"
                "   coalesce((b->>'active')::boolean, true), b->>'secret', $2::bigint"
                " FROM (SELECT $1::jsonb AS b) s RETURNING id",
  /* a new secret: the one before it signs too until the overlap ends */
  .sql_update = "UPDATE webhooks SET"
                " url = " CHANGED("url") "b->>'url' ELSE url END,"
                " events = " CHANGED("events") "ARRAY(SELECT jsonb_array_elements_text(b->'events')) ELSE events END,"
                " description = " CHANGED("description") "b->>'description' ELSE description END,"
                " active = " CHANGED("active") "(b->>'active')::boolean ELSE active END,"
                " previous_secret = " CHANGED("secret") "secret ELSE previous_secret END,"
                " previous_secret_until = " CHANGED("secret") "now() + make_interval(secs =>"
                "   current_setting('ducha.webhook_secret_overlap')::int) ELSE previous_secret_until END,"
                " secret_rotated_at = " CHANGED("secret") "now() ELSE secret_rotated_at END,"
                " secret = coalesce(b->>'secret', secret),"
                " updated_at = now(), version = version + 1"
                " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "DELETE FROM webhooks WHERE id = $1",
  .before_create = subscription_check,
  .before_change = before_change,
  .list = {
    .sql_page = "SELECT w.id, " JSON_OF_W " FROM webhooks w WHERE ($1::bigint IS NULL OR w.id > $1)"
                " ORDER BY w.id LIMIT $2",
    .sql_count = "SELECT count(*) FROM webhooks",
  },
};

/* ---- the delivery log -------------------------------------------------------------------------- */

static const char *const DELIVERY_STATUSES[] = {"pending", "delivered", "failed", NULL};
const struct qparam DELIVERY_FILTERS[] = {
  {"status", Q_ENUMS, DELIVERY_STATUSES},
  {0},
};

#define JSON_OF_D                                                                              \
  "json_build_object('id', d.id, 'webhook_id', d.webhook_id, 'event_id', d.event_id, 'event_type', e.type," \
  " 'status', d.status, 'attempts', d.attempts, 'redelivery_of', d.redelivery_of, 'created_at', d.created_at," \
  " 'next_attempt_at', CASE WHEN d.status = 'pending' THEN d.next_attempt_at END,"            \
  " 'last_attempt_at', d.last_attempt_at, 'delivered_at', d.delivered_at, 'failed_at', d.failed_at," \
  " 'response_status', d.response_status, 'response_excerpt', d.response_excerpt, 'error', d.error," \
  " 'duration_ms', d.duration_ms"
#define FROM_D " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"

const struct resource WEBHOOK_DELIVERIES = {
  .name = "delivery",
  .collection = "/api/v1/webhook-deliveries",
  .sql_get = "SELECT d.version, " JSON_OF_D ", 'event', webhook_body(e)::json)" FROM_D " WHERE d.id = $1",
  .list = {
    .sql_parent = "SELECT 1 FROM webhooks WHERE id = $1",
    .sql_page = "SELECT d.id, " JSON_OF_D ")" FROM_D " WHERE d.webhook_id = $1"
                " AND ($2::text[] IS NULL OR d.status = ANY ($2)) AND ($3::bigint IS NULL OR d.id < $3)"
                " ORDER BY d.id DESC LIMIT $4",
    .sql_count = "SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = $1"
                 " AND ($2::text[] IS NULL OR d.status = ANY ($2))",
  },
};

static const char *SQL_REDELIVER =
    "WITH one AS (SELECT id, webhook_id, event_id, status FROM webhook_deliveries WHERE id = $1 FOR UPDATE),"
    " made AS (INSERT INTO webhook_deliveries (webhook_id, event_id, redelivery_of)"
    "   SELECT webhook_id, event_id, id FROM one WHERE status <> 'pending' RETURNING id)"
    " SELECT one.status, one.webhook_id, made.id, pg_notify('ducha_webhooks', '') FROM one LEFT JOIN made ON true";

/* POST /webhook-deliveries/{id}/redeliver: the same event to the same subscription once more, as
 * a delivery of its own (the log keeps the first). */
status webhook_redeliver(struct call *c) {
  static const struct field NONE[] = {{0}};
  if (c->body && validate_body(c->body, NONE, 1, c->errors))
    return fail(c, ST_INVALID, "a redelivery takes no fields; see errors");
  struct num id = num(c->id);
  const char *params[] = {id.s};
  PGresult *res;
  status s = resource_row(c, "delivery", &res, SQL_REDELIVER, 1, params);
  if (s != ST_OK)
    return s;
  int pending = PQgetisnull(res, 0, 2);
  int64_t webhook = strtoll(PQgetvalue(res, 0, 1), NULL, 10), made = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
  PQclear(res);
  if (pending)
    return fail(c, ST_CONFLICT, "the delivery is pending still: it is tried again on its own");
  snprintf(c->location, sizeof c->location, "%s/%lld", WEBHOOK_DELIVERIES.collection, (long long)made);
  if ((s = resource_load(c, &WEBHOOK_DELIVERIES, made)) != ST_OK)
    return s;
  json_t *after = json_pack("{s:I, s:I}", "delivery_id", (json_int_t)c->id, "redelivery_id", (json_int_t)made);
  s = audit_write(c, "redeliver", "webhook", webhook, NULL, after);
  json_decref(after);
  return s;
}
