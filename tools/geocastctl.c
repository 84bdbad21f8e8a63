/* geocastctl: geocast's control tool. Offline commands read the config directly. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "dns/rrtype.h"
#include "server/snapshot.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: geocastctl [-c FILE] COMMAND\n"
            "\n"
            "Commands (offline: they read the configuration, not the running server):\n"
            "  check                     validate the configuration, zones and GeoIP data\n"
            "  zones                     list the zones with their serial and record counts\n"
            "  lookup ADDRESS            what the GeoIP data says about an address\n"
            "  explain NAME TYPE CLIENT  how a routed name is answered for CLIENT (an address\n"
            "                            or a subnet such as 192.0.2.0/24): location, each\n"
            "                            boundary tested, distances, weights, answer, ECS scope\n"
            "  version                   print the version\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   configuration file (default /etc/geocast/geocast.yaml)\n"
            "  -j, --json          JSON output (lookup, explain)\n"
            "  -h, --help          this help\n");
}

static void warn_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "warning: %s\n", msg);
}

static snapshot_t *load(const char *path)
{
    char err[1024];
    conf_t *conf = conf_load(path, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    snapshot_t *s = snapshot_build(conf, warn_stderr, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        conf_free(conf);
        return NULL;
    }
    return s;
}

/* "192.0.2.1", "2001:db8::/48": family, address (host bits cleared), prefix length. */
static bool parse_client(const char *arg, int *family, uint8_t addr[16], unsigned *prefix)
{
    char buf[INET6_ADDRSTRLEN + 8];
    snprintf(buf, sizeof(buf), "%s", arg);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, buf, addr) == 1)
        *family = AF_INET6;
    else
        return false;
    unsigned max = *family == AF_INET ? 32 : 128;
    *prefix = max;
    if (slash) {
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || p > max)
            return false;
        *prefix = (unsigned)p;
    }
    for (unsigned bit = *prefix; bit < max; bit++)
        addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
    return true;
}

static int cmd_lookup(const snapshot_t *s, const char *arg, bool json)
{
    int family;
    uint8_t addr[16];
    unsigned prefix;
    if (!parse_client(arg, &family, addr, &prefix)) {
        fprintf(stderr, "geocastctl: bad address '%s'\n", arg);
        return 2;
    }
    if (!s->geo) {
        fprintf(stderr, "geocastctl: the configuration has no geoip section\n");
        return 1;
    }
    unsigned net;
    uint32_t id = geo_lookup(s->geo, family, addr, &net);
    const geo_location_t *l = geo_location(s->geo, id);
    char a[INET6_ADDRSTRLEN];
    inet_ntop(family, addr, a, sizeof(a));
    const conf_geo_source_t *src = id ? &s->conf->geo[l->source] : NULL;
    const char *srcname = src ? (src->path ? src->path : src->locations) : "";
    if (json) {
        printf("{\"address\":\"%s\",\"network_prefix\":%u,\"found\":%s", a, net,
               id ? "true" : "false");
        if (id) {
            printf(",\"continent\":\"%s\",\"country\":\"%s\",\"subdivision\":\"%s\","
                   "\"city\":\"%s\",\"source\":\"%s\"",
                   l->continent, l->country, l->subdivision, l->city ? l->city : "", srcname);
            if (l->flags & GEO_HAS_COORDS)
                printf(",\"latitude\":%.4f,\"longitude\":%.4f", l->lat, l->lon);
        }
        printf("}\n");
        return 0;
    }
    printf("address      %s\nnetwork      /%u (widest block with this location)\n", a, net);
    if (!id) {
        printf("location     unknown (no source covers it)\n");
        return 0;
    }
    printf("continent    %s\ncountry      %s\nsubdivision  %s\ncity         %s\n",
           l->continent, l->country, l->subdivision, l->city ? l->city : "");
    if (l->flags & GEO_HAS_COORDS)
        printf("coordinates  %.4f, %.4f\n", l->lat, l->lon);
    printf("source       %s\n", srcname);
    return 0;
}

