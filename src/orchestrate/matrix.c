/*
 * matrix.c -- the channel matrix and team routing, as data: which customer
 * channels a decision uses for its severity (or an outage) with and without
 * an open ticket, and the name people know a team by.  Defaults are seed
 * 000's table; `outreach.channel_matrix` in the config replaces cells, and
 * a rule pack's `teams:` names the teams.
 */

#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/util.h"

static const char *const channels[] = {"email",  "sms",          "push",
                                       "in_app", "ticket_reply", "internal_note"};

int orch_matrix_channel_ok(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(channels); i++)
        if (!strcmp(name, channels[i]))
            return 1;
    return 0;
}

void orch_matrix_set(struct orch_channels *cell, const char *const *names, size_t n)
{
    for (size_t i = 0; i < cell->n; i++)
        free(cell->names[i]);
    free(cell->names);
    cell->names = n ? xcalloc(n, sizeof *cell->names) : NULL;
    for (size_t i = 0; i < n; i++)
        cell->names[i] = xstrdup(names[i]);
    cell->n = n;
}

void orch__matrix_defaults(struct orch_config *c)
{
    static const char *const crit_t[] = {"ticket_reply", "sms"};
    static const char *const crit[] = {"email", "sms", "push"};
    static const char *const reply[] = {"ticket_reply"};
    static const char *const email[] = {"email"};
    static const char *const note[] = {"internal_note"};
    static const char *const in_app[] = {"in_app"};
    orch_matrix_set(&c->matrix[SEV_CRITICAL][1], crit_t, 2);
    orch_matrix_set(&c->matrix[SEV_CRITICAL][0], crit, 3);
    orch_matrix_set(&c->matrix[SEV_HIGH][1], reply, 1);
    orch_matrix_set(&c->matrix[SEV_HIGH][0], email, 1);
    orch_matrix_set(&c->matrix[SEV_MEDIUM][1], note, 1);
    orch_matrix_set(&c->matrix[SEV_MEDIUM][0], email, 1);
    orch_matrix_set(&c->matrix[SEV_LOW][1], in_app, 1);
    orch_matrix_set(&c->matrix[SEV_LOW][0], in_app, 1);
    /* Seed 000's outage message is an email ("Service alert for your area"). */
    orch_matrix_set(&c->matrix[ORCH_ROW_OUTAGE][1], reply, 1);
    orch_matrix_set(&c->matrix[ORCH_ROW_OUTAGE][0], email, 1);
}

size_t orch__matrix_pick(const struct orch *o, int row, int ticket, const char **out, size_t max,
                         const char **note)
{
    const struct orch_channels *cell = &o->cfg->matrix[row][ticket ? 1 : 0];
    size_t n = 0;
    *note = NULL;
    /* outreach.medium_email: false keeps MEDIUM internal (seed 000's ladder). */
    if (row == SEV_MEDIUM && !ticket && !o->cfg->medium_email)
        return 0;
    for (size_t i = 0; i < cell->n; i++) {
        if (!strcmp(cell->names[i], "internal_note"))
            *note = cell->names[i];
        else if (n < max)
            out[n++] = cell->names[i];
    }
    return n;
}

const char *orch__group_of(const struct orch *o, const char *team)
{
    for (size_t i = 0; team && o->rules && i < o->rules->nteams; i++)
        if (!strcmp(team, o->rules->teams[i].team))
            return o->rules->teams[i].name;
    return team ? team : "Support";
}

const char *orch__channel_words(const char *channel)
{
    static const struct {
        const char *channel, *words;
    } w[] = {{"email", "email"},
             {"sms", "text message"},
             {"push", "app notification"},
             {"in_app", "app notification"},
             {"ticket_reply", "reply on your ticket"}};
    for (size_t i = 0; i < ARRAY_SIZE(w); i++)
        if (!strcmp(channel, w[i].channel))
            return w[i].words;
    return "message";
}

const char *orch__channel_static(const char *channel)
{
    for (size_t i = 0; i < ARRAY_SIZE(channels); i++)
        if (!strcmp(channel, channels[i]))
            return channels[i];
    return "message";
}
