/* TEMPORARY stub until the cal branch lands (replaced by its calendar.h). */
#ifndef FW_CASES_CALENDAR_H
#define FW_CASES_CALENDAR_H
#include <stdint.h>
struct calendar;
const char *calendar_name(const struct calendar *c);
int64_t calendar_add(const struct calendar *c, int64_t start, int64_t amount);
int64_t calendar_elapsed(const struct calendar *c, int64_t from, int64_t to);
int calendar_open_at(const struct calendar *c, int64_t t);
void calendar_free(struct calendar *c);
#endif
