/* Generic handlers for the plain shape of a resource (get, list, create, patch, delete); each
 * resource module supplies its fields, its SQL and its rules as a struct resource. */
#ifndef DUCHA_RESOURCE_H
#define DUCHA_RESOURCE_H

#include "api.h"
#include "validate.h"

struct list_def {
  const char *sql_parent; /* nested lists: $1 parent id -> a row when the parent exists */
  const char *sql_page;   /* filters..., then cursor, then limit -> rows (key, json) */
  const char *sql_count;  /* filters... -> count */
};

struct resource {
  const char *name;              /* for messages: "department" */
  const char *collection;        /* Location prefix: "/api/v1/departments" */
  const struct field *create_fields;
  const struct field *patch_fields;
  const char *sql_get;           /* $1 id -> (version, json) */
  const char *sql_lock;          /* $1 id -> (version), locking the row */
  const char *sql_insert;        /* [$1 parent id, for nested resources], body, user id -> (id) */
  const char *sql_update;        /* $1 id, $2 body: applies a validated merge patch */
  const char *sql_delete;        /* $1 id */
  struct list_def list;          /* for nested lists $1 is the parent id */
  /* Rules (optional): before the insert (c->id is the parent id), and before a patch or delete
   * once the row is locked and If-Match checked. */
  status (*before_create)(struct call *c);
  status (*before_change)(struct call *c, int deleting);
};

/* Maps a database failure to a status with a pointer to the field when the constraint is known. */
status resource_db_failure(struct call *c, status s);
/* db_value and db_row for a handler: without a row ST_NOT_FOUND, "no such <what>"; a failure
 * through resource_db_failure. */
status resource_value(struct call *c, const char *what, char *out, size_t size, const char *sql, int n,
                      const char *const *params) __attribute__((warn_unused_result));
status resource_row(struct call *c, const char *what, PGresult **res, const char *sql, int n,
                    const char *const *params) __attribute__((warn_unused_result));

/* Puts the call under the report budget (db_report): 429 with Retry-After when DUCHA_MAX_REPORTS
 * reports run already, a failure through resource_db_failure. */
status resource_report(struct call *c) __attribute__((warn_unused_result));

/* Loads the resource's representation into c->result and c->etag. */
status resource_load(struct call *c, const struct resource *r, int64_t id);

/* A read whose entity tag is known without reading it: sql_tag ($1 = c->id) gives the tag, sent
 * as "<prefix><tag>"; when the client's copy is current that is all (304), else the one value of
 * sql_json ($1 = c->id) is the body. ST_NOT_FOUND ("no such <what>") without a row. */
status resource_tagged(struct call *c, const char *what, const char *sql_tag, const char *prefix, const char *sql_json);

/* Sets the success body to len bytes of JSON text, copied. */
status resource_text(struct call *c, const char *json, size_t len);

/* Locks row c->id of r and checks If-Match when given: ST_NOT_FOUND, ST_PRECONDITION_FAILED, ST_OK. */
status resource_lock(struct call *c, const struct resource *r) __attribute__((warn_unused_result));

/* The generic handlers for an explicit resource; res_* take it from the route. */
status resource_list(struct call *c, const struct resource *r);
status resource_create(struct call *c, const struct resource *r);
/* The insert of resource_create for fields already validated and checked: the new record under
 * parent_id (0 for a top-level resource) goes to c->result, its path to c->location, and its
 * create to the audit trail. */
status resource_insert(struct call *c, const struct resource *r, int64_t parent_id, const json_t *fields)
    __attribute__((warn_unused_result));
/* One page of a list: params holds nfilters filter values and room for 3 more (the cursor and
 * the limit). sql_page returns rows (id, json) or, with pair, (id, json, sort value) and takes
 * the cursor as (sort value, id). With sql_json, sql_page only finds the rows (its json column
 * is not read) and sql_json, given their ids as $1 (bigint[]), returns their JSON in that order:
 * the finding is planned for its filters each time, the JSON once. */
status resource_page(struct call *c, const char *sql_page, const char *sql_count, const char *sql_json,
                     const char **params, int nfilters, int pair);
status resource_patch(struct call *c, const struct resource *r);
/* The update of resource_patch for fields already validated and checked, on row id (locked by
 * the caller as its rules need): the record after it goes to c->result, the fields that changed
 * to the audit trail. */
status resource_update(struct call *c, const struct resource *r, int64_t id, const json_t *fields)
    __attribute__((warn_unused_result));
status resource_delete(struct call *c, const struct resource *r);

status res_get(struct call *c);
status res_list(struct call *c);
status res_create(struct call *c);
status res_patch(struct call *c);
status res_delete(struct call *c);

#endif
