#pragma once
/* Private to src/geo: range lists used while compiling, the compiled map, the builder. */

#include <stdarg.h>

#include "geo/geo.h"

__extension__ typedef unsigned __int128 geo_u128;

#define GEO_U128(hi, lo) (((geo_u128)(hi) << 64) | (geo_u128)(lo))
#define GEO_U128_MAX (~(geo_u128)0)

/*
 * A range list: ranges in ascending order that cover the whole space; range i is
 * [key[i], key[i+1]-1] (the last one ends at the top of the space) with value val[i].
 * key[0] is 0 and adjacent values differ (pushes merge). Value 0 = not covered.
 */
typedef struct {
    uint32_t n, cap;
    uint32_t *key;
    uint32_t *val;
} geo_rl4_t;

typedef struct {
    uint32_t n, cap;
    geo_u128 *key;
    uint32_t *val;
} geo_rl6_t;

/* Append a range starting at `start` (> the last start, or 0 for the first). Aborts on OOM. */
void geo_rl4_push(geo_rl4_t *l, uint32_t start, uint32_t val);
void geo_rl6_push(geo_rl6_t *l, geo_u128 start, uint32_t val);
/* Append [s, e] with val to an IPv6 list, with the IPv4 alias regions inside it set to
 * GEO_LOC_V4ALIAS instead. */
void geo_rl6_emit(geo_rl6_t *l, geo_u128 s, geo_u128 e, uint32_t val);
void geo_rl4_clear(geo_rl4_t *l);
void geo_rl6_clear(geo_rl6_t *l);
/* count[v] += number of ranges with value v, for v < nlocs (GEO_LOC_V4ALIAS is skipped). */
void geo_rl_count(const geo_rl4_t *r4, const geo_rl6_t *r6, uint32_t *count, uint32_t nlocs);
/* Replace every value v < nlocs by newid[v] (a permutation: no neighbours become equal). */
void geo_rl_renumber(geo_rl4_t *r4, geo_rl6_t *r6, const uint32_t *newid, uint32_t nlocs);
/* out = hi where hi's value is non-zero, else lo. out must be empty. */
void geo_rl4_overlay(geo_rl4_t *out, const geo_rl4_t *hi, const geo_rl4_t *lo);
void geo_rl6_overlay(geo_rl6_t *out, const geo_rl6_t *hi, const geo_rl6_t *lo);
/* Is the IPv6 range [s, e] entirely inside one IPv4 alias region? */
bool geo_v6_in_alias(geo_u128 s, geo_u128 e);

/*
 * The compiled lookup table (map.c). Per family, a sorted array of range starts searched
 * through a radix index on the top bits of the address; both families search 64-bit keys
 * (IPv4: start << 32 | location id; IPv6: the top 64 bits of the start).
 *
 * Index entry (uint32), by its low 5 bits: c <= GEO_LEAF_MAX: entry >> 5 is the first of
 * the c + 1 ranges one of which holds any address of the entry's block; GEO_LEAF_MAX + s:
 * entry >> 5 is the offset in pool[] of a child node of 2^s entries, one per value of
 * the next s bits of the address; 31: the block lies inside one range, entry >> 13 is its
 * value and (entry >> 5) & 0xff the prefix length of every address in the block.
 */
#define GEO_MAP_MAX_RANGES (1u << 26) /* per family; 27 bits of index entry, with margin */
#define GEO_LEAF_MAX 15u
#define GEO_NODE_MAX_BITS 15u
#define GEO_DIRECT_BITS 19u /* value bits of a direct entry */
#define GEO_ROOT4_BITS 16u
#define GEO_ROOT6_BITS 16u

typedef struct {
    uint32_t *root; /* 2^bits entries */
    uint32_t *pool; /* child nodes, npool entries, 64-byte aligned */
    size_t npool;
    unsigned bits;
} geo_radix_t;

/* An IPv6 range: the top 64 bits of its start, the low 64 bits as lo6[lox] (lo6[0] = 0:
 * 99 % of GeoLite2 City's starts; the others each have their own lo6 slot), and the
 * location id. */
typedef struct {
    uint64_t hi;
    uint32_t lox;
    uint32_t val;
} geo_e6_t;

typedef struct {
    uint64_t *e4; /* start << 32 | value, ascending; e4[0] starts at 0 */
    geo_e6_t *e6; /* ascending by (hi, lo); e6[0] starts at :: */
    uint64_t *lo6; /* nlo6 entries, lo6[0] = 0 */
    uint32_t n4, n6, nlo6;
    geo_radix_t x4, x6;
} geo_map_t;

/* Memory for a large read-mostly table: 64-byte aligned; from 2 MiB up, 2 MiB-aligned and
 * advised as transparent huge pages. Aborts on OOM. geo_table_free(p, same n); NULL ok. */
