/*
 * Route compilation: boundaries, answers, and one merged prefix table per distinct
 * policy. See policy.h for the model.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/err.h"
#include "dns/rrtype.h"
#include "policy/policy_internal.h"
#include "zone/zone.h"
#include "zone/zparse.h"

/* ---- errors ---------------------------------------------------------------------- */

typedef struct {
    const conf_t *conf;
    char *err;
    size_t errlen;
    pol_warn_fn warn;
    void *warn_ctx;
} build_t;

static int vfail_at(build_t *b, const char *file, unsigned line, const char *fmt, va_list ap)
{
    int k = snprintf(b->err, b->errlen, "%s:%u: ", file, line);
    if (k > 0 && (size_t)k < b->errlen)
        vsnprintf(b->err + k, b->errlen - (size_t)k, fmt, ap);
    return ERR_INVAL;
}

ATTR_PRINTF(3, 4) static int fail(build_t *b, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(b, b->conf->path, line, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error in another file than the configuration (a networks file). */
ATTR_PRINTF(4, 5)
static int fail_at(build_t *b, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(b, file, line, fmt, ap);
    va_end(ap);
    return rc;
}

ATTR_PRINTF(3, 4) static void warn(build_t *b, unsigned line, const char *fmt, ...)
{
    if (!b->warn)
        return;
    char msg[512];
    int k = snprintf(msg, sizeof(msg), "%s:%u: ", b->conf->path, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof(msg) - (size_t)k, fmt, ap);
    va_end(ap);
    b->warn(b->warn_ctx, msg);
}

/* ---- boundaries ------------------------------------------------------------------ */

typedef struct {
    int family;
    uint8_t prefix;
    u128 addr;                 /* host order; IPv4 in the low 32 bits */
} net_t;

enum { NET_OK, NET_BAD, NET_HOST_BITS };

/* Parse "address/prefix": NET_OK, NET_BAD, or NET_HOST_BITS when bits are set beyond the
 * prefix (n->prefix is then set). */
static int parse_net(const char *s, net_t *n)
{
    const char *slash = strchr(s, '/');
    char host[INET6_ADDRSTRLEN + 1];
    if (!slash || (size_t)(slash - s) >= sizeof(host))
        return NET_BAD;
    memcpy(host, s, (size_t)(slash - s));
    host[slash - s] = 0;
    const char *p = slash + 1;
    unsigned len = 0;
    if (!*p || strlen(p) > 3)
        return NET_BAD;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return NET_BAD;
        len = len * 10 + (unsigned)(*p - '0');
    }
    uint8_t a[16];
    if (inet_pton(AF_INET, host, a) == 1 && len <= 32) {
        n->family = AF_INET;
        n->addr = pol_v4(a);
    } else if (inet_pton(AF_INET6, host, a) == 1 && len <= 128) {
        n->family = AF_INET6;
        n->addr = pol_v6(a);
    } else {
        return NET_BAD;
    }
    n->prefix = (uint8_t)len;
    unsigned width = n->family == AF_INET ? 32 : 128;
    u128 ones = n->family == AF_INET ? 0xFFFFFFFFu : ~(u128)0;
    if (len < width && (n->addr & (ones >> len)))
        return NET_HOST_BITS;
    return NET_OK;
}

static void boundary_add_net(pol_boundary_t *out, const net_t *n)
{
    if (n->family == AF_INET) {
        if (out->nnets4 == out->cap4) {
            out->cap4 = out->cap4 ? out->cap4 * 2 : 16;
            out->nets4 = xrealloc(out->nets4, out->cap4 * sizeof(*out->nets4));
        }
        out->nets4[out->nnets4++] = (pol_net4_t){ .addr = (uint32_t)n->addr, .prefix = n->prefix };
    } else {
        if (out->nnets6 == out->cap6) {
            out->cap6 = out->cap6 ? out->cap6 * 2 : 16;
            out->nets6 = xrealloc(out->nets6, out->cap6 * sizeof(*out->nets6));
        }
        out->nets6[out->nnets6++] = (pol_net6_t){ .addr = n->addr, .prefix = n->prefix };
    }
}

static int add_net_entry(build_t *b, const char *file, unsigned line, const char *name,
                         const char *e, pol_boundary_t *out)
{
    net_t net;
    int rc = parse_net(e, &net);
    if (rc == NET_HOST_BITS)
        return fail_at(b, file, line, "boundaries.%s: network '%s' has bits set beyond /%u",
                       name, e, net.prefix);
    if (rc != NET_OK)
        return fail_at(b, file, line, "boundaries.%s: bad network '%s'", name, e);
    boundary_add_net(out, &net);
    return 0;
}

/* A networks file: one network per line; '#' starts a comment; blank lines are skipped.
 * Errors name the file and line. */
static int read_networks_file(build_t *b, const conf_boundary_t *cb, pol_boundary_t *out)
{
    FILE *f = fopen(cb->networks_file, "r");
    if (!f)
        return fail(b, cb->line, "boundaries.%s.networks_file: cannot open %s: %s", cb->name,
                    cb->networks_file, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) { /* not a device or a pipe */
        fclose(f);
        return fail(b, cb->line, "boundaries.%s.networks_file: %s is not a regular file",
                    cb->name, cb->networks_file);
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned line = 0;
    size_t before = out->nnets4 + out->nnets6;
    int rc = 0;
    while (rc == 0 && (len = getline(&buf, &cap, f)) >= 0) {
        line++;
        char *s = buf, *hash = memchr(buf, '#', (size_t)len);
        char *end = hash ? hash : buf + len;
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        while (end > s && strchr(" \t\r\n", end[-1]))
            end--;
        if (s == end)
            continue;
        *end = 0;
        rc = add_net_entry(b, cb->networks_file, line, cb->name, s, out);
    }
    if (rc == 0 && ferror(f))
        rc = fail_at(b, cb->networks_file, line + 1, "boundaries.%s: read error", cb->name);
    free(buf);
    fclose(f);
    if (rc == 0 && out->nnets4 + out->nnets6 == before)
        warn(b, cb->line, "boundaries.%s: %s has no networks: the boundary matches nothing",
             cb->name, cb->networks_file);
    return rc;
}

static int compile_boundary(build_t *b, const geo_db_t *geo, const conf_boundary_t *cb,
                            pol_boundary_t *out)
{
    out->name = xstrdup(cb->name);
    out->line = cb->line;
    out->places = xcalloc(cb->nentries, sizeof(*out->places));
    out->cities = xcalloc(cb->nentries, sizeof(*out->cities));
    for (size_t i = 0; i < cb->nentries; i++) {
        const char *e = cb->entries[i];
        unsigned line = cb->lines[i];
        const char *slash = strchr(e, '/');
        if (slash && (strchr(e, ':') || (e[0] >= '0' && e[0] <= '9'))) {
            int rc = add_net_entry(b, b->conf->path, line, cb->name, e, out);
            if (rc < 0)
                return rc;
            continue;
        }
        if (!geo)
            return fail(b, line,
                        "boundaries.%s: '%s' is a place, but no geoip database is configured",
                        cb->name, e);
        if (slash) {
            /* "CC/City name" */
            if (slash - e != 2 || !slash[1])
                return fail(b, line, "boundaries.%s: bad city '%s' (expected CC/City)",
                            cb->name, e);
            pol_city_t *c = &out->cities[out->ncities++];
            c->cc[0] = (char)(e[0] & ~0x20);
            c->cc[1] = (char)(e[1] & ~0x20);
            c->city = xstrdup(slash + 1);
            if (!geo_country_info(c->cc, NULL, NULL, NULL))
                return fail(b, line, "boundaries.%s: unknown country in '%s'", cb->name, e);
            continue;
        }
        if (geo_place_find(geo, e, &out->places[out->nplaces]) < 0)
            return fail(b, line,
                        "boundaries.%s: unknown place '%s' (continent, country, subdivision "
                        "found in the GeoIP data, region, CC/City, or network)",
                        cb->name, e);
        out->nplaces++;
    }
    if (cb->networks_file)
        return read_networks_file(b, cb, out);
    return 0;
}

bool pol_boundary_geo_match(const pol_boundary_t *b, const geo_location_t *loc)
{
    for (size_t i = 0; i < b->nplaces; i++)
        if (geo_place_contains(&b->places[i], loc))
            return true;
    for (size_t i = 0; i < b->ncities; i++)
        if (loc->city && !strcmp(loc->country, b->cities[i].cc) &&
            !strcasecmp(loc->city, b->cities[i].city))
            return true;
    return false;
}

bool pol_boundary_net_match(const pol_boundary_t *b, int family, const uint8_t *addr)
{
    if (family == AF_INET) {
        uint32_t a = pol_v4(addr);
        for (size_t i = 0; i < b->nnets4; i++) {
            const pol_net4_t *n = &b->nets4[i];
            uint32_t mask = n->prefix ? 0xFFFFFFFFu << (32 - n->prefix) : 0;
            if ((a & mask) == n->addr)
                return true;
        }
        return false;
    }
    u128 a = pol_v6(addr);
    for (size_t i = 0; i < b->nnets6; i++) {
        const pol_net6_t *n = &b->nets6[i];
        u128 mask = n->prefix ? ~(u128)0 << (128 - n->prefix) : 0;
        if ((a & mask) == n->addr)
            return true;
    }
    return false;
}

/* Overlapping networks (in one boundary or across boundaries) are legal, since matches
 * are a union, but usually a mistake: warn, naming both. Sort by start then width and
 * sweep with a stack of the networks that contain the current start. */
typedef struct {
    u128 start, end;
    uint32_t b;                /* boundary index */
    uint8_t prefix;
} net_ref_t;

static int net_ref_cmp(const void *x, const void *y)
{
    const net_ref_t *a = x, *b = y;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (int)a->prefix - (int)b->prefix;
}

static void net_text(int family, u128 addr, unsigned prefix, char *buf, size_t len)
{
    uint8_t a[16];
    if (family == AF_INET) {
        uint32_t v = (uint32_t)addr;
        a[0] = (uint8_t)(v >> 24), a[1] = (uint8_t)(v >> 16), a[2] = (uint8_t)(v >> 8), a[3] = (uint8_t)v;
    } else {
        for (int i = 15; i >= 0; i--)
            a[i] = (uint8_t)(addr >> (8 * (15 - i)));
    }
    char t[INET6_ADDRSTRLEN];
    inet_ntop(family, a, t, sizeof(t));
    snprintf(buf, len, "%s/%u", t, prefix);
}

static void warn_overlaps(build_t *b, const pol_set_t *s)
{
    size_t total4 = 0, total6 = 0;
    for (size_t i = 0; i < s->nb; i++)
        total4 += s->b[i].nnets4, total6 += s->b[i].nnets6;
    size_t most = total4 > total6 ? total4 : total6;
    if (total4 + total6 < 2)
        return;
    net_ref_t *r = xmalloc(most * sizeof(*r));
    size_t *stack = xmalloc(most * sizeof(*stack));
    size_t warned = 0, overlaps = 0;
    for (int fam = 0; fam < 2; fam++) {
        int family = fam ? AF_INET6 : AF_INET;
        size_t n = 0;
        for (size_t i = 0; i < s->nb; i++) {
            const pol_boundary_t *pb = &s->b[i];
            size_t m = fam ? pb->nnets6 : pb->nnets4;
            for (size_t j = 0; j < m; j++) {
                u128 start = fam ? pb->nets6[j].addr : pb->nets4[j].addr;
                unsigned prefix = fam ? pb->nets6[j].prefix : pb->nets4[j].prefix;
                u128 ones = fam ? ~(u128)0 : 0xFFFFFFFFu;
                unsigned width = fam ? 128 : 32;
                u128 host = prefix >= width ? 0 : ones >> prefix;
                r[n++] = (net_ref_t){ .start = start, .end = start | host, .b = (uint32_t)i,
                                      .prefix = (uint8_t)prefix };
            }
        }
        qsort(r, n, sizeof(*r), net_ref_cmp);
        size_t depth = 0;
        for (size_t i = 0; i < n; i++) {
            while (depth && r[stack[depth - 1]].end < r[i].start)
                depth--;
            if (depth) {
                size_t top = stack[depth - 1]; /* innermost network containing this one */
                overlaps++;
                if (warned++ < 10) {
                    char x[64], y[64];
                    net_text(family, r[i].start, r[i].prefix, x, sizeof(x));
                    net_text(family, r[top].start, r[top].prefix, y, sizeof(y));
                    warn(b, s->b[r[i].b].line,
                         "boundaries.%s: network %s overlaps %s of boundary %s", s->b[r[i].b].name,
                         x, y, s->b[r[top].b].name);
                }
            }
            stack[depth++] = i;
        }
    }
    free(stack);
    if (overlaps > 10)
        warn(b, s->b[0].line, "boundaries: %zu overlapping networks in all (first 10 shown)",
             overlaps);
    free(r);
}

static void boundary_clear(pol_boundary_t *b)
{
    for (size_t i = 0; i < b->ncities; i++)
        free(b->cities[i].city);
    free(b->cities);
    free(b->places);
    free(b->nets4);
    free(b->nets6);
    free(b->name);
}

/* ---- the filter chain ------------------------------------------------------------ */

unsigned pol_eval(const pol_set_t *s, const pol_key_t *k, uint32_t loc, const uint64_t *ipmask,
                  uint16_t *out)
{
    const geo_location_t *l = s->geo ? geo_location(s->geo, loc) : NULL;
    unsigned n = 0;
    /* up: down answers leave the chain, unless every answer is down (fail open) */
    uint64_t all = k->nanswers >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << k->nanswers) - 1;
    uint64_t down = (k->down & all) == all ? 0 : k->down;
    /* boundaries: union of matches */
    for (uint16_t i = 0; i < k->nanswers; i++) {
        int32_t bi = k->boundary[i];
        if (bi < 0 || (down >> i & 1))
            continue;
        bool in = (ipmask && (ipmask[bi / 64] >> (bi % 64) & 1)) ||
                  (l && pol_boundary_geo_match(&s->b[bi], l));
        if (in)
            out[n++] = i;
    }
    /* fallback only when nothing matched */
    if (n == 0)
        for (uint16_t i = 0; i < k->nanswers; i++)
            if (k->boundary[i] < 0 && !(down >> i & 1))
                out[n++] = i;
    /* closest: stable insertion sort by distance; answers without location go last */
    if (k->closest && l && (l->flags & GEO_HAS_COORDS) && n > 1) {
        double d[64];
        for (unsigned i = 0; i < n; i++)
            d[i] = k->has_loc[out[i]]
                       ? geo_distance_km(l->lat, l->lon, k->lat[out[i]], k->lon[out[i]])
                       : INFINITY;
        for (unsigned i = 1; i < n; i++) {
            uint16_t x = out[i];
            double dx = d[i];
            unsigned j = i;
            while (j > 0 && d[j - 1] > dx) {
                out[j] = out[j - 1];
                d[j] = d[j - 1];
                j--;
            }
            out[j] = x;
            d[j] = dx;
        }
    }
    if (k->select && n > k->select)
        n = k->select;
    return n;
}

/* ---- decision interning ---------------------------------------------------------- */

typedef struct {
    pol_policy_t *p;
    uint32_t *slots;           /* hash: decision id + 1, 0 = empty */
    uint32_t mask;
} interner_t;

static uint32_t hash_idx(const uint16_t *idx, unsigned n)
{
    uint32_t h = 2166136261u ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= idx[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t intern(interner_t *in, const uint16_t *idx, unsigned n)
{
    pol_policy_t *p = in->p;
    uint32_t h = hash_idx(idx, n) & in->mask;
    for (;;) {
        uint32_t s = in->slots[h];
        if (!s)
            break;
        const pol_decision_t *d = p->dec[s - 1];
        if (d->n == n && memcmp(d->idx, idx, n * sizeof(*idx)) == 0)
            return s - 1;
        h = (h + 1) & in->mask;
    }
    if ((p->ndec + 1) * 2 > in->mask + 1) {
        /* grow and rehash */
        uint32_t nsize = (in->mask + 1) * 2;
        uint32_t *ns = xcalloc(nsize, sizeof(*ns));
        for (uint32_t i = 0; i < p->ndec; i++) {
            uint32_t hh = hash_idx(p->dec[i]->idx, p->dec[i]->n) & (nsize - 1);
            while (ns[hh])
                hh = (hh + 1) & (nsize - 1);
            ns[hh] = i + 1;
        }
        free(in->slots);
        in->slots = ns;
        in->mask = nsize - 1;
        h = hash_idx(idx, n) & in->mask;
        while (in->slots[h])
            h = (h + 1) & in->mask;
    }
    pol_decision_t *d = xmalloc(sizeof(*d) + n * sizeof(d->idx[0]));
    d->n = (uint16_t)n;
    memcpy(d->idx, idx, n * sizeof(*idx));
    if ((p->ndec & (p->ndec - 1)) == 0) /* 0, 1, 2, 4...: double */
        p->dec = xrealloc(p->dec, (p->ndec ? 2 * (size_t)p->ndec : 1) * sizeof(*p->dec));
    p->dec[p->ndec] = d;
    in->slots[h] = ++p->ndec;
    return p->ndec - 1;
}

/* ---- table building -------------------------------------------------------------- */

/* Run list: blocks arrive in address order covering the space; a block with the same
 * decision as the one before extends its run. The table keeps only where runs start: the
 * ECS scope (the widest aligned block around an address inside its run) is derived at
 * lookup from the run's bounds, so blocks need not be kept one per CIDR prefix. */
typedef struct {
    size_t n, cap;
    u128 *start;
    uint32_t *dec;
    unsigned width;            /* 32 or 128 */
} runs_t;

static void run_push(runs_t *st, u128 start, uint32_t dec)
{
    if (st->n > 0 && st->dec[st->n - 1] == dec)
        return;
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 1024;
        st->start = xrealloc(st->start, st->cap * sizeof(*st->start));
        st->dec = xrealloc(st->dec, st->cap * sizeof(*st->dec));
    }
    st->start[st->n] = start;
    st->dec[st->n] = dec;
    st->n++;
}

/* Binary trie of the policy's boundary networks, for one family. */
typedef struct {
    int32_t child[2];
    uint32_t first_mask;       /* index into masks of the boundaries ending here, or 0 */
} cnode_t;

typedef struct {
    cnode_t *nodes;
    size_t n, cap;
    uint64_t *masks;           /* words per mask: see build_ctx_t.words */
    size_t nmasks, capmasks;
    unsigned words;
} ctrie_t;

static int32_t ctrie_node(ctrie_t *t)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->nodes = xrealloc(t->nodes, t->cap * sizeof(*t->nodes));
    }
    t->nodes[t->n].child[0] = t->nodes[t->n].child[1] = -1;
    t->nodes[t->n].first_mask = 0;
    return (int32_t)t->n++;
}

