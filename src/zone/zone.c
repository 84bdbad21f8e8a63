#include "zone/zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "dns/rrtype.h"
#include "zone/zparse.h"

/* The hash of the root, where every name's hash starts. */
#define HASH_ROOT 0x243F6A8885A308D3ull

static inline uint64_t hash_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t load32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* One more label in front of a suffix whose hash state is h: its length, then its bytes
 * in words (the last word of a long label overlaps the one before; loads never leave
 * the label). */
static inline uint64_t hash_label(uint64_t h, const uint8_t *label)
{
    unsigned c = label[0];
    const uint8_t *p = label + 1;
    if (c >= 8) {
        unsigned i = 0;
        for (; i + 8 <= c; i += 8)
            h = hash_mix(h, load64(p + i));
        if (i < c)
            h = hash_mix(h, load64(p + c - 8));
        return hash_mix(h, c);
    }
    uint64_t w;
    if (c >= 4)
        w = load32(p) | load32(p + c - 4) << 32;
    else if (c > 0)
        w = (uint64_t)p[0] | (uint64_t)p[c / 2] << 8 | (uint64_t)p[c - 1] << 16;
    else
        w = 0;
    return hash_mix(h, w << 8 | c);
}

static inline uint32_t hash_fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

void zone_key_init(zone_key_t *k, const uint8_t *lname)
{
    unsigned n = 0, o = 0;
    while (lname[o]) {
        k->off[n++] = (uint8_t)o;
        o += 1u + lname[o];
    }
    k->off[n] = (uint8_t)o;
    k->lname = lname;
    k->len = (uint8_t)(o + 1);
    k->labels = (uint8_t)n;
    uint64_t h = HASH_ROOT;
    k->hash[n] = hash_fold(h);
    while (n-- > 0) {
        h = hash_label(h, lname + k->off[n]);
        k->hash[n] = hash_fold(h);
    }
}

uint32_t zone_name_hash(const uint8_t *lname, size_t len)
{
    (void)len; /* the name's own root label ends it */
    zone_key_t k;
    zone_key_init(&k, lname);
    return k.hash[0];
}

/* ---- Building -------------------------------------------------------------------- */

typedef struct {
    zone_t *z;
    const uint8_t *origin;      /* lowered */
    int origin_labels;
    bool seen_soa;
    char *errbuf;
} builder_t;

static void table_grow(zone_t *z)
{
    uint32_t nsize = (z->mask + 1) * 2;
    zone_node_t **nt = xcalloc(nsize, sizeof(*nt));
    for (uint32_t i = 0; i <= z->mask; i++) {
        zone_node_t *n = z->table[i];
        while (n) {
            zone_node_t *next = n->hnext;
            uint32_t h = zone_name_hash(n->lname, n->len) & (nsize - 1);
            n->hnext = nt[h];
            nt[h] = n;
            n = next;
        }
    }
    free(z->table);
    z->table = nt;
    z->mask = nsize - 1;
}

const zone_node_t *zone_find_key(const zone_t *z, const zone_key_t *k, unsigned i)
{
    const uint8_t *name = k->lname + k->off[i];
    size_t len = (size_t)k->len - k->off[i];
    const zone_node_t *n = z->table[k->hash[i] & z->mask];
    for (; n; n = n->hnext)
        if (n->len == len && memcmp(n->lname, name, len) == 0)
            return n;
    return NULL;
}

const zone_node_t *zone_find(const zone_t *z, const uint8_t *lname)
{
    zone_key_t k;
    zone_key_init(&k, lname);
    return zone_find_key(z, &k, 0);
}

/* Find or create the node for name (at or below the apex), creating missing ancestors
 * as empty non-terminals. */
