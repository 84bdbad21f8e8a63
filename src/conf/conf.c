#include "conf/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "common/err.h"
#include "dns/rrtype.h"

#define GEOCAST_VERSION_STRING "geocast 0.1.0"

typedef struct {
    yaml_document_t doc;
    const char *file;
    const char *dir;
    char *err;
    size_t errlen;
    bool failed;
} ctx_t;

ATTR_PRINTF(4, 5)
static void fail(ctx_t *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    int k = snprintf(c->err, c->errlen, "%s:%lu: %s%s", c->file,
                     n ? (unsigned long)n->start_mark.line + 1 : 0UL, path ? path : "",
                     path && *path ? ": " : "");
    if (k < 0 || (size_t)k >= c->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool is_false(const char *s)
{
    return !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off");
}

static bool parse_bool(ctx_t *c, const yaml_node_t *v, const char *path, bool *out)
{
    const char *s = scalar(v);
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
        *out = true;
    else if (s && is_false(s))
        *out = false;
    else {
        fail(c, v, path, "expected true or false");
        return false;
    }
    return true;
}

static int parse_uint(ctx_t *c, const yaml_node_t *n, const char *path, unsigned min,
                      unsigned max, unsigned *out)
{
    const char *s = scalar(n);
    char *end;
    if (!s || !*s) {
        fail(c, n, path, "expected a number");
        return -1;
    }
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || s[0] == '-' || v < min || v > max) {
        fail(c, n, path, "expected a whole number from %u to %u, got '%s'", min, max, s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int conf_parse_duration(const char *s, unsigned *ms)
{
    char *end;
    if (!*s || *s == '-')
        return ERR_PARSE;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        return ERR_PARSE;
    double mult;
    if (!*end || !strcmp(end, "s"))
        mult = 1000;
    else if (!strcmp(end, "ms"))
        mult = 1;
    else if (!strcmp(end, "m"))
        mult = 60000;
    else if (!strcmp(end, "h"))
        mult = 3600000;
    else
        return ERR_PARSE;
    double r = v * mult;
    if (r < 0 || r > UINT_MAX)
        return ERR_PARSE;
    *ms = (unsigned)r;
    return 0;
}

int conf_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *at = strrchr(s, '@');
    unsigned long port = 53;
    size_t hl = at ? (size_t)(at - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host))
        return ERR_PARSE;
    memcpy(host, s, hl);
    host[hl] = 0;
    if (at) {
        char *end;
        errno = 0;
        port = strtoul(at + 1, &end, 10);
        if (!at[1] || *end || errno || port > 65535)
            return ERR_PARSE;
    }
    /* Accept [::1] as well as ::1. */
    char *h = host;
    if (h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = 0;
        h++;
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*sin6);
    } else {
        return ERR_PARSE;
    }
    return 0;
}

typedef void (*key_fn_t)(ctx_t *c, const yaml_node_t *val, const char *path, void *out);
typedef struct {
    const char *key;
    key_fn_t fn;
} key_t_;

/* Walk a mapping, dispatching each key; unknown keys and duplicates are errors. */
static void walk_map(ctx_t *c, const yaml_node_t *map, const char *path, const key_t_ *keys,
                     size_t nkeys, void *out)
{
    if (!map || map->type != YAML_MAPPING_NODE) {
        fail(c, map, path, "expected a mapping");
        return;
    }
    bool seen[32] = { false };
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top && !c->failed; p++) {
        yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&c->doc, p->value);
        const char *ks = scalar(k);
        char sub[256];
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", ks ? ks : "?");
        size_t i;
        for (i = 0; i < nkeys; i++)
            if (ks && !strcmp(ks, keys[i].key))
                break;
        if (i == nkeys) {
            fail(c, k, sub, "unknown key");
            return;
        }
        if (seen[i]) {
            fail(c, k, sub, "duplicate key");
            return;
        }
        seen[i] = true;
        keys[i].fn(c, v, sub, out);
    }
}

/* ---- server ---------------------------------------------------------------------- */

static char *resolve_path(ctx_t *c, const char *p);

static void k_listen(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const yaml_node_item_t *items = NULL;
    size_t n = 0;
    if (v->type == YAML_SEQUENCE_NODE) {
        items = v->data.sequence.items.start;
        n = (size_t)(v->data.sequence.items.top - items);
    } else if (!scalar(v)) {
        fail(c, v, path, "expected a list of \"address@port\"");
        return;
    }
    size_t count = items ? n : 1;
    if (count == 0) {
        fail(c, v, path, "needs at least one address");
        return;
    }
    cf->listen = xcalloc(count, sizeof(*cf->listen));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = items ? yaml_document_get_node(&c->doc, items[i]) : v;
        const char *s = scalar(it);
        if (!s || conf_parse_listen(s, &cf->listen[i].addr, &cf->listen[i].addrlen) < 0) {
            fail(c, it, path, "bad listen address '%s' (expected address@port)", s ? s : "");
            return;
        }
        cf->listen[i].text = xstrdup(s);
        cf->nlisten++;
    }
}

static void k_workers(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (s && !strcmp(s, "auto")) {
        cf->workers = 0;
        return;
    }
    parse_uint(c, v, path, 1, 256, &cf->workers);
}

static void k_identity(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (!s) {
        fail(c, v, path, "expected a string or false");
        return;
    }
    free(cf->identity);
    cf->identity = is_false(s) ? NULL : xstrdup(s);
    if (cf->identity && (strlen(s) == 0 || strlen(s) > 255))
        fail(c, v, path, "must be 1 to 255 characters");
}

static void k_version(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (!s) {
        fail(c, v, path, "expected a string or false");
        return;
    }
    free(cf->version);
    cf->version = is_false(s) ? NULL : xstrdup(s);
    if (cf->version && strlen(s) > 255)
        fail(c, v, path, "must be at most 255 characters");
}

static void k_udp_max(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    unsigned u;
    if (parse_uint(c, v, path, 512, 65535, &u) == 0)
        ((conf_t *)out)->udp_max_payload = (uint16_t)u;
}

static void k_tcp_max_clients(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 1, 1000000, &((conf_t *)out)->tcp_max_clients);
}

static void k_tcp_max_queries(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 0, UINT_MAX - 1, &((conf_t *)out)->tcp_max_queries);
}

