/* Unit tests for src/geo: MMDB and CSV loading, the compiled table, aliases, walk. */
#include "tap.h"

#include "geo_test_util.h"
#include "geo_same.h"

#include <maxminddb.h>
#include <sys/socket.h>

#include "common/err.h"
#include "geo/geo.h"

__extension__ typedef unsigned __int128 u128;

static char dir[512], path_city[600], path_flat[600], path_v4[600];
static char err[512];

#define CSV "tests/data/geo/csv/"

static geo_db_t *load1(const char *path)
{
    geo_db_t *db = NULL;
    int rc = geo_db_load_mmdb(&db, path, err, sizeof(err));
    if (!ok(rc == 0 && db, "load %s", path))
        printf("# rc %d: %s\n", rc, err);
    return db;
}

/* ---- nested networks, prefix lengths, missing fields --------------------------------- */

static void test_city(geo_db_t *db)
{
    unsigned p = 99;
    const geo_location_t *l;

    l = tloc(db, "1.2.3.200", &p);
    is_str(l->country, "BE", "1.2.3.200 in the /25 inside the /24 inside the /16: BE");
    is_str(l->continent, "EU", "  continent EU");
    is_str(l->subdivision, "BE-BRU", "  subdivision stored as BE-BRU");
    is_str(l->city, "Brussels", "  city");
    ok(l->flags & GEO_HAS_COORDS, "  has coordinates");
    ok(l->lat == 50.8336 && l->lon == 4.3337, "  lat/lon exact (%f, %f)", l->lat, l->lon);
    is_int(p, 25, "  prefix /25");

    l = tloc(db, "1.2.3.5", &p);
    is_str(l->subdivision, "US-NY", "1.2.3.5: the /24 minus its /25: New York");
    is_int(p, 25, "  prefix /25 (the half of the /24 that is New York)");
    is_str(l->city, "New York", "  city");

    l = tloc(db, "1.2.4.1", &p);
    is_str(l->city, "Los Angeles", "1.2.4.1: /24 with the same content as the /16");
    is_int(p, 24, "  prefix /24 (bounded by NY before and SF after)");
    l = tloc(db, "1.2.0.1", &p);
    is_str(l->city, "Los Angeles", "1.2.0.1: the /16");
    is_int(p, 23, "  prefix /23 (1.2.0.0-1.2.2.255 is not one block)");
    l = tloc(db, "1.2.9.9", &p);
    is_int(p, 21, "1.2.9.9: 1.2.8.0/21");
    l = tloc(db, "1.2.5.9", &p);
    is_str(l->city, "San Francisco", "1.2.5.9: San Francisco");
    is_str(l->subdivision, "US-CA", "  US-CA");

    l = tloc(db, "1.5.0.0", &p);
    is_str(l->country, "AU", "1.5.0.0 in the /8: AU");
    is_str(l->city, "", "  no city: empty string");
    ok(l->flags & GEO_HAS_COORDS, "  but coordinates");
    is_int(p, 14, "  prefix /14 (1.4.0.0/14)");

    uint32_t id = tl4(db, "9.1.2.3", &p);
    is_int(id, GEO_LOC_UNKNOWN, "9.1.2.3 not covered: unknown");
    is_int(p, 5, "  prefix of the empty block 8.0.0.0/5");
    l = geo_location(db, 0);
    ok(l && !l->country[0] && !l->continent[0] && !(l->flags & GEO_HAS_COORDS) && l->city &&
           !l->city[0],
       "location 0 is all-empty");
    ok(geo_location(db, geo_location_count(db)) == NULL, "out-of-range id gives NULL");

    /* missing fields */
    l = tloc(db, "5.5.1.1", &p);
    is_str(l->country, "DE", "registered_country used when country is missing");
    is_str(l->continent, "EU", "  continent derived from the country");
    ok(!(l->flags & GEO_HAS_COORDS), "  no coordinates");
    l = tloc(db, "5.6.1.1", &p);
    is_str(l->continent, "AS", "continent only");
    is_str(l->country, "", "  no country");
    is_str(l->subdivision, "", "  no subdivision");
    l = tloc(db, "5.7.1.1", &p);
    is_str(l->country, "FR", "latitude without longitude: FR");
    ok(!(l->flags & GEO_HAS_COORDS), "  no coordinates");
    l = tloc(db, "5.8.1.1", &p);
    is_str(l->subdivision, "JP-13", "first of two subdivisions: JP-13");
    is_str(l->city, "Tokyo", "  Tokyo");
    l = tloc(db, "5.9.1.1", &p);
    is_str(l->city, "Z\xc3\xbcrich", "UTF-8 city name");
    id = tl4(db, "5.10.1.1", &p);
    ok(id != GEO_LOC_UNKNOWN, "empty record: covered (id %u)", id);
    l = geo_location(db, id);
    ok(l && !l->country[0] && !l->continent[0], "  with no fields");
    is_int(p, 16, "  prefix /16");

    /* IPv6 */
    l = tloc(db, "2a00:1000::1", &p);
    is_str(l->city, "London", "2a00:1000::1: London");
    is_int(p, 48, "  prefix /48 (the /32 minus the next /48)");
    l = tloc(db, "2a00:1000:1::5", &p);
    is_str(l->city, "Paris", "2a00:1000:1::5: Paris, nested /48");
    is_int(p, 48, "  prefix /48");
    l = tloc(db, "2a00:1000:ff00::", &p);
    is_str(l->city, "London", "2a00:1000:ff00::: London");
    is_int(p, 33, "  prefix /33");
    l = tloc(db, "2600:1000::1", &p);
    is_str(l->city, "San Jose", "2600:1000::1: San Jose");
    is_int(p, 28, "  prefix /28");
    l = tloc(db, "2600:8000::1", &p);
    is_str(l->country, "US", "2600:8000::1: US");
    is_int(p, 17, "  prefix /17 (upper half of 2600::/16, which holds San Jose)");
    l = tloc(db, "2608::1", &p);
    is_str(l->country, "US", "2608::1: US");
    is_int(p, 13, "  prefix /13");
    id = tl6(db, "3000::1", &p);
    is_int(id, 0, "3000::1: unknown");
    is_int(p, 4, "  prefix /4");
}

