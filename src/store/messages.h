/*
 * messages.h -- the outbox, tasks and chatbot contexts in SQLite.
 *
 * A message row is written in the same transaction as the decision that
 * made it (the orchestrator runs inside the pipeline's group commit), keyed
 * by a deterministic idempotency key: re-deriving decisions during recovery
 * inserts nothing twice.  From then on the row's status is the dispatcher's
 * and the API's to change; recovery never overwrites it.
 *
 * Statuses:
 *   scheduled          waiting for send_at (engine clock) and next_attempt_at (wall clock)
 *   awaiting_approval  held for a person: approve, edit or reject through the API
 *   suppressed         held back by a guardrail (reason says which); never sent
 *   sending            claimed by a dispatcher worker (a crash leaves it; it is retried)
 *   sent               delivered (or stored, for in_app and chatbot)
 *   stored             rendered and kept, no connector configured for the channel
 *   retrying           last attempt failed; next_attempt_at says when to retry
 *   dead               gave up (gave_up says why); re-driven when its connector delivers
 *                      again (expired only) or through the API
 *   rejected           a person rejected it
 */
#ifndef FW_STORE_MESSAGES_H
#define FW_STORE_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

struct outbox_msg {
    char *id;       /* "m_" + 16 hex digits of a hash of key */
    char *key;      /* idempotency key, passed to receivers that honour one */
    char *customer; /* NULL for messages about incidents */
    char *audience; /* customer, l1, l2, chatbot, engineering */
    char *channel;  /* email, sms, push, in_app, ticket_reply, internal_note, ticket, slack,
                       chatbot, webhook */
    char *status;
    char *reason; /* why suppressed/held, or NULL */
    int64_t created_at;      /* decision time, engine clock */
    int64_t send_at;         /* earliest send time, engine clock */
    int64_t next_attempt_at; /* wall clock ms; 0 = now */
    int attempts;
    char *last_error;
    char *recipient; /* email address, E.164 phone, ticket id, customer key ... or NULL */
    char *subject, *body, *html;
    char *signals; /* JSON array text */
    char *explain; /* JSON object text: detection, rules and guardrails that decided it */
    char *meta;    /* JSON object text: connector extras (priority, tags, group, ticket_id, ...) */
    int64_t sent_at, read_at, updated_at; /* 0 when unset */
    int64_t first_failed_at; /* retry clock ms of the first failed attempt; 0 = none */
    char *gave_up;           /* dead only: "expired" (retries ran out) or "refused"; else NULL */
};

void outbox_msg_cleanup(struct outbox_msg *m);

/* Insert unless the key exists. *inserted (may be NULL) tells which. */
int store_message_insert(struct store *s, const struct outbox_msg *m, int *inserted);
/* The status of the message with this key: 0, FW_ENOTFOUND or FW_EDB. */
int store_message_status_by_key(struct store *s, const char *key, char *status, size_t n);
/* Load one message by id. FW_ENOTFOUND when absent. */
int store_message_get(struct store *s, const char *id, struct outbox_msg *out);
/* Append the message as JSON (every field; text included). */
void store_message_json(const struct outbox_msg *m, struct buf *out);

struct message_query {
    const char *customer, *status, *channel, *audience; /* NULL: any */
    int64_t after; /* cursor */
    int limit;
};
/* {"messages":[...],"next_cursor":...}; bodies included. */
int store_messages_json(struct store *s, const struct message_query *q, struct buf *out);

/*
 * Status changes by people (API).  Each checks the current status inside
 * the statement (compare-and-set) and returns FW_ENOTFOUND for an unknown id,
 * FW_ESTATE when the message is not in a state that allows it.
 */
int store_message_approve(struct store *s, const char *id, int64_t now_engine, int64_t now_wall);
int store_message_reject(struct store *s, const char *id, const char *why, int64_t now_wall);
int store_message_edit(struct store *s, const char *id, const char *subject, const char *body,
                       const char *html, int64_t now_wall);
int store_message_retry(struct store *s, const char *id, int64_t now_wall);
/* In-app: mark read (only channel in_app, for that customer). */
int store_inapp_read(struct store *s, const char *customer, const char *id, int64_t now_wall);

