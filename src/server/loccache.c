#include "server/loccache.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define SRV_LOC_WIDE (1u << 31)
#define SRV_LOC_EXACT (1u << 30)
#define SRV_LOC_ID (SRV_LOC_EXACT - 1) /* ids at or above it are not cached */

srv_loc_cache_t *srv_loc_cache_new(void)
{
    srv_loc_cache_t *c = NULL;
    if (posix_memalign((void **)&c, 64, sizeof(*c)) != 0)
        return NULL;
    c->generation = UINT64_MAX; /* cleared on first use, not here: untouched pages stay free */
    c->misses = 0;
    return c;
}

void srv_loc_cache_free(srv_loc_cache_t *c)
{
    free(c);
}

static void check_generation(srv_loc_cache_t *c, uint64_t generation)
{
    if (c->generation != generation) {
        memset(c->set, 0, sizeof(c->set));
        memset(c->set6, 0, sizeof(c->set6));
        c->generation = generation;
    }
}

uint32_t srv_loc_cache_lookup(srv_loc_cache_t *c, uint64_t generation, const geo_db_t *geo,
                              uint32_t a)
{
    check_generation(c, generation);
    srv_loc_entry_t *e = c->set[srv_loc_set_of(a)].e;
    uint32_t a24 = a & 0xffffff00u;
    for (unsigned i = 0; i < SRV_LOC_WAYS; i++) {
        uint32_t v = e[i].val;
        if (e[i].key == ((v & SRV_LOC_WIDE) ? a24 : a) && v != 0)
            return v & SRV_LOC_ID;
    }
    c->misses++;
    unsigned prefix;
    uint32_t loc = geo_lookup_v4(geo, a, &prefix);
    if (loc < SRV_LOC_ID) {
        memmove(e + 1, e, (SRV_LOC_WAYS - 1) * sizeof(*e));
        e[0].key = prefix <= 24 ? a24 : a;
        e[0].val = loc | (prefix <= 24 ? SRV_LOC_WIDE : SRV_LOC_EXACT);
    }
    return loc;
}

uint32_t srv_loc_cache_lookup6(srv_loc_cache_t *c, uint64_t generation, const geo_db_t *geo,
                               const uint8_t a[16])
{
    check_generation(c, generation);
    uint64_t hi = rd_u64(a);
    srv_loc6_entry_t *e = c->set6[srv_loc6_set_of(hi)].e;
    uint64_t hi48 = hi & ~(uint64_t)0xffff;
    for (unsigned i = 0; i < SRV_LOC_WAYS; i++) {
        uint32_t v = e[i].val;
        if (e[i].key == ((v & SRV_LOC_WIDE) ? hi48 : hi) && v != 0)
            return v & SRV_LOC_ID;
    }
    c->misses++;
    unsigned prefix;
    uint32_t loc = geo_lookup_v6(geo, a, &prefix);
    if (loc < SRV_LOC_ID && prefix <= 64) { /* the whole /64 (or /48) is in this block */
        memmove(e + 1, e, (SRV_LOC_WAYS - 1) * sizeof(*e));
        e[0].key = prefix <= 48 ? hi48 : hi;
        e[0].val = loc | (prefix <= 48 ? SRV_LOC_WIDE : SRV_LOC_EXACT);
        e[0].unused = 0;
    }
    return loc;
}
