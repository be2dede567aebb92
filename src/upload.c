#include "upload.h"

#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ulfius.h>
#include <unistd.h>

/* Ulfius copies every request body into memory before the handlers run. For the upload routes
 * its access handler is wrapped: the body goes to a temporary file (multipart bodies through
 * libmicrohttpd's own post processor) and Ulfius dispatches an empty body. The wrapper is put
 * in place by the MHD_start_daemon below, which the dynamic linker prefers to the library's
 * for Ulfius's call; it forwards to MHD_start_daemon_va. */

struct pending {
  struct MHD_Connection *connection;
  struct upload up;
  struct MHD_PostProcessor *pp;
  gnutls_hash_hd_t sha;
  int started;          /* past the first call, which only announces the request */
  struct pending *next;
};

static MHD_AccessHandlerCallback ulfius_handler;
static int wrapping;
static uint64_t upload_limit;
static int (*upload_route)(const char *method, const char *url);
static struct pending *pendings;
static pthread_mutex_t pendings_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local struct upload *current;

struct upload *upload_current(void) { return current; }

static struct pending *find(struct MHD_Connection *connection, int unlink_it) {
  pthread_mutex_lock(&pendings_lock);
  struct pending **p = &pendings;
  while (*p && (*p)->connection != connection)
    p = &(*p)->next;
  struct pending *found = *p;
  if (found && unlink_it)
    *p = found->next;
  pthread_mutex_unlock(&pendings_lock);
  return found;
}

static void release(struct pending *p) {
  if (p->pp)
    MHD_destroy_post_processor(p->pp);
  if (p->sha)
    gnutls_hash_deinit(p->sha, NULL);
  if (p->up.fd >= 0)
    close(p->up.fd);
  free(p);
}

/* Takes n more bytes of the file: counted, hashed, kept up to the limit. */
static void sink(struct pending *p, const char *data, size_t n) {
  struct upload *u = &p->up;
  if (u->too_large || u->malformed)
    return;
  if (u->size + n > upload_limit) {
    u->too_large = 1;
    return;
  }
  if (u->head_len < sizeof u->head) {
    size_t take = n < sizeof u->head - u->head_len ? n : sizeof u->head - u->head_len;
    memcpy(u->head + u->head_len, data, take);
    u->head_len += take;
  }
  gnutls_hash(p->sha, data, n);
  for (size_t done = 0; done < n;) {
    ssize_t w = write(u->fd, data + done, n - done);
    if (w <= 0) {
      u->malformed = 1;
      return;
    }
    done += (size_t)w;
  }
  u->size += n;
}

/* One file part, named "file", per multipart upload; other fields are ignored. */
static enum MHD_Result part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                            const char *content_type, const char *encoding, const char *data, uint64_t off,
                            size_t size) {
  (void)kind, (void)encoding;
  struct pending *p = cls;
  if (!key || strcmp(key, "file"))
    return MHD_YES;
  if (off == 0) {
    if (p->up.filename[0] || !filename) {
      p->up.malformed = 1; /* a second file, or a "file" field that is not a file */
      return MHD_YES;
    }
    snprintf(p->up.filename, sizeof p->up.filename, "%s", *filename ? filename : "upload");
    snprintf(p->up.content_type, sizeof p->up.content_type, "%s", content_type ? content_type : "");
  }
  sink(p, data, size);
  return MHD_YES;
}

static struct pending *begin(struct MHD_Connection *connection) {
  struct pending *p = calloc(1, sizeof *p);
  const char *dir = getenv("TMPDIR");
  char path[512];
  snprintf(path, sizeof path, "%s/ducha-upload-XXXXXX", dir && *dir ? dir : "/tmp");
  p->connection = connection;
  p->up.fd = mkstemp(path);
  if (p->up.fd >= 0)
    unlink(path);
  if (p->up.fd < 0 || gnutls_hash_init(&p->sha, GNUTLS_DIG_SHA256) < 0) {
    p->up.malformed = 1;
    p->sha = NULL;
  }
  const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (type && !strncasecmp(type, "multipart/form-data", 19)) {
    p->up.multipart = 1;
    p->pp = MHD_create_post_processor(connection, 65536, part, p);
    if (!p->pp)
      p->up.malformed = 1;
  }
  pthread_mutex_lock(&pendings_lock);
  p->next = pendings;
  pendings = p;
  pthread_mutex_unlock(&pendings_lock);
  return p;
}

static enum MHD_Result wrapped(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **con_cls) {
  struct pending *p = find(connection, 0);
  if (!p && !strcmp(method, "POST") && upload_route(method, url))
    p = begin(connection);
  if (!p)
    return ulfius_handler(cls, connection, url, method, version, data, size, con_cls);
  if (!p->started) {
    p->started = 1;
    return ulfius_handler(cls, connection, url, method, version, data, size, con_cls);
  }
  if (*size) {
    if (p->pp)
      MHD_post_process(p->pp, data, *size);
    else
      sink(p, data, *size);
    *size = 0;
    return MHD_YES;
  }
  /* The body is complete: Ulfius dispatches with the upload at hand. */
  if (p->sha)
    gnutls_hash_output(p->sha, p->up.sha256);
  if (p->up.multipart && !p->up.filename[0])
    p->up.malformed = 1; /* no file part */
  current = &p->up;
  enum MHD_Result r = ulfius_handler(cls, connection, url, method, version, data, size, con_cls);
  current = NULL;
  return r;
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  struct pending *p = find(connection, 1);
  if (p)
    release(p);
  mhd_request_completed(cls, connection, con_cls, toe);
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...) {
  va_list ap;
  va_start(ap, dh_cls);
  if (wrapping) {
    ulfius_handler = dh;
    dh = wrapped;
  }
  struct MHD_Daemon *d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
  va_end(ap);
  return d;
}

int upload_start(void *instance, unsigned int flags, struct MHD_OptionItem *ops, uint64_t limit,
                 int (*is_upload)(const char *method, const char *url)) {
  for (struct MHD_OptionItem *o = ops; o->option != MHD_OPTION_END; o++)
    if (o->option == MHD_OPTION_NOTIFY_COMPLETED)
      o->value = (intptr_t)completed;
  upload_limit = limit;
  upload_route = is_upload;
  wrapping = 1;
  int rc = ulfius_start_framework_with_mhd_options(instance, flags, ops);
  wrapping = 0;
  return rc;
}
