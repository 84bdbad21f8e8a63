#include "server/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "dns/rrtype.h"
#include "server/stats.h"

static snapshot_t *current;
static uint64_t generations;

static int load_geo(const conf_t *conf, geo_db_t **out, unsigned flags, char *err, size_t errlen)
{
    geo_source_t *src = xcalloc(conf->ngeo, sizeof(*src));
    for (size_t i = 0; i < conf->ngeo; i++) {
        const conf_geo_source_t *g = &conf->geo[i];
        src[i].kind = g->kind == CONF_GEO_MMDB ? GEO_SRC_MMDB : GEO_SRC_CSV;
        src[i].path = g->path;
        src[i].fields = g->flat ? &geo_fields_flat : NULL;
        src[i].blocks = (const char *const *)g->blocks;
        src[i].locations = g->locations;
    }
    int rc = geo_db_load_opts(out, src, conf->ngeo, flags, err, errlen);
    free(src);
    return rc;
}

int snapshot_load_geo(const conf_t *conf, geo_db_t **out, char *err, size_t errlen)
{
    return load_geo(conf, out, 0, err, errlen);
}

/*
 * The location fields the compiled routes can tell apart (GEO_KEEP_*): the policy reads
 * continent and country for places, the subdivision for subdivision places and named
 * regions, the city for "CC/City" boundaries, coordinates for `closest`; query logs show
 * the subdivision and city. Entries are told
 * apart as pol_set_build() does; an entry it will reject keeps everything (it fails).
 * db NULL: before any data is loaded, when a subdivision is not known yet (keeps all).
 */
static unsigned geo_keep(const conf_t *conf, const geo_db_t *db)
{
    unsigned keep = 0;
    for (size_t i = 0; i < conf->nboundaries; i++) {
        const conf_boundary_t *b = &conf->boundaries[i];
        for (size_t j = 0; j < b->nentries; j++) {
            const char *e = b->entries[j], *slash = strchr(e, '/');
            geo_place_t pl;
            if (slash && (strchr(e, ':') || (e[0] >= '0' && e[0] <= '9')))
                continue; /* a network */
            if (slash)
                keep |= GEO_KEEP_CITY;
            else if (geo_place_find(db, e, &pl) < 0)
                keep |= GEO_KEEP_ALL;
            else if (pl.kind == GEO_PLACE_SUBDIVISION || pl.kind == GEO_PLACE_REGION)
                keep |= GEO_KEEP_SUBDIVISION;
        }
    }
    for (size_t z = 0; z < conf->nzones; z++) {
        for (size_t r = 0; r < conf->zones[z].nroutes; r++) {
            const conf_route_t *rt = &conf->zones[z].routes[r];
            if (rt->closest)
                keep |= GEO_KEEP_COORDS;
            /* an answer placed at a subdivision needs its midpoint from the full data
             * (geo_db_reduce() keeps them; before the load, it is not known yet) */
            for (size_t a = 0; a < rt->nanswers; a++) {
                geo_place_t pl;
                const char *loc = rt->answers[a].location;
                if (loc && !rt->answers[a].has_latlon && geo_place_find(db, loc, &pl) < 0)
                    keep |= GEO_KEEP_ALL;
            }
        }
    }
    /* dnstap's extra field and the text query log show where the client is, down to
     * the city (loc=CC/SUBDIVISION/CITY). */
    if (conf->dnstap_path || conf->query_log)
        keep |= GEO_KEEP_SUBDIVISION | GEO_KEEP_CITY;
    return keep;
}

/*
 * Load the GeoIP sources and keep only what the routes can tell apart: the full table
 * (GeoLite2 City: 34 MB) is needed to compile them, but a country-level config needs 2 %
 * of its locations. The snapshot keeps the reduced db (the policy recompiles from it on
 * health changes); `geocastctl lookup` and `explain` reopen the sources for the details.
 */
static int load_geo_for_routes(const conf_t *conf, geo_db_t **out, char *err, size_t errlen)
{
    geo_db_t *full = NULL, *small = NULL;
    int rc;
    /* Strip the locations while loading (the same table as loading all and reducing, in
     * about half the time: docs/geoip.md) unless the routes need the midpoints of the
     * full data: subdivision places, and anything `closest` sorts by. */
    unsigned early = geo_keep(conf, NULL);
    if (!(early & GEO_KEEP_COORDS)) {
        rc = load_geo(conf, &small, GEO_LOAD_KEEP(early), err, errlen);
        if (rc < 0)
            return rc;
        if ((geo_keep(conf, small) & ~early) == 0) {
            log_debug("geoip: %zu ranges, %u locations loaded for the routes (fields 0x%x)",
                      geo_db_ranges(small), geo_location_count(small), early);
            *out = small;
            return 0;
        }
        geo_db_free(small); /* never expected: the two classifications disagree */
        small = NULL;
    }
    /* the full table's lookup index is built only if the full table is kept */
    rc = load_geo(conf, &full, GEO_LOAD_NO_INDEX, err, errlen);
    if (rc < 0)
        return rc;
    unsigned keep = geo_keep(conf, full);
    if (keep == GEO_KEEP_ALL || geo_db_reduce(&small, full, keep, err, errlen) < 0) {
        /* nothing to drop, or (never in practice) no room: keep it all */
        rc = geo_db_index(full, err, errlen);
        if (rc < 0) {
            geo_db_free(full);
            return rc;
        }
        *out = full;
        return 0;
    }
    log_debug("geoip: %zu ranges, %u locations kept for the routes (of %zu, %u; fields 0x%x)",
              geo_db_ranges(small), geo_location_count(small), geo_db_ranges(full),
              geo_location_count(full), keep);
    geo_db_free(full);
    *out = small;
    return 0;
}