static zone_node_t *node_get(zone_t *z, const uint8_t *name)
{
    uint8_t lname[DNS_NAME_MAX];
    size_t len = dns_dname_lower(lname, name);
    zone_node_t *n = (zone_node_t *)zone_find(z, lname);
    if (n)
        return n;
    n = xcalloc(1, sizeof(*n));
    n->name = xmemdup(name, len);
    n->lname = xmemdup(lname, len);
    n->labels = (uint8_t)dns_dname_labels(lname);
    n->len = (uint8_t)len;
    if (z->apex) {
        n->parent = node_get(z, dns_dname_parent(name));
        if (dns_dname_is_wildcard(lname))
            n->parent->wildcard = n;
    }
    if (z->nnodes * 2 >= z->mask + 1)
        table_grow(z);
    uint32_t h = zone_name_hash(lname, len) & z->mask;
    n->hnext = z->table[h];
    z->table[h] = n;
    z->nnodes++;
    return n;
}

const zone_rrset_t *zone_node_rrset(const zone_node_t *n, uint16_t type)
{
    for (uint16_t i = 0; i < n->nrrsets; i++)
        if (n->rrsets[i].type == type)
            return &n->rrsets[i];
    return NULL;
}

static int add_rr(void *ctx, const zparse_rr_t *rr, char *err, size_t errlen)
{
    builder_t *b = ctx;
    zone_t *z = b->z;
    if (!dns_dname_is_subdomain(rr->owner, b->origin)) {
        char t[DNS_TEXT_MAX];
        dns_dname_to_text(rr->owner, t);
        snprintf(err, errlen, "owner %s is outside the zone %s", t, z->name);
        return ERR_INVAL;
    }
    if (rr->rclass != DNS_C_IN) {
        snprintf(err, errlen, "only class IN is supported");
        return ERR_INVAL;
    }
    if (dns_rrtype_is_meta(rr->type)) {
        snprintf(err, errlen, "type %u cannot appear in a zone", rr->type);
        return ERR_INVAL;
    }
    zone_node_t *n = node_get(z, rr->owner);
    bool at_apex = n == z->apex;
    if (rr->type == DNS_T_SOA) {
        if (!at_apex) {
            snprintf(err, errlen, "SOA record is not at the zone apex");
            return ERR_INVAL;
        }
        if (b->seen_soa) {
            snprintf(err, errlen, "more than one SOA record");
            return ERR_INVAL;
        }
        b->seen_soa = true;
    }
    zone_rrset_t *set = (zone_rrset_t *)zone_node_rrset(n, rr->type);
    if (rr->type == DNS_T_CNAME || zone_node_rrset(n, DNS_T_CNAME)) {
        bool cname_exists = zone_node_rrset(n, DNS_T_CNAME) != NULL;
        if (rr->type == DNS_T_CNAME ? (n->nrrsets > (cname_exists ? 1 : 0))
                                    : cname_exists) {
            snprintf(err, errlen, "CNAME and other data at the same name");
            return ERR_INVAL;
        }
        if (rr->type == DNS_T_CNAME && cname_exists) {
            /* a second, different CNAME; an identical one is dropped below */
            const uint8_t *old = set->rdata[0];
            if (zone_rd_len(old) != rr->rdlen ||
                memcmp(zone_rd_data(old), rr->rdata, rr->rdlen) != 0) {
                snprintf(err, errlen, "more than one CNAME record at the same name");
                return ERR_INVAL;
            }
        }
    }
    if (rr->type == DNS_T_DNAME && set) {
        snprintf(err, errlen, "more than one DNAME record at the same name");
        return ERR_INVAL;
    }
    if (!set) {
        if (n->nrrsets == n->cap_) {
            n->cap_ = n->cap_ ? (uint16_t)(n->cap_ * 2) : 2;
            n->rrsets = xrealloc(n->rrsets, n->cap_ * sizeof(*n->rrsets));
        }
        set = &n->rrsets[n->nrrsets++];
        memset(set, 0, sizeof(*set));
        set->type = rr->type;
        set->ttl = rr->ttl;
    }
    /* Identical RRs are dropped (an RRset is a set). */
    for (uint16_t i = 0; i < set->count; i++) {
        const uint8_t *old = set->rdata[i];
        if (zone_rd_len(old) == rr->rdlen && memcmp(zone_rd_data(old), rr->rdata, rr->rdlen) == 0)
            return 0;
    }
    if (set->count == UINT16_MAX) {
        snprintf(err, errlen, "too many records in one RRset");
        return ERR_LIMIT;
    }
    if ((set->count & (set->count - 1)) == 0) /* grow at powers of two */
        set->rdata = xrealloc(set->rdata, (set->count ? set->count * 2u : 1u) * sizeof(*set->rdata));
    uint8_t *rd = xmalloc(2u + rr->rdlen);
    wr_u16(rd, rr->rdlen);
    memcpy(rd + 2, rr->rdata, rr->rdlen);
    set->rdata[set->count++] = rd;
    /* RFC 2181 §5.2: one TTL per RRset; keep the smallest seen. */
    if (rr->ttl < set->ttl)
        set->ttl = rr->ttl;
    z->nrecords++;
    return 0;
}

