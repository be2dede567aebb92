/* Evidence uploads stream to an anonymous temporary file through a bounded buffer, hashed as
 * they come: Ulfius keeps a request body in memory, so for the upload routes the connection
 * layer (conn.c) hands the body here instead, and Ulfius dispatches an empty one. */
#ifndef DUCHA_UPLOAD_H
#define DUCHA_UPLOAD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct upload {
  int fd;                   /* the bytes of the file, unlinked: gone when closed */
  uint64_t size;
  int too_large;            /* more than the limit came: nothing was kept past it */
  int malformed;            /* a multipart body without exactly one file part */
  int multipart;
  unsigned char sha256[32];
  unsigned char head[8192]; /* the first bytes, to recognise the type by content */
  size_t head_len;
  char filename[512];       /* from the multipart part (raw bodies: Content-Disposition) */
  char content_type[128];
};

struct upload_sink;

/* A sink for the body of the request on connection, keeping at most limit bytes. Caller frees
 * it with upload_release. */
struct upload_sink *upload_begin(struct MHD_Connection *connection, uint64_t limit);
/* Takes the next n bytes of the body. */
void upload_feed(struct upload_sink *s, const char *data, size_t n);
/* The body is complete: the upload, owned by s. */
struct upload *upload_finish(struct upload_sink *s);
void upload_release(struct upload_sink *s);

/* The upload of the request being dispatched on this thread, complete; NULL when none. */
struct call;
/* The call's upload, checked: ST_TOO_LARGE past the limit, ST_INVALID (pointer /file) when it
 * has no file or an empty one. */
status upload_received(struct call *c, const struct upload **out) __attribute__((warn_unused_result));
struct upload *upload_current(void);
void upload_set_current(struct upload *u);

#endif