/* ---- IPv4 aliases in the IPv6 space -------------------------------------------------- */

static void test_aliases(geo_db_t *db)
{
    unsigned p;
    const geo_location_t *l;
    l = tloc(db, "::ffff:1.2.3.200", &p);
    is_str(l->country, "BE", "::ffff:1.2.3.200 (mapped) -> BE");
    is_int(p, 121, "  prefix 96 + 25");
    l = tloc(db, "::1.2.3.200", &p);
    is_str(l->country, "BE", "::1.2.3.200 (compatible) -> BE");
    is_int(p, 121, "  prefix 96 + 25");
    l = tloc(db, "2002:102:3c8:1234::1", &p);
    is_str(l->country, "BE", "2002:0102:03c8:: (6to4 of 1.2.3.200) -> BE");
    is_int(p, 41, "  prefix 16 + 25");
    l = tloc(db, "2001:0:4136:e378:8000:63bf:fefd:fc37", &p);
    is_str(l->country, "BE", "Teredo with client ~fefd:fc37 = 1.2.3.200 -> BE");
    is_int(p, 121, "  prefix 96 + 25");
    l = tloc(db, "::ffff:9.1.2.3", &p);
    is_int(p, 101, "unknown mapped address: 96 + 5");

    uint8_t a[16];
    uint32_t v4;
    unsigned off;
    inet_pton(AF_INET6, "2001:db8::1", a);
    ok(!geo_v6_to_v4(a, &v4, &off), "2001:db8::1 is not an alias");
    inet_pton(AF_INET6, "2002:c000:0204::", a);
    ok(geo_v6_to_v4(a, &v4, &off) && v4 == 0xc0000204u && off == 16, "6to4 decode");

    uint8_t b4[4] = {1, 2, 3, 200};
    uint32_t id = geo_lookup(db, AF_INET, b4, &p);
    ok(id == geo_lookup_v4(db, 0x010203c8u, NULL), "geo_lookup(AF_INET) == geo_lookup_v4");
    p = 77;
    is_int(geo_lookup(db, AF_UNIX, b4, &p), 0, "unknown family: id 0");
    is_int(p, 0, "  prefix 0");
}

/* ---- walk ----------------------------------------------------------------------------- */

typedef struct {
    const geo_db_t *db;
    int family;
    u128 next;
    bool v4_done, v6_done, bad_order, bad_lookup, not_maximal, v6_wrapped;
    int prev_family;
    unsigned prev_prefix;
    u128 prev_first;
    uint32_t prev_loc;
    size_t n4, n6, alias_blocks;
    u128 alias_addrs_hi; /* number of alias addresses >> 32 */
} walk_t;

static u128 addr_of(const geo_block_t *b)
{
    u128 v = 0;
    int n = b->family == AF_INET ? 4 : 16;
    for (int i = 0; i < n; i++)
        v = v << 8 | b->addr[i];
    return v;
}

static int walk_cb(const geo_block_t *b, void *ctx)
{
    walk_t *w = ctx;
    unsigned bits = b->family == AF_INET ? 32 : 128;
    u128 first = addr_of(b);
    u128 size_m1 = b->prefix == 0 ? (bits == 128 ? ~(u128)0 : (((u128)1 << 32) - 1))
                                  : (((u128)1 << (bits - b->prefix)) - 1);
    u128 last = first | size_m1;
    if (b->family != w->family) {
        if (b->family != AF_INET6 || w->family != AF_INET || !w->v4_done)
            w->bad_order = true;
        w->family = AF_INET6;
        w->next = 0;
        w->prev_family = 0;
    }
    if (first != w->next || (first & size_m1) != 0 || w->v6_done)
        w->bad_order = true;
    /* maximal: a block and its buddy, both present, never share the location */
    if (b->prefix > 0 && w->prev_family == b->family && w->prev_prefix == b->prefix &&
        w->prev_loc == b->loc && (w->prev_first ^ first) == ((u128)1 << (bits - b->prefix)) &&
        ((w->prev_first >> (bits - b->prefix)) & 1) == 0)
        w->not_maximal = true;
    if (b->family == AF_INET) {
        w->n4++;
        unsigned p1, p2;
        uint32_t l1 = geo_lookup_v4(w->db, (uint32_t)first, &p1);
        uint32_t l2 = geo_lookup_v4(w->db, (uint32_t)last, &p2);
        if (l1 != b->loc || l2 != b->loc || p1 != b->prefix || p2 != b->prefix)
            w->bad_lookup = true;
        if (last == 0xffffffffu)
            w->v4_done = true;
    } else {
        w->n6++;
        if (b->loc == GEO_LOC_V4ALIAS) {
            w->alias_blocks++;
            w->alias_addrs_hi += (size_m1 >> 32) + 1;
        } else {
            uint8_t a[16], z[16];
            unsigned p1, p2;
            for (int i = 0; i < 16; i++) {
                a[i] = (uint8_t)(first >> (8 * (15 - i)));
                z[i] = (uint8_t)(last >> (8 * (15 - i)));
            }
            uint32_t l1 = geo_lookup_v6(w->db, a, &p1), l2 = geo_lookup_v6(w->db, z, &p2);
            if (l1 != b->loc || l2 != b->loc || p1 != b->prefix || p2 != b->prefix)
                w->bad_lookup = true;
        }
        if (last == ~(u128)0)
            w->v6_done = true;
    }
    w->prev_family = b->family;
    w->prev_prefix = b->prefix;
    w->prev_first = first;
    w->prev_loc = b->loc;
    w->next = last + 1;
    return 0;
}

