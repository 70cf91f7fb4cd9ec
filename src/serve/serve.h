/*
 * serve.h -- `forewarn serve`: assemble config, rules, store, pipeline and
 * HTTP server; run until SIGINT/SIGTERM.
 */
#ifndef FW_SERVE_H
#define FW_SERVE_H

/* The `serve` subcommand (argv[0] is "serve"). Returns the exit status. */
int serve_main(int argc, char **argv);

#include <signal.h>

struct config;
/*
 * SIGINT and SIGTERM blocked in the calling thread (and so in every thread
 * it starts later), to be taken with sigwait(set): no handler, and no
 * window in which a signal between a check and a pause is lost.  SIGPIPE
 * ignored.
 */
void serve_block_stop_signals(sigset_t *set);
/*
 * Write "addr:port\n" (and a second line, `extra`, when not NULL) to path
 * whole, then rename it into place: a reader never sees a partial file.
 * Logs a warning when it cannot.
 */
void serve_write_ready(const char *path, const char *addr, unsigned port, const char *extra);
/* SHA-256 of the rules, the config file and the mode: a snapshot taken under others is not used. */
void serve_config_fingerprint(const struct config *cfg, unsigned char out[32]);

#endif
