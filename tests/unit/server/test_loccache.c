/*
 * server/loccache: the per-thread location cache answers exactly what the GeoIP table
 * says (IPv4: whole-/24 and single-address entries, blocks smaller than a /24, space
 * without data; IPv6: whole /48s, single /64s, smaller blocks not cached, the IPv4
 * aliases), keeps four entries per set, drops the oldest, and forgets everything when
 * the snapshot generation changes.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/loccache.h"
#include "tap.h"

#define LOCATIONS "tests/data/geo/csv/GeoLite2-City-Locations-en.csv"
#define LONDON "2643743"
#define BRUSSELS "2800866"
#define LA "5368361"

static char dir[] = "/tmp/test_loccache.XXXXXX";

static geo_db_t *load(const char *name, void (*rows)(FILE *))
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "network,geoname_id,registered_country_geoname_id,represented_country_geoname_id,"
               "is_anonymous_proxy,is_satellite_provider,postal_code,latitude,longitude,"
               "accuracy_radius\n");
    rows(f);
    fclose(f);
    const char *blocks[] = { path, NULL };
    geo_source_t src = { .kind = GEO_SRC_CSV, .blocks = blocks, .locations = LOCATIONS };
    geo_db_t *db = NULL;
    char err[512];
    if (geo_db_load(&db, &src, 1, err, sizeof(err)) != 0) {
        printf("# %s\n", err);
        return NULL;
    }
    return db;
}

static void row(FILE *f, const char *net, const char *geoname)
{
    fprintf(f, "%s,%s,%s,,0,0,,,,\n", net, geoname, geoname);
}

/* 1.2.0.0/16 LA, its 1.2.3.0/24 cut in two /25s, one /32 inside another /24; 20,000
 * /24s of alternating cities from 20.0.0.0 (many more than the cache's sets, so they
 * evict each other), every other /24 of 30.0.0.0/16 split in /26s. */
static void rows_a(FILE *f)
{
    row(f, "1.2.0.0/16", LA);
    row(f, "1.2.3.0/25", LONDON);
    row(f, "1.2.3.128/25", BRUSSELS);
    row(f, "1.2.4.7/32", LONDON);
    static const char *const city[] = { LONDON, BRUSSELS, LA };
    for (unsigned i = 0; i < 20000; i++) {
        char net[32];
        snprintf(net, sizeof(net), "20.%u.%u.0/24", i >> 8, i & 255);
        row(f, net, city[i % 3]);
    }
    for (unsigned i = 0; i < 256; i += 2) {
        for (unsigned k = 0; k < 4; k++) {
            char net[32];
            snprintf(net, sizeof(net), "30.0.%u.%u/26", i, k * 64);
            row(f, net, city[(i + k) % 3]);
        }
    }
    /* IPv6: a /32 with a /48, two /56s, a /64 and an /80 inside */
    row(f, "2001:db8::/32", LA);
    row(f, "2001:db8:1::/48", LONDON);
    row(f, "2001:db8:2::/56", BRUSSELS);
    row(f, "2001:db8:2:100::/56", LONDON);
    row(f, "2001:db8:3:4::/64", LONDON);
    row(f, "2001:db8:5:6:7::/80", BRUSSELS);
}

/* The same networks, other cities: what a reload could bring. */
static void rows_b(FILE *f)
{
    row(f, "1.2.0.0/16", BRUSSELS);
    row(f, "1.2.3.0/25", LA);
    row(f, "1.2.3.128/25", LONDON);
    row(f, "2001:db8::/32", BRUSSELS);
}

static uint32_t ip(const char *s)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return 0;
    return ntohl(a.s_addr);
}

static const char *city_of(const geo_db_t *db, uint32_t loc)
{
    const geo_location_t *l = geo_location(db, loc);
    return l && l->city ? l->city : "";
}

static const uint8_t *ip6(const char *s)
{
    static uint8_t a[8][16];
    static unsigned k;
    uint8_t *p = a[k++ % 8];
    if (inet_pton(AF_INET6, s, p) != 1)
        memset(p, 0, 16);
    return p;
}

static const char *city6(srv_loc_cache_t *c, uint64_t gen, const geo_db_t *db, const char *s)
{
    return city_of(db, srv_loc_cache_lookup6(c, gen, db, ip6(s)));
}

