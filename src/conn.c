#include "conn.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <ulfius.h>
#include <yder.h>

#include "net.h"
#include "problem.h"
#include "upload.h"

/* Where a connection is in its current request. */
enum phase {
  WAITING,   /* for the next request's headers (since it opened or its last response went out) */
  RECEIVING, /* the body */
  HANDLING   /* dispatched: the handler runs or the response is being sent */
};

/* One TCP connection, from libmicrohttpd's STARTED notice to its CLOSED notice. The phase
 * fields are written by the connection's own thread and read by the watchdog. */
struct conn {
  struct conn *prev, *next;   /* in conns, under lock */
  MHD_socket fd;
  char address[INET6_ADDRSTRLEN];
  int closing;                /* the watchdog shut it down (under lock) */
  int counted;                /* a request of it is counted in in_flight */
  atomic_int phase;
  atomic_llong since_ms;
  atomic_ullong received;     /* body bytes of the current request */
  struct upload_sink *upload; /* the body of an upload route's request */
};

static struct {
  struct conn_limits limits;
  MHD_AccessHandlerCallback ulfius_handler;
  int wrapping;
  pthread_mutex_t lock;
  struct conn *conns;
  atomic_int in_flight;
  atomic_int running;
  pthread_t watchdog;
  struct MHD_OptionItem *options; /* kept while the daemon runs */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Marks a request refused here (con_cls): Ulfius never saw it. */
static char refused_marker;
#define REFUSED ((void *)&refused_marker)

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int conn_requests_in_flight(void) { return atomic_load(&g.in_flight); }

static void address_text(const struct sockaddr *sa, char *out, size_t size) {
  *out = '\0';
  if (sa && sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
  else if (sa && sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
}

/* ---- per-address limit --------------------------------------------------------------------- */

/* Open connections per client address, so that an accept costs one lookup, not a walk over
 * every connection (under g.lock). */
#define ADDRESS_BUCKETS 1024

struct address_count {
  struct address_count *next;
  long open;
  char address[INET6_ADDRSTRLEN];
};

static struct address_count *address_buckets[ADDRESS_BUCKETS];

static struct address_count **address_slot(const char *address) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = address; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  struct address_count **e = &address_buckets[h % ADDRESS_BUCKETS];
  while (*e && strcmp((*e)->address, address))
    e = &(*e)->next;
  return e;
}

/* Counts one more (delta 1) or one fewer (-1) open connection from address. */
static void address_count(const char *address, int delta) {
  struct address_count **e = address_slot(address);
  if (!*e && delta > 0 && (*e = calloc(1, sizeof **e)))
    snprintf((*e)->address, sizeof (*e)->address, "%s", address);
  if (!*e)
    return;
  (*e)->open += delta;
  if ((*e)->open <= 0) {
    struct address_count *gone = *e;
    *e = gone->next;
    free(gone);
  }
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len) {
  (void)cls, (void)len;
  char address[INET6_ADDRSTRLEN];
  address_text(addr, address, sizeof address);
  if (g.limits.per_address <= 0 || proxies_has(g.limits.trusted, address))
    return MHD_YES;
  pthread_mutex_lock(&g.lock);
  struct address_count *e = *address_slot(address);
  long open = e ? e->open : 0;
  pthread_mutex_unlock(&g.lock);
  return open < g.limits.per_address ? MHD_YES : MHD_NO;
}

static void notify_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
  (void)cls;
  struct conn *c = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    c = calloc(1, sizeof *c);
    if (!c)
      return;
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *peer = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    c->fd = fd ? fd->connect_fd : MHD_INVALID_SOCKET;
    address_text(peer ? peer->client_addr : NULL, c->address, sizeof c->address);
    atomic_store(&c->phase, WAITING);
    atomic_store(&c->since_ms, now_ms());
    pthread_mutex_lock(&g.lock);
    c->next = g.conns;
    if (g.conns)
      g.conns->prev = c;
    g.conns = c;
    address_count(c->address, 1);
    pthread_mutex_unlock(&g.lock);
    *socket_context = c;
    return;
  }
  if (!c)
    return;
  /* CLOSED comes before libmicrohttpd closes the socket, so the watchdog never touches a
   * descriptor that was reused. */
  pthread_mutex_lock(&g.lock);
  if (c->prev)
    c->prev->next = c->next;
  else
    g.conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  address_count(c->address, -1);
  pthread_mutex_unlock(&g.lock);
  if (c->counted)
    atomic_fetch_sub(&g.in_flight, 1);
  upload_release(c->upload);
  free(c);
  *socket_context = NULL;
}

/* ---- the watchdog: requests must arrive whole, in time --------------------------------------- */

