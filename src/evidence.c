/* 佐证材料: evidence files on a rectification, one of its progress updates, or an inspection
 * item (what the 材料提供部门 supply). The bytes are kept in the database in chunks, in the
 * same transaction and backup as the records that point at them.
 *
 * Where its rules live: who may upload to a rectification and when, RECTIFICATION_WORK
 * (resources.h, shared with progress.c); to an item, TARGET_ITEM below; the roles, routes.c;
 * what a file may be (its type by content, its size), upload.c and sniff.c; who reads it, the
 * reader of what it belongs to (VISIBLE_E below). */
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yder.h>

#include "audit.h"
#include "disposition.h"
#include "resources.h"
#include "sniff.h"
#include "sheet.h"
#include "text.h"
#include "upload.h"
#include "zipstream.h"

#define CHUNK 262144

#define JSON_OF_E                                                                              \
  "json_build_object('id', e.id, 'rectification_id', e.rectification_id, 'progress_id', e.progress_id," \
  " 'item_id', e.item_id, 'filename', e.filename, 'content_type', e.content_type, 'size', e.size," \
  " 'sha256', encode(e.sha256, 'hex'), 'uploaded_by', " USER_REF("u") ", 'uploaded_at', e.uploaded_at)"
#define FROM_E " FROM evidence e LEFT JOIN users u ON u.id = e.uploaded_by"
/* Evidence is read by whoever may read what it belongs to. */
#define VISIBLE_E                                                                              \
  "CASE WHEN e.rectification_id IS NOT NULL THEN " RECTIFICATION_VISIBLE("e.rectification_id") \
  " ELSE EXISTS (SELECT 1 FROM items it JOIN inspections i ON i.id = it.inspection_id"         \
  "   WHERE it.id = e.item_id AND ducha_in_scope(i.target_department_id)) END"

const struct resource EVIDENCE = {
  .name = "evidence",
  .sql_get = "SELECT 1, " JSON_OF_E FROM_E " WHERE e.id = $1 AND " VISIBLE_E,
};

const struct resource EVIDENCE_OF_RECTIFICATION = {
  .name = "evidence",
  .list = {
    .sql_parent = RECTIFICATION_VISIBLE_SQL,
    .sql_page = "SELECT e.id, " JSON_OF_E FROM_E " WHERE e.rectification_id = $1"
                " AND ($2::bigint IS NULL OR e.id > $2) ORDER BY e.id LIMIT $3",
    .sql_count = "SELECT count(*) FROM evidence e WHERE e.rectification_id = $1",
  },
};

const struct resource EVIDENCE_OF_ITEM = {
  .name = "evidence",
  .list = {
    .sql_parent = "SELECT 1 FROM items it JOIN inspections i ON i.id = it.inspection_id"
                  " WHERE it.id = $1 AND ducha_in_scope(i.target_department_id)",
    .sql_page = "SELECT e.id, " JSON_OF_E FROM_E " WHERE e.item_id = $1"
                " AND ($2::bigint IS NULL OR e.id > $2) ORDER BY e.id LIMIT $3",
    .sql_count = "SELECT count(*) FROM evidence e WHERE e.item_id = $1",
  },
};

const struct qparam EVIDENCE_UPLOAD_PARAMS[] = {
  {"progress_id", Q_ID, NULL},
  {0},
};

/* Where the file may go: a rectification its caller may work on now (RECTIFICATION_WORK,
 * resources.h), optionally to one of its progress updates; or an item of an inspection
 * that has not closed. Checked twice: without a lock before the bytes are stored, and again
 * under a share lock at the end (the _LOCKED forms), so that uploads to one rectification do
 * not wait for each other while a state change still cannot slip in before the commit. */
#define TARGET_RECTIFICATION(lock)                                                             \
  RECTIFICATION_WORK("  WHEN $2::bigint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM progress_updates g" \
                     "    WHERE g.id = $2 AND g.rectification_id = x.id) THEN 'no_progress'", lock)
