/* Schema migrations and the seed: SQL files applied once each, in order, under an advisory lock;
 * the default checklist and departments loaded from the seed form. */
#ifndef DUCHA_MIGRATE_H
#define DUCHA_MIGRATE_H

#include "db.h"

/* Applies the migrations in dir that are not yet recorded. 0 on success. */
int migrate_run(db_conn *db, const char *dir);
/* Loads departments and the default checklist from the seed JSON file. Idempotent. */
int seed_run(db_conn *db, const char *path);

#endif
