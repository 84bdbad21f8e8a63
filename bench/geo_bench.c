/*
 * geo_bench: load time, memory and lookup speed of the compiled GeoIP table against
 * libmaxminddb (MMDB_lookup_sockaddr + fetching country, continent, latitude, longitude).
 *
 *   $BUILD/bench/geo_bench [GeoLite2-City.mmdb] [lookups]
 *
 * Default database data/geoip/GeoLite2-City.mmdb (scripts/fetch-geoip.sh), 1,000,000
 * lookups. Both sides look up the same random addresses: IPv4 uniform; IPv6 half drawn
 * inside the data's networks, half uniform in 2000::/4. Lookups are timed in thread CPU
 * time (the machine is shared: wall time counts other programs' turns), three times per
 * side, alternating; the best of the three is reported for each side.
 */
#include <arpa/inet.h>
#include <maxminddb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "geo/geo.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long rss_now_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct {
    uint8_t (*a)[17];
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

typedef struct {
    int family;
    uint8_t a[16];
    struct sockaddr_storage ss;
} addr_t;

static volatile double sink;

static double run_ours(const geo_db_t *db, const addr_t *v, size_t n)
{
    double acc = 0, t0 = thread_cpu_now();
    for (size_t i = 0; i < n; i++) {
        unsigned prefix;
        uint32_t id = geo_lookup(db, v[i].family, v[i].a, &prefix);
        const geo_location_t *l = geo_location(db, id);
        acc += l->lat + l->lon + l->country[0] + l->continent[0] + prefix;
    }
    double t = thread_cpu_now() - t0;
    sink = acc;
    return t;
}

static double run_mmdb(MMDB_s *m, const addr_t *v, size_t n)
{
    double acc = 0, t0 = thread_cpu_now();
    for (size_t i = 0; i < n; i++) {
        int err;
        MMDB_lookup_result_s r = MMDB_lookup_sockaddr(m, (const struct sockaddr *)&v[i].ss, &err);
        if (err != MMDB_SUCCESS || !r.found_entry)
            continue;
        MMDB_entry_data_s d;
        if (MMDB_get_value(&r.entry, &d, "country", "iso_code", NULL) == 0 && d.has_data)
            acc += d.utf8_string[0];
        if (MMDB_get_value(&r.entry, &d, "continent", "code", NULL) == 0 && d.has_data)
            acc += d.utf8_string[0];
        if (MMDB_get_value(&r.entry, &d, "location", "latitude", NULL) == 0 && d.has_data)
            acc += d.double_value;
        if (MMDB_get_value(&r.entry, &d, "location", "longitude", NULL) == 0 && d.has_data)
            acc += d.double_value;
        acc += r.netmask;
    }
    double t = thread_cpu_now() - t0;
    sink = acc;
    return t;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "data/geoip/GeoLite2-City.mmdb";
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "geo_bench: %s not found (run scripts/fetch-geoip.sh)\n", path);
        return 77;
    }
    long rss0 = rss_now_kb();
    char err[512];
    geo_db_t *db = NULL;
    double t0 = now(), c0 = cpu_now();
    int rc = geo_db_load_mmdb(&db, path, err, sizeof(err));
    double load = now() - t0, load_cpu = cpu_now() - c0;
    if (rc) {
        fprintf(stderr, "geo_bench: %s\n", err);
        return 1;
    }
    long peak = peak_rss_kb(), rss = rss_now_kb();
    printf("database        %s\n", path);
    printf("load            %.3f s wall, %.3f s cpu (one thread)\n", load, load_cpu);
    printf("peak RSS        %.1f MB (ru_maxrss, whole process, during load)\n", peak / 1024.0);
    printf("RSS after load  %.1f MB (/proc/self/statm; %.1f MB before load)\n", rss / 1024.0,
           rss0 / 1024.0);
    printf("table           %zu ranges, %u locations, %.1f MB (%zu bytes)\n", geo_db_ranges(db),
           geo_location_count(db), geo_db_bytes(db) / 1048576.0, geo_db_bytes(db));

    blocks_t bl = {0};
    geo_walk(db, collect, &bl);
    addr_t *v4 = calloc(n, sizeof(addr_t)), *v6 = calloc(n, sizeof(addr_t));
    for (size_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)next_rand();
        v4[i].family = AF_INET;
        v4[i].a[0] = (uint8_t)(x >> 24);
        v4[i].a[1] = (uint8_t)(x >> 16);
        v4[i].a[2] = (uint8_t)(x >> 8);
        v4[i].a[3] = (uint8_t)x;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&v4[i].ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, v4[i].a, 4);

        uint64_t hi = next_rand(), lo = next_rand();
        uint8_t *a = v6[i].a;
        for (int k = 0; k < 8; k++) {
            a[k] = (uint8_t)(hi >> (8 * k));
            a[8 + k] = (uint8_t)(lo >> (8 * k));
        }
        if ((i & 1) && bl.n) {
            const uint8_t *b = bl.a[next_rand() % bl.n];
            unsigned p = b[16];
            for (unsigned k = 0; k < 16; k++) {
                unsigned keep = p >= 8 * (k + 1) ? 8 : p > 8 * k ? p - 8 * k : 0;
                uint8_t mask = (uint8_t)(0xff00 >> keep);
                a[k] = (uint8_t)((b[k] & mask) | (a[k] & ~mask));
            }
        } else {
            a[0] = (uint8_t)(0x20 | (a[0] & 0x0f));
        }
        v6[i].family = AF_INET6;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&v6[i].ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
    }
    free(bl.a);

    MMDB_s m;
    if (MMDB_open(path, MMDB_MODE_MMAP, &m) != MMDB_SUCCESS) {
        fprintf(stderr, "geo_bench: MMDB_open failed\n");
        return 1;
    }
    /* warm both (page cache, branch predictors), then measure */
    run_ours(db, v4, n < 100000 ? n : 100000);
    run_mmdb(&m, v4, n < 100000 ? n : 100000);
    printf("\n%-6s %12s %16s %16s %8s\n", "family", "lookups", "geocast/s", "libmaxminddb/s",
           "ratio");
    const addr_t *sets[2] = {v4, v6};
    const char *names[2] = {"IPv4", "IPv6"};
    for (int s = 0; s < 2; s++) {
        double to = 1e30, tm = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double a = run_ours(db, sets[s], n), b = run_mmdb(&m, sets[s], n);
            to = a < to ? a : to;
            tm = b < tm ? b : tm;
        }
        printf("%-6s %12zu %16.0f %16.0f %7.1fx\n", names[s], n, n / to, n / tm, tm / to);
    }
    printf("(geocast: geo_lookup + location fields; libmaxminddb: MMDB_lookup_sockaddr + "
           "country, continent, latitude, longitude via MMDB_get_value; thread CPU time, "
           "best of 3 alternating runs per side)\n");
    MMDB_close(&m);
    free(v4);
    free(v6);
    geo_db_free(db);
    return 0;
}