#define TARGET_ITEM                                                                            \
  "SELECT CASE WHEN i.status = 'closed' THEN 'inspection closed' ELSE 'ok' END"                \
  " FROM items it JOIN inspections i ON i.id = it.inspection_id"                               \
  " WHERE it.id = $1 AND ducha_in_scope(i.target_department_id) AND $2::bigint IS NULL"

static const char *SQL_TARGET_RECTIFICATION = TARGET_RECTIFICATION("");
static const char *SQL_TARGET_RECTIFICATION_LOCKED = TARGET_RECTIFICATION(" FOR SHARE OF x");
static const char *SQL_TARGET_ITEM = TARGET_ITEM;
static const char *SQL_TARGET_ITEM_LOCKED = TARGET_ITEM " FOR SHARE OF i";

static const char *SQL_INSERT =
    "INSERT INTO evidence (rectification_id, progress_id, item_id, filename, content_type, size, sha256, uploaded_by)"
    " VALUES ($1, $2, $3, $4, $5, $6, decode($7, 'hex'), $8) RETURNING id";
static const char *SQL_CHUNK = "INSERT INTO evidence_chunks (evidence_id, seq, data) VALUES ($1, $2, $3::bytea)";

/* Copies the uploaded file into the database, CHUNK bytes at a time. */
static status store_bytes(struct call *c, const struct upload *u, int64_t id) {
  char *buf = malloc(CHUNK), *hex = malloc(2 * CHUNK + 3);
  struct num eid = num(id);
  status s = ST_OK;
  if (lseek(u->fd, 0, SEEK_SET) != 0)
    s = fail(c, ST_INTERNAL, "the upload could not be read back");
  for (int seq = 0; s == ST_OK; seq++) {
    ssize_t n = read(u->fd, buf, CHUNK);
    if (n < 0)
      s = fail(c, ST_INTERNAL, "the upload could not be read back");
    if (n <= 0)
      break;
    db_bytea_text(buf, (size_t)n, hex);
    struct num q = num(seq);
    const char *params[] = {eid.s, q.s, hex};
    if ((s = db_exec(c->db, NULL, SQL_CHUNK, 3, params)) != ST_OK)
      s = resource_db_failure(c, s);
  }
  free(buf);
  free(hex);
  return s;
}

/* Whether the file may go to the item or rectification target now; locked: under a share
 * lock on it, held to the commit. */
static status check_target(struct call *c, int on_item, int locked, const char *target, const char *progress) {
  const char *params[] = {target, progress};
  const char *sql = on_item ? (locked ? SQL_TARGET_ITEM_LOCKED : SQL_TARGET_ITEM)
                            : (locked ? SQL_TARGET_RECTIFICATION_LOCKED : SQL_TARGET_RECTIFICATION);
  char verdict[40];
  status s = resource_value(c, on_item ? "item" : "rectification", verdict, sizeof verdict, sql, 2, params);
  if (s != ST_OK)
    return s;
  if (!strcmp(verdict, "no_progress"))
    return invalid(c, "/query/progress_id", "is not a progress update of this rectification");
  if (strcmp(verdict, "ok")) {
    c->allowed = json_array();
    return fail(c, ST_BAD_TRANSITION, "evidence cannot be added now (%s)", verdict);
  }
  return ST_OK;
}

