/* "Why does this client get this answer": the filter chain step by step, in text or
 * JSON, checked against the compiled table. */
#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/json.h"
#include "dns/rrtype.h"
#include "policy/policy_internal.h"


int pol_route_explain(const pol_set_t *s, const pol_route_t *r, const geo_db_t *geo, int family,
                      const uint8_t *addr, unsigned source_prefix, bool json, FILE *out)
{
    const pol_key_t *k = &pol_route_policy(r)->key;
    char astr[INET6_ADDRSTRLEN], owner[DNS_TEXT_MAX], tname[16];
    inet_ntop(family, addr, astr, sizeof(astr));
    dns_dname_to_text(r->owner, owner);
    const char *type = r->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(r->type, tname);

    /* geo (the full data, shown) may differ from the db the set was compiled from (a copy
     * reduced to the fields the routes use): the chain runs on the set's own ids */
    unsigned gprefix = 0;
    uint32_t loc = geo ? geo_lookup(geo, family, addr, &gprefix) : GEO_LOC_UNKNOWN;
    const geo_location_t *l = geo ? geo_location(geo, loc) : NULL;
    uint32_t ploc = s->geo ? geo_lookup(s->geo, family, addr, NULL) : GEO_LOC_UNKNOWN;

    /* IP-boundary membership, per global boundary. */
    uint64_t ipmask[64] = { 0 };
    for (size_t i = 0; i < s->nb && i < 64 * 64; i++)
        if (pol_boundary_net_match(&s->b[i], family, addr))
            ipmask[i / 64] |= (uint64_t)1 << (i % 64);

    uint16_t idx[64];
    unsigned n = pol_eval(s, k, ploc, ipmask, idx);
    pol_result_t res;
    pol_route_decide(r, family, addr, &res);
    bool agree = res.d->n == n && memcmp(res.d->idx, idx, n * sizeof(idx[0])) == 0;

    bool any_match = false;
    for (uint16_t i = 0; i < k->nanswers; i++) {
        int32_t bi = k->boundary[i];
        if (bi >= 0 && ((ipmask[bi / 64] >> (bi % 64) & 1) ||
                        (l && pol_boundary_geo_match(&s->b[bi], l))))
            any_match = true;
    }
    bool has_coords = l && (l->flags & GEO_HAS_COORDS);

    if (json) {
        fprintf(out, "{\"name\":");
        json_str(out, owner);
        fprintf(out, ",\"type\":\"%s\",\"client\":\"%s/%u\",\"location\":", type, astr,
                source_prefix);
        if (l && loc != GEO_LOC_UNKNOWN) {
            fprintf(out, "{\"id\":%u,\"network_prefix\":%u,\"continent\":", loc, gprefix);
            json_str(out, l->continent);
            fprintf(out, ",\"country\":");
            json_str(out, l->country);
            fprintf(out, ",\"subdivision\":");
            json_str(out, l->subdivision);
            fprintf(out, ",\"city\":");
            json_str(out, l->city ? l->city : "");
            if (has_coords)
                fprintf(out, ",\"latitude\":%.4f,\"longitude\":%.4f", l->lat, l->lon);
            fprintf(out, "}");
        } else {
            fprintf(out, "null");
        }
        fprintf(out, ",\"answers\":[");
        for (uint16_t i = 0; i < k->nanswers; i++) {
            const conf_answer_t *ca = &r->conf->answers[i];
            int32_t bi = k->boundary[i];
            fprintf(out, "%s{\"index\":%u,\"value\":", i ? "," : "", i);
            json_str(out, ca->value);
            fprintf(out, ",\"up\":%s,\"weight\":%u", (k->down >> i & 1) ? "false" : "true",
                    r->weight[i]);
            if (bi >= 0) {
                bool ipm = ipmask[bi / 64] >> (bi % 64) & 1;
                bool gm = l && pol_boundary_geo_match(&s->b[bi], l);
                fprintf(out, ",\"boundary\":");
                json_str(out, s->b[bi].name);
                fprintf(out, ",\"match\":%s,\"match_ip\":%s,\"match_geo\":%s",
                        ipm || gm ? "true" : "false", ipm ? "true" : "false",
                        gm ? "true" : "false");
            } else {
                fprintf(out, ",\"boundary\":null,\"fallback\":true");
            }
            if (k->closest && k->has_loc[i] && has_coords)
                fprintf(out, ",\"distance_km\":%.1f",
                        geo_distance_km(l->lat, l->lon, k->lat[i], k->lon[i]));
            fprintf(out, "}");
        }
        fprintf(out, "],\"fallback_used\":%s,\"closest\":%s,\"select\":%u,\"weighted\":%s,"
                     "\"result\":[",
                any_match ? "false" : "true", k->closest ? "true" : "false", r->select,
                r->weighted ? "true" : "false");
        for (unsigned i = 0; i < n; i++) {
            fprintf(out, "%s", i ? "," : "");
            json_str(out, r->conf->answers[idx[i]].value);
        }
        fprintf(out, "],\"ecs_scope\":%u,\"table_agrees\":%s}\n", res.scope,
                agree ? "true" : "false");
        return agree ? 0 : 1;
    }

    fprintf(out, "route      %s %s (config line %u, ttl %u, ecs %s)\n", owner, type,
            r->conf->line, r->ttl, r->ecs ? "on" : "off");
    fprintf(out, "client     %s/%u\n", astr, source_prefix);
    if (!geo)
        fprintf(out, "location   (no geoip database configured)\n");
    else if (loc == GEO_LOC_UNKNOWN)
        fprintf(out, "location   unknown (not in the GeoIP data; block /%u)\n", gprefix);
    else {
        fprintf(out, "location   %s / %s%s%s%s%s", l->continent, l->country,
                l->subdivision[0] ? " / " : "", l->subdivision, l->city && l->city[0] ? " / " : "",
                l->city ? l->city : "");
        if (has_coords)
            fprintf(out, " (%.4f, %.4f)", l->lat, l->lon);
        fprintf(out, ", network /%u\n", gprefix);
    }
    if (!k->down) {
        fprintf(out, "health     all answers up\n");
    } else {
        uint64_t all = k->nanswers >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << k->nanswers) - 1;
        fprintf(out, "health     down:");
        for (uint16_t i = 0; i < k->nanswers; i++)
            if (k->down >> i & 1)
                fprintf(out, " [%u]", i);
        fprintf(out, "%s\n", (k->down & all) == all ? " (all down: fail open, all kept)" : "");
    }
    fprintf(out, "boundaries\n");
    for (uint16_t i = 0; i < k->nanswers; i++) {
        const conf_answer_t *ca = &r->conf->answers[i];
        int32_t bi = k->boundary[i];
        fprintf(out, "  [%u] %-24s ", i, ca->value);
        if (bi < 0) {
            fprintf(out, "fallback%s\n", any_match ? " (not used: a boundary matched)" : " (used)");
            continue;
        }
        bool ipm = ipmask[bi / 64] >> (bi % 64) & 1;
        bool gm = l && pol_boundary_geo_match(&s->b[bi], l);
        fprintf(out, "boundary %-12s %s%s\n", s->b[bi].name, ipm || gm ? "match" : "no match",
                ipm && gm ? " (network and place)" : ipm ? " (network)" : gm ? " (place)" : "");
    }
    if (k->closest) {
        fprintf(out, "closest\n");
        for (uint16_t i = 0; i < k->nanswers; i++) {
            fprintf(out, "  [%u] %-24s ", i, r->conf->answers[i].value);
            if (!k->has_loc[i])
                fprintf(out, "no location (sorts last)\n");
            else if (!has_coords)
                fprintf(out, "client has no coordinates: configured order kept\n");
            else
                fprintf(out, "%.1f km\n", geo_distance_km(l->lat, l->lon, k->lat[i], k->lon[i]));
        }
    }
    if (r->weighted) {
        fprintf(out, "weights   ");
        for (uint16_t i = 0; i < k->nanswers; i++)
            fprintf(out, " [%u]=%u", i, r->weight[i]);
        fprintf(out, " (shuffled per query, then select)\n");
    }
    if (r->select)
        fprintf(out, "select     first %u\n", r->select);
    fprintf(out, "answer    ");
    if (n == 0)
        fprintf(out, " (none: NODATA)");
    for (unsigned i = 0; i < n; i++)
        fprintf(out, " %s", r->conf->answers[idx[i]].value);
    fprintf(out, "%s\n", r->weighted ? " (before the weighted shuffle)" : "");
    fprintf(out, "ecs scope  /%u%s\n", res.scope,
            res.scope == 0 ? " (the same answer for every client)" : "");
    if (!agree)
        fprintf(out, "WARNING: the compiled table gives a different answer list (a bug)\n");
    return agree ? 0 : 1;
}
