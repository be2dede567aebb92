/* Evidence uploads stream to an anonymous temporary file through a bounded buffer, hashed as
 * they come: Ulfius keeps a request body in memory, so for the upload routes the body is taken
 * before Ulfius sees it (see upload.c). */
#ifndef DUCHA_UPLOAD_H
#define DUCHA_UPLOAD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

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

/* Starts the daemon with the upload wrapper around Ulfius's handler; same as
 * ulfius_start_framework_with_mhd_options otherwise. paths: the upload routes' templates. */
int upload_start(void *ulfius_instance, unsigned int flags, struct MHD_OptionItem *ops, uint64_t limit,
                 int (*is_upload)(const char *method, const char *url));
/* The upload of the request being dispatched on this thread, complete; NULL when none. */
struct upload *upload_current(void);

#endif