static void ctrie_add(ctrie_t *t, u128 addr, unsigned width, unsigned prefix, size_t bidx)
{
    if (t->n == 0)
        ctrie_node(t);
    int32_t cur = 0;
    for (unsigned d = 0; d < prefix; d++) {
        unsigned bit = (unsigned)(addr >> (width - 1 - d)) & 1;
        if (t->nodes[cur].child[bit] < 0) {
            int32_t nn = ctrie_node(t);
            t->nodes[cur].child[bit] = nn;
        }
        cur = t->nodes[cur].child[bit];
    }
    if (!t->nodes[cur].first_mask) {
        if (t->nmasks == t->capmasks) {
            t->capmasks = t->capmasks ? t->capmasks * 2 : 64;
            t->masks = xrealloc(t->masks, t->capmasks * t->words * sizeof(*t->masks));
        }
        memset(t->masks + t->nmasks * t->words, 0, t->words * sizeof(*t->masks));
        t->nodes[cur].first_mask = (uint32_t)++t->nmasks;
    }
    t->masks[(t->nodes[cur].first_mask - 1) * t->words + bidx / 64] |= (uint64_t)1 << (bidx % 64);
}

typedef struct {
    const pol_set_t *s;
    pol_policy_t *p;
    interner_t in;
    int32_t *loc_cache;        /* decision per location when no network applies */
    uint32_t nlocs;
    ctrie_t trie4, trie6;
    runs_t st4, st6;
    unsigned words;            /* uint64 words in an IP-boundary mask */
    uint64_t *acc;             /* scratch masks, one per trie depth (129 * words) */
    bool alias;                /* emitting an IPv6 range that aliases the IPv4 space */
} build_ctx_t;

