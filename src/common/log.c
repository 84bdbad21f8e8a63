#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static log_level_t min_level = LOG_INFO;

void log_set_level(log_level_t level)
{
    min_level = level;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    static const char *const tag[] = { "error", "warning", "info", "debug" };
    if (level > min_level)
        return;
    char line[2048];
    int n = snprintf(line, sizeof(line), "geocast: %s: ", tag[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + MIN((size_t)m, sizeof(line) - (size_t)n - 2);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
