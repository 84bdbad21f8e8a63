/*
 * MMDB source: walk the search tree once, in address order, and
 * decode each distinct data record once (cached by data offset) into a location id.
 *
 * In an IPv6 database the ::/96 subtree is the IPv4 space (libmaxminddb looks IPv4 up
 * there); its leaves go to the IPv4 range list. Subtrees that lie wholly inside the other
 * IPv4 alias regions (::ffff:0:0/96, 2001::/32, 2002::/16) are not walked: lookups there
 * are folded into the IPv4 space, so MaxMind's alias pointers are never followed (and the
 * shared IPv4 subtree is walked once, not four times).
 */
#include <errno.h>
#include <maxminddb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "geo/geo_internal.h"

typedef struct {
    uint32_t off; /* data section offset + 1; 0 = empty slot */
    uint32_t loc;
} cache_slot_t;

/* A decoded field value: missing, a string (borrowed from the mapping) or a number. */
typedef struct {
    uint8_t kind; /* FV_* */
    uint32_t len;
    const char *str;
    double num;
} fval_t;
enum { FV_MISSING = 0, FV_STR, FV_NUM };

enum { F_CONTINENT, F_COUNTRY, F_COUNTRY2, F_SUBDIV, F_CITY, F_LAT, F_LON, F_COUNT };
#define FCACHE_BITS 10
#define FCACHE_SIZE (1u << FCACHE_BITS) /* per field; bigger measured no faster for cities */

typedef struct {
    uint64_t key; /* depth << 32 | offset + 1 of a map a field's path led to through a pointer */
    fval_t v;
} fcache_t;

#define PATH_COMPS 8 /* components of a field path, at most (MaxMind's longest: 3) */
#define NKEYS (F_COUNT * PATH_COMPS)
#define NO_KEY NKEYS /* a key no path names */
#define KEYCACHE_BITS 10

typedef struct {
    uint32_t off; /* offset + 1 of a key string; 0 = empty */
    uint32_t id;  /* index into comp[], or NO_KEY */
} keyslot_t;

typedef struct {
    MMDB_s *mmdb;
    const uint8_t *d; /* data section */
    uint32_t dsize;
    const char *const *paths[F_COUNT];
    unsigned want;               /* the fields with a path */
    /* the distinct path components, and for each depth d: the fields whose component d
     * is key k (km[d][k]), is array index ix (ix[f][d], or -1), or whose path ends (ends) */
    const char *comp[NKEYS];
    uint32_t complen[NKEYS], ncomp;
    uint8_t km[PATH_COMPS][NKEYS + 1];
    int32_t ix[F_COUNT][PATH_COMPS];
    uint8_t ends[PATH_COMPS + 1];
    fcache_t *fcache;            /* F_COUNT * FCACHE_SIZE: what a field's path finds below
                                    a map reached through a pointer, by its offset */
    keyslot_t keys[1u << KEYCACHE_BITS];
    geo_builder_t *b;
    cache_slot_t *cache;
    uint32_t ccap, cn;
    /* per leaf batch: each leaf's location or PENDING | new record; the new records, their
     * cache slots and their ids */
    uint32_t *val;
    geo_loc_prep_t *prep;
    uint32_t *pslot, *ids;
    const char *path;
    char *err;
    size_t errlen;
} mm_ctx_t;

/* ---- a small bounds-checked decoder of the MMDB data section -------------------------
 * libmaxminddb's MMDB_aget_value() re-walks the record from its start for every path; on
 * GeoLite2 City that was half the load time. This decoder walks each record once, all
 * the configured paths together (every byte of a record is decoded once; a key is matched
 * against the paths by the offset of its shared string), and caches what a path finds
 * below a pointed-to sub-map by that map's offset, so each distinct country/continent/
 * city map is decoded about once. Any out-of-bounds or malformed item makes the load fail
 * with ERR_MALFORMED. */

enum {
    T_EXT = 0, T_PTR = 1, T_STR = 2, T_DBL = 3, T_BYTES = 4, T_U16 = 5, T_U32 = 6, T_MAP = 7,
    T_I32 = 8, T_U64 = 9, T_U128 = 10, T_ARR = 11, T_CONT = 12, T_END = 13, T_BOOL = 14,
    T_FLT = 15
};

