#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/loccache.h"
#include "server/stats.h"

/*
 * The query path: one call per DNS message. Implemented in server/query.c.
 * Threads: any thread registered with liburcu-qsbr (rcu_register_thread), one
 * srv_worker_t per thread; nothing shared is written.
 */

/* Per-thread counters, summed by readers (metrics). */
typedef struct {
    uint64_t udp_queries, tcp_queries;
    uint64_t rcode[24];          /* responses by RCODE (extended rcodes folded to 23) */
    uint64_t dropped;            /* queries dropped without a response */
    uint64_t truncated;          /* UDP responses sent with TC=1 */
    uint64_t ecs_queries;        /* queries that carried a valid ECS option */
    uint64_t tcp_conns_accepted, tcp_conns_rejected, tcp_timeouts;
    uint64_t rrl_dropped;        /* UDP responses withheld by rate limiting */
    uint64_t rrl_slipped;        /* ... sent truncated instead (slip) */
    uint64_t malformed_dropped;  /* shorter than a DNS header: dropped */
    uint64_t malformed_formerr;  /* did not parse: answered FORMERR */
    uint64_t dnstap_sent;        /* dnstap messages queued for the writer thread */
    uint64_t dnstap_dropped;     /* ... lost because the queue was full */
    uint64_t udp_gso_sends;      /* UDP sends that carried several replies (GSO) */
    uint64_t udp_gso_replies;    /* ... and the replies they carried */
    uint64_t udp_gso_refused;    /* GSO sends the kernel refused (replies then sent singly) */
    /* Detailed counters (control.metrics): the fixed tables of server/stats.h. */
    uint64_t qtype[SRV_QT_N];
    uint64_t ecs_scope4[33];     /* replies carrying ECS, by SCOPE prefix length */
    uint64_t ecs_scope6[129];
    uint64_t country[SRV_COUNTRY_N];
} srv_stats_t;

/* Count on the owning thread: a relaxed store, so readers on other threads (relaxed
 * loads in srv_net_stats) never race, at the cost of a plain increment. */
#define SRV_STAT_INC(field) __atomic_store_n(&(field), (field) + 1, __ATOMIC_RELAXED)
#define SRV_STAT_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)

typedef struct srv_rrl srv_rrl_t;
typedef struct srv_tap srv_tap_t;


typedef struct srv_worker {
    unsigned id;
    uint64_t rng;                /* weighted-shuffle state (any non-zero seed) */
    srv_rrl_t *rrl;              /* rate-limit table, made on first use (see rrl.c) */
    srv_tap_t *tap;              /* dnstap and text query log, NULL when both are off */
    srv_loc_cache_t *loc;        /* NULL: no cache (every lookup goes to the GeoIP table) */
    srv_stats_t stats;
    _Alignas(64) char pad_;      /* keep workers' counters on separate cache lines */
} srv_worker_t;

/*
 * Answer one query. q/qlen: the received message (borrowed). resp: output buffer of
 * resp_max bytes (at least 512; 65535 for TCP). src: the client's address (borrowed).
 * tcp: whether the query came over TCP (no UDP size limit, no truncation).
 * Returns the response length, or 0 when the query must be dropped (no response).
 * Never allocates, never blocks.
 */
size_t srv_query_process(srv_worker_t *w, const uint8_t *q, size_t qlen, uint8_t *resp,
                         size_t resp_max, const struct sockaddr *src, bool tcp);
