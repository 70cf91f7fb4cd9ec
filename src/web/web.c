/*
 * web.c -- look-up in the embedded console assets (see web.h).  The table
 * is small (a handful of files), so a linear scan is enough.
 */
#include "web/web.h"

#include <string.h>

const struct web_asset *web_asset_find(const char *path)
{
    if (!path)
        return NULL;
    if (!strcmp(path, "/"))
        path = "/index.html";
    for (const struct web_asset *a = web_assets; a->path; a++)
        if (!strcmp(a->path, path))
            return a;
    return NULL;
}
