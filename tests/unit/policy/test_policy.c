/* The filter chain and the compiled tables, on the small generated City database. */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/err.h"
#include "conf/conf.h"
#include "dns/rrtype.h"
#include "geo/geo_test_util.h"
#include "policy/policy.h"
#include "policy/policy_internal.h"
#include "tap.h"
#include "zone/zone.h"

static int warnings;
static void count_warn(void *ctx, const char *msg)
{
    (void)ctx;
    printf("# warning: %s\n", msg);
    warnings++;
}

static const char yaml[] =
    "boundaries:\n"
    "  Americas: [nam, sam]\n"
    "  USA: [US]\n"
    "  EUR: [EU]\n"
    "  office: [1.2.3.128/25, \"2a00:1000:1::/48\"]\n"
    "  LA: [\"US/Los Angeles\"]\n"
    "zones:\n"
    "  example.com:\n"
    "    file: /nonexistent\n"
    "    routes:\n"
    "      union: { A: { answers: [ {value: 192.0.2.1, boundary: Americas},\n"
    "                               {value: 192.0.2.2, boundary: USA},\n"
    "                               {value: 192.0.2.3} ] } }\n"
    "      ipgeo: { A: { answers: [ {value: 192.0.2.1, boundary: office},\n"
    "                               {value: 192.0.2.2, boundary: EUR},\n"
    "                               {value: 192.0.2.3} ] } }\n"
    "      nofb: { A: { answers: [ {value: 192.0.2.1, boundary: USA} ] } }\n"
    "      city: { A: { answers: [ {value: 192.0.2.1, boundary: LA}, {value: 192.0.2.9} ] } }\n"
    "      near: { A: { closest: {select: 1}, answers: [\n"
    "                  {value: 192.0.2.1, location: [34.05, -118.24]},\n"
    "                  {value: 192.0.2.2, location: [40.71, -74.0]},\n"
    "                  {value: 192.0.2.3, location: JP} ] } }\n"
    "      nearall: { A: { closest: {select: 10}, answers: [\n"
    "                  {value: 192.0.2.1, location: [34.05, -118.24]},\n"
    "                  {value: 192.0.2.2, location: [40.71, -74.0]},\n"
    "                  {value: 192.0.2.3, location: JP} ] } }\n"
    "      tie: { A: { closest: true, answers: [\n"
    "                  {value: 192.0.2.1, location: [10, 10]},\n"
    "                  {value: 192.0.2.2, location: [10, 10]},\n"
    "                  {value: 192.0.2.3, location: [0, 0]} ] } }\n"
    "      same: { A: { answers: [192.0.2.1, 192.0.2.2] } }\n"
    "      sel: { A: { select: 2, answers: [192.0.2.1, 192.0.2.2, 192.0.2.3] } }\n"
    "      wt: { A: { select: 1, answers: [ {value: 192.0.2.1, weight: 1},\n"
    "                                       {value: 192.0.2.2, weight: 3} ] } }\n"
    "      mx: { MX: { answers: [ {value: \"10 mail\", boundary: USA}, \"20 other.example.net.\" ] } }\n";

static pol_set_t *set;

static pol_result_t decide(const char *route, const char *addr)
{
    uint8_t owner[DNS_NAME_MAX], a[16];
    char name[128];
    snprintf(name, sizeof(name), "%s.example.com.", route);
    dns_dname_from_text(name, strlen(name), NULL, owner);
    uint16_t type = strcmp(route, "mx") ? DNS_T_A : DNS_T_MX;
    const pol_route_t *r = pol_set_find(set, owner, type);
    pol_result_t res = { 0 };
    int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (!r || inet_pton(fam, addr, a) != 1) {
        printf("# no route %s or bad address %s\n", route, addr);
        return res;
    }
    pol_route_decide(r, fam, a, &res);
    return res;
}

/* The decision as a string of answer numbers (1-based), e.g. "12". */
static const char *list(const char *route, const char *addr, unsigned *scope)
{
    static char buf[70];
    pol_result_t r = decide(route, addr);
    size_t o = 0;
    for (unsigned i = 0; r.d && i < r.d->n; i++)
        buf[o++] = (char)('1' + r.d->idx[i]);
    buf[o] = 0;
    if (scope)
        *scope = r.scope;
    return buf;
}

/* The scope of an address in a run, against the definition: the widest aligned block
 * around the address that stays inside the run. */
static unsigned scope_slow(u128 a, u128 lo, u128 hi, unsigned width)
{
    u128 ones = width == 32 ? 0xFFFFFFFFu : ~(u128)0;
    for (unsigned p = 0; p <= width; p++) {
        u128 host = p == width ? 0 : ones >> p;
        if ((a & ~host) >= lo && (a | host) <= hi)
            return p;
    }
    return width + 1; /* a outside [lo, hi] */
}