/* 1 when c is too slow at now (under lock). */
static int too_slow(struct conn *c, long long now) {
  long long elapsed = now - atomic_load(&c->since_ms);
  long long grace = g.limits.request_timeout_ms;
  switch (atomic_load(&c->phase)) {
  case WAITING:
    return elapsed > grace;
  case RECEIVING:
    return elapsed > grace &&
           (long long)atomic_load(&c->received) < (elapsed - grace) * g.limits.body_min_rate / 1000;
  default:
    return 0;
  }
}

static void *watchdog(void *arg) {
  (void)arg;
  while (atomic_load(&g.running)) {
    struct timespec tick = {0, 200 * 1000 * 1000};
    nanosleep(&tick, NULL);
    long long now = now_ms();
    int closed = 0;
    pthread_mutex_lock(&g.lock);
    for (struct conn *c = g.conns; c; c = c->next) {
      if (c->closing || c->fd == MHD_INVALID_SOCKET || !too_slow(c, now))
        continue;
      /* libmicrohttpd sees the end of the stream and closes the connection itself. */
      shutdown(c->fd, SHUT_RDWR);
      c->closing = 1;
      closed++;
    }
    pthread_mutex_unlock(&g.lock);
    if (closed)
      y_log_message(Y_LOG_LEVEL_WARNING, "closed %d connections that did not send their request in time", closed);
  }
  return NULL;
}

/* ---- framing: what could be read two ways is refused ------------------------------------------ */

/* What a header name may hold (RFC 9110 token). */
#define TOKEN_CHARS "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

struct headers_seen {
  int content_length, transfer_encoding, host, chunked;
  const char *bad;
  const char *end; /* where the last header's line ended (past its CR LF) */
};

static enum MHD_Result look_at_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
  (void)kind, (void)key_size;
  struct headers_seen *h = cls;
  if (!strcasecmp(key, "Content-Length"))
    h->content_length++;
  else if (!strcasecmp(key, "Host"))
    h->host++;
  else if (!strcasecmp(key, "Transfer-Encoding")) {
    h->transfer_encoding++;
    h->chunked = value && !strcasecmp(value, "chunked");
  }
  /* libmicrohttpd parses in place, ends each value where its line ended by writing NUL over the
   * CR and the LF, and gives a value's size as far as its first NUL: a value followed by
   * anything else held a NUL of its own (which would cut it short here and not in a proxy
   * before us), or its line ended in a bare LF. */
  if (value && (memchr(value, '\r', value_size) || value[value_size] || value[value_size + 1]))
    h->bad = "a header holds a CR or NUL character, or its line does not end in CRLF";
  if (!key_size || strspn(key, TOKEN_CHARS) != key_size)
    h->bad = "a header name is not a token (no spaces, nothing before the colon but the name)";
  /* Lines lie one after another in the buffer: a gap after a value means it held a NUL. */
  if (h->end && key != h->end)
    h->bad = "a header holds a NUL character";
  h->end = value ? value + value_size + 2 : NULL;
  return MHD_YES;
}

static enum MHD_Result no_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *content_type, const char *encoding, const char *data, uint64_t off,
                                size_t size) {
  (void)cls, (void)kind, (void)key, (void)filename, (void)content_type, (void)encoding, (void)data, (void)off,
      (void)size;
  return MHD_YES;
}

/* Why the request must be refused before dispatch; NULL when it may go on. */
static const char *framing_problem(struct MHD_Connection *mc, const char *method, const char *version) {
  struct headers_seen h = {0};
  MHD_get_connection_values_n(mc, MHD_HEADER_KIND, look_at_header, &h);
  /* The header block starts at the method (parsed in place) and ends past the blank line: a
   * last value shorter than its line held a NUL. */
  const union MHD_ConnectionInfo *size = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  if (!h.bad && h.end && size && method + size->header_size != h.end + 2)
    h.bad = "a header holds a NUL character";
  if (h.bad)
    return h.bad;
  if (h.content_length > 1)
    return "the request has more than one Content-Length";
  if (h.transfer_encoding && h.content_length)
    return "the request has both Content-Length and Transfer-Encoding";
  if (h.transfer_encoding > 1 || (h.transfer_encoding && !h.chunked))
    return "the only Transfer-Encoding accepted is one chunked";
  if (!strcmp(version, MHD_HTTP_VERSION_1_1) && h.host != 1)
    return "an HTTP/1.1 request needs exactly one Host header";
  const char *type = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (type && !strncasecmp(type, "multipart/form-data", 19)) {
    struct MHD_PostProcessor *pp = MHD_create_post_processor(mc, 1024, no_field, NULL);
    if (!pp)
      return "a multipart/form-data body needs a boundary";
    MHD_destroy_post_processor(pp);
  }
  return NULL;
}

