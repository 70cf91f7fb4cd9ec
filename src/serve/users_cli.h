/*
 * users_cli.h -- the `user` and `token` subcommands (users_cli.c): people,
 * their roles and their API tokens, in the database serve uses.
 */
#ifndef FW_USERS_CLI_H
#define FW_USERS_CLI_H

/* `forewarn user add|list|set-role|remove ...` (argv[0] is "user"). Returns the exit status. */
int users_cli_user(int argc, char **argv);
/* `forewarn token create|list|revoke ...` (argv[0] is "token"). Returns the exit status. */
int users_cli_token(int argc, char **argv);

#endif
