#pragma once

#include "policy/policy.h"

typedef unsigned __int128 u128;

/* A network of an IP boundary, per family (compact: a boundary may hold millions). */
typedef struct {
    uint32_t addr;             /* host order */
    uint8_t prefix;
} pol_net4_t;

typedef struct {
    u128 addr;
    uint8_t prefix;
} pol_net6_t;

typedef struct {
    char cc[3];
    char *city;
} pol_city_t;

/* A compiled boundary: places, cities and networks. */
typedef struct {
    char *name;
    geo_place_t *places;
    size_t nplaces;
    pol_city_t *cities;
    size_t ncities;
    pol_net4_t *nets4;
    size_t nnets4, cap4;
    pol_net6_t *nets6;
    size_t nnets6, cap6;
    unsigned line;
} pol_boundary_t;

/* Address → decision table for one family: sorted starts of runs (maximal ranges with
 * one decision; neighbouring runs differ) and their decision ids. Runs cover the whole
 * space; run i ends where run i + 1 starts. */
typedef struct {
    size_t n;
    uint32_t *start4;          /* AF_INET */
    u128 *start6;              /* AF_INET6 */
    uint32_t *dec;
    /* First-level index on the top ibits bits of an address (0: none, small tables):
     * idx[k] is the run holding the first address of bucket k, so the run of an address
     * in bucket k is one of idx[k]..idx[k + 1]. 2^ibits + 1 entries. */
    unsigned ibits;
    uint32_t *idx;
} pol_table_t;

#define POL_DEC_V4ALIAS UINT32_MAX /* v6 block that aliases the IPv4 space */

/* Everything that makes two routes decide alike. */
typedef struct {
    uint16_t nanswers;
    int32_t boundary[64];      /* per answer: global boundary index, -1 = fallback */
    bool has_loc[64];
    double lat[64], lon[64];
    bool closest;
    unsigned select;           /* 0 when weighted (select applies after the shuffle) */
    uint64_t down;             /* answers removed by the `up` step */
} pol_key_t;

struct pol_policy {
    pol_key_t key;
    pol_table_t t4, t6;
    pol_decision_t **dec;
    uint32_t ndec;
    bool uniform;              /* one decision for every address: scope 0 */
};

/* The GeoIP walk as runs of one location, per family (IPv6 alias regions keep
 * GEO_LOC_V4ALIAS). Built while pol_set_build() compiles a second policy without IP
 * networks, so that each further one is a pass over these arrays instead of a walk of
 * the GeoIP tree; freed when the build ends. */
typedef struct {
    size_t n4, n6, cap4, cap6;
    uint32_t *start4, *loc4;
    u128 *start6;
    uint32_t *loc6;
} pol_loc_runs_t;

struct pol_set {
    const geo_db_t *geo;
    bool building;             /* inside pol_set_build() */
    bool walk_only;            /* tests: compile health states from the GeoIP walk too */
    pol_loc_runs_t *loc_runs;  /* during pol_set_build() only, or NULL */
    size_t geo_only_built;     /* policies pol_set_build() compiled without IP networks */
    pol_boundary_t *b;
    size_t nb;
    pol_route_t *routes;
    size_t nroutes;
    pol_policy_t **policies;
    size_t npolicies;
    size_t bytes;
};

/* The route's current table (acquire load: it may be swapped by a health change). */
static inline const pol_policy_t *pol_route_policy(const pol_route_t *r)
{
    return __atomic_load_n(&r->policy, __ATOMIC_ACQUIRE);
}

/* Evaluate a key's filter chain for one location and IP-boundary membership (bit i of
 * ipmask: global boundary i contains the address). Writes the ordered answer indexes
 * into out and returns the count. Also used by explain. */
unsigned pol_eval(const pol_set_t *s, const pol_key_t *k, uint32_t loc, const uint64_t *ipmask,
                  uint16_t *out);

/* Does boundary b contain location loc (geo part only)? */
bool pol_boundary_geo_match(const pol_boundary_t *b, const geo_location_t *loc);

/* Does boundary b contain the address (network part only)? */
bool pol_boundary_net_match(const pol_boundary_t *b, int family, const uint8_t *addr);

/* Address conversions. */
static inline uint32_t pol_v4(const uint8_t *a)
{
    return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}
static inline u128 pol_v6(const uint8_t *a)
{
    u128 v = 0;
    for (int i = 0; i < 16; i++)
        v = v << 8 | a[i];
    return v;
}

/*
 * ECS scope of address a inside the run [lo, hi] (lo <= a <= hi): the prefix length of
 * the widest aligned block that holds a and lies inside the run. Clearing the low j bits
 * of a stays >= lo while j <= max(msb(a ^ lo), ctz(lo)); setting them stays <= hi while
 * j <= max(msb(a ^ hi), cto(hi)); the scope is the width minus the smaller bound.
 */
static inline unsigned pol_scope32(uint32_t a, uint32_t lo, uint32_t hi)
{
    uint32_t d = a ^ lo, e = a ^ hi;
    unsigned kl = d ? 31u - (unsigned)__builtin_clz(d) : 0;
    unsigned tl = lo ? (unsigned)__builtin_ctz(lo) : 32;
    unsigned kh = e ? 31u - (unsigned)__builtin_clz(e) : 0;
    unsigned th = ~hi ? (unsigned)__builtin_ctz(~hi) : 32;
    unsigned jl = kl > tl ? kl : tl, jh = kh > th ? kh : th;
    return 32 - (jl < jh ? jl : jh);
}

static inline unsigned pol_msb128(u128 x) /* x != 0 */
{
    uint64_t h = (uint64_t)(x >> 64), l = (uint64_t)x;
    return h ? 127u - (unsigned)__builtin_clzll(h) : 63u - (unsigned)__builtin_clzll(l);
}

static inline unsigned pol_ctz128(u128 x) /* 128 for 0 */
{
    uint64_t h = (uint64_t)(x >> 64), l = (uint64_t)x;
    return l ? (unsigned)__builtin_ctzll(l) : h ? 64u + (unsigned)__builtin_ctzll(h) : 128;
}

static inline unsigned pol_scope128(u128 a, u128 lo, u128 hi)
{
    u128 d = a ^ lo, e = a ^ hi;
    unsigned kl = d ? pol_msb128(d) : 0, tl = pol_ctz128(lo);
    unsigned kh = e ? pol_msb128(e) : 0, th = pol_ctz128(~hi);
    unsigned jl = kl > tl ? kl : tl, jh = kh > th ? kh : th;
    return 128 - (jl < jh ? jl : jh);
}
