#pragma once

#include <stdint.h>

#include "geo/geo.h"

/*
 * Where recent IPv4 clients are: a per-thread cache of address -> GeoIP location id for
 * the per-country counters and the query logs, which need the client's location on top
 * of the route's own (reduced) table. Emptied when the snapshot changes.
 *
 * Four-way set-associative. IPv4: a set per 32 bytes, chosen by the client's /24; an
 * entry holds either a whole /24 (the address's GeoIP block covers it) or one address
 * (a block smaller than a /24: one resolver address, or an ECS /24 truncated to .0).
 * IPv6: a set per 64 bytes, chosen by the /48; an entry holds a whole /48 or one /64
 * (ECS from resolvers is /56 at most in practice); blocks smaller than a /64 are not
 * cached. A miss looks up the GeoIP table and puts the result first in its set; the
 * set's last entry leaves. With a single entry per slot (the IPv4 cache before), 10,000
 * client /24s in 65,536 slots missed on ~14 % of the queries from collisions alone.
 */
#define SRV_LOC_WAYS 4
#define SRV_LOC_SET_BITS 14  /* IPv4: 16,384 sets of 4, 512 KiB */
#define SRV_LOC6_SET_BITS 12 /* IPv6: 4,096 sets of 4, 256 KiB */

typedef struct {
    uint32_t key; /* the address, or for a whole-/24 entry the address with .0 */
    uint32_t val; /* location id | SRV_LOC_WIDE or SRV_LOC_EXACT; 0: empty */
} srv_loc_entry_t;

typedef struct {
    srv_loc_entry_t e[SRV_LOC_WAYS];
} __attribute__((aligned(32))) srv_loc_set_t;

typedef struct {
    uint64_t key; /* the top 64 bits, or for a whole-/48 entry the top 48 */
    uint32_t val; /* as srv_loc_entry_t */
    uint32_t unused;
} srv_loc6_entry_t;

typedef struct {
    srv_loc6_entry_t e[SRV_LOC_WAYS];
} __attribute__((aligned(64))) srv_loc6_set_t;

typedef struct {
    uint64_t generation; /* the snapshot the entries are from; UINT64_MAX: none yet,
                          * the sets are not initialized */
    uint64_t misses;     /* lookups that went to the GeoIP table */
    srv_loc_set_t set[1u << SRV_LOC_SET_BITS];
    srv_loc6_set_t set6[1u << SRV_LOC6_SET_BITS];
} srv_loc_cache_t;

/* A cache whose memory is touched only when used (NULL when out of memory). */
srv_loc_cache_t *srv_loc_cache_new(void);
void srv_loc_cache_free(srv_loc_cache_t *c);

static inline uint32_t srv_loc_set_of(uint32_t a)
{
    return ((a >> 8) * 2654435761u) >> (32 - SRV_LOC_SET_BITS);
}

/* Start loading the set of IPv4 address a (host order): called early in a query, it
 * lets the query's other work hide what is otherwise a cache miss (the cache is bigger
 * than L2; perf put 97 % of the cached lookup's time on that one load). */
static inline void srv_loc_cache_prefetch(const srv_loc_cache_t *c, uint32_t a)
{
    __builtin_prefetch(&c->set[srv_loc_set_of(a)]);
}

static inline uint32_t srv_loc6_set_of(uint64_t hi)
{
    return (uint32_t)(((hi >> 16) * 0x9E3779B97F4A7C15ull) >> (64 - SRV_LOC6_SET_BITS));
}

/* The same for an IPv6 address, given by its top 64 bits (host order). */
static inline void srv_loc_cache_prefetch6(const srv_loc_cache_t *c, uint64_t hi)
{
    __builtin_prefetch(&c->set6[srv_loc6_set_of(hi)]);
}

/* The location of IPv4 address a (host order) in geo, which belongs to snapshot
 * generation `generation`: what geo_lookup(geo, AF_INET, ...) says, from the cache
 * when it can. */
uint32_t srv_loc_cache_lookup(srv_loc_cache_t *c, uint64_t generation, const geo_db_t *geo,
                              uint32_t a);

/* The same for IPv6 address a (network order, 16 bytes): geo_lookup(geo, AF_INET6, a). */
uint32_t srv_loc_cache_lookup6(srv_loc_cache_t *c, uint64_t generation, const geo_db_t *geo,
                               const uint8_t a[16]);
