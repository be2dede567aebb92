#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <ulfius.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "auth_cache.h"
#include "conn.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "upload.h"
#include "problem.h"
#include "throttle.h"
#include "validate.h"

/* One request's state, shared by the callbacks of the chain through response->shared_data. */
struct ctx {
  struct call call;
  const struct config *cfg;
  char request_id[136];
  char method[12];
  char *path;
  long long started_us;
  long http_status;
  const char *problem; /* the slug of the problem answered, NULL for none */
  int have_db;
};

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int route_index(const char *method, const char *path);

/* The request is done (a download: all sent): its log line, its error line when the server
 * failed it, and its count in /metrics. */
static void ctx_free(void *p) {
  struct ctx *x = p;
  struct call *c = &x->call;
  long long us = now_us() - x->started_us;
  int route = c->route ? (int)(c->route - ROUTES) : route_index(x->method, x->path ? x->path : "/");
  struct log_request lr = {x->request_id, x->method, route >= 0 ? ROUTES[route].path : NULL,
                           x->path ? x->path : "-", x->http_status, (double)us / 1000.0, c->who.user_id};
  log_request(&lr);
  if (x->http_status >= 500 && x->problem)
    log_request_error(&lr, x->problem, c->detail[0] ? c->detail : problem_of(ST_INTERNAL)->title);
  metrics_request(route, x->http_status, us);
  if (x->have_db)
    db_release(c->db);
  json_decref(c->body);
  json_decref(c->result);
  free(c->text);
  json_decref(c->errors);
  json_decref(c->allowed);
  free(c->who.scope);
  if (c->stream_read && c->stream_free) /* made, but never handed to Ulfius */
    c->stream_free(c->stream_data);
  query_free(&c->query);
  free(x->path);
  free(x);
}

/* ---- responses -------------------------------------------------------------------------- */

static void set_body(struct _u_response *resp, struct ctx *x, long code, json_t *body,
                     const char *content_type) {
  x->http_status = code;
  if (!body) {
    ulfius_set_empty_body_response(resp, (unsigned)code);
    return;
  }
  char *text = json_dumps(body, JSON_COMPACT);
  ulfius_set_binary_body_response(resp, (unsigned)code, text, strlen(text));
  u_map_put(resp->map_header, "Content-Type", content_type);
  free(text);
}

static void send_problem(struct _u_response *resp, struct ctx *x, status s) {
  const struct problem_type *t = problem_of(s);
  struct call *c = &x->call;
  char type[80];
  snprintf(type, sizeof type, PROBLEM_URN "%s", t->slug);
  const char *detail = c->detail[0]                 ? c->detail
                       : json_array_size(c->errors) ? "see errors for what to correct"
                                                    : t->title;
  json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", t->title, "status",
                        t->http, "detail", detail, "request_id", x->request_id);
  x->problem = t->slug;
  if (x->path)
    json_object_set_new(p, "instance", json_string(x->path));
  if (json_array_size(c->errors)) {
    json_object_set_new(p, "errors", errors_kept(c->errors));
    json_object_set_new(p, "errors_total", json_integer((json_int_t)json_array_size(c->errors)));
  }
  if (s == ST_BAD_TRANSITION)
    json_object_set(p, "allowed_transitions", c->allowed ? c->allowed : json_array());
  if (s == ST_UNAVAILABLE || (s == ST_TOO_MANY && c->retry_after > 0)) {
    char seconds[24];
    snprintf(seconds, sizeof seconds, "%ld", s == ST_TOO_MANY ? c->retry_after : 1L);
    u_map_put(resp->map_header, "Retry-After", seconds);
  }
  set_body(resp, x, t->http, p, "application/problem+json");
  json_decref(p);
}

/* The Link header for the next page: this request's query with the new cursor. */
static void set_link(struct _u_response *resp, const struct _u_request *req, const char *cursor) {
  const char *q = strchr(req->http_url, '?');
  size_t cap = strlen(req->http_url) + strlen(cursor) + 64;
  char *link = malloc(cap);
  size_t n = (size_t)snprintf(link, cap, "<%.*s?", (int)(q ? q - req->http_url : (long)strlen(req->http_url)),
                              req->http_url);
  for (const char *s = q ? q + 1 : ""; *s;) {
    size_t len = strcspn(s, "&");
    if (len && strncmp(s, "cursor=", 7)) {
      memcpy(link + n, s, len);
      n += len;
      link[n++] = '&';
    }
    s += len + (s[len] == '&');
  }
  snprintf(link + n, cap - n, "cursor=%s>; rel=\"next\"", cursor);
  u_map_put(resp->map_header, "Link", link);
  free(link);
}