static void mark_flags(zone_t *z)
{
    for (uint32_t i = 0; i <= z->mask; i++) {
        for (zone_node_t *n = z->table[i]; n; n = n->hnext) {
            if (n != z->apex && zone_node_rrset(n, DNS_T_NS))
                n->flags |= ZONE_NODE_CUT;
            if (zone_node_rrset(n, DNS_T_DNAME))
                n->flags |= ZONE_NODE_DNAME;
        }
    }
    for (uint32_t i = 0; i <= z->mask; i++) {
        for (zone_node_t *n = z->table[i]; n; n = n->hnext) {
            for (zone_node_t *a = n->parent; a; a = a->parent) {
                if (a->flags & (ZONE_NODE_CUT | ZONE_NODE_DNAME)) {
                    n->flags |= ZONE_NODE_OCCLUDED;
                    break;
                }
            }
        }
    }
}

static zone_t *zone_new(const uint8_t *origin)
{
    zone_t *z = xcalloc(1, sizeof(*z));
    char t[DNS_TEXT_MAX];
    dns_dname_to_text(origin, t);
    z->name = xstrdup(t);
    z->mask = 63;
    z->table = xcalloc(z->mask + 1, sizeof(*z->table));
    z->apex = node_get(z, origin);
    z->apex->flags |= ZONE_NODE_APEX;
    return z;
}

static zone_t *zone_finish(zone_t *z, builder_t *b, int rc, const char *name, char *err,
                           size_t errlen)
{
    if (rc == 0 && !b->seen_soa) {
        snprintf(err, errlen, "%s: zone %s has no SOA record at its apex", name, z->name);
        rc = ERR_INVAL;
    }
    if (rc < 0) {
        zone_free(z);
        return NULL;
    }
    z->soa = zone_node_rrset(z->apex, DNS_T_SOA);
    z->ns = zone_node_rrset(z->apex, DNS_T_NS);
    const uint8_t *soa = zone_rd_data(z->soa->rdata[0]);
    uint16_t soalen = zone_rd_len(z->soa->rdata[0]);
    uint32_t minimum = soalen >= 4 ? rd_u32(soa + soalen - 4) : 0;
    z->neg_ttl = MIN(z->soa->ttl, minimum);
    mark_flags(z);
    return z;
}

zone_t *zone_load(const uint8_t *origin, const char *path, char *err, size_t errlen)
{
    uint8_t lorigin[DNS_NAME_MAX];
    dns_dname_lower(lorigin, origin);
    zone_t *z = zone_new(origin);
    builder_t b = { .z = z, .origin = lorigin };
    zparse_opts_t opts = { .origin = origin, .default_ttl = 3600 };
    int rc = zparse_file(path, &opts, add_rr, &b, err, errlen);
    return zone_finish(z, &b, rc, path, err, errlen);
}

zone_t *zone_load_buffer(const uint8_t *origin, const char *text, size_t len, const char *name,
                         char *err, size_t errlen)
{
    uint8_t lorigin[DNS_NAME_MAX];
    dns_dname_lower(lorigin, origin);
    zone_t *z = zone_new(origin);
    builder_t b = { .z = z, .origin = lorigin };
    zparse_opts_t opts = { .origin = origin, .default_ttl = 3600 };
    int rc = zparse_buffer(text, len, name, &opts, add_rr, &b, err, errlen);
    return zone_finish(z, &b, rc, name, err, errlen);
}

