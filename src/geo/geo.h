#pragma once
/*
 * geo: GeoIP data compiled at load time into an immutable longest-prefix-match table.
 *
 * Sources (MaxMind DB files read with libmaxminddb, or GeoLite2 CSV files) are walked once
 * at load and compiled into a geo_db_t: a deduplicated location table (continent, country,
 * subdivision, city, coordinates) and a range table that maps every IPv4 and IPv6 address
 * to a location id. After geo_db_load() returns no libmaxminddb call is ever made again
 * and no file stays open.
 *
 * Address spaces. IPv4 lives in its own 32-bit space (conceptually ::ffff:0:0/96). IPv6
 * addresses that embed an IPv4 address are folded into that space before the lookup, the
 * way MaxMind's trees alias them:
 *   ::ffff:a.b.c.d/96 (mapped) and ::a.b.c.d/96 (compatible): v4 = last 32 bits, offset 96
 *   2002:AABB:CCDD::/16 (6to4):                        v4 = bits 16..47,       offset 16
 *   2001:0::/32 (Teredo):                              v4 = ~(last 32 bits),   offset 96
 * (MaxMind's tree maps Teredo to the *server* field; we use the client address, which is
 * where the user is.) The prefix length reported for such a query is offset + the IPv4
 * prefix length, a prefix of the query address that is never wider than the truth.
 *
 * Prefix lengths. Adjacent networks whose locations are equal are merged, so the prefix
 * length returned is that of the widest aligned block around the address in which the
 * location id is constant: never longer than the source network's, often shorter (wider).
 * This is exactly the block an ECS scope may cover.
 *
 * Threads: a loaded geo_db_t is immutable; any number of threads may call the lookup,
 * location, walk and place functions concurrently. Loading has no global state, so a
 * reload may build a new db on another thread while the old one serves.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

typedef struct geo_db geo_db_t;

/* Location id 0: no source covers the address. */
#define GEO_LOC_UNKNOWN 0u
/* Only in geo_walk() blocks of the IPv6 space: the block is an alias of the IPv4 space
 * (::/96, ::ffff:0:0/96, 2001::/32, 2002::/16); lookups there go to the IPv4 blocks. */
#define GEO_LOC_V4ALIAS 0xFFFFFFFFu

/* ---- sources ------------------------------------------------------------------------- */

/*
 * Where to find each field inside an MMDB record: NULL-terminated lookup paths as given to
 * MMDB_aget_value() (map keys, or decimal array indexes). A NULL path means "not present".
 * Strings are expected for codes and names; numbers (double, float, integer) or numeric
 * strings for coordinates. `country_fallback` is used when `country` is missing; a
 * missing continent is derived from the country with the built-in country table.
 */
typedef struct {
    const char *const *continent;        /* e.g. {"continent", "code", NULL} */
    const char *const *country;          /* ISO 3166-1 alpha-2 */
    const char *const *country_fallback; /* e.g. {"registered_country", "iso_code", NULL} */
    const char *const *subdivision;      /* ISO 3166-2 suffix ("CA") or full code ("US-CA") */
    const char *const *city;             /* e.g. {"city", "names", "en", NULL} */
    const char *const *latitude;
    const char *const *longitude;
} geo_fields_t;

/* MaxMind GeoIP2/GeoLite2 City and Country schema (the default). */
extern const geo_fields_t geo_fields_maxmind;
/* Flat schema of ip-location-db style files (top-level keys): continent_code,
 * country_code, subdivision_code, city, latitude, longitude. */
extern const geo_fields_t geo_fields_flat;

typedef enum {
    GEO_SRC_MMDB = 1, /* .path: a MaxMind DB file; .fields: NULL = geo_fields_maxmind */
    GEO_SRC_CSV = 2,  /* .blocks: Blocks-IPv4/IPv6 CSV files; .locations: Locations CSV */
} geo_src_kind_t;

/* One data source. All strings are borrowed for the duration of geo_db_load(). */
typedef struct {
    geo_src_kind_t kind;
    const char *path;             /* MMDB */
    const geo_fields_t *fields;   /* MMDB; NULL = MaxMind schema */
    const char *const *blocks;    /* CSV: NULL-terminated list of *-Blocks-IPv{4,6}.csv */
    const char *locations;        /* CSV: *-Locations-en.csv */
} geo_source_t;

/*
 * Load and compile `n` sources (1..250) into a new db. Precedence: srcs[0] first. Where a
 * higher-precedence source has a network that covers an address (a network present in
 * the file, even if its record lacks some fields), its location wins for that address;
 * lower-precedence sources only fill the addresses that no higher one covers.
 *
 * Returns 0 and sets *out (caller frees with geo_db_free()), or a negative ERR_* and
 * writes "file:row: reason" or "file: reason" into err (if errlen > 0); *out untouched.
 * Never aborts on bad input. Not a hot-path function: allocates freely.
 */
