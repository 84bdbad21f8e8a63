/*
 * Location interning (src/geo/geo.c): batched geo_builder_locs() must hand out exactly the
 * ids that one-at-a-time geo_builder_loc() does, including for locations repeated inside
 * one batch, cities that differ only in length or case, and batches that make the tables
 * grow. Ids are equal exactly when the normalized locations are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo_internal.h"
#include "tap.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const continents[] = {"EU", "eu", "NA", "", "AS", "XX1"};
static const char *const countries[] = {"DE", "de", "US", "JP", "", "D3", "FR"};
static const char *const subdivisions[] = {"", "BY", "DE-BE", "CA", "us-ny", "13", "TOO-LONG1"};
static const char *const cities[] = {"Berlin", "Berlinx", "berlin", "Paris", "", "Tokyo", "New York",
                                      "Berlin\0tail"};

typedef struct {
    geo_loc_in_t in;
    char city[32];
} input_t;

static void make_input(input_t *x)
{
    memset(x, 0, sizeof(*x));
    x->in.continent = continents[rnd(6)];
    x->in.country = countries[rnd(7)];
    x->in.subdivision = subdivisions[rnd(7)];
    unsigned c = rnd(9);
    if (c < 8) {
        const char *name = cities[c];
        size_t len = c == 7 ? 11 : strlen(name); /* "Berlin\0tail": a length, not a C string */
        memcpy(x->city, name, len);
        x->in.city = x->city;
        x->in.city_len = rnd(2) || c == 7 ? len : 0; /* 0: NUL-terminated */
    }
    x->in.has_coords = rnd(4) != 0;
    x->in.lat = (double)rnd(2) - 1.0;
    x->in.lon = rnd(10) == 0 ? 999.0 : (double)rnd(2); /* out of range: no coordinates */
}

int main(void)
{
    enum { N = 20000 };
    input_t *in = malloc(N * sizeof(*in));
    uint32_t *one = malloc(N * sizeof(uint32_t)), *batched = malloc(N * sizeof(uint32_t));
    geo_loc_prep_t *prep = malloc(N * sizeof(*prep));
    for (size_t i = 0; i < N; i++)
        make_input(&in[i]);

    geo_builder_t *a = geo_builder_new(3), *b = geo_builder_new(3);
    is_int(geo_builder_count(a), 1, "a new builder holds id 0 only");
    for (size_t i = 0; i < N; i++)
        one[i] = geo_builder_loc(a, &in[i].in);

    /* batches of 1 to 4,096 entries: the tables start small, so some batches rehash */
    size_t done = 0, batches = 0;
    while (done < N) {
        size_t n = 1 + rnd(batches % 3 == 0 ? 8 : 4096);
        if (n > N - done)
            n = N - done;
        for (size_t i = 0; i < n; i++)
            geo_builder_prep(b, &in[done + i].in, &prep[i]);
        geo_builder_locs(b, prep, n, &batched[done]);
        done += n;
        batches++;
    }
    ok(batches > 5, "%zu batches", batches);

    size_t same = 0;
    for (size_t i = 0; i < N; i++)
        same += one[i] == batched[i];
    is_int(same, N, "batched ids equal one-at-a-time ids");
    is_int(geo_builder_count(b), geo_builder_count(a), "same number of locations");
    ok(geo_builder_count(a) > 100 && geo_builder_count(a) < N / 2,
       "inputs repeat: %u locations for %d inputs", geo_builder_count(a), N);

    /* an id is shared exactly by inputs that normalize to the same location */
    size_t bad = 0, pairs = 0;
    for (size_t t = 0; t < 200000; t++) {
        size_t i = rnd(N), j = rnd(N);
        geo_loc_prep_t p, q;
        geo_builder_prep(a, &in[i].in, &p);
        geo_builder_prep(a, &in[j].in, &q);
        size_t li = p.city_len, lj = q.city_len;
        bool eq = memcmp(&p.r, &q.r, sizeof(p.r)) == 0 && li == lj &&
                  (li == 0 || memcmp(p.city, q.city, li) == 0);
        pairs += eq;
        bad += eq != (one[i] == one[j]);
    }
    ok(pairs > 0, "%zu equal pairs sampled", pairs);
    is_int(bad, 0, "ids equal exactly when locations are");

    /* the same location in one batch, new to the builder: one id */
    geo_loc_in_t x = {.continent = "OC", .country = "NZ", .city = "Wellington", .has_coords = true,
                      .lat = -41.3, .lon = 174.8};
    geo_loc_prep_t two[2];
    uint32_t ids[2];
    geo_builder_prep(b, &x, &two[0]);
    geo_builder_prep(b, &x, &two[1]);
    uint32_t before = geo_builder_count(b);
    geo_builder_locs(b, two, 2, ids);
    ok(ids[0] == ids[1] && ids[0] == before, "a repeat inside one batch gets the new id (%u %u)",
       ids[0], ids[1]);
    is_int(geo_builder_count(b), before + 1, "and only one id is added");
    is_int(geo_builder_loc(b, &x), ids[0], "one-at-a-time finds it");

    /* how codes normalize: ASCII letters upper-cased, a bare subdivision code prefixed
     * with the country, anything malformed dropped */
    static const struct {
        const char *continent, *country, *sub, *want_cont, *want_ctry, *want_sub;
    } norm[] = {
        {"eu", "de", "by", "EU", "DE", "DE-BY"},
        {"NA", "US", "us-ny", "NA", "US", "US-NY"},
        {"AS", "jp", "13", "AS", "JP", "JP-13"},
        {"E", "DEU", "BY", "", "", ""},         /* wrong lengths; no country to prefix */
        {"E1", "D\xe9", "CA", "", "", ""},     /* not ASCII letters */
        {"EU", "FR", "IDF-X", "EU", "FR", "IDF-X"}, /* a dashed code is taken as it is */
        {"EU", "FR", "TOO-LONG", "EU", "FR", ""}, /* 8 characters */
        {"EU", "FR", "ABCD", "EU", "FR", ""},     /* bare, longer than 3 */
        {"EU", "FR", "A_B", "EU", "FR", ""},      /* a character codes do not have */
    };
    for (size_t i = 0; i < sizeof(norm) / sizeof(norm[0]); i++) {
        geo_loc_in_t li = {.continent = norm[i].continent, .country = norm[i].country,
                          .subdivision = norm[i].sub};
        geo_loc_prep_t p;
        geo_builder_prep(a, &li, &p);
        ok(strcmp(p.r.continent, norm[i].want_cont) == 0 &&
               strcmp(p.r.country, norm[i].want_ctry) == 0 &&
               strcmp(p.r.subdivision, norm[i].want_sub) == 0,
           "normalize %s/%s/%s: '%s' '%s' '%s'", norm[i].continent, norm[i].country, norm[i].sub,
           p.r.continent, p.r.country, p.r.subdivision);
    }

    geo_builder_free(a);
    geo_builder_free(b);
    free(in);
    free(one);
    free(batched);
    free(prep);
    return done_testing();
}
