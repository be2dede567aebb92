/* What a file is, judged by its first bytes and not by its name: the evidence types ducha
 * accepts (PDF, Office, images, UTF-8 text). */
#ifndef DUCHA_SNIFF_H
#define DUCHA_SNIFF_H

#include <stddef.h>

/* The content type of a file starting with head[0..len) (len is the whole file when it is
 * shorter than the head), or NULL when it is none of the accepted kinds. filename (may be
 * NULL) only tells the legacy Office formats apart, which share one container. */
const char *sniff_type(const unsigned char *head, size_t len, const char *filename);

#endif
