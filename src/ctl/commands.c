/* What the control commands print: explain, lookup, status, stats, and the Prometheus
 * metrics text. Everything reads a snapshot the caller keeps alive. */
#include "ctl/ctl.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/json.h"
#include "ctl/ctl_internal.h"
#include "ctl/health.h"
#include "dns/rrtype.h"
#include "server/dnstap.h"
#include "server/net.h"
#include "server/stats.h"

/* ---- explain and lookup ------------------------------------------------------------- */

/* "192.0.2.1", "2001:db8::/48": family, address (host bits cleared), prefix length. */
static bool parse_client(const char *arg, int *family, uint8_t addr[16], unsigned *prefix)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (strlen(arg) >= sizeof(buf))
        return false;
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


/*
 * The snapshot keeps only the location fields its routes use (snapshot.h); lookup and
 * explain show whole locations, so they load the sources in full for the command (about
 * 0.5 s of one core for GeoLite2 City, in the control thread, never on the query path)
 * and give the memory back afterwards. The files are read as they are now: after
 * replacing a database, reload before comparing with what the server routes on.
 */
static int full_geo(const conf_t *conf, geo_db_t **db, char *err, size_t errlen)
{
    char e[512];
    int rc = snapshot_load_geo(conf, db, e, sizeof(e));
    if (rc < 0)
        snprintf(err, errlen, "cannot reopen the geoip data: %s", e);
    return rc;
}

static void full_geo_free(geo_db_t *db)
{
    geo_db_free(db);
    malloc_trim(0);
}

static void print_lookup(const conf_t *conf, const geo_db_t *db, int family,
                         const uint8_t *addr, bool json, FILE *out);

int ctl_lookup_conf(const conf_t *conf, const char *arg, bool json, FILE *out, char *err,
                    size_t errlen)
{
    int family;
    uint8_t addr[16];
    unsigned prefix;
    if (!parse_client(arg, &family, addr, &prefix)) {
        snprintf(err, errlen, "bad address '%s'", arg);
        return ERR_INVAL;
    }
    if (!conf->ngeo) {
        snprintf(err, errlen, "the configuration has no geoip section");
        return ERR_NOTFOUND;
    }
    geo_db_t *db = NULL;
    int rc = full_geo(conf, &db, err, errlen);
    if (rc < 0)
        return rc;
    print_lookup(conf, db, family, addr, json, out);
    full_geo_free(db);
    return 0;
}

int ctl_lookup(const snapshot_t *s, const char *arg, bool json, FILE *out, char *err,
               size_t errlen)
{
    return ctl_lookup_conf(s->conf, arg, json, out, err, errlen);
}

static void print_lookup(const conf_t *conf, const geo_db_t *db, int family,
                         const uint8_t *addr, bool json, FILE *out)
{
    unsigned net;
    uint32_t id = geo_lookup(db, family, addr, &net);
    const geo_location_t *l = geo_location(db, id);
    char a[INET6_ADDRSTRLEN];
    inet_ntop(family, addr, a, sizeof(a));
    const conf_geo_source_t *src = id ? &conf->geo[l->source] : NULL;
    const char *srcname = src ? (src->path ? src->path : src->locations) : "";
    if (json) {
        fprintf(out, "{\"address\":\"%s\",\"network_prefix\":%u,\"found\":%s", a, net,
                id ? "true" : "false");
        if (id) {
            fprintf(out, ",\"continent\":");
            json_str(out, l->continent);
            fprintf(out, ",\"country\":");
            json_str(out, l->country);
            fprintf(out, ",\"subdivision\":");
            json_str(out, l->subdivision);
            fprintf(out, ",\"city\":");
            json_str(out, l->city ? l->city : "");
            fprintf(out, ",\"source\":");
            json_str(out, srcname);
            if (l->flags & GEO_HAS_COORDS)
                fprintf(out, ",\"latitude\":%.4f,\"longitude\":%.4f", l->lat, l->lon);
        }
        fprintf(out, "}\n");
        return;
    }
    fprintf(out, "address      %s\nnetwork      /%u (widest block with this location)\n", a, net);
    if (!id) {
        fprintf(out, "location     unknown (no source covers it)\n");
        return;
    }
    fprintf(out, "continent    %s\ncountry      %s\nsubdivision  %s\ncity         %s\n",
            l->continent, l->country, l->subdivision, l->city ? l->city : "");
    if (l->flags & GEO_HAS_COORDS)
        fprintf(out, "coordinates  %.4f, %.4f\n", l->lat, l->lon);
    fprintf(out, "source       %s\n", srcname);
}

