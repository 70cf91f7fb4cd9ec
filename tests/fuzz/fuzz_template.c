/*
 * fuzz_template.c -- libFuzzer harness for message templates and their
 * partials (src/comms): compile, then render with the sample context, as
 * JSON and as a typed context, then the HTML conversion email uses.
 *
 * Input: the first byte picks the template's path (which decides its
 * audience, channel and so the variables it may use); the rest is split at
 * NUL bytes into the template and up to four partials named p1 .. p4
 * (`{{> p1}}`).  A name that is none of those is looked up among the
 * built-in partials, as comms_tmpl_compile does.
 *
 * Invariants beyond "no crash, no sanitizer report": a refused template
 * says why; a rendered part never exceeds COMMS_RENDER_MAX; the typed
 * context renders exactly what the JSON one with the same values does.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comms/comms.h"
#include "comms/comms_int.h"
#include "util/buf.h"

static const char *const paths[] = {
    "customer/email/SIG-001.tmpl", "customer/sms/SIG-002.tmpl",   "customer/push/x.tmpl",
    "customer/in_app/x.tmpl",      "l1/ticket/SIG-003.tmpl",      "l1/internal_note/x.tmpl",
    "l2/slack/x.tmpl",             "engineering/slack/x.tmpl",    "chatbot/chatbot/x.tmpl",
    "partials/x.tmpl",             "l2/webhook/x.tmpl",           "customer/ticket_reply/x.tmpl",
};

struct parts {
    const char *text[5];
    size_t len[5];
    size_t n;
};

static int find(void *arg, const char *name, size_t n, struct comms__partial *out)
{
    const struct parts *p = arg;
    if (n == 2 && name[0] == 'p' && name[1] >= '1' && name[1] <= '4') {
        size_t i = (size_t)(name[1] - '0');
        if (i >= p->n)
            return -1;
        out->file = "fuzz-partial.tmpl";
        out->text = p->text[i];
        out->len = p->len[i];
        return 0;
    }
    return comms__builtin_partial(NULL, name, n, out);
}

static void check_part(const char *s)
{
    if (s && strlen(s) > COMMS_RENDER_MAX)
        abort();
}

/* Both NULL, or the same text. */
static void check_same(const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ctx;
    static struct comms_ctx *typed;
    if (size < 1)
        return 0;
    if (!ctx) {
        ctx = comms_sample_context();
        if (comms__ctx_from_json(ctx, &typed))
            abort();
    }
    const char *path = paths[data[0] % (sizeof paths / sizeof *paths)];
    struct parts p = {.n = 0};
    const char *s = (const char *)data + 1, *end = (const char *)data + size;
    while (p.n < 5) {
        const char *z = memchr(s, '\0', (size_t)(end - s));
        p.text[p.n] = s;
        p.len[p.n] = (size_t)((z ? z : end) - s);
        p.n++;
        if (!z)
            break;
        s = z + 1;
    }
    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t = NULL;
    int rc = comms__compile("fuzz.tmpl", path, p.text[0], p.len[0], find, &p, &t, &diag);
    if (rc) {
        if (t || !diag.len)
            abort();
    } else {
        struct comms_rendered out, tout;
        int rc1 = comms_render(t, ctx, &out), rc2 = comms_render_ctx(t, typed, &tout);
        if (rc1 != rc2)
            abort();
        if (rc1 == 0) {
            check_part(out.subject);
            check_part(out.title);
            check_part(out.headline);
            check_part(out.text);
            check_same(out.subject, tout.subject);
            check_same(out.title, tout.title);
            check_same(out.headline, tout.headline);
            check_same(out.text, tout.text);
            check_same(out.html, tout.html);
            comms_rendered_cleanup(&out);
            comms_rendered_cleanup(&tout);
        }
        char *h = NULL, *th = NULL;
        rc1 = comms_render_headline(t, ctx, &h);
        if (rc1 != comms_render_headline_ctx(t, typed, &th))
            abort();
        if (rc1 == 0) {
            check_part(h);
            check_same(h, th);
        }
        free(h);
        free(th);
        /* The text an approver edits goes through the same conversion: any bytes. */
        char *z = malloc(p.len[0] + 1), *html = NULL;
        memcpy(z, p.text[0], p.len[0]);
        z[p.len[0]] = '\0';
        if (comms_text_to_html(z, z, &html) == 0)
            free(html);
        free(z);
        comms_tmpl_free(t);
    }
    buf_cleanup(&diag);
    return 0;
}