static void test_walk(const geo_db_t *db, const char *what)
{
    walk_t w = {.db = db, .family = AF_INET};
    int rc = geo_walk(db, walk_cb, &w);
    is_int(rc, 0, "%s: walk returns 0", what);
    ok(!w.bad_order, "%s: blocks are in order, aligned, without gaps or overlaps", what);
    ok(w.v4_done && w.v6_done, "%s: IPv4 and IPv6 spaces fully covered", what);
    ok(!w.bad_lookup, "%s: lookup of each block's first and last address gives its loc/prefix",
       what);
    ok(!w.not_maximal, "%s: no two buddy blocks share a location", what);
    /* ::/96, ::ffff:0:0/96 (2^32 each), 2001::/32 (2^96), 2002::/16 (2^112) */
    u128 want = 2 + ((u128)1 << 64) + ((u128)1 << 80);
    ok(w.alias_addrs_hi == want, "%s: alias blocks cover exactly the 4 IPv4 alias regions", what);
    printf("# %s: %zu IPv4 blocks, %zu IPv6 blocks\n", what, w.n4, w.n6);
}

static int stop_cb(const geo_block_t *b, void *ctx)
{
    (void)b;
    return ++*(int *)ctx == 3 ? 42 : 0;
}

/* ---- precedence of two sources -------------------------------------------------------- */

static void test_precedence(void)
{
    geo_source_t s[2] = {
        {.kind = GEO_SRC_MMDB, .path = path_city},
        {.kind = GEO_SRC_MMDB, .path = path_flat, .fields = &geo_fields_flat},
    };
    geo_db_t *db = NULL;
    int rc = geo_db_load(&db, s, 2, err, sizeof(err));
    if (!ok(rc == 0, "load [city, flat]"))
        printf("# %s\n", err);
    if (rc == 0) {
        unsigned p;
        const geo_location_t *l = tloc(db, "1.2.3.200", &p);
        is_str(l->country, "BE", "[city, flat] 1.2.3.200: city wins (BE)");
        is_int(l->source, 0, "  source 0");
        l = tloc(db, "8.8.8.8", &p);
        is_str(l->country, "US", "[city, flat] 8.8.8.8: only flat covers it (US)");
        is_int(l->source, 1, "  source 1");
        is_str(l->continent, "NA", "  continent derived from country");
        ok(l->flags & GEO_HAS_COORDS, "  float coordinates read");
        is_int(p, 24, "  prefix /24");
        l = tloc(db, "2a00:1000:2::1", &p);
        is_str(l->country, "GB", "[city, flat] 2a00:1000:2::1: city's /32 wins over flat's /48");
        l = tloc(db, "2a01::1", &p);
        is_str(l->country, "NZ", "flat lower-case codes upper-cased (NZ)");
        is_str(l->continent, "OC", "  OC");
        ok(l->lat == -41.25 && l->lon == 174.75, "  float lat/lon");
        test_walk(db, "[city, flat]");
        geo_db_free(db);
    }
    geo_source_t r[2] = {s[1], s[0]};
    rc = geo_db_load(&db, r, 2, err, sizeof(err));
    if (!ok(rc == 0, "load [flat, city]"))
        printf("# %s\n", err);
    if (rc == 0) {
        unsigned p;
        const geo_location_t *l = tloc(db, "1.2.3.200", &p);
        is_str(l->country, "NL", "[flat, city] 1.2.3.200: flat's /24 covers city's /25 (NL)");
        is_int(l->source, 0, "  source 0");
        is_int(p, 24, "  prefix /24");
        l = tloc(db, "1.2.4.1", &p);
        is_str(l->city, "Los Angeles", "[flat, city] 1.2.4.1: city fills the rest");
        is_int(l->source, 1, "  source 1");
        l = tloc(db, "2a00:1000:2::1", &p);
        is_str(l->country, "SE", "[flat, city] 2a00:1000:2::1: flat's /48 (SE)");
        is_str(l->subdivision, "SE-AB", "  full subdivision from a flat code");
        l = tloc(db, "2a00:1000:3::1", &p);
        is_str(l->country, "GB", "[flat, city] 2a00:1000:3::1: city (GB)");
        geo_db_free(db);
    }
}