void zone_free(zone_t *z)
{
    if (!z)
        return;
    for (uint32_t i = 0; i <= z->mask; i++) {
        zone_node_t *n = z->table[i];
        while (n) {
            zone_node_t *next = n->hnext;
            for (uint16_t j = 0; j < n->nrrsets; j++) {
                for (uint16_t k = 0; k < n->rrsets[j].count; k++)
                    free((void *)n->rrsets[j].rdata[k]);
                free(n->rrsets[j].rdata);
            }
            free(n->rrsets);
            free((void *)n->name);
            free((void *)n->lname);
            free(n);
            n = next;
        }
    }
    free(z->table);
    free(z->name);
    free(z);
}

zone_node_t *zone_node_ensure(zone_t *z, const uint8_t *name)
{
    if (!dns_dname_is_subdomain(name, z->apex->lname))
        return NULL;
    size_t before = z->nnodes;
    zone_node_t *n = node_get(z, name);
    if (z->nnodes != before) {
        /* New nodes (n and maybe ancestors) inherit occlusion from their ancestors. */
        for (zone_node_t *m = n; m && !(m->flags & ZONE_NODE_APEX); m = m->parent) {
            for (zone_node_t *a = m->parent; a; a = a->parent) {
                if (a->flags & (ZONE_NODE_CUT | ZONE_NODE_DNAME)) {
                    m->flags |= ZONE_NODE_OCCLUDED;
                    break;
                }
            }
        }
    }
    return n;
}

/* ---- Lookup ---------------------------------------------------------------------- */

void zone_lookup(const zone_t *z, const uint8_t *lname, uint16_t qtype, zone_result_t *res)
{
    zone_key_t k;
    zone_key_init(&k, lname);
    zone_lookup_key(z, &k, qtype, res);
}

void zone_lookup_key(const zone_t *z, const zone_key_t *k, uint16_t qtype, zone_result_t *res)
{
    /* Closest encloser: strip labels until a node exists (the apex always does). */
    const zone_node_t *enc = NULL;
    int extra = (int)k->labels - z->apex->labels;
    int i = 0;
    for (; i <= extra; i++) {
        enc = zone_find_key(z, k, (unsigned)i);
        if (enc)
            break;
    }
    if (!enc)
        enc = z->apex;
    bool exact = i == 0;

    /* The highest cut or DNAME on the way down wins. */
    const zone_node_t *top = NULL;
    zone_result_kind_t kind = ZONE_HIT;
    for (const zone_node_t *n = enc; n; n = n->parent) {
        if ((n->flags & ZONE_NODE_CUT) && !(n == enc && exact && qtype == DNS_T_DS)) {
            top = n;
            kind = ZONE_DELEGATION;
        }
        if ((n->flags & ZONE_NODE_DNAME) && !(n == enc && exact)) {
            top = n;
            kind = ZONE_DNAME;
        }
    }
    if (top) {
        res->kind = kind;
        res->node = top;
        return;
    }
    if (exact) {
        res->kind = ZONE_HIT;
        res->node = enc;
    } else if (enc->wildcard) {
        res->kind = ZONE_WILDCARD;
        res->node = enc->wildcard;
    } else {
        res->kind = ZONE_NXDOMAIN;
        res->node = enc;
    }
}

/* ---- Zone sets ------------------------------------------------------------------- */

uint32_t zone_set_name_hash(const uint8_t *lname, size_t len)
{
    uint64_t h = HASH_ROOT ^ len;
    if (len >= 8) {
        size_t i = 0;
        for (; i + 8 <= len; i += 8)
            h = hash_mix(h, load64(lname + i));
        if (i < len)
            h = hash_mix(h, load64(lname + len - 8));
    } else {
        uint64_t w = len >= 4 ? load32(lname) | load32(lname + len - 4) << 32
                              : (uint64_t)lname[0] | (uint64_t)lname[len / 2] << 8 |
                                    (uint64_t)lname[len - 1] << 16;
        h = hash_mix(h, w);
    }
    return hash_fold(h);
}

