/*
 * The compiled address -> location id table.
 *
 * Representation: a sorted range table per address family, ranges covering the whole
 * space with adjacent equal values merged. IPv4: one uint64 per range, start << 32 |
 * value, so the value comes with the key's cache line. IPv6: 16 bytes per range, the top
 * 64 bits of the start, the location id, and an index into a side table for the rare
 * starts whose low 64 bits are not zero (GeoLite2 City: 3,400 of 290,000).
 *
 * Index: a radix tree over the top bits of the address. The root has 2^16 entries; an
 * entry whose block holds more than GEO_LEAF_MAX + 1 candidate ranges points to a child
 * node for the next s bits, with 2^s about a quarter of the block's candidates (so dense
 * blocks are split in one step), and so on until every block is down to 16 candidates;
 * the range is found by counting the leaf's starts <= the address. GeoLite2 City: IPv4
 * and IPv6 ranges cluster very unevenly (one /20 of IPv6 holds 21,578 ranges, most hold
 * none), which a fixed one-level bucket index cannot follow; the tree adds nodes only
 * where the data is dense (GeoLite2 City: 0.85 M entries for 2.27 M IPv4 ranges, 0.28 M
 * for 0.29 M IPv6 ranges).
 *
 * The prefix length is not stored: it is derived from the range bounds, as the widest
 * aligned block around the address that stays inside the range (two XORs and two
 * count-leading-zeros).
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

/* ---- compiled map: radix index ------------------------------------------------------ */

/* Entry codes (low 5 bits): 0..GEO_LEAF_MAX = leaf with that many further candidates;
 * GEO_LEAF_MAX + s = child node of 2^s entries (s = 1..GEO_NODE_MAX_BITS); ENTRY_DIRECT =
 * the value (top GEO_DIRECT_BITS) and the prefix (8 bits) of every address of the block. */
#define ENTRY_DIRECT 31u
_Static_assert(GEO_LEAF_MAX + GEO_NODE_MAX_BITS < ENTRY_DIRECT, "entry codes fit in 5 bits");
_Static_assert(GEO_DIRECT_BITS + 8 + 5 == 32, "direct entry: value, prefix, code");

static inline geo_u128 start6(const geo_map_t *m, uint32_t i)
{
    return GEO_U128(m->e6[i].hi, m->lo6[m->e6[i].lox]);
}

/* The widest aligned block around a that stays inside range i: its host bits h must stay
 * below the highest bit in which a differs from start - 1 and from the next start. */
static inline unsigned prefix4(const geo_map_t *m, uint32_t i, uint32_t a)
{
    unsigned h = 32;
    uint32_t start = (uint32_t)(m->e4[i] >> 32);
    if (start) {
        unsigned m1 = 31 - (unsigned)__builtin_clz(a ^ (start - 1));
        h = MIN(h, m1);
    }
    if (i + 1 < m->n4) {
        unsigned m2 = 31 - (unsigned)__builtin_clz(a ^ (uint32_t)(m->e4[i + 1] >> 32));
        h = MIN(h, m2);
    }
    return 32 - h;
}

static inline unsigned prefix6(const geo_map_t *m, uint32_t i, geo_u128 a)
{
    geo_u128 s = start6(m, i);
    unsigned h = 128;
    if (s) {
        unsigned m1 = 127 - clz128(a ^ (s - 1));
        h = MIN(h, m1);
    }
    if (i + 1 < m->n6) {
        unsigned m2 = 127 - clz128(a ^ start6(m, i + 1));
        h = MIN(h, m2);
    }
    return 128 - h;
}

/* The 64-bit search keys of one family: the word at base + i * stride, masked. */
typedef struct {
    const uint8_t *base;
    size_t stride;
    uint64_t mask;
    uint32_t n;
    const geo_map_t *m; /* for direct entries */
    bool v6;
} keys_t;

static inline uint64_t key_at(const keys_t *k, uint32_t i)
{
    uint64_t v;
    memcpy(&v, k->base + (size_t)i * k->stride, sizeof(v));
    return v & k->mask;
}