static void test_v4_only(void)
{
    geo_db_t *db = load1(path_v4);
    if (!db)
        return;
    unsigned p;
    const geo_location_t *l = tloc(db, "10.1.2.3", &p);
    is_str(l->country, "ES", "IPv4-only db: 10.1.2.3 ES");
    is_int(p, 16, "  /16");
    l = tloc(db, "10.2.0.0", &p);
    is_str(l->country, "IT", "  10.2.0.0 IT");
    is_int(p, 15, "  /15");
    l = tloc(db, "::ffff:10.1.2.3", &p);
    is_str(l->country, "ES", "  ::ffff:10.1.2.3 ES");
    is_int(p, 112, "  /112");
    l = tloc(db, "200.1.1.1", &p);
    is_str(l->country, "BR", "  200.1.1.1 BR");
    is_int(p, 5, "  /5");
    uint32_t id = tl6(db, "2a00::1", &p);
    is_int(id, 0, "  2a00::1 unknown");
    is_int(p, 5, "  in 2800::/5");
    test_walk(db, "v4-only");
    geo_db_free(db);
}

/* ---- CSV ------------------------------------------------------------------------------ */

static void test_csv(void)
{
    static const char *const cblocks[] = {CSV "GeoLite2-Country-Blocks-IPv4.csv",
                                          CSV "GeoLite2-Country-Blocks-IPv6.csv", NULL};
    geo_source_t s = {.kind = GEO_SRC_CSV, .blocks = cblocks,
                      .locations = CSV "GeoLite2-Country-Locations-en.csv"};
    geo_db_t *db = NULL;
    int rc = geo_db_load(&db, &s, 1, err, sizeof(err));
    if (!ok(rc == 0, "load GeoLite2 Country CSV"))
        printf("# %s\n", err);
    if (rc == 0) {
        unsigned p;
        const geo_location_t *l = tloc(db, "185.30.54.157", &p);
        is_str(l->country, "BE", "seeds/001: 185.30.54.157 -> 2802361 -> BE");
        is_str(l->continent, "EU", "  EU");
        is_int(p, 22, "  185.30.52.0/22");
        l = tloc(db, "185.30.253.1", &p);
        is_str(l->country, "BE", "185.30.252.0/22 -> BE");
        l = tloc(db, "185.30.66.1", &p);
        is_str(l->country, "IT", "185.30.64.0/21 -> IT");
        is_int(p, 21, "  /21");
        l = tloc(db, "185.30.60.1", &p);
        is_int(p, 22, "185.30.60.0/22 IT next to 64.0/21 IT: no aligned /20, stays /22");
        uint32_t id = tl4(db, "185.30.169.1", &p);
        is_int(id, 0, "185.30.168.0/22 is not in the file: unknown");
        is_int(p, 22, "  /22");
        l = tloc(db, "1.0.2.5", &p);
        is_str(l->country, "CN", "1.0.2.0/23 -> CN");
        is_int(p, 23, "  /23");
        l = tloc(db, "1.0.70.1", &p);
        is_str(l->country, "JP", "1.0.64.0/18 -> JP");
        l = tloc(db, "2.16.1.1", &p);
        is_str(l->country, "FR", "empty geoname_id: registered_country_geoname_id (FR)");
        l = tloc(db, "3.1.1.1", &p);
        is_str(l->country, "KR", "quoted country name with a comma parsed (KR)");
        l = tloc(db, "2a03:1000::1", &p);
        is_str(l->country, "BE", "IPv6 row with registered country only (BE)");
        l = tloc(db, "2001:200::1", &p);
        is_str(l->country, "JP", "2001:200::/23 (outside Teredo) -> JP");
        is_int(p, 23, "  /23");
        test_walk(db, "country csv");
        geo_db_free(db);
    }

    static const char *const blocks[] = {CSV "GeoLite2-City-Blocks-IPv4.csv",
                                         CSV "GeoLite2-City-Blocks-IPv6.csv", NULL};
    geo_source_t c = {.kind = GEO_SRC_CSV, .blocks = blocks,
                      .locations = CSV "GeoLite2-City-Locations-en.csv"};
    rc = geo_db_load(&db, &c, 1, err, sizeof(err));
    if (!ok(rc == 0, "load GeoLite2 City CSV"))
        printf("# %s\n", err);
    if (rc == 0) {
        unsigned p;
        const geo_location_t *l = tloc(db, "1.2.3.4", &p);
        is_str(l->city, "London", "nested CSV network 1.2.3.0/24 in 1.2.0.0/16: London");
        is_str(l->subdivision, "GB-ENG", "  GB-ENG");
        ok(l->lat == 51.5074 && l->lon == -0.1278, "  coordinates from the blocks row");
        is_int(p, 24, "  /24");
        l = tloc(db, "1.2.9.9", &p);
        is_str(l->city, "Los Angeles", "1.2.9.9: Los Angeles");
        is_str(l->subdivision, "US-CA", "  US-CA");
        l = tloc(db, "1.2.4.1", &p);
        is_str(l->city, "Town \"Quoted\", with\nnewline", "quoted city with \"\", comma, newline");
        l = tloc(db, "1.3.1.1", &p);
        is_str(l->country, "US", "registered-country fallback in City CSV");
        ok(!(l->flags & GEO_HAS_COORDS), "  empty lat/lon: no coordinates");
        l = tloc(db, "185.30.54.157", &p);
        is_str(l->city, "Brussels", "185.30.54.157: Brussels");
        is_str(l->subdivision, "BE-BRU", "  BE-BRU");
        l = tloc(db, "9.9.9.9", &p);
        is_str(l->country, "BE", "::ffff:9.9.9.0/120 row is IPv4 9.9.9.0/24");
        is_int(p, 24, "  /24");
        l = tloc(db, "2a00:1000::1", &p);
        is_str(l->city, "London", "IPv6 row");
        is_int(p, 32, "  /32");
        test_walk(db, "city csv");
        geo_db_free(db);
    }
}

