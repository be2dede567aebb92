/* The route table: every operation of openapi.yaml, in its order, with the roles its x-roles
 * names. Anything not listed here answers 404 or 405. */
#include "audit.h"
#include "checkpoint.h"
#include "resources.h"
#include "statistics.h"

#define A ROLE_ADMIN
#define STAFF ROLES_STAFF
#define READ ROLES_READ_ALL
#define ALL ROLES_ALL
#define ITEM_PATH(p) "/api/v1/" p "/{id}"
#define PATCH_FLAGS (R_BODY | R_MERGE_PATCH | R_IF_MATCH)
#define DELETE_FLAGS (R_NO_CONTENT | R_IF_MATCH)
#define D ROLE_DEPARTMENT
/* POST /rectifications/{id}/<name>: the lifecycle's actions, each with its handler */
#define ACTION(name, handler, roles, flags)                                                    \
  {"POST", "/api/v1/rectifications/{id}/" name, handler, R_BODY | (flags), NULL, &RECTIFICATIONS, roles}

/* list, get, patch and delete of a plain resource, with who may read and who may write */
#define CRUD(path, res, filters, readers, writers)                                             \
  {"GET", "/api/v1/" path, res_list, R_LIST, filters, &res, readers},                          \
  {"GET", ITEM_PATH(path), res_get, R_ONE_STATEMENT, NULL, &res, readers},                     \
  {"PATCH", ITEM_PATH(path), res_patch, PATCH_FLAGS, NULL, &res, writers},                     \
  {"DELETE", ITEM_PATH(path), res_delete, DELETE_FLAGS, NULL, &res, writers}