static uint32_t decide(build_ctx_t *c, uint32_t loc, const uint64_t *mask)
{
    bool any = false;
    for (unsigned w = 0; mask && w < c->words; w++)
        any |= mask[w] != 0;
    if (!any && loc < c->nlocs && c->loc_cache[loc] >= 0)
        return (uint32_t)c->loc_cache[loc];
    uint16_t idx[64];
    unsigned n = pol_eval(c->s, &c->p->key, loc, any ? mask : NULL, idx);
    uint32_t d = intern(&c->in, idx, n);
    if (!any && loc < c->nlocs)
        c->loc_cache[loc] = (int32_t)d;
    return d;
}

/* The value of a finished block: inside an IPv4 alias range, parts that no IPv6 network
 * covers stay aliases (looked up in the IPv4 table at query time); networks written in
 * IPv6 there match as written. */
static uint32_t leaf(build_ctx_t *c, uint32_t loc, const uint64_t *mask)
{
    if (c->alias) {
        bool any = false;
        for (unsigned w = 0; w < c->words; w++)
            any |= mask[w] != 0;
        if (!any)
            return POL_DEC_V4ALIAS;
    }
    return decide(c, loc, mask);
}

/* Emit a geo block, split wherever a boundary network begins inside it. depth/node: the
 * trie position reached for the block's first `depth` bits; acc: masks accumulated. */
