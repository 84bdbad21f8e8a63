/*
 * qpath: geocast's own work per query, without sockets. Builds a snapshot from the same
 * zone and configuration bench/compare gives geocast (or from --config), then calls
 * srv_query_process() on a prepared list of queries. Deterministic, so that instruction
 * counts under callgrind compare from one change to the next:
 *
 *   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/qpath.cg \
 *       build/bench/qpath --set geo_ecs -n 100000
 *   callgrind_annotate /tmp/qpath.cg | grep 'PROGRAM TOTALS'
 *   (the collected Ir divided by -n is instructions per query, with ~20 of the loop's own)
 *
 *   build/bench/qpath [--set geo_ecs|geo|static|mixed] [-n N] [--mmdb FILE]
 *                     [--config FILE] [--full] [--check]
 *
 * Sets (as bench/compare's dnsload sends them: RD off, EDNS with a 1232-byte buffer):
 *   geo_ecs  www.example.com A with ECS, cycling over 10,000 distinct public IPv4 /24s
 *            that have a GeoIP location (fixed seed), from 127.0.0.1
 *   geo      www.example.com A, no ECS, from 127.0.0.1 (the fallback)
 *   static   static.example.com A, no ECS
 *   mixed    many kinds of query (0x20 case, NXDOMAIN, NODATA, MX, NS, SOA, ANY, AAAA,
 *            no EDNS, small buffers, IPv6 ECS, CHAOS...): for --check
 * --full writes the configuration with minimal_responses off (NSD-style answers).
 * --check prints an FNV-1a hash of every reply byte instead of timing: byte-identical
 * output from one build to the next gives the same hash.
 *
 * Only the measured loop runs with callgrind's instrumentation on (CALLGRIND_START/STOP),
 * so loading the GeoIP database costs nothing under --instr-atstart=no.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include "conf/conf.h"
#include "dns/pkt.h"
#include "dns/rrtype.h"
#include "geo/geo.h"
#include "policy/policy.h"
#include "server/query.h"
#include "server/snapshot.h"
#include "server/stats.h"

static const char zone_text[] =
    "$ORIGIN example.com.\n$TTL 3600\n"
    "@       IN SOA  ns1 hostmaster 2026112401 3600 600 1209600 300\n"
    "        IN NS   ns1\n        IN NS   ns2\n        IN MX   10 mail\n"
    "ns1     IN A    192.0.2.53\nns2     IN A    192.0.2.54\nmail    IN A    192.0.2.25\n"
    "static  IN A    192.0.2.80\n        IN AAAA 2001:db8::80\n"
    "alias   IN CNAME static\n*.wild  IN A 192.0.2.7\nsub     IN NS ns.sub\n"
    "ns.sub  IN A    192.0.2.77\n";

typedef struct {
    uint8_t *pkt;
    size_t len;
    struct sockaddr_storage src;
} query_t;

static query_t *qs;
static size_t nq, qcap;

static void die(const char *msg)
{
    fprintf(stderr, "qpath: %s\n", msg);
    exit(2);
}

/* One query: name in presentation form, ECS "a.b.c.d/len" or "x::/len" or NULL. */
static void add(const char *name, uint16_t type, uint16_t qclass, int edns_size, const char *ecs,
                const char *src, uint16_t id)
{
    uint8_t b[512];
    memset(b, 0, 12);
    wr_u16(b, id);
    b[5] = 1;
    int n = dns_dname_from_text(name, strlen(name), NULL, b + 12);
    if (n < 0)
        die("bad name");
    size_t o = 12 + (size_t)n;
    wr_u16(b + o, type);
    wr_u16(b + o + 2, qclass);
    o += 4;
    if (edns_size > 0) {
        b[11] = 1;
        b[o++] = 0;
        wr_u16(b + o, DNS_T_OPT);
        wr_u16(b + o + 2, (uint16_t)edns_size);
        memset(b + o + 4, 0, 4);
        o += 8;
        size_t rdlen_at = o;
        o += 2;
        if (ecs) {
            char a[64];
            const char *slash = strchr(ecs, '/');
            snprintf(a, sizeof(a), "%.*s", (int)(slash - ecs), ecs);
            unsigned plen = (unsigned)atoi(slash + 1);
            uint8_t addr[16];
            int fam = strchr(a, ':') ? 2 : 1;
            if (inet_pton(fam == 1 ? AF_INET : AF_INET6, a, addr) != 1)
                die("bad ECS address");
            unsigned alen = (plen + 7) / 8;
            wr_u16(b + o, DNS_EDNS_ECS);
            wr_u16(b + o + 2, (uint16_t)(4 + alen));
            wr_u16(b + o + 4, (uint16_t)fam);
            b[o + 6] = (uint8_t)plen;
            b[o + 7] = 0;
            memcpy(b + o + 8, addr, alen);
            o += 8 + alen;
        }
        wr_u16(b + rdlen_at, (uint16_t)(o - rdlen_at - 2));
    }
    if (nq == qcap) {
        qcap = qcap ? qcap * 2 : 1024;
        qs = realloc(qs, qcap * sizeof(*qs));
        if (!qs)
            die("out of memory");
    }
    query_t *q = &qs[nq++];
    memset(q, 0, sizeof(*q));
    q->pkt = malloc(o);
    if (!q->pkt)
        die("out of memory");
    memcpy(q->pkt, b, o);
    q->len = o;
    const char *s = src ? src : "127.0.0.1";
    if (strchr(s, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&q->src;
        s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, s, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&q->src;
        s4->sin_family = AF_INET;
        inet_pton(AF_INET, s, &s4->sin_addr);
    }
}

/* 10,000 distinct public /24s with a GeoIP location (as bench/compare's make_ecs_list). */
static void add_geo_ecs(const geo_db_t *geo, unsigned count)
{
    uint64_t x = 20261124;
    unsigned made = 0;
    static uint8_t seen[1u << 24 >> 3];
    while (made < count) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t net = (uint32_t)(x >> 8) & 0xFFFFFF;
        if (seen[net >> 3] & (1u << (net & 7)))
            continue;
        uint8_t a[4] = { (uint8_t)(net >> 16), (uint8_t)(net >> 8), (uint8_t)net, 1 };
        if (pol_addr_is_private(AF_INET, a))
            continue;
        if (geo && geo_lookup(geo, AF_INET, a, NULL) == GEO_LOC_UNKNOWN)
            continue;
        seen[net >> 3] |= (uint8_t)(1u << (net & 7));
        char e[32];
        snprintf(e, sizeof(e), "%u.%u.%u.0/24", a[0], a[1], a[2]);
        add("www.example.com.", DNS_T_A, DNS_C_IN, 1232, e, NULL, (uint16_t)made);
        made++;
    }
}

