/* ducha user create / token create. */
#ifndef DUCHA_CLI_H
#define DUCHA_CLI_H

#include "db.h"

/* what is "user" or "token"; argv[0] is "create". Returns the exit status. */
int cli_admin_command(db_conn *db, const char *what, int argc, char **argv);

#endif
