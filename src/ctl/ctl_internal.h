#pragma once

/* Private to src/ctl: what the reload, control-socket, HTTP and metrics files share. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "server/query.h"
#include "server/snapshot.h"

/* Reload bookkeeping, copied out under a lock by ctl_reload_info(). */
typedef struct {
    time_t started;             /* process start (ctl_init) */
    uint64_t reloads;           /* reload attempts since start (SIGHUP and control) */
    uint64_t failures;          /* of which failed */
    time_t last_at;             /* 0: no reload yet */
    bool last_ok;
    char last_trigger[32];
    char last_error[512];       /* empty when last_ok */
} ctl_reload_info_t;

void ctl_reload_info(ctl_reload_info_t *out);

/* The lock that serializes reloads (ctl_reload holds it throughout). Whoever holds it may
 * use the published snapshot without an RCU read-side section (nobody else publishes or
 * frees) and is its routes' one pol_route_set_down() writer. Lock order: this lock
 * before the health lock. trylock returns 0 when taken. */
void ctl_reload_lock(void);
int ctl_reload_trylock(void);
void ctl_reload_unlock(void);

/* Name of srv_stats_t.rcode[i] ("NOERROR", ..., "OTHER" for 23 and above). */
const char *ctl_rcode_name(unsigned i);

/* The status, stats and metrics texts. s: the published snapshot, read by the caller
 * inside an RCU read-side section (borrowed; NULL only while shutting down). */
void ctl_write_status(FILE *f, const snapshot_t *s, bool json);
void ctl_write_stats(FILE *f, bool json);
void ctl_write_metrics(FILE *f, const snapshot_t *s);

/* Thread bodies (ctl.c starts them). stop_fd becomes readable when they must return. */
/* Accept clients on listen_fd one at a time, calling serve(fd, stop_fd) for each, until
 * stop_fd is readable. serve owns the descriptor (it closes it). what names the listener
 * in logs. Backs off briefly when out of descriptors. */
void ctl_accept_loop(int listen_fd, int stop_fd, const char *what,
                     void (*serve)(int fd, int stop_fd));
void ctl_sock_serve(int listen_fd, int stop_fd);
void ctl_http_serve(int listen_fd, int stop_fd);

/* Poll-bounded I/O on a non-blocking socket, giving up at deadline_ms (CLOCK_MONOTONIC
 * milliseconds) or when stop_fd is readable. write_all returns 0 or -1; read_some returns
 * the byte count, 0 on EOF, -1 on error, timeout or stop. */
uint64_t ctl_now_ms(void);
int ctl_write_all(int fd, const char *buf, size_t len, uint64_t deadline_ms, int stop_fd);
ssize_t ctl_read_some(int fd, char *buf, size_t len, uint64_t deadline_ms, int stop_fd);