status evidence_upload(struct call *c) {
  const struct upload *u;
  int on_item = strstr(c->route->path, "/items/") != NULL;
  status s = upload_received(c, &u);
  if (s != ST_OK)
    return s;
  char name[512] = "";
  if (u->multipart) {
    snprintf(name, sizeof name, "%s", u->filename);
    filename_clean(name, sizeof name);
  } else if (!disposition_filename(c->content_disposition, name, sizeof name)) {
    return invalid(c, "/headers/Content-Disposition", "give the file name: attachment; filename=\"…\"");
  }
  const char *type = sniff_type(u->head, u->head_len, name);
  if (!type)
    return fail(c, ST_UNSUPPORTED_MEDIA, "the file is not PDF, an Office document, an image or UTF-8 text");

  struct num target = num(c->id), user = num(c->who.user_id);
  const char *progress = on_item ? NULL : c->query.values[0];
  s = check_target(c, on_item, 0, target.s, progress);
  if (s != ST_OK)
    return s;

  char sha[65], size[24];
  for (int i = 0; i < 32; i++)
    snprintf(sha + 2 * i, 3, "%02x", u->sha256[i]);
  snprintf(size, sizeof size, "%llu", (unsigned long long)u->size);
  const char *params[] = {on_item ? NULL : target.s, progress, on_item ? target.s : NULL, name, type, size, sha, user.s};
  char id[24];
  if ((s = db_value(c->db, id, sizeof id, SQL_INSERT, 8, params)) != ST_OK)
    return resource_db_failure(c, s);
  int64_t eid = strtoll(id, NULL, 10);
  if ((s = store_bytes(c, u, eid)) != ST_OK || (s = check_target(c, on_item, 1, target.s, progress)) != ST_OK ||
      (s = resource_load(c, &EVIDENCE, eid)) != ST_OK)
    return s;
  snprintf(c->location, sizeof c->location, "/api/v1/evidence/%lld", (long long)eid);
  return audit_write(c, "create", "evidence", eid, NULL, c->result);
}

/* ---- download: each piece fetched through the pool when the client is ready for it ------------ */

/* A slice of one stored chunk: a slow reader holds no database connection between pieces, and
 * each piece has the statement deadline like every other statement. */
static const char *SQL_PIECE =
    "SELECT substring(data FROM $3 FOR $4) FROM evidence_chunks WHERE evidence_id = $1 AND seq = $2";

/* Up to max bytes of evidence id's content from offset, read through the pool; -2 when the
 * database does not give them. */
static long evidence_piece(const char *id, uint64_t offset, uint64_t size, char *out, size_t max) {
  uint64_t seq = offset / CHUNK, at = offset % CHUNK;
  size_t want = max < CHUNK - at ? max : (size_t)(CHUNK - at);
  struct num q = num((int64_t)seq), from = num((int64_t)at + 1), count = num((int64_t)want);
  const char *params[] = {id, q.s, from.s, count.s};
  db_conn *db;
  size_t got = 0;
  status s = db_acquire(&db);
  if (s == ST_OK)
    s = db_bytes(db, out, want, &got, SQL_PIECE, 4, params);
  db_release(db);
  if (s != ST_OK || got == 0) {
    y_log_message(Y_LOG_LEVEL_WARNING, "download of evidence %s stopped at byte %llu of %llu: %s", id,
                  (unsigned long long)offset, (unsigned long long)size,
                  s == ST_OK ? "the stored file is shorter" : "the database did not answer");
    return -2; /* MHD_CONTENT_READER_END_WITH_ERROR: the client sees the connection close */
  }
  return (long)got;
}

struct download {
  char id[24];
  uint64_t size;
};

static long download_read(void *data, uint64_t offset, char *out, size_t max) {
  struct download *d = data;
  if (offset >= d->size)
    return -1; /* MHD_CONTENT_READER_END_OF_STREAM */
  return evidence_piece(d->id, offset, d->size, out, max);
}