typedef struct {
    int type;
    uint32_t size; /* bytes of payload, or number of items (map pairs, array elements) */
    uint32_t off;  /* payload offset; for T_PTR the target */
} dval_t;

/* Decode the control bytes at *off; advance *off past the payload of scalars, or to the
 * first item of maps and arrays, or past a pointer. 0 or -1 (malformed). */
static inline ATTR_ALWAYS_INLINE int dec(const mm_ctx_t *c, uint32_t *off, dval_t *v)
{
    const uint8_t *d = c->d;
    uint32_t n = c->dsize, o = *off;
    if (o >= n)
        return -1;
    uint8_t ctrl = d[o++];
    int type = ctrl >> 5;
    if (type == T_PTR) {
        unsigned ss = (ctrl >> 3) & 3, vvv = ctrl & 7;
        uint32_t need = ss + 1, p = 0;
        if (n - o < need)
            return -1;
        for (uint32_t i = 0; i < need; i++)
            p = p << 8 | d[o + i];
        if (ss == 0)
            p |= vvv << 8;
        else if (ss == 1)
            p = (p | vvv << 16) + 2048;
        else if (ss == 2)
            p = (p | (uint32_t)vvv << 24) + 526336;
        v->type = T_PTR;
        v->off = p;
        v->size = 0;
        *off = o + need;
        return 0;
    }
    if (type == T_EXT) {
        if (o >= n)
            return -1;
        type = 7 + d[o++];
        if (type < 8 || type > 15)
            return -1;
    }
    uint32_t size = ctrl & 31;
    if (size >= 29) {
        uint32_t need = size - 28, x = 0;
        if (n - o < need)
            return -1;
        for (uint32_t i = 0; i < need; i++)
            x = x << 8 | d[o + i];
        o += need;
        size = size == 29 ? 29 + x : size == 30 ? 285 + x : 65821 + x;
    }
    v->type = type;
    v->size = size;
    v->off = o;
    if (type == T_MAP || type == T_ARR || type == T_BOOL) {
        *off = o;
        return 0;
    }
    if (type == T_CONT || type == T_END || n - o < size)
        return -1;
    *off = o + size;
    return 0;
}

/* Decode the item at *off, following one pointer (a pointer to a pointer is invalid). */
static int resolve(const mm_ctx_t *c, uint32_t *off, dval_t *v)
{
    if (dec(c, off, v) < 0)
        return -1;
    if (v->type != T_PTR)
        return 0;
    uint32_t t = v->off;
    if (dec(c, &t, v) < 0 || v->type == T_PTR)
        return -1;
    return 0;
}

/* Advance *off past one item (not following pointers). */
static int skip(const mm_ctx_t *c, uint32_t *off, int depth)
{
    dval_t v;
    if (depth > 32 || dec(c, off, &v) < 0)
        return -1;
    if (v.type == T_MAP || v.type == T_ARR) {
        uint64_t items = v.type == T_MAP ? 2ull * v.size : v.size;
        for (uint64_t i = 0; i < items; i++) {
            if (skip(c, off, depth + 1) < 0)
                return -1;
        }
    }
    return 0;
}

static void scalar(const mm_ctx_t *c, const dval_t *v, fval_t *out)
{
    const uint8_t *p = c->d + v->off;
    uint64_t x = 0;
    switch (v->type) {
    case T_STR:
        out->kind = FV_STR;
        out->str = (const char *)p;
        out->len = v->size;
        return;
    case T_DBL:
        if (v->size != 8)
            return;
        for (int i = 0; i < 8; i++)
            x = x << 8 | p[i];
        memcpy(&out->num, &x, 8);
        out->kind = FV_NUM;
        return;
    case T_FLT: {
        if (v->size != 4)
            return;
        uint32_t y = rd_u32(p);
        float f;
        memcpy(&f, &y, 4);
        out->num = f;
        out->kind = FV_NUM;
        return;
    }
    case T_U16: case T_U32: case T_U64: case T_I32:
        if (v->size > 8)
            return;
        for (uint32_t i = 0; i < v->size; i++)
            x = x << 8 | p[i];
        out->num = v->type == T_I32 ? (double)(int32_t)(uint32_t)x : (double)x;
        out->kind = FV_NUM;
        return;
    default:
        return;
    }
}

