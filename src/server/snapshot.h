#pragma once

#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "geo/geo.h"
#include "policy/policy.h"
#include "zone/zone.h"

struct srv_snapstats;

/* The routes attached to one zone node (zone_node_t.ext). */
typedef struct {
    uint8_t n;
    const pol_route_t *r[8];
} snapshot_routes_t;

/*
 * Everything the query path reads, in one immutable generation: zones and the answers
 * prepared from the config. Built off the query threads by snapshot_build(), published
 * with snapshot_publish() (rcu_xchg_pointer), read under the liburcu-qsbr read side with
 * snapshot_current(), freed after a grace period.
 */
typedef struct snapshot {
    conf_t *conf;               /* owned */
    zone_set_t zones;
    geo_db_t *geo;              /* GeoIP reduced to the fields the routes use (see
                                   snapshot_load_geo() for the full data); NULL when no
                                   geoip is configured */
    pol_set_t *pol;
    snapshot_routes_t *routes;  /* one per routed node */
    size_t nrouted;
    uint8_t *identity;          /* NSID bytes and the id.server TXT string, or NULL */
    uint16_t identity_len;
    uint8_t *version;           /* version.bind TXT string, or NULL */
    uint16_t version_len;
    uint16_t udp_max_payload;
    bool minimal;                        /* server.minimal_responses */
    unsigned rrl_rate, rrl_slip;         /* response rate limiting; rate 0: off */
    uint8_t rrl_v4_prefix, rrl_v6_prefix;
    uint64_t generation;
    time_t loaded_at;
    size_t nrecords;
    struct srv_snapstats *stats;         /* counters by zone and answer (server/stats.h) */
} snapshot_t;

/* Build a snapshot from a validated config: loads every zone and the GeoIP data, and
 * compiles the routes. On success the snapshot owns conf. On failure returns NULL with
 * the first error ("file:line: reason") in err; conf still belongs to the caller and
 * nothing else is left allocated. Warnings (if warn is non-NULL) go to warn. */
snapshot_t *snapshot_build(conf_t *conf, pol_warn_fn warn, void *warn_ctx, char *err,
                           size_t errlen) ATTR_NONNULL(1, 4);

/* Load the config's GeoIP sources in full (geo_db_load(): ~0.5 s of one core and ~110 MB
 * at peak for GeoLite2 City), for commands that show whole locations. Off the query
 * path. Caller frees *out with geo_db_free(). 0 or a negative ERR_* with err set. */
int snapshot_load_geo(const conf_t *conf, geo_db_t **out, char *err, size_t errlen)
    ATTR_NONNULL(1, 2);

/* Free a snapshot that no reader can reach any more. NULL is a no-op. */
void snapshot_free(snapshot_t *s);

/* The published snapshot (call inside a QSBR read-side section: any registered, online
 * thread between quiescent states). */
const snapshot_t *snapshot_current(void);

/* Publish s and return the previous one; the caller waits for a grace period
 * (synchronize_rcu) before freeing it. */
snapshot_t *snapshot_publish(snapshot_t *s);
