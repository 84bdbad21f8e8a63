/*
 * Agreement of the compiled table with libmaxminddb on the real GeoLite2 City database
 * (data/geoip/GeoLite2-City.mmdb, fetched by scripts/fetch-geoip.sh; skipped if absent):
 * for 100,000 random IPv4 and 100,000 random IPv6 addresses (fixed seed), continent,
 * country, subdivision, city and coordinates must be equal, and our prefix length must
 * never be longer than libmaxminddb's netmask (we merge equal neighbours, so it may be
 * shorter). Teredo (2001::/32) is excluded: we map it to the client, MaxMind to the server.
 */
#include "tap.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "geo/geo.h"
#include "geo_same.h"

#define N_ADDR 100000

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void get_str(MMDB_entry_s *e, char *buf, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    MMDB_entry_data_s d;
    buf[0] = '\0';
    if (MMDB_vget_value(e, &d, ap) == MMDB_SUCCESS && d.has_data &&
        d.type == MMDB_DATA_TYPE_UTF8_STRING && d.data_size < cap) {
        memcpy(buf, d.utf8_string, d.data_size);
        buf[d.data_size] = '\0';
    }
    va_end(ap);
}

typedef struct {
    long checked, found, mism_country, mism_cont, mism_sub, mism_city, mism_coord, mism_prefix,
        mism_unknown;
} stats_t;

static void check(MMDB_s *m, const geo_db_t *db, int family, const uint8_t *a, stats_t *st)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
        s->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
    }
    int gai, mmerr;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(m, (struct sockaddr *)&ss, &mmerr);
    (void)gai;
    unsigned prefix;
    uint32_t id = geo_lookup(db, family, a, &prefix);
    const geo_location_t *l = geo_location(db, id);
    char buf[64];
    inet_ntop(family, a, buf, sizeof(buf));
    st->checked++;
    if (mmerr != MMDB_SUCCESS || !r.found_entry) {
        if (id != GEO_LOC_UNKNOWN && st->mism_unknown++ < 5)
            printf("# %s: libmaxminddb has nothing, we have id %u\n", buf, id);
        return;
    }
    st->found++;
    char cc[8], cont[8], sub[8], city[256], want_sub[16] = "";
    get_str(&r.entry, cc, sizeof(cc), "country", "iso_code", NULL);
    if (!cc[0])
        get_str(&r.entry, cc, sizeof(cc), "registered_country", "iso_code", NULL);
    get_str(&r.entry, cont, sizeof(cont), "continent", "code", NULL);
    if (!cont[0] && cc[0])
        geo_country_info(cc, NULL, NULL, cont);
    get_str(&r.entry, sub, sizeof(sub), "subdivisions", "0", "iso_code", NULL);
    if (sub[0] && cc[0])
        snprintf(want_sub, sizeof(want_sub), "%s-%s", cc, sub);
    get_str(&r.entry, city, sizeof(city), "city", "names", "en", NULL);
    MMDB_entry_data_s dlat, dlon;
    bool has_lat = MMDB_get_value(&r.entry, &dlat, "location", "latitude", NULL) == 0 &&
                   dlat.has_data && dlat.type == MMDB_DATA_TYPE_DOUBLE;
    bool has_lon = MMDB_get_value(&r.entry, &dlon, "location", "longitude", NULL) == 0 &&
                   dlon.has_data && dlon.type == MMDB_DATA_TYPE_DOUBLE;

    if (strcmp(cc, l->country) && st->mism_country++ < 5)
        printf("# %s: country '%s' vs ours '%s'\n", buf, cc, l->country);
    if (strcmp(cont, l->continent) && st->mism_cont++ < 5)
        printf("# %s: continent '%s' vs ours '%s'\n", buf, cont, l->continent);
    if (strcmp(want_sub, l->subdivision) && st->mism_sub++ < 5)
        printf("# %s: subdivision '%s' vs ours '%s'\n", buf, want_sub, l->subdivision);
    if (strcmp(city, l->city) && st->mism_city++ < 5)
        printf("# %s: city '%s' vs ours '%s'\n", buf, city, l->city);
    bool coords = has_lat && has_lon;
    if ((coords != !!(l->flags & GEO_HAS_COORDS) ||
         (coords && (dlat.double_value != l->lat || dlon.double_value != l->lon))) &&
        st->mism_coord++ < 5)
        printf("# %s: coordinates differ\n", buf);
    /* libmaxminddb reports IPv4 netmasks in IPv6 terms (96 + n) for an IPv6 tree */
    unsigned theirs = r.netmask;
    if (family == AF_INET && m->metadata.ip_version == 6)
        theirs -= 96;
    if (prefix > theirs && st->mism_prefix++ < 5)
        printf("# %s: our prefix /%u is longer than libmaxminddb's /%u\n", buf, prefix, theirs);
}

typedef struct {
    uint8_t (*a)[17]; /* first address + prefix length */
    size_t n, cap;
} blocks_t;

static int collect(const geo_block_t *b, void *ctx)
{
    blocks_t *bl = ctx;
    if (b->family != AF_INET6 || b->loc == GEO_LOC_UNKNOWN || b->loc == GEO_LOC_V4ALIAS)
        return 0;
    if (bl->n == bl->cap) {
        bl->cap = bl->cap ? bl->cap * 2 : 65536;
        bl->a = realloc(bl->a, bl->cap * sizeof(*bl->a));
    }
    memcpy(bl->a[bl->n], b->addr, 16);
    bl->a[bl->n][16] = (uint8_t)b->prefix;
    bl->n++;
    return 0;
}