/* ---- bad input ------------------------------------------------------------------------ */

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void expect_fail_mmdb(const char *path, int want, const char *what)
{
    geo_db_t *db = (geo_db_t *)&db; /* must stay untouched */
    geo_db_t *const orig = db;
    err[0] = '\0';
    int rc = geo_db_load_mmdb(&db, path, err, sizeof(err));
    if (want)
        is_int(rc, want, "%s: %s", what, err_str(want));
    else
        ok(rc < 0, "%s: fails (%d)", what, rc);
    ok(db == orig, "  output untouched");
    ok(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
       "  message names the file: %s", err);
}

static void expect_fail_csv(const char *blocks, const char *locations, int want,
                            const char *msg_part, const char *what)
{
    const char *b[] = {blocks, NULL};
    geo_source_t s = {.kind = GEO_SRC_CSV, .blocks = b, .locations = locations};
    geo_db_t *db = NULL;
    err[0] = '\0';
    int rc = geo_db_load(&db, &s, 1, err, sizeof(err));
    is_int(rc, want, "%s: %s", what, err_str(want));
    ok(db == NULL, "  no db");
    ok(strstr(err, msg_part) != NULL, "  message '%s' has '%s'", err, msg_part);
    if (rc == 0)
        geo_db_free(db);
}

/*
 * A record whose top-level map has the key "city" twice (tests/data/geo/dup-key.mmdb,
 * from the fuzzer's corpus): the first one counts, as in libmaxminddb's MMDB_get_value().
 */
static void test_duplicate_key(void)
{
    const char *path = "tests/data/geo/dup-key.mmdb";
    geo_db_t *db = load1(path);
    MMDB_s m;
    if (!ok(MMDB_open(path, MMDB_MODE_MMAP, &m) == MMDB_SUCCESS, "libmaxminddb opens it")) {
        geo_db_free(db);
        return;
    }
    int gai, mmerr;
    MMDB_lookup_result_s r = MMDB_lookup_string(&m, "2600:1000::1", &gai, &mmerr);
    MMDB_entry_data_s d;
    char want[64] = "";
    if (gai == 0 && mmerr == MMDB_SUCCESS && r.found_entry &&
        MMDB_get_value(&r.entry, &d, "city", "names", "en", NULL) == MMDB_SUCCESS &&
        d.has_data && d.type == MMDB_DATA_TYPE_UTF8_STRING && d.data_size < sizeof(want))
        memcpy(want, d.utf8_string, d.data_size);
    is_str(want, "San Jose", "libmaxminddb: the first \"city\" key's name");
    double lat = 0;
    if (r.found_entry && MMDB_get_value(&r.entry, &d, "location", "latitude", NULL) == 0 &&
        d.has_data && d.type == MMDB_DATA_TYPE_DOUBLE)
        lat = d.double_value;
    if (db) {
        const geo_location_t *l = tloc(db, "2600:1000::1", NULL);
        is_str(l->city, want, "ours: the same");
        ok((l->flags & GEO_HAS_COORDS) && l->lat == lat && lat != 0,
           "  and the keys after the duplicate are read (latitude %f)", l->lat);
        geo_db_free(db);
    }
    MMDB_close(&m);
}

