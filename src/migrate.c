#include "migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATION_LOCK "8324501"

static int is_migration(const char *name) {
  size_t n = strlen(name);
  return n > 9 && strspn(name, "0123456789") == 4 && name[4] == '_' && !strcmp(name + n - 4, ".sql");
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  size_t got = fread(text, 1, (size_t)n, f);
  text[got] = '\0';
  fclose(f);
  return text;
}

static int simple(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok)
    fprintf(stderr, "ducha: %s", PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : -1;
}

/* Indexed Chinese search and the ordering of text need a UTF8 database with C.UTF-8 rules. */
static int check_database(PGconn *pg) {
  PGresult *r = PQexec(pg, "SELECT pg_encoding_to_char(encoding), datcollate, datctype"
                           " FROM pg_database WHERE datname = current_database()");
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok && (strcmp(PQgetvalue(r, 0, 0), "UTF8") || strcmp(PQgetvalue(r, 0, 1), "C.UTF-8") ||
             strcmp(PQgetvalue(r, 0, 2), "C.UTF-8"))) {
    fprintf(stderr,
            "ducha: the database has encoding %s, collation %s and ctype %s; it needs UTF8 with"
            " C.UTF-8 collation and ctype (createdb -E UTF8 --locale=C.UTF-8 -T template0)\n",
            PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    ok = 0;
  }
  PQclear(r);
  return ok ? 0 : -1;
}

/* Each statement is built by format(%I) on the server, so the role name is quoted there. */
static const char *const GRANTS[] = {
  "SELECT format('GRANT USAGE ON SCHEMA public TO %I', $1::text)",
  "SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', $1::text)",
  "SELECT format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', $1::text)",
  "SELECT format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_events, audit_chain_heads,"
  " schema_migrations FROM %I', $1::text)",
  "SELECT format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM %I', $1::text)",
};

static int grant(PGconn *pg, const char *role) {
  const char *who[] = {role};
  PGresult *me = PQexecParams(pg, "SELECT $1::text = current_user", 1, NULL, who, NULL, NULL, 0);
  int owner = PQresultStatus(me) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(me, 0, 0), "t");
  PQclear(me);
  if (owner)
    return 0; /* one role for everything: nothing to grant */
  for (size_t i = 0; i < sizeof GRANTS / sizeof GRANTS[0]; i++) {
    const char *params[] = {role};
    PGresult *r = PQexecParams(pg, GRANTS[i], 1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && simple(pg, PQgetvalue(r, 0, 0)) == 0;
    PQclear(r);
    if (!ok)
      return -1;
  }
  printf("granted role %s what the service needs (audit events: read and append only)\n", role);
  return 0;
}

int migrate_run(db_conn *db, const char *dir, const char *app_role) {
  PGconn *pg = db_pg(db);
  DIR *d = opendir(dir);
  char **names = NULL;
  size_t count = 0;
  int rc = -1, applied = 0;
  if (!d) {
    fprintf(stderr, "ducha: cannot read the migrations folder %s\n", dir);
    return -1;
  }
  for (struct dirent *e; (e = readdir(d));)
    if (is_migration(e->d_name)) {
      names = realloc(names, (count + 1) * sizeof *names);
      names[count++] = strdup(e->d_name);
    }
  closedir(d);
  qsort(names, count, sizeof *names, by_name);

  if (check_database(pg) || simple(pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")"))
    goto out;
  if (simple(pg, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                 " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"))
    goto unlock;
  for (size_t i = 0; i < count; i++) {
    char version[5];
    memcpy(version, names[i], 4);
    version[4] = '\0';
    const char *params[] = {version, names[i]};
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1, NULL,
                               params, NULL, NULL, 0);
    int done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    if (done)
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    char *sql = read_file(path);
    if (!sql || simple(pg, "BEGIN")) {
      free(sql);
      goto unlock;
    }
    int ok = simple(pg, sql) == 0;
    free(sql);
    if (ok) {
      r = PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2, NULL,
                       params, NULL, NULL, 0);
      ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
    if (!ok || simple(pg, "COMMIT")) {
      fprintf(stderr, "ducha: migration %s failed; nothing of it was applied\n", names[i]);
      simple(pg, "ROLLBACK");
      goto unlock;
    }
    printf("applied %s\n", names[i]);
    applied++;
  }
  printf("%d migration%s applied; the schema is up to date\n", applied, applied == 1 ? "" : "s");
  if (app_role && grant(pg, app_role))
    goto unlock;
  rc = 0;
unlock:
  simple(pg, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")");
out:
  for (size_t i = 0; i < count; i++)
    free(names[i]);
  free(names);
  return rc;
}