ATTR_WARN_UNUSED int geo_db_load(geo_db_t **out, const geo_source_t *srcs, size_t n,
                                 char *err, size_t errlen);

/*
 * geo_db_load() without the lookup index (GEO_LOAD_NO_INDEX), for a db that is only to be
 * reduced (geo_db_reduce() builds its own index): no lookup may be made on it before
 * geo_db_index(). Saves ~6 % of loading GeoLite2 City.
 */
#define GEO_LOAD_NO_INDEX 1u
/*
 * GEO_LOAD_KEEP(keep): strip every location to the GEO_KEEP_* fields in `keep` (besides
 * continent, country and source) while loading: the same db as geo_db_reduce(keep) of a
 * full load (same locations, same merged ranges, same lookups), without building the full
 * table first; the MMDB reader does not even decode the fields left out. Only the
 * subdivision midpoints differ: they come from the kept data, so there are none unless
 * both GEO_KEEP_SUBDIVISION and GEO_KEEP_COORDS are kept.
 */
#define GEO_LOAD_STRIP 2u
#define GEO_LOAD_KEEP_SHIFT 8
#define GEO_LOAD_KEEP(keep) (GEO_LOAD_STRIP | ((unsigned)(keep) << GEO_LOAD_KEEP_SHIFT))
ATTR_WARN_UNUSED int geo_db_load_opts(geo_db_t **out, const geo_source_t *srcs, size_t n,
                                      unsigned flags, char *err, size_t errlen);
/* Build the lookup index of a db loaded with GEO_LOAD_NO_INDEX (no-op if it has one).
 * 0, or ERR_LIMIT (the networks nest too deeply; the db is then unusable: free it). */
ATTR_WARN_UNUSED int geo_db_index(geo_db_t *db, char *err, size_t errlen);

/* Convenience: one MMDB file with the MaxMind schema. Same contract as geo_db_load(). */
ATTR_WARN_UNUSED int geo_db_load_mmdb(geo_db_t **out, const char *path, char *err,
                                      size_t errlen);

/*
 * What geo_db_reduce() keeps of each location besides its continent, country and source.
 * A client of the db that reads only those fields (a policy whose boundaries name
 * continents and countries, say) decides the same on the reduced db as on the full one.
 */
#define GEO_KEEP_SUBDIVISION 0x1u /* needed by subdivision places and named regions */
#define GEO_KEEP_CITY 0x2u        /* needed by "CC/City" boundaries */
#define GEO_KEEP_COORDS 0x4u      /* needed by distance sorting (closest) */
#define GEO_KEEP_ALL 0x7u

/*
 * A new db from `db` (borrowed, unchanged) with every location stripped to the fields in
 * `keep`: locations that become equal are merged, and so are neighbouring ranges that
 * end up with the same location, so the table shrinks with the detail kept (GeoLite2
 * City at country level: 2.56 M ranges, 158 k locations -> see docs/geoip.md). Lookups
 * on the result give the stripped location of the full db's answer, with a prefix never
 * longer than the full db's. The subdivision midpoints of the full data are kept, so
 * geo_place_find() resolves places the same way. Same return contract as geo_db_load().
 */
