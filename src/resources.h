/* The resources of the API: their definitions for the generic handlers, their filters, and the
 * handlers that go beyond the plain shape. One .c file per resource. */
#ifndef DUCHA_RESOURCES_H
#define DUCHA_RESOURCES_H

#include "resource.h"

extern const struct resource DEPARTMENTS, CHECKLISTS, TASKS, BATCHES, INSPECTIONS, ITEMS, PROBLEMS,
    RECTIFICATIONS, USERS, TOKENS, WEBHOOKS, WEBHOOK_DELIVERIES;
extern const struct qparam DEPARTMENT_FILTERS[], CHECKLIST_FILTERS[], BATCH_FILTERS[],
    INSPECTION_FILTERS[], ITEM_FILTERS[], USER_FILTERS[], TOKEN_FILTERS[], DELIVERY_FILTERS[];
/* POST /webhook-deliveries/{id}/redeliver (webhooks.c). */
status webhook_redeliver(struct call *c);

status department_merge(struct call *c);
/* POST /departments/import: units from a sheet, each under its parent named by name or path. */
status departments_import(struct call *c);
/* Units by name for the imports: every unit not merged, in memory (units_load; caller frees).
 * units_find gives the index of the unit a name ("市财政局") or a path from the top
 * ("市财政局/办公室") names: -1 (why) for none, -2 (why) for several. */
struct units;
status units_load(struct call *c, struct units **out) __attribute__((warn_unused_result));
int units_find(const struct units *t, const char *path, char *why, size_t size);
int64_t units_id(const struct units *t, int i);
void units_free(struct units *t);
status users_import(struct call *c);
status rectification_ledger(struct call *c);
/* GET /me/todo: what waits for the caller, a count and the first page of each list. */
status rectification_todo(struct call *c);
/* The rectification lifecycle (rectification_actions.c): POST /rectifications/{id}/<action>. */
status rectification_start(struct call *c);
status rectification_submit(struct call *c);
status rectification_close(struct call *c);
status rectification_reject(struct call *c);
status rectification_request_extension(struct call *c);
status rectification_extend(struct call *c);
status rectification_refuse_extension(struct call *c);
status rectification_reassign(struct call *c);
status rectification_urge(struct call *c);
status rectification_urge_many(struct call *c);
status rectification_revoke(struct call *c);
/* ST_INVALID (pointer /deadline) when the body's deadline is before today in DUCHA_TIMEZONE or,
 * with current (a date), not later than it. */
status rectification_deadline_check(struct call *c, const char *current) __attribute__((warn_unused_result));
/* ST_CONFLICT when the rectification id (with of_problem: any rectification of the problem id)
 * has been worked on — a closure, evidence, progress, an action of its lifecycle — and so may not
 * be deleted. */
status rectifications_untouched(struct call *c, int of_problem, int64_t id) __attribute__((warn_unused_result));
extern const struct qparam LEDGER_FILTERS[], LEDGER_EXPORT_FILTERS[];
/* The ledger's rows that the call's filters select (LEDGER_FILTERS' values, first in
 * c->query.values), in the ledger's order, chunk at a time: each chunk's ids go to each as a
 * bigint[] literal. Through the ledger's own statements, so a department user walks what it may
 * read and nothing more. */
status rectification_ledger_walk(struct call *c, int chunk, status (*each)(struct call *c, const char *ids, void *data),
                                 void *data) __attribute__((warn_unused_result));
/* GET /rectifications/export (ledger_export.c): the 整改台账 as XLSX or CSV. */
status ledger_export(struct call *c);
extern const struct resource CLOSURES, DEADLINES, EXTENSION_REQUESTS, PROGRESS, EVIDENCE_OF_RECTIFICATION,
    EVIDENCE_OF_ITEM, EVIDENCE;
status evidence_upload(struct call *c);
extern const struct qparam EVIDENCE_UPLOAD_PARAMS[];
status evidence_content(struct call *c);
/* GET /inspections/{id}/evidence-archive: every evidence file of the inspection the caller may
 * read, in one zip with a manifest, streamed (evidence.c, zipstream.c). */
status evidence_archive(struct call *c);

/* Whether the caller may read the rectification id (an SQL expression): one of the units of its
 * scope is among the rectification's readers (migrations/0008). ducha_rectification_readers() is
 * inlined by PostgreSQL, so this is a lookup in rectification_readers' primary key, planned with
 * the statement; staff (scope NULL: all) skip it. */
#define RECTIFICATION_VISIBLE(id) "(ducha_scope() IS NULL OR EXISTS (SELECT FROM ducha_rectification_readers(" id ")))"
/* The same as a statement, with $1: the parent check of a rectification's nested lists (a row
 * when the rectification exists and the caller may read it). */
#define RECTIFICATION_VISIBLE_SQL_OF(id) "SELECT 1 FROM ducha_rectification_readers(" id ") LIMIT 1"
#define RECTIFICATION_VISIBLE_SQL RECTIFICATION_VISIBLE_SQL_OF("$1")
/* Whether the caller acts for the rectification x (an SQL expression): staff for all, a
 * department user for what is assigned to one of its units now. Reading is wider (above). */