/* Last i in [lo, hi] with key <= x (key(lo) <= x). */
static uint32_t key_last_le(const keys_t *k, uint32_t lo, uint32_t hi, uint64_t x)
{
    while (lo < hi) {
        uint32_t mid = lo + ((hi - lo + 1) >> 1);
        if (key_at(k, mid) <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

typedef struct {
    uint32_t *pool;
    size_t n, cap;
    bool full; /* the pool outgrew what an entry can address */
} node_buf_t;

#define POOL_MAX ((size_t)1 << 27) /* 27 bits of entry */

/* Room for a node of 2^s entries, not straddling a 64-byte line when it fits in one.
 * SIZE_MAX (and nb->full) past POOL_MAX entries. */
static size_t node_alloc(node_buf_t *nb, unsigned s)
{
    size_t size = (size_t)1 << s, off = nb->n;
    if (size >= 16 || (off & 15) + size > 16)
        off = (off + 15) & ~(size_t)15;
    if (off + size > POOL_MAX) {
        nb->full = true;
        return SIZE_MAX;
    }
    while (off + size > nb->cap) {
        nb->cap = nb->cap ? nb->cap * 2 : 4096;
        nb->pool = xrealloc(nb->pool, nb->cap * sizeof(uint32_t));
    }
    memset(nb->pool + nb->n, 0, (off - nb->n) * sizeof(uint32_t));
    nb->n = off + size;
    return off;
}

/*
 * A block inside one range (range lo) has one value and one prefix for all its addresses:
 * the widest aligned block inside the range around any of them is the same ancestor of
 * the block. Stored in the entry, they spare the lookup its read of the range table
 * (GeoLite2 City: most IPv4 lookups, and the IPv6 ones in the empty space between
 * allocations). Not for values of GEO_DIRECT_BITS bits or more (ids are numbered by use:
 * the rare ones), nor for an IPv6 block that starts before range lo's start (low bits).
 */
static bool direct_entry(const keys_t *k, uint32_t lo, uint64_t b0, uint32_t *out)
{
    const geo_map_t *m = k->m;
    uint32_t val;
    unsigned p;
    if (!k->v6) {
        val = (uint32_t)m->e4[lo];
        p = prefix4(m, lo, (uint32_t)(b0 >> 32));
    } else {
        if (m->e6[lo].hi == b0 && m->lo6[m->e6[lo].lox] != 0)
            return false;
        val = m->e6[lo].val;
        p = prefix6(m, lo, GEO_U128(b0, 0));
    }
    if (val >= (1u << GEO_DIRECT_BITS))
        return false;
    *out = val << 13 | p << 5 | ENTRY_DIRECT;
    return true;
}

/*
 * The index entry for the block [b0, b0 + 2^shift - 1] of the 64-bit key space. *i is a
 * sweep cursor: on entry the last range starting at or before the previous block's start;
 * on return the last range starting at or before b0. Blocks are visited in address order.
 * No range after `end` starts inside the block (a child's: its parent's last candidate).
 * A block with more than GEO_LEAF_MAX + 1 candidates gets a child node whose 2^s entries
 * split it evenly, with s chosen to leave ~4 candidates per entry on average.
 */
static uint32_t radix_entry(node_buf_t *nb, const keys_t *k, uint64_t b0, unsigned shift,
                            uint32_t *i, uint32_t end)
{
    while (*i + 1 < k->n && key_at(k, *i + 1) <= b0)
        (*i)++;
    uint32_t lo = *i;
    uint64_t b1 = b0 + (shift >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << shift) - 1);
    /* most blocks have few candidates: scan for those, binary-search the rest */
    uint32_t c = 0;
    while (c <= GEO_LEAF_MAX && lo + c + 1 < k->n && key_at(k, lo + c + 1) <= b1)
        c++;
    if (c == 0) {
        uint32_t d;
        if (direct_entry(k, lo, b0, &d))
            return d;
    }
    if (c <= GEO_LEAF_MAX)
        return lo << 5 | c;
    c = key_last_le(k, lo, end, b1) - lo;
    /* shift >= 1 here: a block of one key value has a single candidate (the last range
     * starting at it) */
    unsigned s = 1;
    while (s < GEO_NODE_MAX_BITS && s < shift && ((uint64_t)4 << s) < c)
        s++;
    size_t off = node_alloc(nb, s);
    if (off == SIZE_MAX)
        return lo << 5 | GEO_LEAF_MAX; /* the build fails: see radix_build */
    uint32_t j = lo;
    for (uint32_t ch = 0; ch < (1u << s); ch++) {
        uint32_t e = radix_entry(nb, k, b0 + ((uint64_t)ch << (shift - s)), shift - s, &j, lo + c);
        nb->pool[off + ch] = e;
    }
    return (uint32_t)off << 5 | (GEO_LEAF_MAX + s);
}

/* ---- table memory -------------------------------------------------------------------- */

/*
 * Lookups touch a few random places in tens of MB of tables: with 4 KiB pages nearly every
 * one is also a TLB miss. Tables of 2 MiB or more go to huge pages (xhuge_alloc); smaller
 * ones come from malloc, 64-byte aligned. Freed with geo_table_free(p, the same n).
 */
void *geo_table_alloc(size_t n)
{
    if (n >= HUGE_PAGE)
        return xhuge_alloc(n);
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) & ~(size_t)63 : 64) != 0)
        abort(); /* load time only: OOM is fatal, as xmalloc */
    return p;
}

