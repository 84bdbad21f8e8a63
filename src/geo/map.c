/*
 * The compiled address -> location id table.
 *
 * Representation: a sorted range table per address family (IPv4: one uint64 per range,
 * start << 32 | value, so the value comes with the key's cache line; IPv6: 128-bit keys
 * and a value array), ranges covering the whole space with adjacent equal values merged,
 * plus a bucket index on the top 20 bits (2^20 + 1 uint32 per family). A lookup is one
 * index read and a binary search over the few ranges of one bucket (GeoLite2 City: 2.4 on
 * average for IPv4), i.e. 2-3 cache lines. The prefix length is not stored: it is derived
 * from the range bounds, as the widest aligned block around the address that stays inside
 * the range (two XORs and two count-leading-zeros). Memory: 8 bytes per IPv4 range, 20
 * per IPv6 range, + 8 MiB of index.
 */
#include "geo/geo_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"

/* ---- 128-bit helpers ----------------------------------------------------------------- */

static inline unsigned clz128(geo_u128 x) /* x != 0 */
{
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? (unsigned)__builtin_clzll(hi) : 64 + (unsigned)__builtin_clzll((uint64_t)x);
}

static inline unsigned ctz128(geo_u128 x) /* x != 0 */
{
    uint64_t lo = (uint64_t)x;
    return lo ? (unsigned)__builtin_ctzll(lo) : 64 + (unsigned)__builtin_ctzll((uint64_t)(x >> 64));
}

/* ---- the IPv4 alias regions of the IPv6 space ---------------------------------------- */

static const struct {
    uint64_t shi, slo, ehi, elo;
} alias_regions[] = {
    {0, 0, 0, 0xffffffffull},                                  /* ::/96 */
    {0, 0xffff00000000ull, 0, 0xffffffffffffull},              /* ::ffff:0:0/96 */
    {0x2001000000000000ull, 0, 0x20010000ffffffffull, ~0ull},  /* 2001::/32 (Teredo) */
    {0x2002000000000000ull, 0, 0x2002ffffffffffffull, ~0ull},  /* 2002::/16 (6to4) */
};

bool geo_v6_in_alias(geo_u128 s, geo_u128 e)
{
    for (size_t i = 0; i < ARRAY_SIZE(alias_regions); i++) {
        geo_u128 rs = GEO_U128(alias_regions[i].shi, alias_regions[i].slo);
        geo_u128 re = GEO_U128(alias_regions[i].ehi, alias_regions[i].elo);
        if (s >= rs && e <= re)
            return true;
    }
    return false;
}

/* ---- range lists --------------------------------------------------------------------- */

void geo_rl4_push(geo_rl4_t *l, uint32_t start, uint32_t val)
{
    if (l->n && l->key[l->n - 1] == start) {
        l->val[l->n - 1] = val;
        if (l->n > 1 && l->val[l->n - 2] == val)
            l->n--;
        return;
    }
    if (l->n && l->val[l->n - 1] == val)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->key = xrealloc(l->key, (size_t)l->cap * sizeof(*l->key));
        l->val = xrealloc(l->val, (size_t)l->cap * sizeof(*l->val));
    }
    l->key[l->n] = start;
    l->val[l->n] = val;
    l->n++;
}

void geo_rl6_push(geo_rl6_t *l, geo_u128 start, uint32_t val)
{
    if (l->n && l->key[l->n - 1] == start) {
        l->val[l->n - 1] = val;
        if (l->n > 1 && l->val[l->n - 2] == val)
            l->n--;
        return;
    }
    if (l->n && l->val[l->n - 1] == val)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->key = xrealloc(l->key, (size_t)l->cap * sizeof(*l->key));
        l->val = xrealloc(l->val, (size_t)l->cap * sizeof(*l->val));
    }
    l->key[l->n] = start;
    l->val[l->n] = val;
    l->n++;
}

void geo_rl6_emit(geo_rl6_t *l, geo_u128 s, geo_u128 e, uint32_t val)
{
    geo_u128 cur = s;
    for (size_t i = 0; i < ARRAY_SIZE(alias_regions); i++) {
        geo_u128 rs = GEO_U128(alias_regions[i].shi, alias_regions[i].slo);
        geo_u128 re = GEO_U128(alias_regions[i].ehi, alias_regions[i].elo);
        if (re < cur)
            continue;
        if (rs > e)
            break;
        if (rs > cur)
            geo_rl6_push(l, cur, val);
        geo_rl6_push(l, rs > cur ? rs : cur, GEO_LOC_V4ALIAS);
        if (re >= e)
            return;
        cur = re + 1;
    }
    geo_rl6_push(l, cur, val);
}

