/*
 * GeoLite2 CSV source: *-Blocks-IPv4.csv / *-Blocks-IPv6.csv joined with
 * *-Locations-en.csv on geoname_id (falling back to registered_country_geoname_id when
 * geoname_id is empty). Columns are found by their header names; fields may be quoted
 * (RFC 4180, "" escapes, quoted newlines). Networks may nest: the most specific wins.
 * Rows of the IPv6 files inside ::/96 or ::ffff:0:0/96 are IPv4 networks; rows inside the
 * other alias regions (2001::/32, 2002::/16) are ignored, since those addresses are
 * looked up in the IPv4 space.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "geo/geo_internal.h"

typedef struct {
    const char *p;
    size_t len;
} field_t;

#define MAX_FIELDS 64

typedef struct {
    FILE *f;
    const char *path;
    char *buf; /* the current record (may span lines when quoted) */
    size_t cap;
    char *line;
    size_t line_cap;
    unsigned long lineno; /* line where the current record starts */
    unsigned long next_lineno;
    field_t fields[MAX_FIELDS];
    int nfields;
    char *err;
    size_t errlen;
} csv_t;

static int csv_open(csv_t *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->path = path;
    c->err = err;
    c->errlen = errlen;
    c->next_lineno = 1;
    c->f = fopen(path, "r");
    if (!c->f)
        return geo_errf(err, errlen, ERR_IO, "%s: %s", path, strerror(errno));
    return 0;
}

static void csv_close(csv_t *c)
{
    if (c->f)
        fclose(c->f);
    free(c->buf);
    free(c->line);
    memset(c, 0, sizeof(*c));
}

/* Read the next record and split it. 1 = record, 0 = EOF, <0 = error. Empty lines are
 * skipped. Quoted fields are unescaped in place. */