const struct route ROUTES[] = {
  {"GET", "/healthz", health_live, R_PUBLIC | R_NO_DB, NULL, NULL, 0},
  {"GET", "/readyz", health_ready, R_PUBLIC, NULL, NULL, 0},
  {"GET", "/openapi.yaml", openapi_document, R_PUBLIC | R_NO_DB, NULL, NULL, 0},
  {"GET", "/docs", docs_page, R_PUBLIC | R_NO_DB | R_PAGE, NULL, NULL, 0},
  {"GET", "/docs/{file}", docs_file, R_PUBLIC | R_NO_DB | R_PAGE, NULL, NULL, 0},

  {"GET", "/api/v1/departments", res_list, R_LIST, DEPARTMENT_FILTERS, &DEPARTMENTS, ALL},
  {"GET", ITEM_PATH("departments"), res_get, R_ONE_STATEMENT, NULL, &DEPARTMENTS, ALL},
  {"PATCH", ITEM_PATH("departments"), res_patch, PATCH_FLAGS | R_CALLERS, NULL, &DEPARTMENTS, STAFF},
  {"DELETE", ITEM_PATH("departments"), res_delete, DELETE_FLAGS | R_CALLERS, NULL, &DEPARTMENTS, STAFF},
  {"POST", "/api/v1/departments", res_create, R_BODY | R_CREATED | R_CALLERS, NULL, &DEPARTMENTS, STAFF},
  {"POST", "/api/v1/departments/{id}/merge", department_merge, R_BODY | R_CALLERS, NULL, &DEPARTMENTS, A},
  {"POST", "/api/v1/departments/import", departments_import, R_UPLOAD | R_CALLERS, IMPORT_PARAMS, NULL, A},

  {"GET", "/api/v1/checklists", res_list, R_LIST, CHECKLIST_FILTERS, &CHECKLISTS, ALL},
  {"GET", ITEM_PATH("checklists"), res_get, R_ONE_STATEMENT, NULL, &CHECKLISTS, ALL},
  {"PATCH", ITEM_PATH("checklists"), res_patch, PATCH_FLAGS, NULL, &CHECKLISTS, A},
  {"DELETE", ITEM_PATH("checklists"), res_delete, DELETE_FLAGS, NULL, &CHECKLISTS, A},
  {"POST", "/api/v1/checklists", checklist_create, R_BODY | R_CREATED, NULL, &CHECKLISTS, A},
  {"GET", "/api/v1/checklists/{id}/tasks", res_list, R_LIST, NULL, &TASKS, ALL},

  CRUD("batches", BATCHES, BATCH_FILTERS, READ, STAFF),
  {"POST", "/api/v1/batches", res_create, R_BODY | R_CREATED, NULL, &BATCHES, STAFF},
  {"POST", "/api/v1/batches/{id}/inspections", inspection_create_many, R_BODY | R_CREATED, NULL, NULL, STAFF},

  CRUD("inspections", INSPECTIONS, INSPECTION_FILTERS, ALL, STAFF),
  {"POST", "/api/v1/inspections", res_create, R_BODY | R_CREATED, NULL, &INSPECTIONS, STAFF},
  {"POST", "/api/v1/inspections/{id}/start", inspection_start, R_BODY | R_BODY_OPTIONAL, NULL, &INSPECTIONS, STAFF},
  {"POST", "/api/v1/inspections/{id}/submit", inspection_submit, R_BODY | R_BODY_OPTIONAL, NULL, &INSPECTIONS, STAFF},
  {"POST", "/api/v1/inspections/{id}/reopen", inspection_reopen, R_BODY, NULL, &INSPECTIONS, A},
  {"POST", "/api/v1/inspections/{id}/publish", inspection_publish, R_BODY | R_BODY_OPTIONAL, NULL, &INSPECTIONS, STAFF},
  {"POST", "/api/v1/inspections/{id}/unpublish", inspection_unpublish, R_BODY | R_BODY_OPTIONAL, NULL, &INSPECTIONS,
   STAFF},
  {"GET", "/api/v1/inspections/{id}/form", inspection_form, 0, NULL, NULL, ALL},
  {"GET", "/api/v1/inspections/{id}/items", res_list, R_LIST, ITEM_FILTERS, &ITEMS, ALL},
  {"GET", "/api/v1/inspections/{id}/export", inspection_export, 0, EXPORT_PARAMS, NULL, ALL},
  {"POST", "/api/v1/inspections/{id}/import", inspection_import, R_UPLOAD, IMPORT_PARAMS, NULL, STAFF},
  {"GET", "/api/v1/inspections/{id}/evidence-archive", evidence_archive, 0, NULL, NULL, ALL},

  {"GET", "/api/v1/items/{id}", res_get, R_ONE_STATEMENT, NULL, &ITEMS, ALL},
  {"PATCH", "/api/v1/items/{id}", res_patch, PATCH_FLAGS, NULL, &ITEMS, STAFF},
  {"GET", "/api/v1/items/{id}/problems", res_list, R_LIST, NULL, &PROBLEMS, ALL},
  {"POST", "/api/v1/items/{id}/problems", res_create, R_BODY | R_CREATED, NULL, &PROBLEMS, STAFF},

  {"GET", ITEM_PATH("problems"), res_get, R_ONE_STATEMENT, NULL, &PROBLEMS, ALL},
  {"PATCH", ITEM_PATH("problems"), res_patch, PATCH_FLAGS, NULL, &PROBLEMS, STAFF},
  {"DELETE", ITEM_PATH("problems"), res_delete, DELETE_FLAGS, NULL, &PROBLEMS, STAFF},
  {"GET", "/api/v1/problems/{id}/rectifications", res_list, R_LIST, NULL, &RECTIFICATIONS, ALL},
  {"POST", "/api/v1/problems/{id}/rectifications", res_create, R_BODY | R_CREATED | R_DEADLINE, NULL,
   &RECTIFICATIONS, STAFF},

  {"GET", "/api/v1/rectifications", rectification_ledger, R_LIST, LEDGER_FILTERS, NULL, ALL},
  {"GET", "/api/v1/rectifications/export", ledger_export, 0, LEDGER_EXPORT_FILTERS, NULL, ALL},
  {"GET", ITEM_PATH("rectifications"), res_get, R_ONE_STATEMENT, NULL, &RECTIFICATIONS, ALL},
  {"PATCH", ITEM_PATH("rectifications"), res_patch, PATCH_FLAGS | R_DEADLINE, NULL, &RECTIFICATIONS, STAFF},
  {"DELETE", ITEM_PATH("rectifications"), res_delete, DELETE_FLAGS, NULL, &RECTIFICATIONS, STAFF},
  ACTION("start", rectification_start, STAFF | D, R_BODY_OPTIONAL),
  ACTION("submit", rectification_submit, STAFF | D, R_BODY_OPTIONAL),
  ACTION("close", rectification_close, STAFF, 0),
  ACTION("reject", rectification_reject, STAFF, 0),
  ACTION("request-extension", rectification_request_extension, A | D, R_DEADLINE),
  ACTION("extend", rectification_extend, STAFF, R_DEADLINE),
  ACTION("refuse-extension", rectification_refuse_extension, STAFF, 0),
  ACTION("reassign", rectification_reassign, STAFF, 0),
  ACTION("urge", rectification_urge, STAFF, R_BODY_OPTIONAL),
  ACTION("revoke", rectification_revoke, A, 0),
  {"POST", "/api/v1/rectifications/urge", rectification_urge_many, R_BODY, NULL, NULL, STAFF},
  {"GET", "/api/v1/rectifications/{id}/closures", res_list, R_LIST, NULL, &CLOSURES, ALL},
  {"GET", "/api/v1/rectifications/{id}/deadlines", res_list, R_LIST, NULL, &DEADLINES, ALL},
  {"GET", "/api/v1/rectifications/{id}/extension-requests", res_list, R_LIST, NULL, &EXTENSION_REQUESTS, ALL},
  {"GET", "/api/v1/rectifications/{id}/progress", res_list, R_LIST, NULL, &PROGRESS, ALL},
  {"POST", "/api/v1/rectifications/{id}/progress", res_create, R_BODY | R_CREATED, NULL, &PROGRESS, STAFF | D},
  {"GET", "/api/v1/progress/{id}", res_get, R_ONE_STATEMENT, NULL, &PROGRESS, ALL},
  {"GET", "/api/v1/rectifications/{id}/evidence", res_list, R_LIST, NULL, &EVIDENCE_OF_RECTIFICATION, ALL},
  {"POST", "/api/v1/rectifications/{id}/evidence", evidence_upload, R_UPLOAD | R_CREATED, EVIDENCE_UPLOAD_PARAMS,
   NULL, STAFF | D},
  {"GET", "/api/v1/items/{id}/evidence", res_list, R_LIST, NULL, &EVIDENCE_OF_ITEM, ALL},
  {"POST", "/api/v1/items/{id}/evidence", evidence_upload, R_UPLOAD | R_CREATED, NULL, NULL, STAFF | D},
  {"GET", "/api/v1/evidence/{id}", res_get, R_ONE_STATEMENT, NULL, &EVIDENCE, ALL},
  {"GET", "/api/v1/evidence/{id}/content", evidence_content, 0, NULL, NULL, ALL},

  {"GET", "/api/v1/statistics/inspections/{id}", statistics_inspection, 0, NULL, NULL, ALL},
  {"GET", "/api/v1/statistics/departments", statistics_departments, 0, STATISTICS_DEPARTMENT_PARAMS, NULL, ALL},
  {"GET", "/api/v1/statistics/matrix", statistics_matrix, 0, STATISTICS_MATRIX_PARAMS, NULL, ALL},
  {"GET", "/api/v1/statistics/ranking", statistics_ranking, 0, STATISTICS_RANKING_PARAMS, NULL, READ},
  {"GET", "/api/v1/statistics/trend", statistics_trend, 0, STATISTICS_TREND_PARAMS, NULL, ALL},

  {"GET", "/api/v1/users", res_list, R_LIST | R_PRIVATE, USER_FILTERS, &USERS, A},
  {"POST", "/api/v1/users", res_create, R_BODY | R_CREATED | R_PRIVATE, NULL, &USERS, A},
  {"GET", ITEM_PATH("users"), res_get, R_PRIVATE | R_ONE_STATEMENT, NULL, &USERS, A},
  {"PATCH", ITEM_PATH("users"), res_patch, PATCH_FLAGS | R_PRIVATE | R_CALLERS, NULL, &USERS, A},
  {"POST", "/api/v1/users/{id}/password", user_reset_password, R_BODY | R_PRIVATE | R_CALLERS, NULL, &USERS, A},
  {"POST", "/api/v1/users/import", users_import, R_UPLOAD | R_PRIVATE | R_CALLERS, IMPORT_PARAMS, NULL, A},

  {"POST", "/api/v1/auth/token", session_login, R_PUBLIC | R_BODY | R_CREATED | R_OWN_TX | R_SECRET | R_PRIVATE, NULL, NULL, 0},
  {"DELETE", "/api/v1/auth/token", session_logout, R_NO_CONTENT | R_BEFORE_PASSWORD_CHANGE | R_PRIVATE | R_CALLERS, NULL, NULL, ALL},
  {"GET", "/api/v1/tokens", res_list, R_LIST | R_PRIVATE, TOKEN_FILTERS, &TOKENS, A},
  {"DELETE", ITEM_PATH("tokens"), token_revoke, R_NO_CONTENT | R_PRIVATE | R_CALLERS, NULL, NULL, A},

  {"GET", "/api/v1/public/inspections", public_inspection_list, R_PUBLIC | R_PUBLIC_VIEW | R_LIST, PUBLIC_FILTERS,
   NULL, 0},
  {"GET", "/api/v1/public/inspections/{id}", public_inspection_get, R_PUBLIC | R_PUBLIC_VIEW, NULL, NULL, 0},

  {"GET", "/api/v1/webhooks", res_list, R_LIST | R_PRIVATE, NULL, &WEBHOOKS, A},
  {"GET", ITEM_PATH("webhooks"), res_get, R_ONE_STATEMENT | R_PRIVATE, NULL, &WEBHOOKS, A},
  {"PATCH", ITEM_PATH("webhooks"), res_patch, PATCH_FLAGS | R_PRIVATE, NULL, &WEBHOOKS, A},
  {"DELETE", ITEM_PATH("webhooks"), res_delete, DELETE_FLAGS | R_PRIVATE, NULL, &WEBHOOKS, A},
  {"POST", "/api/v1/webhooks", res_create, R_BODY | R_CREATED | R_PRIVATE, NULL, &WEBHOOKS, A},
  {"GET", "/api/v1/webhooks/{id}/deliveries", res_list, R_LIST | R_PRIVATE, DELIVERY_FILTERS, &WEBHOOK_DELIVERIES, A},
  {"GET", "/api/v1/webhook-deliveries/{id}", res_get, R_PRIVATE | R_ONE_STATEMENT, NULL, &WEBHOOK_DELIVERIES, A},
  {"POST", "/api/v1/webhook-deliveries/{id}/redeliver", webhook_redeliver, R_BODY | R_BODY_OPTIONAL | R_CREATED | R_PRIVATE,
   NULL, &WEBHOOK_DELIVERIES, A},

  {"GET", "/api/v1/me", me_get, R_BEFORE_PASSWORD_CHANGE | R_PRIVATE, NULL, NULL, ALL},
  {"PATCH", "/api/v1/me", me_patch, PATCH_FLAGS | R_PRIVATE | R_CALLERS, NULL, NULL, ALL},
  {"GET", "/api/v1/me/todo", rectification_todo, 0, NULL, NULL, ALL},
  {"POST", "/api/v1/me/password", me_change_password, R_BODY | R_NO_CONTENT | R_BEFORE_PASSWORD_CHANGE | R_PRIVATE | R_CALLERS, NULL, NULL, ALL},

  {"GET", "/api/v1/calendar/{id}", calendar_get, 0, NULL, NULL, ALL},
  {"PUT", "/api/v1/calendar/{id}", calendar_put, R_BODY | R_IF_MATCH, NULL, NULL, A},

  {"GET", "/api/v1/audit-events", audit_list, R_LIST | R_PRIVATE, AUDIT_FILTERS, NULL, ALL},
  {"GET", "/api/v1/audit-events/verify", audit_verify, R_PRIVATE, AUDIT_VERIFY_PARAMS, NULL, READ},
  {"GET", "/api/v1/audit-events/checkpoints", res_list, R_LIST | R_PRIVATE, NULL, &AUDIT_CHECKPOINTS, READ},
  {"POST", "/api/v1/audit-events/checkpoints", checkpoint_create, R_BODY | R_BODY_OPTIONAL | R_CREATED | R_PRIVATE,
   NULL, &AUDIT_CHECKPOINTS, A},
  {"GET", "/api/v1/audit-events/checkpoints/{id}", res_get, R_PRIVATE | R_ONE_STATEMENT, NULL, &AUDIT_CHECKPOINTS,
   READ},
};

const int ROUTE_COUNT = sizeof ROUTES / sizeof ROUTES[0];
