/*
 * serve.h -- `forewarn serve`: assemble config, rules, store, pipeline and
 * HTTP server; run until SIGINT/SIGTERM.
 */
#ifndef FW_SERVE_H
#define FW_SERVE_H

/* The `serve` subcommand (argv[0] is "serve"). Returns the exit status. */
int serve_main(int argc, char **argv);

struct config;
/* SHA-256 of the rules, the config file and the mode: a snapshot taken under others is not used. */
void serve_config_fingerprint(const struct config *cfg, unsigned char out[32]);

#endif