static void k_tcp_idle(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    unsigned ms;
    if (!s || conf_parse_duration(s, &ms) < 0 || ms < 100) {
        fail(c, v, path, "expected a duration of at least 100ms such as 10s, got '%s'",
             s ? s : "");
        return;
    }
    ((conf_t *)out)->tcp_idle_timeout_ms = ms;
}

static void k_state_file(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 4000) {
        fail(c, v, path, "expected a file name or false");
        return;
    }
    free(cf->state_file);
    cf->state_file = is_false(s) ? NULL : resolve_path(c, s);
}

static void k_drain(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    unsigned ms;
    if (!s || conf_parse_duration(s, &ms) < 0 || ms > 600000) {
        fail(c, v, path, "expected a duration up to 10m such as 2s, got '%s'", s ? s : "");
        return;
    }
    ((conf_t *)out)->drain_ms = ms;
}

static void k_rrl_rate(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 0, 1000000, &((conf_t *)out)->rrl_rate);
}

static void k_rrl_slip(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 0, 10, &((conf_t *)out)->rrl_slip);
}

static void k_rrl_v4(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    unsigned u;
    if (parse_uint(c, v, path, 8, 32, &u) == 0)
        ((conf_t *)out)->rrl_v4_prefix = (uint8_t)u;
}

static void k_rrl_v6(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    unsigned u;
    if (parse_uint(c, v, path, 16, 128, &u) == 0)
        ((conf_t *)out)->rrl_v6_prefix = (uint8_t)u;
}

static const key_t_ rrl_keys[] = {
    { "rate", k_rrl_rate },
    { "slip", k_rrl_slip },
    { "ipv4_prefix", k_rrl_v4 },
    { "ipv6_prefix", k_rrl_v6 },
};

static void k_rrl(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    walk_map(c, v, path, rrl_keys, ARRAY_SIZE(rrl_keys), out);
}

static void k_minimal(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_bool(c, v, path, &((conf_t *)out)->minimal_responses);
}

static void k_udp_gso(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_bool(c, v, path, &((conf_t *)out)->udp_gso);
}

/* server.user / server.group: a name (or a number), checked when geocastd starts. */
static void k_user_or_group(ctx_t *c, const yaml_node_t *v, const char *path, char **out)
{
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 255 || strpbrk(s, ": \t\n/")) {
        fail(c, v, path, "expected a user or group name");
        return;
    }
    free(*out);
    *out = xstrdup(s);
}

static void k_user(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    k_user_or_group(c, v, path, &((conf_t *)out)->user);
}

static void k_group(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    k_user_or_group(c, v, path, &((conf_t *)out)->group);
}

static const key_t_ server_keys[] = {
    { "user", k_user },
    { "group", k_group },
    { "minimal_responses", k_minimal },
    { "rrl", k_rrl },
    { "state_file", k_state_file },
    { "drain", k_drain },
    { "listen", k_listen },
    { "workers", k_workers },
    { "identity", k_identity },
    { "version", k_version },
    { "udp_max_payload", k_udp_max },
    { "udp_gso", k_udp_gso },
    { "tcp_max_clients", k_tcp_max_clients },
    { "tcp_idle_timeout", k_tcp_idle },
    { "tcp_max_queries", k_tcp_max_queries },
};

static void k_server(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    walk_map(c, v, path, server_keys, ARRAY_SIZE(server_keys), out);
}

/* ---- zones ----------------------------------------------------------------------- */

static char *resolve_path(ctx_t *c, const char *p)
{
    if (p[0] == '/' || !c->dir || !*c->dir)
        return xstrdup(p);
    size_t n = strlen(c->dir) + strlen(p) + 2;
    char *r = xmalloc(n);
    snprintf(r, n, "%s/%s", c->dir, p);
    return r;
}

static void k_zone_file(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_zone_t *z = out;
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a file name");
        return;
    }
    z->file = resolve_path(c, s);
}

/* ---- routes ---------------------------------------------------------------------- */

static const yaml_node_item_t *seq_items(const yaml_node_t *v, size_t *n)
{
    *n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    return v->data.sequence.items.start;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    if (!s || !*s)
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return !*end && !errno;
}

static void k_ans_value(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected the record data as text");
        return;
    }
    ((conf_answer_t *)out)->value = xstrdup(s);
}

static void k_ans_boundary(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a boundary name");
        return;
    }
    ((conf_answer_t *)out)->boundary = xstrdup(s);
}

static void k_ans_location(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_answer_t *a = out;
    if (v->type == YAML_SEQUENCE_NODE) {
        size_t n;
        const yaml_node_item_t *it = seq_items(v, &n);
        double lat, lon;
        if (n != 2 || !parse_double(scalar(yaml_document_get_node(&c->doc, it[0])), &lat) ||
            !parse_double(scalar(yaml_document_get_node(&c->doc, it[1])), &lon) || lat < -90 ||
            lat > 90 || lon < -180 || lon > 180) {
            fail(c, v, path, "expected a place name or [latitude, longitude] in degrees");
            return;
        }
        a->has_latlon = true;
        a->lat = lat;
        a->lon = lon;
        return;
    }
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a place name or [latitude, longitude]");
        return;
    }
    a->location = xstrdup(s);
}

static void k_ans_weight(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 1, 1000000, &((conf_answer_t *)out)->weight);
}

/* A monitor name: letters, digits, '_', '-', '.'; no ':' (set-state reads MONITOR:ADDRESS). */
static bool monitor_name_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static void k_ans_monitor(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_answer_t *a = out;
    const char *s = scalar(v);
    if (s && is_false(s)) {
        a->no_monitor = true;
        return;
    }
    if (!s || !monitor_name_ok(s)) {
        fail(c, v, path, "expected a monitor name or false");
        return;
    }
    a->monitor = xstrdup(s);
}

static void k_ans_target(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 200 || strpbrk(s, " \t\r\n")) {
        fail(c, v, path, "expected the address the monitor checks");
        return;
    }
    ((conf_answer_t *)out)->target = xstrdup(s);
}

static const key_t_ answer_keys[] = {
    { "value", k_ans_value },
    { "boundary", k_ans_boundary },
    { "location", k_ans_location },
    { "weight", k_ans_weight },
    { "monitor", k_ans_monitor },
    { "target", k_ans_target },
};

