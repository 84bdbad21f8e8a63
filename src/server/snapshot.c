#include "server/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

static snapshot_t *current;
static uint64_t generations;

snapshot_t *snapshot_build(const conf_t *conf, char *err, size_t errlen)
{
    snapshot_t *s = xcalloc(1, sizeof(*s));
    zone_t **zones = xcalloc(conf->nzones ? conf->nzones : 1, sizeof(*zones));
    for (size_t i = 0; i < conf->nzones; i++) {
        const conf_zone_t *cz = &conf->zones[i];
        zones[i] = zone_load(cz->origin, cz->file, err, errlen);
        if (!zones[i]) {
            for (size_t j = 0; j < i; j++)
                zone_free(zones[j]);
            free(zones);
            free(s);
            return NULL;
        }
        s->nrecords += zones[i]->nrecords;
        log_debug("zone %s: %zu records from %s", zones[i]->name, zones[i]->nrecords, cz->file);
    }
    if (zone_set_init(&s->zones, zones, conf->nzones) < 0) {
        snprintf(err, errlen, "%s: two zones have the same name", conf->path);
        free(zones);
        free(s);
        return NULL;
    }
    free(zones);
    if (conf->identity) {
        s->identity_len = (uint16_t)strlen(conf->identity);
        s->identity = xmemdup(conf->identity, s->identity_len);
    }
    if (conf->version) {
        s->version_len = (uint16_t)strlen(conf->version);
        s->version = xmemdup(conf->version, s->version_len);
    }
    s->udp_max_payload = conf->udp_max_payload;
    s->generation = ++generations;
    s->loaded_at = time(NULL);
    return s;
}

void snapshot_free(snapshot_t *s)
{
    if (!s)
        return;
    zone_set_clear(&s->zones);
    free(s->identity);
    free(s->version);
    free(s);
}

const snapshot_t *snapshot_current(void)
{
    return rcu_dereference(current);
}

snapshot_t *snapshot_publish(snapshot_t *s)
{
    return rcu_xchg_pointer(&current, s);
}