int ctl_explain(const snapshot_t *s, const char *name, const char *type_s, const char *client,
                bool json, FILE *out, char *err, size_t errlen)
{
    uint8_t owner[DNS_NAME_MAX], lname[DNS_NAME_MAX];
    int type = dns_rrtype_from_text(type_s, strlen(type_s));
    int family;
    uint8_t addr[16];
    unsigned prefix;
    if (dns_dname_from_text(name, strlen(name), (const uint8_t *)"", owner) < 0 || type < 0) {
        snprintf(err, errlen, "bad name or type");
        return ERR_INVAL;
    }
    if (!parse_client(client, &family, addr, &prefix)) {
        snprintf(err, errlen, "bad client '%s' (an address or a subnet)", client);
        return ERR_INVAL;
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
        snprintf(err, errlen,
                 "%s %s is not a routed name (its answer does not depend on the client)", name,
                 type_s);
        return ERR_NOTFOUND;
    }
    geo_db_t *db = NULL;
    if (s->geo) {
        int lrc = full_geo(s->conf, &db, err, errlen);
        if (lrc < 0)
            return lrc;
    }
    int rc = pol_route_explain(s->pol, r, db, family, addr, prefix, json, out);
    full_geo_free(db);
    if (rc < 0) {
        snprintf(err, errlen, "explain failed: %s", err_str(rc));
        return rc;
    }
    if (rc > 0) {
        snprintf(err, errlen, "the step-by-step result differs from the compiled table (a bug)");
        return 1;
    }
    return 0;
}

/* ---- status and stats ------------------------------------------------------------- */

static const char *const rcode_names[24] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
    "BADVERS", "BADKEY",  "BADTIME",  "BADMODE",  "BADNAME", "BADALG",  "BADTRUNC", "OTHER",
};

const char *ctl_rcode_name(unsigned i)
{
    return i < 24 ? rcode_names[i] : "OTHER";
}

static void fmt_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (t == 0 || !gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "never");
}

void ctl_write_status(FILE *f, const snapshot_t *s, bool json)
{
    ctl_reload_info_t ri;
    ctl_reload_info(&ri);
    time_t now = time(NULL);
    char loaded[32], last[32];
    fmt_time(s ? s->loaded_at : 0, loaded, sizeof(loaded));
    fmt_time(ri.last_at, last, sizeof(last));
    unsigned long long gen = s ? (unsigned long long)s->generation : 0;
    size_t zones = s ? s->conf->nzones : 0, records = s ? s->nrecords : 0;
    size_t routes = s ? pol_set_route_count(s->pol) : 0;
    size_t policies = s ? pol_set_policy_count(s->pol) : 0;
    long long uptime = (long long)(now - ri.started);
    long long age = s ? (long long)(now - s->loaded_at) : 0;
    const char *result = ri.last_at == 0 ? "none" : ri.last_ok ? "ok" : "failed";
    if (json) {
        fprintf(f,
                "{\"version\":\"%s\",\"pid\":%ld,\"uptime\":%lld,\"generation\":%llu,"
                "\"loaded_at\":\"%s\",\"age\":%lld,\"zones\":%zu,\"records\":%zu,"
                "\"routes\":%zu,\"policies\":%zu,\"reloads\":%llu,\"reload_failures\":%llu,"
                "\"last_reload\":{\"result\":\"%s\",\"at\":\"%s\",\"trigger\":",
                CTL_VERSION, (long)getpid(), uptime, gen, loaded, age, zones, records, routes,
                policies, (unsigned long long)ri.reloads, (unsigned long long)ri.failures,
                result, last);
        json_str(f, ri.last_trigger);
        fprintf(f, ",\"error\":");
        json_str(f, ri.last_error);
        fprintf(f, "}}\n");
        return;
    }
    fprintf(f, "version          %s\n", CTL_VERSION);
    fprintf(f, "pid              %ld\n", (long)getpid());
    fprintf(f, "uptime           %llds\n", uptime);
    fprintf(f, "generation       %llu\n", gen);
    fprintf(f, "loaded_at        %s (%llds ago)\n", loaded, age);
    fprintf(f, "zones            %zu\n", zones);
    fprintf(f, "records          %zu\n", records);
    fprintf(f, "routes           %zu\n", routes);
    fprintf(f, "policies         %zu\n", policies);
    fprintf(f, "reloads          %llu (%llu failed)\n", (unsigned long long)ri.reloads,
            (unsigned long long)ri.failures);
    if (ri.last_at == 0)
        fprintf(f, "last_reload      none\n");
    else if (ri.last_ok)
        fprintf(f, "last_reload      ok at %s (%s)\n", last, ri.last_trigger);
    else
        fprintf(f, "last_reload      failed at %s (%s): %s\n", last, ri.last_trigger,
                ri.last_error);
}