static int bad_record(mm_ctx_t *c, uint32_t off)
{
    return geo_errf(c->err, c->errlen, ERR_MALFORMED, "%s: data record at offset %u is corrupt",
                    c->path, off);
}

/*
 * Read the map key at *off (advancing past it) and return which path component it is
 * (an index into comp[]), NO_KEY, or -1 (malformed). A key that is not a string is
 * malformed in a record's top-level map and matches nothing deeper. Keys that repeat
 * are pointers to one copy of the string (the writer shares them), so the answer is
 * cached by the string's offset: most keys cost one control byte and one probe.
 */
static int key_id(mm_ctx_t *c, uint32_t *off, bool top)
{
    uint32_t at = *off;
    dval_t key;
    if (dec(c, off, &key) < 0)
        return -1;
    if (key.type == T_PTR)
        at = key.off;
    keyslot_t *slot = &c->keys[(at * 2654435761u) >> (32 - KEYCACHE_BITS)];
    if (slot->off == at + 1)
        return (int)slot->id;
    if (key.type == T_PTR) {
        uint32_t t = key.off;
        if (dec(c, &t, &key) < 0)
            return -1;
    }
    if (key.type != T_STR && top)
        return -1;
    uint32_t id = NO_KEY;
    for (uint32_t k = 0; k < c->ncomp && key.type == T_STR; k++) {
        if (key.size == c->complen[k] && memcmp(c->d + key.off, c->comp[k], key.size) == 0) {
            id = k;
            break;
        }
    }
    slot->off = at + 1;
    slot->id = id;
    return (int)id;
}

static int scan(mm_ctx_t *c, uint32_t *off, unsigned d, unsigned need, fval_t fv[F_COUNT],
                int depth);

static inline fcache_t *fcache_slot(mm_ctx_t *c, int f, uint64_t key)
{
    return &c->fcache[f * FCACHE_SIZE + ((key * 0x9E3779B97F4A7C15ull) >> (64 - FCACHE_BITS))];
}

/* The fields of `fields` whose value below the map with this key is cached (copied to fv). */
static inline unsigned fcache_get(mm_ctx_t *c, uint64_t key, unsigned fields, fval_t fv[F_COUNT])
{
    unsigned hit = 0;
    for (unsigned m = fields; m; m &= m - 1) {
        int f = __builtin_ctz(m);
        const fcache_t *slot = fcache_slot(c, f, key);
        if (slot->key == key) {
            fv[f] = slot->v;
            hit |= 1u << f;
        }
    }
    return hit;
}

static inline void fcache_put(mm_ctx_t *c, uint64_t key, unsigned fields, const fval_t fv[F_COUNT])
{
    for (unsigned m = fields; m; m &= m - 1) {
        int f = __builtin_ctz(m);
        fcache_t *slot = fcache_slot(c, f, key);
        slot->key = key;
        slot->v = fv[f];
    }
}

/*
 * The items of map or array v, from *off: fill the fields in `need` (whose first d path
 * components led to v) from them. With `all`, *off ends past the last item (v is inline
 * in its parent); without, the walk stops once every field is found (v was reached
 * through a pointer). As in libmaxminddb, the first key that matches a component decides.
 */
static int scan_items(mm_ctx_t *c, const dval_t *v, uint32_t *off, unsigned d, unsigned need,
                      fval_t fv[F_COUNT], int depth, bool all)
{
    for (uint32_t k = 0; k < v->size; k++) {
        if (!need && !all)
            return 0;
        unsigned sub = 0;
        if (v->type == T_MAP) {
            if (need) {
                int id = key_id(c, off, false);
                if (id < 0)
                    return -1;
                sub = need & c->km[d][id];
            } else if (skip(c, off, depth + 1) < 0) {
                return -1;
            }
        } else {
            for (unsigned m = need; m; m &= m - 1) {
                int f = __builtin_ctz(m);
                if (c->ix[f][d] == (int64_t)k)
                    sub |= 1u << f;
            }
        }
        need &= ~sub;
        if (scan(c, off, d + 1, sub, fv, depth + 1) < 0)
            return -1;
    }
    return 0;
}