static void test_scope(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    unsigned bad32 = 0, bad128 = 0;
    for (int i = 0; i < 200000; i++) {
        /* xorshift; mask out random low bits so aligned bounds are common */
        u128 v[3];
        for (int k = 0; k < 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u128 r = (u128)x << 64 | (x * 0x2545F4914F6CDD1Dull);
            unsigned clear = (unsigned)(x >> 57); /* 0..127 */
            v[k] = r & (~(u128)0 << clear);
            if (k == 2 && (x & 1))
                v[k] |= ~(~(u128)0 << clear); /* a run ending on all ones */
        }
        /* sort so that lo <= a <= hi */
        for (int k = 0; k < 2; k++)
            for (int m = 0; m < 2 - k; m++)
                if (v[m] > v[m + 1]) {
                    u128 t = v[m];
                    v[m] = v[m + 1];
                    v[m + 1] = t;
                }
        if (pol_scope128(v[1], v[0], v[2]) != scope_slow(v[1], v[0], v[2], 128))
            bad128++;
        uint32_t w[3] = { (uint32_t)(v[0] >> 96), (uint32_t)(v[1] >> 96), (uint32_t)(v[2] >> 96) };
        if (pol_scope32(w[1], w[0], w[2]) != scope_slow(w[1], w[0], w[2], 32))
            bad32++;
    }
    is_int(bad32, 0, "IPv4 scope from the run's bounds agrees with the definition (200,000 runs)");
    is_int(bad128, 0, "IPv6 scope from the run's bounds agrees with the definition (200,000 runs)");
    is_int(pol_scope32(5, 0, UINT32_MAX), 0, "the whole space: scope 0");
    is_int(pol_scope32(0x01020380, 0x01020380, 0x010203FF), 25, "a run that is one /25");
    is_int(pol_scope32(0x01020381, 0x01020380, 0x01020400), 25, "...one address longer: still /25");
    is_int(pol_scope32(0x01020400, 0x01020380, 0x01020400), 32, "...and its last address is a /32");
    is_int(pol_scope128(7, 7, 7), 128, "a one-address IPv6 run: /128");
}

/* A name and type routed twice is an error naming the repeat and the first declaration
 * (checked by sorting, so it stays cheap with thousands of routes). */
