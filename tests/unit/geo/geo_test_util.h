#pragma once
/* Helpers shared by the geo unit tests (header-only, included by test_*.c). */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "geo/geo.h"

/* Generate the test MMDBs into $BUILD/test-data/geo (default build/) with the committed
 * generator, and return that directory. Exits with a TAP bail-out if it fails. */
static const char *geo_test_data_dir(void)
{
    static char dir[512];
    const char *build = getenv("BUILD");
    snprintf(dir, sizeof(dir), "%s/test-data/geo", build && *build ? build : "build");
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && perl tests/data/geo/gen-mmdb.pl '%s'", dir, dir);
    if (system(cmd) != 0) {
        printf("Bail out! cannot run %s (run from the repo root; needs "
               "libmaxmind-db-writer-perl)\n", cmd);
        exit(1);
    }
    return dir;
}

static uint32_t tl4(const geo_db_t *db, const char *s, unsigned *prefix)
{
    uint8_t a[4];
    if (inet_pton(AF_INET, s, a) != 1) {
        printf("# bad test address %s\n", s);
        return 0xdeadbeef;
    }
    return geo_lookup(db, AF_INET, a, prefix);
}

static uint32_t tl6(const geo_db_t *db, const char *s, unsigned *prefix)
{
    uint8_t a[16];
    if (inet_pton(AF_INET6, s, a) != 1) {
        printf("# bad test address %s\n", s);
        return 0xdeadbeef;
    }
    return geo_lookup(db, AF_INET6, a, prefix);
}

/* Location of an address given as text (v4 or v6). */
static const geo_location_t *tloc(const geo_db_t *db, const char *s, unsigned *prefix)
{
    uint32_t id = strchr(s, ':') ? tl6(db, s, prefix) : tl4(db, s, prefix);
    const geo_location_t *l = geo_location(db, id);
    static const geo_location_t none = {.city = "(bad id)"};
    return l ? l : &none;
}
