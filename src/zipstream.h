/* A zip archive written as it is read: entries stored as they are (evidence is PDF, images and
 * Office files, compressed already), each followed by a data descriptor with its CRC-32, so the
 * archive's every byte and its size are known before a single file is read, and a reader may
 * fetch each file's bytes only when the client is ready for them. Names are UTF-8 (flag bit 11).
 * No ZIP64: at most 65,535 entries and 4 GiB in all. Pure: the bytes come from a callback. */
#ifndef DUCHA_ZIPSTREAM_H
#define DUCHA_ZIPSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct zipstream;

/* Gives at most max bytes of an entry's data from offset at into out; the count, or -1. */
typedef long (*zip_data_fn)(void *entry, uint64_t at, char *out, size_t max);

struct zipstream *zipstream_new(zip_data_fn data);
/* Adds an entry of size bytes named name (UTF-8), modified at the local time "YYYY-MM-DD
 * HH:MM:SS" (NULL: 1980-01-01), whose bytes data gives for entry. -1 when the archive would be
 * too large for a zip without ZIP64, or the name is too long. */
int zipstream_add(struct zipstream *z, const char *name, uint64_t size, const char *modified, void *entry)
    __attribute__((warn_unused_result));
/* The archive's size in bytes, all entries added. */
uint64_t zipstream_size(const struct zipstream *z);
/* The archive's bytes from offset, at most max of them, in order (each byte is asked for once,
 * front to back); -1 at the end, -2 on a failure (the callback's, or a read out of order). */
long zipstream_read(struct zipstream *z, uint64_t offset, char *out, size_t max);
/* Frees the archive; each entry's pointer is the caller's. */
void zipstream_free(struct zipstream *z);
/* The entries' pointers, in order, for the caller to free. */
void *zipstream_entry(const struct zipstream *z, int i);
int zipstream_count(const struct zipstream *z);

#endif
