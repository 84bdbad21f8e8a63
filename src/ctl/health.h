#pragma once

/*
 * Health checks (docs/config.md `monitors`, docs/operations.md): the `up` step of the
 * filter chain (DESIGN §2).
 *
 * Each (monitor, target) pair named by the configuration is checked once, however many
 * routes use it, by one thread that runs every check on non-blocking sockets under
 * poll(): tcp (connect), http (GET with a Host header, expected status, optional body
 * substring), dns (a UDP query, expected rcode) and file (a state file other programs
 * write). Thresholds damp flapping: `down` consecutive failures take an up target down,
 * `up` consecutive successes bring a down one back. Every target starts up; its first
 * result decides its state at once (no threshold), later results go through the
 * thresholds. Operators' overrides (set-state) pin a pair, an address or a whole monitor
 * up or down; they beat the checks and survive reloads.
 *
 * The states live here, outside the snapshot, keyed by monitor name and target. They
 * reach the query path through pol_route_set_down() on the published snapshot's routes,
 * always with ctl's reload lock held (so no reload publishes or frees a snapshot
 * meanwhile, and pol_route_set_down has its one writer); ctl_reload() calls
 * hc_prepare() on each new snapshot before publishing it, so a reload never serves a
 * down answer, even for an instant.
 *
 * Lock order: the reload lock, then the health lock. The health thread never waits for
 * the reload lock (it tries, and retries a few milliseconds later while a reload runs).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/util.h"
#include "server/snapshot.h"

/* The threshold state of one target. */
typedef struct {
    bool up;          /* the checked state */
    bool known;       /* at least one result seen */
    unsigned streak;  /* consecutive results that disagree with `up` */
} hc_fsm_t;

/* A fresh state: up, nothing seen. */
void hc_fsm_init(hc_fsm_t *f) ATTR_NONNULL(1);

/* Feed one result (ok: the check passed). The first result sets the state directly;
 * afterwards it changes after up_thresh consecutive successes (down -> up) or
 * down_thresh consecutive failures (up -> down). Returns true when the state changed. */
bool hc_fsm_step(hc_fsm_t *f, bool ok, unsigned up_thresh, unsigned down_thresh)
    ATTR_NONNULL(1);

/*
 * What a file monitor's text says about target: lines "up" or "down" (every target) and
 * "TARGET up|down" (that one; it wins over a bare line; the last matching line of each
 * kind wins). Blank lines and '#' comments are ignored, case does not matter. Returns 1
 * (up), 0 (down), or -1 (the text says nothing about target).
 */
int hc_file_state(const char *text, size_t len, const char *target) ATTR_NONNULL(1, 3);

/*
 * Take the targets of snapshot s (not yet published, or the current one at start): add
 * the new (monitor, target) pairs, drop those no route uses any more (a pair whose
 * monitor settings changed starts afresh), bind them to s's routes and mark s's down
 * answers with pol_route_set_down(). Call with the reload lock held (ctl_reload does,
 * before publishing s). s is borrowed: hc keeps pointers into it until the next call
 * or hc_stop(), which is why s must be the snapshot published next.
 */
void hc_prepare(snapshot_t *s) ATTR_NONNULL(1);

/* Start the health thread on the published snapshot. Call once, from the main thread,
 * after ctl_init() and before anything can reload. Returns 0 or a negative ERR_* with
 * the reason in err. */
int hc_start(char *err, size_t errlen) ATTR_NONNULL(1);

/* Stop and join the thread, close every check and forget every target. Safe without
 * hc_start(). Call before the last snapshot is freed. */
void hc_stop(void);

/*
 * Operator override: what is "MONITOR", "ADDRESS" (every monitor checking it) or
 * "MONITOR:ADDRESS"; state is "up", "down" or "auto" (remove the override set on
 * exactly that name). The most specific override wins (pair, then address, then
 * monitor). Applied to the published snapshot at once; kept across reloads. Writes a
 * summary to out. Returns 0, or ERR_INVAL / ERR_NOTFOUND with the reason in err.
 * Takes the reload lock: the caller must not hold it, and must not be inside an RCU
 * read-side section.
 */
int hc_set_state(const char *what, const char *state, FILE *out, char *err, size_t errlen)
    ATTR_NONNULL(1, 2, 3, 4);

/* Every checked pair: state, checked state, override, last result, last change, flaps;
 * then the overrides. Text or JSON. Thread-safe. */
void hc_write_state(FILE *f, bool json) ATTR_NONNULL(1);

/* geocast_monitor_up and geocast_monitor_flaps_total (Prometheus text). Thread-safe. */
void hc_write_metrics(FILE *f) ATTR_NONNULL(1);
