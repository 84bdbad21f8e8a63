#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * The service state file that a routing daemon's health hook follows (docs/anycast.md):
 * "up" while this node serves and is not drained, "down" otherwise. Written atomically
 * (temporary file + rename) on every change. Thread-safe.
 */

/* Set the file's path (NULL: no file) and write "down" at once. Returns 0, or a negative
 * ERR_* with the reason in err when the file cannot be written. */
int ctl_state_init(const char *path, char *err, size_t errlen);

/* Serving (sockets bound, data loaded) or not. */
void ctl_state_serving(bool serving);

/* An operator's drain (geocastctl drain / undrain): withdraw while still answering. */
void ctl_state_drain(bool drain);

/* Current values, for status. */
bool ctl_state_is_up(void);
bool ctl_state_is_drained(void);
const char *ctl_state_path(void);
