/*
 * json.h -- faster front ends to jansson's decoder and encoder for the
 * documents forewarn reads and writes on its hot paths (ingest, replay,
 * recovery, the journal, message explanations).
 *
 * jansson stays the document model: fw_json_loadb returns ordinary json_t
 * values.  What it replaces is jansson's lexer, which reads one character
 * at a time through a callback and measured 68 MB/s on CloudEvents lines
 * (bench/json_choice.c); this one scans the buffer in place and builds the
 * values with jansson's *_nocheck constructors after doing the checks
 * itself.
 *
 * Contract: for every input, fw_json_loadb accepts exactly what json_loadb
 * with the same flags accepts and returns an equal document.  It gets
 * there by handling the common subset itself and handing anything else
 * (any error, an escaped NUL or surrogate, an integer of more than 18
 * digits, a real that overflows, a duplicate key, very deep nesting) to
 * json_loadb, so every error message, line and column is jansson's own.
 * tests/unit/util/test_json.c checks the contract differentially.
 */
#ifndef FW_UTIL_JSON_H
#define FW_UTIL_JSON_H

#include <jansson.h>
#include <stddef.h>

/*
 * Give jansson per-thread free lists for its small blocks (objects,
 * strings, hash table pairs: dozens per event, freed as soon as the event
 * is applied).  Call once at start-up, before any jansson value exists;
 * a no-op under AddressSanitizer, which must see every block.
 */
void fw_json_init(void);

/*
 * Parse buf[0..len) like json_loadb(buf, len, flags, err).  The flags
 * handled on the fast path are JSON_REJECT_DUPLICATES and
 * JSON_DISABLE_EOF_CHECK (on success err->position is then the offset just
 * past the value, as jansson reports it); any other flag goes straight to
 * json_loadb.  Returns a new reference (the caller decrefs) or NULL with
 * *err filled in.  err may be NULL.
 */
json_t *fw_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);

/*
 * The fast path alone, for tests: the document, or NULL where
 * fw_json_loadb would hand the input to json_loadb.  *used is the offset
 * where scanning stopped.
 */
json_t *fw__json_scan(const char *buf, size_t len, size_t flags, size_t *used);

/*
 * json_dumps(j, JSON_COMPACT), byte for byte, without jansson's
 * per-token callbacks (which cost about 20,000 instructions for one
 * event).  Returns a malloc'd string (free() it) or NULL where json_dumps
 * would (not an object or array, a string that is not valid UTF-8).
 */
char *fw_json_dumps(const json_t *j);

/*
 * The length json_dumpb(j, NULL, 0, JSON_COMPACT) reports (0 where it
 * fails), found by the encoder above into a scratch buffer: jansson counts
 * through its per-token callback, which cost more than parsing the event.
 */
size_t fw_json_compact_size(const json_t *j);

struct buf;
/*
 * Append s as fw_json_dumps writes a string (quotes included), for callers
 * that write JSON text without building a tree: 0, or -1 with nothing
 * appended when s is not valid UTF-8 (where json_string returns NULL).
 */
int fw_json_str(struct buf *out, const char *s);

#endif