static void test_bad(void)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/does-not-exist.mmdb", dir);
    expect_fail_mmdb(p, ERR_IO, "missing mmdb");

    size_t n = 0;
    uint8_t *buf = read_all(path_city, &n);
    ok(buf && n > 1000, "read city mmdb (%zu bytes)", n);
    if (!buf)
        return;
    snprintf(p, sizeof(p), "%s/bad-truncated.mmdb", dir);
    write_file(p, buf, n / 2);
    expect_fail_mmdb(p, ERR_MALFORMED, "truncated mmdb");
    snprintf(p, sizeof(p), "%s/bad-empty.mmdb", dir);
    write_file(p, buf, 0);
    expect_fail_mmdb(p, 0, "empty mmdb");
    snprintf(p, sizeof(p), "%s/bad-garbage.mmdb", dir);
    write_file(p, "this is not a maxmind db\n", 25);
    expect_fail_mmdb(p, ERR_MALFORMED, "garbage file");

    /* the search tree is at the start of the file: 0xff records point nowhere */
    uint8_t *c = malloc(n);
    memcpy(c, buf, n);
    memset(c, 0xff, 48);
    snprintf(p, sizeof(p), "%s/bad-tree.mmdb", dir);
    write_file(p, c, n);
    expect_fail_mmdb(p, ERR_MALFORMED, "corrupt search tree");

    /* node 0's left record points back at node 0 (whatever the record size): a cycle */
    memcpy(c, buf, n);
    memset(c, 0, 4);
    snprintf(p, sizeof(p), "%s/cyclic-tree.mmdb", dir);
    write_file(p, c, n);
    expect_fail_mmdb(p, ERR_MALFORMED, "search tree with a cycle");

    /* the data section starts 16 zero bytes after the tree: fill it with 0xff */
    size_t ds = 0;
    for (size_t i = 0; i + 16 < n; i++) {
        static const uint8_t z[16];
        if (memcmp(buf + i, z, 16) == 0) {
            ds = i + 16;
            break;
        }
    }
    ok(ds > 0, "found the data section at %zu", ds);
    memcpy(c, buf, n);
    const char marker[] = "\xAB\xCD\xEFMaxMind.com";
    size_t meta = n;
    for (size_t i = 0; i + sizeof(marker) - 1 <= n; i++) {
        if (memcmp(buf + i, marker, sizeof(marker) - 1) == 0)
            meta = i;
    }
    memset(c + ds, 0xff, meta - ds);
    snprintf(p, sizeof(p), "%s/bad-data.mmdb", dir);
    write_file(p, c, n);
    expect_fail_mmdb(p, ERR_MALFORMED, "corrupt data section");

    /* random corruption anywhere before the metadata: fail or succeed, never crash */
    unsigned seed = 12345;
    int survived = 0, failed = 0;
    for (int round = 0; round < 200; round++) {
        memcpy(c, buf, n);
        for (int k = 0; k < 8; k++) {
            seed = seed * 1103515245u + 12345u;
            c[(seed >> 8) % meta] = (uint8_t)(seed >> 3);
        }
        write_file(p, c, n);
        geo_db_t *db = NULL;
        int rc = geo_db_load_mmdb(&db, p, err, sizeof(err));
        if (rc == 0) {
            survived++;
            geo_db_free(db);
        } else {
            failed++;
        }
    }
    ok(survived + failed == 200, "200 randomly corrupted files: %d loaded, %d rejected, no crash",
       survived, failed);
    free(c);
    free(buf);

    const char *loc = CSV "GeoLite2-Country-Locations-en.csv";
    expect_fail_csv(CSV "bad/bad-network.csv", loc, ERR_PARSE, "bad-network.csv:3: bad network",
                    "csv bad network");
    expect_fail_csv(CSV "bad/bad-geoname.csv", loc, ERR_NOTFOUND,
                    "bad-geoname.csv:4: unknown geoname_id 123", "csv unknown geoname_id");
    expect_fail_csv(CSV "bad/bad-columns.csv", loc, ERR_PARSE,
                    "bad-columns.csv:2: expected 6 columns, got 5", "csv wrong column count");
    expect_fail_csv(CSV "bad/bad-quote.csv", loc, ERR_PARSE, "bad-quote.csv:2: unterminated",
                    "csv unterminated quote");
    expect_fail_csv(CSV "bad/bad-latlon.csv", loc, ERR_PARSE, "bad-latlon.csv:2: bad latitude",
                    "csv latitude out of range");
    expect_fail_csv(CSV "bad/bad-header.csv", loc, ERR_PARSE, "bad-header.csv:1:",
                    "csv header without network");
    expect_fail_csv(CSV "bad/empty.csv", loc, ERR_PARSE, "empty.csv: empty file", "csv empty");
    expect_fail_csv(CSV "bad/missing.csv", loc, ERR_IO, "missing.csv: No such file",
                    "csv missing blocks file");
    expect_fail_csv(CSV "GeoLite2-Country-Blocks-IPv4.csv", CSV "bad/missing-loc.csv", ERR_IO,
                    "missing-loc.csv:", "csv missing locations file");
    expect_fail_csv(CSV "GeoLite2-Country-Blocks-IPv4.csv", CSV "bad/bad-locations.csv",
                    ERR_PARSE, "bad-locations.csv:1: no geoname_id", "csv locations without geoname_id");
    expect_fail_csv(CSV "GeoLite2-Country-Blocks-IPv4.csv", CSV "GeoLite2-Country-Blocks-IPv4.csv",
                    ERR_PARSE, "GeoLite2-Country-Blocks-IPv4.csv:4: duplicate geoname_id 1814991",
                    "csv locations with a duplicate id");

    geo_db_t *db = NULL;
    is_int(geo_db_load(&db, NULL, 0, err, sizeof(err)), ERR_INVAL, "no sources: ERR_INVAL");
    geo_source_t s = {.kind = GEO_SRC_MMDB};
    is_int(geo_db_load(&db, &s, 1, err, sizeof(err)), ERR_INVAL, "mmdb without path: ERR_INVAL");
    geo_source_t s2 = {.kind = GEO_SRC_MMDB, .path = path_city};
    geo_source_t two[2] = {s2, {.kind = GEO_SRC_MMDB, .path = "/nonexistent.mmdb"}};
    is_int(geo_db_load(&db, two, 2, err, sizeof(err)), ERR_IO,
           "a bad second source fails the whole load");
    ok(db == NULL, "  no db");
    geo_db_free(NULL);
    ok(1, "geo_db_free(NULL) is a no-op");
}

/* The reduced db against the full one: same continent, country and coverage, the kept
 * fields equal, the others empty, prefixes never longer. */
