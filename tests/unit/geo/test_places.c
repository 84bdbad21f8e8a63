/* Unit tests for src/geo/places.c: continents, countries, subdivisions, regions, distance. */
#include "tap.h"

#include "geo_test_util.h"

#include <math.h>

#include "common/err.h"
#include "geo/geo.h"

static void test_distance(void)
{
    double d = geo_distance_km(51.5074, -0.1278, 48.8566, 2.3522);
    ok(fabs(d - 343.56) < 0.5, "London-Paris %.2f km (~343.6)", d);
    d = geo_distance_km(40.7128, -74.006, 34.0522, -118.2437);
    ok(fabs(d - 3935.75) < 1, "New York-Los Angeles %.2f km (~3936)", d);
    d = geo_distance_km(0, 0, 0, 180);
    ok(fabs(d - 20015.11) < 1, "antipodes %.2f km (half the circumference)", d);
    ok(geo_distance_km(10, 20, 10, 20) == 0, "same point: 0");
    d = geo_distance_km(-33.8688, 151.2093, -36.8485, 174.7633);
    ok(fabs(d - 2156) < 10, "Sydney-Auckland %.0f km (~2156)", d);
    d = geo_distance_km(0, 179.5, 0, -179.5);
    ok(fabs(d - 111.2) < 0.5, "across the antimeridian %.1f km", d);
    ok(geo_distance_km(1, 2, 3, 4) == geo_distance_km(3, 4, 1, 2), "symmetric");
}

