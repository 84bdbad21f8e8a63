#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/util.h"
#include "server/snapshot.h"

/*
 * The control plane (docs/operations.md): reload, the control socket and the metrics
 * listener.
 *
 * - ctl_reload() is the one reload path: SIGHUP (main thread) and the control socket's
 *   `reload` both call it. It builds a new snapshot off the query threads, publishes it,
 *   waits for a grace period and frees the old one; a failed reload keeps the old
 *   snapshot. Reloads are serialized by a mutex.
 * - ctl_start() starts up to two threads: the control socket (a Unix stream socket, one
 *   line per request) and the HTTP metrics listener (GET /metrics). Both register with
 *   liburcu-qsbr and stay offline except while they read the published snapshot, so they
 *   never delay a grace period and may call ctl_reload().
 * - The query threads are never blocked: metrics are their per-thread counters summed on
 *   read (srv_net_stats).
 */

#define CTL_VERSION "0.1.0"
#define CTL_DEFAULT_SOCKET "/run/geocast/control.sock"
#define CTL_REQUEST_MAX 1024   /* bytes per control request line, newline included */

/* Load config, zones and GeoIP data from path into a new (unpublished) snapshot, which
 * owns its config. Returns NULL with "file:line: reason" in err on failure. Warnings go
 * to the log. Thread-safe but not reentrant with itself (the generation counter): call
 * ctl_reload() to reload a running server. */
snapshot_t *ctl_load(const char *path, char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Record the config path reloads read (borrowed: must outlive the server) and the start
 * time. Call once in main, before ctl_reload() or ctl_start(). */
void ctl_init(const char *config_path) ATTR_NONNULL(1);

/*
 * Reload now: ctl_load(), publish, synchronize_rcu(), free the old snapshot. The calling
 * thread must not be inside an RCU read-side section (an unregistered thread, or a
 * registered one that is offline). trigger names the source in the log ("SIGHUP",
 * "control socket"). Returns 0 on success or a negative ERR_* with the reason in err (the
 * old snapshot keeps serving). Counted in the reload metrics. Thread-safe (serialized).
 */
int ctl_reload(const char *trigger, char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Tell systemd (sd_notify; nothing without $NOTIFY_SOCKET) MAINPID, READY=1 and a STATUS=
 * line with the published snapshot's counts. main calls it once serving; ctl_reload()
 * sends RELOADING=1 (with MONOTONIC_USEC) before and READY=1 (with STATUS=) after every
 * reload, ok or failed. Thread-safe (takes the reload lock). */
void ctl_notify_ready(void);

typedef struct {
    const char *socket;                  /* control socket path, or NULL (off) */
    bool chown;                          /* give the socket (and a directory we create
                                            for it) to owner:group */
    uid_t owner;
    gid_t group;
    const struct sockaddr *http;         /* metrics listener address, or NULL (off) */
    socklen_t http_len;
} ctl_conf_t;

/*
 * Bind the control socket and the metrics listener and start their threads. The socket's
 * directory is created (0755) when missing; the socket file gets mode 0660. With chown,
 * the socket file and the directory when created here go to owner:group (a daemon that
 * drops privileges can still remove the socket at exit). A stale
 * socket file (nobody accepts on it) is replaced; a live one is an error ("another
 * geocastd is running"). Returns 0, or a negative ERR_* with the reason in err and
 * nothing left running or bound. Call from the main thread after the first snapshot is
 * published and with signals blocked.
 */
int ctl_start(const ctl_conf_t *conf, char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Stop the threads (join), close the listeners and remove the socket file. Safe to call
 * when ctl_start() was not called or failed. */
void ctl_stop(void);

/*
 * The explain and lookup commands, shared by the control socket (on the running snapshot)
 * and geocastctl's offline mode (on a snapshot it loads), so both print the same thing.
 * s is borrowed (read it inside an RCU read-side section when it is the published one).
 * Output goes to out. Returns 0 on success; 1 when explain's step-by-step result disagrees
 * with the compiled table (output printed; err says so); ERR_INVAL for bad arguments and
 * ERR_NOTFOUND when the name is not routed or there is no GeoIP data, with the reason in
 * err.
 */
int ctl_explain(const snapshot_t *s, const char *name, const char *type, const char *client,
                bool json, FILE *out, char *err, size_t errlen) ATTR_NONNULL(1, 2, 3, 4, 6, 7);
int ctl_lookup(const snapshot_t *s, const char *address, bool json, FILE *out, char *err,
               size_t errlen) ATTR_NONNULL(1, 2, 4, 5);
/* lookup from the configuration alone (geocastctl -c): its GeoIP sources are read once, in
 * full, and nothing else (a zone that fails to load does not stop it; `check` says so). */
int ctl_lookup_conf(const conf_t *conf, const char *address, bool json, FILE *out, char *err,
                    size_t errlen) ATTR_NONNULL(1, 2, 4, 5);

/*
 * geodiff: compile conf's routes against two MaxMind DB files (in place of the GeoIP data
 * the config names, read with the schema of its first mmdb source) and report, per route
 * and for any route, how much address space gets a different first answer and a
 * different ordered answer list (before the weighted shuffle) under new_path than under
 * old_path: IPv4 in addresses, IPv6 in /64 networks (outside the IPv6 regions that alias
 * IPv4, which are counted as IPv4). Text, or one JSON object when json. conf is
 * borrowed; nothing is published. Returns 0, or a negative ERR_* with "file: reason" in
 * err. Allocates freely; walks every block of both tables (about a second per distinct
 * policy on GeoLite2 City).
 */
int ctl_geodiff(const conf_t *conf, const char *old_path, const char *new_path, bool json,
                FILE *out, char *err, size_t errlen) ATTR_NONNULL(1, 2, 3, 5, 6);

/*
 * geoip.watch (docs/operations.md): a thread watches the directories of the configured
 * GeoIP files with inotify and, when one of those files is renamed into place or written
 * and closed, waits geoip.watch_delay (every further event restarts the wait) and calls
 * ctl_reload("GeoIP file watch"). A failed reload keeps the old data, like any other.
 *
 * ctl_watch_update() hands over the files to watch (conf is borrowed; its paths are
 * copied) and is called with the first config before ctl_watch_start() and by
 * ctl_reload() after each successful reload; with geoip.watch off nothing is watched.
 * ctl_watch_start() starts the thread (ERR_* with the reason on failure);
 * ctl_watch_stop() stops and joins it, waiting for a reload it started, and is safe
 * when it was not started. Main thread only, except ctl_watch_update (thread-safe).
 */
void ctl_watch_update(const conf_t *conf) ATTR_NONNULL(1);
int ctl_watch_start(char *err, size_t errlen) ATTR_NONNULL(1);
void ctl_watch_stop(void);