static void add_mixed(void)
{
    static const char *names[] = {
        "www.example.com.", "WwW.ExAmPlE.CoM.", "static.example.com.", "STATIC.example.COM.",
        "example.com.", "nope.example.com.", "a.b.nope.example.com.", "mail.example.com.",
        "ns1.example.com.", "alias.example.com.", "x.wild.example.com.", "X.Wild.example.com.",
        "host.sub.example.com.", "sub.example.com.", "www.example.org.", "com.",
        "version.bind.", "id.server.",
    };
    static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_NS, DNS_T_SOA,
                                      DNS_T_ANY, DNS_T_TXT, DNS_T_CNAME, DNS_T_DS };
    static const char *ecs[] = { NULL, "8.8.8.0/24", "81.2.69.0/24", "10.1.2.0/24",
                                 "2a02:2e0::/32", "8.8.8.8/32", "0.0.0.0/0", "1.0.0.0/8" };
    static const int sizes[] = { 0, 512, 1232, 4096 };
    static const char *srcs[] = { "127.0.0.1", "81.2.69.160", "::1", "2001:4860::1" };
    uint16_t id = 1;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        for (size_t t = 0; t < ARRAY_SIZE(types); t++)
            for (size_t e = 0; e < ARRAY_SIZE(ecs); e++) {
                int sz = sizes[(i + t + e) % ARRAY_SIZE(sizes)];
                uint16_t qclass = (i >= 16) ? DNS_C_CH : DNS_C_IN;
                add(names[i], types[t], qclass, ecs[e] && !sz ? 1232 : sz, ecs[e],
                    srcs[(i + e) % ARRAY_SIZE(srcs)], id++);
            }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write the temporary configuration");
}

