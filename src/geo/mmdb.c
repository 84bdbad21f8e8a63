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
#define FCACHE_SIZE 1024 /* per field; bigger measured no faster for cities */

typedef struct {
    uint32_t key; /* offset + 1 of the value the path's first key led to */
    fval_t v;
} fcache_t;

#define KEYCACHE_BITS 8

typedef struct {
    uint32_t off; /* offset + 1 of a top-level key string; 0 = empty */
    uint32_t group;
} keyslot_t;

typedef struct {
    MMDB_s *mmdb;
    const uint8_t *d; /* data section */
    uint32_t dsize;
    const char *const *paths[F_COUNT];
    size_t key0len[F_COUNT], key1len[F_COUNT];
    unsigned group[F_COUNT];     /* the fields whose path starts with the same key as f's */
    fcache_t *fcache;            /* F_COUNT * FCACHE_SIZE, by the offset of the value the
                                    path's first key led to */
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

typedef struct {
    uint64_t rec;
    geo_u128 prefix;
    uint8_t type;
    uint8_t depth;
} item_t;

/* ---- a small bounds-checked decoder of the MMDB data section -------------------------
 * libmaxminddb's MMDB_aget_value() re-walks the record from its start for every path; on
 * GeoLite2 City that was half the load time. This decoder scans each record's top-level
 * map once and caches the result of the rest of each path by the offset of the (usually
 * shared, pointed-to) sub-map, so each distinct country/continent/city map is decoded
 * once. Any out-of-bounds or malformed item makes the load fail with ERR_MALFORMED. */

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
static int dec(const mm_ctx_t *c, uint32_t *off, dval_t *v)
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

static bool key_is(const mm_ctx_t *c, const dval_t *k, const char *s, size_t len)
{
    return k->type == T_STR && k->size == len && memcmp(c->d + k->off, s, len) == 0;
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

/* Follow path (from component `i` on) starting at the item at offset off. */
static int follow(const mm_ctx_t *c, uint32_t off, const char *const *path, size_t i, fval_t *out)
{
    for (;; i++) {
        dval_t v;
        if (resolve(c, &off, &v) < 0)
            return -1;
        if (!path[i]) {
            scalar(c, &v, out);
            return 0;
        }
        off = v.off; /* the items of a map or array (after following a pointer) */
        if (v.type == T_MAP) {
            size_t len = strlen(path[i]);
            bool found = false;
            for (uint32_t k = 0; k < v.size && !found; k++) {
                dval_t key;
                if (resolve(c, &off, &key) < 0)
                    return -1;
                if (key_is(c, &key, path[i], len))
                    found = true;
                else if (skip(c, &off, 0) < 0)
                    return -1;
            }
            if (!found)
                return 0;
        } else if (v.type == T_ARR) {
            char *end;
            unsigned long idx = strtoul(path[i], &end, 10);
            if (*end || end == path[i] || idx >= v.size)
                return 0;
            for (unsigned long k = 0; k < idx; k++) {
                if (skip(c, &off, 0) < 0)
                    return -1;
            }
        } else {
            return 0;
        }
    }
}

static int bad_record(mm_ctx_t *c, uint32_t off)
{
    return geo_errf(c->err, c->errlen, ERR_MALFORMED, "%s: data record at offset %u is corrupt",
                    c->path, off);
}

/*
 * Follow several paths that share their first component (location.latitude and
 * location.longitude) through the map at off in one pass, rather than one pass each.
 * `need` holds the fields still to find.
 */
static int follow_group(const mm_ctx_t *c, uint32_t off, unsigned need, fval_t fv[F_COUNT])
{
    dval_t v;
    if (resolve(c, &off, &v) < 0)
        return -1;
    if (v.type != T_MAP)
        return 0;
    off = v.off;
    for (uint32_t k = 0; k < v.size && need; k++) {
        dval_t key;
        if (resolve(c, &off, &key) < 0)
            return -1;
        for (int f = 0; f < F_COUNT; f++) {
            if (!(need & 1u << f) || !key_is(c, &key, c->paths[f][1], c->key1len[f]))
                continue;
            if (follow(c, off, c->paths[f], 2, &fv[f]) < 0)
                return -1;
            need &= ~(1u << f);
        }
        if (skip(c, &off, 0) < 0)
            return -1;
    }
    return 0;
}

/*
 * Read a top-level key at *off and set *group to the fields whose path starts with it.
 * Keys that repeat are pointers to one copy of the string (the writer shares them), so
 * the answer is cached by the string's offset: most keys cost one control byte.
 */
static int top_key(mm_ctx_t *c, uint32_t *off, unsigned *group)
{
    uint32_t at = *off;
    dval_t key;
    if (dec(c, off, &key) < 0)
        return -1;
    if (key.type == T_PTR)
        at = key.off;
    keyslot_t *slot = &c->keys[(at * 2654435761u) >> (32 - KEYCACHE_BITS)];
    if (slot->off == at + 1) {
        *group = slot->group;
        return 0;
    }
    if (key.type == T_PTR) {
        uint32_t t = key.off;
        if (dec(c, &t, &key) < 0)
            return -1;
    }
    if (key.type != T_STR)
        return -1;
    *group = 0;
    for (int f = 0; f < F_COUNT; f++) {
        if (c->paths[f] && key_is(c, &key, c->paths[f][0], c->key0len[f])) {
            *group = c->group[f];
            break;
        }
    }
    slot->off = at + 1;
    slot->group = *group;
    return 0;
}

/* Fill fv[F_*] from the record at data offset `rec`. */
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
    for (uint32_t k = 0; k < top.size; k++) {
        unsigned group = 0, missed = 0;
        if (top_key(c, &off, &group) < 0)
            return bad_record(c, rec);
        uint32_t voff = off;
        uint32_t target = 0;
        if (group) { /* cache by the offset of the (pointed-to) sub-map */
            uint32_t t = voff;
            dval_t pv;
            if (dec(c, &t, &pv) < 0)
                return bad_record(c, rec);
            target = pv.type == T_PTR ? pv.off : voff;
        }
        for (int f = 0; f < F_COUNT; f++) {
            if (!(group & 1u << f))
                continue;
            const char *const *p = c->paths[f];
            if (!p[1]) { /* one-component path: the value itself */
                if (follow(c, voff, p, 1, &fv[f]) < 0)
                    return bad_record(c, rec);
                continue;
            }
            fcache_t *slot = &c->fcache[f * FCACHE_SIZE + ((target * 2654435761u) >> 22)];
            if (slot->key == target + 1)
                fv[f] = slot->v;
            else
                missed |= 1u << f;
        }
        if (missed & (missed - 1)) {
            if (follow_group(c, voff, missed, fv) < 0)
                return bad_record(c, rec);
        } else if (missed) {
            int f = __builtin_ctz(missed);
            if (follow(c, voff, c->paths[f], 1, &fv[f]) < 0)
                return bad_record(c, rec);
        }
        for (int f = 0; f < F_COUNT; f++) {
            if (missed & 1u << f) {
                fcache_t *slot = &c->fcache[f * FCACHE_SIZE + ((target * 2654435761u) >> 22)];
                slot->key = target + 1;
                slot->v = fv[f];
            }
        }
        if (skip(c, &off, 0) < 0)
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
            if (s <= 0xffffffffu)
                geo_rl4_push(v4, (uint32_t)s, loc);
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

/* What a record of a node points to, as libmaxminddb classifies it. */
static inline uint8_t record_type(uint64_t node_count, uint64_t rec)
{
    if (rec < node_count)
        return MMDB_RECORD_TYPE_SEARCH_NODE;
    return rec == node_count ? MMDB_RECORD_TYPE_EMPTY : MMDB_RECORD_TYPE_DATA;
}

/* Walk the search tree, queueing leaves in lv (flushed when full). */
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
    item_t stack[2 * 130];
    size_t sp = 0;
    stack[sp++] = (item_t){.rec = 0, .prefix = 0, .type = MMDB_RECORD_TYPE_SEARCH_NODE, .depth = 0};

    while (sp) {
        item_t it = stack[--sp];
        geo_u128 size_m1 = it.depth == 0 && bits == 128 ? GEO_U128_MAX
                                                        : ((geo_u128)1 << (bits - it.depth)) - 1;
        geo_u128 s = it.prefix, e = it.prefix | size_m1;

        if (it.type == MMDB_RECORD_TYPE_SEARCH_NODE) {
            if (bits == 128 && it.depth > 0 && s > 0xffffffffu && geo_v6_in_alias(s, e)) {
                int rc = flush_leaves(c, lv, *nl, bits, v4, v6);
                *nl = 0;
                if (rc < 0)
                    return rc;
                geo_rl6_emit(v6, s, e, 0); /* all GEO_LOC_V4ALIAS */
                continue;
            }
            if (it.depth >= bits)
                return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                                "%s: search tree deeper than %u bits", c->path, bits);
            if (++visits > max_visits)
                return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                                "%s: search tree is not a tree (node %llu revisited)", c->path,
                                (unsigned long long)it.rec);
            uint64_t left, right;
            if (tree) {
                read_node(tree, rs, (uint32_t)it.rec, &left, &right);
            } else {
                MMDB_search_node_s node;
                int st = MMDB_read_node(mmdb, (uint32_t)it.rec, &node);
                if (st != MMDB_SUCCESS)
                    return geo_errf(c->err, c->errlen, ERR_MALFORMED, "%s: node %llu: %s",
                                    c->path, (unsigned long long)it.rec, MMDB_strerror(st));
                left = node.left_record;
                right = node.right_record;
            }
            geo_u128 half = (geo_u128)1 << (bits - 1 - it.depth);
            /* right first: the stack pops the left child (lower addresses) first */
            stack[sp++] = (item_t){right, it.prefix | half, record_type(node_count, right),
                                   (uint8_t)(it.depth + 1)};
            stack[sp++] = (item_t){left, it.prefix, record_type(node_count, left),
                                   (uint8_t)(it.depth + 1)};
            continue;
        }

        uint32_t off = 0;
        if (it.type == MMDB_RECORD_TYPE_DATA) {
            if (it.rec - node_count - 16 >= mmdb->data_section_size)
                return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                                "%s: record %llu points outside the data section", c->path,
                                (unsigned long long)it.rec);
            off = (uint32_t)(it.rec - node_count - 16) + 1;
        } else if (it.type != MMDB_RECORD_TYPE_EMPTY) {
            return geo_errf(c->err, c->errlen, ERR_MALFORMED,
                            "%s: invalid record %llu in search tree", c->path,
                            (unsigned long long)it.rec);
        }
        if (*nl == LEAF_BATCH) {
            int rc = flush_leaves(c, lv, *nl, bits, v4, v6);
            *nl = 0;
            if (rc < 0)
                return rc;
        }
        lv[(*nl)++] = (leaf_t){.s = s, .e = e, .off = off};
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
        for (int i = 0; i < F_COUNT; i++) {
            if (c.paths[i] && !c.paths[i][0])
                c.paths[i] = NULL;
            c.key0len[i] = c.paths[i] ? strlen(c.paths[i][0]) : 0;
            c.key1len[i] = c.paths[i] && c.paths[i][1] ? strlen(c.paths[i][1]) : 0;
        }
        for (int i = 0; i < F_COUNT; i++) {
            for (int j = 0; j < F_COUNT && c.paths[i]; j++) {
                if (c.paths[j] && strcmp(c.paths[i][0], c.paths[j][0]) == 0)
                    c.group[i] |= 1u << j;
            }
        }
        c.fcache = xcalloc((size_t)F_COUNT * FCACHE_SIZE, sizeof(fcache_t));
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