/*
 * Decode the item at *off and advance *off past it (a pointer counts as its own bytes).
 * `need`: the fields whose first d path components led here. A field whose path ends
 * here takes the item's value (through one pointer); the others go on into a map or an
 * array, and are missing in anything else. Each byte of a record is decoded once.
 * What the going-on fields find below a pointer depends only on its target and d: it is
 * cached under both, and a hit skips the target (GeoLite2 City: 93 % of the subdivision
 * arrays, which lie behind a pointer inside each record).
 */
static int scan(mm_ctx_t *c, uint32_t *off, unsigned d, unsigned need, fval_t fv[F_COUNT],
                int depth)
{
    if (!need)
        return skip(c, off, depth);
    dval_t v;
    if (depth > 32 || dec(c, off, &v) < 0)
        return -1;
    uint32_t *items = off, at = 0;
    unsigned cached = 0; /* fields to remember under the pointer's target */
    uint64_t key = 0;
    if (v.type == T_PTR) { /* the target, walked from a copy of the offset */
        at = v.off;
        cached = need & ~(unsigned)c->ends[d];
        if (cached) {
            key = (uint64_t)d << 32 | ((uint64_t)at + 1);
            unsigned hit = fcache_get(c, key, cached, fv);
            need &= ~hit;
            cached &= ~hit;
            if (!need)
                return 0;
        }
        if (dec(c, &at, &v) < 0 || v.type == T_PTR)
            return -1;
        items = &at;
    }
    for (unsigned m = need & c->ends[d]; m; m &= m - 1)
        scalar(c, &v, &fv[__builtin_ctz(m)]);
    need &= ~(unsigned)c->ends[d];
    if (v.type == T_MAP || v.type == T_ARR) {
        if (d >= PATH_COMPS)
            need = 0;
        if (scan_items(c, &v, items, d, need, fv, depth, items == off) < 0)
            return -1;
    }
    fcache_put(c, key, cached, fv);
    return 0;
}

/*
 * Fill fv[F_*] from the record at data offset `rec`: one pass over its top-level map.
 * A map reached through a pointer (the shared country, continent, city and subdivision
 * maps, at any depth) is looked up in the field cache by the pointer's target first (see
 * scan()), so each distinct one is decoded about once; inline values (the per-network
 * location map) are decoded in place.
 */
static int read_fields(mm_ctx_t *c, uint32_t rec, fval_t fv[F_COUNT])
{
    uint32_t off = rec;
    dval_t top;
    memset(fv, 0, sizeof(fval_t) * F_COUNT);
    if (resolve(c, &off, &top) < 0)
        return bad_record(c, rec);
    if (top.type != T_MAP)
        return 0; /* not a map: every field missing */
    off = top.off;
    unsigned need = c->want;
    for (uint32_t k = 0; k < top.size; k++) {
        if (!need) { /* the rest of the map: nothing to read, and a record ends here */
            return 0;
        }
        int id = key_id(c, &off, true);
        if (id < 0)
            return bad_record(c, rec);
        unsigned group = need & c->km[0][id];
        need &= ~group;
        if (fv[F_COUNTRY].kind == FV_STR && fv[F_COUNTRY].len && fv[F_COUNTRY].len < 8)
            need &= ~(1u << F_COUNTRY2); /* only a fallback: see decode() */
        if (scan(c, &off, 1, group, fv, 1) < 0)
            return bad_record(c, rec);
    }
    return 0;
}

static bool num_of(const fval_t *v, double *out)
{
    if (v->kind == FV_NUM) {
        *out = v->num;
        return true;
    }
    if (v->kind == FV_STR && v->len > 0 && v->len < 64) {
        char buf[64], *end;
        memcpy(buf, v->str, v->len);
        buf[v->len] = '\0';
        *out = strtod(buf, &end);
        return *end == '\0';
    }
    return false;
}