static void k_route_ttl(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    unsigned u;
    if (parse_uint(c, v, path, 0, 2147483647u, &u) == 0)
        ((conf_route_t *)out)->ttl = u;
}

static void k_route_ecs(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
        ((conf_route_t *)out)->ecs = true;
    else if (s && is_false(s))
        ((conf_route_t *)out)->ecs = false;
    else
        fail(c, v, path, "expected true or false");
}

static void k_route_select(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 1, 1000, &((conf_route_t *)out)->select);
}

static void k_closest_select(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    k_route_select(c, v, path, out);
}

static const key_t_ closest_keys[] = {
    { "select", k_closest_select },
};

static void k_route_closest(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_route_t *r = out;
    const char *s = scalar(v);
    if (s) {
        if (!strcmp(s, "true") || !strcmp(s, "yes"))
            r->closest = true;
        else if (!is_false(s))
            fail(c, v, path, "expected true, false or { select: N }");
        return;
    }
    r->closest = true;
    walk_map(c, v, path, closest_keys, ARRAY_SIZE(closest_keys), r);
}

static void k_route_answers(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_route_t *r = out;
    if (v->type != YAML_SEQUENCE_NODE) {
        fail(c, v, path, "expected a list of answers");
        return;
    }
    size_t n;
    const yaml_node_item_t *items = seq_items(v, &n);
    if (n == 0 || n > 64) {
        fail(c, v, path, "expected 1 to 64 answers");
        return;
    }
    r->answers = xcalloc(n, sizeof(*r->answers));
    for (size_t i = 0; i < n && !c->failed; i++) {
        const yaml_node_t *it = yaml_document_get_node(&c->doc, items[i]);
        conf_answer_t *a = &r->answers[r->nanswers++];
        char sub[300];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        a->line = (unsigned)it->start_mark.line + 1;
        if (scalar(it)) {
            a->value = xstrdup(scalar(it)); /* a bare value: a fallback answer */
            continue;
        }
        walk_map(c, it, sub, answer_keys, ARRAY_SIZE(answer_keys), a);
        if (!c->failed && !a->value)
            fail(c, it, sub, "missing key 'value'");
    }
}

static void k_route_monitor(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !monitor_name_ok(s)) {
        fail(c, v, path, "expected a monitor name");
        return;
    }
    ((conf_route_t *)out)->monitor = xstrdup(s);
}

static const key_t_ route_keys[] = {
    { "monitor", k_route_monitor },
    { "ttl", k_route_ttl },
    { "ecs", k_route_ecs },
    { "closest", k_route_closest },
    { "select", k_route_select },
    { "answers", k_route_answers },
};

static const uint16_t routable_types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_CNAME, DNS_T_TXT,
                                           DNS_T_MX, DNS_T_SRV };

static int route_order(const void *x, const void *y)
{
    const conf_route_t *a = *(const conf_route_t *const *)x, *b = *(const conf_route_t *const *)y;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    int d = dns_dname_cmp(a->owner, b->owner);
    if (d)
        return d;
    return a->line < b->line ? -1 : a->line > b->line;
}

/* A name and type routed twice in a zone: sorted, so that 10,000 routes cost n log n. The
 * error names the first repeat in the file and the line of its first declaration. */
static void check_duplicate_routes(ctx_t *c, const conf_zone_t *z)
{
    if (z->nroutes < 2)
        return;
    const conf_route_t **r = xmalloc(z->nroutes * sizeof(*r));
    for (size_t i = 0; i < z->nroutes; i++)
        r[i] = &z->routes[i];
    qsort(r, z->nroutes, sizeof(*r), route_order);
    const conf_route_t *dup = NULL, *first = NULL, *group = r[0];
    for (size_t i = 1; i < z->nroutes; i++) {
        if (r[i]->type != group->type || dns_dname_cmp(r[i]->owner, group->owner)) {
            group = r[i];
            continue;
        }
        if (!dup || r[i]->line < dup->line)
            dup = r[i], first = group;
    }
    free(r);
    if (dup) {
        char tname[16];
        snprintf(c->err, c->errlen, "%s:%u: zones.%s.routes.%s.%s: route declared twice (also "
                 "at line %u)", c->file, dup->line, z->name, dup->name,
                 dup->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(dup->type, tname),
                 first->line);
        c->failed = true;
    }
}

static void k_zone_routes(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_zone_t *z = out;
    if (v->type != YAML_MAPPING_NODE) {
        fail(c, v, path, "expected a mapping of names");
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         p < v->data.mapping.pairs.top && !c->failed; p++) {
        yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
        yaml_node_t *types = yaml_document_get_node(&c->doc, p->value);
        const char *name = scalar(k);
        char sub[300];
        snprintf(sub, sizeof(sub), "%s.%s", path, name ? name : "?");
        uint8_t owner[DNS_NAME_MAX];
        int olen = -1;
        if (name && !strcmp(name, "@")) {
            olen = (int)dns_dname_len(z->origin);
            memcpy(owner, z->origin, (size_t)olen);
        } else if (name && *name && name[strlen(name) - 1] != '.') {
            olen = dns_dname_from_text(name, strlen(name), z->origin, owner);
        }
        if (olen < 0) {
            fail(c, k, sub, "bad name (use a name relative to the zone, or @)");
            return;
        }
        if (types->type != YAML_MAPPING_NODE) {
            fail(c, types, sub, "expected a mapping of record types");
            return;
        }
        for (yaml_node_pair_t *q = types->data.mapping.pairs.start;
             q < types->data.mapping.pairs.top && !c->failed; q++) {
            yaml_node_t *tk = yaml_document_get_node(&c->doc, q->key);
            yaml_node_t *rv = yaml_document_get_node(&c->doc, q->value);
            const char *ts = scalar(tk);
            char sub2[340];
            snprintf(sub2, sizeof(sub2), "%s.%s", sub, ts ? ts : "?");
            int type = ts ? dns_rrtype_from_text(ts, strlen(ts)) : -1;
            if (ts && !strcasecmp(ts, "ALIAS"))
                type = CONF_T_ALIAS;
            bool ok_type = type == CONF_T_ALIAS;
            for (size_t i = 0; i < ARRAY_SIZE(routable_types); i++)
                ok_type |= type == routable_types[i];
            if (!ok_type) {
                fail(c, tk, sub2, "routed types are A, AAAA, CNAME, TXT, MX, SRV and ALIAS");
                return;
            }
            if ((z->nroutes & (z->nroutes - 1)) == 0) /* 0, 1, 2, 4...: double */
                z->routes = xrealloc(z->routes, (z->nroutes ? 2 * z->nroutes : 1) * sizeof(*z->routes));
            conf_route_t *r = &z->routes[z->nroutes++];
            memset(r, 0, sizeof(*r));
            r->name = xstrdup(name);
            memcpy(r->owner, owner, (size_t)olen);
            r->type = (uint16_t)type;
            r->ttl = 300;
            r->ecs = true;
            r->line = (unsigned)tk->start_mark.line + 1;
            walk_map(c, rv, sub2, route_keys, ARRAY_SIZE(route_keys), r);
            if (!c->failed && r->nanswers == 0)
                fail(c, rv, sub2, "missing key 'answers'");
            if (!c->failed && (type == DNS_T_CNAME || type == CONF_T_ALIAS))
                r->select = 1; /* one CNAME per name; an ALIAS follows one target */
        }
    }
    if (!c->failed)
        check_duplicate_routes(c, z);
}

