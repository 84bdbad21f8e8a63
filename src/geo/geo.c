/*
 * geo db: the load driver (sources, precedence), the location table, lookups.
 */
#include "geo/geo.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"
#include "geo/geo_internal.h"

/* ---- field schemas -------------------------------------------------------------------- */

static const char *const mm_continent[] = {"continent", "code", NULL};
static const char *const mm_country[] = {"country", "iso_code", NULL};
static const char *const mm_regcountry[] = {"registered_country", "iso_code", NULL};
static const char *const mm_subdivision[] = {"subdivisions", "0", "iso_code", NULL};
static const char *const mm_city[] = {"city", "names", "en", NULL};
static const char *const mm_lat[] = {"location", "latitude", NULL};
static const char *const mm_lon[] = {"location", "longitude", NULL};

const geo_fields_t geo_fields_maxmind = {
    .continent = mm_continent,
    .country = mm_country,
    .country_fallback = mm_regcountry,
    .subdivision = mm_subdivision,
    .city = mm_city,
    .latitude = mm_lat,
    .longitude = mm_lon,
};

static const char *const fl_continent[] = {"continent_code", NULL};
static const char *const fl_country[] = {"country_code", NULL};
static const char *const fl_subdivision[] = {"subdivision_code", NULL};
static const char *const fl_city[] = {"city", NULL};
static const char *const fl_lat[] = {"latitude", NULL};
static const char *const fl_lon[] = {"longitude", NULL};

const geo_fields_t geo_fields_flat = {
    .continent = fl_continent,
    .country = fl_country,
    .country_fallback = NULL,
    .subdivision = fl_subdivision,
    .city = fl_city,
    .latitude = fl_lat,
    .longitude = fl_lon,
};

/* ---- db ------------------------------------------------------------------------------- */

struct geo_db {
    geo_map_t map;
    geo_location_t *locs;
    uint32_t nlocs;
    char *pool;
    size_t pool_len;
    geo_subdiv_t *subs; /* sorted by code */
    size_t nsubs;
};

int geo_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- builder: location interning ------------------------------------------------------ */

typedef geo_loc_rec_t loc_rec_t;
_Static_assert(sizeof(loc_rec_t) == 40, "loc_rec_t has padding");

struct geo_builder {
    loc_rec_t *locs;
    uint32_t n, cap;
    uint64_t *lhash; /* open addressing: hash << 32 | loc id; 0 = empty */
    uint32_t lhcap;
    char *pool;
    size_t plen, pcap;
    uint64_t *shash; /* open addressing: hash << 32 | pool offset; 0 = empty */
    uint32_t shcap, scount;
    uint8_t source;
    unsigned keep; /* GEO_KEEP_*: the fields geo_builder_prep() takes from its input */
};

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* A fast non-cryptographic hash (8 bytes at a time); inputs are our own data. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) * 0x9E3779B97F4A7C15ull;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w ^ 0x5bd1e995);
}

static void builder_init(geo_builder_t *b)
{
    memset(b, 0, sizeof(*b));
    b->cap = 1024;
    b->locs = xcalloc(b->cap, sizeof(*b->locs));
    b->n = 1; /* id 0: unknown */
    b->lhcap = 4096;
    b->lhash = xcalloc(b->lhcap, sizeof(uint64_t));
    b->pcap = 4096;
    b->pool = xmalloc(b->pcap);
    b->pool[0] = '\0';
    b->plen = 1;
    b->shcap = 1024;
    b->shash = xcalloc(b->shcap, sizeof(uint64_t));
    b->keep = GEO_KEEP_ALL;
}

unsigned geo_builder_keep(const geo_builder_t *b)
{
    return b->keep;
}

static void builder_clear(geo_builder_t *b)
{
    free(b->locs);
    free(b->lhash);
    free(b->pool);
    free(b->shash);
    memset(b, 0, sizeof(*b));
}

geo_builder_t *geo_builder_new(uint8_t source)
{
    geo_builder_t *b = xmalloc(sizeof(*b));
    builder_init(b);
    b->source = source;
    return b;
}

void geo_builder_free(geo_builder_t *b)
{
    if (b) {
        builder_clear(b);
        free(b);
    }
}