void geo_table_free(void *p, size_t n)
{
    if (n >= HUGE_PAGE)
        xhuge_free(p, n);
    else
        free(p);
}

/* 0, or ERR_LIMIT when the index would need more than POOL_MAX node entries (about one
 * per range in real data; only pathological nesting gets there). */
static int radix_build(geo_radix_t *x, const keys_t *k, unsigned bits)
{
    node_buf_t nb = {0};
    x->bits = bits;
    x->root = geo_table_alloc(((size_t)1 << bits) * sizeof(uint32_t));
    uint32_t i = 0;
    for (uint64_t b = 0; b < ((uint64_t)1 << bits); b++)
        x->root[b] = radix_entry(&nb, k, b << (64 - bits), 64 - bits, &i, k->n - 1);
    x->npool = nb.n;
    x->pool = geo_table_alloc(nb.n * sizeof(uint32_t));
    if (nb.n)
        memcpy(x->pool, nb.pool, nb.n * sizeof(uint32_t));
    free(nb.pool);
    return nb.full ? ERR_LIMIT : 0;
}

static void radix_clear(geo_radix_t *x)
{
    geo_table_free(x->root, ((size_t)1 << x->bits) * sizeof(uint32_t));
    geo_table_free(x->pool, x->npool * sizeof(uint32_t));
    memset(x, 0, sizeof(*x));
}

/* The leaf or direct entry for key q. */
static inline uint32_t radix_find(const geo_radix_t *x, uint64_t q)
{
    unsigned shift = 64 - x->bits;
    uint32_t e = x->root[q >> shift];
    while ((e & 31) - (GEO_LEAF_MAX + 1) < GEO_NODE_MAX_BITS) { /* a child node */
        unsigned s = (e & 31) - GEO_LEAF_MAX;
        shift -= s;
        e = x->pool[(e >> 5) + ((q >> shift) & ((1u << s) - 1))];
    }
    return e;
}

/* ---- compiled map -------------------------------------------------------------------- */

void geo_map_init_ranges(geo_map_t *m, geo_rl4_t *r4, geo_rl6_t *r6)
{
    memset(m, 0, sizeof(*m));
    if (r4->n == 0)
        geo_rl4_push(r4, 0, 0);
    if (r6->n == 0)
        geo_rl6_emit(r6, 0, GEO_U128_MAX, 0);

    m->n4 = r4->n;
    m->e4 = geo_table_alloc((size_t)m->n4 * sizeof(uint64_t));
    for (uint32_t i = 0; i < m->n4; i++)
        m->e4[i] = (uint64_t)r4->key[i] << 32 | r4->val[i];
    geo_rl4_clear(r4);

    m->n6 = r6->n;
    m->e6 = geo_table_alloc((size_t)m->n6 * sizeof(geo_e6_t));
    uint32_t nlo = 0;
    for (uint32_t i = 0; i < m->n6; i++)
        nlo += (uint64_t)r6->key[i] != 0;
    m->lo6 = xmalloc(((size_t)nlo + 1) * sizeof(uint64_t));
    m->lo6[0] = 0;
    m->nlo6 = 1;
    for (uint32_t i = 0; i < m->n6; i++) {
        uint64_t low = (uint64_t)r6->key[i];
        m->e6[i] = (geo_e6_t){.hi = (uint64_t)(r6->key[i] >> 64), .val = r6->val[i]};
        if (low) {
            m->e6[i].lox = m->nlo6;
            m->lo6[m->nlo6++] = low;
        }
    }
    geo_rl6_clear(r6);
}

int geo_map_index(geo_map_t *m)
{
    keys_t k4 = {(const uint8_t *)m->e4, sizeof(uint64_t), ~(uint64_t)0 << 32, m->n4, m, false};
    keys_t k6 = {(const uint8_t *)m->e6, sizeof(geo_e6_t), ~(uint64_t)0, m->n6, m, true};
    if (radix_build(&m->x4, &k4, GEO_ROOT4_BITS) < 0 ||
        radix_build(&m->x6, &k6, GEO_ROOT6_BITS) < 0) {
        geo_map_clear(m);
        return ERR_LIMIT;
    }
    return 0;
}

int geo_map_init(geo_map_t *m, geo_rl4_t *r4, geo_rl6_t *r6)
{
    geo_map_init_ranges(m, r4, r6);
    return geo_map_index(m);
}

