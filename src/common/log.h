#pragma once

#include "common/util.h"

typedef enum { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;

/* Minimum level printed (default LOG_INFO). Set once at start-up. */
void log_set_level(log_level_t level);

/* Print one line to stderr with a level tag. Thread-safe (one write per line). */
ATTR_PRINTF(2, 3) void log_msg(log_level_t level, const char *fmt, ...);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