uint32_t geo_builder_count(const geo_builder_t *b) { return b->n; }

/* Rehash an open-addressing table of (hash << 32 | value) words into ncap slots. */
static uint64_t *rehash(uint64_t *t, uint32_t cap, uint32_t ncap)
{
    uint64_t *nt = xcalloc(ncap, sizeof(uint64_t));
    for (uint32_t i = 0; i < cap; i++) {
        if (!t[i])
            continue;
        uint32_t k = (uint32_t)(t[i] >> 32) & (ncap - 1);
        while (nt[k])
            k = (k + 1) & (ncap - 1);
        nt[k] = t[i];
    }
    free(t);
    return nt;
}

/* Room for `more` strings and locations without a rehash (load factor at most 1/2). */
static void builder_reserve(geo_builder_t *b, size_t more)
{
    uint32_t cap = b->shcap;
    while ((b->scount + more) * 2 > cap)
        cap *= 2;
    if (cap != b->shcap) {
        b->shash = rehash(b->shash, b->shcap, cap);
        b->shcap = cap;
    }
    cap = b->lhcap;
    while ((b->n + more) * 2 > cap)
        cap *= 2;
    if (cap != b->lhcap) {
        b->lhash = rehash(b->lhash, b->lhcap, cap);
        b->lhcap = cap;
    }
}

/* The pool offset of s[0..len) (1 <= len <= 255) with hash h, added if new. */
static uint32_t intern_hashed(geo_builder_t *b, const char *s, size_t len, uint32_t h)
{
    uint32_t k = h & (b->shcap - 1);
    while (b->shash[k]) {
        if ((uint32_t)(b->shash[k] >> 32) == h) {
            const char *t = b->pool + (uint32_t)b->shash[k];
            if (memcmp(t, s, len) == 0 && t[len] == '\0')
                return (uint32_t)b->shash[k];
        }
        k = (k + 1) & (b->shcap - 1);
    }
    while (b->plen + len + 1 > b->pcap) {
        b->pcap *= 2;
        b->pool = xrealloc(b->pool, b->pcap);
    }
    uint32_t off = (uint32_t)b->plen;
    memcpy(b->pool + off, s, len);
    b->pool[off + len] = '\0';
    b->plen += len + 1;
    b->shash[k] = (uint64_t)h << 32 | off;
    b->scount++;
    return off;
}

/* The id of location r (hash h), added if new. */
static uint32_t loc_hashed(geo_builder_t *b, const loc_rec_t *r, uint32_t h);