static uint32_t direct(const geo_db_t *db, uint32_t a)
{
    uint8_t b[4] = { (uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a };
    return geo_lookup(db, AF_INET, b, NULL);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* n distinct /24s (as .0 addresses) whose entries share one set, from 20.0.0.0 up (most
 * of them past the 20,000 with data: space without data is cached the same way). */
static unsigned same_set(uint32_t *out, unsigned n)
{
    uint32_t base = ip("20.0.0.0"), set = srv_loc_set_of(base);
    unsigned k = 0;
    for (uint32_t i = 0; i < (1u << 20) && k < n; i++) {
        uint32_t a = base + (i << 8);
        if (srv_loc_set_of(a) == set)
            out[k++] = a;
    }
    return k;
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    geo_db_t *a = load("a.csv", rows_a), *b = load("b.csv", rows_b);
    if (!ok(a && b, "load the test tables")) {
        printf("Bail out! no tables\n");
        return 1;
    }
    srv_loc_cache_t *c = srv_loc_cache_new();
    ok(c != NULL, "a cache");

    /* Blocks smaller than a /24 are never taken for the whole /24. */
    uint32_t l1 = srv_loc_cache_lookup(c, 1, a, ip("1.2.3.1"));
    uint32_t l2 = srv_loc_cache_lookup(c, 1, a, ip("1.2.3.200"));
    uint32_t l3 = srv_loc_cache_lookup(c, 1, a, ip("1.2.3.2"));
    is_str(city_of(a, l1), "London", "1.2.3.1 in 1.2.3.0/25: London");
    is_str(city_of(a, l2), "Brussels", "1.2.3.200 in 1.2.3.128/25: Brussels, not the cached London");
    is_str(city_of(a, l3), "London", "1.2.3.2: London");
    is_str(city_of(a, srv_loc_cache_lookup(c, 1, a, ip("1.2.4.7"))), "London", "1.2.4.7/32: London");
    is_str(city_of(a, srv_loc_cache_lookup(c, 1, a, ip("1.2.4.8"))), "Los Angeles",
           "1.2.4.8 next to it: Los Angeles (1.2.0.0/16)");
    is_str(city_of(a, srv_loc_cache_lookup(c, 1, a, ip("1.2.4.7"))), "London",
           "1.2.4.7 again: London");

    /* Single-address entries: the same address hits, another address of the /24 misses. */
    uint64_t m = c->misses;
    srv_loc_cache_lookup(c, 1, a, ip("1.2.3.1"));
    is_int(c->misses, m, "1.2.3.1 again: from the cache");
    srv_loc_cache_lookup(c, 1, a, ip("1.2.3.3"));
    is_int(c->misses, m + 1, "1.2.3.3 (same /25, other address): a lookup");
    /* A whole-/24 entry serves every address of the /24. */
    srv_loc_cache_lookup(c, 1, a, ip("20.0.5.0"));
    m = c->misses;
    srv_loc_cache_lookup(c, 1, a, ip("20.0.5.77"));
    srv_loc_cache_lookup(c, 1, a, ip("20.0.5.255"));
    is_int(c->misses, m, "20.0.5.0/24 cached whole: .77 and .255 from the cache");

    /* Four ways: four /24s of one set all stay; a fifth drops the oldest. */
    uint32_t s[5];
    if (ok(same_set(s, 5) == 5, "five /24s sharing a set")) {
        srv_loc_cache_t *d = srv_loc_cache_new();
        for (int i = 0; i < 4; i++)
            srv_loc_cache_lookup(d, 1, a, s[i]);
        is_int(d->misses, 4, "  four first lookups miss");
        for (int i = 3; i >= 0; i--)
            is_int(srv_loc_cache_lookup(d, 1, a, s[i] | 9), direct(a, s[i]), "  /24 %d: right id", i);
        is_int(d->misses, 4, "  all four then hit");
        srv_loc_cache_lookup(d, 1, a, s[4]);
        srv_loc_cache_lookup(d, 1, a, s[3]);
        srv_loc_cache_lookup(d, 1, a, s[2]);
        srv_loc_cache_lookup(d, 1, a, s[1]);
        is_int(d->misses, 5, "  a fifth misses, the three newest stay");
        srv_loc_cache_lookup(d, 1, a, s[0]);
        is_int(d->misses, 6, "  the oldest was dropped");
        srv_loc_cache_free(d);
    }

    /* Agreement with the table over many lookups, most of them repeats. */
    unsigned bad = 0, n = 0;
    for (unsigned i = 0; i < 300000; i++) {
        uint32_t r = next_rand(), x;
        switch (r % 5) {
        case 0: x = ip("20.0.0.0") + ((r >> 3) % 20000 << 8) + (r >> 20 & 255); break;
        case 1: x = ip("20.0.0.0") + ((r >> 3) % 300 << 8) + (r >> 24); break; /* hot */
        case 2: x = ip("30.0.0.0") + (r >> 8 & 0xffff); break;
        case 3: x = ip("1.2.0.0") + (r >> 8 & 0x7ff); break;
        default: x = next_rand() << 1 ^ r; break; /* anywhere, mostly no data */
        }
        uint32_t got = srv_loc_cache_lookup(c, 1, a, x), want = direct(a, x);
        n++;
        if (got != want && bad++ < 5)
            printf("# %u.%u.%u.%u: cache %u, table %u\n", x >> 24, x >> 16 & 255, x >> 8 & 255,
                   x & 255, got, want);
    }
    is_int(bad, 0, "%u lookups agree with the table", n);
    ok(c->misses < n / 2, "most of them from the cache (%llu misses)",
       (unsigned long long)c->misses);

    /* IPv6: whole /48s, single /64s, nothing for smaller blocks. */
    is_str(city6(c, 1, a, "2001:db8:1:abcd::1"), "London", "2001:db8:1::/48: London");
    m = c->misses;
    is_str(city6(c, 1, a, "2001:db8:1:ffff:1:2:3:4"), "London", "  another /64 of the /48");
    is_int(c->misses, m, "  from the cache (whole /48)");
    is_str(city6(c, 1, a, "2001:db8:2::1"), "Brussels", "2001:db8:2::/56: Brussels");
    is_str(city6(c, 1, a, "2001:db8:2:100::1"), "London", "2001:db8:2:100::/56 in the same /48: London");
    is_str(city6(c, 1, a, "2001:db8:2:ff::1"), "Brussels", "2001:db8:2:ff::1: Brussels again");
    m = c->misses;
    is_str(city6(c, 1, a, "2001:db8:2:0:1::5"), "Brussels", "  same /64 as 2001:db8:2::1");
    is_int(c->misses, m, "  from the cache (one /64)");
    is_str(city6(c, 1, a, "2001:db8:2:1::1"), "Brussels", "  another /64 of the /56");
    is_int(c->misses, m + 1, "  a lookup");
    is_str(city6(c, 1, a, "2001:db8:5:6:7::1"), "Brussels", "2001:db8:5:6:7::/80: Brussels");
    is_str(city6(c, 1, a, "2001:db8:5:6:8::1"), "Los Angeles", "  next to it in the /64: Los Angeles");
    m = c->misses;
    is_str(city6(c, 1, a, "2001:db8:5:6:7::1"), "Brussels", "  again: Brussels");
    is_int(c->misses, m + 1, "  blocks under a /64 are not cached");
    is_str(city6(c, 1, a, "::ffff:1.2.3.1"), "London", "::ffff:1.2.3.1: London");
    is_str(city6(c, 1, a, "::ffff:1.2.3.200"), "Brussels", "::ffff:1.2.3.200: Brussels");
    is_str(city6(c, 1, a, "2002:102:300::1"), "London", "6to4 of 1.2.3.0: London");
    is_str(city6(c, 1, a, "2002:102:380::1"), "Brussels", "6to4 of 1.2.3.128: Brussels");
    is_str(city6(c, 1, a, "2002:102:300:ffff::1"), "London", "  6to4 of 1.2.3.0 again");

    bad = 0;
    n = 0;
    uint64_t m6 = c->misses;
    for (unsigned i = 0; i < 200000; i++) {
        uint32_t r = next_rand(), r2 = next_rand();
        uint8_t x[16];
        memcpy(x, ip6("2001:db8::"), 16);
        x[5] = (uint8_t)(r % 7);       /* 2001:db8:0..6:: */
        x[6] = (uint8_t)(r >> 8 & 3);  /* a few /56s */
        x[7] = (uint8_t)(r >> 12 & 7); /* a few /64s */
        x[8] = (uint8_t)(r >> 20 & 1);
        x[9] = (uint8_t)(r >> 21 & 7); /* around the /80 */
        memcpy(x + 12, &r2, 4);
        uint32_t got = srv_loc_cache_lookup6(c, 1, a, x), want = geo_lookup(a, AF_INET6, x, NULL);
        n++;
        if (got != want && bad++ < 5) {
            char t[INET6_ADDRSTRLEN];
            printf("# %s: cache %u, table %u\n", inet_ntop(AF_INET6, x, t, sizeof(t)), got, want);
        }
    }
    is_int(bad, 0, "%u IPv6 lookups agree with the table", n);
    ok(c->misses - m6 < n / 2, "most of them from the cache (%llu misses)",
       (unsigned long long)(c->misses - m6));

    /* A new snapshot generation: nothing of the old table survives. */
    uint32_t la = srv_loc_cache_lookup(c, 1, a, ip("1.2.9.9"));
    is_str(city_of(a, la), "Los Angeles", "1.2.9.9 in table a: Los Angeles");
    uint32_t lb = srv_loc_cache_lookup(c, 2, b, ip("1.2.9.9"));
    is_str(city_of(b, lb), "Brussels", "generation 2, table b: Brussels");
    is_str(city_of(b, srv_loc_cache_lookup(c, 2, b, ip("1.2.3.1"))), "Los Angeles",
           "  1.2.3.1: Los Angeles");
    is_int(srv_loc_cache_lookup(c, 2, b, ip("20.0.5.1")), direct(b, ip("20.0.5.1")),
           "  20.0.5.1: what table b says (no data), not the cached /24");
    is_str(city6(c, 2, b, "2001:db8:1:abcd::1"), "Brussels", "  2001:db8:1:abcd::1: Brussels");
    is_str(city6(c, 2, b, "2001:db8:2::1"), "Brussels", "  2001:db8:2::1: Brussels");

    srv_loc_cache_free(c);
    geo_db_free(a);
    geo_db_free(b);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return done_testing();
}