static const key_t_ zone_keys[] = {
    { "file", k_zone_file },
    { "routes", k_zone_routes },
};

static void k_zones(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    if (v->type != YAML_MAPPING_NODE) {
        fail(c, v, path, "expected a mapping of zone names");
        return;
    }
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    cf->zones = xcalloc(n ? n : 1, sizeof(*cf->zones));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         p < v->data.mapping.pairs.top && !c->failed; p++) {
        yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
        yaml_node_t *zv = yaml_document_get_node(&c->doc, p->value);
        const char *name = scalar(k);
        char sub[300];
        snprintf(sub, sizeof(sub), "%s.%s", path, name ? name : "?");
        conf_zone_t *z = &cf->zones[cf->nzones];
        if (!name || dns_dname_from_text(name, strlen(name), (const uint8_t *)"", z->origin) < 0) {
            fail(c, k, sub, "bad zone name");
            return;
        }
        for (size_t i = 0; i < cf->nzones; i++) {
            if (dns_dname_equal(cf->zones[i].origin, z->origin)) {
                fail(c, k, sub, "zone is declared twice (also at line %u)", cf->zones[i].line);
                return;
            }
        }
        z->name = xstrdup(name);
        z->line = (unsigned)k->start_mark.line + 1;
        cf->nzones++;
        walk_map(c, zv, sub, zone_keys, ARRAY_SIZE(zone_keys), z);
        if (!c->failed && !z->file)
            fail(c, zv, sub, "missing key 'file'");
    }
}

/* ---- geoip and boundaries --------------------------------------------------------- */

static void k_src_mmdb(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_geo_source_t *g = out;
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a file name");
        return;
    }
    g->kind = CONF_GEO_MMDB;
    g->path = resolve_path(c, s);
}

static void k_src_schema(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (s && !strcmp(s, "flat"))
        ((conf_geo_source_t *)out)->flat = true;
    else if (!s || strcmp(s, "maxmind"))
        fail(c, v, path, "expected maxmind or flat");
}

static void k_csv_blocks(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_geo_source_t *g = out;
    const yaml_node_item_t *items = NULL;
    size_t n = 1;
    if (v->type == YAML_SEQUENCE_NODE)
        items = seq_items(v, &n);
    if (n == 0 || (!items && !scalar(v))) {
        fail(c, v, path, "expected a list of *-Blocks-IPv4.csv / *-Blocks-IPv6.csv files");
        return;
    }
    g->blocks = xcalloc(n + 1, sizeof(*g->blocks));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *it = items ? yaml_document_get_node(&c->doc, items[i]) : v;
        const char *s = scalar(it);
        if (!s || !*s) {
            fail(c, it, path, "expected a file name");
            return;
        }
        g->blocks[i] = resolve_path(c, s);
    }
}

static void k_csv_locations(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a file name");
        return;
    }
    ((conf_geo_source_t *)out)->locations = resolve_path(c, s);
}

static const key_t_ csv_keys[] = {
    { "blocks", k_csv_blocks },
    { "locations", k_csv_locations },
};

static void k_src_csv(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_geo_source_t *g = out;
    g->kind = CONF_GEO_CSV;
    walk_map(c, v, path, csv_keys, ARRAY_SIZE(csv_keys), g);
    if (!c->failed && (!g->blocks || !g->locations))
        fail(c, v, path, "needs both 'blocks' and 'locations'");
}

static const key_t_ source_keys[] = {
    { "mmdb", k_src_mmdb },
    { "csv", k_src_csv },
    { "schema", k_src_schema },
};

static conf_geo_source_t *add_source(conf_t *cf, unsigned line)
{
    cf->geo = xrealloc(cf->geo, (cf->ngeo + 1) * sizeof(*cf->geo));
    conf_geo_source_t *g = &cf->geo[cf->ngeo++];
    memset(g, 0, sizeof(*g));
    g->line = line;
    return g;
}

static void k_geo_mmdb(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    if (cf->ngeo) {
        fail(c, v, path, "use either geoip.mmdb or geoip.sources");
        return;
    }
    k_src_mmdb(c, v, path, add_source(cf, (unsigned)v->start_mark.line + 1));
}

static void k_geo_sources(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    if (cf->ngeo || v->type != YAML_SEQUENCE_NODE) {
        fail(c, v, path, cf->ngeo ? "use either geoip.mmdb or geoip.sources"
                                  : "expected a list of sources");
        return;
    }
    size_t n;
    const yaml_node_item_t *items = seq_items(v, &n);
    for (size_t i = 0; i < n && !c->failed; i++) {
        const yaml_node_t *it = yaml_document_get_node(&c->doc, items[i]);
        char sub[300];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        conf_geo_source_t *g = add_source(cf, (unsigned)it->start_mark.line + 1);
        walk_map(c, it, sub, source_keys, ARRAY_SIZE(source_keys), g);
        if (!c->failed && !g->kind)
            fail(c, it, sub, "needs 'mmdb' or 'csv'");
        if (!c->failed && g->kind == CONF_GEO_CSV && g->flat)
            fail(c, it, sub, "'schema' applies to mmdb sources");
    }
}

static void k_geo_watch(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
        ((conf_t *)out)->geoip_watch = true;
    else if (s && is_false(s))
        ((conf_t *)out)->geoip_watch = false;
    else
        fail(c, v, path, "expected true or false");
}