static int cmd_explain(const snapshot_t *s, const char *name, const char *type_s,
                       const char *client, bool json)
{
    uint8_t owner[DNS_NAME_MAX], lname[DNS_NAME_MAX];
    size_t nl = strlen(name);
    int type = dns_rrtype_from_text(type_s, strlen(type_s));
    int family;
    uint8_t addr[16];
    unsigned prefix;
    if (dns_dname_from_text(name, nl, (const uint8_t *)"", owner) < 0 || type < 0) {
        fprintf(stderr, "geocastctl: bad name or type\n");
        return 2;
    }
    if (!parse_client(client, &family, addr, &prefix)) {
        fprintf(stderr, "geocastctl: bad client '%s' (an address or a subnet)\n", client);
        return 2;
    }
    dns_dname_lower(lname, owner);
    const zone_t *z = zone_set_find(&s->zones, lname);
    const pol_route_t *r = NULL;
    if (z) {
        zone_result_t res;
        zone_lookup(z, lname, (uint16_t)type, &res);
        const snapshot_routes_t *sr = (res.kind == ZONE_HIT || res.kind == ZONE_WILDCARD)
                                          ? res.node->ext : NULL;
        for (uint8_t i = 0; sr && i < sr->n; i++)
            if (sr->r[i]->type == type || (!r && sr->r[i]->type == DNS_T_CNAME))
                r = sr->r[i];
    }
    if (!r) {
        fprintf(stderr, "geocastctl: %s %s is not a routed name (its answer does not depend on "
                        "the client)\n", name, type_s);
        return 1;
    }
    int rc = pol_route_explain(s->pol, r, s->geo, family, addr, prefix, json, stdout);
    return rc < 0 ? 1 : rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = "/etc/geocast/geocast.yaml";
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (!strcmp(cmd, "version")) {
        printf("geocastctl %s\n", VERSION);
        return 0;
    }
    struct {
        const char *name;
        int nargs;
    } cmds[] = { { "check", 0 }, { "zones", 0 }, { "lookup", 1 }, { "explain", 3 } };
    size_t ci;
    for (ci = 0; ci < ARRAY_SIZE(cmds); ci++)
        if (!strcmp(cmd, cmds[ci].name))
            break;
    if (ci == ARRAY_SIZE(cmds)) {
        fprintf(stderr, "geocastctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (nargs != cmds[ci].nargs) {
        fprintf(stderr, "geocastctl: %s takes %d argument%s\n", cmd, cmds[ci].nargs,
                cmds[ci].nargs == 1 ? "" : "s");
        return 2;
    }
    snapshot_t *s = load(config);
    if (!s)
        return 1;
    int rc = 0;
    if (!strcmp(cmd, "check")) {
        printf("%s: ok (%zu zones, %zu records, %zu routes in %zu policies)\n", config,
               s->conf->nzones, s->nrecords, pol_set_route_count(s->pol),
               pol_set_policy_count(s->pol));
    } else if (!strcmp(cmd, "zones")) {
        for (size_t i = 0; i < s->zones.n; i++) {
            const zone_t *z = s->zones.zones[i];
            const uint8_t *soa = zone_rd_data(z->soa->rdata[0]);
            uint16_t len = zone_rd_len(z->soa->rdata[0]);
            uint32_t serial = len >= 20 ? rd_u32(soa + len - 20) : 0;
            printf("%-30s serial %-10u %8zu records %8zu names\n", z->name, serial, z->nrecords,
                   z->nnodes);
        }
    } else if (!strcmp(cmd, "lookup")) {
        rc = cmd_lookup(s, args[0], json);
    } else {
        rc = cmd_explain(s, args[0], args[1], args[2], json);
    }
    snapshot_free(s);
    return rc;
}
