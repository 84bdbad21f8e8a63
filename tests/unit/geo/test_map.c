/*
 * The compiled range table (src/geo/map.c) against a brute-force reference, on range
 * lists built to stress its index: dense clusters that need several levels of child
 * nodes, runs of more than 16 IPv6 starts sharing their top 64 bits (the tie path),
 * blocks of a single key value, blocks answered by the index alone (direct entries),
 * ranges at both ends of the space, and the empty table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "geo/geo_internal.h"
#include "tap.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---- reference: sorted starts, linear-time truths --------------------------------- */

typedef struct {
    geo_u128 *key;
    uint32_t *val;
    uint32_t n;
    unsigned bits;
} ref_t;

static void ref_take4(ref_t *r, const geo_rl4_t *l)
{
    r->n = l->n;
    r->bits = 32;
    r->key = malloc(l->n * sizeof(geo_u128));
    r->val = malloc(l->n * sizeof(uint32_t));
    for (uint32_t i = 0; i < l->n; i++) {
        r->key[i] = l->key[i];
        r->val[i] = l->val[i];
    }
}

static void ref_take6(ref_t *r, const geo_rl6_t *l)
{
    r->n = l->n;
    r->bits = 128;
    r->key = malloc(l->n * sizeof(geo_u128));
    r->val = malloc(l->n * sizeof(uint32_t));
    memcpy(r->key, l->key, l->n * sizeof(geo_u128));
    memcpy(r->val, l->val, l->n * sizeof(uint32_t));
}