/* Answers 400 problem+json, closes the connection after it and reads nothing more. */
static enum MHD_Result refuse(struct MHD_Connection *mc, void **con_cls, const char *why, const char *address) {
  const struct problem_type *t = problem_of(ST_BAD_REQUEST);
  unsigned char raw[16];
  char id[33], body[640];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    memset(raw, 0, sizeof raw);
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf(id + 2 * i, 3, "%02x", raw[i]);
  snprintf(body, sizeof body,
           "{\"type\":\"" PROBLEM_URN "%s\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\",\"request_id\":\"%s\"}",
           t->slug, t->title, t->http, why, id);
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  MHD_add_response_header(r, "X-Request-Id", id);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  enum MHD_Result ok = MHD_queue_response(mc, (unsigned)t->http, r);
  MHD_destroy_response(r);
  /* Ulfius's URI logger made its request state already: it goes, unused. */
  mhd_request_completed(NULL, mc, con_cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
  *con_cls = REFUSED;
  y_log_message(Y_LOG_LEVEL_WARNING, "refused a request from %s: %s request_id=%s", address, why, id);
  return ok;
}

/* ---- the access handler around Ulfius's ---------------------------------------------------------- */

static enum MHD_Result dispatch(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                const char *version, const char *data, size_t *size, void **con_cls) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  struct conn *c = info ? info->socket_context : NULL;
  if (*con_cls == REFUSED) {
    *size = 0;
    return MHD_YES;
  }
  if (!c)
    return MHD_NO;
  int phase = atomic_load(&c->phase);
  if (phase == WAITING) { /* the headers are in */
    atomic_store(&c->received, 0);
    atomic_store(&c->since_ms, now_ms());
    atomic_store(&c->phase, RECEIVING);
    if (!c->counted) {
      c->counted = 1;
      atomic_fetch_add(&g.in_flight, 1);
    }
    const char *why = framing_problem(mc, method, version);
    if (why)
      return refuse(mc, con_cls, why, c->address);
    if (!strcmp(method, "POST") && g.limits.is_upload && g.limits.is_upload(method, url) &&
        !(c->upload = upload_begin(mc, g.limits.upload_limit)))
      return MHD_NO;
    return g.ulfius_handler(cls, mc, url, method, version, data, size, con_cls);
  }
  if (*size) {
    atomic_fetch_add(&c->received, *size);
    if (c->upload) {
      upload_feed(c->upload, data, *size);
      *size = 0;
      return MHD_YES;
    }
    return g.ulfius_handler(cls, mc, url, method, version, data, size, con_cls);
  }
  atomic_store(&c->phase, HANDLING);
  if (!c->upload)
    return g.ulfius_handler(cls, mc, url, method, version, data, size, con_cls);
  upload_set_current(upload_finish(c->upload));
  enum MHD_Result r = g.ulfius_handler(cls, mc, url, method, version, data, size, con_cls);
  upload_set_current(NULL);
  return r;
}

static void completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  struct conn *c = info ? info->socket_context : NULL;
  if (c) {
    upload_release(c->upload);
    c->upload = NULL;
    atomic_store(&c->since_ms, now_ms());
    atomic_store(&c->phase, WAITING);
    if (c->counted) {
      c->counted = 0;
      atomic_fetch_sub(&g.in_flight, 1);
    }
  }
  if (*con_cls == REFUSED) {
    *con_cls = NULL;
    return;
  }
  mhd_request_completed(cls, mc, con_cls, toe);
}

/* Ulfius starts libmicrohttpd itself; this definition, which the dynamic linker prefers to the
 * library's for Ulfius's call, puts ducha's handler and accept policy around Ulfius's. */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...) {
  va_list ap;
  va_start(ap, dh_cls);
  if (g.wrapping) {
    g.ulfius_handler = dh;
    dh = dispatch;
    apc = accept_policy;
    apc_cls = NULL;
  }
  struct MHD_Daemon *d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
  va_end(ap);
  return d;
}

int conn_start(void *instance, unsigned int flags, struct MHD_OptionItem *ops, const struct conn_limits *limits) {
  size_t n = 0;
  while (ops[n].option != MHD_OPTION_END)
    n++;
  struct MHD_OptionItem *all = calloc(n + 3, sizeof *all);
  if (!all)
    return U_ERROR;
  for (size_t i = 0; i < n; i++) {
    all[i] = ops[i];
    if (all[i].option == MHD_OPTION_NOTIFY_COMPLETED)
      all[i].value = (intptr_t)completed;
  }
  all[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection, NULL};
  all[n++] = (struct MHD_OptionItem){MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL};
  all[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  g.limits = *limits;
  g.wrapping = 1;
  int rc = ulfius_start_framework_with_mhd_options(instance, flags, all);
  g.wrapping = 0;
  g.options = all;
  if (rc != U_OK)
    return rc;
  atomic_store(&g.running, 1);
  if (pthread_create(&g.watchdog, NULL, watchdog, NULL)) {
    atomic_store(&g.running, 0);
    return U_ERROR;
  }
  return U_OK;
}

void conn_stop(void) {
  if (atomic_exchange(&g.running, 0))
    pthread_join(g.watchdog, NULL);
  free(g.options);
  g.options = NULL;
}
