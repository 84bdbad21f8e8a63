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
/* out = hi where hi's value is non-zero, else lo. out must be empty. */
void geo_rl4_overlay(geo_rl4_t *out, const geo_rl4_t *hi, const geo_rl4_t *lo);
void geo_rl6_overlay(geo_rl6_t *out, const geo_rl6_t *hi, const geo_rl6_t *lo);
/* Is the IPv6 range [s, e] entirely inside one IPv4 alias region? */
bool geo_v6_in_alias(geo_u128 s, geo_u128 e);

/* The compiled lookup table: IPv4 ranges as (start << 32 | value) words, IPv6 ranges as
 * a range list, each with a bucket index on the top GEO_IDX_BITS bits of the address. */
#define GEO_IDX_BITS 20
typedef struct {
    uint64_t *e4;   /* start << 32 | value, ascending */
    uint32_t n4;
    geo_rl6_t r6;
    uint32_t *idx4; /* 2^GEO_IDX_BITS + 1 entries: idx4[b] = last i with start <= b << 12 */
    uint32_t *idx6; /* same on the top bits of the IPv6 address */
} geo_map_t;

/* Take ownership of the lists (left empty), shrink them and build the index. */
void geo_map_init(geo_map_t *m, geo_rl4_t *r4, geo_rl6_t *r6);
void geo_map_clear(geo_map_t *m);
uint32_t geo_map_lookup4(const geo_map_t *m, uint32_t a, unsigned *prefix);
uint32_t geo_map_lookup6(const geo_map_t *m, geo_u128 a, unsigned *prefix);
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

/* Intern a location for the current source; returns its id (>= 1). Aborts on OOM. */
uint32_t geo_builder_loc(geo_builder_t *b, const geo_loc_in_t *in);

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