static void str_of(const fval_t *v, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (v->kind == FV_STR && v->len < cap) {
        memcpy(buf, v->str, v->len);
        buf[v->len] = '\0';
    }
}

/* Read the record at data offset rec into a location ready to intern. */
static int decode(mm_ctx_t *c, uint32_t rec, geo_loc_prep_t *p)
{
    fval_t fv[F_COUNT];
    int rc = read_fields(c, rec, fv);
    if (rc < 0)
        return rc;
    char cont[8], ctry[8], sub[16];
    geo_loc_in_t in = {0};
    str_of(&fv[F_CONTINENT], cont, sizeof(cont));
    str_of(&fv[F_COUNTRY], ctry, sizeof(ctry));
    if (!ctry[0])
        str_of(&fv[F_COUNTRY2], ctry, sizeof(ctry));
    str_of(&fv[F_SUBDIV], sub, sizeof(sub));
    if (fv[F_CITY].kind == FV_STR && fv[F_CITY].len) {
        in.city = fv[F_CITY].str; /* in the mapping: valid until MMDB_close() */
        in.city_len = fv[F_CITY].len;
    }
    in.continent = cont;
    in.country = ctry;
    in.subdivision = sub;
    in.has_coords = num_of(&fv[F_LAT], &in.lat) && num_of(&fv[F_LON], &in.lon);
    geo_builder_prep(c->b, &in, p);
    return 0;
}

static inline uint32_t cache_home(const mm_ctx_t *c, uint32_t key)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (c->ccap - 1);
}

/* Room in the record cache for `more` records without a rehash (load at most 3/4). */
static void cache_reserve(mm_ctx_t *c, size_t more)
{
    uint32_t ncap = c->ccap ? c->ccap : 4096;
    while ((c->cn + more) * 4 > (size_t)ncap * 3)
        ncap *= 2;
    if (ncap == c->ccap)
        return;
    cache_slot_t *nc = xcalloc(ncap, sizeof(*nc));
    for (uint32_t i = 0; i < c->ccap; i++) {
        if (!c->cache[i].off)
            continue;
        uint32_t k = (uint32_t)((c->cache[i].off * 0x9E3779B97F4A7C15ull) >> 32) & (ncap - 1);
        while (nc[k].off)
            k = (k + 1) & (ncap - 1);
        nc[k] = c->cache[i];
    }
    free(c->cache);
    c->cache = nc;
    c->ccap = ncap;
}

/* A leaf of the search tree waiting for its location: [s, e], data offset + 1 or 0. */
typedef struct {
    geo_u128 s, e;
    uint32_t off;
} leaf_t;

#define LEAF_BATCH 4096
#define LEAF_AHEAD 16
#define PENDING 0x80000000u /* a record cache value: index into the batch's new records */

/*
 * Resolve a batch of leaves, in address order, into the range lists. The record cache
 * is a few MB probed at random (3.7 M leaves in GeoLite2 City), so each probe is a cache
 * miss: prefetching the slot (and the record) LEAF_AHEAD leaves ahead overlaps them.
 * Records seen for the first time are decoded, then interned together at the end of the
 * batch (geo_builder_locs() overlaps the misses of its tables too).
 */