static void test_duplicate_routes(void)
{
    char err[600];
    struct {
        const char *y, *want;
    } cases[] = {
        { "zones:\n  a.:\n    file: f\n    routes:\n      w: {A: {answers: [1.2.3.4]}}\n"
          "      x: {A: {answers: [1.2.3.4]}}\n      W: {A: {answers: [1.2.3.5]}}\n",
          "t.yaml:7: zones.a..routes.W.A: route declared twice (also at line 5)" },
        { "zones:\n  a.:\n    file: f\n    routes:\n      w: {A: {answers: [1.2.3.4]},\n"
          "          AAAA: {answers: [\"::1\"]}}\n      v: {AAAA: {answers: [\"::1\"]}}\n"
          "      V: {AAAA: {answers: [\"::2\"]}}\n      u: {A: {answers: [1.2.3.4]}}\n",
          "t.yaml:8: zones.a..routes.V.AAAA: route declared twice (also at line 7)" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        conf_t *c = conf_load_buffer(cases[i].y, strlen(cases[i].y), "t.yaml", ".", err, sizeof(err));
        ok(!c && !strcmp(err, cases[i].want), "duplicate route: %s (%s)", cases[i].want, c ? "loaded" : err);
        conf_free(c);
    }
    /* 5,000 routes, distinct but for one pair far apart */
    size_t cap = 5000 * 60 + 200, o = 0;
    char *y = malloc(cap);
    o += (size_t)snprintf(y + o, cap - o, "zones:\n  a.:\n    file: f\n    routes:\n");
    for (int i = 0; i < 5000; i++)
        o += (size_t)snprintf(y + o, cap - o, "      n%d: {A: {answers: [1.2.3.4]}}\n", i == 4999 ? 17 : i);
    conf_t *c = conf_load_buffer(y, o, "t.yaml", ".", err, sizeof(err));
    ok(!c && strstr(err, "t.yaml:5004: zones.a..routes.n17.A: route declared twice (also at line 22)"),
       "a repeat among 5,000 routes is found (%s)", c ? "loaded" : err);
    conf_free(c);
    o = 0;
    o += (size_t)snprintf(y + o, cap - o, "zones:\n  a.:\n    file: f\n    routes:\n");
    for (int i = 0; i < 5000; i++)
        o += (size_t)snprintf(y + o, cap - o, "      n%d: {A: {answers: [1.2.3.4]}}\n", i);
    c = conf_load_buffer(y, o, "t.yaml", ".", err, sizeof(err));
    ok(c && c->nzones == 1 && c->zones[0].nroutes == 5000 && c->zones[0].routes[4999].line == 5004,
       "5,000 distinct routes load in order");
    conf_free(c);
    free(y);
}

static bool tables_equal(const pol_policy_t *a, const pol_policy_t *b)
{
    if (a->ndec != b->ndec || a->uniform != b->uniform || a->t4.n != b->t4.n || a->t6.n != b->t6.n)
        return false;
    for (uint32_t i = 0; i < a->ndec; i++)
        if (a->dec[i]->n != b->dec[i]->n ||
            memcmp(a->dec[i]->idx, b->dec[i]->idx, a->dec[i]->n * sizeof(a->dec[i]->idx[0])))
            return false;
    return (!a->t4.n || (!memcmp(a->t4.start4, b->t4.start4, a->t4.n * sizeof(uint32_t)) &&
                         !memcmp(a->t4.dec, b->t4.dec, a->t4.n * sizeof(uint32_t)))) &&
           (!a->t6.n || (!memcmp(a->t6.start6, b->t6.start6, a->t6.n * sizeof(u128)) &&
                         !memcmp(a->t6.dec, b->t6.dec, a->t6.n * sizeof(uint32_t))));
}

/* From the second policy on the location alone, pol_set_build() compiles from location
 * runs collected once instead of walking the GeoIP tree: the tables must be the same. */
static void test_loc_runs(const geo_db_t *geo)
{
    char err[600];
    const char *routes[] = {
        "      u: { A: { answers: [ {value: 192.0.2.1, boundary: USA}, {value: 192.0.2.3} ] } }\n",
        "      e: { A: { answers: [ {value: 192.0.2.1, boundary: EUR}, {value: 192.0.2.2, boundary: USA},"
        " {value: 192.0.2.3} ] } }\n",
        "      n: { A: { closest: true, answers: [ {value: 192.0.2.1, location: [34.05, -118.24]},"
        " {value: 192.0.2.2, location: JP} ] } }\n",
        "      c: { A: { answers: [ {value: 192.0.2.1, boundary: LA}, {value: 192.0.2.2} ] } }\n",
    };
    const char *head = "boundaries: {USA: [US], EUR: [EU], LA: [\"US/Los Angeles\"]}\n"
                       "zones:\n  example.com:\n    file: /nonexistent\n    routes:\n";
    char all[2000];
    snprintf(all, sizeof(all), "%s%s%s%s%s", head, routes[0], routes[1], routes[2], routes[3]);
    conf_t *ca = conf_load_buffer(all, strlen(all), "t.yaml", ".", err, sizeof(err));
    pol_set_t *sa = NULL;
    ok(ca && pol_set_build(&sa, ca, geo, NULL, NULL, err, sizeof(err)) == 0 && sa->npolicies == 4,
       "four policies on the location alone");
    for (size_t i = 1; sa && i < 4; i++) {
        char one[1000];
        snprintf(one, sizeof(one), "%s%s", head, routes[i]);
        conf_t *c1 = conf_load_buffer(one, strlen(one), "t.yaml", ".", err, sizeof(err));
        pol_set_t *s1 = NULL;
        if (c1 && pol_set_build(&s1, c1, geo, NULL, NULL, err, sizeof(err)) == 0)
            ok(tables_equal(sa->routes[i].policy, s1->routes[0].policy),
               "policy %zu from location runs equals the one from the GeoIP walk (%zu runs)", i,
               s1->routes[0].policy->t4.n + s1->routes[0].policy->t6.n);
        else
            ok(0, "route %zu alone compiles (%s)", i, err);
        pol_set_free(s1);
        conf_free(c1);
    }
    ok(sa && !sa->loc_runs, "the location runs are freed after the build");
    /* A set with one such policy never collects them, not even on a health change. */
    char one[1000];
    snprintf(one, sizeof(one), "%s%s", head, routes[1]);
    conf_t *c1 = conf_load_buffer(one, strlen(one), "t.yaml", ".", err, sizeof(err));
    pol_set_t *s1 = NULL;
    if (c1 && pol_set_build(&s1, c1, geo, NULL, NULL, err, sizeof(err)) == 0) {
        pol_route_set_down(s1, &s1->routes[0], 1);
        pol_route_set_down(s1, &s1->routes[0], 2);
        ok(!s1->loc_runs && s1->npolicies == 3, "health changes walk the GeoIP tree (%zu tables)",
           s1->npolicies);
    } else {
        ok(0, "route 1 alone compiles (%s)", err);
    }
    pol_set_free(s1);
    conf_free(c1);
    pol_set_free(sa);
    conf_free(ca);
}

/* A health state's table is derived from the all-up table (no closest, no select): it
 * must equal the one compiled from the GeoIP walk, for every mask of down answers. */
static void test_derived_health(const geo_db_t *geo)
{
    char err[600];
    conf_t *c = conf_load_buffer(yaml, strlen(yaml), "t.yaml", ".", err, sizeof(err));
    pol_set_t *a = NULL, *w = NULL;
    if (!c || pol_set_build(&a, c, geo, NULL, NULL, err, sizeof(err)) < 0 ||
        pol_set_build(&w, c, geo, NULL, NULL, err, sizeof(err)) < 0) {
        ok(0, "sets compile (%s)", err);
        return;
    }
    w->walk_only = true;
    const char *names[] = { "union", "ipgeo", "nofb", "city", "same", "mx" };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        const pol_route_t *ra = NULL, *rw = NULL;
        for (size_t j = 0; j < a->nroutes; j++)
            if (!strcmp(a->routes[j].conf->name, names[i]))
                ra = &a->routes[j], rw = &w->routes[j];
        unsigned bad = 0, derived = 0;
        size_t before = a->npolicies;
        for (uint64_t m = 1; ra && m < ((uint64_t)1 << ra->nanswers); m++) {
            pol_route_set_down(a, ra, m);
            pol_route_set_down(w, rw, m);
            bad += !tables_equal(pol_route_policy(ra), pol_route_policy(rw));
        }
        derived = (unsigned)(a->npolicies - before);
        ok(ra && bad == 0 && derived > 0,
           "%s: %u health states derived from the all-up table equal the GeoIP walk's", names[i],
           derived);
        if (ra)
            pol_route_set_down(a, ra, 0), pol_route_set_down(w, rw, 0);
    }
    pol_set_free(a);
    pol_set_free(w);
    conf_free(c);
}