void ctl_write_stats(FILE *f, bool json)
{
    srv_stats_t t;
    srv_net_stats(&t);
    struct {
        const char *name;
        uint64_t v;
    } c[] = {
        { "udp_queries", t.udp_queries },
        { "tcp_queries", t.tcp_queries },
        { "dropped", t.dropped },
        { "truncated", t.truncated },
        { "ecs_queries", t.ecs_queries },
        { "tcp_conns_accepted", t.tcp_conns_accepted },
        { "tcp_conns_rejected", t.tcp_conns_rejected },
        { "tcp_timeouts", t.tcp_timeouts },
        { "rrl_dropped", t.rrl_dropped },
        { "rrl_slipped", t.rrl_slipped },
        { "malformed_dropped", t.malformed_dropped },
        { "malformed_formerr", t.malformed_formerr },
        { "dnstap_sent", t.dnstap_sent },
        { "dnstap_dropped", t.dnstap_dropped },
        { "dnstap_discarded", srv_tap_discarded() },
        { "udp_gso_sends", t.udp_gso_sends },
        { "udp_gso_replies", t.udp_gso_replies },
        { "udp_gso_refused", t.udp_gso_refused },
    };
    const char *sep = "{";
    for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
        if (json)
            fprintf(f, "%s\"%s\":%llu", sep, c[i].name, (unsigned long long)c[i].v);
        else
            fprintf(f, "%-24s %llu\n", c[i].name, (unsigned long long)c[i].v);
        sep = ",";
    }
    if (json)
        fprintf(f, ",\"responses\":{");
    sep = "";
    for (unsigned i = 0; i < ARRAY_SIZE(t.rcode); i++) {
        /* The common rcodes always; the rest when they happened. */
        if (i > 5 && !t.rcode[i])
            continue;
        if (json) {
            fprintf(f, "%s\"%s\":%llu", sep, ctl_rcode_name(i), (unsigned long long)t.rcode[i]);
        } else {
            char key[40];
            snprintf(key, sizeof(key), "responses.%s", ctl_rcode_name(i));
            fprintf(f, "%-24s %llu\n", key, (unsigned long long)t.rcode[i]);
        }
        sep = ",";
    }
    if (json)
        fprintf(f, "}}\n");
}

/* ---- Prometheus text format 0.0.4 ---------------------------------------------------- */