static int flush_leaves(mm_ctx_t *c, const leaf_t *lv, size_t n, unsigned bits, geo_rl4_t *v4,
                        geo_rl6_t *v6)
{
    uint32_t *val = c->val, np = 0, last_off = 0, last_val = 0;
    if (c->cn + n >= PENDING)
        return geo_errf(c->err, c->errlen, ERR_LIMIT, "%s: too many data records", c->path);
    cache_reserve(c, n);
    for (size_t i = 0; i < n; i++) {
        if (i + LEAF_AHEAD < n && lv[i + LEAF_AHEAD].off) {
            __builtin_prefetch(&c->cache[cache_home(c, lv[i + LEAF_AHEAD].off)]);
            __builtin_prefetch(c->d + lv[i + LEAF_AHEAD].off - 1);
        }
        uint32_t key = lv[i].off;
        if (!key || key == last_off) { /* neighbouring networks often share a record */
            val[i] = key ? last_val : GEO_LOC_UNKNOWN;
            continue;
        }
        uint32_t k = cache_home(c, key);
        while (c->cache[k].off && c->cache[k].off != key)
            k = (k + 1) & (c->ccap - 1);
        if (!c->cache[k].off) { /* a record not seen yet */
            int rc = decode(c, key - 1, &c->prep[np]);
            if (rc < 0)
                return rc;
            c->pslot[np] = k;
            c->cache[k] = (cache_slot_t){.off = key, .loc = PENDING | np++};
            c->cn++;
        }
        val[i] = last_val = c->cache[k].loc;
        last_off = key;
    }
    geo_builder_locs(c->b, c->prep, np, c->ids);
    for (uint32_t j = 0; j < np; j++)
        c->cache[c->pslot[j]].loc = c->ids[j];
    for (size_t i = 0; i < n; i++) {
        uint32_t loc = val[i] & PENDING ? c->ids[val[i] & ~PENDING] : val[i];
        geo_u128 s = lv[i].s, e = lv[i].e;
        if (bits == 32) {
            geo_rl4_push(v4, (uint32_t)s, loc);
        } else {
            if (s <= 0xffffffffu) {
                geo_rl4_push(v4, (uint32_t)s, loc);
                /* inside ::/96, which the IPv6 list already holds as one alias range */
                if (e <= 0xffffffffu && v6->n && v6->val[v6->n - 1] == GEO_LOC_V4ALIAS)
                    continue;
            }
            geo_rl6_emit(v6, s, e, loc);
        }
    }
    return 0;
}

/* The two records of search-tree node n (n < node count; the tree lies in the file). */
static inline void read_node(const uint8_t *tree, unsigned rs, uint32_t n, uint64_t *l, uint64_t *r)
{
    const uint8_t *p = tree + (uint64_t)n * rs / 4;
    uint32_t a = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    if (rs == 24) {
        *l = a;
        *r = (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
    } else if (rs == 28) { /* the middle byte holds the top nibble of each record */
        *l = (uint32_t)(p[3] & 0xf0) << 20 | a;
        *r = (uint32_t)(p[3] & 0x0f) << 24 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6];
    } else {
        *l = (uint32_t)a << 8 | p[3];
        *r = rd_u32(p + 4);
    }
}

/* Queue the leaf [s, s + 2^(bits - depth) - 1] with record rec (flushing a full batch). */
static int add_leaf(mm_ctx_t *c, geo_rl4_t *v4, geo_rl6_t *v6, leaf_t *lv, size_t *nl,
                    unsigned bits, geo_u128 s, unsigned depth, uint64_t rec)
{
    MMDB_s *mmdb = c->mmdb;
    const uint64_t node_count = mmdb->metadata.node_count;
    uint32_t off = 0;
    if (rec > node_count) { /* data; node_count itself is the empty record */
        if (rec - node_count - 16 >= mmdb->data_section_size)
            return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                            "%s: record %llu points outside the data section", c->path,
                            (unsigned long long)rec);
        off = (uint32_t)(rec - node_count - 16) + 1;
    }
    if (*nl == LEAF_BATCH) {
        int rc = flush_leaves(c, lv, *nl, bits, v4, v6);
        *nl = 0;
        if (rc < 0)
            return rc;
    }
    geo_u128 size_m1 = depth == 0 && bits == 128 ? GEO_U128_MAX
                                                 : ((geo_u128)1 << (bits - depth)) - 1;
    lv[(*nl)++] = (leaf_t){.s = s, .e = s | size_m1, .off = off};
    return 0;
}

/*
 * Walk the search tree depth first, left (lower addresses) first, queueing leaves in lv.
 * The stack holds the right children still to visit, as record | depth << 32; the prefix
 * of the node being visited is kept in `cur`: a right child's prefix is its parent's,
 * which the nodes visited since (its left sibling's subtree) still share, plus its bit.
 */
