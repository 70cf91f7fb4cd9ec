/*
 * web/web.h -- the console's static assets (web/ in the source tree),
 * compiled into the binary by scripts/embed-web.sh, so one binary serves
 * the console and nothing is fetched at run time.
 */
#ifndef FW_WEB_H
#define FW_WEB_H

#include <stddef.h>

struct web_asset {
    const char *path;          /* URL path: "/index.html", "/app.js" */
    const unsigned char *data; /* the file's bytes (a NUL follows, not counted in len) */
    size_t len;
    const char *content_type;  /* from the extension; application/octet-stream otherwise */
    const char *etag;          /* strong ETag, quotes included: a prefix of the SHA-256 */
};

/* Generated table, terminated by {0}; sorted by path. */
extern const struct web_asset web_assets[];

/*
 * The asset for a URL path ("/" is "/index.html"), or NULL.  Paths are
 * compared whole: nothing outside the table can be named, ".." included.
 * Static storage; never freed.
 */
const struct web_asset *web_asset_find(const char *path);

#endif