status evidence_content(struct call *c) {
  status s = resource_load(c, &EVIDENCE, c->id);
  if (s != ST_OK)
    return s;
  json_t *e = c->result;
  struct download *d = calloc(1, sizeof *d);
  if (!d)
    return fail(c, ST_INTERNAL, "out of memory");
  snprintf(d->id, sizeof d->id, "%lld", (long long)c->id);
  d->size = (uint64_t)json_integer_value(json_object_get(e, "size"));
  c->stream_read = download_read;
  c->stream_free = free;
  c->stream_data = d;
  c->stream_size = d->size;
  c->stream_type = json_string_value(json_object_get(e, "content_type"));
  snprintf(c->etag_text, sizeof c->etag_text, "\"%s\"", json_string_value(json_object_get(e, "sha256")));
  disposition_attachment(json_string_value(json_object_get(e, "filename")), c->disposition, sizeof c->disposition);
  return ST_OK;
}

/* ---- 归档: every evidence file of an inspection in one zip, streamed ----------------------------- */

/* The inspection's evidence the caller may read, its rows' and measures' first: where each sits
 * (row, problem.measure) and what the manifest says of it. */
static const char *SQL_ARCHIVE =
    "SELECT e.id, e.filename, e.content_type, e.size, encode(e.sha256, 'hex'), it.seq,"
    " CASE WHEN r.id IS NULL THEN '' ELSE r.problem_ordinal || '.' || r.ordinal END, coalesce(e.rectification_id::text, ''),"
    " coalesce(r.measure, ''), coalesce(u.username, ''),"
    " to_char(e.uploaded_at AT TIME ZONE current_setting('ducha.timezone'), 'YYYY-MM-DD HH24:MI:SS')"
    " FROM evidence e LEFT JOIN rectification_rows r ON r.id = e.rectification_id"
    " JOIN items it ON it.id = coalesce(e.item_id, r.item_id) LEFT JOIN users u ON u.id = e.uploaded_by"
    " WHERE it.inspection_id = $1 AND " VISIBLE_E
    " ORDER BY it.seq, r.problem_ordinal NULLS FIRST, r.ordinal NULLS FIRST, e.id";
static const char *SQL_ARCHIVE_OF =
    "SELECT d.name || '-' || i.inspected_on, to_char(now() AT TIME ZONE current_setting('ducha.timezone'),"
    " 'YYYY-MM-DD HH24:MI:SS') FROM inspections i JOIN departments d ON d.id = i.target_department_id"
    " WHERE i.id = $1 AND ducha_in_scope(i.target_department_id)";

/* One file of the archive: the manifest (text) or a piece of evidence (id), hashed as it is sent
 * and checked against the SHA-256 stored at upload. */
struct member {
  char id[24];
  char sha256[65];
  uint64_t size;
  gnutls_hash_hd_t hash;
  char *text;
};

static long member_read(void *data, uint64_t at, char *out, size_t max) {
  struct member *m = data;
  if (m->text) {
    memcpy(out, m->text + at, max);
    return (long)max;
  }
  long n = evidence_piece(m->id, at, m->size, out, max);
  if (n > 0 && m->hash)
    gnutls_hash(m->hash, out, (size_t)n);
  if (n > 0 && at + (uint64_t)n == m->size && m->hash) {
    unsigned char digest[32];
    char hex[65];
    gnutls_hash_output(m->hash, digest);
    for (int i = 0; i < 32; i++)
      snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    if (strcmp(hex, m->sha256)) {
      y_log_message(Y_LOG_LEVEL_ERROR, "evidence %s no longer matches its SHA-256: the archive is cut short", m->id);
      return -2;
    }
  }
  return n;
}

static long archive_read(void *data, uint64_t offset, char *out, size_t max) {
  return zipstream_read(data, offset, out, max);
}

static void archive_free(void *data) {
  struct zipstream *z = data;
  for (int i = 0; i < zipstream_count(z); i++) {
    struct member *m = zipstream_entry(z, i);
    if (m->hash)
      gnutls_hash_deinit(m->hash, NULL);
    free(m->text);
    free(m);
  }
  zipstream_free(z);
}

