#pragma once

/*
 * Geo routing, compiled at load time (DESIGN §2, §4).
 *
 * Every routed name and type (a route) has a list of answers and a filter chain:
 * boundaries (geo and IP together, union of matches, fallback when none match) →
 * closest (haversine from the client's coordinates) → weighted shuffle → select N.
 * Everything but the shuffle depends only on where the client is, so pol_set_build()
 * evaluates the chain once per GeoIP location (and per IP-boundary network) and stores
 * the result as a table of runs over the address space: maximal ranges of addresses with
 * the same result, one entry each. A query then costs one binary search: it yields the
 * ordered answer list, and the run's bounds give the prefix length of the widest aligned
 * block around the address that gets the same list (the ECS scope). Routes whose chains
 * are the same function of the location (same boundaries, locations, options; the answers'
 * values do not count) share one table, so cost grows with distinct policies, not names.
 *
 * Threads: a built set is immutable; any number of threads may call the lookups.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"
#include "conf/conf.h"
#include "geo/geo.h"

typedef struct pol_set pol_set_t;
typedef struct pol_policy pol_policy_t;

/* One ordered answer list: indexes into the route's answers. */
typedef struct {
    uint16_t n;
    uint16_t idx[];
} pol_decision_t;

/* A compiled route. Read-only after build; fields are public for the query path. */
typedef struct pol_route {
    size_t zone;               /* index into conf->zones */
    const uint8_t *owner;      /* wire, as configured */
    uint16_t type;
    uint32_t ttl;
    bool ecs;                  /* decide on the ECS address when present */
    bool weighted;             /* shuffle by weight at query time */
    unsigned select;           /* keep the first N (0: all) */
    uint16_t nanswers;
    const uint8_t **rdata;     /* per answer: [u16 length][wire RDATA] */
    uint32_t *weight;          /* per answer (1 when none was given) */
    const pol_policy_t *policy;/* current table; swapped by pol_route_set_down(): read it
                                  with pol_route_policy() */
    uint64_t down;             /* answers marked down (bit i: answer i), control plane */
    const conf_route_t *conf;  /* borrowed from the conf the set was built from (explain) */
} pol_route_t;

/* Result of a lookup: the ordered answers before shuffle/select, and the ECS scope. */
typedef struct {
    const pol_decision_t *d;
    uint8_t scope;             /* prefix length in the query's family; 0 = same for all */
} pol_result_t;

/* Warnings found while building (e.g. a route without fallback); ctx is passed back. */
typedef void (*pol_warn_fn)(void *ctx, const char *msg);

/*
 * Compile every route of every zone in conf. geo may be NULL when no route needs
 * geography (only IP boundaries or none). Errors: "FILE:LINE: key.path: reason" in err,
 * returns a negative ERR_*. The set borrows conf (explain reads it) and geo: both must
 * outlive it.
 */
int pol_set_build(pol_set_t **out, const conf_t *conf, const geo_db_t *geo, pol_warn_fn warn,
                  void *warn_ctx, char *err, size_t errlen) ATTR_NONNULL(1, 2, 6);
void pol_set_free(pol_set_t *s);

size_t pol_set_route_count(const pol_set_t *s) ATTR_NONNULL(1);
const pol_route_t *pol_set_route(const pol_set_t *s, size_t i) ATTR_NONNULL(1);
/* Distinct compiled tables (health states included) and their total size in bytes, for
 * logs and metrics; safe to call while pol_route_set_down() adds a table. */
size_t pol_set_policy_count(const pol_set_t *s) ATTR_NONNULL(1);
size_t pol_set_bytes(const pol_set_t *s) ATTR_NONNULL(1);

/* The route's decision for a client address (family AF_INET: 4 bytes, AF_INET6: 16
 * bytes, network order). Never allocates. */
void pol_route_decide(const pol_route_t *r, int family, const uint8_t *addr, pol_result_t *res)
    ATTR_NONNULL(1, 3, 4);

/* Apply the weighted shuffle (if the route has weights) and select N: writes up to max
 * answer indexes into out, returns the count. rng is the caller's per-thread state. */
unsigned pol_route_order(const pol_route_t *r, const pol_result_t *res, uint64_t *rng,
                         uint16_t *out, unsigned max) ATTR_NONNULL(1, 2, 3, 4);

/*
 * The `up` step: mark answers down (bit i of down: answer i). The route's table is
 * rebuilt for that health state (or an existing one with the same key reused) and
 * swapped in atomically; queries keep using the old table until then and never block.
 * Down answers leave the chain before the boundaries; when every answer is down, all are
 * kept (fail open). Control plane only (one writer at a time): allocates; for a route
 * without closest and select the table is derived from the all-up one (a pass over its
 * runs), otherwise compiled as at load (a GeoIP walk). Old tables stay owned by the set
 * until pol_set_free(). Returns 0, or ERR_INVAL for a mask naming answers the route lacks.
 */
int pol_route_set_down(pol_set_t *s, const pol_route_t *r, uint64_t down) ATTR_NONNULL(1, 2);

/* Private or unroutable addresses (RFC 1918, loopback, link-local, CGNAT, ULA,
 * documentation, multicast...) that say nothing about where a client is. */
bool pol_addr_is_private(int family, const uint8_t *addr) ATTR_NONNULL(2);

/*
 * Explain a decision for a client, computed step by step from the configuration (not the
 * table), and check it against the table: location, each boundary tested, distances,
 * weights, the final list and the scope. Text, or JSON when json is true. Returns 0 when
 * the step-by-step result equals the table's, 1 when not (a bug), negative on error.
 * geo (may be NULL) is the full GeoIP data, used only to show where the client is; the
 * decision is worked out on the reduced data the set was compiled from.
 */
int pol_route_explain(const pol_set_t *s, const pol_route_t *r, const geo_db_t *geo, int family,
                      const uint8_t *addr, unsigned source_prefix, bool json, FILE *out)
    ATTR_NONNULL(1, 2, 5, 8);

/* Find a route by owner (wire) and type; NULL if none. */
const pol_route_t *pol_set_find(const pol_set_t *s, const uint8_t *owner, uint16_t type)
    ATTR_NONNULL(1, 2);