static uint32_t ref_find(const ref_t *r, geo_u128 a)
{
    uint32_t lo = 0, hi = r->n - 1;
    while (lo < hi) {
        uint32_t mid = lo + ((hi - lo + 1) >> 1);
        if (r->key[mid] <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The shortest prefix p such that a's /p block lies inside its range. */
static unsigned ref_prefix(const ref_t *r, geo_u128 a)
{
    uint32_t i = ref_find(r, a);
    geo_u128 s = r->key[i];
    geo_u128 top = r->bits == 32 ? 0xffffffffu : GEO_U128_MAX;
    geo_u128 e = i + 1 < r->n ? r->key[i + 1] - 1 : top;
    for (unsigned p = 0; p <= r->bits; p++) {
        unsigned host = r->bits - p;
        geo_u128 m = host >= 128 ? GEO_U128_MAX : ((geo_u128)1 << host) - 1;
        if ((a & ~m & top) >= s && ((a | m) & top) <= e)
            return p;
    }
    return 999;
}

static void ref_free(ref_t *r)
{
    free(r->key);
    free(r->val);
}

/* ---- checks ----------------------------------------------------------------------- */

static int bad;

static void check4(const geo_map_t *m, const ref_t *r, uint32_t a)
{
    unsigned p = 0;
    uint32_t v = geo_map_lookup4(m, a, &p);
    uint32_t want = r->val[ref_find(r, a)];
    unsigned wp = ref_prefix(r, a);
    if ((v != want || p != wp) && bad++ < 5)
        printf("#   %08x: got %u/%u, want %u/%u\n", a, v, p, want, wp);
    if (geo_map_lookup4(m, a, NULL) != v && bad++ < 5)
        printf("#   %08x: lookup without prefix differs\n", a);
}

static void check6(const geo_map_t *m, const ref_t *r, geo_u128 a)
{
    unsigned p = 0;
    uint32_t v = geo_map_lookup6(m, (uint64_t)(a >> 64), (uint64_t)a, &p);
    uint32_t want = r->val[ref_find(r, a)];
    unsigned wp = ref_prefix(r, a);
    if ((v != want || p != wp) && bad++ < 5)
        printf("#   %016llx%016llx: got %u/%u, want %u/%u\n", (unsigned long long)(a >> 64),
               (unsigned long long)a, v, p, want, wp);
}

/* Every start, its neighbours, and random addresses. */
static void sweep4(const geo_map_t *m, const ref_t *r, const char *what)
{
    bad = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t s = (uint32_t)r->key[i];
        check4(m, r, s);
        check4(m, r, s - 1);
        check4(m, r, s + 1);
    }
    for (int k = 0; k < 200000; k++)
        check4(m, r, (uint32_t)rnd());
    check4(m, r, 0);
    check4(m, r, 0xffffffffu);
    ok(bad == 0, "%s: %u ranges, lookups and prefixes match the reference", what, r->n);
}

static void sweep6(const geo_map_t *m, const ref_t *r, const char *what)
{
    bad = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        geo_u128 s = r->key[i];
        check6(m, r, s);
        check6(m, r, s - 1);
        check6(m, r, s + 1);
        check6(m, r, s | 0xffff);
        check6(m, r, s + ((geo_u128)1 << 64));
    }
    for (int k = 0; k < 200000; k++) {
        geo_u128 a = GEO_U128(rnd(), rnd());
        /* half of them near a random start */
        if (k & 1)
            a = r->key[rnd() % r->n] ^ (a >> (rnd() % 128));
        check6(m, r, a);
    }
    check6(m, r, 0);
    check6(m, r, GEO_U128_MAX);
    ok(bad == 0, "%s: %u ranges, lookups and prefixes match the reference", what, r->n);
}

typedef struct {
    const geo_map_t *m;
    geo_u128 next;
    int family;
    int bad;
    size_t n;
} walk_t;

static int walk_cb(const geo_block_t *b, void *ctx)
{
    walk_t *w = ctx;
    geo_u128 a = 0;
    unsigned bits = b->family == AF_INET ? 32 : 128;
    for (unsigned k = 0; k < bits / 8; k++)
        a = a << 8 | b->addr[k];
    if (b->family != w->family) {
        w->family = b->family;
        w->next = 0;
    }
    unsigned p = 0;
    uint32_t v = b->family == AF_INET
                     ? geo_map_lookup4(w->m, (uint32_t)a, &p)
                     : geo_map_lookup6(w->m, (uint64_t)(a >> 64), (uint64_t)a, &p);
    if (a != w->next || v != b->loc || p != b->prefix)
        w->bad++;
    geo_u128 size_m1 = bits - b->prefix >= 128 ? GEO_U128_MAX
                                                : ((geo_u128)1 << (bits - b->prefix)) - 1;
    w->next = a + size_m1 + 1;
    w->n++;
    return 0;
}

/* ---- tables ------------------------------------------------------------------------ */

static uint32_t vals; /* distinct values so that pushes never merge */

static int cmp32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void dense4(geo_rl4_t *l)
{
    /* sorted random starts: a few dense /16s (thousands of ranges each), scattered ones,
     * and a run of /32s at the very top */
    uint32_t n = 0, cap = 120000;
    uint32_t *s = malloc(cap * sizeof(uint32_t));
    for (int k = 0; k < 40000; k++)
        s[n++] = 0x0a000000u | (uint32_t)(rnd() & 0xffff);      /* 10.0/16: dense */
    for (int k = 0; k < 20000; k++)
        s[n++] = 0xc0a80000u | ((uint32_t)rnd() & 0xfff);      /* 192.168.0/20: denser */
    for (int k = 0; k < 30000; k++)
        s[n++] = (uint32_t)rnd() & 0xfffffff0u;                /* scattered /28s */
    for (uint32_t k = 0; k < 40; k++)
        s[n++] = 0xffffffd8u + k;                              /* top /32s */
    qsort(s, n, sizeof(uint32_t), cmp32);
    geo_rl4_push(l, 0, 0);
    for (uint32_t i = 0; i < n; i++) {
        if (i && s[i] == s[i - 1])
            continue;
        geo_rl4_push(l, s[i], ++vals);
    }
    free(s);
}

static int cmp128(const void *a, const void *b)
{
    geo_u128 x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    return x < y ? -1 : x > y;
}

static void dense6(geo_rl6_t *l)
{
    uint32_t n = 0, cap = 200000;
    geo_u128 *s = malloc(cap * sizeof(geo_u128));
    /* a dense /32 of /48s and /56s (several index levels) */
    for (int k = 0; k < 50000; k++)
        s[n++] = GEO_U128(0x2a00abcd00000000ull | (rnd() & 0xffffff00ull), 0);
    /* one /64 holding 300 ranges that differ only in the low 64 bits: a run of ties
     * far longer than a leaf, and the /64 after it with 20 */
    for (int k = 0; k < 300; k++)
        s[n++] = GEO_U128(0x2001db8000001234ull, rnd() & ~0xffull);
    for (int k = 0; k < 20; k++)
        s[n++] = GEO_U128(0x2001db8000001235ull, (uint64_t)k << 60);
    /* ranges starting inside a /64 one by one: one tie per /64 */
    for (int k = 0; k < 2000; k++)
        s[n++] = GEO_U128(0x2400000000000000ull | (rnd() & 0x00ffffffffffffffull),
                          rnd() | 1);
    /* scattered /32s and /48s all over 2000::/3 */
    for (int k = 0; k < 30000; k++)
        s[n++] = GEO_U128(0x2000000000000000ull | (rnd() & 0x1fffffffffff0000ull), 0);
    /* the very end of the space */
    for (int k = 0; k < 40; k++)
        s[n++] = GEO_U128_MAX - 40 + (geo_u128)k + 1;
    qsort(s, n, sizeof(geo_u128), cmp128);
    geo_rl6_push(l, 0, 0);
    for (uint32_t i = 0; i < n; i++) {
        if ((i && s[i] == s[i - 1]) || s[i] == 0)
            continue;
        geo_rl6_push(l, s[i], ++vals);
    }
    free(s);
}

int main(void)
{
    geo_map_t m;
    ref_t r4, r6;

    /* empty lists: one range each, unknown everywhere, prefix 0 */
    {
        geo_rl4_t l4 = {0};
        geo_rl6_t l6 = {0};
        is_int(geo_map_init(&m, &l4, &l6), 0, "init");
        unsigned p4 = 9, p6 = 9;
        is_int(geo_map_lookup4(&m, 0x01020304u, &p4), 0, "empty: IPv4 unknown");
        is_int(p4, 0, "empty: IPv4 prefix 0");
        uint32_t v6 = geo_map_lookup6(&m, 0x2a00000000000000ull, 1, &p6);
        is_int(v6, 0, "empty: IPv6 outside the alias regions unknown");
        ok(p6 > 0 && p6 <= 128, "empty: IPv6 prefix stops at the alias regions (%u)", p6);
        geo_map_clear(&m);
    }

    /* one value over the whole space: prefix 0 */
    {
        geo_rl4_t l4 = {0};
        geo_rl6_t l6 = {0};
        geo_rl4_push(&l4, 0, 7);
        geo_rl6_push(&l6, 0, 8);
        is_int(geo_map_init(&m, &l4, &l6), 0, "init");
        unsigned p4 = 9, p6 = 9;
        is_int(geo_map_lookup4(&m, 0xdeadbeefu, &p4), 7, "whole space: IPv4 value");
        is_int(p4, 0, "whole space: IPv4 prefix 0");
        is_int(geo_map_lookup6(&m, ~0ull, ~0ull, &p6), 8, "whole space: IPv6 value");
        is_int(p6, 0, "whole space: IPv6 prefix 0");
        geo_map_clear(&m);
    }

    /* dense tables */
    {
        geo_rl4_t l4 = {0};
        geo_rl6_t l6 = {0};
        dense4(&l4);
        dense6(&l6);
        ref_take4(&r4, &l4);
        ref_take6(&r6, &l6);
        is_int(geo_map_init(&m, &l4, &l6), 0, "init");
        ok(l4.n == 0 && l6.n == 0 && !l4.key && !l6.key, "init takes the lists");
        is_int(m.n4, r4.n, "IPv4 range count kept");
        is_int(m.n6, r6.n, "IPv6 range count kept");
        ok(m.x4.npool > 0 && m.x6.npool > 0, "dense blocks got child nodes (%zu, %zu entries)",
           m.x4.npool, m.x6.npool);
        ok(m.nlo6 > 300, "IPv6 starts with low bits have their own slots (%u)", m.nlo6);
        sweep4(&m, &r4, "dense IPv4");
        sweep6(&m, &r6, "dense IPv6");

        walk_t w = {.m = &m, .family = AF_INET};
        is_int(geo_map_walk(&m, walk_cb, &w), 0, "walk completes");
        is_int(w.bad, 0, "walk: %zu blocks contiguous, each one's lookup gives its value "
                         "and prefix", w.n);

        /* direct entries: blocks inside one range answer from the index alone */
        size_t direct = 0;
        for (size_t b = 0; b < ((size_t)1 << m.x4.bits); b++)
            direct += (m.x4.root[b] & 31) == 31;
        for (size_t b = 0; b < m.x6.npool; b++)
            direct += (m.x6.pool[b] & 31) == 31;
        ok(direct > 1000, "the index answers %zu blocks directly", direct);

        geo_map_clear(&m);
        ref_free(&r4);
        ref_free(&r6);
    }

    /* count and renumber on the lists, before the map is built (as geo.c does) */
    {
        geo_rl4_t l4 = {0};
        geo_rl6_t l6 = {0};
        dense4(&l4);
        dense6(&l6);
        ref_take4(&r4, &l4);
        ref_take6(&r6, &l6);
        uint32_t *count = calloc(vals + 1, sizeof(uint32_t));
        geo_rl_count(&l4, &l6, count, vals + 1);
        size_t total = 0;
        for (uint32_t v = 0; v <= vals; v++)
            total += count[v];
        is_int(total, (size_t)r4.n + r6.n, "count: every range counted once");
        uint32_t *newid = malloc((vals + 1) * sizeof(uint32_t));
        for (uint32_t v = 0; v <= vals; v++)
            newid[v] = vals - v;
        geo_rl_renumber(&l4, &l6, newid, vals + 1);
        is_int(geo_map_init(&m, &l4, &l6), 0, "init after renumbering");
        bad = 0;
        for (int k = 0; k < 20000; k++) {
            uint32_t a = (uint32_t)rnd();
            if (geo_map_lookup4(&m, a, NULL) != vals - r4.val[ref_find(&r4, a)])
                bad++;
            geo_u128 b = r6.key[rnd() % r6.n] + (rnd() & 0xff);
            if (geo_map_lookup6(&m, (uint64_t)(b >> 64), (uint64_t)b, NULL) !=
                vals - r6.val[ref_find(&r6, b)])
                bad++;
        }
        is_int(bad, 0, "renumber: lookups give the new values");
        free(newid);
        free(count);
        geo_map_clear(&m);
        ref_free(&r4);
        ref_free(&r6);
    }

    /* table memory: small and huge-page sized allocations are usable and freed */
    {
        size_t sizes[] = {1, 4096, ((size_t)2 << 20) - 1, (size_t)2 << 20, ((size_t)5 << 20) + 3};
        int fine = 1;
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            uint8_t *p = geo_table_alloc(sizes[k]);
            if (((uintptr_t)p & 63) != 0)
                fine = 0;
            memset(p, 0xab, sizes[k]);
            if (p[sizes[k] - 1] != 0xab)
                fine = 0;
            geo_table_free(p, sizes[k]);
        }
        geo_table_free(NULL, 0);
        ok(fine, "geo_table_alloc: 64-byte aligned, writable to the last byte");
    }
    return done_testing();
}