/* Attach each route to its zone node, checking it can live there. */
static int attach_routes(snapshot_t *s, char *err, size_t errlen)
{
    const conf_t *conf = s->conf;
    size_t n = pol_set_route_count(s->pol);
    s->routes = xcalloc(n ? n : 1, sizeof(*s->routes));
    for (size_t i = 0; i < n; i++) {
        const pol_route_t *r = pol_set_route(s->pol, i);
        const conf_zone_t *cz = &conf->zones[r->zone];
        zone_t *z = (zone_t *)zone_set_find(&s->zones, cz->origin);
        zone_node_t *node = zone_node_ensure(z, r->owner);
        char tname[16];
        const char *what = r->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(r->type, tname);
        const char *why = NULL;
        bool addr_type = r->type == DNS_T_A || r->type == DNS_T_AAAA;
        if (!node)
            why = "the name is outside the zone";
        else if (node->flags & (ZONE_NODE_OCCLUDED | ZONE_NODE_CUT))
            why = "the name is at or below a delegation or DNAME";
        else if (r->type == DNS_T_CNAME && node->nrrsets &&
                 !(node->nrrsets == 1 && node->rrsets[0].type == DNS_T_CNAME))
            why = "a routed CNAME cannot share its name with other data in the zone file";
        else if (r->type != DNS_T_CNAME && zone_node_rrset(node, DNS_T_CNAME))
            why = "the zone file has a CNAME at this name";
        else if (r->type == CONF_T_ALIAS &&
                 (zone_node_rrset(node, DNS_T_A) || zone_node_rrset(node, DNS_T_AAAA)))
            why = "an ALIAS replaces A and AAAA: remove them from the zone file";
        snapshot_routes_t *sr = node ? (snapshot_routes_t *)node->ext : NULL;
        for (uint8_t j = 0; !why && sr && j < sr->n; j++) {
            uint16_t t = sr->r[j]->type;
            if ((t == DNS_T_CNAME) != (r->type == DNS_T_CNAME))
                why = "a routed CNAME cannot share its name with other routed types";
            else if ((t == CONF_T_ALIAS && addr_type) ||
                     (r->type == CONF_T_ALIAS && (t == DNS_T_A || t == DNS_T_AAAA)))
                why = "an ALIAS cannot share its name with routed A or AAAA";
        }
        if (why) {
            snprintf(err, errlen, "%s:%u: zones.%s.routes.%s.%s: %s", conf->path, r->conf->line,
                     cz->name, r->conf->name, what, why);
            return ERR_INVAL;
        }
        if (!sr) {
            sr = &s->routes[s->nrouted++];
            node->ext = sr;
        }
        sr->r[sr->n++] = r;
    }
    return 0;
}

snapshot_t *snapshot_build(conf_t *conf, pol_warn_fn warn, void *warn_ctx, char *err,
                           size_t errlen)
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
    if (conf->ngeo && load_geo_for_routes(conf, &s->geo, err, errlen) < 0)
        goto fail;
    s->conf = conf; /* borrowed until success, below */
    if (pol_set_build(&s->pol, conf, s->geo, warn, warn_ctx, err, errlen) < 0)
        goto fail;
    if (attach_routes(s, err, errlen) < 0)
        goto fail;
    zone_set_index(&s->zones); /* with the nodes the routes added */
    if (conf->identity) {
        s->identity_len = (uint16_t)strlen(conf->identity);
        s->identity = xmemdup(conf->identity, s->identity_len);
    }
    if (conf->version) {
        s->version_len = (uint16_t)strlen(conf->version);
        s->version = xmemdup(conf->version, s->version_len);
    }
    s->udp_max_payload = conf->udp_max_payload;
    s->minimal = conf->minimal_responses;
    s->rrl_rate = conf->rrl_rate;
    s->rrl_slip = conf->rrl_slip;
    s->rrl_v4_prefix = conf->rrl_v4_prefix;
    s->rrl_v6_prefix = conf->rrl_v6_prefix;
    s->generation = ++generations;
    s->loaded_at = time(NULL);
    srv_snapstats_new(s);
    return s;
fail:
    s->conf = NULL;
    snapshot_free(s);
    return NULL;
}

void snapshot_free(snapshot_t *s)
{
    if (!s)
        return;
    srv_snapstats_retire(s);
    zone_set_clear(&s->zones);
    pol_set_free(s->pol);
    geo_db_free(s->geo);
    free(s->routes);
    conf_free(s->conf);
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
