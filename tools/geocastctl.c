/* geocastctl: geocast's control tool. Offline commands read the config directly. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
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
            "  check      validate the configuration and load every zone (exit 0 if valid)\n"
            "  zones      list the configured zones with their serial and record counts\n"
            "  version    print the version\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   configuration file (default /etc/geocast/geocast.yaml)\n"
            "  -h, --help          this help\n");
}

static snapshot_t *load(const char *path, conf_t **confp)
{
    char err[1024];
    conf_t *conf = conf_load(path, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    snapshot_t *s = snapshot_build(conf, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        conf_free(conf);
        return NULL;
    }
    *confp = conf;
    return s;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = "/etc/geocast/geocast.yaml";
    int c;
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    if (!strcmp(cmd, "version")) {
        printf("geocastctl %s\n", VERSION);
        return 0;
    }
    if (strcmp(cmd, "check") && strcmp(cmd, "zones")) {
        fprintf(stderr, "geocastctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    conf_t *conf = NULL;
    snapshot_t *s = load(config, &conf);
    if (!s)
        return 1;
    if (!strcmp(cmd, "check")) {
        printf("%s: ok (%zu zones, %zu records)\n", config, conf->nzones, s->nrecords);
    } else {
        for (size_t i = 0; i < s->zones.n; i++) {
            const zone_t *z = s->zones.zones[i];
            const uint8_t *soa = zone_rd_data(z->soa->rdata[0]);
            uint16_t len = zone_rd_len(z->soa->rdata[0]);
            uint32_t serial = len >= 20 ? rd_u32(soa + len - 20) : 0;
            printf("%-30s serial %-10u %8zu records %8zu names\n", z->name, serial, z->nrecords,
                   z->nnodes);
        }
    }
    snapshot_free(s);
    conf_free(conf);
    return 0;
}
