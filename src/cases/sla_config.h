/* TEMPORARY stub until the cal branch lands (replaced by its sla_config.h). */
#ifndef FW_CASES_SLA_CONFIG_H
#define FW_CASES_SLA_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include "cases/calendar.h"
struct sla_policy {
    char *match;
    char *where;
    int line, col;
    const struct calendar *calendar;
    int64_t target[3];
};
struct sla_config {
    int64_t warn_before;
    struct calendar **calendars;
    size_t ncalendars;
    struct sla_policy *policies;
    size_t npolicies;
};
void sla_config_init(struct sla_config *s);
void sla_config_cleanup(struct sla_config *s);
#endif