static struct member *member_new(const char *id, const char *sha256, uint64_t size) {
  struct member *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  snprintf(m->id, sizeof m->id, "%s", id);
  snprintf(m->sha256, sizeof m->sha256, "%s", sha256);
  m->size = size;
  if (*sha256 && gnutls_hash_init(&m->hash, GNUTLS_DIG_SHA256) < 0)
    m->hash = NULL; /* not checked, still sent */
  return m;
}

/* The manifest (manifest.csv, UTF-8 with a BOM): one line per file of the archive. */
static char *manifest(PGresult *r, char **paths) {
  static const char *const head[] = {"文件", "证据编号", "序号", "措施序号", "整改措施编号", "整改措施", "原文件名",
                                     "类型", "字节", "SHA-256", "上传者", "上传时间"};
  struct text t = {0};
  text_put(&t, "\xEF\xBB\xBF");
  csv_record(&t, head, 12);
  for (int i = 0; i < PQntuples(r); i++) {
    const char *cells[] = {paths[i], PQgetvalue(r, i, 0), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6), PQgetvalue(r, i, 7),
                           PQgetvalue(r, i, 8), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                           PQgetvalue(r, i, 4), PQgetvalue(r, i, 9), PQgetvalue(r, i, 10)};
    csv_record(&t, cells, 12);
  }
  return text_take(&t, NULL);
}

status evidence_archive(struct call *c) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  char of[300], now[24], name[400];
  PGresult *r;
  status s = resource_row(c, "inspection", &r, SQL_ARCHIVE_OF, 1, params);
  if (s != ST_OK)
    return s;
  snprintf(of, sizeof of, "%s", PQgetvalue(r, 0, 0));
  snprintf(now, sizeof now, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  if ((s = db_exec(c->db, &r, SQL_ARCHIVE, 1, params)) != ST_OK)
    return resource_db_failure(c, s);
  int n = PQntuples(r);
  char **paths = calloc((size_t)n + 1, sizeof *paths);
  struct zipstream *z = zipstream_new(member_read);
  int bad = !paths || !z;
  for (int i = 0; i < n && !bad; i++) {
    const char *where = PQgetvalue(r, i, 6);
    snprintf(name, sizeof name, "%02d/%s/%s-%s", atoi(PQgetvalue(r, i, 5)), *where ? where : "材料", PQgetvalue(r, i, 0),
             PQgetvalue(r, i, 1));
    bad = !(paths[i] = strdup(name));
  }
  struct member *list = bad ? NULL : member_new("", "", 0);
  if (list && !(list->text = manifest(r, paths)))
    bad = 1;
  if (list) {
    list->size = strlen(list->text ? list->text : "");
    if (zipstream_add(z, "manifest.csv", list->size, now, list)) {
      free(list->text);
      free(list);
      bad = 1;
    }
  }
  for (int i = 0; i < n && !bad; i++) {
    struct member *m = member_new(PQgetvalue(r, i, 0), PQgetvalue(r, i, 4), strtoull(PQgetvalue(r, i, 3), NULL, 10));
    if (!m || zipstream_add(z, paths[i], m->size, PQgetvalue(r, i, 10), m)) {
      if (m && m->hash)
        gnutls_hash_deinit(m->hash, NULL);
      free(m);
      bad = 2;
    }
  }
  for (int i = 0; paths && i < n; i++)
    free(paths[i]);
  free(paths);
  PQclear(r);
  if (bad) {
    if (z)
      archive_free(z);
    return bad == 2 ? fail(c, ST_CONFLICT, "the evidence is more than one zip without ZIP64 holds (4 GiB, 65,535 files):"
                                           " download the files one by one")
                    : fail(c, ST_INTERNAL, "out of memory");
  }
  c->stream_read = archive_read;
  c->stream_free = archive_free;
  c->stream_data = z;
  c->stream_size = zipstream_size(z);
  c->stream_type = "application/zip";
  snprintf(name, sizeof name, "%s-佐证材料.zip", of);
  disposition_attachment(name, c->disposition, sizeof c->disposition);
  return ST_OK;
}