static void test_reduce(const geo_db_t *db)
{
    static const char *addrs[] = {"1.2.3.200", "1.2.3.5", "1.2.4.1", "1.2.0.1", "1.2.9.9",
                                  "1.2.5.9", "1.5.0.0", "9.1.2.3", "5.5.1.1", "5.6.1.1",
                                  "0.0.0.1", "255.255.255.255"};
    static const unsigned keeps[] = {0, GEO_KEEP_SUBDIVISION, GEO_KEEP_CITY, GEO_KEEP_COORDS,
                                     GEO_KEEP_ALL};
    for (size_t k = 0; k < sizeof(keeps) / sizeof(keeps[0]); k++) {
        unsigned keep = keeps[k];
        geo_db_t *r = NULL;
        char msg[256];
        if (!ok(geo_db_reduce(&r, db, keep, msg, sizeof(msg)) == 0, "reduce 0x%x: %s", keep,
                msg))
            continue;
        int bad = 0;
        for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
            unsigned pf = 0, pr = 0;
            uint32_t idf = tl4(db, addrs[i], &pf), idr = tl4(r, addrs[i], &pr);
            const geo_location_t *f = geo_location(db, idf), *l = geo_location(r, idr);
            bool same = (idf == 0) == (idr == 0) && !strcmp(f->continent, l->continent) &&
                        !strcmp(f->country, l->country) && f->source == l->source && pr <= pf;
            same = same && !strcmp(l->subdivision,
                                   keep & GEO_KEEP_SUBDIVISION ? f->subdivision : "");
            same = same && !strcmp(l->city, keep & GEO_KEEP_CITY ? f->city : "");
            if (keep & GEO_KEEP_COORDS)
                same = same && (f->flags & GEO_HAS_COORDS) == (l->flags & GEO_HAS_COORDS) &&
                       (!(f->flags & GEO_HAS_COORDS) || (f->lat == l->lat && f->lon == l->lon));
            else
                same = same && !(l->flags & GEO_HAS_COORDS);
            if (keep == GEO_KEEP_ALL)
                same = same && pr == pf;
            if (!same && bad++ < 3)
                printf("#   %s: full %s/%s/%s/%s /%u, reduced %s/%s/%s/%s /%u\n", addrs[i],
                       f->continent, f->country, f->subdivision, f->city, pf, l->continent,
                       l->country, l->subdivision, l->city, pr);
        }
        is_int(bad, 0, "reduce 0x%x: lookups give the full location's kept fields", keep);
        if (keep == GEO_KEEP_ALL) {
            is_int(geo_location_count(r), geo_location_count(db), "  all kept: same locations");
            is_int(geo_db_ranges(r), geo_db_ranges(db), "  all kept: same ranges");
        } else if (keep == 0) {
            ok(geo_location_count(r) < geo_location_count(db) &&
                   geo_db_ranges(r) < geo_db_ranges(db),
               "  fewer locations (%u < %u) and ranges (%zu < %zu)", geo_location_count(r),
               geo_location_count(db), geo_db_ranges(r), geo_db_ranges(db));
        } else {
            ok(geo_location_count(r) <= geo_location_count(db) &&
                   geo_db_ranges(r) <= geo_db_ranges(db),
               "  no more locations (%u <= %u) or ranges (%zu <= %zu)", geo_location_count(r),
               geo_location_count(db), geo_db_ranges(r), geo_db_ranges(db));
        }
        geo_place_t pf, pr;
        ok(geo_place_find(db, "US-CA", &pf) == 0 && geo_place_find(r, "US-CA", &pr) == 0 &&
               pf.lat == pr.lat && pf.lon == pr.lon,
           "  subdivision places resolve as on the full data");
        if (keep == 0)
            test_walk(r, "country-level reduced db");
        geo_db_free(r);
    }
}

/* GEO_LOAD_KEEP: a db stripped while loading is the db loaded in full and then reduced,
 * block for block, for every source kind and every set of kept fields. */