void geo_rl4_clear(geo_rl4_t *l)
{
    free(l->key);
    free(l->val);
    memset(l, 0, sizeof(*l));
}

void geo_rl6_clear(geo_rl6_t *l)
{
    free(l->key);
    free(l->val);
    memset(l, 0, sizeof(*l));
}

void geo_rl4_overlay(geo_rl4_t *out, const geo_rl4_t *hi, const geo_rl4_t *lo)
{
    uint32_t i = 0, j = 0;
    uint64_t cur = 0;
    for (;;) {
        uint32_t va = hi->val[i], vb = lo->val[j];
        geo_rl4_push(out, (uint32_t)cur, va ? va : vb);
        uint64_t na = i + 1 < hi->n ? hi->key[i + 1] : UINT64_MAX;
        uint64_t nb = j + 1 < lo->n ? lo->key[j + 1] : UINT64_MAX;
        cur = MIN(na, nb);
        if (cur == UINT64_MAX)
            break;
        if (na == cur)
            i++;
        if (nb == cur)
            j++;
    }
}

void geo_rl6_overlay(geo_rl6_t *out, const geo_rl6_t *hi, const geo_rl6_t *lo)
{
    uint32_t i = 0, j = 0;
    geo_u128 cur = 0;
    for (;;) {
        uint32_t va = hi->val[i], vb = lo->val[j];
        geo_rl6_push(out, cur, va ? va : vb);
        bool ha = i + 1 < hi->n, hb = j + 1 < lo->n;
        if (!ha && !hb)
            break;
        geo_u128 na = ha ? hi->key[i + 1] : GEO_U128_MAX;
        geo_u128 nb = hb ? lo->key[j + 1] : GEO_U128_MAX;
        cur = na < nb ? na : nb;
        if (ha && na == cur)
            i++;
        if (hb && nb == cur)
            j++;
    }
}

/* ---- compiled map -------------------------------------------------------------------- */

#define NB (1u << GEO_IDX_BITS)

void geo_map_init(geo_map_t *m, geo_rl4_t *r4, geo_rl6_t *r6)
{
    memset(m, 0, sizeof(*m));
    if (r4->n == 0)
        geo_rl4_push(r4, 0, 0);
    m->n4 = r4->n;
    m->e4 = xmalloc((size_t)m->n4 * sizeof(uint64_t));
    for (uint32_t i = 0; i < m->n4; i++)
        m->e4[i] = (uint64_t)r4->key[i] << 32 | r4->val[i];
    geo_rl4_clear(r4);

    m->r6 = *r6;
    memset(r6, 0, sizeof(*r6));
    if (m->r6.n == 0)
        geo_rl6_emit(&m->r6, 0, GEO_U128_MAX, 0);
    m->r6.key = xrealloc(m->r6.key, (size_t)m->r6.n * sizeof(geo_u128));
    m->r6.val = xrealloc(m->r6.val, (size_t)m->r6.n * sizeof(uint32_t));
    m->r6.cap = m->r6.n;

    m->idx4 = xmalloc((NB + 1) * sizeof(uint32_t));
    m->idx6 = xmalloc((NB + 1) * sizeof(uint32_t));
    uint32_t i = 0;
    for (uint32_t b = 0; b < NB; b++) {
        uint32_t base = b << (32 - GEO_IDX_BITS);
        while (i + 1 < m->n4 && (uint32_t)(m->e4[i + 1] >> 32) <= base)
            i++;
        m->idx4[b] = i;
    }
    m->idx4[NB] = m->n4 - 1;
    i = 0;
    for (uint32_t b = 0; b < NB; b++) {
        geo_u128 base = (geo_u128)b << (128 - GEO_IDX_BITS);
        while (i + 1 < m->r6.n && m->r6.key[i + 1] <= base)
            i++;
        m->idx6[b] = i;
    }
    m->idx6[NB] = m->r6.n - 1;
}

void geo_map_clear(geo_map_t *m)
{
    free(m->e4);
    geo_rl6_clear(&m->r6);
    free(m->idx4);
    free(m->idx6);
    memset(m, 0, sizeof(*m));
}