/*
 * Tasks: ladder steps, post-ticket reminders (the orchestrator's), and
 * follow-up tasks after outreach (the cases module's, kind
 * "outreach_followup", with an assignee and a case).  Idempotent on key;
 * an update rewrites status, assignee, due time and detail.
 */
struct task_row {
    const char *key, *customer, *kind, *status, *detail;
    const char *assignee, *case_id; /* NULL for the orchestrator's */
    int64_t due_at, created_at;
};
int store_task_upsert(struct store *s, const struct task_row *t, int64_t now);
/* A page of tasks: every filter NULL (or FW_TIME_NONE) matches any. */
struct task_query {
    const char *customer, *status, *kind, *assignee, *team, *case_id;
    int open;           /* state=open: status open or pending */
    int64_t due_before; /* FW_TIME_NONE: any */
    int64_t now;        /* for "overdue" */
    int64_t after_due, after_seq; /* the cursor: rows after (due_at, seq); after_seq 0: start */
    int limit;
};
/* {"tasks":[...],"next_cursor":...}, by due time. */
int store_tasks_json(struct store *s, const struct task_query *q, struct buf *out);
/* One task row as JSON (the list's shape): 0, FW_ENOTFOUND or FW_EDB. */
int store_task_get(struct store *s, const char *key, int64_t now, struct buf *out);

/* Chatbot context: the latest proactive_context per customer. */
int store_context_put(struct store *s, const char *customer, const char *json, int64_t now);
int store_context_get(struct store *s, const char *customer, struct buf *out);

/* ---- for the dispatcher (delivery module), implemented in outbox.c ---- */

/*
 * Claim up to `max` messages of one channel that are due: status scheduled
 * or retrying, send_at <= engine_now, next_attempt_at <= wall_now; they
 * become `sending` with attempts+1, in one transaction.  Returns the number
 * claimed (rows owned by the caller; outbox_msg_cleanup each).
 */
int store_outbox_claim(struct store *s, const char *channel, int64_t engine_now, int64_t wall_now,
                       struct outbox_msg *out, int max);
/* Delivery outcomes. */
int store_outbox_sent(struct store *s, const char *id, int64_t wall_now, const char *status);
/*
 * A failed attempt: `retrying` until retry_at (retry clock), or, when
 * gave_up is set ("expired", "refused"), `dead`.  failed_at (retry clock)
 * becomes first_failed_at unless the row has one already.
 */
int store_outbox_failed(struct store *s, const char *id, const char *error, int64_t retry_at,
                        const char *gave_up, int64_t failed_at, int64_t wall_now);
/*
 * Re-drive dead letters: back to `retrying` with a fresh retry window and
 * their idempotency key unchanged (a receiver that did get one drops the
 * repeat).  Filters (NULL or 0: any): channels (NULL-terminated), only
 * those that died of expiry (expired_only), died at or after since and
 * before until (updated_at).  Returns the number re-driven, or FW_EDB.
 */
struct redrive_filter {
    const char *const *channels;
    int expired_only;
    int64_t since, until;
};
int store_outbox_redrive(struct store *s, const struct redrive_filter *f, int64_t wall_now);
/* How many dead letters of these channels (NULL-terminated) died of expiry: n, or FW_EDB. */
int store_outbox_expired_count(struct store *s, const char *const *channels);
/*
 * One row left `sending` by a worker that could not record its outcome
 * (the database refused: disk full, I/O error) goes back to `retrying`,
 * due at once: 0, FW_ESTATE when it is not `sending`, FW_EDB.
 */
int store_outbox_requeue_one(struct store *s, const char *id, int64_t wall_now);
/* At start: rows left `sending` by a crash go back to `retrying`. Returns the count. */
int store_outbox_requeue(struct store *s, int64_t wall_now);
/*
 * Earliest time something of `channel` could become due, on each clock.
 * A row that has never failed (next_attempt_at 0) waits on the engine
 * clock only: *engine_at is the smallest send_at among those.  A failed
 * row has passed its send_at already and waits on the wall clock only:
 * *wall_at is the smallest next_attempt_at among those.  INT64_MAX when
 * none.  (Only scheduled/retrying rows count.)
 */
int store_outbox_next(struct store *s, const char *channel, int64_t *engine_at, int64_t *wall_at);

#endif