/* Write text to a new temporary file; returns its path (static buffer per slot). */
static const char *tmpfile_with(int slot, const char *text)
{
    static char paths[4][64];
    snprintf(paths[slot], sizeof(paths[slot]), "/tmp/geocast-test-nets-XXXXXX");
    int fd = mkstemp(paths[slot]);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        return "/nonexistent";
    fputs(text, f);
    fclose(f);
    return paths[slot];
}

/* boundaries.<name>: { networks_file: FILE }: one network per line, '#' comments, errors
 * as FILE:LINE. */
static void test_networks_file(const geo_db_t *geo)
{
    char err[600], y[1200];
    const char *nets = tmpfile_with(0, "# customers\n"
                                       "\n"
                                       "1.2.3.128/25   # Brussels office\n"
                                       "  5.8.0.0/16\n"
                                       "2a00:1000:1::/48\r\n"
                                       "\t9.9.9.9/32\n");
    snprintf(y, sizeof(y),
             "boundaries:\n  big: { networks_file: %s }\n  USA: [US]\n"
             "zones:\n  example.com:\n    file: /nonexistent\n    routes:\n"
             "      a: { A: { answers: [ {value: 192.0.2.1, boundary: big}, {value: 192.0.2.3} ] } }\n"
             "      b: { A: { answers: [ {value: 192.0.2.1, boundary: big},\n"
             "                           {value: 192.0.2.2, boundary: USA}, {value: 192.0.2.3} ] } }\n",
             nets);
    conf_t *c = conf_load_buffer(y, strlen(y), "t.yaml", ".", err, sizeof(err));
    ok(c && c->nboundaries == 2 && c->boundaries[0].networks_file &&
           !strcmp(c->boundaries[0].networks_file, nets) && c->boundaries[0].nentries == 0,
       "networks_file is kept as a path (%s)", c ? "" : err);
    pol_set_t *s = NULL;
    warnings = 0;
    is_int(c ? pol_set_build(&s, c, geo, count_warn, NULL, err, sizeof(err)) : -1, 0,
           "a boundary from a networks file compiles (%s)", s ? "" : err);
    is_int(warnings, 0, "no warning");
    if (s) {
        pol_set_t *keep = set;
        set = s;
        unsigned sc;
        is_str(list("a", "1.2.3.129", &sc), "1", "an address in a listed network matches");
        is_int(sc, 25, "...with the network's scope");
        is_str(list("a", "1.2.3.1", NULL), "2", "its neighbour outside does not");
        is_str(list("a", "5.8.200.1", NULL), "1", "indented line: 5.8.0.0/16");
        is_str(list("a", "9.9.9.9", &sc), "1", "tab-indented /32");
        is_int(sc, 32, "...scope /32");
        is_str(list("a", "2a00:1000:1::5", NULL), "1", "IPv6 line with CRLF");
        is_str(list("a", "2a00:1000:2::5", NULL), "2", "IPv6 outside: fallback");
        is_str(list("b", "1.2.3.1", NULL), "2", "file and geo boundaries together: US client");
        is_str(list("b", "9.9.9.9", NULL), "1", "...listed client");
        set = keep;
        pol_set_free(s);
    }
    conf_free(c);

    struct {
        const char *file, *want_fmt;
    } bad[] = {
        { "1.2.3.0/24\n# ok\nUS\n", "%s:3: boundaries.big: bad network 'US'" },
        { "\n\n1.2.3.0/24 1.2.4.0/24\n", "%s:3: boundaries.big: bad network '1.2.3.0/24 1.2.4.0/24'" },
        { "1.2.3.4/24\n", "%s:1: boundaries.big: network '1.2.3.4/24' has bits set beyond /24" },
        { "10.0.0.0/8\n2001:db8::/129\n", "%s:2: boundaries.big: bad network '2001:db8::/129'" },
        { "1.2.3.0/+24\n", "%s:1: boundaries.big: bad network '1.2.3.0/+24'" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        const char *f = tmpfile_with(1, bad[i].file);
        char want[300];
        snprintf(want, sizeof(want), bad[i].want_fmt, f);
        snprintf(y, sizeof(y), "boundaries: {big: {networks_file: %s}}\nzones: {a.: {file: f}}\n", f);
        c = conf_load_buffer(y, strlen(y), "t.yaml", ".", err, sizeof(err));
        s = NULL;
        int rc = c ? pol_set_build(&s, c, geo, NULL, NULL, err, sizeof(err)) : -1;
        ok(rc < 0 && !strcmp(err, want), "networks file rejected: %s (%s)", want, err);
        pol_set_free(s);
        conf_free(c);
        unlink(f);
    }
    /* a missing file names the config line and key */
    snprintf(y, sizeof(y), "boundaries:\n  big: {networks_file: /nonexistent/nets.txt}\nzones: {a.: {file: f}}\n");
    c = conf_load_buffer(y, strlen(y), "t.yaml", ".", err, sizeof(err));
    s = NULL;
    ok(c && pol_set_build(&s, c, geo, NULL, NULL, err, sizeof(err)) < 0 &&
           strstr(err, "t.yaml:2: boundaries.big.networks_file: cannot open /nonexistent/nets.txt"),
       "missing networks file (%s)", err);
    conf_free(c);
    /* a device or a pipe is refused (it could be endless) */
    snprintf(y, sizeof(y), "boundaries:\n  big: {networks_file: /dev/zero}\nzones: {a.: {file: f}}\n");
    c = conf_load_buffer(y, strlen(y), "t.yaml", ".", err, sizeof(err));
    s = NULL;
    ok(c && pol_set_build(&s, c, geo, NULL, NULL, err, sizeof(err)) < 0 &&
           strstr(err, "t.yaml:2: boundaries.big.networks_file: /dev/zero is not a regular file"),
       "a device as networks file is refused (%s)", err);
    conf_free(c);
    /* an empty file is accepted with a warning */
    const char *empty = tmpfile_with(1, "# nothing yet\n\n");
    snprintf(y, sizeof(y), "boundaries: {big: {networks_file: %s}}\nzones: {a.: {file: f}}\n", empty);
    c = conf_load_buffer(y, strlen(y), "t.yaml", ".", err, sizeof(err));
    s = NULL;
    warnings = 0;
    ok(c && pol_set_build(&s, c, geo, count_warn, NULL, err, sizeof(err)) == 0 && warnings == 1,
       "a networks file without networks loads, with a warning");
    pol_set_free(s);
    conf_free(c);
    unlink(empty);
    /* config errors */
    const char *badconf[][2] = {
        { "boundaries: {big: {networks_file: x, extra: 1}}\nzones: {a.: {file: f}}\n",
          "t.yaml:1: boundaries.big.extra: unknown key" },
        { "boundaries: {big: {}}\nzones: {a.: {file: f}}\n", "boundaries.big: needs 'networks_file'" },
        { "boundaries: {big: {networks_file: [a]}}\nzones: {a.: {file: f}}\n",
          "boundaries.big.networks_file: expected a file name" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(badconf); i++) {
        c = conf_load_buffer(badconf[i][0], strlen(badconf[i][0]), "t.yaml", ".", err, sizeof(err));
        ok(!c && strstr(err, badconf[i][1]), "config rejected: %s (%s)", badconf[i][1], err);
        conf_free(c);
    }
    /* relative to the config file's directory */
    const char *rel = "boundaries: {big: {networks_file: n.txt}}\nzones: {a.: {file: f}}\n";
    c = conf_load_buffer(rel, strlen(rel), "t.yaml", "/etc/geocast", err, sizeof(err));
    ok(c && !strcmp(c->boundaries[0].networks_file, "/etc/geocast/n.txt"),
       "a relative networks_file is resolved against the config's directory");
    conf_free(c);
    unlink(nets);
}

/* The table search with its first-level index against a linear scan of the runs: every
 * run start, its neighbours, every bucket edge, and random addresses, both families. */
static size_t run_of(const pol_table_t *t, bool v4, u128 a)
{
    size_t i = 0;
    while (i + 1 < t->n && (v4 ? (u128)t->start4[i + 1] : t->start6[i + 1]) <= a)
        i++;
    return i;
}

static unsigned index_check(const pol_route_t *r, bool v4, u128 a)
{
    const pol_policy_t *p = pol_route_policy(r);
    const pol_table_t *t = v4 ? &p->t4 : &p->t6;
    size_t i = run_of(t, v4, a);
    if (t->dec[i] == POL_DEC_V4ALIAS)
        return 0; /* decided by the IPv4 table, checked on its own */
    u128 lo = v4 ? t->start4[i] : t->start6[i];
    u128 hi = i + 1 < t->n ? (v4 ? (u128)t->start4[i + 1] : t->start6[i + 1]) - 1
                           : (v4 ? 0xFFFFFFFFu : ~(u128)0);
    uint8_t b[16] = { 0 };
    int nb = v4 ? 4 : 16;
    for (int k = 0; k < nb; k++)
        b[k] = (uint8_t)(a >> (8 * (nb - 1 - k)));
    pol_result_t res;
    pol_route_decide(r, v4 ? AF_INET : AF_INET6, b, &res);
    return res.d == p->dec[t->dec[i]] && res.scope == scope_slow(a, lo, hi, v4 ? 32 : 128) ? 0 : 1;
}

static void test_index(const geo_db_t *geo)
{
    /* 3,000 scattered networks: enough runs for an index in both families */
    static char nets[200000];
    size_t o = 0;
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (i % 3)
            o += (size_t)snprintf(nets + o, sizeof(nets) - o, "%u.%u.%u.0/%u\n",
                                  (unsigned)(x >> 56), (unsigned)(x >> 48) & 255,
                                  (unsigned)(x >> 40) & 255 & ~15u, i % 2 ? 24 : 20);
        else
            o += (size_t)snprintf(nets + o, sizeof(nets) - o, "2%03x:%x:%x::/48\n",
                                  (unsigned)(x >> 52) & 0xFFF, (unsigned)(x >> 32) & 0xFFFF,
                                  (unsigned)(x >> 16) & 0xFFFF);
    }
    const char *path = tmpfile_with(2, nets);
    char err[600], y[1000];
    snprintf(y, sizeof(y),
             "boundaries:\n  big: { networks_file: %s }\n  USA: [US]\n"
             "zones:\n  example.com:\n    file: /nonexistent\n    routes:\n"
             "      a: { A: { answers: [ {value: 192.0.2.1, boundary: big},\n"
             "                           {value: 192.0.2.2, boundary: USA}, {value: 192.0.2.3} ] } }\n",
             path);
    conf_t *c = conf_load_buffer(y, strlen(y), "t.yaml", ".", err, sizeof(err));
    pol_set_t *s = NULL;
    is_int(c ? pol_set_build(&s, c, geo, NULL, NULL, err, sizeof(err)) : -1, 0,
           "3,000 networks compile (%s)", s ? "" : err);
    if (s) {
        const pol_route_t *r = pol_set_route(s, 0);
        const pol_policy_t *p = pol_route_policy(r);
        ok(p->t4.ibits > 0 && p->t6.ibits > 0 && p->t4.ibits <= 16,
           "both tables have a first-level index (%zu runs: %u bits; %zu runs: %u bits)",
           p->t4.n, p->t4.ibits, p->t6.n, p->t6.ibits);
        unsigned bad = 0, tried = 0;
        for (int f = 0; f < 2; f++) {
            bool v4 = f == 0;
            const pol_table_t *t = v4 ? &p->t4 : &p->t6;
            unsigned w = v4 ? 32 : 128;
            for (size_t i = 0; i < t->n; i++) {
                u128 st = v4 ? t->start4[i] : t->start6[i];
                bad += index_check(r, v4, st);
                if (st)
                    bad += index_check(r, v4, st - 1);
                bad += index_check(r, v4, st + 1);
                tried += 3;
            }
            for (u128 k = 0; k < ((u128)1 << t->ibits); k++) {
                u128 edge = k << (w - t->ibits);
                bad += index_check(r, v4, edge);
                if (edge)
                    bad += index_check(r, v4, edge - 1);
                tried += 2;
            }
            for (int i = 0; i < 20000; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                u128 a = v4 ? (u128)(uint32_t)x : ((u128)x << 64 | (x * 0x9E3779B97F4A7C15ull));
                if (!v4 && i % 2) /* inside 2000::/4, where the networks are */
                    a = (a >> 4) | (u128)2 << 124;
                bad += index_check(r, v4, a);
                tried++;
            }
        }
        is_int(bad, 0, "indexed search equals a linear scan of the runs (%u addresses)", tried);
        pol_set_free(s);
    }
    conf_free(c);
    unlink(path);
}

int main(void)
{
    (void)tloc;
    const char *dir = geo_test_data_dir();
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/geo-city.mmdb", dir);
    geo_db_t *geo = NULL;
    if (geo_db_load_mmdb(&geo, path, err, sizeof(err)) < 0) {
        printf("Bail out! %s\n", err);
        return 1;
    }
    conf_t *conf = conf_load_buffer(yaml, strlen(yaml), "t.yaml", ".", err, sizeof(err));
    if (!conf) {
        printf("Bail out! %s\n", err);
        return 1;
    }
    is_int(pol_set_build(&set, conf, geo, count_warn, NULL, err, sizeof(err)), 0, "routes compile");
    if (!set) {
        printf("# %s\n", err);
        return done_testing();
    }
    is_int(warnings, 1, "warned about the route without fallback (nofb)");
    ok(pol_set_policy_count(set) < pol_set_route_count(set), "routes with the same policy share a table (%zu tables, %zu routes)",
       pol_set_policy_count(set), pol_set_route_count(set));

    unsigned sc;
    /* boundaries: union, fallback */
    is_str(list("union", "1.2.3.1", NULL), "12", "US client: Americas and USA answers (union)");
    is_str(list("union", "1.2.3.129", NULL), "3", "Belgian client: fallback");
    is_str(list("union", "5.8.0.1", NULL), "3", "Japanese client: fallback");
    is_str(list("union", "9.9.9.9", NULL), "3", "address not in the data: fallback");
    is_str(list("union", "2600:1000::1", NULL), "12", "IPv6 US client");
    is_str(list("union", "::ffff:1.2.3.1", NULL), "12", "IPv4-mapped IPv6 follows the IPv4 data");

    /* IP and geo boundaries together */
    is_str(list("ipgeo", "1.2.3.129", NULL), "12", "office network in Europe: both answers");
    is_str(list("ipgeo", "5.9.0.1", NULL), "2", "Swiss client: geo only");
    is_str(list("ipgeo", "1.2.3.1", NULL), "3", "US client: fallback");
    is_str(list("ipgeo", "2a00:1000:1::5", NULL), "12", "IPv6 office network (also in EU)");
    is_str(list("ipgeo", "2a00:1000:2::5", NULL), "2", "IPv6 London: EU only");

    /* no fallback: NODATA */
    is_str(list("nofb", "5.8.0.1", &sc), "", "no match and no fallback: nothing");
    ok(sc > 0, "...and that empty answer is location-dependent (scope /%u)", sc);

    /* cities */
    is_str(list("city", "1.2.4.7", NULL), "1", "Los Angeles client matches the city boundary");
    is_str(list("city", "1.2.5.7", NULL), "2", "San Francisco client does not");

    /* closest */
    is_str(list("near", "1.2.5.1", NULL), "1", "San Francisco: Los Angeles answer is nearest");
    is_str(list("near", "1.2.3.1", NULL), "2", "New York: New York answer");
    is_str(list("near", "5.8.0.1", NULL), "3", "Tokyo: JP answer");
    is_str(list("near", "1.2.3.129", NULL), "2", "Brussels: New York is nearer than LA and Tokyo");
    is_str(list("nearall", "5.9.0.1", NULL), "231", "Zurich: all three, nearest first (select > list)");
    is_str(list("near", "5.6.0.1", NULL), "1", "client without coordinates: configured order");
    is_str(list("near", "9.9.9.9", NULL), "1", "unknown client: configured order");
    is_str(list("tie", "1.2.3.1", NULL), "312", "equal distances keep configured order (1 before 2)");

    /* haversine */
    double d = geo_distance_km(51.5074, -0.1278, 48.8566, 2.3522);
    ok(fabs(d - 343.6) < 2, "London-Paris %.1f km", d);

    /* scope */
    list("union", "1.2.3.1", &sc);
    is_int(sc, 25, "scope: the US /25 next to the Belgian /25");
    list("union", "1.2.4.1", &sc);
    is_int(sc, 22, "scope: 1.2.4.0/22 is all US (the widest block clear of the Belgian /25)");
    list("same", "1.2.3.1", &sc);
    is_int(sc, 0, "a route with one answer list for everyone has scope 0");
    is_str(list("same", "5.8.0.1", NULL), "12", "...and returns all its answers");
    is_str(list("sel", "1.2.3.1", NULL), "12", "select 2 keeps the first two");

    /* weights: over 4000 draws answer 2 (weight 3) comes first about 3/4 of the time */
    const pol_route_t *wt = pol_set_find(set, (const uint8_t *)"\2wt\7example\3com", DNS_T_A);
    pol_result_t res = decide("wt", "1.2.3.1");
    uint64_t rng = 12345;
    int second = 0, n1 = 0;
    for (int i = 0; i < 4000; i++) {
        uint16_t out[4];
        unsigned n = pol_route_order(wt, &res, &rng, out, 4);
        n1 += n == 1;
        second += out[0] == 1;
    }
    is_int(n1, 4000, "weighted route: select 1 after the shuffle");
    ok(second > 2700 && second < 3300, "weight 3 of 4 wins %d of 4000", second);

    /* MX values are parsed relative to the zone */
    const pol_route_t *mx = pol_set_find(set, (const uint8_t *)"\2mx\7example\3com", DNS_T_MX);
    ok(mx && zone_rd_len(mx->rdata[0]) == 2 + 18 &&
           !memcmp(zone_rd_data(mx->rdata[0]) + 2, "\4mail\7example\3com", 18),
       "MX value 'mail' is made absolute with the zone origin");

    /* the up step: down answers leave, fallback when no match is up, fail open */
    const pol_route_t *un = pol_set_find(set, (const uint8_t *)"\5union\7example\3com", DNS_T_A);
    const pol_route_t *ne = pol_set_find(set, (const uint8_t *)"\4near\7example\3com", DNS_T_A);
    size_t before = pol_set_policy_count(set);
    is_int(pol_route_set_down(set, un, 1), 0, "mark union's answer 1 down");
    is_str(list("union", "1.2.3.1", NULL), "2", "US client: the down Americas answer is gone");
    ok(pol_set_policy_count(set) == before + 1, "a table for the new health state was compiled");
    pol_route_set_down(set, un, 3);
    is_str(list("union", "1.2.3.1", &sc), "3", "both matches down: the fallback");
    is_int(sc, 0, "...and since everyone now gets the same answer, scope 0");
    pol_route_set_down(set, un, 7);
    is_str(list("union", "1.2.3.1", NULL), "12", "every answer down: fail open, as if all were up");
    is_str(list("union", "1.2.3.129", NULL), "3", "...for every client");
    pol_route_set_down(set, un, 1);
    is_int(pol_set_policy_count(set), before + 3, "a health state seen before reuses its table");
    pol_route_set_down(set, un, 0);
    is_str(list("union", "1.2.3.1", NULL), "12", "all up again: the original answers");
    is_int(pol_set_policy_count(set), before + 3, "...from the original table");
    is_int(pol_route_set_down(set, un, 8), ERR_INVAL, "a mask naming a missing answer is refused");
    pol_route_set_down(set, ne, 1);
    is_str(list("near", "1.2.5.1", NULL), "2", "closest: LA down, San Francisco gets New York");
    is_str(list("nearall", "1.2.5.1", NULL), "123", "a route sharing the old table is unaffected");
    pol_route_set_down(set, ne, 0);

    /* private addresses */
    uint8_t a[16];
    const char *priv[] = { "10.1.2.3", "192.168.0.1", "127.0.0.1", "172.16.5.5", "169.254.1.1",
                           "192.0.2.1", "100.64.0.1", "fd00::1", "fe80::1", "::1", "2001:db8::1",
                           "::ffff:10.0.0.1" };
    for (size_t i = 0; i < ARRAY_SIZE(priv); i++) {
        int fam = strchr(priv[i], ':') ? AF_INET6 : AF_INET;
        inet_pton(fam, priv[i], a);
        ok(pol_addr_is_private(fam, a), "%s is private", priv[i]);
    }
    const char *pub[] = { "8.8.8.8", "1.2.3.4", "2a00:1000::1", "::ffff:8.8.8.8" };
    for (size_t i = 0; i < ARRAY_SIZE(pub); i++) {
        int fam = strchr(pub[i], ':') ? AF_INET6 : AF_INET;
        inet_pton(fam, pub[i], a);
        ok(!pol_addr_is_private(fam, a), "%s is public", pub[i]);
    }
    {
        /* the first-octet shortcut agrees with the list of networks, for every /16 */
        static const struct {
            uint32_t net;
            unsigned len;
        } nets[] = {
            { 0x00000000, 8 },  { 0x0A000000, 8 },  { 0x64400000, 10 }, { 0x7F000000, 8 },
            { 0xA9FE0000, 16 }, { 0xAC100000, 12 }, { 0xC0000000, 24 }, { 0xC0000200, 24 },
            { 0xC0A80000, 16 }, { 0xC6120000, 15 }, { 0xC6336400, 24 }, { 0xCB007100, 24 },
            { 0xE0000000, 3 },
        };
        unsigned wrong = 0;
        for (uint32_t hi = 0; hi < 65536; hi++)
            for (uint32_t lo = 0; lo < 65536; lo += 0x3301) {
                uint32_t v = hi << 16 | lo;
                bool want = false;
                for (size_t i = 0; i < ARRAY_SIZE(nets); i++)
                    want |= (v & (0xFFFFFFFFu << (32 - nets[i].len))) == nets[i].net;
                uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
                wrong += pol_addr_is_private(AF_INET, b) != want;
            }
        is_int(wrong, 0, "private IPv4 networks: the shortcut agrees with the list");
    }
    pol_set_free(set);

    /* errors name the config line and key */
    struct {
        const char *y, *want;
    } bad[] = {
        { "boundaries: {X: [XX]}\nzones: {a.: {file: f}}\n", "t.yaml:1: boundaries.X: unknown place 'XX'" },
        { "boundaries: {X: [1.2.3.4/33]}\nzones: {a.: {file: f}}\n", "bad network" },
        { "boundaries: {X: [1.2.3.4/24]}\nzones: {a.: {file: f}}\n", "bits set beyond /24" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {answers: [{value: 1.2.3.4, boundary: Nope}]}}}\n",
          "routes.w.A.answers[0]: unknown boundary 'Nope'" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {answers: [\"1.2.3\"]}}}\n", "bad A value '1.2.3'" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {AAAA: {answers: [\"1.2.3.4\"]}}}\n", "bad AAAA value" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {closest: true, answers: [{value: 1.2.3.4, location: Atlantis}]}}}\n",
          "unknown location 'Atlantis'" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        conf_t *c = conf_load_buffer(bad[i].y, strlen(bad[i].y), "t.yaml", ".", err, sizeof(err));
        pol_set_t *s2 = NULL;
        int rc = c ? pol_set_build(&s2, c, geo, NULL, NULL, err, sizeof(err)) : -1;
        ok(rc < 0 && strstr(err, bad[i].want), "rejected: %s (%s)", bad[i].want, err);
        pol_set_free(s2);
        conf_free(c);
    }
    struct {
        const char *y, *want;
    } badconf[] = {
        { "zones:\n  a.:\n    file: f\n    routes: {w: {NS: {answers: [x]}}}\n", "routed types are" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {answers: []}}}\n", "1 to 64 answers" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {answer: [x]}}}\n", "w.A.answer: unknown key" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {answers: [{value: x, weight: 0}]}}}\n", "weight" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {answers: [{value: x, location: [100, 0]}]}}}\n", "latitude" },
        { "geoip: {}\nzones: {a.: {file: f}}\n", "needs 'mmdb' or 'sources'" },
        { "boundaries: {X: [US], X: [JP]}\nzones: {a.: {file: f}}\n", "declared twice" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(badconf); i++) {
        conf_t *c = conf_load_buffer(badconf[i].y, strlen(badconf[i].y), "t.yaml", ".", err, sizeof(err));
        ok(!c && strstr(err, badconf[i].want), "config rejected: %s (%s)", badconf[i].want, err);
        conf_free(c);
    }
    /* overlapping networks: a warning per overlap, naming both */
    const char *ov = "boundaries:\n  a: [10.0.0.0/8, 192.0.2.0/24]\n  b: [10.1.0.0/16, \"2001:db8::/32\"]\n"
                     "  c: [\"2001:db8:1::/48\", 198.51.100.0/24, \"::1/128\", 192.0.2.7/32]\nzones: {a.: {file: f}}\n";
    conf_t *c = conf_load_buffer(ov, strlen(ov), "t.yaml", ".", err, sizeof(err));
    pol_set_t *s2 = NULL;
    warnings = 0;
    ok(c && pol_set_build(&s2, c, geo, count_warn, NULL, err, sizeof(err)) == 0, "overlapping networks load");
    is_int(warnings, 3, "three overlaps warned (10.1/16 in 10/8, 192.0.2.7/32 in 192.0.2.0/24, v6 /48 in /32)");
    pol_set_free(s2);
    conf_free(c);

    test_networks_file(geo);
    test_index(geo);
    test_scope();
    test_duplicate_routes();
    test_loc_runs(geo);
    test_derived_health(geo);

    conf_free(conf);
    geo_db_free(geo);
    return done_testing();
}