/* ---- streamed responses: bounded in number, sent at the client's pace -------------------------- */

static atomic_long streams_open;

long http_streams_open(void) { return atomic_load(&streams_open); }

struct stream {
  long (*read)(void *data, uint64_t offset, char *out, size_t max);
  void (*free)(void *data);
  void *data;
};

static ssize_t stream_read(void *p, uint64_t offset, char *out, size_t max) {
  struct stream *s = p;
  return s->read(s->data, offset, out, max);
}

static void stream_end(void *p) {
  struct stream *s = p;
  if (s->free)
    s->free(s->data);
  free(s);
  atomic_fetch_sub(&streams_open, 1);
}

/* Hands the call's stream to Ulfius, which owns it from then on; ST_TOO_MANY when
 * DUCHA_MAX_STREAMS are open (the stream is freed). */
static status stream_start(struct _u_response *resp, struct call *c) {
  struct stream *s = malloc(sizeof *s);
  if (!s || atomic_fetch_add(&streams_open, 1) >= c->cfg->max_streams) {
    if (s)
      atomic_fetch_sub(&streams_open, 1);
    free(s);
    return ST_TOO_MANY; /* ctx_free frees the call's stream */
  }
  *s = (struct stream){c->stream_read, c->stream_free, c->stream_data};
  c->stream_read = NULL;
  ulfius_set_stream_response(resp, 200, stream_read, stream_end, c->stream_size, 65536, s);
  return ST_OK;
}

/* The public view's pages may be kept by any cache for a minute (the ETag then says whether
 * they changed); its refusals by none. */
#define PUBLIC_VIEW_CACHE "public, max-age=60"

static void respond(const struct _u_request *req, struct _u_response *resp, struct ctx *x, status s) {
  struct call *c = &x->call;
  const struct route *rt = c->route;
  if (rt && (rt->flags & R_PUBLIC_VIEW))
    u_map_put(resp->map_header, "Cache-Control", s == ST_OK ? PUBLIC_VIEW_CACHE : "no-store");
  if (s != ST_OK) {
    send_problem(resp, x, s);
    return;
  }
  if (c->stream_read) {
    if (stream_start(resp, c) != ST_OK) {
      c->retry_after = 1;
      fail(c, ST_TOO_MANY, "%ld downloads are being sent; try again shortly", c->cfg->max_streams);
      send_problem(resp, x, ST_TOO_MANY);
      return;
    }
    x->http_status = 200;
    u_map_put(resp->map_header, "Content-Type", c->stream_type);
    u_map_put(resp->map_header, "Content-Disposition", c->disposition);
    if (c->etag_text[0])
      u_map_put(resp->map_header, "ETag", c->etag_text);
    return;
  }
  if (c->raw) {
    x->http_status = 200;
    ulfius_set_binary_body_response(resp, 200, c->raw, c->raw_len);
    u_map_put(resp->map_header, "Content-Type", c->raw_type);
    if (rt && (rt->flags & R_PAGE))
      u_map_put(resp->map_header, "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none';"
                " base-uri 'none'; frame-ancestors 'none'");
    return;
  }
  if (c->etag && !c->etag_text[0])
    snprintf(c->etag_text, sizeof c->etag_text, "\"%ld\"", c->etag);
  if (c->etag_text[0]) {
    u_map_put(resp->map_header, "ETag", c->etag_text);
    if (rt && !strcmp(rt->method, "GET") && call_not_modified(c)) {
      set_body(resp, x, 304, NULL, NULL); /* the client's copy is current */
      return;
    }
  }
  if (c->link_next[0])
    set_link(resp, req, c->link_next);
  if (rt && (rt->flags & R_NO_CONTENT)) {
    set_body(resp, x, 204, NULL, NULL);
  } else if (rt && (rt->flags & R_CREATED)) {
    u_map_put(resp->map_header, "Location", c->location);
    set_body(resp, x, 201, c->result, "application/json");
  } else if (c->text) {
    x->http_status = 200;
    ulfius_set_binary_body_response(resp, 200, c->text, c->text_len);
    u_map_put(resp->map_header, "Content-Type", "application/json");
  } else {
    set_body(resp, x, 200, c->result, "application/json");
  }
}