static void names_insert(zone_set_t *s, const zone_node_t *node, size_t zi)
{
    uint32_t h = zone_set_name_hash(node->lname, node->len);
    uint32_t i = h & s->names_mask;
    while (s->names[i].node)
        i = (i + 1) & s->names_mask;
    s->names[i].node = node;
    s->names[i].hash = h;
    s->names[i].zone = (uint32_t)zi;
}

void zone_set_index(zone_set_t *s)
{
    free(s->names);
    size_t nodes = 0;
    for (size_t i = 0; i < s->n; i++)
        nodes += s->zones[i]->nnodes;
    uint32_t size = 16;
    while (size < nodes * 2)
        size *= 2;
    s->names = xcalloc(size, sizeof(*s->names));
    s->names_mask = size - 1;
    for (size_t i = 0; i < s->n; i++) {
        const zone_t *z = s->zones[i];
        for (uint32_t b = 0; b <= z->mask; b++)
            for (const zone_node_t *n = z->table[b]; n; n = n->hnext)
                if (zone_set_find(s, n->lname) == z) /* not shadowed by a deeper zone */
                    names_insert(s, n, i);
    }
}

const zone_node_t *zone_set_find_name(const zone_set_t *s, const uint8_t *lname, size_t len,
                                      const zone_t **zone)
{
    if (!s->names)
        return NULL;
    uint32_t h = zone_set_name_hash(lname, len);
    for (uint32_t i = h & s->names_mask; s->names[i].node; i = (i + 1) & s->names_mask) {
        const zone_set_name_t *e = &s->names[i];
        if (e->hash == h && e->node->len == len && memcmp(e->node->lname, lname, len) == 0) {
            *zone = s->zones[e->zone];
            return e->node;
        }
    }
    return NULL;
}

int zone_set_init(zone_set_t *s, zone_t **zones, size_t n)
{
    uint32_t size = 16;
    while (size < n * 2)
        size *= 2;
    s->table = xcalloc(size, sizeof(*s->table));
    s->mask = size - 1;
    s->names = NULL;
    s->names_mask = 0;
    s->zones = xmalloc((n ? n : 1) * sizeof(*s->zones));
    s->n = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *ln = zones[i]->apex->lname;
        if (zone_set_find(s, ln) && dns_dname_equal(zone_set_find(s, ln)->apex->lname, ln)) {
            for (size_t j = i; j < n; j++)
                zone_free(zones[j]);
            zone_set_clear(s);
            return ERR_EXISTS;
        }
        s->zones[s->n++] = zones[i];
        /* Open addressing; the apex node's hnext is not touched. */
        uint32_t h = zone_name_hash(ln, dns_dname_len(ln)) & s->mask;
        while (s->table[h])
            h = (h + 1) & s->mask;
        s->table[h] = zones[i];
    }
    return 0;
}

void zone_set_clear(zone_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        zone_free(s->zones[i]);
    free(s->zones);
    free(s->table);
    free(s->names);
    memset(s, 0, sizeof(*s));
}

const zone_t *zone_set_find_key(const zone_set_t *s, const zone_key_t *k)
{
    if (!s->table)
        return NULL;
    for (unsigned i = 0; i <= k->labels; i++) {
        const uint8_t *p = k->lname + k->off[i];
        size_t len = (size_t)k->len - k->off[i];
        uint32_t h = k->hash[i] & s->mask;
        while (s->table[h]) {
            const zone_t *z = s->table[h];
            if (z->apex->len == len && memcmp(z->apex->lname, p, len) == 0)
                return z;
            h = (h + 1) & s->mask;
        }
    }
    return NULL;
}

const zone_t *zone_set_find(const zone_set_t *s, const uint8_t *lname)
{
    zone_key_t k;
    zone_key_init(&k, lname);
    return zone_set_find_key(s, &k);
}