int main(int argc, char **argv)
{
    const char *set = "geo_ecs", *config = NULL, *mmdb = "data/geoip/GeoLite2-City.mmdb";
    unsigned long n = 100000;
    bool full = false, check = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc)
            set = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--mmdb") && i + 1 < argc)
            mmdb = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--full"))
            full = true;
        else if (!strcmp(argv[i], "--check"))
            check = true;
        else {
            fprintf(stderr, "usage: qpath [--set geo_ecs|geo|static|mixed] [-n N] [--mmdb FILE] "
                            "[--config FILE] [--full] [--check]\n");
            return 2;
        }
    }

    char err[1024], dir[] = "/tmp/geocast-qpath-XXXXXX", zpath[300], cpath[300];
    conf_t *c;
    if (config) {
        c = conf_load(config, err, sizeof(err));
    } else {
        if (!mkdtemp(dir))
            die("mkdtemp");
        char mabs[4096];
        if (!realpath(mmdb, mabs))
            die("GeoIP database not found (--mmdb)");
        snprintf(zpath, sizeof(zpath), "%s/example.com.zone", dir);
        snprintf(cpath, sizeof(cpath), "%s/geocast.yaml", dir);
        write_file(zpath, zone_text);
        char cfg[8192];
        snprintf(cfg, sizeof(cfg),
                 "server:\n  listen: [\"127.0.0.1@5353\"]\n  workers: 1\n  identity: bench\n"
                 "  minimal_responses: %s\n"
                 "geoip: { mmdb: %s }\n"
                 "boundaries: { EU: [EU], NA: [NA] }\n"
                 "zones:\n  example.com:\n    file: example.com.zone\n    routes:\n"
                 "      www:\n        A:\n          ttl: 60\n          answers:\n"
                 "            - { value: 192.0.2.1, boundary: EU }\n"
                 "            - { value: 192.0.2.2, boundary: NA }\n"
                 "            - { value: 192.0.2.3 }\n",
                 full ? "false" : "true", mabs);
        write_file(cpath, cfg);
        c = conf_load(cpath, err, sizeof(err));
    }
    srv_stats_min_slots(1);
    snapshot_t *s = c ? snapshot_build(c, NULL, NULL, err, sizeof(err)) : NULL;
    if (!config) {
        unlink(zpath);
        unlink(cpath);
        rmdir(dir);
    }
    if (!s) {
        fprintf(stderr, "qpath: %s\n", err);
        return 1;
    }
    snapshot_publish(s);

    if (!strcmp(set, "geo_ecs"))
        add_geo_ecs(s->geo, 10000);
    else if (!strcmp(set, "geo"))
        add("www.example.com.", DNS_T_A, DNS_C_IN, 1232, NULL, NULL, 1);
    else if (!strcmp(set, "static"))
        add("static.example.com.", DNS_T_A, DNS_C_IN, 1232, NULL, NULL, 1);
    else if (!strcmp(set, "mixed"))
        add_mixed();
    else
        die("unknown set");

    static srv_worker_t w;
    w.id = 0;
    w.rng = 0x1234567;
    w.loc = calloc(1, sizeof(srv_loc_cache_t));
    static uint8_t resp[65535];

    if (check) {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < nq; i++)
            for (int tcp = 0; tcp < 2; tcp++) {
                size_t len = srv_query_process(&w, qs[i].pkt, qs[i].len, resp, sizeof(resp),
                                               (const struct sockaddr *)&qs[i].src, tcp);
                for (size_t k = 0; k < len; k++)
                    h = (h ^ resp[k]) * 1099511628211ull;
                h = (h ^ len) * 1099511628211ull;
            }
        printf("set %s: %zu queries (UDP and TCP), reply hash %016llx\n", set, nq,
               (unsigned long long)h);
        return 0;
    }

    /* One pass to warm the caches, then the measured loop. */
    for (size_t i = 0; i < nq; i++)
        srv_query_process(&w, qs[i].pkt, qs[i].len, resp, sizeof(resp),
                          (const struct sockaddr *)&qs[i].src, false);
    size_t bytes = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CALLGRIND_START_INSTRUMENTATION;
    for (unsigned long i = 0; i < n; i++) {
        const query_t *q = &qs[i % nq];
        bytes += srv_query_process(&w, q->pkt, q->len, resp, sizeof(resp),
                                   (const struct sockaddr *)&q->src, false);
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
    printf("set %s: %lu queries over %zu distinct, %.1f bytes/reply, %.1f ns/query (wall)\n", set, n,
           nq, (double)bytes / (double)n, ns);
    return 0;
}