size_t geo_map_bytes(const geo_map_t *m)
{
    return (size_t)m->n4 * 8 + (size_t)m->r6.n * (sizeof(geo_u128) + 4) +
           2 * (NB + 1) * sizeof(uint32_t);
}

uint32_t geo_map_lookup4(const geo_map_t *m, uint32_t a, unsigned *prefix)
{
    const uint64_t *e = m->e4;
    uint32_t b = a >> (32 - GEO_IDX_BITS);
    uint32_t lo = m->idx4[b], hi = m->idx4[b + 1];
    uint64_t ka = (uint64_t)a << 32 | 0xffffffffu; /* e[i] <= ka  <=>  start(i) <= a */
    while (lo < hi) {
        uint32_t mid = lo + ((hi - lo + 1) >> 1);
        if (e[mid] <= ka)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (prefix) {
        /* widest aligned block around a inside [start, next - 1]: its host bits h must
         * stay below the highest bit in which a differs from start - 1 and from next. */
        unsigned h = 32;
        uint32_t start = (uint32_t)(e[lo] >> 32);
        if (start) {
            unsigned m1 = 31 - (unsigned)__builtin_clz(a ^ (start - 1));
            h = MIN(h, m1);
        }
        if (lo + 1 < m->n4) {
            unsigned m2 = 31 - (unsigned)__builtin_clz(a ^ (uint32_t)(e[lo + 1] >> 32));
            h = MIN(h, m2);
        }
        *prefix = 32 - h;
    }
    return (uint32_t)e[lo];
}

uint32_t geo_map_lookup6(const geo_map_t *m, geo_u128 a, unsigned *prefix)
{
    const geo_u128 *key = m->r6.key;
    uint32_t b = (uint32_t)(a >> (128 - GEO_IDX_BITS));
    uint32_t lo = m->idx6[b], hi = m->idx6[b + 1];
    while (lo < hi) {
        uint32_t mid = lo + ((hi - lo + 1) >> 1);
        if (key[mid] <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (prefix) {
        unsigned h = 128;
        if (key[lo]) {
            unsigned m1 = 127 - clz128(a ^ (key[lo] - 1));
            h = MIN(h, m1);
        }
        if (lo + 1 < m->r6.n) {
            unsigned m2 = 127 - clz128(a ^ key[lo + 1]);
            h = MIN(h, m2);
        }
        *prefix = 128 - h;
    }
    return m->r6.val[lo];
}

/* Split [s, e] (in a space of `bits` bits) into maximal aligned blocks. */
static int walk_range(int family, unsigned bits, geo_u128 s, geo_u128 e, uint32_t val,
                      geo_walk_cb cb, void *ctx)
{
    geo_block_t blk = {.family = family, .loc = val};
    for (;;) {
        unsigned h = s ? ctz128(s) : bits;
        geo_u128 len_m1 = e - s; /* length - 1, no overflow */
        unsigned lh = len_m1 == GEO_U128_MAX ? 128 : 127 - clz128(len_m1 + 1);
        h = MIN(h, lh);
        h = MIN(h, bits);
        geo_u128 bend = h >= 128 ? GEO_U128_MAX : s | (((geo_u128)1 << h) - 1);
        memset(blk.addr, 0, sizeof(blk.addr));
        unsigned nbytes = bits / 8;
        for (unsigned k = 0; k < nbytes; k++)
            blk.addr[k] = (uint8_t)(s >> (8 * (nbytes - 1 - k)));
        blk.prefix = bits - h;
        int rc = cb(&blk, ctx);
        if (rc)
            return rc;
        if (bend >= e)
            return 0;
        s = bend + 1;
    }
}

int geo_map_walk(const geo_map_t *m, geo_walk_cb cb, void *ctx)
{
    for (uint32_t i = 0; i < m->n4; i++) {
        geo_u128 e = i + 1 < m->n4 ? (geo_u128)(m->e4[i + 1] >> 32) - 1 : 0xffffffffu;
        int rc = walk_range(AF_INET, 32, (uint32_t)(m->e4[i] >> 32), e, (uint32_t)m->e4[i], cb,
                            ctx);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < m->r6.n; i++) {
        geo_u128 e = i + 1 < m->r6.n ? m->r6.key[i + 1] - 1 : GEO_U128_MAX;
        int rc = walk_range(AF_INET6, 128, m->r6.key[i], e, m->r6.val[i], cb, ctx);
        if (rc)
            return rc;
    }
    return 0;
}