#define RECTIFICATION_ASSIGNED(x) "(ducha_scope() IS NULL OR " x ".responsible_department_id = ANY (ducha_scope()))"
/* The rule of who may work on rectification $1 — report progress (progress.c), add evidence
 * (evidence.c) — and when, in one place: whoever acts for it (the routes add: staff and
 * department users), while it is pending or in progress, once its inspection's findings are
 * submitted. The statement gives 'ok' or what stands in the way; more adds WHEN ... THEN cases
 * of the caller's own, lock its locking clause on x (the rectification). */
#define RECTIFICATION_WORK(more, lock)                                                         \
  "SELECT CASE WHEN r.inspection_status NOT IN ('submitted', 'closed') THEN 'inspection ' || r.inspection_status" \
  "  WHEN x.status NOT IN ('pending', 'in_progress') THEN x.status" more " ELSE 'ok' END"      \
  " FROM rectifications x JOIN rectification_rows r ON r.id = x.id"                            \
  " WHERE x.id = $1 AND " RECTIFICATION_VISIBLE("x.id") " AND " RECTIFICATION_ASSIGNED("x") lock
#define USER_REF(alias)                                                                        \
  "CASE WHEN " alias ".id IS NULL THEN NULL ELSE json_build_object('id', " alias ".id, 'name', " alias ".username) END"
status user_reset_password(struct call *c);
status session_login(struct call *c);
status session_logout(struct call *c);
status token_revoke(struct call *c);
status me_get(struct call *c);
status me_patch(struct call *c);
status me_change_password(struct call *c);

/* Adds an error at pointer/<index> for every id of ids (a JSON array) that names no
 * department; ST_INVALID when there was one. */
status departments_exist(struct call *c, const json_t *ids, const char *pointer);

status checklist_create(struct call *c);
/* Inserts a checklist version with its tasks from {code, title, tasks: [{content,
 * material_department_ids, source_truncated}]}; *id receives the new checklist's id. */
status checklist_insert(db_conn *db, const json_t *checklist, int64_t *id) __attribute__((warn_unused_result));

/* 公示 (public.c). What the public view shows of a problem or a measure: whether it is shown at
 * all, and a public wording shown instead of its text; their fields, and their SQL for an insert
 * and an update from the body b. */
#define PUBLIC_FIELDS                                                                          \
  {"public", F_BOOL, 0, 0, 0, NULL, 0}, {"public_text", F_TEXT, FIELD_NULLABLE, 1, 2000, NULL, 0}
#define PUBLIC_INSERT "coalesce((b->>'public')::boolean, true), b->>'public_text'"
#define PUBLIC_UPDATE                                                                          \
  "public = coalesce((b->>'public')::boolean, public),"                                        \
  " public_text = CASE WHEN b ? 'public_text' THEN b->>'public_text' ELSE public_text END"
/* 1 when the body changes nothing but those: they stay editable once the findings are final. */
int public_fields_only(const json_t *body);
/* The public view: GET /public/inspections and /public/inspections/{id}, no token. */
status public_inspection_list(struct call *c);
status public_inspection_get(struct call *c);
extern const struct qparam PUBLIC_FILTERS[];

status inspection_start(struct call *c);
status inspection_publish(struct call *c);
status inspection_unpublish(struct call *c);
status inspection_submit(struct call *c);
status inspection_reopen(struct call *c);
/* POST /batches/{id}/inspections: one inspection per unit of the batch, in one transaction. */
status inspection_create_many(struct call *c);
status inspection_form(struct call *c);
/* The form of inspection id ({inspection, rows}, as GET /inspections/{id}/form shows it) into
 * *form (caller decrefs; NULL: as the call's response, unparsed), and its entity tag without
 * reading it; ST_NOT_FOUND outside the caller's scope. */
status inspection_form_read(struct call *c, int64_t id, json_t **form) __attribute__((warn_unused_result));
status inspection_form_tag(struct call *c, int64_t id, char *tag, size_t size) __attribute__((warn_unused_result));
/* ST_FROZEN unless the inspection that sql finds from $1 = id is draft or in_progress; locks it
 * against a concurrent submit for the rest of the transaction. */
status inspection_editable(struct call *c, const char *sql, int64_t id);

/* The form in and out of Excel (forms.c): GET /inspections/{id}/export?format=xlsx|csv in the
 * seed's own layout, POST /inspections/{id}/import of a filled one (?dry_run=true). */
status inspection_export(struct call *c);
status inspection_import(struct call *c);
extern const struct qparam EXPORT_PARAMS[], IMPORT_PARAMS[];
extern const char *const EXPORT_FORMATS[]; /* xlsx (the default), csv */

/* The working-day calendar (calendar.c): GET and PUT /calendar/{year}. */
status calendar_get(struct call *c);
status calendar_put(struct call *c);

status health_live(struct call *c);
status health_ready(struct call *c);
status openapi_document(struct call *c);
/* Reads the contract served at /openapi.yaml; -1 when the file cannot be read. */
int openapi_load(const char *path);
void openapi_unload(void);
/* The page /docs and its files (docs.c); docs_load reads Swagger UI's files from dir, -1 when
 * they are not there (then /docs answers 404). */
status docs_page(struct call *c);
status docs_file(struct call *c);
int docs_load(const char *dir);
void docs_unload(void);

#endif