static void k_geo_watch_delay(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    unsigned ms;
    if (!s || conf_parse_duration(s, &ms) < 0 || ms > 600000) {
        fail(c, v, path, "expected a duration up to 10m such as 2s, got '%s'", s ? s : "");
        return;
    }
    ((conf_t *)out)->geoip_watch_delay_ms = ms;
}

static const key_t_ geoip_keys[] = {
    { "watch", k_geo_watch },
    { "watch_delay", k_geo_watch_delay },
    { "mmdb", k_geo_mmdb },
    { "sources", k_geo_sources },
};

static void k_geoip(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    walk_map(c, v, path, geoip_keys, ARRAY_SIZE(geoip_keys), out);
    if (!c->failed && ((conf_t *)out)->ngeo == 0)
        fail(c, v, path, "needs 'mmdb' or 'sources'");
}

static void k_networks_file(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_boundary_t *b = out;
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a file name");
        return;
    }
    b->networks_file = resolve_path(c, s);
}

static const key_t_ boundary_keys[] = {
    { "networks_file", k_networks_file },
};

static void k_boundaries(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    if (v->type != YAML_MAPPING_NODE) {
        fail(c, v, path, "expected a mapping of boundary names to lists");
        return;
    }
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    cf->boundaries = xcalloc(n ? n : 1, sizeof(*cf->boundaries));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         p < v->data.mapping.pairs.top && !c->failed; p++) {
        yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
        yaml_node_t *lv = yaml_document_get_node(&c->doc, p->value);
        const char *name = scalar(k);
        char sub[300];
        snprintf(sub, sizeof(sub), "%s.%s", path, name ? name : "?");
        if (!name || !*name) {
            fail(c, k, sub, "bad boundary name");
            return;
        }
        for (size_t i = 0; i < cf->nboundaries; i++) {
            if (!strcmp(cf->boundaries[i].name, name)) {
                fail(c, k, sub, "boundary declared twice");
                return;
            }
        }
        conf_boundary_t *b = &cf->boundaries[cf->nboundaries++];
        b->name = xstrdup(name);
        b->line = (unsigned)k->start_mark.line + 1;
        if (lv->type == YAML_MAPPING_NODE) {
            /* { networks_file: FILE }: the networks are read by the policy compiler */
            walk_map(c, lv, sub, boundary_keys, ARRAY_SIZE(boundary_keys), b);
            if (!c->failed && !b->networks_file)
                fail(c, lv, sub, "needs 'networks_file' (or a list of places and networks)");
            continue;
        }
        size_t m = 1;
        const yaml_node_item_t *items = NULL;
        if (lv->type == YAML_SEQUENCE_NODE)
            items = seq_items(lv, &m);
        else if (!scalar(lv))
            m = 0;
        if (m == 0) {
            fail(c, lv, sub, "expected a list of places and networks, or { networks_file: FILE }");
            return;
        }
        b->entries = xcalloc(m, sizeof(*b->entries));
        b->lines = xcalloc(m, sizeof(*b->lines));
        for (size_t i = 0; i < m; i++) {
            const yaml_node_t *it = items ? yaml_document_get_node(&c->doc, items[i]) : lv;
            const char *s = scalar(it);
            if (!s || !*s) {
                fail(c, it, sub, "expected a place name or a network");
                return;
            }
            b->entries[i] = xstrdup(s);
            b->lines[i] = (unsigned)it->start_mark.line + 1;
            b->nentries++;
        }
    }
}

/* ---- monitors -------------------------------------------------------------------- */

/* Which monitor types take a key (bit 1 << type). */
#define M_TCP (1u << CONF_MON_TCP)
#define M_HTTP (1u << CONF_MON_HTTP)
#define M_DNS (1u << CONF_MON_DNS)
#define M_FILE (1u << CONF_MON_FILE)
#define M_ALL (M_TCP | M_HTTP | M_DNS | M_FILE)

static void k_mon_type(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    (void)c;
    (void)v;
    (void)path;
    (void)out; /* read before the walk (the other keys depend on it) */
}

static void k_mon_port(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    unsigned u;
    if (parse_uint(c, v, path, 1, 65535, &u) == 0)
        ((conf_monitor_t *)out)->port = (uint16_t)u;
}

static void mon_duration(ctx_t *c, const yaml_node_t *v, const char *path, unsigned *out)
{
    const char *s = scalar(v);
    unsigned ms;
    if (!s || conf_parse_duration(s, &ms) < 0 || ms < 10 || ms > 86400000) {
        fail(c, v, path, "expected a duration from 10ms to 24h such as 5s or 200ms, got '%s'",
             s ? s : "");
        return;
    }
    *out = ms;
}

static void k_mon_interval(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    mon_duration(c, v, path, &((conf_monitor_t *)out)->interval_ms);
}

static void k_mon_timeout(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    mon_duration(c, v, path, &((conf_monitor_t *)out)->timeout_ms);
}

static void k_mon_up(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 1, 1000, &((conf_monitor_t *)out)->up);
}

static void k_mon_down(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 1, 1000, &((conf_monitor_t *)out)->down);
}

static void k_mon_path(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || s[0] != '/' || strlen(s) > 1000 || strpbrk(s, " \t\r\n")) {
        fail(c, v, path, "expected a request path such as /health");
        return;
    }
    ((conf_monitor_t *)out)->path = xstrdup(s);
}

static void k_mon_host(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 255 || strpbrk(s, " \t\r\n")) {
        fail(c, v, path, "expected a host name");
        return;
    }
    ((conf_monitor_t *)out)->host = xstrdup(s);
}

static void k_mon_expect(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_uint(c, v, path, 100, 599, &((conf_monitor_t *)out)->expect);
}

static void k_mon_body(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 1000) {
        fail(c, v, path, "expected the text the response body must contain");
        return;
    }
    ((conf_monitor_t *)out)->body = xstrdup(s);
}

static void k_mon_name(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    uint8_t wire[DNS_NAME_MAX];
    if (!s || !*s || dns_dname_from_text(s, strlen(s), (const uint8_t *)"", wire) < 0) {
        fail(c, v, path, "expected a domain name");
        return;
    }
    ((conf_monitor_t *)out)->qname = xstrdup(s);
}