static int csv_next(csv_t *c)
{
    size_t used = 0;
    bool in_quotes = false;
    for (;;) {
        ssize_t n = getline(&c->line, &c->line_cap, c->f);
        if (n < 0) {
            if (ferror(c->f))
                return geo_errf(c->err, c->errlen, ERR_IO, "%s: %s", c->path, strerror(errno));
            if (in_quotes)
                return geo_errf(c->err, c->errlen, ERR_PARSE, "%s:%lu: unterminated quoted field",
                                c->path, c->lineno);
            return 0;
        }
        if (used == 0)
            c->lineno = c->next_lineno;
        c->next_lineno++;
        if (memchr(c->line, '\0', (size_t)n))
            return geo_errf(c->err, c->errlen, ERR_PARSE, "%s:%lu: NUL byte in line", c->path,
                            c->next_lineno - 1);
        while (n > 0 && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r'))
            n--;
        if (used + (size_t)n + 2 > c->cap) {
            c->cap = (used + (size_t)n + 2) * 2;
            c->buf = xrealloc(c->buf, c->cap);
        }
        if (used)
            c->buf[used++] = '\n';
        memcpy(c->buf + used, c->line, (size_t)n);
        /* strip a UTF-8 byte order mark on the first line */
        if (c->lineno == 1 && used == 0 && n >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) {
            memmove(c->buf, c->buf + 3, (size_t)n - 3);
            n -= 3;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (c->buf[used + (size_t)i] == '"')
                in_quotes = !in_quotes;
        }
        used += (size_t)n;
        c->buf[used] = '\0';
        if (in_quotes)
            continue;
        if (used == 0)
            continue; /* blank line */
        break;
    }
    /* split */
    c->nfields = 0;
    char *p = c->buf, *end = c->buf + used;
    for (;;) {
        if (c->nfields == MAX_FIELDS)
            return geo_errf(c->err, c->errlen, ERR_PARSE, "%s:%lu: more than %d columns", c->path,
                            c->lineno, MAX_FIELDS);
        field_t *fl = &c->fields[c->nfields++];
        if (p < end && *p == '"') {
            char *w = ++p, *start = p;
            for (;;) {
                if (p >= end)
                    return geo_errf(c->err, c->errlen, ERR_PARSE,
                                    "%s:%lu: unterminated quoted field", c->path, c->lineno);
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            fl->p = start;
            fl->len = (size_t)(w - start);
            if (p < end && *p != ',')
                return geo_errf(c->err, c->errlen, ERR_PARSE,
                                "%s:%lu: garbage after quoted field %d", c->path, c->lineno,
                                c->nfields);
        } else {
            char *start = p;
            while (p < end && *p != ',')
                p++;
            fl->p = start;
            fl->len = (size_t)(p - start);
        }
        if (p >= end)
            break;
        p++; /* the comma */
    }
    return 1;
}

static int col_index(const csv_t *c, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < c->nfields; i++) {
        if (c->fields[i].len == len && memcmp(c->fields[i].p, name, len) == 0)
            return i;
    }
    return -1;
}

static bool parse_u32(const field_t *f, uint32_t *out)
{
    if (f->len == 0 || f->len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(f->p[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_double(const field_t *f, double *out)
{
    char buf[64], *end;
    if (f->len == 0 || f->len >= sizeof(buf))
        return false;
    memcpy(buf, f->p, f->len);
    buf[f->len] = '\0';
    errno = 0;
    *out = strtod(buf, &end);
    return *end == '\0' && errno == 0;
}

/* ---- the locations file --------------------------------------------------------------- */

typedef struct {
    uint32_t gid;
    char continent[3], country[3], sub[8];
    uint32_t city; /* offset in pool, 0 = none */
} csvloc_t;

typedef struct {
    csvloc_t *v;
    uint32_t n, cap;
    uint32_t *hash; /* index + 1 */
    uint32_t hcap;
    char *pool;
    size_t plen, pcap;
} loctab_t;

static uint32_t gid_slot(uint32_t gid, uint32_t cap)
{
    return (uint32_t)(((uint64_t)gid * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static const csvloc_t *loctab_find(const loctab_t *t, uint32_t gid)
{
    if (!t->hcap)
        return NULL;
    for (uint32_t k = gid_slot(gid, t->hcap); t->hash[k]; k = (k + 1) & (t->hcap - 1)) {
        if (t->v[t->hash[k] - 1].gid == gid)
            return &t->v[t->hash[k] - 1];
    }
    return NULL;
}

static void copy_field(char *dst, size_t cap, const csv_t *c, int col)
{
    dst[0] = '\0';
    if (col < 0 || c->fields[col].len >= cap)
        return;
    memcpy(dst, c->fields[col].p, c->fields[col].len);
    dst[c->fields[col].len] = '\0';
}

static int read_locations(loctab_t *t, const char *path, char *err, size_t errlen)
{
    csv_t c;
    int rc = csv_open(&c, path, err, errlen);
    if (rc < 0)
        return rc;
    rc = csv_next(&c);
    if (rc <= 0) {
        csv_close(&c);
        return rc < 0 ? rc : geo_errf(err, errlen, ERR_PARSE, "%s: empty file", path);
    }
    int ncols = c.nfields;
    int c_gid = col_index(&c, "geoname_id"), c_cont = col_index(&c, "continent_code"),
        c_ctry = col_index(&c, "country_iso_code"), c_sub = col_index(&c, "subdivision_1_iso_code"),
        c_city = col_index(&c, "city_name");
    if (c_gid < 0) {
        csv_close(&c);
        return geo_errf(err, errlen, ERR_PARSE, "%s:1: no geoname_id column in header", path);
    }
    t->pcap = 4096;
    t->pool = xmalloc(t->pcap);
    t->pool[0] = '\0';
    t->plen = 1;
    while ((rc = csv_next(&c)) > 0) {
        if (c.nfields != ncols) {
            rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: expected %d columns, got %d", path,
                          c.lineno, ncols, c.nfields);
            break;
        }
        csvloc_t l;
        memset(&l, 0, sizeof(l));
        if (!parse_u32(&c.fields[c_gid], &l.gid)) {
            rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: bad geoname_id", path, c.lineno);
            break;
        }
        if (loctab_find(t, l.gid)) {
            rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: duplicate geoname_id %u", path,
                          c.lineno, l.gid);
            break;
        }
        copy_field(l.continent, sizeof(l.continent), &c, c_cont);
        copy_field(l.country, sizeof(l.country), &c, c_ctry);
        copy_field(l.sub, sizeof(l.sub), &c, c_sub);
        if (c_city >= 0 && c.fields[c_city].len) {
            size_t len = c.fields[c_city].len;
            while (t->plen + len + 1 > t->pcap) {
                t->pcap *= 2;
                t->pool = xrealloc(t->pool, t->pcap);
            }
            memcpy(t->pool + t->plen, c.fields[c_city].p, len);
            t->pool[t->plen + len] = '\0';
            l.city = (uint32_t)t->plen;
            t->plen += len + 1;
        }
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 1024;
            t->v = xrealloc(t->v, (size_t)t->cap * sizeof(*t->v));
        }
        if ((t->n + 1) * 2 > t->hcap) {
            uint32_t ncap = t->hcap ? t->hcap * 2 : 4096;
            uint32_t *nh = xcalloc(ncap, sizeof(uint32_t));
            for (uint32_t i = 0; i < t->n; i++) {
                uint32_t k = gid_slot(t->v[i].gid, ncap);
                while (nh[k])
                    k = (k + 1) & (ncap - 1);
                nh[k] = i + 1;
            }
            free(t->hash);
            t->hash = nh;
            t->hcap = ncap;
        }
        t->v[t->n] = l;
        uint32_t k = gid_slot(l.gid, t->hcap);
        while (t->hash[k])
            k = (k + 1) & (t->hcap - 1);
        t->hash[k] = ++t->n;
    }
    csv_close(&c);
    return rc < 0 ? rc : 0;
}

/* ---- the blocks files ----------------------------------------------------------------- */

typedef struct {
    uint32_t first;
    uint8_t plen;
    uint32_t loc;
} net4_t;

typedef struct {
    geo_u128 first;
    uint32_t loc;
    uint8_t plen;
} net6_t;

typedef struct {
    net4_t *n4;
    size_t c4, cap4;
    net6_t *n6;
    size_t c6, cap6;
} nets_t;

static void add_net(nets_t *ns, bool v4, geo_u128 first, unsigned plen, uint32_t loc)
{
    if (!v4) {
        if ((first >> 32) == 0xffff || (first >> 32) == 0) { /* ::ffff:0:0/96, ::/96 */
            if (plen < 96)
                plen = 96; /* a wider v6 network covers the whole IPv4 space */
            v4 = true;
            first = (uint32_t)first;
            plen -= 96;
        } else if (geo_v6_in_alias(first, first)) {
            return;
        }
    }
    if (v4) {
        if (ns->c4 == ns->cap4) {
            ns->cap4 = ns->cap4 ? ns->cap4 * 2 : 4096;
            ns->n4 = xrealloc(ns->n4, ns->cap4 * sizeof(*ns->n4));
        }
        ns->n4[ns->c4++] = (net4_t){(uint32_t)first, (uint8_t)plen, loc};
    } else {
        if (ns->c6 == ns->cap6) {
            ns->cap6 = ns->cap6 ? ns->cap6 * 2 : 4096;
            ns->n6 = xrealloc(ns->n6, ns->cap6 * sizeof(*ns->n6));
        }
        ns->n6[ns->c6++] = (net6_t){first, loc, (uint8_t)plen};
    }
}

static int read_blocks(geo_builder_t *b, const loctab_t *t, const char *path, nets_t *ns,
                       char *err, size_t errlen)
{
    csv_t c;
    int rc = csv_open(&c, path, err, errlen);
    if (rc < 0)
        return rc;
    rc = csv_next(&c);
    if (rc <= 0) {
        csv_close(&c);
        return rc < 0 ? rc : geo_errf(err, errlen, ERR_PARSE, "%s: empty file", path);
    }
    int ncols = c.nfields;
    int c_net = col_index(&c, "network"), c_gid = col_index(&c, "geoname_id"),
        c_reg = col_index(&c, "registered_country_geoname_id"),
        c_lat = col_index(&c, "latitude"), c_lon = col_index(&c, "longitude");
    if (c_net < 0 || c_gid < 0) {
        csv_close(&c);
        return geo_errf(err, errlen, ERR_PARSE, "%s:1: header needs network and geoname_id",
                        path);
    }
    while ((rc = csv_next(&c)) > 0) {
        if (c.nfields != ncols) {
            rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: expected %d columns, got %d", path,
                          c.lineno, ncols, c.nfields);
            break;
        }
        bool v4;
        geo_u128 first;
        unsigned plen;
        const field_t *fn = &c.fields[c_net];
        if (geo_parse_cidr(fn->p, fn->len, &v4, &first, &plen) < 0) {
            rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: bad network '%.*s'", path, c.lineno,
                          (int)MIN(fn->len, 64), fn->p);
            break;
        }
        const field_t *fg = &c.fields[c_gid];
        if (fg->len == 0 && c_reg >= 0)
            fg = &c.fields[c_reg];
        geo_loc_in_t in = {0};
        if (fg->len) {
            uint32_t gid;
            if (!parse_u32(fg, &gid)) {
                rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: bad geoname_id '%.*s'", path,
                              c.lineno, (int)MIN(fg->len, 32), fg->p);
                break;
            }
            const csvloc_t *l = loctab_find(t, gid);
            if (!l) {
                rc = geo_errf(err, errlen, ERR_NOTFOUND, "%s:%lu: unknown geoname_id %u", path,
                              c.lineno, gid);
                break;
            }
            in.continent = l->continent;
            in.country = l->country;
            in.subdivision = l->sub;
            in.city = l->city ? t->pool + l->city : NULL;
        }
        if (c_lat >= 0 && c_lon >= 0 && (c.fields[c_lat].len || c.fields[c_lon].len)) {
            if (!parse_double(&c.fields[c_lat], &in.lat) ||
                !parse_double(&c.fields[c_lon], &in.lon) || in.lat < -90 || in.lat > 90 ||
                in.lon < -180 || in.lon > 180) {
                rc = geo_errf(err, errlen, ERR_PARSE, "%s:%lu: bad latitude/longitude", path,
                              c.lineno);
                break;
            }
            in.has_coords = true;
        }
        add_net(ns, v4, first, plen, geo_builder_loc(b, &in));
    }
    csv_close(&c);
    return rc < 0 ? rc : 0;
}

static int cmp4(const void *a, const void *b)
{
    const net4_t *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return (int)x->plen - (int)y->plen;
}

static int cmp6(const void *a, const void *b)
{
    const net6_t *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return (int)x->plen - (int)y->plen;
}

/* Turn sorted (possibly nested) networks into ranges; the most specific network wins,
 * and among identical networks the last row. */
typedef struct {
    geo_u128 end;
    uint32_t loc;
} open_t;

static void out_seg(bool v4, geo_rl4_t *r4, geo_rl6_t *r6, geo_u128 s, geo_u128 e, uint32_t loc)
{
    if (v4)
        geo_rl4_push(r4, (uint32_t)s, loc);
    else
        geo_rl6_emit(r6, s, e, loc);
}

static void sweep(bool v4, size_t n, const net4_t *n4, const net6_t *n6, geo_rl4_t *r4,
                  geo_rl6_t *r6)
{
    const unsigned bits = v4 ? 32 : 128;
    const geo_u128 top = v4 ? 0xffffffffu : GEO_U128_MAX;
    open_t st[130];
    int sp = 0;
    geo_u128 cur = 0;
    bool done = false; /* cur went past the top */
    for (size_t i = 0; i <= n && !done; i++) {
        geo_u128 f = 0, end = 0;
        uint32_t loc = 0;
        unsigned plen = 0;
        if (i < n) {
            f = v4 ? n4[i].first : n6[i].first;
            plen = v4 ? n4[i].plen : n6[i].plen;
            loc = v4 ? n4[i].loc : n6[i].loc;
            end = plen == 0 ? top : f | ((((geo_u128)1) << (bits - plen)) - 1);
        }
        while (sp && (i == n || st[sp - 1].end < f)) {
            if (cur <= st[sp - 1].end)
                out_seg(v4, r4, r6, cur, st[sp - 1].end, st[sp - 1].loc);
            if (st[sp - 1].end == top) {
                done = true;
                break;
            }
            cur = st[sp - 1].end + 1;
            sp--;
        }
        if (done || i == n)
            break;
        /* here cur <= f, and the top of the stack (if any) contains f: CIDR networks
         * either nest or are disjoint, and sorting puts the wider one first */
        if (cur < f) {
            out_seg(v4, r4, r6, cur, f - 1, sp ? st[sp - 1].loc : 0);
            cur = f;
        }
        if (sp < (int)ARRAY_SIZE(st))
            st[sp++] = (open_t){end, loc};
    }
    if (!done)
        out_seg(v4, r4, r6, cur, top, 0);
}

int geo_csv_read(geo_builder_t *b, const geo_source_t *src, geo_rl4_t *v4, geo_rl6_t *v6,
                 char *err, size_t errlen)
{
    loctab_t t;
    memset(&t, 0, sizeof(t));
    nets_t ns;
    memset(&ns, 0, sizeof(ns));
    int rc = read_locations(&t, src->locations, err, errlen);
    for (size_t i = 0; rc == 0 && src->blocks[i]; i++)
        rc = read_blocks(b, &t, src->blocks[i], &ns, err, errlen);
    free(t.v);
    free(t.hash);
    free(t.pool);
    if (rc == 0) {
        if (ns.c4) /* n4 is NULL when there is none: qsort(NULL, 0, ...) is undefined */
            qsort(ns.n4, ns.c4, sizeof(*ns.n4), cmp4);
        if (ns.c6)
            qsort(ns.n6, ns.c6, sizeof(*ns.n6), cmp6);
        sweep(true, ns.c4, ns.n4, NULL, v4, v6);
        sweep(false, ns.c6, NULL, ns.n6, v4, v6);
    }
    free(ns.n4);
    free(ns.n6);
    return rc;
}
