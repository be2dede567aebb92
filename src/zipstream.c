#include "zipstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define LOCAL_HEADER 30
#define DESCRIPTOR 16
#define CENTRAL_HEADER 46
#define END_RECORD 22
#define FLAGS 0x0808 /* bit 3: sizes and CRC in a data descriptor; bit 11: UTF-8 names */
#define MAX_ENTRIES 65535
#define MAX_NAME 1024

struct zentry {
  char *name;
  size_t name_len;
  uint64_t size;
  uint16_t time, date; /* MS-DOS */
  uint64_t offset;     /* of its local header */
  uint32_t crc;
  uint64_t done;       /* bytes of its data read so far (and in its CRC) */
  void *data;
};

struct zipstream {
  zip_data_fn data;
  struct zentry *e;
  int n, cap;
  uint64_t size;       /* all the entries' parts: where the central directory starts */
  unsigned char *tail; /* the central directory and the end record, made when first asked for */
  size_t tail_len;
};

struct zipstream *zipstream_new(zip_data_fn data) {
  struct zipstream *z = calloc(1, sizeof *z);
  if (z)
    z->data = data;
  return z;
}

static uint64_t tail_size(const struct zipstream *z) {
  uint64_t n = END_RECORD;
  for (int i = 0; i < z->n; i++)
    n += CENTRAL_HEADER + z->e[i].name_len;
  return n;
}

int zipstream_add(struct zipstream *z, const char *name, uint64_t size, const char *modified, void *entry) {
  size_t len = strlen(name);
  uint64_t part = LOCAL_HEADER + len + size + DESCRIPTOR;
  if (len == 0 || len > MAX_NAME || z->n >= MAX_ENTRIES || z->tail ||
      z->size + part + tail_size(z) + CENTRAL_HEADER + len > 0xFFFFFFFFu)
    return -1;
  if (z->n == z->cap) {
    int cap = z->cap ? 2 * z->cap : 64;
    struct zentry *e = realloc(z->e, (size_t)cap * sizeof *e);
    if (!e)
      return -1;
    z->e = e;
    z->cap = cap;
  }
  int y = 1980, mo = 1, d = 1, h = 0, mi = 0, s = 0;
  if (modified)
    sscanf(modified, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s);
  if (y < 1980 || y > 2107)
    y = 1980, mo = 1, d = 1, h = mi = s = 0;
  struct zentry *e = &z->e[z->n];
  *e = (struct zentry){.name = strdup(name), .name_len = len, .size = size, .offset = z->size, .data = entry,
                       .crc = (uint32_t)crc32(0L, Z_NULL, 0)};
  if (!e->name)
    return -1;
  e->time = (uint16_t)(h << 11 | mi << 5 | s / 2);
  e->date = (uint16_t)((y - 1980) << 9 | mo << 5 | d);
  z->size += part;
  z->n++;
  return 0;
}

uint64_t zipstream_size(const struct zipstream *z) { return z->size + tail_size(z); }
int zipstream_count(const struct zipstream *z) { return z->n; }
void *zipstream_entry(const struct zipstream *z, int i) { return i >= 0 && i < z->n ? z->e[i].data : NULL; }

void zipstream_free(struct zipstream *z) {
  if (!z)
    return;
  for (int i = 0; i < z->n; i++)
    free(z->e[i].name);
  free(z->e);
  free(z->tail);
  free(z);
}

static unsigned char *put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v & 0xFF), p[1] = (unsigned char)(v >> 8 & 0xFF);
  return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v) {
  return put16(put16(p, v & 0xFFFF), v >> 16);
}

/* The fields the local and central headers share, from "version needed" to the name's length. */
static unsigned char *common(unsigned char *p, const struct zentry *e, int central) {
  p = put16(p, 20); /* version needed: 2.0 */
  p = put16(p, FLAGS);
  p = put16(p, 0);  /* stored */
  p = put16(p, e->time);
  p = put16(p, e->date);
  p = put32(p, central ? e->crc : 0);
  p = put32(p, central ? (uint32_t)e->size : 0);
  p = put32(p, central ? (uint32_t)e->size : 0);
  return put16(p, (unsigned)e->name_len);
}

static void local_header(unsigned char *p, const struct zentry *e) {
  p = common(put32(p, 0x04034b50), e, 0);
  p = put16(p, 0); /* no extra field */
  memcpy(p, e->name, e->name_len);
}

static void descriptor(unsigned char *p, const struct zentry *e) {
  put32(put32(put32(put32(p, 0x08074b50), e->crc), (uint32_t)e->size), (uint32_t)e->size);
}

/* The central directory and the end record; every entry's CRC must be known. */
static int make_tail(struct zipstream *z) {
  z->tail_len = (size_t)tail_size(z);
  unsigned char *p = z->tail = malloc(z->tail_len);
  if (!p)
    return -1;
  for (int i = 0; i < z->n; i++) {
    const struct zentry *e = &z->e[i];
    if (e->done != e->size)
      return -1;
    p = put16(put32(p, 0x02014b50), 3 << 8 | 20); /* made by: Unix, 2.0 */
    p = common(p, e, 1);
    p = put16(put16(put16(put16(p, 0), 0), 0), 0); /* extra, comment, disk, internal attributes */
    p = put32(p, 0100644u << 16);                   /* a regular file, rw-r--r-- */
    p = put32(p, (uint32_t)e->offset);
    memcpy(p, e->name, e->name_len);
    p += e->name_len;
  }
  p = put32(p, 0x06054b50);
  p = put16(put16(p, 0), 0); /* this disk, the directory's disk */
  p = put16(put16(p, (unsigned)z->n), (unsigned)z->n);
  p = put32(p, (uint32_t)(z->tail_len - END_RECORD));
  p = put32(p, (uint32_t)z->size);
  put16(p, 0); /* no comment */
  return 0;
}

/* Copies part[from..) (a header made on the spot) into out. */
static long copy_part(const unsigned char *part, size_t len, uint64_t from, char *out, size_t max) {
  size_t n = len - (size_t)from < max ? len - (size_t)from : max;
  memcpy(out, part + from, n);
  return (long)n;
}

long zipstream_read(struct zipstream *z, uint64_t offset, char *out, size_t max) {
  if (offset >= zipstream_size(z))
    return -1;
  if (offset >= z->size) {
    if (!z->tail && make_tail(z))
      return -2;
    return copy_part(z->tail, z->tail_len, offset - z->size, out, max);
  }
  int lo = 0, hi = z->n - 1; /* the entry whose parts hold offset */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (z->e[mid].offset <= offset)
      lo = mid;
    else
      hi = mid - 1;
  }
  struct zentry *e = &z->e[lo];
  uint64_t at = offset - e->offset, header = LOCAL_HEADER + e->name_len;
  unsigned char part[LOCAL_HEADER + MAX_NAME];
  if (at < header) {
    local_header(part, e);
    return copy_part(part, (size_t)header, at, out, max);
  }
  at -= header;
  if (at >= e->size) {
    if (e->done != e->size)
      return -2;
    descriptor(part, e);
    return copy_part(part, DESCRIPTOR, at - e->size, out, max);
  }
  if (at != e->done)
    return -2; /* out of order: the CRC would be wrong */
  size_t want = e->size - at < max ? (size_t)(e->size - at) : max;
  long n = z->data(e->data, at, out, want);
  if (n <= 0 || (size_t)n > want)
    return -2;
  e->crc = (uint32_t)crc32(e->crc, (const unsigned char *)out, (uInt)n);
  e->done += (uint64_t)n;
  return n;
}