/* ---- PRIORITY_PREPARE: request id, CORS, body limit ---------------------------------------- */

static void request_id_of(const struct _u_request *req, char *out, size_t size) {
  const char *given = u_map_get_case(req->map_header, "X-Request-Id");
  if (given && *given && strlen(given) <= 128 &&
      strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == strlen(given)) {
    snprintf(out, size, "%s", given);
    return;
  }
  unsigned char raw[16];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    memset(raw, 0, sizeof raw);
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf(out + 2 * i, size - 2 * i, "%02x", raw[i]);
}

/* The callback that answers a request returns this: the thread's messages no longer name it. */
static int done(void) {
  log_set_request(NULL);
  return U_CALLBACK_COMPLETE;
}

static int on_prepare(const struct _u_request *req, struct _u_response *resp, void *cls) {
  const struct config *cfg = cls;
  struct ctx *x = calloc(1, sizeof *x);
  x->cfg = cfg;
  x->call.cfg = cfg;
  x->call.errors = json_array();
  x->started_us = now_us();
  x->http_status = 200;
  snprintf(x->method, sizeof x->method, "%s", req->http_verb);
  x->path = strdup(req->url_path ? req->url_path : "/");
  x->call.path = x->path;
  request_id_of(req, x->request_id, sizeof x->request_id);
  x->call.request_id = x->request_id;
  log_set_request(x->request_id); /* until the callback that answers returns (done) */
  char peer[INET_ADDRSTRLEN] = "";
  const struct sockaddr_in *sa = (const struct sockaddr_in *)req->client_address;
  if (sa && sa->sin_family == AF_INET)
    inet_ntop(AF_INET, &sa->sin_addr, peer, sizeof peer);
  client_address(peer, u_map_get_case(req->map_header, "X-Forwarded-For"), cfg->trusted_proxies,
                 x->call.client_address, sizeof x->call.client_address);
  ulfius_set_response_shared_data(resp, x, ctx_free);
  u_map_put(resp->map_header, "X-Request-Id", x->request_id);
  u_map_put(resp->map_header, "X-Content-Type-Options", "nosniff");
  if (service_stopping()) /* clients go to another replica for their next request */
    u_map_put(resp->map_header, "Connection", "close");

  const char *origin = u_map_get_case(req->map_header, "Origin");
  int cors = origin && config_cors_allows(cfg, origin);
  if (cors) {
    u_map_put(resp->map_header, "Access-Control-Allow-Origin", origin);
    u_map_put(resp->map_header, "Vary", "Origin");
    u_map_put(resp->map_header, "Access-Control-Expose-Headers",
              "ETag, Location, Link, X-Request-Id, Idempotent-Replayed, Retry-After, Content-Disposition");
  }
  if (!strcmp(req->http_verb, "OPTIONS")) {
    if (cors && u_map_get_case(req->map_header, "Access-Control-Request-Method")) {
      u_map_put(resp->map_header, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
      u_map_put(resp->map_header, "Access-Control-Allow-Headers",
                "Authorization, Content-Type, If-Match, Idempotency-Key, X-Request-Id");
      u_map_put(resp->map_header, "Access-Control-Max-Age", "600");
    }
    u_map_put(resp->map_header, "Allow", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    set_body(resp, x, 204, NULL, NULL);
    return done();
  }
  const char *length = u_map_get_case(req->map_header, "Content-Length");
  if (!upload_current() && (req->binary_body_length > (size_t)cfg->body_limit ||
                            (length && strtoull(length, NULL, 10) > (unsigned long long)cfg->body_limit))) {
    fail(&x->call, ST_TOO_LARGE, "the body is larger than %ld bytes", cfg->body_limit);
    send_problem(resp, x, ST_TOO_LARGE);
    return done();
  }
  return U_CALLBACK_CONTINUE;
}

/* ---- PRIORITY_AUTH: bearer token ------------------------------------------------------------ */

static status need_db(struct ctx *x) {
  if (x->have_db)
    return ST_OK;
  status s = db_acquire(&x->call.db);
  x->have_db = 1;
  if (s != ST_OK)
    fail(&x->call, s, "the database is unavailable; try again shortly");
  return s;
}

static int path_matches(const char *tmpl, const char *path);

/* 1 when a route with flag answers method on path. */
static int route_has(unsigned flag, const char *method, const char *path) {
  for (int i = 0; i < ROUTE_COUNT; i++)
    if ((ROUTES[i].flags & flag) && !strcmp(ROUTES[i].method, method) && path_matches(ROUTES[i].path, path))
      return 1;
  return 0;
}

static int on_auth(const struct _u_request *req, struct _u_response *resp, void *cls) {
  (void)cls;
  struct ctx *x = resp->shared_data;
  if (route_has(R_PUBLIC, req->http_verb, req->url_path))
    return U_CALLBACK_CONTINUE;
  const char *header = u_map_get_case(req->map_header, "Authorization");
  status s = ST_UNAUTHORIZED;
  if (!header || strncasecmp(header, "Bearer ", 7) || !auth_token_plausible(header + 7)) {
    fail(&x->call, s, "send Authorization: Bearer <token>");
  } else if ((s = need_db(x)) == ST_OK) {
    s = auth_verify(x->call.db, header + 7, &x->call.who);
    if (s == ST_UNAUTHORIZED)
      fail(&x->call, s, "the token is unknown, expired or revoked");
  }
  if (s == ST_OK)
    return U_CALLBACK_CONTINUE;
  if (s == ST_UNAUTHORIZED)
    u_map_put(resp->map_header, "WWW-Authenticate", "Bearer realm=\"ducha\"");
  send_problem(resp, x, s);
  return done();
}

/* ---- PRIORITY_APP: the route table ------------------------------------------------------------ */

static int media_type_is(const char *header, const char *want) {
  size_t n = strlen(want);
  while (*header == ' ')
    header++;
  if (strncasecmp(header, want, n))
    return 0;
  const char *rest = header + n;
  while (*rest == ' ')
    rest++;
  if (!*rest)
    return 1;
  if (*rest != ';')
    return 0;
  rest++;
  while (*rest == ' ')
    rest++;
  return !strcasecmp(rest, "charset=utf-8") || !strcasecmp(rest, "charset=\"utf-8\"");
}

/* Fills the call's inputs from the request: path id, query, body, If-Match. */
static status read_request(const struct _u_request *req, struct ctx *x, const struct route *rt) {
  struct call *c = &x->call;
  if (strstr(rt->path, "{id}") && !id_parse(u_map_get(req->map_url, "id"), &c->id))
    return fail(c, ST_NOT_FOUND, "no such %s", "record");
  const char *q = strchr(req->http_url, '?');
  if (query_parse(q ? q + 1 : NULL, rt->query, rt->flags & R_LIST, &c->query, c->errors) != ST_OK)
    return fail(c, ST_BAD_QUERY, "the query string has problems; see errors");
  if (rt->flags & R_BODY) {
    if (req->binary_body_length == 0 && (rt->flags & R_BODY_OPTIONAL)) {
      c->body = json_object();
    } else {
      const char *type = u_map_get_case(req->map_header, "Content-Type");
      if (!type || !(media_type_is(type, "application/json") ||
                     ((rt->flags & R_MERGE_PATCH) && media_type_is(type, "application/merge-patch+json"))))
        return fail(c, ST_UNSUPPORTED_MEDIA, "send the body as %s",
                    (rt->flags & R_MERGE_PATCH) ? "application/merge-patch+json or application/json"
                                                : "application/json");
      json_error_t err;
      c->body = json_loadb(req->binary_body, req->binary_body_length, JSON_REJECT_DUPLICATES, &err);
      if (!c->body) {
        errors_add(c->errors, "", err.text);
        return fail(c, ST_MALFORMED, "line %d, column %d: %s", err.line, err.column, err.text);
      }
      if (!json_is_object(c->body))
        return invalid(c, "", "the body must be a JSON object");
    }
  }
  c->if_match = u_map_get_case(req->map_header, "If-Match");
  c->if_none_match = u_map_get_case(req->map_header, "If-None-Match");
  c->content_type = u_map_get_case(req->map_header, "Content-Type");
  c->content_disposition = u_map_get_case(req->map_header, "Content-Disposition");
  if ((rt->flags & R_IF_MATCH) && !c->if_match)
    return fail(c, ST_PRECONDITION_REQUIRED, "send If-Match with the ETag you read (or * to overwrite)");
  return ST_OK;
}

/* Runs the handler inside one transaction that carries the caller's identity (nothing at all
 * for calls without a token), with Idempotency-Key handling. Reads see one snapshot. */
static status run(const struct _u_request *req, struct _u_response *resp, struct ctx *x,
                  const struct route *rt, int *replayed) {
  struct call *c = &x->call;
  int in_tx = !(rt->flags & R_OWN_TX);
  int read_only = strcmp(rt->method, "GET") ? DB_READ_WRITE
                  : (rt->flags & R_ONE_STATEMENT) ? DB_ONE_READ
                                                   : DB_READ_ONLY;
  const char *key = u_map_get_case(req->map_header, "Idempotency-Key");
  struct idem idem = {0};
  status s;
  if (rt->flags & R_NO_DB)
    return rt->handler(c);
  if ((s = need_db(x)) != ST_OK)
    return s;
  if (key && !strcmp(rt->method, "POST") && !(rt->flags & R_SECRET)) {
    /* An upload's body never reached memory: its digest stands for it. */
    const struct upload *up = (rt->flags & R_UPLOAD) ? upload_current() : NULL;
    s = idem_begin(c, &idem, key, rt->method, x->path, up ? (const void *)up->sha256 : req->binary_body,
                   up ? sizeof up->sha256 : req->binary_body_length);
    if (s != ST_OK)
      return s;
    if (idem.replay) {
      idem_replay(&idem, resp);
      x->http_status = resp->status;
      *replayed = 1;
      idem_free(&idem);
      return ST_OK;
    }
  }
  const struct db_identity who = {c->who.scope, c->who.user_id, c->who.role};
  if (in_tx && (s = db_begin_as(c->db, &who, read_only)) != ST_OK)
    goto out;
  s = (rt->flags & R_DEADLINE) && c->body ? calendar_deadline(c) : ST_OK;
  if (s == ST_OK)
    s = rt->handler(c);
  if (in_tx) {
    if (s == ST_OK && idem.active)
      s = idem_store(c, &idem, (rt->flags & R_CREATED) ? 201 : (rt->flags & R_NO_CONTENT) ? 204 : 200);
    if (s == ST_OK) {
      s = db_commit(c->db);
      if (s != ST_OK)
        fail(c, s, "the change conflicts with another one; try again");
      else if (rt->flags & R_CALLERS)
        auth_cache_flush();
    } else {
      db_rollback(c->db);
    }
  }
out:
  if (s != ST_OK && idem.active)
    idem_abandon(c, &idem);
  idem_free(&idem);
  return s;
}

/* DUCHA_PUBLIC_RATE_LIMIT: the public view's callers, counted per client address (NULL: no limit). */
static struct throttle *public_callers;

static status public_view_admit(struct call *c) {
  long wait = public_callers ? throttle_take(public_callers, c->client_address, now_us()) : 0;
  if (wait <= 0)
    return ST_OK;
  c->retry_after = wait;
  return fail(c, ST_TOO_MANY, "more than %ld requests a minute from %s; try again in %ld seconds",
              c->cfg->public_rate_limit, c->client_address, wait);
}

static int on_route(const struct _u_request *req, struct _u_response *resp, void *cls) {
  const struct route *rt = cls;
  struct ctx *x = resp->shared_data;
  struct call *c = &x->call;
  int replayed = 0;
  c->route = rt;
  status s = ST_OK;
  if (rt->flags & R_PRIVATE)
    u_map_put(resp->map_header, "Cache-Control", "no-store");
  if (!(rt->flags & R_PUBLIC) && !(rt->roles & c->who.role_bit))
    s = fail(c, ST_FORBIDDEN, "the %s role may not %s %s", c->who.role, rt->method, rt->path);
  else if (!(rt->flags & R_PUBLIC) && c->who.must_change_password && !(rt->flags & R_BEFORE_PASSWORD_CHANGE))
    s = fail(c, ST_PASSWORD_CHANGE, "an administrator reset your password: change it with POST /api/v1/me/password");
  else if (rt->flags & R_PUBLIC_VIEW)
    s = public_view_admit(c);
  if (s == ST_OK)
    s = read_request(req, x, rt);
  if (s == ST_OK)
    s = run(req, resp, x, rt, &replayed);
  if (!replayed)
    respond(req, resp, x, s);
  return done();
}

/* ---- PRIORITY_FALLBACK: 404 and 405 ------------------------------------------------------------ */

static int path_matches(const char *tmpl, const char *path) {
  while (*tmpl && *path) {
    if (*tmpl != '/' || *path != '/')
      return 0;
    tmpl++, path++;
    size_t tl = strcspn(tmpl, "/"), pl = strcspn(path, "/");
    if (!(tmpl[0] == '{' && pl > 0) && (tl != pl || strncmp(tmpl, path, tl)))
      return 0;
    tmpl += tl, path += pl;
  }
  return !*tmpl && (!*path || !strcmp(path, "/"));
}

/* The index in ROUTES of the operation a request addressed (method and path; a literal segment
 * before a parameter, as Ulfius matches), -1 for none. */
static int route_index(const char *method, const char *path) {
  int best = -1, best_params = 0;
  for (int i = 0; i < ROUTE_COUNT; i++)
    if (!strcmp(ROUTES[i].method, method) && path_matches(ROUTES[i].path, path)) {
      int params = 0;
      for (const char *p = ROUTES[i].path; (p = strchr(p, '{')); p++)
        params++;
      if (best < 0 || params < best_params)
        best = i, best_params = params;
    }
  return best;
}

static int on_fallback(const struct _u_request *req, struct _u_response *resp, void *cls) {
  (void)cls;
  struct ctx *x = resp->shared_data;
  char allow[64] = "";
  for (int i = 0; i < ROUTE_COUNT; i++)
    if (path_matches(ROUTES[i].path, req->url_path) && strlen(allow) + 10 < sizeof allow)
      snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", *allow ? ", " : "",
               ROUTES[i].method);
  if (*allow) {
    u_map_put(resp->map_header, "Allow", allow);
    fail(&x->call, ST_METHOD_NOT_ALLOWED, "%s is not allowed here; allowed: %s", req->http_verb, allow);
    send_problem(resp, x, ST_METHOD_NOT_ALLOWED);
  } else {
    fail(&x->call, ST_NOT_FOUND, "there is nothing at this address");
    send_problem(resp, x, ST_NOT_FOUND);
  }
  return done();
}

/* ---- start and stop ---------------------------------------------------------------------------- */

/* "/api/v1/x/{id}" -> "/api/v1/x/:id" */
static char *ulfius_format(const char *path) {
  char *out = malloc(strlen(path) + 1), *o = out;
  for (const char *p = path; *p; p++) {
    if (*p == '{') {
      *o++ = ':';
      continue;
    }
    if (*p != '}')
      *o++ = *p;
  }
  *o = '\0';
  return out;
}

/* The routes whose bodies are files: they stream to disk (upload.c). */
static int is_upload(const char *method, const char *url) { return route_has(R_UPLOAD, method, url); }

void http_print_routes(void) {
  for (int i = 0; i < ROUTE_COUNT; i++)
    printf("%s %s\n", ROUTES[i].method, ROUTES[i].path);
}

/* Each connection takes a descriptor: raise the soft limit to the hard one, and say so when
 * the connection limit still does not fit. */
static long connection_limit(const struct config *cfg) {
  struct rlimit rl;
  long want = cfg->max_connections + 64 + 2 * cfg->threads;
  if (getrlimit(RLIMIT_NOFILE, &rl))
    return cfg->max_connections;
  if (rl.rlim_cur < rl.rlim_max && (rlim_t)want > rl.rlim_cur) {
    rl.rlim_cur = (rlim_t)want < rl.rlim_max ? (rlim_t)want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl))
      y_log_message(Y_LOG_LEVEL_WARNING, "cannot raise the open-file limit: %s", strerror(errno));
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)want > rl.rlim_cur) {
    long fit = (long)rl.rlim_cur - 64 - 2 * cfg->threads;
    fit = fit < 16 ? 16 : fit;
    y_log_message(Y_LOG_LEVEL_WARNING, "the open-file limit is %lu: DUCHA_MAX_CONNECTIONS lowered from %ld to %ld",
                  (unsigned long)rl.rlim_cur, cfg->max_connections, fit);
    return fit;
  }
  return cfg->max_connections;
}