/* Location codes are ASCII: these tests do not depend on the locale. */
static inline bool ascii_alpha(char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

static inline char ascii_upper(char c)
{
    return (unsigned char)(c - 'a') < 26 ? (char)(c - 32) : c;
}

/* dst = src upper-cased when it is exactly `want` ASCII letters; else dst is left alone. */
static void copy_code(char *dst, const char *src, size_t want)
{
    if (!src)
        return;
    for (size_t i = 0; i < want; i++) {
        if (!ascii_alpha(src[i])) /* also stops at a short string's NUL */
            return;
    }
    if (src[want] != '\0')
        return;
    for (size_t i = 0; i < want; i++)
        dst[i] = ascii_upper(src[i]);
    dst[want] = '\0';
}

static void copy_subdivision(char *dst, const char *country, const char *sub)
{
    if (!sub || !*sub)
        return;
    char tmp[8];
    size_t n = strnlen(sub, 8);
    if (n > 7) /* too long with a country prefix or without */
        return;
    if (memchr(sub, '-', n)) {
        memcpy(tmp, sub, n + 1);
    } else {
        if (!country[0] || n > 3)
            return;
        memcpy(tmp, country, 2);
        tmp[2] = '-';
        memcpy(tmp + 3, sub, n + 1);
    }
    size_t len = 0;
    for (char *p = tmp; *p; p++, len++) {
        if (!ascii_alpha(*p) && (unsigned char)(*p - '0') >= 10 && *p != '-')
            return;
        *p = ascii_upper(*p);
    }
    memcpy(dst, tmp, len + 1);
}

/* Bytewise equality of two records (no padding: see loc_rec_t), as 5 words. */
static inline bool loc_rec_eq(const loc_rec_t *x, const loc_rec_t *y)
{
    uint64_t a[5], c[5];
    memcpy(a, x, sizeof(a));
    memcpy(c, y, sizeof(c));
    return ((a[0] ^ c[0]) | (a[1] ^ c[1]) | (a[2] ^ c[2]) | (a[3] ^ c[3]) | (a[4] ^ c[4])) == 0;
}
_Static_assert(sizeof(loc_rec_t) == 5 * sizeof(uint64_t), "loc_rec_eq compares 5 words");

static uint32_t loc_hashed(geo_builder_t *b, const loc_rec_t *r, uint32_t h)
{
    uint32_t k = h & (b->lhcap - 1);
    while (b->lhash[k]) {
        uint32_t id = (uint32_t)b->lhash[k];
        if ((uint32_t)(b->lhash[k] >> 32) == h && loc_rec_eq(&b->locs[id], r))
            return id;
        k = (k + 1) & (b->lhcap - 1);
    }
    if (b->n == b->cap) {
        b->cap *= 2;
        b->locs = xrealloc(b->locs, (size_t)b->cap * sizeof(*b->locs));
    }
    memcpy(&b->locs[b->n], r, sizeof(*r));
    b->lhash[k] = (uint64_t)h << 32 | b->n;
    return b->n++;
}

void geo_builder_prep(const geo_builder_t *b, const geo_loc_in_t *in, geo_loc_prep_t *p)
{
    loc_rec_t *r = &p->r;
    memset(r, 0, sizeof(*r));
    copy_code(r->continent, in->continent, 2);
    copy_code(r->country, in->country, 2);
    if (!r->continent[0] && r->country[0])
        geo_country_info(r->country, NULL, NULL, r->continent);
    if (b->keep & GEO_KEEP_SUBDIVISION)
        copy_subdivision(r->subdivision, r->country, in->subdivision);
    p->city = NULL;
    p->city_len = 0;
    if (in->city && (b->keep & GEO_KEEP_CITY)) {
        /* a C string in the table: cut at a NUL inside the given length */
        size_t len = in->city_len ? strnlen(in->city, in->city_len) : strlen(in->city);
        p->city = in->city;
        p->city_len = (uint32_t)(len > 255 ? 255 : len);
    }
    if (in->has_coords && (b->keep & GEO_KEEP_COORDS) && isfinite(in->lat) &&
        isfinite(in->lon) && fabs(in->lat) <= 90.0 && fabs(in->lon) <= 180.0) {
        r->flags |= GEO_HAS_COORDS;
        r->lat = in->lat;
        r->lon = in->lon;
    }
    r->source = b->source;
}

/*
 * The tables are several MB and probed at random, so each probe is a cache miss. Done
 * one location at a time the misses come one after another (three per location: the
 * string slot, the location slot, the location compared); here each stage first starts
 * the loads for the whole batch (prefetch) and the next stage uses them.
 */
void geo_builder_locs(geo_builder_t *b, geo_loc_prep_t *p, size_t n, uint32_t *ids)
{
    builder_reserve(b, n);
    for (size_t i = 0; i < n; i++) { /* city names: hash, load their slots */
        if (p[i].city_len) {
            p[i].h = (uint32_t)hash_bytes(p[i].city, p[i].city_len);
            __builtin_prefetch(&b->shash[p[i].h & (b->shcap - 1)]);
        }
    }
    for (size_t i = 0; i < n; i++) { /* the first slot with the same hash: load its string */
        p[i].cand = 0;
        if (!p[i].city_len)
            continue;
        for (uint32_t k = p[i].h & (b->shcap - 1); b->shash[k]; k = (k + 1) & (b->shcap - 1)) {
            if ((uint32_t)(b->shash[k] >> 32) == p[i].h) {
                p[i].cand = (uint32_t)b->shash[k];
                __builtin_prefetch(b->pool + p[i].cand);
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) { /* intern the names; hash the records, load their slots */
        if (p[i].city_len) {
            const char *t = b->pool + p[i].cand;
            if (p[i].cand && memcmp(t, p[i].city, p[i].city_len) == 0 && t[p[i].city_len] == '\0')
                p[i].r.city = p[i].cand;
            else
                p[i].r.city = intern_hashed(b, p[i].city, p[i].city_len, p[i].h);
        }
        p[i].h = (uint32_t)hash_bytes(&p[i].r, sizeof(p[i].r));
        __builtin_prefetch(&b->lhash[p[i].h & (b->lhcap - 1)]);
    }
    for (size_t i = 0; i < n; i++) { /* the first location with the same hash: load it */
        p[i].cand = 0;
        for (uint32_t k = p[i].h & (b->lhcap - 1); b->lhash[k]; k = (k + 1) & (b->lhcap - 1)) {
            if ((uint32_t)(b->lhash[k] >> 32) == p[i].h) {
                p[i].cand = (uint32_t)b->lhash[k];
                __builtin_prefetch(&b->locs[p[i].cand]);
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i].cand && loc_rec_eq(&b->locs[p[i].cand], &p[i].r))
            ids[i] = p[i].cand;
        else /* new, a collision, or added by an earlier entry of this batch */
            ids[i] = loc_hashed(b, &p[i].r, p[i].h);
    }
}

uint32_t geo_builder_loc(geo_builder_t *b, const geo_loc_in_t *in)
{
    geo_loc_prep_t p;
    uint32_t id;
    geo_builder_prep(b, in, &p);
    geo_builder_locs(b, &p, 1, &id);
    return id;
}

/* ---- subdivision midpoints ------------------------------------------------------------ */

/* One subdivision while its midpoint is summed: its code as a big-endian number (so
 * that the numbers sort as the codes do with strcmp), a location that has it, and the
 * sum of its locations' unit vectors. */
typedef struct {
    uint64_t code;
    uint32_t id, n;
    double x, y, z;
} sub_acc_t;

static int cmp_sub_acc(const void *a, const void *b)
{
    const sub_acc_t *x = a, *y = b;
    return x->code < y->code ? -1 : x->code > y->code;
}

/* Sort v[0..n) by the top 32 bits of each word, keeping the order of equal ones: an LSD
 * radix sort, a byte per pass (qsort took 20 ms for GeoLite2 City's 158k locations). */
static void sort_by_high_word(uint64_t *v, size_t n)
{
    uint64_t *tmp = xmalloc(n * sizeof(uint64_t)), *src = v, *dst = tmp;
    for (unsigned shift = 32; shift < 64; shift += 8) {
        size_t pos[256] = {0};
        for (size_t i = 0; i < n; i++)
            pos[(src[i] >> shift) & 0xff]++;
        if (pos[(src[0] >> shift) & 0xff] == n)
            continue; /* every word has this byte: nothing moves */
        size_t sum = 0;
        for (unsigned d = 0; d < 256; d++) {
            size_t c = pos[d];
            pos[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[pos[(src[i] >> shift) & 0xff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof(uint64_t));
    free(tmp);
}

/* Midpoint of a subdivision: the normalized mean of the unit vectors of its distinct
 * locations with coordinates (each deduplicated location counts once), which behaves at
 * the antimeridian where a plain mean of longitudes does not. */
static void build_subdivisions(geo_db_t *db, const geo_builder_t *b)
{
    _Static_assert(sizeof(b->locs[0].subdivision) == sizeof(uint64_t), "code fits a word");
    /* group by code through a hash table (index + 1 into acc), visiting the locations in
     * id order: each midpoint sums its vectors in that order, as a sort by (code, id)
     * would, and only the few thousand distinct codes get sorted */
    size_t cap = 64;
    while (cap < 2 * (size_t)b->n)
        cap *= 2;
    uint32_t *slot = xcalloc(cap, sizeof(uint32_t));
    sub_acc_t *acc = NULL;
    size_t n = 0, acap = 0;
    for (uint32_t id = 1; id < b->n; id++) {
        const loc_rec_t *r = &b->locs[id];
        if (!r->subdivision[0] || !(r->flags & GEO_HAS_COORDS))
            continue;
        uint64_t code = 0;
        for (size_t k = 0; k < sizeof(r->subdivision); k++)
            code = code << 8 | (uint8_t)r->subdivision[k];
        size_t h = (size_t)(mix64(code) & (cap - 1));
        while (slot[h] && acc[slot[h] - 1].code != code)
            h = (h + 1) & (cap - 1);
        if (!slot[h]) {
            if (n == acap) {
                acap = acap ? 2 * acap : 1024;
                acc = xrealloc(acc, acap * sizeof(sub_acc_t));
            }
            acc[n] = (sub_acc_t){.code = code, .id = id};
            slot[h] = (uint32_t)++n;
        }
        sub_acc_t *a = &acc[slot[h] - 1];
        double la = r->lat * M_PI / 180.0, lo = r->lon * M_PI / 180.0;
        a->x += cos(la) * cos(lo);
        a->y += cos(la) * sin(lo);
        a->z += sin(la);
        a->n++;
    }
    free(slot);
    if (n)
        qsort(acc, n, sizeof(sub_acc_t), cmp_sub_acc);
    db->subs = xcalloc(n + 1, sizeof(geo_subdiv_t));
    db->nsubs = n;
    for (size_t i = 0; i < n; i++) {
        const sub_acc_t *a = &acc[i];
        geo_subdiv_t *sd = &db->subs[i];
        memcpy(sd->code, b->locs[a->id].subdivision, sizeof(sd->code));
        sd->nlocs = a->n;
        double hyp = sqrt(a->x * a->x + a->y * a->y);
        sd->lat = (hyp == 0 && a->z == 0) ? 0 : atan2(a->z, hyp) * 180.0 / M_PI;
        sd->lon = (a->x == 0 && a->y == 0) ? 0 : atan2(a->y, a->x) * 180.0 / M_PI;
    }
    free(acc);
}

static int cmp_subdiv(const void *key, const void *elem)
{
    return strcasecmp(key, ((const geo_subdiv_t *)elem)->code);
}

const geo_subdiv_t *geo_db_subdiv(const geo_db_t *db, const char *code)
{
    if (!db || !db->nsubs)
        return NULL;
    return bsearch(code, db->subs, db->nsubs, sizeof(geo_subdiv_t), cmp_subdiv);
}

/* ---- load ----------------------------------------------------------------------------- */

/* Renumber the locations 1 .. n-1 by how many ranges use them, most used first, so that
 * the locations most lookups end on share a few cache lines (GeoLite2 City: the first
 * 4,096 of 158,127 locations, 160 KiB, hold half of the ranges), and so that most fit in
 * an index entry (map.c). Returns newid[old] (caller frees); the lists are renumbered. */
static uint32_t *number_by_use(geo_rl4_t *r4, geo_rl6_t *r6, uint32_t n)
{
    uint32_t *count = xcalloc(n, sizeof(uint32_t));
    uint64_t *order = xmalloc((size_t)n * sizeof(uint64_t)); /* ~count << 32 | id */
    uint32_t *newid = xmalloc((size_t)n * sizeof(uint32_t));
    geo_rl_count(r4, r6, count, n);
    for (uint32_t id = 0; id < n; id++)
        order[id] = (uint64_t)(UINT32_MAX - count[id]) << 32 | id;
    if (n > 1) /* most used first, then by id; id 0 (unknown) stays first */
        sort_by_high_word(order + 1, n - 1);
    for (uint32_t k = 0; k < n; k++)
        newid[(uint32_t)order[k]] = k;
    geo_rl_renumber(r4, r6, newid, n);
    free(order);
    free(count);
    return newid;
}

static int read_source(geo_builder_t *b, const geo_source_t *src, geo_rl4_t *v4, geo_rl6_t *v6,
                       char *err, size_t errlen)
{
    switch (src->kind) {
    case GEO_SRC_MMDB:
        if (!src->path)
            return geo_errf(err, errlen, ERR_INVAL, "geoip source: no mmdb path");
        return geo_mmdb_read(b, src, v4, v6, err, errlen);
    case GEO_SRC_CSV:
        if (!src->blocks || !src->blocks[0] || !src->locations)
            return geo_errf(err, errlen, ERR_INVAL, "geoip source: csv needs blocks and locations");
        return geo_csv_read(b, src, v4, v6, err, errlen);
    }
    return geo_errf(err, errlen, ERR_INVAL, "geoip source: unknown kind %d", (int)src->kind);
}

/*
 * The end of a load: compile the range lists (taken), number the locations by use, copy
 * them out of the builder (taken, cleared) and either compute the subdivision midpoints
 * from the builder's locations or copy them from `subs_from`.
 */
static int db_finish(geo_db_t **out, geo_builder_t *b, geo_rl4_t *acc4, geo_rl6_t *acc6,
                     const geo_db_t *subs_from, bool index, char *err, size_t errlen)
{
    uint32_t *newid = number_by_use(acc4, acc6, b->n);
    geo_db_t *db = xcalloc(1, sizeof(*db));
    geo_map_init_ranges(&db->map, acc4, acc6);
    if (index && geo_map_index(&db->map) < 0) {
        free(newid);
        free(db);
        builder_clear(b);
        return geo_errf(err, errlen, ERR_LIMIT,
                        "geoip: the networks nest too deeply for the lookup index");
    }
    if (subs_from) {
        db->nsubs = subs_from->nsubs;
        db->subs = xmalloc((subs_from->nsubs + 1) * sizeof(geo_subdiv_t));
        memcpy(db->subs, subs_from->subs, subs_from->nsubs * sizeof(geo_subdiv_t));
    } else {
        build_subdivisions(db, b);
    }
    db->pool = xrealloc(b->pool, b->plen);
    db->pool_len = b->plen;
    b->pool = NULL;
    db->nlocs = b->n;
    db->locs = geo_table_alloc((size_t)b->n * sizeof(geo_location_t));
    memset(db->locs, 0, (size_t)b->n * sizeof(geo_location_t));
    for (uint32_t id = 0; id < b->n; id++) {
        const loc_rec_t *r = &b->locs[id];
        geo_location_t *l = &db->locs[newid[id]];
        memcpy(l->continent, r->continent, 3);
        memcpy(l->country, r->country, 3);
        memcpy(l->subdivision, r->subdivision, 8);
        l->flags = r->flags;
        l->source = r->source;
        l->city = db->pool + r->city;
        l->lat = r->lat;
        l->lon = r->lon;
    }
    free(newid);
    builder_clear(b);
    *out = db;
    return 0;
}

int geo_db_index(geo_db_t *db, char *err, size_t errlen)
{
    if (db->map.x4.root)
        return 0;
    if (geo_map_index(&db->map) < 0)
        return geo_errf(err, errlen, ERR_LIMIT,
                        "geoip: the networks nest too deeply for the lookup index");
    return 0;
}

int geo_db_load(geo_db_t **out, const geo_source_t *srcs, size_t n, char *err, size_t errlen)
{
    return geo_db_load_opts(out, srcs, n, 0, err, errlen);
}

int geo_db_load_opts(geo_db_t **out, const geo_source_t *srcs, size_t n, unsigned flags,
                     char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !srcs || n == 0 || n > 250)
        return geo_errf(err, errlen, ERR_INVAL, "geoip: need 1 to 250 sources");

    geo_builder_t b;
    builder_init(&b);
    if (flags & GEO_LOAD_STRIP)
        b.keep = (flags >> GEO_LOAD_KEEP_SHIFT) & GEO_KEEP_ALL;
    geo_rl4_t acc4 = {0};
    geo_rl6_t acc6 = {0};
    int rc = 0;
    for (size_t k = 0; k < n; k++) {
        geo_rl4_t s4 = {0};
        geo_rl6_t s6 = {0};
        b.source = (uint8_t)k;
        rc = read_source(&b, &srcs[k], &s4, &s6, err, errlen);
        if (rc < 0) {
            geo_rl4_clear(&s4);
            geo_rl6_clear(&s6);
            break;
        }
        if (s4.n == 0)
            geo_rl4_push(&s4, 0, 0);
        if (s6.n == 0)
            geo_rl6_emit(&s6, 0, GEO_U128_MAX, 0);
        if (k == 0) {
            acc4 = s4;
            acc6 = s6;
        } else {
            geo_rl4_t o4 = {0};
            geo_rl6_t o6 = {0};
            geo_rl4_overlay(&o4, &acc4, &s4);
            geo_rl6_overlay(&o6, &acc6, &s6);
            geo_rl4_clear(&acc4);
            geo_rl6_clear(&acc6);
            geo_rl4_clear(&s4);
            geo_rl6_clear(&s6);
            acc4 = o4;
            acc6 = o6;
        }
    }
    if (rc == 0 && (acc4.n >= GEO_MAP_MAX_RANGES || acc6.n >= GEO_MAP_MAX_RANGES))
        rc = geo_errf(err, errlen, ERR_LIMIT,
                      "geoip: %u IPv4 and %u IPv6 ranges, more than the table holds (%u each)",
                      acc4.n, acc6.n, GEO_MAP_MAX_RANGES - 1);
    if (rc < 0) {
        geo_rl4_clear(&acc4);
        geo_rl6_clear(&acc6);
        builder_clear(&b);
        return rc;
    }

    return db_finish(out, &b, &acc4, &acc6, NULL, !(flags & GEO_LOAD_NO_INDEX), err, errlen);
}

int geo_db_load_mmdb(geo_db_t **out, const char *path, char *err, size_t errlen)
{
    geo_source_t src = {.kind = GEO_SRC_MMDB, .path = path};
    return geo_db_load(out, &src, 1, err, errlen);
}

int geo_db_reduce(geo_db_t **out, const geo_db_t *db, unsigned keep, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    geo_builder_t b;
    builder_init(&b);
    uint32_t *newid = xmalloc((size_t)db->nlocs * sizeof(uint32_t));
    newid[0] = GEO_LOC_UNKNOWN;
    enum { BATCH = 4096 };
    geo_loc_prep_t *prep = xmalloc(BATCH * sizeof(*prep));
    for (uint32_t id0 = 1; id0 < db->nlocs; id0 += BATCH) {
        uint32_t n = db->nlocs - id0 < BATCH ? db->nlocs - id0 : BATCH;
        for (uint32_t i = 0; i < n; i++) {
            const geo_location_t *l = &db->locs[id0 + i];
            geo_loc_in_t in = {.continent = l->continent, .country = l->country};
            if (keep & GEO_KEEP_SUBDIVISION)
                in.subdivision = l->subdivision;
            if ((keep & GEO_KEEP_CITY) && l->city[0])
                in.city = l->city;
            if ((keep & GEO_KEEP_COORDS) && (l->flags & GEO_HAS_COORDS)) {
                in.has_coords = true;
                in.lat = l->lat;
                in.lon = l->lon;
            }
            geo_builder_prep(&b, &in, &prep[i]);
            prep[i].r.source = l->source;
        }
        geo_builder_locs(&b, prep, n, &newid[id0]);
    }
    free(prep);
    const geo_map_t *m = &db->map;
    geo_rl4_t r4 = {0};
    geo_rl6_t r6 = {0};
    for (uint32_t i = 0; i < m->n4; i++) {
        uint32_t v = (uint32_t)m->e4[i];
        geo_rl4_push(&r4, (uint32_t)(m->e4[i] >> 32), v < db->nlocs ? newid[v] : v);
    }
    for (uint32_t i = 0; i < m->n6; i++) {
        uint32_t v = m->e6[i].val;
        geo_rl6_push(&r6, GEO_U128(m->e6[i].hi, m->lo6[m->e6[i].lox]),
                     v < db->nlocs ? newid[v] : v);
    }
    free(newid);
    return db_finish(out, &b, &r4, &r6, db, true, err, errlen);
}

void geo_db_free(geo_db_t *db)
{
    if (!db)
        return;
    geo_map_clear(&db->map);
    geo_table_free(db->locs, (size_t)db->nlocs * sizeof(geo_location_t));
    free(db->pool);
    free(db->subs);
    free(db);
}

uint32_t geo_location_count(const geo_db_t *db) { return db->nlocs; }

const geo_location_t *geo_location(const geo_db_t *db, uint32_t id)
{
    return id < db->nlocs ? &db->locs[id] : NULL;
}

size_t geo_db_ranges(const geo_db_t *db) { return (size_t)db->map.n4 + db->map.n6; }

size_t geo_db_bytes(const geo_db_t *db)
{
    return sizeof(*db) + geo_map_bytes(&db->map) + (size_t)db->nlocs * sizeof(geo_location_t) +
           db->pool_len + db->nsubs * sizeof(geo_subdiv_t);
}

/* ---- lookups -------------------------------------------------------------------------- */

bool geo_v6_to_v4(const uint8_t a[16], uint32_t *v4, unsigned *offset)
{
    static const uint8_t zero[12];
    if (memcmp(a, zero, 10) == 0 && ((a[10] == 0xff && a[11] == 0xff) || (a[10] == 0 && a[11] == 0))) {
        *v4 = rd_u32(a + 12); /* ::ffff:a.b.c.d and ::a.b.c.d */
        *offset = 96;
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4 */
        *v4 = rd_u32(a + 2);
        *offset = 16;
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) { /* Teredo: client = ~low 32 */
        *v4 = ~rd_u32(a + 12);
        *offset = 96;
        return true;
    }
    return false;
}

uint32_t geo_lookup_v4(const geo_db_t *db, uint32_t addr, unsigned *prefix)
{
    return geo_map_lookup4(&db->map, addr, prefix);
}

static inline uint64_t rd_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return __builtin_bswap64(v); /* x86 and arm64 Linux: little-endian hosts */
}
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "rd_be64 assumes little-endian");

uint32_t geo_lookup_v6(const geo_db_t *db, const uint8_t addr[16], unsigned *prefix)
{
    uint64_t hi = rd_be64(addr), lo = rd_be64(addr + 8);
    /* the alias regions of geo_v6_to_v4(), tested on the words */
    uint32_t v4 = 0;
    unsigned off = 0;
    if (hi == 0 && (lo >> 32 == 0xffff || lo >> 32 == 0)) {
        v4 = (uint32_t)lo;
        off = 96;
    } else if (hi >> 48 == 0x2002) {
        v4 = (uint32_t)(hi >> 16);
        off = 16;
    } else if (hi >> 32 == 0x20010000) {
        v4 = ~(uint32_t)lo;
        off = 96;
    }
    if (off) {
        uint32_t loc = geo_map_lookup4(&db->map, v4, prefix);
        if (prefix)
            *prefix += off;
        return loc;
    }
    return geo_map_lookup6(&db->map, hi, lo, prefix);
}

uint32_t geo_lookup(const geo_db_t *db, int family, const void *addr, unsigned *prefix)
{
    if (family == AF_INET)
        return geo_lookup_v4(db, rd_u32(addr), prefix);
    if (family == AF_INET6)
        return geo_lookup_v6(db, addr, prefix);
    if (prefix)
        *prefix = 0;
    return GEO_LOC_UNKNOWN;
}

int geo_walk(const geo_db_t *db, geo_walk_cb cb, void *ctx)
{
    return geo_map_walk(&db->map, cb, ctx);
}

/* ---- CIDR parsing (CSV) --------------------------------------------------------------- */

int geo_parse_cidr(const char *s, size_t len, bool *is_v4, geo_u128 *first, unsigned *plen)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return ERR_PARSE;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    if (!slash || !slash[1])
        return ERR_PARSE;
    *slash = '\0';
    unsigned long p = 0;
    for (const char *q = slash + 1; *q; q++) {
        if (!isdigit((unsigned char)*q) || p > 1000)
            return ERR_PARSE;
        p = p * 10 + (unsigned long)(*q - '0');
    }
    uint8_t a[16];
    if (inet_pton(AF_INET, buf, a) == 1) {
        if (p > 32)
            return ERR_PARSE;
        uint32_t v = rd_u32(a);
        if (p < 32)
            v &= p ? ~(uint32_t)0 << (32 - p) : 0;
        *is_v4 = true;
        *first = v;
        *plen = (unsigned)p;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, a) == 1) {
        if (p > 128)
            return ERR_PARSE;
        geo_u128 v = 0;
        for (int i = 0; i < 16; i++)
            v = v << 8 | a[i];
        if (p < 128)
            v &= p ? GEO_U128_MAX << (128 - p) : 0;
        *is_v4 = false;
        *first = v;
        *plen = (unsigned)p;
        return 0;
    }
    return ERR_PARSE;
}
