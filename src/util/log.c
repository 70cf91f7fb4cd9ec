/*
 * log.c -- stderr logger.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "util/fwtime.h"

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char line[2048], ts[FW_TIME_MAXLEN];
    fw_time_format(fw_wall_now(), ts);
    int n = snprintf(line, sizeof line, "%s forewarn[%s] ", ts, names[level]);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
