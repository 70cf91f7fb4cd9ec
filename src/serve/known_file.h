/*
 * known_file.h -- the file form of known issues and maintenance
 * (docs/known-issues.md): a YAML file with a `known_issues:` list, each
 * entry the fields of POST /v1/known-issues, applied by `serve` at
 * start-up (config key `known_issues:`).
 */
#ifndef FW_SERVE_KNOWN_FILE_H
#define FW_SERVE_KNOWN_FILE_H

#include "pipeline/pipeline.h"
#include "util/buf.h"

/*
 * Apply the file to the running pipeline's registry, all or nothing:
 * every entry is checked first (its fields, its segment, against the
 * registry as it is), and only when all pass is each one journaled as a
 * `known_issue.changed` event — a declaration for a new id, an update of
 * the fields that differ for a known one, nothing when none differs (so
 * a restart with the same file changes nothing).  An entry for an issue
 * already closed in the store is left as the store has it, with a
 * warning.  Errors go to diag as file:line:col with the source line and
 * a caret; returns 0, FW_EPARSE (nothing applied), FW_EIO, or FW_EDB.
 */
int known_file_apply(struct pipeline *p, const char *path, struct buf *diag);

#endif