static void metric(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    metric(f, name, "counter", help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    metric(f, name, "gauge", help);
    fprintf(f, "%s %.17g\n", name, v);
}

void ctl_write_metrics(FILE *f, const snapshot_t *s)
{
    srv_stats_t t;
    srv_net_stats(&t);
    ctl_reload_info_t ri;
    ctl_reload_info(&ri);
    time_t now = time(NULL);

    metric(f, "geocast_build_info", "gauge", "The running version (always 1).");
    fprintf(f, "geocast_build_info{version=\"%s\"} 1\n", CTL_VERSION);
    gauge(f, "geocast_start_time_seconds", "When the daemon started, in Unix time.",
          (double)ri.started);

    metric(f, "geocast_queries_total", "counter", "DNS queries received, by transport.");
    fprintf(f, "geocast_queries_total{protocol=\"udp\"} %llu\n",
            (unsigned long long)t.udp_queries);
    fprintf(f, "geocast_queries_total{protocol=\"tcp\"} %llu\n",
            (unsigned long long)t.tcp_queries);
    metric(f, "geocast_responses_total", "counter",
           "DNS responses sent, by RCODE (extended RCODEs included; OTHER is 23 and above).");
    for (unsigned i = 0; i < ARRAY_SIZE(t.rcode); i++)
        if (i <= 5 || t.rcode[i])
            fprintf(f, "geocast_responses_total{rcode=\"%s\"} %llu\n", ctl_rcode_name(i),
                    (unsigned long long)t.rcode[i]);
    counter(f, "geocast_dropped_total", "Queries dropped without a response (malformed).",
            t.dropped);
    counter(f, "geocast_truncated_total", "UDP responses sent truncated (TC=1).", t.truncated);
    counter(f, "geocast_ecs_queries_total", "Queries with a valid EDNS Client Subnet option.",
            t.ecs_queries);
    counter(f, "geocast_tcp_connections_accepted_total", "TCP connections accepted.",
            t.tcp_conns_accepted);
    counter(f, "geocast_tcp_connections_rejected_total",
            "TCP connections refused at the connection cap.", t.tcp_conns_rejected);
    counter(f, "geocast_tcp_timeouts_total", "TCP connections closed for idleness.",
            t.tcp_timeouts);
    counter(f, "geocast_rrl_dropped_total", "UDP responses withheld by rate limiting.",
            t.rrl_dropped);
    counter(f, "geocast_rrl_slipped_total", "Rate-limited UDP responses sent truncated.",
            t.rrl_slipped);
    metric(f, "geocast_malformed_total", "counter",
           "Malformed queries: shorter than a header (dropped) or unparsable (FORMERR).");
    fprintf(f, "geocast_malformed_total{action=\"dropped\"} %llu\n",
            (unsigned long long)t.malformed_dropped);
    fprintf(f, "geocast_malformed_total{action=\"formerr\"} %llu\n",
            (unsigned long long)t.malformed_formerr);
    counter(f, "geocast_dnstap_messages_total", "dnstap messages queued for the writer.",
            t.dnstap_sent);
    counter(f, "geocast_dnstap_dropped_total",
            "dnstap messages lost because the thread's queue was full.", t.dnstap_dropped);
    counter(f, "geocast_dnstap_discarded_total",
            "dnstap messages thrown away by the writer while no output was open.",
            srv_tap_discarded());
    counter(f, "geocast_udp_gso_sends_total",
            "UDP sends that carried several replies to one client (GSO).", t.udp_gso_sends);
    counter(f, "geocast_udp_gso_replies_total", "Replies sent in those GSO sends.",
            t.udp_gso_replies);
    counter(f, "geocast_udp_gso_refused_total",
            "GSO sends the kernel refused; their replies went out one by one.",
            t.udp_gso_refused);

    /* Detailed counters (control.metrics.detailed / countries). */
    metric(f, "geocast_query_types_total", "counter", "Queries by QTYPE (other: the rest).");
    for (unsigned i = 0; i < SRV_QT_N; i++)
        fprintf(f, "geocast_query_types_total{qtype=\"%s\"} %llu\n", srv_qtype_label(i),
                (unsigned long long)t.qtype[i]);
    metric(f, "geocast_ecs_responses_total", "counter",
           "Responses carrying ECS, by family and SCOPE prefix length (only those seen).");
    for (unsigned i = 0; i < ARRAY_SIZE(t.ecs_scope4); i++)
        if (t.ecs_scope4[i])
            fprintf(f, "geocast_ecs_responses_total{family=\"ipv4\",scope=\"%u\"} %llu\n", i,
                    (unsigned long long)t.ecs_scope4[i]);
    for (unsigned i = 0; i < ARRAY_SIZE(t.ecs_scope6); i++)
        if (t.ecs_scope6[i])
            fprintf(f, "geocast_ecs_responses_total{family=\"ipv6\",scope=\"%u\"} %llu\n", i,
                    (unsigned long long)t.ecs_scope6[i]);
    metric(f, "geocast_country_queries_total", "counter",
           "Queries by the client's country (the ECS address when public, else the source; "
           "unknown: not in the GeoIP data). Only those seen.");
    for (unsigned i = 0; i < SRV_COUNTRY_N; i++) {
        if (!t.country[i])
            continue;
        char cc[8] = "unknown";
        if (i != SRV_COUNTRY_UNKNOWN)
            snprintf(cc, sizeof(cc), "%c%c", 'A' + i / 26, 'A' + i % 26);
        fprintf(f, "geocast_country_queries_total{country=\"%s\"} %llu\n", cc,
                (unsigned long long)t.country[i]);
    }
    srv_stats_write_snapshot_metrics(f);

    counter(f, "geocast_reloads_total", "Reloads attempted (SIGHUP and control socket).",
            ri.reloads);
    counter(f, "geocast_reload_failures_total",
            "Reloads that failed (the previous data kept serving).", ri.failures);
    gauge(f, "geocast_last_reload_success",
          "1 when the last reload succeeded or there was none, 0 when it failed.",
          ri.last_at == 0 || ri.last_ok ? 1 : 0);
    hc_write_metrics(f);
    if (!s)
        return;
    gauge(f, "geocast_snapshot_generation", "Generation of the data being served.",
          (double)s->generation);
    gauge(f, "geocast_snapshot_loaded_timestamp_seconds",
          "When the data being served was loaded, in Unix time.", (double)s->loaded_at);
    gauge(f, "geocast_snapshot_age_seconds", "Seconds since the data being served was loaded.",
          (double)(now - s->loaded_at));
    gauge(f, "geocast_zones", "Zones served.", (double)s->conf->nzones);
    gauge(f, "geocast_records", "Resource records in the zones served.", (double)s->nrecords);
    gauge(f, "geocast_routes", "Routed names and types.", (double)pol_set_route_count(s->pol));
    gauge(f, "geocast_policies", "Distinct compiled routing tables.",
          (double)pol_set_policy_count(s->pol));
}