void *geo_table_alloc(size_t n);
void geo_table_free(void *p, size_t n);

/* Take ownership of the lists (left empty) and build the table. Each list must hold fewer
 * than GEO_MAP_MAX_RANGES ranges (geo_db_load() checks). 0, or ERR_LIMIT (m cleared) when
 * pathological nesting needs more index nodes than entries can address. Aborts on OOM. */
ATTR_WARN_UNUSED int geo_map_init(geo_map_t *m, geo_rl4_t *r4, geo_rl6_t *r6);
/* geo_map_init() in two steps: the range arrays (no lookups yet), then the lookup index
 * (0, or ERR_LIMIT with m cleared). */
void geo_map_init_ranges(geo_map_t *m, geo_rl4_t *r4, geo_rl6_t *r6);
ATTR_WARN_UNUSED int geo_map_index(geo_map_t *m);
void geo_map_clear(geo_map_t *m);
uint32_t geo_map_lookup4(const geo_map_t *m, uint32_t a, unsigned *prefix);
uint32_t geo_map_lookup6(const geo_map_t *m, uint64_t ahi, uint64_t alo, unsigned *prefix);
int geo_map_walk(const geo_map_t *m, geo_walk_cb cb, void *ctx);
size_t geo_map_bytes(const geo_map_t *m);

/* ---- the db builder shared by the source readers ------------------------------------- */

typedef struct geo_builder geo_builder_t;

/* Raw location fields as read from a source; NULL or "" = missing. */
typedef struct {
    const char *continent, *country, *subdivision, *city;
    size_t city_len; /* city need not be NUL-terminated when city_len > 0 */
    double lat, lon;
    bool has_coords;
} geo_loc_in_t;

/* A stand-alone builder (geo_db_load() keeps its own), for tests: its locations are
 * tagged with `source`. */
geo_builder_t *geo_builder_new(uint8_t source);
void geo_builder_free(geo_builder_t *b);
/* The GEO_KEEP_* fields the builder keeps of each location (GEO_KEEP_ALL unless the load
 * strips them: GEO_LOAD_KEEP); a reader may skip decoding the others. */
unsigned geo_builder_keep(const geo_builder_t *b);
/* Number of ids handed out so far, counting id 0 (unknown). */
uint32_t geo_builder_count(const geo_builder_t *b);

/* Intern a location for the current source; returns its id (>= 1). Aborts on OOM. */
uint32_t geo_builder_loc(geo_builder_t *b, const geo_loc_in_t *in);

/* The dedup key of a location: every byte is significant (zeroed padding). */
typedef struct {
    char continent[3], country[3], subdivision[8];
    uint8_t flags, source;
    uint32_t city; /* offset in the builder's string pool; 0 = "" */
    uint32_t pad_; /* keeps the struct free of padding: it is hashed and compared bytewise */
    double lat, lon;
} geo_loc_rec_t;

/* A location made ready for geo_builder_locs(); its city is not interned yet. */
typedef struct {
    geo_loc_rec_t r;
    const char *city; /* must stay valid until geo_builder_locs() */
    uint32_t city_len;
    uint32_t h, cand; /* scratch */
} geo_loc_prep_t;

/*
 * Batched interning, for loaders with many locations: geo_builder_prep() normalizes the
 * fields without touching the builder's tables; geo_builder_locs() then interns n of them
 * (ids[i] as geo_builder_loc() would return), overlapping the tables' cache misses.
 */
void geo_builder_prep(const geo_builder_t *b, const geo_loc_in_t *in, geo_loc_prep_t *p);
void geo_builder_locs(geo_builder_t *b, geo_loc_prep_t *p, size_t n, uint32_t *ids);

/* Format "msg" into err (if errlen), returning code. */
ATTR_PRINTF(4, 5) int geo_errf(char *err, size_t errlen, int code, const char *fmt, ...);

/* Source readers: fill v4/v6 (empty on entry) with location ids for one source. */
int geo_mmdb_read(geo_builder_t *b, const geo_source_t *src, geo_rl4_t *v4, geo_rl6_t *v6,
                  char *err, size_t errlen);
int geo_csv_read(geo_builder_t *b, const geo_source_t *src, geo_rl4_t *v4, geo_rl6_t *v6,
                 char *err, size_t errlen);

/* Parse "a.b.c.d/n" (*is_v4, *first = the 32-bit address, *plen <= 32) or "x:y::/n"
 * (*first = the 128-bit address). Host bits set are accepted and cleared. 0 or ERR_PARSE. */
int geo_parse_cidr(const char *s, size_t len, bool *is_v4, geo_u128 *first, unsigned *plen);

/* Subdivisions found in the data (for places). */
typedef struct {
    char code[8];
    double lat, lon;
    uint32_t nlocs;
} geo_subdiv_t;
const geo_subdiv_t *geo_db_subdiv(const geo_db_t *db, const char *code);