ATTR_WARN_UNUSED int geo_db_reduce(geo_db_t **out, const geo_db_t *db, unsigned keep,
                                   char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Free everything the db owns. NULL is a no-op. Callers must ensure no reader remains. */
void geo_db_free(geo_db_t *db);

/* ---- locations ----------------------------------------------------------------------- */

#define GEO_HAS_COORDS 0x1u

/* A deduplicated location. Strings are "" when unknown; all owned by the db. */
typedef struct {
    char continent[3];    /* "EU" */
    char country[3];      /* "BE" (ISO 3166-1 alpha-2, upper case) */
    char subdivision[8];  /* "US-CA" (country "-" ISO 3166-2 code, upper case) */
    uint8_t flags;        /* GEO_HAS_COORDS */
    uint8_t source;       /* index into the srcs[] given to geo_db_load() */
    const char *city;     /* "Brussels" (English name as in the data) */
    double lat, lon;      /* degrees; valid when flags & GEO_HAS_COORDS */
} geo_location_t;

/* Number of locations, including id 0 (unknown). Ids are 0 .. count-1. */
uint32_t geo_location_count(const geo_db_t *db) ATTR_NONNULL(1);

/* The location with this id (borrowed, lives as long as db); NULL when id is out of range.
 * Id 0 is the "unknown" location: every string empty, no coordinates. */
const geo_location_t *geo_location(const geo_db_t *db, uint32_t id) ATTR_NONNULL(1);

/* ---- lookups (never allocate, never fail) -------------------------------------------- */

/* IPv4 address in host byte order. Returns the location id; *prefix (0..32) if non-NULL. */
uint32_t geo_lookup_v4(const geo_db_t *db, uint32_t addr, unsigned *prefix) ATTR_NONNULL(1);

/* IPv6 address (16 bytes, network order), with the IPv4 aliases folded as described at
 * the top. *prefix (0..128) is in IPv6 terms. */
uint32_t geo_lookup_v6(const geo_db_t *db, const uint8_t addr[16], unsigned *prefix)
    ATTR_NONNULL(1, 2);

/* family AF_INET (addr: 4 bytes, network order) or AF_INET6 (16 bytes). Another family
 * returns GEO_LOC_UNKNOWN with *prefix 0. */
uint32_t geo_lookup(const geo_db_t *db, int family, const void *addr, unsigned *prefix)
    ATTR_NONNULL(1, 3);

/*
 * If the IPv6 address embeds an IPv4 address (see top), store it (host order) in *v4 and
 * the bit offset at which the IPv4 bits start to count in *offset, and return true: an
 * IPv4 prefix length p corresponds to the IPv6 prefix length *offset + p. Else false.
 */
bool geo_v6_to_v4(const uint8_t addr[16], uint32_t *v4, unsigned *offset) ATTR_NONNULL(1, 2, 3);

/* ---- walk ---------------------------------------------------------------------------- */

typedef struct {
    int family;         /* AF_INET or AF_INET6 */
    uint8_t addr[16];   /* first address, network order (4 bytes used for AF_INET) */
    unsigned prefix;    /* 0..32 or 0..128 */
    uint32_t loc;       /* location id, or GEO_LOC_V4ALIAS in the IPv6 space */
} geo_block_t;

/* Return 0 to continue, anything else stops the walk and is returned by geo_walk(). */
typedef int (*geo_walk_cb)(const geo_block_t *blk, void *ctx);

/*
 * Call cb for every maximal block, in address order: first the whole IPv4 space, then
 * the whole IPv6 space (whose IPv4 alias regions come as GEO_LOC_V4ALIAS blocks). The
 * blocks of each space cover it exactly, without gaps or overlaps; a block is maximal:
 * its parent block contains another location id. geo_lookup() of any address in a block
 * returns that block's loc and prefix. Returns 0, or the first non-zero cb result.
 */
int geo_walk(const geo_db_t *db, geo_walk_cb cb, void *ctx) ATTR_NONNULL(1, 2);

/* Number of ranges in the compiled table (IPv4 + IPv6) and its size in bytes. */
size_t geo_db_ranges(const geo_db_t *db) ATTR_NONNULL(1);
size_t geo_db_bytes(const geo_db_t *db) ATTR_NONNULL(1);

/* ---- places and distances ------------------------------------------------------------ */

typedef enum {
    GEO_PLACE_CONTINENT = 1, /* AF AN AS EU NA OC SA, aliases nam sam eur afr asi oce ant */
    GEO_PLACE_COUNTRY,       /* ISO 3166-1 alpha-2 (built-in table of centroids) */
    GEO_PLACE_SUBDIVISION,   /* "US-CA": found in the loaded data (needs a db) */
    GEO_PLACE_REGION,        /* named region: us-east, europe, asia-pacific, ... */
} geo_place_kind_t;

typedef struct geo_region geo_region_t; /* private */

/* A named place. Plain value; `name` and `region` borrow static data, or the db for a
 * subdivision (valid as long as that db). */
typedef struct {
    geo_place_kind_t kind;
    char code[8];       /* canonical code: "NA", "US", "US-CA"; region: "" */
    const char *name;   /* "North America", "United States", "us-east", or the code */
    double lat, lon;    /* midpoint, degrees */
    const geo_region_t *region; /* GEO_PLACE_REGION only */
} geo_place_t;

/*
 * Resolve a place name, case-insensitively: a continent code or alias, a country code,
 * a subdivision "CC-SUB" (only when db is non-NULL and the data contains it), or a region
 * name. Bare two-letter continent codes win over countries with the same code (NA, SA,
 * AS, AF, AN); "country:NA" / "continent:EU" / "subdivision:US-CA" / "region:europe"
 * force the kind. Returns 0 and fills *out, ERR_NOTFOUND, or ERR_INVAL (bad syntax).
 */
int geo_place_find(const geo_db_t *db, const char *name, geo_place_t *out) ATTR_NONNULL(2, 3);

/* Does the location belong to the place (continent, country, subdivision or any member
 * of the region)? The unknown location belongs to nothing. */
bool geo_place_contains(const geo_place_t *place, const geo_location_t *loc) ATTR_NONNULL(1, 2);

/* Centroid of a country from the built-in table: true and *lat, *lon (each if non-NULL), or false. Also
 * gives its continent code if `continent` is non-NULL (3 bytes). */
bool geo_country_info(const char *cc, double *lat, double *lon, char *continent)
    ATTR_NONNULL(1);

/* Number of built-in named regions, and the i-th region's name (for docs, CLI). */
size_t geo_region_count(void);
const char *geo_region_name(size_t i);

/* Great-circle (haversine) distance in km on a sphere of radius 6371.0088 km. */
double geo_distance_km(double lat1, double lon1, double lat2, double lon2);
