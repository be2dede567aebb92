#include "upload.h"

#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"

/* Raw bodies go to the file as they come; multipart bodies through libmicrohttpd's own post
 * processor, which hands over the one part named "file". */
struct upload_sink {
  struct upload up;
  struct MHD_PostProcessor *pp;
  gnutls_hash_hd_t sha;
  uint64_t limit;
};

static _Thread_local struct upload *current;

struct upload *upload_current(void) { return current; }
void upload_set_current(struct upload *u) { current = u; }

void upload_release(struct upload_sink *s) {
  if (!s)
    return;
  if (s->pp)
    MHD_destroy_post_processor(s->pp);
  if (s->sha)
    gnutls_hash_deinit(s->sha, NULL);
  if (s->up.fd >= 0)
    close(s->up.fd);
  free(s);
}

/* Takes n more bytes of the file: counted, hashed, kept up to the limit. */
static void sink(struct upload_sink *s, const char *data, size_t n) {
  struct upload *u = &s->up;
  if (u->too_large || u->malformed)
    return;
  if (u->size + n > s->limit) {
    u->too_large = 1;
    return;
  }
  if (u->head_len < sizeof u->head) {
    size_t take = n < sizeof u->head - u->head_len ? n : sizeof u->head - u->head_len;
    memcpy(u->head + u->head_len, data, take);
    u->head_len += take;
  }
  gnutls_hash(s->sha, data, n);
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
  struct upload_sink *s = cls;
  if (!key || strcmp(key, "file"))
    return MHD_YES;
  if (off == 0) {
    if (s->up.filename[0] || !filename) {
      s->up.malformed = 1; /* a second file, or a "file" field that is not a file */
      return MHD_YES;
    }
    snprintf(s->up.filename, sizeof s->up.filename, "%s", *filename ? filename : "upload");
    snprintf(s->up.content_type, sizeof s->up.content_type, "%s", content_type ? content_type : "");
  }
  sink(s, data, size);
  return MHD_YES;
}

struct upload_sink *upload_begin(struct MHD_Connection *connection, uint64_t limit) {
  struct upload_sink *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  const char *dir = getenv("TMPDIR");
  char path[512];
  snprintf(path, sizeof path, "%s/ducha-upload-XXXXXX", dir && *dir ? dir : "/tmp");
  s->limit = limit;
  s->up.fd = mkstemp(path);
  if (s->up.fd >= 0)
    unlink(path);
  if (s->up.fd < 0 || gnutls_hash_init(&s->sha, GNUTLS_DIG_SHA256) < 0) {
    s->up.malformed = 1;
    s->sha = NULL;
  }
  const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (type && !strncasecmp(type, "multipart/form-data", 19)) {
    s->up.multipart = 1;
    s->pp = MHD_create_post_processor(connection, 65536, part, s);
    if (!s->pp)
      s->up.malformed = 1;
  }
  return s;
}

void upload_feed(struct upload_sink *s, const char *data, size_t n) {
  if (s->pp)
    MHD_post_process(s->pp, data, n);
  else
    sink(s, data, n);
}

struct upload *upload_finish(struct upload_sink *s) {
  if (s->sha) {
    gnutls_hash_output(s->sha, s->up.sha256);
    gnutls_hash_deinit(s->sha, NULL);
    s->sha = NULL;
  }
  if (s->up.multipart && !s->up.filename[0])
    s->up.malformed = 1; /* no file part */
  return &s->up;
}

status upload_received(struct call *c, const struct upload **out) {
  const struct upload *u = *out = upload_current();
  if (!u)
    return fail(c, ST_INTERNAL, "the upload did not arrive");
  if (u->too_large)
    return fail(c, ST_TOO_LARGE, "the file is larger than %ld bytes", c->cfg->upload_limit);
  if (u->malformed)
    return invalid(c, "/file", "send one file: a multipart part named \"file\", or the raw bytes");
  if (u->size == 0)
    return invalid(c, "/file", "the file is empty");
  return ST_OK;
}
