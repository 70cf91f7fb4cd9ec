/*
 * sla_config.h -- the `sla:` section of the server configuration: business
 * calendars and the policies that pick a calendar and SLA targets for a
 * case.  Parsed by sla_config_parse, embedded in struct config.
 */
#ifndef FW_SLA_CONFIG_H
#define FW_SLA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cases/calendar.h"
#include "util/yaml.h"
#include "util/buf.h"

/* The three clocks of a case, indexes into sla_policy.target. */
enum { SLA_FIRST_RESPONSE, SLA_CUSTOMER_CONTACT, SLA_RESOLUTION, SLA_NTARGETS };

struct sla_policy {
    char *match;   /* condition source in the rule language, or NULL: every case (owned) */
    char *where;   /* "file:line:col" of the match value, for errors reported later (owned) */
    int line, col; /* of the match value's first character (1-based; 0 when no match) */
    const struct calendar *calendar; /* NULL: 24x7; borrowed from sla_config.calendars */
    int64_t target[SLA_NTARGETS];    /* ms; -1 = not set (the severity default applies) */
};

struct sla_config {
    int64_t warn_before;         /* default 30 minutes; 0 = no early warning */
    struct calendar **calendars; /* owned */
    size_t ncalendars;
    struct sla_policy *policies; /* in file order: the first whose match holds wins */
    size_t npolicies;
};

/* Defaults: warn_before 30 minutes, no calendars, no policies. */
void sla_config_init(struct sla_config *s);
/* Free everything; s is left as after sla_config_init. */
void sla_config_cleanup(struct sla_config *s);
/* The calendar named `name`, or NULL. */
const struct calendar *sla_calendar_find(const struct sla_config *s, const char *name);

/*
 * Parse the `sla:` mapping n of document d.  All or nothing: on success s
 * is replaced by what the section says (settings it does not mention get
 * their defaults) and 0 returned; on any error every problem is appended
 * to diag (file:line:col, source line, caret), s is left untouched and
 * FW_EPARSE returned.  Match expressions are kept as source, not compiled.
 */
int sla_config_parse(struct sla_config *s, struct ydoc *d, yaml_node_t *n, struct buf *diag);

#endif