/* SIGTERM: /readyz answers 503 for the grace period while everything is still served, so a
 * load balancer stops sending; then no new connections; the requests in flight (uploads
 * arriving, downloads being sent) finish, up to the drain limit; then the rest are closed. */
static void drain(struct _u_instance *inst, const struct config *cfg) {
  service_stop();
  y_log_message(Y_LOG_LEVEL_INFO, "stopping: /readyz answers 503 for %ld s", cfg->shutdown_grace);
  struct timespec grace = {cfg->shutdown_grace, 0};
  while (nanosleep(&grace, &grace) && errno == EINTR)
    ;
  MHD_socket listener = MHD_quiesce_daemon(inst->mhd_daemon);
  if (listener != MHD_INVALID_SOCKET)
    close(listener);
  int left = conn_requests_in_flight();
  y_log_message(Y_LOG_LEVEL_INFO, "stopping: no new connections; %d requests in flight", left);
  for (long i = 0; i < cfg->drain_timeout * 100 && (left = conn_requests_in_flight()) > 0; i++)
    usleep(10000);
  if (left > 0)
    y_log_message(Y_LOG_LEVEL_WARNING, "stopping: %d requests did not finish within %ld s", left,
                  cfg->drain_timeout);
}

/* Client addresses the public view's rate limit remembers at once (about 1.6 MB). */
#define PUBLIC_CALLERS_MAX 16384