static void emit(build_ctx_t *c, ctrie_t *t, runs_t *st, u128 addr, unsigned prefix,
                 uint32_t loc, int32_t node, unsigned depth, const uint64_t *acc)
{
    unsigned W = st->width;
    uint64_t *cur = c->acc + (size_t)(depth + 1) * c->words;
    memcpy(cur, acc, c->words * sizeof(*cur));
    /* Walk down the trie along the block's own bits. */
    while (node >= 0) {
        if (t->nodes[node].first_mask) {
            const uint64_t *m = t->masks + (t->nodes[node].first_mask - 1) * t->words;
            for (unsigned w = 0; w < c->words; w++)
                cur[w] |= m[w];
        }
        if (depth == prefix)
            break;
        unsigned bit = (unsigned)(addr >> (W - 1 - depth)) & 1;
        node = t->nodes[node].child[bit];
        depth++;
    }
    if (node >= 0 && depth == prefix &&
        (t->nodes[node].child[0] >= 0 || t->nodes[node].child[1] >= 0)) {
        /* A network starts strictly inside this block: split it in two. */
        u128 half = (u128)1 << (W - prefix - 1);
        for (unsigned bit = 0; bit < 2; bit++) {
            int32_t ch = t->nodes[node].child[bit];
            u128 a = addr + (bit ? half : 0);
            if (ch < 0) {
                run_push(st, a, leaf(c, loc, cur));
            } else {
                /* child masks are applied when emit() visits the child node */
                uint64_t *save = xmemdup(cur, c->words * sizeof(*cur));
                emit(c, t, st, a, prefix + 1, loc, ch, prefix + 1, save);
                free(save);
            }
        }
        return;
    }
    run_push(st, addr, leaf(c, loc, cur));
}

static int walk_cb(const geo_block_t *blk, void *ctx)
{
    build_ctx_t *c = ctx;
    uint64_t *zero = c->acc; /* depth "-1" slot is all zeros */
    if (blk->family == AF_INET) {
        u128 a = pol_v4(blk->addr);
        emit(c, &c->trie4, &c->st4, a, blk->prefix, blk->loc, c->trie4.n ? 0 : -1, 0, zero);
    } else {
        u128 a = pol_v6(blk->addr);
        if (blk->loc == GEO_LOC_V4ALIAS) {
            c->alias = true;
            emit(c, &c->trie6, &c->st6, a, blk->prefix, GEO_LOC_UNKNOWN, c->trie6.n ? 0 : -1, 0,
                 zero);
            c->alias = false;
            return 0;
        }
        emit(c, &c->trie6, &c->st6, a, blk->prefix, blk->loc, c->trie6.n ? 0 : -1, 0, zero);
    }
    return 0;
}

/* The first-level index of a finished table: one bucket per 8 to 16 runs (at most 2^16
 * buckets), so that it adds at most a sixteenth to an IPv4 table (4 bytes per bucket
 * against 8 per run; a fortieth to an IPv6 one) and a lookup searches a few runs. */
static void table_index(pol_table_t *t, bool v4)
{
    if (t->n < 32)
        return;
    unsigned bits = 0;
    while (bits < 16 && ((size_t)8 << bits) <= t->n)
        bits++;
    t->ibits = bits;
    size_t nb = (size_t)1 << bits;
    t->idx = xmalloc((nb + 1) * sizeof(*t->idx));
    size_t i = 0;
    for (size_t k = 0; k < nb; k++) {
        if (v4) {
            uint32_t a = (uint32_t)k << (32 - bits);
            while (i + 1 < t->n && t->start4[i + 1] <= a)
                i++;
        } else {
            u128 a = (u128)k << (128 - bits);
            while (i + 1 < t->n && t->start6[i + 1] <= a)
                i++;
        }
        t->idx[k] = (uint32_t)i;
    }
    t->idx[nb] = (uint32_t)(t->n - 1);
}

