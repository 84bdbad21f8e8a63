#pragma once

/*
 * Detailed query counters (docs/operations.md, "Metrics").
 *
 * Two kinds:
 *  - fixed tables that do not depend on the data served (query types, ECS scopes, client
 *    countries) live in srv_stats_t, one copy per I/O thread (server/query.h);
 *  - counters by zone and by routed answer depend on the snapshot: each snapshot carries
 *    a srv_snapstats_t with one cache-line-aligned row of counters per I/O thread (slot =
 *    srv_worker_t.id). A thread writes only its own row; readers sum the rows.
 *
 * Reloads: every snapshot is registered from build to free. A scrape sums the counters of
 * every registered snapshot by label (zone name, route, answer value), plus the totals of
 * snapshots already freed, folded in by label when they are freed. So a counter never goes
 * backwards across a reload, a zone or answer that a reload removes keeps its last total,
 * and one that it adds starts at zero.
 *
 * Threads: srv_snapstats_* counting helpers run on the query path (no allocation, no
 * shared writes); srv_snapstats_new/retire and srv_stats_write_* run on the control plane.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dns/rrtype.h"
#include "policy/policy.h"
#include "zone/zone.h"

struct snapshot;

/* Query types counted by name; everything else is "other". */
enum {
    SRV_QT_A, SRV_QT_NS, SRV_QT_CNAME, SRV_QT_SOA, SRV_QT_PTR, SRV_QT_MX, SRV_QT_TXT,
    SRV_QT_AAAA, SRV_QT_SRV, SRV_QT_NAPTR, SRV_QT_DS, SRV_QT_DNSKEY, SRV_QT_SVCB,
    SRV_QT_HTTPS, SRV_QT_CAA, SRV_QT_ANY, SRV_QT_OTHER, SRV_QT_N
};

/* Client countries: "AA".."ZZ" as (c0 - 'A') * 26 + (c1 - 'A'), and one slot for
 * addresses with no known country (no GeoIP data, private, not in the database). */
#define SRV_COUNTRY_UNKNOWN (26 * 26)
#define SRV_COUNTRY_N (26 * 26 + 1)

static inline unsigned srv_qtype_index(uint16_t t)
{
    switch (t) {
    case DNS_T_A: return SRV_QT_A;
    case DNS_T_NS: return SRV_QT_NS;
    case DNS_T_CNAME: return SRV_QT_CNAME;
    case DNS_T_SOA: return SRV_QT_SOA;
    case DNS_T_PTR: return SRV_QT_PTR;
    case DNS_T_MX: return SRV_QT_MX;
    case DNS_T_TXT: return SRV_QT_TXT;
    case DNS_T_AAAA: return SRV_QT_AAAA;
    case DNS_T_SRV: return SRV_QT_SRV;
    case DNS_T_NAPTR: return SRV_QT_NAPTR;
    case DNS_T_DS: return SRV_QT_DS;
    case DNS_T_DNSKEY: return SRV_QT_DNSKEY;
    case DNS_T_SVCB: return SRV_QT_SVCB;
    case DNS_T_HTTPS: return SRV_QT_HTTPS;
    case DNS_T_CAA: return SRV_QT_CAA;
    case DNS_T_ANY: return SRV_QT_ANY;
    default: return SRV_QT_OTHER;
    }
}

/* "A", "AAAA", ... "other". */
const char *srv_qtype_label(unsigned i);

/* The slot of a two-letter country code ("US"), SRV_COUNTRY_UNKNOWN for anything else. */
static inline unsigned srv_country_index(const char *cc)
{
    unsigned a = (unsigned char)cc[0] - 'A', b = a < 26 ? (unsigned char)cc[1] - 'A' : 26;
    return a < 26 && b < 26 && !cc[2] ? a * 26 + b : SRV_COUNTRY_UNKNOWN;
}

/* Per-snapshot counters. Read-only layout after srv_snapstats_new; the counters are
 * written by their slot's thread only (relaxed stores), read by srv_stats_write_*. */
