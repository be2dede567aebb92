/* Schema migrations and the seed: SQL files applied once each, in order, under an advisory lock;
 * the default checklist and departments loaded from the seed form. */
#ifndef DUCHA_MIGRATE_H
#define DUCHA_MIGRATE_H

#include "db.h"

/* Applies the migrations in dir that are not yet recorded; then, with app_role (the role the
 * service connects as, when it is not the owner), grants it what the service needs and no
 * right to change or delete audit events. 0 on success. */
int migrate_run(db_conn *db, const char *dir, const char *app_role);
/* Loads departments and the default checklist from the seed JSON file. Idempotent. */
int seed_run(db_conn *db, const char *path);

#endif