static void k_mon_qtype(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    int t = s ? dns_rrtype_from_text(s, strlen(s)) : -1;
    if (t <= 0) {
        fail(c, v, path, "expected a record type such as A or SOA");
        return;
    }
    ((conf_monitor_t *)out)->qtype = (uint16_t)t;
}

static void k_mon_rcode(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL",
                                         "NXDOMAIN", "NOTIMP", "REFUSED" };
    const char *s = scalar(v);
    for (size_t i = 0; s && i < ARRAY_SIZE(names); i++) {
        if (!strcasecmp(s, names[i])) {
            ((conf_monitor_t *)out)->rcode = (uint8_t)i;
            return;
        }
    }
    unsigned u;
    if (s && *s >= '0' && *s <= '9' && parse_uint(c, v, path, 0, 15, &u) == 0) {
        ((conf_monitor_t *)out)->rcode = (uint8_t)u;
        return;
    }
    fail(c, v, path, "expected NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED or 0-15");
}

static void k_mon_file(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 4000) {
        fail(c, v, path, "expected a file name");
        return;
    }
    ((conf_monitor_t *)out)->file = resolve_path(c, s);
}

static const struct {
    key_t_ k;
    unsigned types;
} monitor_keys[] = {
    { { "type", k_mon_type }, M_ALL },
    { { "interval", k_mon_interval }, M_ALL },
    { { "up", k_mon_up }, M_ALL },
    { { "down", k_mon_down }, M_ALL },
    { { "timeout", k_mon_timeout }, M_TCP | M_HTTP | M_DNS },
    { { "port", k_mon_port }, M_TCP | M_HTTP | M_DNS },
    { { "path", k_mon_path }, M_HTTP },
    { { "host", k_mon_host }, M_HTTP },
    { { "expect", k_mon_expect }, M_HTTP },
    { { "body", k_mon_body }, M_HTTP },
    { { "name", k_mon_name }, M_DNS },
    { { "qtype", k_mon_qtype }, M_DNS },
    { { "rcode", k_mon_rcode }, M_DNS },
    { { "file", k_mon_file }, M_FILE },
};

static const char *const mon_type_names[] = { "", "tcp", "http", "dns", "file" };

static void parse_monitor(ctx_t *c, const yaml_node_t *v, const char *path, conf_monitor_t *m)
{
    if (v->type != YAML_MAPPING_NODE) {
        fail(c, v, path, "expected a mapping such as { type: tcp, port: 443 }");
        return;
    }
    /* The type first: it decides which keys apply. */
    const yaml_node_t *tnode = NULL;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const char *ks = scalar(yaml_document_get_node(&c->doc, p->key));
        if (ks && !strcmp(ks, "type"))
            tnode = yaml_document_get_node(&c->doc, p->value);
    }
    char sub[400];
    snprintf(sub, sizeof(sub), "%s.type", path);
    const char *ts = scalar(tnode);
    for (int t = CONF_MON_TCP; ts && t <= CONF_MON_FILE; t++)
        if (!strcmp(ts, mon_type_names[t]))
            m->type = (conf_mon_type_t)t;
    if (!m->type) {
        fail(c, tnode ? tnode : v, tnode ? sub : path,
             tnode ? "expected tcp, http, dns or file"
                   : "missing key 'type' (tcp, http, dns or file)");
        return;
    }
    key_t_ keys[ARRAY_SIZE(monitor_keys)];
    size_t nkeys = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
        const char *ks = scalar(k);
        for (size_t i = 0; ks && i < ARRAY_SIZE(monitor_keys); i++) {
            if (!strcmp(ks, monitor_keys[i].k.key) && !(monitor_keys[i].types & (1u << m->type))) {
                snprintf(sub, sizeof(sub), "%s.%s", path, ks);
                fail(c, k, sub, "does not apply to %s monitors", mon_type_names[m->type]);
                return;
            }
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(monitor_keys); i++)
        if (monitor_keys[i].types & (1u << m->type))
            keys[nkeys++] = monitor_keys[i].k;
    m->interval_ms = 10000;
    m->timeout_ms = 0;
    m->up = 2;
    m->down = 2;
    m->expect = 200;
    m->qtype = DNS_T_A;
    walk_map(c, v, path, keys, nkeys, m);
    if (c->failed)
        return;
    if (m->type == CONF_MON_TCP && !m->port)
        fail(c, v, path, "a tcp monitor needs 'port'");
    else if (m->type == CONF_MON_DNS && !m->qname)
        fail(c, v, path, "a dns monitor needs 'name' (the name to query)");
    else if (m->type == CONF_MON_FILE && !m->file)
        fail(c, v, path, "a file monitor needs 'file'");
    else if (m->timeout_ms > m->interval_ms)
        fail(c, v, path, "timeout (%ums) is longer than interval (%ums)", m->timeout_ms,
             m->interval_ms);
    if (!m->port)
        m->port = m->type == CONF_MON_HTTP ? 80 : m->type == CONF_MON_DNS ? 53 : 0;
    if (!m->timeout_ms)
        m->timeout_ms = m->interval_ms < 3000 ? m->interval_ms : 3000;
    if (m->type == CONF_MON_HTTP && !m->path)
        m->path = xstrdup("/");
}

static void k_monitors(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    if (v->type != YAML_MAPPING_NODE) {
        fail(c, v, path, "expected a mapping of monitor names");
        return;
    }
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    cf->monitors = xcalloc(n ? n : 1, sizeof(*cf->monitors));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
         p < v->data.mapping.pairs.top && !c->failed; p++) {
        yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
        yaml_node_t *mv = yaml_document_get_node(&c->doc, p->value);
        const char *name = scalar(k);
        char sub[300];
        snprintf(sub, sizeof(sub), "%s.%s", path, name ? name : "?");
        if (!name || !monitor_name_ok(name)) {
            fail(c, k, sub, "bad monitor name (letters, digits, '_', '-', '.')");
            return;
        }
        if (conf_monitor_find(cf, name)) {
            fail(c, k, sub, "monitor declared twice");
            return;
        }
        conf_monitor_t *m = &cf->monitors[cf->nmonitors++];
        m->name = xstrdup(name);
        m->line = (unsigned)k->start_mark.line + 1;
        parse_monitor(c, mv, sub, m);
    }
}

