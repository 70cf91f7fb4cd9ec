/*
 * fuzz_http.c -- libFuzzer harness for the router's pure functions: what
 * a client controls before any handler runs.  The first byte picks the
 * target, the rest is the input:
 *
 *   0  route matching: "METHOD\0path" through http__route_find, and the
 *      console's static files (web_asset_find) for paths no route has;
 *   1  the Authorization header: http__bearer_token, then the token's
 *      shape check and digest;
 *   2  the session cookie's value through the session table;
 *   3  query parameter values as the handlers parse them: an RFC 3339
 *      time (fw_time_parse) and a duration (fw_duration_parse).
 *
 * libmicrohttpd itself splits the query string and the Cookie header; its
 * parsers are not ours to fuzz.
 *
 * Invariants beyond "no crash, no sanitizer report": a route found has the
 * method asked for, and a prefix route a non-empty tail inside the path;
 * the bearer token points into the header; an unknown session is refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/auth.h"
#include "http/http_int.h"
#include "util/fwtime.h"
#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sessions *ss;
    if (size < 1)
        return 0;
    if (!ss)
        ss = http__sessions_new();
    /* The strings a server sees are NUL-terminated: keep only what precedes a NUL. */
    char *in = malloc(size);
    memcpy(in, data + 1, size - 1);
    in[size - 1] = '\0';
    size_t n = strlen(in);
    switch (data[0] % 4) {
    case 0: {
        /* METHOD, NUL, path: the method is what precedes the first NUL of the raw input. */
        const char *method = in;
        const char *path = n + 1 < size - 1 ? in + n + 1 : "/";
        int known;
        const char *tail;
        const struct route *rt = http__route_find(method, path, &known, &tail);
        if (rt) {
            if (!known || strcmp(rt->method, method))
                abort();
            if (rt->prefix && (!tail || !*tail || tail < path || tail > path + strlen(path)))
                abort();
            if (!rt->prefix && tail)
                abort();
        } else if (!known) {
            web_asset_find(path);
        }
        break;
    }
    case 1: {
        const char *tok = http__bearer_token(in);
        if (tok) {
            if (tok < in || tok > in + n)
                abort();
            unsigned char d[AUTH_DIGEST_LEN];
            auth_token_wellformed(tok, strlen(tok));
            auth_token_digest(tok, strlen(tok), d);
        }
        break;
    }
    case 2: {
        unsigned char d[AUTH_DIGEST_LEN];
        char csrf[64];
        if (http__session_lookup(ss, in, d, csrf) == 0)
            abort(); /* no session was ever made */
        break;
    }
    default: {
        int64_t t;
        fw_time_parse(in, n, &t);
        fw_duration_parse(in, n, &t);
        break;
    }
    }
    free(in);
    return 0;
}
