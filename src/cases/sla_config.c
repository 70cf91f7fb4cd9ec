/* TEMPORARY stub until the cal branch lands. */
#include "cases/sla_config.h"
#include <string.h>
void sla_config_init(struct sla_config *s) { memset(s, 0, sizeof *s); s->warn_before = 30 * 60000; }
void sla_config_cleanup(struct sla_config *s) { memset(s, 0, sizeof *s); }
