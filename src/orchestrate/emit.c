/*
 * emit.c -- a draft becomes a message record: rendered from its template,
 * checked for internal detail, masked, keyed by what it is about (so
 * re-deriving it never duplicates) and handed to the sink.  Quiet and bare
 * orchestrators decide without rendering (see orchestrate.h).
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

/* ---- records ---- */

static char *hex_id(const char *key)
{
    char id[24];
    snprintf(id, sizeof id, "m_%016llx", (unsigned long long)fw_hash(key, strlen(key)));
    return xstrdup(id);
}

/* The record's key (and so its id): what the message is about, not its text. */
static void record_key(const struct draft *d, const char *sig, struct buf *key)
{
    /* kind|customer|signals|audience|channel|extra|at, appended piece by piece: printf
       scanned the signals' JSON twice, for each message. */
    const char *parts[] = {d->kind, d->customer ? d->customer : "-", sig, d->audience, d->channel,
                           d->key_extra ? d->key_extra : ""};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        buf_puts(key, parts[i]);
        buf_putc(key, '|');
    }
    buf_put_int(key, (long long)d->at);
}

/*
 * Quiet: whether the customer message this draft decided counts as an
 * outreach (it was not suppressed), as the stored record says.
 */
static int quiet_counts(struct orch *o, const struct draft *d, const struct comms_tmpl *t)
{
    if (strcmp(d->audience, "customer") || !strcmp(d->status, "suppressed") || !t)
        return 0;
    if (!o->sink.stored_status)
        return 1;
    char *sig = fw_json_dumps(d->signals);
    struct buf key;
    buf_init(&key, 0);
    record_key(d, sig, &key);
    char status[32];
    int counts = o->sink.stored_status(o->sink.ctx, key.data, status, sizeof status)
                     ? 1 /* nothing stored (a journal older than its messages): as decided */
                     : strcmp(status, "suppressed") != 0;
    buf_cleanup(&key);
    free(sig);
    return counts;
}

/*
 * Bare: the record as decided, without text (no rendering).  A message that
 * rendering would have suppressed (output over the cap, an internal id in
 * customer text) is not known to be; a missing template is.
 */
static int emit_bare(struct orch *o, const struct draft *d, const struct comms_tmpl *t)
{
    char *sig = fw_json_dumps(d->signals);
    struct buf key;
    buf_init(&key, 0);
    record_key(d, sig, &key);
    char *id = hex_id(key.data);
    const char *status = t ? d->status : "suppressed", *reason = t ? d->reason : "no_template";
    struct outbox_msg m = {.id = id,
                           .key = key.data,
                           .customer = (char *)d->customer,
                           .audience = (char *)d->audience,
                           .channel = (char *)d->channel,
                           .status = (char *)status,
                           .reason = (char *)reason,
                           .created_at = d->at,
                           .send_at = d->send_at,
                           .recipient = (char *)d->recipient,
                           .signals = sig,
                           .explain = "{}",
                           .meta = "{}"};
    if (o->sink.message)
        o->sink.message(o->sink.ctx, &m);
    int counts = !strcmp(d->audience, "customer") && strcmp(status, "suppressed") != 0;
    free(id);
    free(sig);
    buf_cleanup(&key);
    return counts;
}

/* The customer's phone number from a template context, or NULL. */
static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

/* A copy of an earlier rendering of the same template and context. */
static int copy_rendered(const struct draft *d, struct comms_rendered *r)
{
    if (d->pre_rc)
        return d->pre_rc;
    r->subject = dup_or_null(d->pre->subject);
    r->title = dup_or_null(d->pre->title);
    r->headline = dup_or_null(d->pre->headline);
    r->text = dup_or_null(d->pre->text);
    r->html = dup_or_null(d->pre->html);
    return 0;
}

/*
 * obj (an object's JSON text, "{...}") with "key": val appended as its last
 * member, as setting a new key and dumping the object would write it; val
 * NULL or not a string (invalid UTF-8) leaves obj as it is.
 */
static void splice_str(struct buf *out, const char *obj, const char *key, const char *val)
{
    size_t n = strlen(obj), mark;
    buf_append(out, obj, n - 1);
    if (!val) {
        buf_putc(out, '}');
        return;
    }
    mark = out->len;
    if (n > 2)
        buf_putc(out, ',');
    buf_putc(out, '"');
    buf_puts(out, key);
    buf_puts(out, "\":");
    if (orch__json_str(out, val)) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    buf_putc(out, '}');
}

/*
 * The record's explanation: the draft's (its text when the caller made it
 * once for the decision), its channel's guardrails, then the template's path.
 * No explanation at all stays none (NULL), as before.
 */
static void explain_text(const struct draft *d, const struct comms_tmpl *t, struct buf *out)
{
    char *own = NULL;
    const char *base = d->explain_txt;
    if (!base && d->explain)
        base = own = fw_json_dumps(d->explain);
    if (!base)
        return;
    const char *path = t ? comms_tmpl_path(t) : NULL;
    if (!d->guards) {
        splice_str(out, base, "template", path);
        free(own);
        return;
    }
    /* base + "guardrails": [...]; then the template as above. */
    struct buf tmp;
    buf_init(&tmp, 0);
    size_t n = strlen(base);
    buf_reserve(&tmp, n + strlen(d->guards) + 16);
    buf_append(&tmp, base, n - 1);
    if (n > 2)
        buf_putc(&tmp, ',');
    buf_puts(&tmp, "\"guardrails\":[");
    buf_puts(&tmp, d->guards);
    buf_puts(&tmp, "]}");
    splice_str(out, tmp.data, "template", path);
    buf_cleanup(&tmp);
    free(own);
}