typedef struct srv_snapstats {
    bool detailed;              /* control.metrics.detailed: count zones, answers, qtypes */
    bool countries;             /* control.metrics.countries: one GeoIP lookup per query */
    unsigned nslots;            /* rows: I/O threads (UDP workers, then TCP) */
    size_t nzones;              /* columns [0, nzones): zones; nzones: "none" */
    size_t nroutes;
    const pol_route_t *route0;  /* the set's first route (routes are one array) */
    size_t *abase;              /* per route: first answer column (after the zones) */
    size_t stride;              /* uint64 per row, a multiple of 8 (64 bytes) */
    uint64_t *c;                /* nslots rows */
    char **rlabel;              /* per route: "www.example.com/A" */
    const zone_t **zkey;        /* open-addressing hash: zone pointer -> column */
    uint32_t *zval;
    uint32_t zmask;
    struct snapshot *owner;     /* registry links (stats.c) */
    struct srv_snapstats *next;
} srv_snapstats_t;

/* Make s->stats for a snapshot that holds its zones and routes, and register it. nslots
 * is at least the number of I/O threads that can serve it (srv_stats_min_slots()).
 * Control plane; allocates (aborts on OOM like the rest of the loader). */
void srv_snapstats_new(struct snapshot *s);

/* Fold s->stats into the by-label totals and unregister it; call once no thread can
 * count into it (after the grace period), before the zones and routes are freed. NULL
 * stats is a no-op. */
void srv_snapstats_retire(struct snapshot *s);

/* Make later snapshots have at least n slots (the network layer calls it at start). */
void srv_stats_min_slots(unsigned n);

static inline uint64_t *srv_snapstats_row(const srv_snapstats_t *st, unsigned slot)
{
    return slot < st->nslots ? st->c + (size_t)slot * st->stride : NULL;
}

#define SRV_SNAP_INC(p) __atomic_store_n((p), *(p) + 1, __ATOMIC_RELAXED)

/* The label of route r of this snapshot ("www.example.com/A"), "?" if not one of its. */
static inline const char *srv_snapstats_route_label(const srv_snapstats_t *st,
                                                    const pol_route_t *r)
{
    size_t ri = (size_t)(r - st->route0);
    return ri < st->nroutes ? st->rlabel[ri] : "?";
}

/* Count a query answered from z (NULL: no zone, e.g. REFUSED). Query path. */
static inline void srv_snapstats_zone(const srv_snapstats_t *st, unsigned slot, const zone_t *z)
{
    uint64_t *row = srv_snapstats_row(st, slot);
    if (!row)
        return;
    size_t col = st->nzones;
    if (z) {
        uintptr_t h = ((uintptr_t)z >> 4) * 0x9E3779B97F4A7C15ull;
        for (uint32_t i = (uint32_t)(h >> 32) & st->zmask; st->zkey[i]; i = (i + 1) & st->zmask)
            if (st->zkey[i] == z) {
                col = st->zval[i];
                break;
            }
    }
    SRV_SNAP_INC(&row[col]);
}

/* Count answer i of route r as sent. Query path. */
static inline void srv_snapstats_answer(const srv_snapstats_t *st, unsigned slot,
                                        const pol_route_t *r, unsigned i)
{
    uint64_t *row = srv_snapstats_row(st, slot);
    size_t ri = (size_t)(r - st->route0);
    if (row && ri < st->nroutes)
        SRV_SNAP_INC(&row[st->abase[ri] + i]);
}

/*
 * Prometheus text for the by-zone and by-answer counters, summed over every registered
 * snapshot and the retired totals: geocast_zone_queries_total{zone} and
 * geocast_answers_total{route,answer}. Control plane; takes the registry lock, so the
 * snapshots it reads cannot be freed meanwhile.
 */
void srv_stats_write_snapshot_metrics(FILE *f);

/* Write v as a Prometheus label value (escapes \, " and newline). */
void srv_stats_label(FILE *f, const char *v);