static void table_from_runs(pol_table_t *t, runs_t *st, bool v4)
{
    t->n = st->n;
    t->dec = xrealloc(st->dec, (st->n ? st->n : 1) * sizeof(*t->dec));
    if (v4) {
        t->start4 = xmalloc((st->n ? st->n : 1) * sizeof(*t->start4));
        for (size_t i = 0; i < st->n; i++)
            t->start4[i] = (uint32_t)st->start[i];
        free(st->start);
    } else {
        t->start6 = xrealloc(st->start, (st->n ? st->n : 1) * sizeof(*t->start6));
    }
    memset(st, 0, sizeof(*st));
    table_index(t, v4);
}

static void table_clear(pol_table_t *t)
{
    free(t->start4);
    free(t->start6);
    free(t->dec);
    free(t->idx);
    memset(t, 0, sizeof(*t));
}

static size_t table_bytes(const pol_table_t *t, bool v4)
{
    return t->n * ((v4 ? 4 : 16) + 4) + (t->idx ? (((size_t)1 << t->ibits) + 1) * 4 : 0);
}

static int loc_runs_cb(const geo_block_t *blk, void *ctx)
{
    pol_loc_runs_t *lr = ctx;
    if (blk->family == AF_INET) {
        if (lr->n4 && lr->loc4[lr->n4 - 1] == blk->loc)
            return 0;
        if (lr->n4 == lr->cap4) {
            lr->cap4 = lr->cap4 ? lr->cap4 * 2 : 4096;
            lr->start4 = xrealloc(lr->start4, lr->cap4 * sizeof(*lr->start4));
            lr->loc4 = xrealloc(lr->loc4, lr->cap4 * sizeof(*lr->loc4));
        }
        lr->start4[lr->n4] = pol_v4(blk->addr);
        lr->loc4[lr->n4++] = blk->loc;
        return 0;
    }
    if (lr->n6 && lr->loc6[lr->n6 - 1] == blk->loc)
        return 0;
    if (lr->n6 == lr->cap6) {
        lr->cap6 = lr->cap6 ? lr->cap6 * 2 : 4096;
        lr->start6 = xrealloc(lr->start6, lr->cap6 * sizeof(*lr->start6));
        lr->loc6 = xrealloc(lr->loc6, lr->cap6 * sizeof(*lr->loc6));
    }
    lr->start6[lr->n6] = pol_v6(blk->addr);
    lr->loc6[lr->n6++] = blk->loc;
    return 0;
}

static void loc_runs_free(pol_loc_runs_t *lr)
{
    if (!lr)
        return;
    free(lr->start4);
    free(lr->loc4);
    free(lr->start6);
    free(lr->loc6);
    free(lr);
}

/* A policy without IP networks decides on the location alone: one decision per location
 * run, and equal neighbours merge as in emit(). */
static void build_from_loc_runs(build_ctx_t *c, const pol_loc_runs_t *lr)
{
    for (size_t i = 0; i < lr->n4; i++)
        run_push(&c->st4, lr->start4[i], decide(c, lr->loc4[i], NULL));
    for (size_t i = 0; i < lr->n6; i++)
        run_push(&c->st6, lr->start6[i],
                 lr->loc6[i] == GEO_LOC_V4ALIAS ? POL_DEC_V4ALIAS : decide(c, lr->loc6[i], NULL));
}

static pol_policy_t *policy_build(pol_set_t *s, const pol_key_t *key)
{
    pol_policy_t *p = xcalloc(1, sizeof(*p));
    p->key = *key;
    build_ctx_t c = { .s = s, .p = p };
    c.in.p = p;
    c.in.mask = 63;
    c.in.slots = xcalloc(c.in.mask + 1, sizeof(*c.in.slots));
    c.words = (unsigned)((s->nb + 63) / 64);
    if (c.words == 0)
        c.words = 1;
    c.acc = xcalloc((size_t)130 * c.words, sizeof(*c.acc));
    c.trie4.words = c.trie6.words = c.words;
    c.st4.width = 32;
    c.st6.width = 128;
    c.nlocs = s->geo ? geo_location_count(s->geo) : 1;
    c.loc_cache = xmalloc(c.nlocs * sizeof(*c.loc_cache));
    memset(c.loc_cache, 0xFF, c.nlocs * sizeof(*c.loc_cache));

    /* The networks of the boundaries this policy uses. */
    for (uint16_t i = 0; i < key->nanswers; i++) {
        int32_t bi = key->boundary[i];
        if (bi < 0)
            continue;
        const pol_boundary_t *b = &s->b[bi];
        for (size_t j = 0; j < b->nnets4; j++)
            ctrie_add(&c.trie4, b->nets4[j].addr, 32, b->nets4[j].prefix, (size_t)bi);
        for (size_t j = 0; j < b->nnets6; j++)
            ctrie_add(&c.trie6, b->nets6[j].addr, 128, b->nets6[j].prefix, (size_t)bi);
    }
    bool geo_only = s->building && c.trie4.n == 0 && c.trie6.n == 0;
    if (s->geo && geo_only && s->geo_only_built++ == 1 && !s->loc_runs) {
        /* a second policy on the location alone: walk the GeoIP tree once more, into
         * location runs that this one and every further one reuse (pol_set_build) */
        s->loc_runs = xcalloc(1, sizeof(*s->loc_runs));
        geo_walk(s->geo, loc_runs_cb, s->loc_runs);
    }
    if (s->geo && geo_only && s->loc_runs) {
        build_from_loc_runs(&c, s->loc_runs);
    } else if (s->geo) {
        geo_walk(s->geo, walk_cb, &c);
    } else {
        geo_block_t all4 = { .family = AF_INET, .prefix = 0, .loc = GEO_LOC_UNKNOWN };
        geo_block_t all6 = { .family = AF_INET6, .prefix = 0, .loc = GEO_LOC_UNKNOWN };
        walk_cb(&all4, &c);
        walk_cb(&all6, &c);
    }
    table_from_runs(&p->t4, &c.st4, true);
    table_from_runs(&p->t6, &c.st6, false);
    p->uniform = p->ndec <= 1;
    if (p->ndec == 0) /* cannot happen: every address gets a decision */
        intern(&c.in, NULL, 0);
    if (p->uniform) {
        table_clear(&p->t4);
        table_clear(&p->t6);
    }
    free(c.in.slots);
    free(c.loc_cache);
    free(c.acc);
    free(c.trie4.nodes);
    free(c.trie4.masks);
    free(c.trie6.nodes);
    free(c.trie6.masks);
    return p;
}

