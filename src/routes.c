/* The route table: every operation of openapi.yaml, in its order. */
#include "resources.h"

#define ITEM_PATH(p) "/api/v1/" p "/{id}"
#define CRUD(path, res, filters)                                                               \
  {"GET", "/api/v1/" path, res_list, R_LIST, filters, &res},                                   \
  {"GET", ITEM_PATH(path), res_get, 0, NULL, &res},                                            \
  {"PATCH", ITEM_PATH(path), res_patch, R_BODY | R_MERGE_PATCH | R_IF_MATCH, NULL, &res},      \
  {"DELETE", ITEM_PATH(path), res_delete, R_NO_CONTENT | R_IF_MATCH, NULL, &res}

const struct route ROUTES[] = {
  {"GET", "/healthz", health_live, R_PUBLIC | R_NO_DB, NULL, NULL},
  {"GET", "/readyz", health_ready, R_PUBLIC, NULL, NULL},
  {"GET", "/openapi.yaml", openapi_document, R_PUBLIC | R_NO_DB, NULL, NULL},

  CRUD("departments", DEPARTMENTS, DEPARTMENT_FILTERS),
  {"POST", "/api/v1/departments", res_create, R_BODY | R_CREATED, NULL, &DEPARTMENTS},

  CRUD("checklists", CHECKLISTS, CHECKLIST_FILTERS),
  {"POST", "/api/v1/checklists", checklist_create, R_BODY | R_CREATED, NULL, &CHECKLISTS},
  {"GET", "/api/v1/checklists/{id}/tasks", res_list, R_LIST, NULL, &TASKS},

  CRUD("batches", BATCHES, BATCH_FILTERS),
  {"POST", "/api/v1/batches", res_create, R_BODY | R_CREATED, NULL, &BATCHES},

  CRUD("inspections", INSPECTIONS, INSPECTION_FILTERS),
  {"POST", "/api/v1/inspections", res_create, R_BODY | R_CREATED, NULL, &INSPECTIONS},
  {"POST", "/api/v1/inspections/{id}/start", inspection_start, R_BODY | R_BODY_OPTIONAL, NULL, &INSPECTIONS},
  {"POST", "/api/v1/inspections/{id}/submit", inspection_submit, R_BODY | R_BODY_OPTIONAL, NULL, &INSPECTIONS},
  {"GET", "/api/v1/inspections/{id}/form", inspection_form, 0, NULL, NULL},
  {"GET", "/api/v1/inspections/{id}/items", res_list, R_LIST, ITEM_FILTERS, &ITEMS},

  {"GET", "/api/v1/items/{id}", res_get, 0, NULL, &ITEMS},
  {"PATCH", "/api/v1/items/{id}", res_patch, R_BODY | R_MERGE_PATCH | R_IF_MATCH, NULL, &ITEMS},
  {"GET", "/api/v1/items/{id}/problems", res_list, R_LIST, NULL, &PROBLEMS},
  {"POST", "/api/v1/items/{id}/problems", res_create, R_BODY | R_CREATED, NULL, &PROBLEMS},

  {"GET", ITEM_PATH("problems"), res_get, 0, NULL, &PROBLEMS},
  {"PATCH", ITEM_PATH("problems"), res_patch, R_BODY | R_MERGE_PATCH | R_IF_MATCH, NULL, &PROBLEMS},
  {"DELETE", ITEM_PATH("problems"), res_delete, R_NO_CONTENT | R_IF_MATCH, NULL, &PROBLEMS},
  {"GET", "/api/v1/problems/{id}/rectifications", res_list, R_LIST, NULL, &RECTIFICATIONS},
  {"POST", "/api/v1/problems/{id}/rectifications", res_create, R_BODY | R_CREATED, NULL, &RECTIFICATIONS},

  {"GET", ITEM_PATH("rectifications"), res_get, 0, NULL, &RECTIFICATIONS},
  {"PATCH", ITEM_PATH("rectifications"), res_patch, R_BODY | R_MERGE_PATCH | R_IF_MATCH, NULL, &RECTIFICATIONS},
  {"DELETE", ITEM_PATH("rectifications"), res_delete, R_NO_CONTENT | R_IF_MATCH, NULL, &RECTIFICATIONS},
};

const int ROUTE_COUNT = sizeof ROUTES / sizeof ROUTES[0];