void geo_map_clear(geo_map_t *m)
{
    geo_table_free(m->e4, (size_t)m->n4 * sizeof(uint64_t));
    geo_table_free(m->e6, (size_t)m->n6 * sizeof(geo_e6_t));
    free(m->lo6);
    radix_clear(&m->x4);
    radix_clear(&m->x6);
    memset(m, 0, sizeof(*m));
}

static size_t radix_bytes(const geo_radix_t *x)
{
    return ((size_t)1 << x->bits) * sizeof(uint32_t) + x->npool * sizeof(uint32_t);
}

size_t geo_map_bytes(const geo_map_t *m)
{
    return (size_t)m->n4 * sizeof(uint64_t) + (size_t)m->n6 * sizeof(geo_e6_t) +
           (size_t)m->nlo6 * sizeof(uint64_t) + radix_bytes(&m->x4) + radix_bytes(&m->x6);
}

uint32_t geo_map_lookup4(const geo_map_t *m, uint32_t a, unsigned *prefix)
{
    uint32_t x = radix_find(&m->x4, (uint64_t)a << 32);
    if ((x & 31) == ENTRY_DIRECT) {
        if (prefix)
            *prefix = (x >> 5) & 0xff;
        return x >> 13;
    }
    const uint64_t *e = m->e4;
    uint32_t n = x & 31, i = x >> 5;
    uint64_t ka = (uint64_t)a << 32 | 0xffffffffu; /* e[i] <= ka  <=>  start(i) <= a */
    /* the range is the last of i .. i + n with e <= ka (e[i] <= ka holds): count them.
     * Independent loads, unlike a binary search's chain, so their misses overlap. */
    uint32_t c = 0;
    for (uint32_t j = 1; j <= n; j++)
        c += e[i + j] <= ka;
    i += c;
    if (prefix)
        *prefix = prefix4(m, i, a);
    return (uint32_t)e[i];
}

void geo_rl_count(const geo_rl4_t *r4, const geo_rl6_t *r6, uint32_t *count, uint32_t nlocs)
{
    for (uint32_t i = 0; i < r4->n; i++) {
        if (r4->val[i] < nlocs)
            count[r4->val[i]]++;
    }
    for (uint32_t i = 0; i < r6->n; i++) {
        if (r6->val[i] < nlocs)
            count[r6->val[i]]++;
    }
}

void geo_rl_renumber(geo_rl4_t *r4, geo_rl6_t *r6, const uint32_t *newid, uint32_t nlocs)
{
    for (uint32_t i = 0; i < r4->n; i++) {
        if (r4->val[i] < nlocs)
            r4->val[i] = newid[r4->val[i]];
    }
    for (uint32_t i = 0; i < r6->n; i++) {
        if (r6->val[i] < nlocs)
            r6->val[i] = newid[r6->val[i]];
    }
}

/* Last range in [0, hi] whose full 128-bit start is <= a (start(0) = 0). Only for the rare
 * case of several starts sharing their top 64 bits. */
static uint32_t last_le128(const geo_map_t *m, uint32_t hi, geo_u128 a)
{
    uint32_t lo = 0;
    while (lo < hi) {
        uint32_t mid = lo + ((hi - lo + 1) >> 1);
        if (start6(m, mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

uint32_t geo_map_lookup6(const geo_map_t *m, uint64_t ahi, uint64_t alo, unsigned *prefix)
{
    uint32_t x = radix_find(&m->x6, ahi);
    if ((x & 31) == ENTRY_DIRECT) {
        if (prefix)
            *prefix = (x >> 5) & 0xff;
        return x >> 13;
    }
    const geo_e6_t *e = m->e6;
    uint32_t n = x & 31, i = x >> 5;
    uint32_t c = 0;
    for (uint32_t j = 1; j <= n; j++) /* as in geo_map_lookup4 */
        c += e[i + j].hi <= ahi;
    i += c;
    /* i: last range whose top 64 bits are <= ahi; its low bits may still exceed alo */
    if (__builtin_expect(m->lo6[e[i].lox] > alo, 0) && e[i].hi == ahi)
        i = last_le128(m, i - 1, GEO_U128(ahi, alo));
    if (prefix)
        *prefix = prefix6(m, i, GEO_U128(ahi, alo));
    return e[i].val;
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
    for (uint32_t i = 0; i < m->n6; i++) {
        geo_u128 e = i + 1 < m->n6 ? start6(m, i + 1) - 1 : GEO_U128_MAX;
        int rc = walk_range(AF_INET6, 128, start6(m, i), e, m->e6[i].val, cb, ctx);
        if (rc)
            return rc;
    }
    return 0;
}