const conf_monitor_t *conf_monitor_find(const conf_t *c, const char *name)
{
    for (size_t i = 0; i < c->nmonitors; i++)
        if (!strcmp(c->monitors[i].name, name))
            return &c->monitors[i];
    return NULL;
}

const conf_monitor_t *conf_answer_monitor(const conf_t *c, const conf_route_t *r, size_t i)
{
    const conf_answer_t *a = &r->answers[i];
    if (a->no_monitor)
        return NULL;
    const char *name = a->monitor ? a->monitor : r->monitor;
    return name ? conf_monitor_find(c, name) : NULL;
}

static bool is_address(const char *s)
{
    uint8_t buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Every monitor a route names exists, and every checked answer has something to check. */
static void check_monitor_refs(ctx_t *c, conf_t *cf)
{
    for (size_t zi = 0; zi < cf->nzones && !c->failed; zi++) {
        const conf_zone_t *z = &cf->zones[zi];
        for (size_t ri = 0; ri < z->nroutes && !c->failed; ri++) {
            const conf_route_t *r = &z->routes[ri];
            char tname[16], path[400];
            snprintf(path, sizeof(path), "zones.%s.routes.%s.%s", z->name, r->name,
                     r->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(r->type, tname));
            if (r->monitor && !conf_monitor_find(cf, r->monitor)) {
                snprintf(c->err, c->errlen, "%s:%u: %s.monitor: unknown monitor '%s'", c->file,
                         r->line, path, r->monitor);
                c->failed = true;
                return;
            }
            bool addr_type = r->type == DNS_T_A || r->type == DNS_T_AAAA;
            for (size_t i = 0; i < r->nanswers; i++) {
                const conf_answer_t *a = &r->answers[i];
                const conf_monitor_t *m = conf_answer_monitor(cf, r, i);
                const char *key = "monitor", *why = NULL;
                char buf[160];
                if (a->monitor && !m) {
                    snprintf(buf, sizeof(buf), "unknown monitor '%s'", a->monitor);
                    why = buf;
                } else if (m && !a->target && !addr_type) {
                    why = "needs 'target: ADDRESS' (what the monitor checks: only A and AAAA "
                          "answers are their own target)";
                } else if (m && a->target && m->type != CONF_MON_FILE && !is_address(a->target)) {
                    key = "target";
                    why = "not an IP address";
                } else if (!m && a->target) {
                    key = "target";
                    why = "the answer has no monitor";
                }
                if (why) {
                    snprintf(c->err, c->errlen, "%s:%u: %s.answers[%zu].%s: %s", c->file, a->line,
                             path, i, key, why);
                    c->failed = true;
                    return;
                }
            }
        }
    }
}

/* ---- control --------------------------------------------------------------------- */

static void k_ctl_socket(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (!s) {
        fail(c, v, path, "expected a file name or false");
        return;
    }
    free(cf->control_socket);
    cf->control_socket = is_false(s) || !*s ? NULL : resolve_path(c, s);
    /* sockaddr_un.sun_path holds 108 bytes with the terminating NUL. */
    if (cf->control_socket && strlen(cf->control_socket) > 107)
        fail(c, v, path, "the socket path is longer than 107 bytes");
}

static void k_ctl_http(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (!s) {
        fail(c, v, path, "expected \"address@port\" or false");
        return;
    }
    free(cf->control_http);
    cf->control_http = NULL;
    if (is_false(s))
        return;
    if (!strchr(s, '@') ||
        conf_parse_listen(s, &cf->control_http_addr, &cf->control_http_addrlen) < 0) {
        fail(c, v, path, "bad address '%s' (expected address@port, e.g. 127.0.0.1@8053)", s);
        return;
    }
    cf->control_http = xstrdup(s);
}

static void k_met_detailed(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_bool(c, v, path, &((conf_t *)out)->metrics_detailed);
}

static void k_met_countries(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_bool(c, v, path, &((conf_t *)out)->metrics_countries);
}

static const key_t_ metrics_keys[] = {
    { "detailed", k_met_detailed },
    { "countries", k_met_countries },
};

static void k_ctl_metrics(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    walk_map(c, v, path, metrics_keys, ARRAY_SIZE(metrics_keys), out);
}

static const key_t_ control_keys[] = {
    { "socket", k_ctl_socket },
    { "http", k_ctl_http },
    { "metrics", k_ctl_metrics },
};

/* ---- logging --------------------------------------------------------------------- */

static void dnstap_path(ctx_t *c, const yaml_node_t *v, const char *path, conf_t *cf, bool sock)
{
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a file name");
        return;
    }
    if (cf->dnstap_path) {
        fail(c, v, path, "give either logging.dnstap.file or logging.dnstap.socket, not both");
        return;
    }
    cf->dnstap_path = resolve_path(c, s);
    cf->dnstap_socket = sock;
    if (sock && strlen(cf->dnstap_path) > 107)
        fail(c, v, path, "the socket path is longer than 107 bytes");
}

static void k_dt_file(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    dnstap_path(c, v, path, out, false);
}

static void k_dt_socket(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    dnstap_path(c, v, path, out, true);
}

static void k_dt_queries(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_bool(c, v, path, &((conf_t *)out)->dnstap_queries);
}

static void k_dt_responses(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    parse_bool(c, v, path, &((conf_t *)out)->dnstap_responses);
}

static void dt_string(ctx_t *c, const yaml_node_t *v, const char *path, char **out)
{
    const char *s = scalar(v);
    if (!s || !*s || strlen(s) > 255) {
        fail(c, v, path, "expected a string of 1 to 255 characters");
        return;
    }
    free(*out);
    *out = xstrdup(s);
}

static void k_dt_identity(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    dt_string(c, v, path, &((conf_t *)out)->dnstap_identity);
}

static void k_dt_version(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    dt_string(c, v, path, &((conf_t *)out)->dnstap_version);
}

static void k_dt_queue(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    unsigned u;
    /* 16384: an 8 MiB frame ring per I/O thread (server/dnstap.c: 320 bytes a frame) */
    if (parse_uint(c, v, path, 2, 16384, &u) < 0)
        return;
    if (u & (u - 1))
        fail(c, v, path, "must be a power of 2, got %u", u);
    else
        ((conf_t *)out)->dnstap_queue = u;
}

