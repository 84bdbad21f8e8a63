/* geodiff: how much address space gets different answers under a new GeoIP database. */
#include "ctl/ctl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/json.h"
#include "dns/dname.h"
#include "dns/rrtype.h"
#include "policy/policy.h"

typedef unsigned __int128 u128;

/* One distinct (old table, new table) pair: routes that share both share the counts. */
typedef struct {
    const pol_route_t *old, *new;
    uint64_t v4_first, v4_list;   /* IPv4 addresses */
    u128 v6_first, v6_list;       /* IPv6 addresses (reported in /64s) */
} pair_t;

typedef struct {
    pair_t *pairs;
    size_t npairs;
    size_t *route_pair;           /* per route of the old set: index into pairs */
    uint64_t v4_first, v4_list;   /* union over every route */
    u128 v6_first, v6_list;
} diff_t;

static bool first_differs(const pol_decision_t *a, const pol_decision_t *b)
{
    if (!a->n || !b->n)
        return a->n != b->n;
    return a->idx[0] != b->idx[0];
}

static bool list_differs(const pol_decision_t *a, const pol_decision_t *b)
{
    return a->n != b->n || memcmp(a->idx, b->idx, a->n * sizeof(a->idx[0])) != 0;
}

/* Decide every pair at addr; returns the longest scope seen (the block around addr in
 * which no pair's old or new answer changes) and whether any first answer / list
 * differs, noting per pair which did in the flags arrays. */
static unsigned decide_all(diff_t *d, int family, const uint8_t *addr, bool *fd, bool *ld,
                           bool *any_first, bool *any_list)
{
    unsigned plen = 0;
    *any_first = *any_list = false;
    for (size_t i = 0; i < d->npairs; i++) {
        pol_result_t ro, rn;
        pol_route_decide(d->pairs[i].old, family, addr, &ro);
        pol_route_decide(d->pairs[i].new, family, addr, &rn);
        plen = MAX(plen, MAX(ro.scope, rn.scope));
        fd[i] = first_differs(ro.d, rn.d);
        ld[i] = list_differs(ro.d, rn.d);
        *any_first |= fd[i];
        *any_list |= ld[i];
    }
    return plen;
}

