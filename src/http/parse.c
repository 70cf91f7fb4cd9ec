/*
 * parse.c -- the router's pure functions over what a client sends: which
 * route a method and path reach, and the bearer token in an Authorization
 * header.  Kept apart from http.c and auth.c, which need a live connection,
 * so that tests/fuzz/fuzz_http.c can drive them with any bytes.
 *
 * Invariant: nothing here allocates or reads global state other than the
 * const route tables.
 */
#include <string.h>
#include <strings.h>

#include "http/http_int.h"

const struct route *http__route_find(const char *method, const char *path, int *path_known,
                                     const char **tail)
{
    *path_known = 0;
    *tail = NULL;
    for (const struct route *const *tab = http_route_tables; *tab; tab++) {
        for (const struct route *rt = *tab; rt->path; rt++) {
            size_t n = strlen(rt->path);
            int match = rt->prefix ? strncmp(path, rt->path, n) == 0 && path[n]
                                   : strcmp(path, rt->path) == 0;
            if (!match)
                continue;
            *path_known = 1;
            if (!strcmp(rt->method, method)) {
                *tail = rt->prefix ? path + n : NULL;
                return rt;
            }
        }
    }
    return NULL;
}

const char *http__bearer_token(const char *h)
{
    /* The scheme is case-insensitive (RFC 7235 section 2.1): "bearer fw_..." is a bearer token. */
    const char *token =
        h && !strncasecmp(h, "Bearer", 6) && (h[6] == ' ' || h[6] == '\t') ? h + 7 : NULL;
    while (token && (*token == ' ' || *token == '\t'))
        token++;
    return token;
}