/* Mask phone numbers in one rendered part, in place. */
static void mask_part(struct orch *o, char **part, const char *known)
{
    if (!*part)
        return;
    char *masked = orch__mask_numbers(o, *part, known);
    free(*part);
    *part = masked;
}

/*
 * Render and emit one message record.  Returns 1 when the record counts as
 * an outreach to the customer (a customer message not suppressed), else 0.
 */
int orch__emit(struct orch *o, const struct draft *d, struct comms_rendered *keep)
{
    const struct comms_tmpl *t =
        comms_find(o->tmpl, d->audience, d->channel, d->tmpl_name ? d->tmpl_name : "default");
    if (o->quiet && !o->bare) {
        int counts = quiet_counts(o, d, t);
        /*
         * What follows a customer message (its case's contact clock, its
         * follow-up task) is rebuilt from the record as decided; the sink
         * is quiet too and stores nothing.
         */
        if (counts && o->sink.message)
            emit_bare(o, d, t);
        return counts;
    }
    if (o->bare)
        return emit_bare(o, d, t);
    struct comms_rendered r = {0};
    const char *status = d->status, *reason = d->reason;
    int external = !strcmp(d->audience, "customer");
    char *sig = fw_json_dumps(d->signals);
    struct buf key;
    buf_init(&key, 0);
    record_key(d, sig, &key);
    char *id = hex_id(key.data);
    char unsub[1024] = "";
    if (external && o->cfg->brand.unsubscribe_url && d->customer) {
        snprintf(unsub, sizeof unsub, "%s?m=%s", o->cfg->brand.unsubscribe_url, id);
        comms_ctx_set_str(d->ctx, COMMS_V_unsubscribe_url, unsub);
    }
    if (!t) {
        status = "suppressed";
        reason = "no_template";
    } else if (d->pre ? copy_rendered(d, &r)
                      : (o->text_only ? comms_render_text_ctx : comms_render_ctx)(t, d->ctx, &r)) {
        status = "suppressed";
        reason = "render_failed: output over the cap";
    }
    comms_ctx_unset(d->ctx, COMMS_V_unsubscribe_url);
    if (external && r.text) {
        /* No internal detail in external text; phone numbers masked, in every part. */
        if (strstr(r.text, "SIG-") || (r.subject && strstr(r.subject, "SIG-")) ||
            (r.title && strstr(r.title, "SIG-"))) {
            status = "suppressed";
            reason = "internal_detail: the text names an internal signal id";
        }
        const char *known = comms_ctx_str(d->ctx, COMMS_V_customer_phone);
        mask_part(o, &r.text, known);
        mask_part(o, &r.html, known);
        mask_part(o, &r.subject, known);
        mask_part(o, &r.title, known);
    }
    /* The record's explanation and meta: the draft's, then the channel's checks, the template
       and the unsubscribe link appended as text (no tree is changed, nothing dumped twice). */
    struct buf ex, meta;
    buf_init(&ex, 0);
    buf_init(&meta, 0);
    explain_text(d, t, &ex);
    if (d->meta || unsub[0]) {
        char *mt = d->meta ? fw_json_dumps(d->meta) : NULL;
        if (mt || !d->meta)
            splice_str(&meta, mt ? mt : "{}", "unsubscribe_url", unsub[0] ? unsub : NULL);
        free(mt);
    }
    struct outbox_msg m = {
        .key = key.data,
        .customer = (char *)d->customer,
        .audience = (char *)d->audience,
        .channel = (char *)d->channel,
        .status = (char *)status,
        .reason = (char *)reason,
        .created_at = d->at,
        .send_at = d->send_at,
        .recipient = (char *)d->recipient,
        .subject = r.subject ? r.subject : r.title,
        .body = r.text,
        .html = r.html,
        .signals = sig,
    };
    m.id = id;
    m.explain = ex.data;
    m.meta = meta.data ? meta.data : "{}";
    if (o->sink.message)
        o->sink.message(o->sink.ctx, &m);
    free(m.id);
    buf_cleanup(&ex);
    buf_cleanup(&meta);
    free(sig);
    buf_cleanup(&key);
    if (keep && t && !reason)
        *keep = r;
    else if (keep && t && status && strcmp(status, "suppressed"))
        *keep = r;
    else
        comms_rendered_cleanup(&r);
    return external && strcmp(status, "suppressed") != 0;
}

void orch__emit_task(struct orch *o, struct ladder *l, const char *status)
{
    if (o->quiet)
        return;
    struct task_row row = {
        .key = l->key,
        .customer = l->c ? l->c->key : NULL,
        .kind = orch__step_names[l->kind],
        .status = status,
        .detail = l->detail,
        .due_at = l->t._tw.due,
        .created_at = l->created_at,
    };
    if (o->sink.task)
        o->sink.task(o->sink.ctx, &row);
}
