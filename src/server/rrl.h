#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "server/query.h"
#include "server/snapshot.h"

/*
 * Response rate limiting (server.rrl), as BIND, Knot and NSD do it: UDP responses are
 * counted per second per (client prefix, response class); past the rate they are
 * dropped, except every slip-th, which goes out truncated so that a real client behind
 * a spoofed flood can retry over TCP. TCP is never limited.
 *
 * Each worker keeps its own table (nothing shared is written), so the rate applies per
 * worker: a flood whose packets spread over N workers can get up to N x rate through.
 */
typedef enum { SRV_RRL_PASS = 0, SRV_RRL_DROP, SRV_RRL_SLIP } srv_rrl_verdict_t;

/* Account one UDP response of class cls (a hash of what makes responses alike) to the
 * client src. Allocates the worker's table on first use (once per thread). */
srv_rrl_verdict_t srv_rrl_account(srv_worker_t *w, const snapshot_t *snap,
                                  const struct sockaddr *src, uint64_t cls);

/* Free a worker's table; NULL is a no-op. */
void srv_rrl_free(srv_rrl_t *t);