int http_serve(const struct config *cfg) {
  struct _u_instance inst;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->listen_port)};
  const char *host = strcmp(cfg->listen_host, "localhost") ? cfg->listen_host : "127.0.0.1";
  int rc = 1;
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    y_log_message(Y_LOG_LEVEL_ERROR, "DUCHA_LISTEN host %s is not an IPv4 address", cfg->listen_host);
    return 2;
  }
  if (cfg->public_rate_limit > 0 && !(public_callers = throttle_new(cfg->public_rate_limit, PUBLIC_CALLERS_MAX)))
    return 1;
  if (ulfius_init_instance(&inst, cfg->listen_port, &addr, NULL) != U_OK)
    return 1;
  inst.max_post_body_size = (size_t)cfg->body_limit + 1; /* truncated past this: answered 413 */
  inst.timeout = (unsigned)cfg->idle_timeout;

  char **formats = calloc((size_t)ROUTE_COUNT, sizeof *formats);
  ulfius_add_endpoint_by_val(&inst, "*", NULL, "*", PRIORITY_PREPARE, on_prepare, (void *)cfg);
  ulfius_add_endpoint_by_val(&inst, "*", NULL, "/api/v1/*", PRIORITY_AUTH, on_auth, NULL);
  for (int i = 0; i < ROUTE_COUNT; i++) {
    formats[i] = ulfius_format(ROUTES[i].path);
    /* Ulfius runs the routes of one priority in any order: GET /rectifications/export must come
     * before GET /rectifications/{id} */
    unsigned priority = strchr(ROUTES[i].path, '{') ? PRIORITY_APP_PARAMS : PRIORITY_APP;
    if (ulfius_add_endpoint_by_val(&inst, ROUTES[i].method, NULL, formats[i], priority, on_route,
                                   (void *)&ROUTES[i]) != U_OK) {
      y_log_message(Y_LOG_LEVEL_ERROR, "cannot register %s %s", ROUTES[i].method, ROUTES[i].path);
      goto out;
    }
  }
  ulfius_add_endpoint_by_val(&inst, "*", NULL, "*", PRIORITY_FALLBACK, on_fallback, NULL);

  struct MHD_OptionItem ops[] = {
    {MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL},
    {MHD_OPTION_CONNECTION_LIMIT, connection_limit(cfg), NULL},
    {MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout, NULL},
    {MHD_OPTION_SOCK_ADDR, 0, &addr},
    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mhd_request_completed, NULL},
    {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
    {MHD_OPTION_END, 0, NULL},
  };
  const struct conn_limits limits = {
    .request_timeout_ms = cfg->request_timeout * 1000,
    .body_min_rate = cfg->body_min_rate,
    .per_address = cfg->per_ip_connections,
    .trusted = cfg->trusted_proxies,
    .upload_limit = (uint64_t)cfg->upload_limit,
    .is_upload = is_upload,
  };
  if (conn_start(&inst, MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC, ops, &limits) != U_OK) {
    y_log_message(Y_LOG_LEVEL_ERROR, "cannot listen on %s:%u", cfg->listen_host, cfg->listen_port);
    goto out;
  }
  y_log_message(Y_LOG_LEVEL_INFO, "listening on http://%s:%u", cfg->listen_host, cfg->listen_port);

  sigset_t set;
  int sig;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigwait(&set, &sig);
  drain(&inst, cfg);
  ulfius_stop_framework(&inst);
  conn_stop();
  rc = 0;
out:
  ulfius_clean_instance(&inst);
  throttle_free(public_callers);
  public_callers = NULL;
  for (int i = 0; i < ROUTE_COUNT; i++)
    free(formats[i]);
  free(formats);
  return rc;
}