int main(void)
{
    const char *root = getenv("GEOCAST_ROOT");
    char path[1024];
    snprintf(path, sizeof(path), "%s/data/geoip/GeoLite2-City.mmdb", root && *root ? root : ".");
    if (access(path, R_OK) != 0) {
        printf("1..0 # SKIP %s absent (run scripts/fetch-geoip.sh)\n", path);
        return 0;
    }
    char err[512];
    geo_db_t *db = NULL;
    int rc = geo_db_load_mmdb(&db, path, err, sizeof(err));
    if (!ok(rc == 0, "load %s", path)) {
        printf("# %s\n", err);
        return done_testing();
    }
    MMDB_s m;
    if (!ok(MMDB_open(path, MMDB_MODE_MMAP, &m) == MMDB_SUCCESS, "MMDB_open")) {
        geo_db_free(db);
        return done_testing();
    }
    /* half of the IPv6 addresses are drawn inside the networks of the data (uniform
     * addresses almost never hit them), the other half uniformly */
    blocks_t bl = {0};
    geo_walk(db, collect, &bl);
    for (int fam = 0; fam < 2; fam++) {
        stats_t st = {0};
        for (int i = 0; i < N_ADDR; i++) {
            uint8_t a[16];
            uint64_t x = next_rand(), y = next_rand();
            for (int k = 0; k < 8; k++) {
                a[k] = (uint8_t)(x >> (8 * k));
                a[8 + k] = (uint8_t)(y >> (8 * k));
            }
            if (fam == 1 && (i & 1) && bl.n) {
                const uint8_t *b = bl.a[next_rand() % bl.n];
                unsigned p = b[16];
                for (unsigned k = 0; k < 16; k++) {
                    unsigned keep = p >= 8 * (k + 1) ? 8 : p > 8 * k ? p - 8 * k : 0;
                    uint8_t mask = (uint8_t)(0xff00 >> keep);
                    a[k] = (uint8_t)((b[k] & mask) | (a[k] & ~mask));
                }
            } else if (fam == 1) {
                /* mostly inside 2000::/4 where the allocations are; 1 in 8 anywhere */
                if (i % 8)
                    a[0] = (uint8_t)(0x20 | (a[0] & 0x0f));
            }
            if (fam == 1) {
                if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
                    a[2] = 1; /* not Teredo */
            }
            check(&m, db, fam == 0 ? AF_INET : AF_INET6, a, &st);
        }
        const char *f = fam == 0 ? "IPv4" : "IPv6";
        printf("# %s: %ld addresses, %ld found by libmaxminddb\n", f, st.checked, st.found);
        ok(st.found > N_ADDR / 10, "%s: a fair share of the addresses is in the data", f);
        is_int(st.mism_unknown, 0, "%s: unknown exactly where libmaxminddb finds nothing", f);
        is_int(st.mism_country, 0, "%s: country equal", f);
        is_int(st.mism_cont, 0, "%s: continent equal", f);
        is_int(st.mism_sub, 0, "%s: subdivision equal", f);
        is_int(st.mism_city, 0, "%s: city equal", f);
        is_int(st.mism_coord, 0, "%s: coordinates equal", f);
        is_int(st.mism_prefix, 0, "%s: prefix never longer than libmaxminddb's netmask", f);
    }
    free(bl.a);
    MMDB_close(&m);

    /* The country-level reduction the server keeps for continent/country routes. */
    geo_db_t *r = NULL;
    if (ok(geo_db_reduce(&r, db, 0, err, sizeof(err)) == 0, "reduce to country level: %s",
           err)) {
        printf("# reduced: %zu ranges, %u locations (full: %zu, %u)\n", geo_db_ranges(r),
               geo_location_count(r), geo_db_ranges(db), geo_location_count(db));
        ok(geo_db_ranges(r) * 4 < geo_db_ranges(db), "  under a quarter of the ranges");
        long bad = 0;
        for (long i = 0; i < 2 * N_ADDR; i++) {
            uint8_t a[16];
            uint64_t x = next_rand(), y = next_rand();
            memcpy(a, &x, 8);
            memcpy(a + 8, &y, 8);
            int fam = i & 1 ? AF_INET6 : AF_INET;
            if (fam == AF_INET6 && i % 4 == 1)
                a[0] = (uint8_t)(0x20 | (a[0] & 0x0f));
            unsigned pf, pr;
            uint32_t idf = geo_lookup(db, fam, a, &pf), idr = geo_lookup(r, fam, a, &pr);
            const geo_location_t *f = geo_location(db, idf), *l = geo_location(r, idr);
            if ((idf == 0) != (idr == 0) || strcmp(f->country, l->country) ||
                strcmp(f->continent, l->continent) || pr > pf || l->city[0] ||
                l->subdivision[0])
                bad++;
        }
        is_int(bad, 0, "  %d addresses: same continent, country and coverage, prefix never "
                       "longer", 2 * N_ADDR);
        /* what geocastd loads for a continent/country config: stripped while loading */
        geo_db_t *s = NULL;
        geo_source_t src = {.kind = GEO_SRC_MMDB, .path = path};
        if (ok(geo_db_load_opts(&s, &src, 1, GEO_LOAD_KEEP(0), err, sizeof(err)) == 0,
               "load stripped to country level: %s", err)) {
            ok(geo_same_db(r, s), "  the same table as the full load reduced, block for block "
                                  "(%zu ranges, %u locations)", geo_db_ranges(s),
               geo_location_count(s));
            geo_db_free(s);
        }
        geo_db_free(r);
    }
    geo_db_free(db);
    return done_testing();
}