static void policy_free(pol_policy_t *p)
{
    if (!p)
        return;
    table_clear(&p->t4);
    table_clear(&p->t6);
    for (uint32_t i = 0; i < p->ndec; i++)
        free(p->dec[i]);
    free(p->dec);
    free(p);
}

/* ---- lookups --------------------------------------------------------------------- */

static size_t search4(const pol_table_t *t, uint32_t a)
{
    size_t lo = 0, hi = t->n; /* find the last start <= a */
    if (t->ibits) {
        uint32_t k = a >> (32 - t->ibits);
        lo = t->idx[k];
        hi = (size_t)t->idx[k + 1] + 1;
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->start4[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static size_t search6(const pol_table_t *t, u128 a)
{
    size_t lo = 0, hi = t->n;
    if (t->ibits) {
        size_t k = (size_t)(a >> (128 - t->ibits));
        lo = t->idx[k];
        hi = (size_t)t->idx[k + 1] + 1;
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->start6[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void pol_route_decide(const pol_route_t *r, int family, const uint8_t *addr, pol_result_t *res)
{
    const pol_policy_t *p = pol_route_policy(r);
    if (p->uniform) {
        res->d = p->dec[0];
        res->scope = 0;
        return;
    }
    uint32_t v4;
    unsigned off = 0;
    if (family == AF_INET6) {
        u128 a = pol_v6(addr);
        const pol_table_t *t = &p->t6;
        size_t i = search6(t, a);
        if (t->dec[i] != POL_DEC_V4ALIAS) {
            res->d = p->dec[t->dec[i]];
            res->scope = (uint8_t)pol_scope128(a, t->start6[i],
                                               i + 1 < t->n ? t->start6[i + 1] - 1 : ~(u128)0);
            return;
        }
        if (!geo_v6_to_v4(addr, &v4, &off)) { /* cannot happen: aliases come from geo */
            res->d = p->dec[0];
            res->scope = 128;
            return;
        }
    } else {
        v4 = pol_v4(addr);
    }
    const pol_table_t *t = &p->t4;
    size_t j = search4(t, v4);
    res->d = p->dec[t->dec[j]];
    res->scope = (uint8_t)(off + pol_scope32(v4, t->start4[j],
                                             j + 1 < t->n ? t->start4[j + 1] - 1 : UINT32_MAX));
}

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

unsigned pol_route_order(const pol_route_t *r, const pol_result_t *res, uint64_t *rng,
                         uint16_t *out, unsigned max)
{
    unsigned n = res->d->n;
    if (!r->weighted) {
        n = n < max ? n : max;
        for (unsigned i = 0; i < n; i++) /* mostly one or two: no memcpy call */
            out[i] = res->d->idx[i];
        return n;
    }
    /* Weighted shuffle without replacement, then select. */
    uint16_t pool[64];
    memcpy(pool, res->d->idx, n * sizeof(*pool));
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += r->weight[pool[i]];
    unsigned want = r->select && r->select < n ? r->select : n;
    if (want > max)
        want = max;
    for (unsigned k = 0; k < want; k++) {
        uint64_t x = total ? next_rand(rng) % total : 0;
        unsigned j = k;
        for (; j < n - 1; j++) {
            uint64_t w = r->weight[pool[j]];
            if (x < w)
                break;
            x -= w;
        }
        uint16_t pick = pool[j];
        pool[j] = pool[k];
        pool[k] = pick;
        total -= r->weight[pick];
        out[k] = pick;
    }
    return want;
}

bool pol_addr_is_private(int family, const uint8_t *a)
{
    if (family == AF_INET) {
        /* Most clients: a first octet no listed network starts with. */
        uint8_t o = a[0];
        if (o < 224 && o != 0 && o != 10 && o != 100 && o != 127 && o != 169 && o != 172 &&
            o != 192 && o != 198 && o != 203)
            return false;
        uint32_t v = pol_v4(a);
        static const struct {
            uint32_t net;
            unsigned len;
        } r[] = {
            { 0x00000000, 8 },  { 0x0A000000, 8 },  { 0x64400000, 10 }, { 0x7F000000, 8 },
            { 0xA9FE0000, 16 }, { 0xAC100000, 12 }, { 0xC0000000, 24 }, { 0xC0000200, 24 },
            { 0xC0A80000, 16 }, { 0xC6120000, 15 }, { 0xC6336400, 24 }, { 0xCB007100, 24 },
            { 0xE0000000, 3 },
        };
        for (size_t i = 0; i < ARRAY_SIZE(r); i++)
            if ((v & (0xFFFFFFFFu << (32 - r[i].len))) == r[i].net)
                return true;
        return false;
    }
    if (family != AF_INET6)
        return true;
    uint32_t v4;
    unsigned off;
    if (geo_v6_to_v4(a, &v4, &off)) {
        uint8_t b[4] = { (uint8_t)(v4 >> 24), (uint8_t)(v4 >> 16), (uint8_t)(v4 >> 8), (uint8_t)v4 };
        return pol_addr_is_private(AF_INET, b);
    }
    if ((a[0] & 0xFE) == 0xFC)                 /* fc00::/7 ULA */
        return true;
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) /* fe80::/10 link-local */
        return true;
    if (a[0] == 0xFF)                          /* multicast */
        return true;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0D && a[3] == 0xB8) /* 2001:db8::/32 */
        return true;
    static const uint8_t zero[15] = { 0 };
    if (memcmp(a, zero, 15) == 0)              /* :: and ::1 */
        return true;
    return false;
}

/* ---- routes ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *rd;
    uint16_t len;
    int count;
} rdata_cb_t;

static int rdata_cb(void *ctx, const zparse_rr_t *rr, char *err, size_t errlen)
{
    rdata_cb_t *c = ctx;
    (void)err;
    (void)errlen;
    if (c->count++ == 0) {
        c->rd = xmalloc(2u + rr->rdlen);
        wr_u16(c->rd, rr->rdlen);
        memcpy(c->rd + 2, rr->rdata, rr->rdlen);
        c->len = rr->rdlen;
    }
    return 0;
}

static int compile_route(build_t *b, pol_set_t *s, const conf_zone_t *cz, size_t zi,
                         const conf_route_t *cr, pol_route_t *r, pol_key_t *key)
{
    char tname[16];
    bool alias = cr->type == CONF_T_ALIAS;
    const char *type = alias ? "ALIAS" : dns_rrtype_to_text(cr->type, tname);
    const char *parse_as = alias ? "CNAME" : type; /* an ALIAS value is a name */
    char path[400];
    snprintf(path, sizeof(path), "zones.%s.routes.%s.%s", cz->name, cr->name, type);
    r->zone = zi;
    r->owner = cr->owner;
    r->type = cr->type;
    r->ttl = cr->ttl;
    r->ecs = cr->ecs;
    r->conf = cr;
    r->nanswers = (uint16_t)cr->nanswers;
    r->rdata = xcalloc(cr->nanswers, sizeof(*r->rdata));
    r->weight = xcalloc(cr->nanswers, sizeof(*r->weight));
    memset(key, 0, sizeof(*key));
    key->nanswers = r->nanswers;
    key->closest = cr->closest;
    bool has_fallback = false, has_boundary = false;
    for (size_t i = 0; i < cr->nanswers; i++) {
        const conf_answer_t *a = &cr->answers[i];
        /* The value, parsed by the zone-file parser as "@ 0 IN TYPE value". */
        size_t tl = strlen(a->value) + 64;
        char *text = xmalloc(tl);
        int n = snprintf(text, tl, "@ 0 IN %s %s\n", parse_as, a->value);
        rdata_cb_t rc = { 0 };
        char perr[300];
        zparse_opts_t zo = { .origin = cz->origin, .default_ttl = 0 };
        int rcode = zparse_buffer(text, (size_t)n, "value", &zo, rdata_cb, &rc, perr, sizeof(perr));
        free(text);
        if (rcode < 0 || rc.count != 1) {
            free(rc.rd);
            const char *why = strstr(perr, ": ");
            return fail(b, a->line, "%s.answers[%zu]: bad %s value '%s'%s%s", path, i, type,
                        a->value, rcode < 0 ? ":" : "", rcode < 0 && why ? why + 1 : "");
        }
        r->rdata[i] = rc.rd;
        if (alias && !dns_dname_is_subdomain(zone_rd_data(rc.rd), cz->origin))
            return fail(b, a->line, "%s.answers[%zu]: ALIAS target '%s' is outside the zone",
                        path, i, a->value);
        r->weight[i] = a->weight ? a->weight : 1;
        if (a->weight)
            r->weighted = true;
        key->boundary[i] = -1;
        if (a->boundary) {
            size_t bi;
            for (bi = 0; bi < s->nb; bi++)
                if (!strcmp(s->b[bi].name, a->boundary))
                    break;
            if (bi == s->nb)
                return fail(b, a->line, "%s.answers[%zu]: unknown boundary '%s'", path, i,
                            a->boundary);
            key->boundary[i] = (int32_t)bi;
            has_boundary = true;
        } else {
            has_fallback = true;
        }
        if (a->has_latlon) {
            key->has_loc[i] = true;
            key->lat[i] = a->lat;
            key->lon[i] = a->lon;
        } else if (a->location) {
            geo_place_t pl;
            if (geo_place_find(s->geo, a->location, &pl) < 0)
                return fail(b, a->line, "%s.answers[%zu]: unknown location '%s'", path, i,
                            a->location);
            key->has_loc[i] = true;
            key->lat[i] = pl.lat;
            key->lon[i] = pl.lon;
        } else if (cr->closest) {
            warn(b, a->line, "%s.answers[%zu]: no location; it sorts after every answer "
                             "that has one", path, i);
        }
    }
    if (cr->closest && !s->geo)
        return fail(b, cr->line, "%s: closest needs a geoip database", path);
    if (has_boundary && !has_fallback)
        warn(b, cr->line,
             "%s: no fallback answer: clients outside every boundary get NODATA, which some "
             "resolvers cache for everyone; add an answer without a boundary", path);
    r->select = cr->select;
    key->select = r->weighted ? 0 : cr->select;
    return 0;
}

static bool key_equal(const pol_key_t *a, const pol_key_t *b)
{
    if (a->nanswers != b->nanswers || a->closest != b->closest || a->select != b->select ||
        a->down != b->down)
        return false;
    for (uint16_t i = 0; i < a->nanswers; i++) {
        if (a->boundary[i] != b->boundary[i] || a->has_loc[i] != b->has_loc[i])
            return false;
        if (a->has_loc[i] && (a->lat[i] != b->lat[i] || a->lon[i] != b->lon[i]))
            return false;
    }
    return true;
}

static const pol_policy_t *policy_find(const pol_set_t *s, const pol_key_t *key)
{
    for (size_t k = 0; k < s->npolicies; k++)
        if (key_equal(&s->policies[k]->key, key))
            return s->policies[k];
    return NULL;
}

/* Decision d of an all-up table for the health state of key (the `up` step of pol_eval):
 * down answers leave the matches; when none is left, or none matched, the fallback
 * answers that are up. Only for keys without closest and select, whose decisions are the
 * whole list of matches (or the fallback list). */
static unsigned derive_decision(const pol_key_t *k, const pol_decision_t *d, uint16_t *out)
{
    uint64_t all = k->nanswers >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << k->nanswers) - 1;
    uint64_t down = (k->down & all) == all ? 0 : k->down; /* fail open */
    unsigned n = 0;
    for (uint16_t i = 0; i < d->n; i++)
        if (!(down >> d->idx[i] & 1))
            out[n++] = d->idx[i];
    if (n == 0 && d->n > 0 && k->boundary[d->idx[0]] >= 0) /* matches, all down: fallback */
        for (uint16_t i = 0; i < k->nanswers; i++)
            if (k->boundary[i] < 0 && !(down >> i & 1))
                out[n++] = i;
    return n;
}

/* A health state's table from the all-up table of the same key, run by run, instead of
 * walking the GeoIP tree again: the new decision depends on the old one alone. Adjacent
 * runs that now agree merge, so the result is what policy_build() gives. */
static pol_policy_t *policy_derive(const pol_policy_t *base, const pol_key_t *key)
{
    pol_policy_t *p = xcalloc(1, sizeof(*p));
    p->key = *key;
    interner_t in = { .p = p, .mask = 63 };
    in.slots = xcalloc(in.mask + 1, sizeof(*in.slots));
    uint32_t *map = xmalloc(base->ndec * sizeof(*map)); /* base id -> new id, lazily */
    memset(map, 0xFF, base->ndec * sizeof(*map));
    uint16_t idx[64];
    if (base->uniform) {
        intern(&in, idx, derive_decision(key, base->dec[0], idx));
    } else {
        runs_t st[2] = { { .width = 32 }, { .width = 128 } };
        const pol_table_t *t[2] = { &base->t4, &base->t6 };
        for (int f = 0; f < 2; f++) {
            for (size_t i = 0; i < t[f]->n; i++) {
                uint32_t d = t[f]->dec[i];
                if (d != POL_DEC_V4ALIAS) {
                    if (map[d] == UINT32_MAX)
                        map[d] = intern(&in, idx, derive_decision(key, base->dec[d], idx));
                    d = map[d];
                }
                run_push(&st[f], f ? t[f]->start6[i] : t[f]->start4[i], d);
            }
        }
        table_from_runs(&p->t4, &st[0], true);
        table_from_runs(&p->t6, &st[1], false);
    }
    p->uniform = p->ndec <= 1;
    if (p->uniform) {
        table_clear(&p->t4);
        table_clear(&p->t6);
    }
    free(map);
    free(in.slots);
    return p;
}

/* The table for a key: an existing one, or a new one compiled now. */
static const pol_policy_t *policy_get(pol_set_t *s, const pol_key_t *key)
{
    const pol_policy_t *found = policy_find(s, key);
    if (found)
        return found;
    const pol_policy_t *base = NULL;
    if (key->down && !key->closest && key->select == 0 && !s->walk_only) {
        pol_key_t up = *key;
        up.down = 0;
        base = policy_find(s, &up);
    }
    if ((s->npolicies & (s->npolicies - 1)) == 0) /* 0, 1, 2, 4...: double */
        s->policies = xrealloc(s->policies,
                               (s->npolicies ? 2 * s->npolicies : 1) * sizeof(*s->policies));
    pol_policy_t *p = base ? policy_derive(base, key) : policy_build(s, key);
    s->policies[s->npolicies] = p;
    /* The counts are read by status and metrics while a health change adds a table. */
    __atomic_store_n(&s->npolicies, s->npolicies + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->bytes, s->bytes + table_bytes(&p->t4, true) + table_bytes(&p->t6, false),
                     __ATOMIC_RELAXED);
    return p;
}

int pol_route_set_down(pol_set_t *s, const pol_route_t *r, uint64_t down)
{
    if (r->nanswers < 64 && (down >> r->nanswers))
        return ERR_INVAL;
    pol_route_t *w = (pol_route_t *)r; /* the set owns its routes */
    if (w->down == down)
        return 0;
    pol_key_t key = pol_route_policy(r)->key;
    key.down = down;
    const pol_policy_t *p = policy_get(s, &key);
    w->down = down;
    __atomic_store_n(&w->policy, p, __ATOMIC_RELEASE);
    return 0;
}

int pol_set_build(pol_set_t **out, const conf_t *conf, const geo_db_t *geo, pol_warn_fn warnfn,
                  void *warn_ctx, char *err, size_t errlen)
{
    build_t b = { .conf = conf, .err = err, .errlen = errlen, .warn = warnfn, .warn_ctx = warn_ctx };
    pol_set_t *s = xcalloc(1, sizeof(*s));
    s->geo = geo;
    int rc = 0;
    s->b = xcalloc(conf->nboundaries ? conf->nboundaries : 1, sizeof(*s->b));
    for (size_t i = 0; i < conf->nboundaries && rc == 0; i++) {
        rc = compile_boundary(&b, geo, &conf->boundaries[i], &s->b[i]);
        s->nb++;
    }
    if (rc == 0)
        warn_overlaps(&b, s);
    size_t total = 0;
    for (size_t i = 0; i < conf->nzones; i++)
        total += conf->zones[i].nroutes;
    s->routes = xcalloc(total ? total : 1, sizeof(*s->routes));
    pol_key_t *keys = xcalloc(total ? total : 1, sizeof(*keys));
    for (size_t zi = 0; zi < conf->nzones && rc == 0; zi++) {
        const conf_zone_t *cz = &conf->zones[zi];
        for (size_t j = 0; j < cz->nroutes && rc == 0; j++) {
            pol_route_t *r = &s->routes[s->nroutes];
            s->nroutes++;
            rc = compile_route(&b, s, cz, zi, &cz->routes[j], r, &keys[s->nroutes - 1]);
        }
    }
    /* One table per distinct key. */
    s->building = true;
    for (size_t i = 0; i < s->nroutes && rc == 0; i++)
        s->routes[i].policy = policy_get(s, &keys[i]);
    s->building = false;
    free(keys);
    loc_runs_free(s->loc_runs); /* health changes later walk the GeoIP tree */
    s->loc_runs = NULL;
    if (rc < 0) {
        pol_set_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pol_set_free(pol_set_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nroutes; i++) {
        for (uint16_t j = 0; j < s->routes[i].nanswers; j++)
            free((void *)s->routes[i].rdata[j]);
        free(s->routes[i].rdata);
        free(s->routes[i].weight);
    }
    free(s->routes);
    for (size_t i = 0; i < s->npolicies; i++)
        policy_free(s->policies[i]);
    free(s->policies);
    for (size_t i = 0; i < s->nb; i++)
        boundary_clear(&s->b[i]);
    free(s->b);
    free(s);
}

size_t pol_set_route_count(const pol_set_t *s)
{
    return s->nroutes;
}

const pol_route_t *pol_set_route(const pol_set_t *s, size_t i)
{
    return i < s->nroutes ? &s->routes[i] : NULL;
}

size_t pol_set_policy_count(const pol_set_t *s)
{
    return __atomic_load_n(&s->npolicies, __ATOMIC_RELAXED);
}

size_t pol_set_bytes(const pol_set_t *s)
{
    return __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
}

const pol_route_t *pol_set_find(const pol_set_t *s, const uint8_t *owner, uint16_t type)
{
    for (size_t i = 0; i < s->nroutes; i++)
        if (s->routes[i].type == type && dns_dname_equal(s->routes[i].owner, owner))
            return &s->routes[i];
    return NULL;
}