static const key_t_ dnstap_keys[] = {
    { "file", k_dt_file },
    { "socket", k_dt_socket },
    { "queries", k_dt_queries },
    { "responses", k_dt_responses },
    { "identity", k_dt_identity },
    { "version", k_dt_version },
    { "queue", k_dt_queue },
};

static void k_dnstap(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    walk_map(c, v, path, dnstap_keys, ARRAY_SIZE(dnstap_keys), out);
    if (!c->failed && !cf->dnstap_path)
        fail(c, v, path, "needs file or socket");
    if (!c->failed && !cf->dnstap_queries && !cf->dnstap_responses)
        fail(c, v, path, "queries and responses are both false: remove logging.dnstap");
}

static void k_query_log(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    conf_t *cf = out;
    const char *s = scalar(v);
    if (!s || !*s) {
        fail(c, v, path, "expected a file name or false");
        return;
    }
    free(cf->query_log);
    cf->query_log = is_false(s) ? NULL : resolve_path(c, s);
}

static const key_t_ logging_keys[] = {
    { "dnstap", k_dnstap },
    { "query_log", k_query_log },
};

static void k_logging(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    walk_map(c, v, path, logging_keys, ARRAY_SIZE(logging_keys), out);
}

static void k_control(ctx_t *c, const yaml_node_t *v, const char *path, void *out)
{
    walk_map(c, v, path, control_keys, ARRAY_SIZE(control_keys), out);
}

static const key_t_ top_keys[] = {
    { "server", k_server },
    { "control", k_control },
    { "logging", k_logging },
    { "zones", k_zones },
    { "geoip", k_geoip },
    { "boundaries", k_boundaries },
    { "monitors", k_monitors },
};

/* ---- entry points ---------------------------------------------------------------- */

static void set_defaults(conf_t *cf)
{
    cf->workers = 0;
    cf->udp_max_payload = 1232;
    cf->udp_gso = true;
    cf->tcp_max_clients = 1000;
    cf->tcp_idle_timeout_ms = 10000;
    cf->tcp_max_queries = 0;
    cf->rrl_slip = 2;
    cf->geoip_watch_delay_ms = 1000;
    cf->rrl_v4_prefix = 24;
    cf->rrl_v6_prefix = 56;
    cf->metrics_detailed = true;
    cf->metrics_countries = false; /* one more GeoIP lookup per query: opt in */
    cf->dnstap_queries = true;
    cf->dnstap_responses = true;
    cf->dnstap_queue = 4096;
    char host[256];
    if (gethostname(host, sizeof(host)) == 0 && host[0]) {
        host[sizeof(host) - 1] = 0;
        cf->identity = xstrdup(host);
    }
    cf->version = xstrdup(GEOCAST_VERSION_STRING);
}

conf_t *conf_load_buffer(const char *text, size_t len, const char *name, const char *dir,
                         char *err, size_t errlen)
{
    ctx_t c = { .file = name, .dir = dir, .err = err, .errlen = errlen };
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &c.doc)) {
        snprintf(err, errlen, "%s:%lu: YAML error: %s%s%s", name,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "syntax error",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);

    conf_t *cf = xcalloc(1, sizeof(*cf));
    cf->path = xstrdup(name);
    set_defaults(cf);
    yaml_node_t *root = yaml_document_get_root_node(&c.doc);
    if (!root) {
        fail(&c, NULL, "", "the configuration is empty");
    } else {
        walk_map(&c, root, "", top_keys, ARRAY_SIZE(top_keys), cf);
    }
    if (!c.failed && cf->nlisten == 0) {
        static const char *defaults[] = { "0.0.0.0@53", "::@53" };
        cf->listen = xcalloc(2, sizeof(*cf->listen));
        for (size_t i = 0; i < 2; i++) {
            conf_parse_listen(defaults[i], &cf->listen[i].addr, &cf->listen[i].addrlen);
            cf->listen[i].text = xstrdup(defaults[i]);
        }
        cf->nlisten = 2;
    }
    if (!c.failed && cf->nzones == 0)
        fail(&c, root, "zones", "no zones are configured");
    if (!c.failed)
        check_monitor_refs(&c, cf);
    yaml_document_delete(&c.doc);
    if (c.failed) {
        conf_free(cf);
        return NULL;
    }
    return cf;
}

conf_t *conf_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return NULL;
    }
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    conf_t *cf = conf_load_buffer(buf, len, path, dir, err, errlen);
    free(dir);
    free(buf);
    return cf;
}

void conf_free(conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i].text);
    free(c->listen);
    for (size_t i = 0; i < c->nzones; i++) {
        conf_zone_t *z = &c->zones[i];
        for (size_t j = 0; j < z->nroutes; j++) {
            conf_route_t *r = &z->routes[j];
            for (size_t k = 0; k < r->nanswers; k++) {
                free(r->answers[k].value);
                free(r->answers[k].boundary);
                free(r->answers[k].location);
                free(r->answers[k].monitor);
                free(r->answers[k].target);
            }
            free(r->answers);
            free(r->monitor);
            free(r->name);
        }
        free(z->routes);
        free(z->name);
        free(z->file);
    }
    free(c->zones);
    for (size_t i = 0; i < c->ngeo; i++) {
        free(c->geo[i].path);
        for (char **b = c->geo[i].blocks; b && *b; b++)
            free(*b);
        free(c->geo[i].blocks);
        free(c->geo[i].locations);
    }
    free(c->geo);
    for (size_t i = 0; i < c->nboundaries; i++) {
        for (size_t j = 0; j < c->boundaries[i].nentries; j++)
            free(c->boundaries[i].entries[j]);
        free(c->boundaries[i].entries);
        free(c->boundaries[i].lines);
        free(c->boundaries[i].networks_file);
        free(c->boundaries[i].name);
    }
    free(c->boundaries);
    for (size_t i = 0; i < c->nmonitors; i++) {
        conf_monitor_t *m = &c->monitors[i];
        free(m->name);
        free(m->path);
        free(m->host);
        free(m->body);
        free(m->qname);
        free(m->file);
    }
    free(c->monitors);
    free(c->control_socket);
    free(c->control_http);
    free(c->dnstap_path);
    free(c->dnstap_identity);
    free(c->dnstap_version);
    free(c->query_log);
    free(c->identity);
    free(c->version);
    free(c->state_file);
    free(c->user);
    free(c->group);
    free(c->path);
    free(c);
}