static void walk_v4(diff_t *d, bool *fd, bool *ld)
{
    for (uint64_t a = 0; a < (1ull << 32);) {
        uint8_t addr[4] = { (uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a };
        bool af, al;
        unsigned plen = decide_all(d, AF_INET, addr, fd, ld, &af, &al);
        uint64_t size = 1ull << (32 - MIN(plen, 32u));
        uint64_t end = (a & ~(size - 1)) + size;
        uint64_t n = end - a;
        for (size_t i = 0; i < d->npairs; i++) {
            d->pairs[i].v4_first += fd[i] ? n : 0;
            d->pairs[i].v4_list += ld[i] ? n : 0;
        }
        d->v4_first += af ? n : 0;
        d->v4_list += al ? n : 0;
        a = end;
    }
}

/* The IPv6 regions that alias the IPv4 space (see geo.h), in address order: counted in
 * IPv4, skipped here. */
static const struct {
    uint16_t w[2];                /* first two 16-bit words... */
    uint64_t lo;                  /* ...and the low 64 bits, of the first address */
    unsigned prefix;
} v6_alias[] = {
    { { 0, 0 }, 0, 96 },                         /* ::/96 (compatible) */
    { { 0, 0 }, 0xffff00000000ull, 96 },         /* ::ffff:0:0/96 (mapped) */
    { { 0x2001, 0 }, 0, 32 },                    /* 2001::/32 (Teredo) */
    { { 0x2002, 0 }, 0, 16 },                    /* 2002::/16 (6to4) */
};

static u128 alias_start(size_t i)
{
    return ((u128)v6_alias[i].w[0] << 112) | ((u128)v6_alias[i].w[1] << 96) | v6_alias[i].lo;
}

static u128 block(unsigned prefix)
{
    return prefix ? (u128)1 << (128 - prefix) : 0; /* 0: the whole space (2^128) */
}

static void walk_v6(diff_t *d, bool *fd, bool *ld)
{
    u128 a = 0;
    for (;;) {
        /* Skip an alias region starting here; else stop the block at the next one. */
        u128 limit = 0; /* 0: the end of the space */
        bool skipped = false;
        for (size_t i = 0; i < ARRAY_SIZE(v6_alias); i++) {
            u128 s = alias_start(i), sz = block(v6_alias[i].prefix);
            if (a >= s && a - s < sz) {
                a = s + sz;
                skipped = true;
                break;
            }
            if (s > a && (!limit || s < limit))
                limit = s;
        }
        if (skipped) {
            if (a == 0)
                break;
            continue;
        }
        uint8_t addr[16];
        for (int i = 0; i < 16; i++)
            addr[i] = (uint8_t)(a >> (120 - 8 * i));
        bool af, al;
        unsigned plen = decide_all(d, AF_INET6, addr, fd, ld, &af, &al);
        u128 size = block(MIN(plen, 128u));
        u128 end = size ? (a & ~(size - 1)) + size : 0; /* wraps to 0 at the top */
        if (limit && (end == 0 || end > limit))
            end = limit;
        u128 n = end - a; /* modulo 2^128: a whole-space block from 0 cannot happen (aliases) */
        for (size_t i = 0; i < d->npairs; i++) {
            d->pairs[i].v6_first += fd[i] ? n : 0;
            d->pairs[i].v6_list += ld[i] ? n : 0;
        }
        d->v6_first += af ? n : 0;
        d->v6_list += al ? n : 0;
        if (end == 0)
            break;
        a = end;
    }
}

static int diff_sets(diff_t *d, const pol_set_t *o, const pol_set_t *n, char *err,
                     size_t errlen)
{
    size_t nr = pol_set_route_count(o);
    if (nr != pol_set_route_count(n)) {
        snprintf(err, errlen, "geodiff: the two compiled route sets differ in size");
        return ERR_INVAL;
    }
    d->pairs = xcalloc(nr ? nr : 1, sizeof(*d->pairs));
    d->route_pair = xcalloc(nr ? nr : 1, sizeof(*d->route_pair));
    for (size_t i = 0; i < nr; i++) {
        const pol_route_t *ro = pol_set_route(o, i);
        const pol_route_t *rn = pol_set_find(n, ro->owner, ro->type);
        if (!rn) {
            snprintf(err, errlen, "geodiff: a route is missing from the second compile");
            return ERR_INVAL;
        }
        size_t j;
        for (j = 0; j < d->npairs; j++)
            if (d->pairs[j].old->policy == ro->policy && d->pairs[j].new->policy == rn->policy)
                break;
        if (j == d->npairs) {
            d->pairs[j].old = ro;
            d->pairs[j].new = rn;
            d->npairs++;
        }
        d->route_pair[i] = j;
    }
    bool *fd = xcalloc(d->npairs ? d->npairs : 1, sizeof(bool));
    bool *ld = xcalloc(d->npairs ? d->npairs : 1, sizeof(bool));
    walk_v4(d, fd, ld);
    walk_v6(d, fd, ld);
    free(fd);
    free(ld);
    return 0;
}

/* IPv6 addresses in /64 networks (a part of a /64 counts pro rata, rounded down). */
static unsigned long long in_64s(u128 n)
{
    return (unsigned long long)(n >> 64);
}

static double pct4(uint64_t n)
{
    return 100.0 * (double)n / 4294967296.0;
}

static double pct6(u128 n)
{
    return 100.0 * (double)(n >> 64) / 18446744073709551616.0;
}

static void print_text(FILE *out, const diff_t *d, const pol_set_t *o, const char *old_path,
                       const char *new_path)
{
    fprintf(out, "geodiff %s -> %s\n", old_path, new_path);
    fprintf(out, "IPv4 in addresses, IPv6 in /64 networks; first: the first answer changes, "
                 "list: the ordered answer list changes\n");
    size_t nr = pol_set_route_count(o);
    for (size_t i = 0; i < nr; i++) {
        const pol_route_t *r = pol_set_route(o, i);
        const pair_t *p = &d->pairs[d->route_pair[i]];
        char name[DNS_TEXT_MAX], tname[16];
        dns_dname_to_text(r->owner, name);
        const char *type = r->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(r->type, tname);
        fprintf(out,
                "%s %s: ipv4 first %llu (%.3g%%) list %llu (%.3g%%); ipv6 first %llu (%.3g%%) "
                "list %llu (%.3g%%)\n",
                name, type, (unsigned long long)p->v4_first, pct4(p->v4_first),
                (unsigned long long)p->v4_list, pct4(p->v4_list), in_64s(p->v6_first),
                pct6(p->v6_first), in_64s(p->v6_list), pct6(p->v6_list));
    }
    fprintf(out,
            "any route: ipv4 first %llu (%.3g%%) list %llu (%.3g%%); ipv6 first %llu (%.3g%%) "
            "list %llu (%.3g%%)\n",
            (unsigned long long)d->v4_first, pct4(d->v4_first), (unsigned long long)d->v4_list,
            pct4(d->v4_list), in_64s(d->v6_first), pct6(d->v6_first), in_64s(d->v6_list),
            pct6(d->v6_list));
}

static void json_counts(FILE *out, uint64_t f4, uint64_t l4, u128 f6, u128 l6)
{
    fprintf(out,
            "\"ipv4\":{\"first\":%llu,\"list\":%llu},\"ipv6_64s\":{\"first\":%llu,\"list\":%llu}",
            (unsigned long long)f4, (unsigned long long)l4, in_64s(f6), in_64s(l6));
}

static void print_json(FILE *out, const diff_t *d, const pol_set_t *o, const char *old_path,
                       const char *new_path)
{
    fputs("{\"old\":", out);
    json_str(out, old_path);
    fputs(",\"new\":", out);
    json_str(out, new_path);
    fputs(",\"routes\":[", out);
    size_t nr = pol_set_route_count(o);
    for (size_t i = 0; i < nr; i++) {
        const pol_route_t *r = pol_set_route(o, i);
        const pair_t *p = &d->pairs[d->route_pair[i]];
        char name[DNS_TEXT_MAX], tname[16];
        dns_dname_to_text(r->owner, name);
        fputs(i ? ",{\"name\":" : "{\"name\":", out);
        json_str(out, name);
        fputs(",\"type\":", out);
        json_str(out, r->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(r->type, tname));
        fputc(',', out);
        json_counts(out, p->v4_first, p->v4_list, p->v6_first, p->v6_list);
        fputc('}', out);
    }
    fputs("],\"any\":{", out);
    json_counts(out, d->v4_first, d->v4_list, d->v6_first, d->v6_list);
    fputs("}}\n", out);
}

static int load_db(const conf_t *conf, const char *path, geo_db_t **out, char *err,
                   size_t errlen)
{
    bool flat = false;
    for (size_t i = 0; i < conf->ngeo; i++)
        if (conf->geo[i].kind == CONF_GEO_MMDB) {
            flat = conf->geo[i].flat;
            break;
        }
    geo_source_t src = { .kind = GEO_SRC_MMDB, .path = path,
                         .fields = flat ? &geo_fields_flat : NULL };
    return geo_db_load(out, &src, 1, err, errlen);
}

int ctl_geodiff(const conf_t *conf, const char *old_path, const char *new_path, bool json,
                FILE *out, char *err, size_t errlen)
{
    geo_db_t *go = NULL, *gn = NULL;
    pol_set_t *po = NULL, *pn = NULL;
    diff_t d = { 0 };
    int rc = load_db(conf, old_path, &go, err, errlen);
    if (rc == 0)
        rc = load_db(conf, new_path, &gn, err, errlen);
    if (rc == 0)
        rc = pol_set_build(&po, conf, go, NULL, NULL, err, errlen);
    if (rc == 0)
        rc = pol_set_build(&pn, conf, gn, NULL, NULL, err, errlen);
    if (rc == 0)
        rc = diff_sets(&d, po, pn, err, errlen);
    if (rc == 0) {
        if (json)
            print_json(out, &d, po, old_path, new_path);
        else
            print_text(out, &d, po, old_path, new_path);
    }
    free(d.pairs);
    free(d.route_pair);
    pol_set_free(po);
    pol_set_free(pn);
    geo_db_free(go);
    geo_db_free(gn);
    return rc < 0 ? rc : 0;
}