static void test_strip_at_load(void)
{
    static const char *const blocks[] = {CSV "GeoLite2-City-Blocks-IPv4.csv",
                                         CSV "GeoLite2-City-Blocks-IPv6.csv", NULL};
    const geo_source_t city = {.kind = GEO_SRC_MMDB, .path = path_city};
    const geo_source_t flat = {.kind = GEO_SRC_MMDB, .path = path_flat, .fields = &geo_fields_flat};
    const geo_source_t csv = {.kind = GEO_SRC_CSV, .blocks = blocks,
                              .locations = CSV "GeoLite2-City-Locations-en.csv"};
    const struct {
        const char *what;
        geo_source_t src[2];
        size_t n;
    } sets[] = {
        {"city mmdb", {city}, 1},
        {"flat mmdb", {flat}, 1},
        {"city csv", {csv}, 1},
        {"flat over city", {flat, city}, 2},
    };
    static const unsigned keeps[] = {0, GEO_KEEP_SUBDIVISION, GEO_KEEP_CITY, GEO_KEEP_COORDS,
                                     GEO_KEEP_SUBDIVISION | GEO_KEEP_COORDS, GEO_KEEP_ALL};
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        geo_db_t *full = NULL;
        if (!ok(geo_db_load(&full, sets[i].src, sets[i].n, err, sizeof(err)) == 0,
                "%s: full load (%s)", sets[i].what, err))
            continue;
        for (size_t k = 0; k < sizeof(keeps) / sizeof(keeps[0]); k++) {
            geo_db_t *red = NULL, *strip = NULL;
            int r1 = geo_db_reduce(&red, full, keeps[k], err, sizeof(err));
            int r2 = geo_db_load_opts(&strip, sets[i].src, sets[i].n, GEO_LOAD_KEEP(keeps[k]),
                                      err, sizeof(err));
            if (ok(r1 == 0 && r2 == 0, "%s, keep 0x%x: reduced and stripped loads", sets[i].what,
                   keeps[k])) {
                ok(geo_same_db(red, strip) && geo_db_ranges(red) == geo_db_ranges(strip) &&
                       geo_location_count(red) == geo_location_count(strip),
                   "  the same table: %zu ranges, %u locations", geo_db_ranges(strip),
                   geo_location_count(strip));
            }
            geo_db_free(red);
            geo_db_free(strip);
        }
        geo_db_free(full);
    }
    /* stripped to countries, the city mmdb has fewer locations and ranges than in full */
    geo_db_t *full = NULL, *strip = NULL;
    if (geo_db_load(&full, &city, 1, err, sizeof(err)) == 0 &&
        geo_db_load_opts(&strip, &city, 1, GEO_LOAD_KEEP(0), err, sizeof(err)) == 0) {
        ok(geo_location_count(strip) < geo_location_count(full) &&
               geo_db_ranges(strip) < geo_db_ranges(full),
           "country level: %u < %u locations, %zu < %zu ranges", geo_location_count(strip),
           geo_location_count(full), geo_db_ranges(strip), geo_db_ranges(full));
        const geo_location_t *l = tloc(strip, "1.2.3.4", NULL);
        ok(!l->city[0] && !l->subdivision[0] && !(l->flags & GEO_HAS_COORDS) && l->country[0],
           "  a location keeps its country (%s) and nothing else", l->country);
    } else {
        ok(0, "country level loads: %s", err);
        ok(0, "  (skipped)");
    }
    geo_db_free(full);
    geo_db_free(strip);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "%s", geo_test_data_dir());
    snprintf(path_city, sizeof(path_city), "%s/geo-city.mmdb", dir);
    snprintf(path_flat, sizeof(path_flat), "%s/geo-flat.mmdb", dir);
    snprintf(path_v4, sizeof(path_v4), "%s/geo-v4.mmdb", dir);

    geo_db_t *db = load1(path_city);
    if (db) {
        test_city(db);
        test_aliases(db);
        test_walk(db, "city mmdb");
        int count = 0;
        is_int(geo_walk(db, stop_cb, &count), 42, "walk stops on a non-zero callback result");
        is_int(count, 3, "  after 3 blocks");
        ok(geo_db_ranges(db) > 10 && geo_db_bytes(db) > 0, "ranges %zu, %zu bytes",
           geo_db_ranges(db), geo_db_bytes(db));
        test_reduce(db);
        geo_db_free(db);
    }
    /* loaded without the index: reduced, or indexed later, it answers as a normal load */
    {
        geo_source_t src = {.kind = GEO_SRC_MMDB, .path = path_city};
        geo_db_t *full = NULL, *late = NULL, *small = NULL, *ref = load1(path_city);
        is_int(geo_db_load_opts(&full, &src, 1, GEO_LOAD_NO_INDEX, err, sizeof(err)), 0,
               "load without the index");
        is_int(geo_db_load_opts(&late, &src, 1, GEO_LOAD_NO_INDEX, err, sizeof(err)), 0,
               "again");
        is_int(geo_db_reduce(&small, full, GEO_KEEP_SUBDIVISION, err, sizeof(err)), 0,
               "reduce it");
        is_int(geo_db_index(late, err, sizeof(err)), 0, "index it later");
        is_int(geo_db_index(late, err, sizeof(err)), 0, "indexing twice is a no-op");
        if (ref && small && late) {
            const char *a4[] = {"1.2.3.4", "1.2.3.200", "1.2.4.1", "5.8.1.1", "9.9.9.9"};
            const char *a6[] = {"2a00:1000:1::1", "2a00:1000::1", "2600:1000::5", "::ffff:1.2.3.4"};
            size_t same = 0, sub = 0;
            for (size_t i = 0; i < 5; i++) {
                unsigned p1, p2;
                uint32_t x = tl4(ref, a4[i], &p1), y = tl4(late, a4[i], &p2);
                same += x == y && p1 == p2;
                const geo_location_t *l = geo_location(ref, x), *m = geo_location(small, tl4(small, a4[i], NULL));
                sub += l && m && strcmp(l->country, m->country) == 0 &&
                       strcmp(l->subdivision, m->subdivision) == 0;
            }
            for (size_t i = 0; i < 4; i++) {
                unsigned p1, p2;
                uint32_t x = tl6(ref, a6[i], &p1), y = tl6(late, a6[i], &p2);
                same += x == y && p1 == p2;
            }
            is_int(same, 9, "indexed later: the same locations and prefixes");
            is_int(sub, 5, "reduced: the same countries and subdivisions");
            test_walk(late, "city mmdb indexed after loading");
        }
        geo_db_free(ref);
        geo_db_free(full);
        geo_db_free(late);
        geo_db_free(small);
    }

    /* the same networks with 28- and 32-bit search tree records read the same */
    for (int rs = 28; rs <= 32; rs += 4) {
        char p[sizeof(dir) + 32];
        snprintf(p, sizeof(p), "%s/geo-city-%d.mmdb", dir, rs);
        geo_db_t *d = load1(p);
        ok(d != NULL, "%d-bit records: loads", rs);
        if (d) {
            test_city(d);
            test_aliases(d);
            test_walk(d, rs == 28 ? "city mmdb, 28-bit records" : "city mmdb, 32-bit records");
            geo_db_free(d);
        }
    }
    test_precedence();
    test_strip_at_load();
    test_v4_only();
    test_csv();
    test_bad();
    test_duplicate_key();
    return done_testing();
}