static void test_continents(void)
{
    static const struct {
        const char *in, *code;
    } cases[] = {
        {"nam", "NA"}, {"NAM", "NA"}, {"sam", "SA"}, {"eur", "EU"}, {"Afr", "AF"},
        {"asi", "AS"}, {"oce", "OC"}, {"ant", "AN"}, {"NA", "NA"}, {"eu", "EU"},
        {"AS", "AS"}, {"continent:oc", "OC"}, {"continent:nam", "NA"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        geo_place_t p;
        int rc = geo_place_find(NULL, cases[i].in, &p);
        ok(rc == 0 && p.kind == GEO_PLACE_CONTINENT && strcmp(p.code, cases[i].code) == 0,
           "'%s' -> continent %s", cases[i].in, cases[i].code);
    }
    geo_place_t p;
    geo_place_find(NULL, "nam", &p);
    is_str(p.name, "North America", "continent name");
    geo_location_t be = {.continent = "EU", .country = "BE", .city = ""};
    geo_place_find(NULL, "eur", &p);
    ok(geo_place_contains(&p, &be), "EU contains a BE location");
    geo_place_find(NULL, "NA", &p);
    ok(!geo_place_contains(&p, &be), "NA does not");
}

static void test_countries(void)
{
    geo_place_t p;
    int rc = geo_place_find(NULL, "us", &p);
    ok(rc == 0 && p.kind == GEO_PLACE_COUNTRY && strcmp(p.code, "US") == 0, "'us' -> country US");
    ok(fabs(p.lat - 39.8) < 0.1 && fabs(p.lon + 98.6) < 0.1, "  centroid %.2f,%.2f", p.lat, p.lon);
    is_str(p.name, "United States", "  name");
    rc = geo_place_find(NULL, "country:NA", &p);
    ok(rc == 0 && p.kind == GEO_PLACE_COUNTRY && strcmp(p.name, "Namibia") == 0,
       "'country:NA' -> Namibia (bare NA is the continent)");
    rc = geo_place_find(NULL, "JP", &p);
    ok(rc == 0 && p.lat > 30 && p.lat < 40 && p.lon > 130 && p.lon < 145, "JP centroid");
    is_int(geo_place_find(NULL, "ZZ", &p), ERR_NOTFOUND, "ZZ: not found");

    /* the whole table: every code resolves, has a valid continent and coordinates */
    int n = 0, badc = 0;
    for (char a = 'A'; a <= 'Z'; a++) {
        for (char b = 'A'; b <= 'Z'; b++) {
            char cc[3] = {a, b, 0}, cont[3];
            double lat, lon;
            if (!geo_country_info(cc, &lat, &lon, cont))
                continue;
            n++;
            geo_place_t q;
            if (fabs(lat) > 90 || fabs(lon) > 180 || !strstr("AF AN AS EU NA OC SA", cont))
                badc++;
            char name[16];
            snprintf(name, sizeof(name), "country:%s", cc);
            if (geo_place_find(NULL, name, &q) != 0 || q.lat != lat || q.lon != lon)
                badc++;
        }
    }
    ok(n >= 249, "%d countries in the table (ISO 3166-1 has 249, + XK)", n);
    is_int(badc, 0, "every country has coordinates, a continent, and resolves");
    char cont[3];
    ok(geo_country_info("be", NULL, NULL, cont) && strcmp(cont, "EU") == 0, "BE is in EU");
    ok(geo_country_info("BR", NULL, NULL, cont) && strcmp(cont, "SA") == 0, "BR is in SA");
    ok(!geo_country_info("USA", NULL, NULL, NULL), "USA is not a code");
    geo_location_t be = {.continent = "EU", .country = "BE", .city = ""};
    geo_place_find(NULL, "BE", &p);
    ok(geo_place_contains(&p, &be), "BE contains a BE location");
    geo_place_find(NULL, "NL", &p);
    ok(!geo_place_contains(&p, &be), "NL does not");
}

static void test_regions(const geo_db_t *db)
{
    is_int(geo_region_count() >= 15, 1, "%zu regions", geo_region_count());
    int bad = 0;
    for (size_t i = 0; i < geo_region_count(); i++) {
        geo_place_t p;
        if (geo_place_find(NULL, geo_region_name(i), &p) != 0 || p.kind != GEO_PLACE_REGION ||
            fabs(p.lat) > 90 || fabs(p.lon) > 180)
            bad++;
    }
    is_int(bad, 0, "every region resolves by name with a midpoint");
    ok(geo_region_name(geo_region_count()) == NULL, "region name out of range: NULL");

    static const char *const names[] = {"us-east", "us-west", "us-central", "canada",
                                        "south-america", "europe", "eu-west", "eu-central",
                                        "eu-north", "asia-pacific", "asia-east", "asia-south",
                                        "middle-east", "africa", "oceania"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        geo_place_t p;
        ok(geo_place_find(NULL, names[i], &p) == 0 && p.kind == GEO_PLACE_REGION,
           "region %s", names[i]);
    }

    unsigned pl;
    const geo_location_t *ny = tloc(db, "1.2.3.5", &pl), *la = tloc(db, "1.2.9.9", &pl),
                         *bru = tloc(db, "1.2.3.200", &pl), *tokyo = tloc(db, "5.8.1.1", &pl),
                         *unk = geo_location(db, 0);
    is_str(ny->subdivision, "US-NY", "(test data: NY)");
    geo_place_t p;
    geo_place_find(NULL, "US-EAST", &p);
    ok(geo_place_contains(&p, ny), "us-east contains US-NY");
    ok(!geo_place_contains(&p, la), "us-east does not contain US-CA");
    geo_place_find(NULL, "us-west", &p);
    ok(geo_place_contains(&p, la), "us-west contains US-CA");
    ok(!geo_place_contains(&p, ny), "us-west does not contain US-NY");
    geo_place_find(NULL, "region:eu-west", &p);
    ok(geo_place_contains(&p, bru), "eu-west contains BE");
    geo_place_find(NULL, "europe", &p);
    ok(geo_place_contains(&p, bru), "europe (continent member) contains BE");
    ok(!geo_place_contains(&p, tokyo), "europe does not contain JP");
    geo_place_find(NULL, "asia-pacific", &p);
    ok(geo_place_contains(&p, tokyo), "asia-pacific contains JP");
    ok(!geo_place_contains(&p, unk), "the unknown location is in no region");
    geo_place_find(NULL, "eu", &p);
    ok(!geo_place_contains(&p, unk), "... and no continent");
}

static void test_subdivisions(const geo_db_t *db)
{
    geo_place_t p;
    int rc = geo_place_find(db, "us-ca", &p);
    ok(rc == 0 && p.kind == GEO_PLACE_SUBDIVISION && strcmp(p.code, "US-CA") == 0,
       "'us-ca' -> subdivision US-CA (from the data)");
    /* mean of the unit vectors of LA, SF and San Jose */
    ok(p.lat > 36.0 && p.lat < 36.6 && p.lon > -121.0 && p.lon < -120.4,
       "  midpoint of its 3 locations: %.3f,%.3f", p.lat, p.lon);
    unsigned pl;
    ok(geo_place_contains(&p, tloc(db, "1.2.5.1", &pl)), "  contains SF");
    ok(!geo_place_contains(&p, tloc(db, "1.2.3.5", &pl)), "  not NY");
    rc = geo_place_find(db, "subdivision:JP-13", &p);
    ok(rc == 0 && fabs(p.lat - 35.6895) < 1e-6 && fabs(p.lon - 139.6917) < 1e-6,
       "JP-13 with one location: its coordinates");
    is_int(geo_place_find(db, "US-ZZ", &p), ERR_NOTFOUND, "US-ZZ not in the data");
    is_int(geo_place_find(NULL, "US-CA", &p), ERR_NOTFOUND, "no db: no subdivisions");
    is_int(geo_place_find(db, "", &p), ERR_INVAL, "empty name: ERR_INVAL");
    is_int(geo_place_find(db, "planet:earth", &p), ERR_INVAL, "unknown kind: ERR_INVAL");
    is_int(geo_place_find(db, "xx-yy-zz", &p), ERR_NOTFOUND, "xx-yy-zz: not found");
    is_int(geo_place_find(db, "mars", &p), ERR_NOTFOUND, "mars: not found");
}

int main(void)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/geo-city.mmdb", geo_test_data_dir());
    char err[512];
    geo_db_t *db = NULL;
    int rc = geo_db_load_mmdb(&db, path, err, sizeof(err));
    if (!ok(rc == 0, "load %s", path)) {
        printf("# %s\n", err);
        return done_testing();
    }
    test_distance();
    test_continents();
    test_countries();
    test_regions(db);
    test_subdivisions(db);
    geo_db_free(db);
    return done_testing();
}