static int walk_leaves(mm_ctx_t *c, geo_rl4_t *v4, geo_rl6_t *v6, leaf_t *lv, size_t *nl)
{
    MMDB_s *mmdb = c->mmdb;
    const unsigned bits = mmdb->metadata.ip_version == 6 ? 128 : 32;
    const uint64_t node_count = mmdb->metadata.node_count;
    const uint64_t max_visits = 2 * node_count + 256;
    uint64_t visits = 0;
    /* Nodes are read here rather than through MMDB_read_node() (a call each, 3.9 M in
     * GeoLite2 City) when the record size is one of the three the format defines and the
     * tree lies inside the file. */
    const unsigned rs = mmdb->metadata.record_size;
    const uint8_t *tree = NULL;
    if ((rs == 24 || rs == 28 || rs == 32) && mmdb->file_size > 0 &&
        node_count * rs / 4 <= (uint64_t)mmdb->file_size)
        tree = mmdb->file_content;
    uint64_t stack[130]; /* at most one pending right child per depth 1 .. 128 */
    size_t sp = 0;
    stack[sp++] = 0; /* the root: node 0 at depth 0 */
    geo_u128 cur = 0;

    while (sp) {
        uint64_t rec = (uint32_t)stack[--sp];
        unsigned depth = (unsigned)(stack[sp] >> 32);
        if (depth) { /* a right child: the parent's prefix and bit bits - depth set */
            geo_u128 bit = (geo_u128)1 << (bits - depth);
            cur = (cur & ~(bit + bit - 1)) | bit;
        }
        bool alias = false;
        while (rec < node_count) { /* a search node: queue the right child, go left */
            if (bits == 128 && (depth == 16 || depth == 32 || depth == 96) && cur > 0xffffffffu) {
                geo_u128 end = cur | (((geo_u128)1 << (128 - depth)) - 1);
                if (geo_v6_in_alias(cur, end)) { /* all GEO_LOC_V4ALIAS: not walked */
                    int rc = flush_leaves(c, lv, *nl, bits, v4, v6);
                    *nl = 0;
                    if (rc < 0)
                        return rc;
                    geo_rl6_emit(v6, cur, end, 0);
                    alias = true;
                    break;
                }
            }
            if (depth >= bits)
                return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                                "%s: search tree deeper than %u bits", c->path, bits);
            if (++visits > max_visits)
                return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                                "%s: search tree is not a tree (node %llu revisited)", c->path,
                                (unsigned long long)rec);
            uint64_t left, right;
            if (tree) {
                read_node(tree, rs, (uint32_t)rec, &left, &right);
            } else {
                MMDB_search_node_s node;
                int st = MMDB_read_node(mmdb, (uint32_t)rec, &node);
                if (st != MMDB_SUCCESS)
                    return geo_errf(c->err, c->errlen, ERR_MALFORMED, "%s: node %llu: %s",
                                    c->path, (unsigned long long)rec, MMDB_strerror(st));
                left = node.left_record;
                right = node.right_record;
            }
            if (right > UINT32_MAX || left > UINT32_MAX)
                return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                                "%s: invalid record in search tree", c->path);
            depth++;
            stack[sp++] = right | (uint64_t)depth << 32;
            rec = left;
        }
        if (!alias) {
            int rc = add_leaf(c, v4, v6, lv, nl, bits, cur, depth, rec);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int walk_tree(mm_ctx_t *c, geo_rl4_t *v4, geo_rl6_t *v6)
{
    leaf_t *lv = xmalloc(LEAF_BATCH * sizeof(leaf_t));
    c->val = xmalloc(LEAF_BATCH * sizeof(uint32_t));
    c->prep = xmalloc(LEAF_BATCH * sizeof(geo_loc_prep_t));
    c->pslot = xmalloc(LEAF_BATCH * sizeof(uint32_t));
    c->ids = xmalloc(LEAF_BATCH * sizeof(uint32_t));
    size_t nl = 0;
    int rc = walk_leaves(c, v4, v6, lv, &nl);
    if (rc == 0)
        rc = flush_leaves(c, lv, nl, c->mmdb->metadata.ip_version == 6 ? 128 : 32, v4, v6);
    free(lv);
    free(c->val);
    free(c->prep);
    free(c->pslot);
    free(c->ids);
    return rc;
}

/* The decoder's tables for the configured field paths (see mm_ctx_t); -1 if one is too long. */
static int paths_prepare(mm_ctx_t *c)
{
    for (int f = 0; f < F_COUNT; f++) {
        const char *const *p = c->paths[f];
        if (p && !p[0])
            c->paths[f] = p = NULL;
        for (unsigned d = 0; d < PATH_COMPS; d++)
            c->ix[f][d] = -1;
        if (!p)
            continue;
        c->want |= 1u << f;
        unsigned d = 0;
        for (; p[d]; d++) {
            if (d >= PATH_COMPS)
                return -1;
            uint32_t k = 0, len = (uint32_t)strlen(p[d]);
            while (k < c->ncomp && !(c->complen[k] == len && memcmp(c->comp[k], p[d], len) == 0))
                k++;
            if (k == c->ncomp) {
                c->comp[k] = p[d];
                c->complen[k] = len;
                c->ncomp++;
            }
            c->km[d][k] |= (uint8_t)(1u << f);
            char *end;
            unsigned long idx = strtoul(p[d], &end, 10);
            if (!*end && end != p[d] && idx < INT32_MAX)
                c->ix[f][d] = (int32_t)idx;
        }
        c->ends[d] |= (uint8_t)(1u << f);
    }
    return 0;
}

int geo_mmdb_read(geo_builder_t *b, const geo_source_t *src, geo_rl4_t *v4, geo_rl6_t *v6,
                  char *err, size_t errlen)
{
    MMDB_s mmdb;
    errno = 0;
    int st = MMDB_open(src->path, MMDB_MODE_MMAP, &mmdb);
    if (st != MMDB_SUCCESS) {
        if (st == MMDB_IO_ERROR || st == MMDB_FILE_OPEN_ERROR)
            return geo_errf(err, errlen, ERR_IO, "%s: %s", src->path,
                            errno ? strerror(errno) : MMDB_strerror(st));
        return geo_errf(err, errlen, ERR_MALFORMED, "%s: %s", src->path, MMDB_strerror(st));
    }
    int rc = 0;
    if (mmdb.metadata.ip_version != 4 && mmdb.metadata.ip_version != 6)
        rc = geo_errf(err, errlen, ERR_MALFORMED, "%s: bad ip_version %u", src->path,
                      (unsigned)mmdb.metadata.ip_version);
    else if (mmdb.metadata.node_count == 0)
        rc = geo_errf(err, errlen, ERR_MALFORMED, "%s: empty search tree", src->path);
    if (rc == 0) {
        const geo_fields_t *f = src->fields ? src->fields : &geo_fields_maxmind;
        mm_ctx_t c = {.mmdb = &mmdb,
                      .d = mmdb.data_section,
                      .dsize = mmdb.data_section_size,
                      .paths = {f->continent, f->country, f->country_fallback, f->subdivision,
                                f->city, f->latitude, f->longitude},
                      .b = b,
                      .path = src->path,
                      .err = err,
                      .errlen = errlen};
        /* fields the builder would drop are not decoded at all */
        unsigned keep = geo_builder_keep(b);
        if (!(keep & GEO_KEEP_SUBDIVISION))
            c.paths[F_SUBDIV] = NULL;
        if (!(keep & GEO_KEEP_CITY))
            c.paths[F_CITY] = NULL;
        if (!(keep & GEO_KEEP_COORDS))
            c.paths[F_LAT] = c.paths[F_LON] = NULL;
        if (paths_prepare(&c) < 0)
            rc = geo_errf(err, errlen, ERR_INVAL, "%s: a field path has more than %d components",
                          src->path, PATH_COMPS);
        c.fcache = xcalloc((size_t)F_COUNT * FCACHE_SIZE, sizeof(fcache_t));
        if (rc == 0)
            rc = walk_tree(&c, v4, v6);
        free(c.fcache);
        free(c.cache);
    }
    MMDB_close(&mmdb);
    if (rc < 0) {
        geo_rl4_clear(v4);
        geo_rl6_clear(v6);
    }
    return rc;
}
