/* 佐证材料: evidence files on a rectification, one of its progress updates, or an inspection
 * item (what the 材料提供部门 supply). The bytes are kept in the database in chunks, in the
 * same transaction and backup as the records that point at them. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "disposition.h"
#include "resources.h"
#include "sniff.h"
#include "upload.h"

#define CHUNK 262144

#define JSON_OF_E                                                                              \
  "json_build_object('id', e.id, 'rectification_id', e.rectification_id, 'progress_id', e.progress_id," \
  " 'item_id', e.item_id, 'filename', e.filename, 'content_type', e.content_type, 'size', e.size," \
  " 'sha256', encode(e.sha256, 'hex'), 'uploaded_by', " USER_REF("u") ", 'uploaded_at', e.uploaded_at)"
#define FROM_E " FROM evidence e LEFT JOIN users u ON u.id = e.uploaded_by"
/* Evidence is read by whoever may read what it belongs to. */
#define VISIBLE_E                                                                              \
  "CASE WHEN e.rectification_id IS NOT NULL THEN EXISTS (" RECTIFICATION_VISIBLE_SQL_OF("e.rectification_id") ")" \
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

/* Where the file may go: a rectification being worked on (by its unit, or staff) of a
 * submitted inspection, optionally one of its progress updates; or an item of an inspection
 * that has not closed. */
static const char *SQL_TARGET_RECTIFICATION =
    "SELECT CASE WHEN i.status NOT IN ('submitted', 'closed') THEN 'inspection ' || i.status"
    "  WHEN r.status NOT IN ('pending', 'in_progress') THEN r.status"
    "  WHEN $2::bigint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM progress_updates g"
    "    WHERE g.id = $2 AND g.rectification_id = r.id) THEN 'no_progress' ELSE 'ok' END"
    " FROM rectifications r JOIN problems p ON p.id = r.problem_id JOIN items it ON it.id = p.item_id"
    " JOIN inspections i ON i.id = it.inspection_id"
    " WHERE r.id = $1 AND ducha_rectification_visible(r.id, r.responsible_department_id, i.target_department_id)"
    "   AND (ducha_scope() IS NULL OR r.responsible_department_id = ANY (ducha_scope()))"
    " FOR UPDATE OF r";
static const char *SQL_TARGET_ITEM =
    "SELECT CASE WHEN i.status = 'closed' THEN 'inspection closed' ELSE 'ok' END"
    " FROM items it JOIN inspections i ON i.id = it.inspection_id"
    " WHERE it.id = $1 AND ducha_in_scope(i.target_department_id) AND $2::bigint IS NULL";

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

status evidence_upload(struct call *c) {
  const struct upload *u = upload_current();
  int on_item = strstr(c->route->path, "/items/") != NULL;
  if (!u)
    return fail(c, ST_INTERNAL, "the upload did not arrive");
  if (u->too_large)
    return fail(c, ST_TOO_LARGE, "the file is larger than %ld bytes", c->cfg->upload_limit);
  if (u->malformed)
    return invalid(c, "/file", "send one file: a multipart part named \"file\", or the raw bytes");
  if (u->size == 0)
    return invalid(c, "/file", "the file is empty");
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
  const char *check[] = {target.s, progress};
  char verdict[40];
  status s = db_value(c->db, verdict, sizeof verdict, on_item ? SQL_TARGET_ITEM : SQL_TARGET_RECTIFICATION, 2, check);
  if (s == ST_NOT_FOUND)
    return fail(c, s, "no such %s", on_item ? "item" : "rectification");
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(verdict, "no_progress"))
    return invalid(c, "/query/progress_id", "is not a progress update of this rectification");
  if (strcmp(verdict, "ok")) {
    c->allowed = json_array();
    return fail(c, ST_BAD_TRANSITION, "evidence cannot be added now (%s)", verdict);
  }

  char sha[65], size[24];
  for (int i = 0; i < 32; i++)
    snprintf(sha + 2 * i, 3, "%02x", u->sha256[i]);
  snprintf(size, sizeof size, "%llu", (unsigned long long)u->size);
  const char *params[] = {on_item ? NULL : target.s, progress, on_item ? target.s : NULL, name, type, size, sha, user.s};
  char id[24];
  if ((s = db_value(c->db, id, sizeof id, SQL_INSERT, 8, params)) != ST_OK)
    return resource_db_failure(c, s);
  int64_t eid = strtoll(id, NULL, 10);
  if ((s = store_bytes(c, u, eid)) != ST_OK || (s = resource_load(c, &EVIDENCE, eid)) != ST_OK)
    return s;
  snprintf(c->location, sizeof c->location, "/api/v1/evidence/%lld", (long long)eid);
  return audit_write(c, "create", "evidence", eid, NULL, c->result);
}

/* ---- download: streamed chunk by chunk on a connection of its own ------------------------------ */

struct download {
  db_conn *db;
  char id[24];
  PGresult *chunk; /* the chunk last read, binary */
  int seq;
};

static long download_read(void *data, uint64_t offset, char *out, size_t max) {
  struct download *d = data;
  int seq = (int)(offset / CHUNK);
  if (!d->chunk || d->seq != seq) {
    PQclear(d->chunk);
    d->chunk = NULL;
    struct num q = num(seq);
    const char *params[] = {d->id, q.s};
    const int formats[] = {0, 0};
    d->chunk = PQexecParams(db_pg(d->db), "SELECT data FROM evidence_chunks WHERE evidence_id = $1 AND seq = $2",
                            2, NULL, params, NULL, formats, 1);
    d->seq = seq;
    if (PQresultStatus(d->chunk) != PGRES_TUPLES_OK || PQntuples(d->chunk) != 1)
      return -2; /* MHD_CONTENT_READER_END_WITH_ERROR */
  }
  size_t at = (size_t)(offset - (uint64_t)seq * CHUNK), len = (size_t)PQgetlength(d->chunk, 0, 0);
  if (at >= len)
    return -1; /* MHD_CONTENT_READER_END_OF_STREAM */
  size_t n = len - at < max ? len - at : max;
  memcpy(out, PQgetvalue(d->chunk, 0, 0) + at, n);
  return (long)n;
}

static void download_free(void *data) {
  struct download *d = data;
  PQclear(d->chunk);
  db_close(d->db);
  free(d);
}

status evidence_content(struct call *c) {
  status s = resource_load(c, &EVIDENCE, c->id);
  if (s != ST_OK)
    return s;
  json_t *e = c->result;
  struct download *d = calloc(1, sizeof *d);
  d->db = db_open_stream(c->cfg);
  if (!d->db) {
    free(d);
    return fail(c, ST_UNAVAILABLE, "the database is unavailable; try again shortly");
  }
  snprintf(d->id, sizeof d->id, "%lld", (long long)c->id);
  d->seq = -1;
  c->stream_read = download_read;
  c->stream_free = download_free;
  c->stream_data = d;
  c->stream_size = (uint64_t)json_integer_value(json_object_get(e, "size"));
  c->stream_type = json_string_value(json_object_get(e, "content_type"));
  snprintf(c->etag_text, sizeof c->etag_text, "\"%s\"", json_string_value(json_object_get(e, "sha256")));
  disposition_attachment(json_string_value(json_object_get(e, "filename")), c->disposition, sizeof c->disposition);
  return ST_OK;
}
