/* The command line's own changes: the first admin, and tokens for automation. Each is one
 * transaction with its audit event (actor: none, address: "cli"). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "password.h"

/* Writes the event for a change to user id, taking after. */
static status recorded(db_conn *db, const char *action, int64_t id, json_t *after) {
  status s = audit_db(db, 0, NULL, "cli", action, "user", id, NULL, after);
  json_decref(after);
  return s;
}

static status find_user(db_conn *db, const char *username, int64_t *id) {
  const char *params[] = {username};
  char text[24];
  status s = db_value(db, text, sizeof text, "SELECT id FROM users WHERE username = $1", 1, params);
  if (s == ST_OK)
    *id = strtoll(text, NULL, 10);
  return s;
}

/* user create / token create: for the first admin and for automation. */
int cli_admin_command(db_conn *db, const char *what, int argc, char **argv) {
  static const struct option opts[] = {
    {"username", required_argument, 0, 'u'}, {"user", required_argument, 0, 'u'},
    {"role", required_argument, 0, 'r'},     {"department-id", required_argument, 0, 'd'},
    {"display-name", required_argument, 0, 'n'}, {"password-stdin", no_argument, 0, 'p'},
    {"ttl-days", required_argument, 0, 't'}, {0, 0, 0, 0},
  };
  const char *username = NULL, *role = NULL, *department = NULL, *display = "";
  int password_stdin = 0, opt;
  long ttl = 30;
  while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (opt) {
    case 'u': username = optarg; break;
    case 'r': role = optarg; break;
    case 'd': department = optarg; break;
    case 'n': display = optarg; break;
    case 'p': password_stdin = 1; break;
    case 't': ttl = strtol(optarg, NULL, 10); break;
    default: return 2;
    }
  }
  if (!username) {
    fprintf(stderr, "ducha: --username is required\n");
    return 2;
  }
  if (!strcmp(what, "token")) {
    int64_t id;
    struct token_made token;
    if (ttl < 1 || ttl > 3650) {
      fprintf(stderr, "ducha: --ttl-days must be from 1 to 3650\n");
      return 2;
    }
    status s = find_user(db, username, &id);
    if (s == ST_NOT_FOUND) {
      fprintf(stderr, "ducha: no user %s\n", username);
      return 1;
    }
    if (s != ST_OK || db_begin(db) != ST_OK || auth_token_create(db, id, ttl * 24, NULL, &token) != ST_OK ||
        recorded(db, "token_create", id, json_pack("{s:I, s:s}", "token_id", (json_int_t)token.id, "expires_at",
                                                   token.expires_at)) != ST_OK ||
        db_commit(db) != ST_OK) {
      fprintf(stderr, "ducha: could not create the token: %s\n", db_last_error(db)->message);
      return 1;
    }
    printf("%s\n", token.text);
    return 0;
  }
  char password[1024] = "";
  if (!role || !password_stdin) {
    fprintf(stderr, "ducha: user create needs --role and --password-stdin\n");
    return 2;
  }
  if (!fgets(password, sizeof password, stdin))
    password[0] = '\0';
  password[strcspn(password, "\r\n")] = '\0';
  if (strlen(password) < 8) {
    fprintf(stderr, "ducha: the password must be at least 8 characters\n");
    return 2;
  }
  char hash[PASSWORD_HASH_MAX];
  int hashed = password_hash(password, hash, sizeof hash);
  memset(password, 0, sizeof password);
  if (hashed) {
    fprintf(stderr, "ducha: could not hash the password\n");
    return 1;
  }
  const char *params[] = {username, display, role, department, hash};
  char id[24];
  status s = db_begin(db);
  if (s == ST_OK)
    s = db_value(db, id, sizeof id,
                 "INSERT INTO users (username, display_name, role, department_id, password_hash, password_changed_at)"
                 " VALUES ($1, $2, $3, $4::bigint, $5, now()) RETURNING id",
                 5, params);
  if (s == ST_OK)
    s = recorded(db, "create", strtoll(id, NULL, 10),
                 json_pack("{s:s, s:s, s:s, s:s*}", "username", username, "display_name", display, "role", role,
                           "department_id", department));
  if (s == ST_OK)
    s = db_commit(db);
  if (s != ST_OK) {
    fprintf(stderr, "ducha: could not create the user: %s\n", db_last_error(db)->message);
    return 1;
  }
  printf("created user %s (%s)\n", username, role);
  return 0;
}

