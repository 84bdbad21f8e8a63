/*
 * The query path: parse, look up, write the answer. RFC 1034 §4.3.2 with the choices
 * documented in docs/behaviour.md (they follow NSD where RFCs leave room). Nothing here
 * allocates, locks, or writes shared memory; all state is on the stack or in the worker.
 */
#include "server/query.h"

#include <netinet/in.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "dns/pkt.h"
#include "dns/rrtype.h"
#include "conf/conf.h"
#include "policy/policy.h"
#include "server/rrl.h"
#include "server/snapshot.h"
#include "server/stats.h"
#include "server/dnstap.h"
#include "zone/zone.h"

#define MAX_CHAIN 12      /* CNAME/DNAME links followed for one query */
#define MAX_ADDL 16       /* names whose addresses may go to the additional section */

/* A client address as the policy sees it. */
typedef struct {
    int family;                    /* AF_INET, AF_INET6 */
    uint8_t addr[16];
} client_t;

typedef struct {
    dns_resp_t r;
    const snapshot_t *snap;
    const dns_query_t *q;
    client_t src;                  /* the packet's source */
    client_t ecs;                  /* the ECS address, when ecs_ok */
    bool ecs_ok;                   /* a valid, public ECS address to decide on */
    uint8_t ecs_private;           /* source prefix of a private ECS address, else 0 */
    uint8_t scope;                 /* ECS SCOPE of the reply: widest decision taken */
    uint64_t *rng;
    const srv_snapstats_t *st;     /* the snapshot's counters */
    unsigned slot;                 /* this thread's row in them */
    bool detailed;                 /* count by zone and answer */
    /* The last routed decision, for the query logs. */
    const pol_route_t *dec_route;  /* NULL: no routed answer */
    int dec_answer;                /* first answer sent, -1: none (NODATA) */
    bool dec_ecs;                  /* decided on the ECS address */
    srv_worker_t *w;               /* the thread answering */
    bool want_loc;                 /* the query logs want the decided client's location */
    bool loc_known;                /* ... and loc is it */
    uint32_t loc;
    dns_resp_mark_t base;          /* the message with only the question */
    const zone_t *zone;            /* the zone that answered, if any (for RRL) */
    int rcode;
    bool aa;
    bool truncated;
    /* The name being resolved: its lowered form (the query's, or lbuf once a chain is
     * followed), and how to write it as an owner. */
    const uint8_t *lname;
    uint8_t lbuf[DNS_NAME_MAX];
    const uint8_t *owner;          /* NULL: use owner_off */
    uint16_t owner_off;
    uint8_t synth[MAX_CHAIN][DNS_NAME_MAX]; /* DNAME-synthesised targets */
    int nsynth;
    const uint8_t *addl[MAX_ADDL]; /* names to look up for the additional section */
    int naddl;
} answer_t;

static int put_routed(answer_t *a, const pol_route_t *r, int *first);

/* The GeoIP location id of a client (the snapshot has geo data), through the thread's
 * cache (server/loccache.h). */
static uint32_t client_location(srv_worker_t *w, const snapshot_t *s, int family,
                                const uint8_t *addr)
{
    if (!w->loc)
        return geo_lookup(s->geo, family, addr, NULL);
    if (family == AF_INET6)
        return srv_loc_cache_lookup6(w->loc, s->generation, s->geo, addr);
    return srv_loc_cache_lookup(w->loc, s->generation, s->geo, rd_u32(addr));
}

/* Find the location the logs will show for client c now: its text is then on its way
 * while the rest of the answer is written (see srv_tap_prefetch_loc). */
static void find_log_location(answer_t *a, const client_t *c)
{
    a->loc = client_location(a->w, a->snap, c->family, c->addr);
    a->loc_known = true;
    srv_tap_prefetch_loc(a->w->tap, a->loc);
}

/*
 * A route's decision for this query's client, widening the message's ECS scope as
 * needed: the decision's own scope when it was made on the ECS address; when the ECS
 * address was private and the answer depends on where the client is, the source prefix,
 * so that the resolver keeps this answer for that subnet only (scope 0 would hand it to
 * its public-ECS clients too).
 */
static void decide(answer_t *a, const pol_route_t *r, pol_result_t *res)
{
    bool use_ecs = r->ecs && a->ecs_ok;
    const client_t *c = use_ecs ? &a->ecs : &a->src;
    pol_route_decide(r, c->family, c->addr, res);
    a->dec_route = r;
    a->dec_answer = -1;
    a->dec_ecs = use_ecs;
    uint8_t scope = 0;
    if (use_ecs)
        scope = res->scope;
    else if (r->ecs && a->ecs_private && res->scope > 0)
        scope = a->ecs_private;
    if (scope > a->scope)
        a->scope = scope;
    if (a->want_loc)
        find_log_location(a, c);
}
static const pol_route_t *route_for(const zone_node_t *n, uint16_t type);
static int put_rrset(answer_t *a, const uint8_t *owner, uint16_t owner_off, const zone_rrset_t *set);

/*
 * ALIAS: choose a target with the route, then answer the query type with the target's
 * data (routed or static) under the current owner. Returns RRs written, 0 for NODATA, or
 * ERR_SPACE.
 */
static int put_alias(answer_t *a, const pol_route_t *ra, const zone_t *z)
{
    pol_result_t res;
    decide(a, ra, &res);
    uint16_t idx[1];
    if (pol_route_order(ra, &res, a->rng, idx, 1) == 0)
        return 0;
    a->dec_answer = idx[0];
    if (a->detailed)
        srv_snapstats_answer(a->st, a->slot, ra, idx[0]);
    uint8_t lt[DNS_NAME_MAX];
    dns_dname_lower(lt, zone_rd_data(ra->rdata[idx[0]]));
    zone_result_t tr;
    zone_lookup(z, lt, a->q->qtype, &tr);
    if (tr.kind != ZONE_HIT && tr.kind != ZONE_WILDCARD)
        return 0;
    const pol_route_t *rt = route_for(tr.node, a->q->qtype);
    if (rt) {
        int first;
        return put_routed(a, rt, &first);
    }
    const zone_rrset_t *set = zone_node_rrset(tr.node, a->q->qtype);
    if (!set)
        return 0;
    return put_rrset(a, a->owner, a->owner_off, set) < 0 ? ERR_SPACE : set->count;
}

/* Add every RR of an RRset. owner NULL means "at owner_off". Returns 0 or ERR_SPACE. */
static int put_rrset(answer_t *a, const uint8_t *owner, uint16_t owner_off, const zone_rrset_t *set)
{
    dns_resp_mark_t m = dns_resp_mark(&a->r);
    for (uint16_t i = 0; i < set->count; i++) {
        const uint8_t *rd = set->rdata[i];
        if (dns_resp_add_rr(&a->r, owner, owner_off, set->type, DNS_C_IN, set->ttl,
                            zone_rd_data(rd), zone_rd_len(rd)) < 0) {
            dns_resp_rollback(&a->r, &m);
            return ERR_SPACE;
        }
    }
    return 0;
}

/* Remember the target of an NS, MX or SRV record for the additional section. */
static void note_target(answer_t *a, uint16_t type, const uint8_t *rd)
{
    if (a->snap->minimal && a->r.section == DNS_SEC_ANSWER)
        return; /* minimal responses: only referral glue goes to additional */
    int off;
    switch (type) {
    case DNS_T_NS: off = 0; break;
    case DNS_T_MX: off = 2; break;
    case DNS_T_SRV: off = 6; break;
    default: return;
    }
    if (a->naddl < MAX_ADDL && zone_rd_len(rd) > off)
        a->addl[a->naddl++] = zone_rd_data(rd) + off;
}

static void note_targets(answer_t *a, const zone_rrset_t *set)
{
    for (uint16_t i = 0; i < set->count; i++)
        note_target(a, set->type, set->rdata[i]);
}

static const pol_route_t *route_for(const zone_node_t *n, uint16_t type)
{
    const snapshot_routes_t *sr = n->ext;
    for (uint8_t i = 0; sr && i < sr->n; i++)
        if (sr->r[i]->type == type)
            return sr->r[i];
    return NULL;
}

/*
 * Write a route's answer for this client at the current owner. Returns the number of RRs
 * written (0: the client gets no answer here, NODATA), or ERR_SPACE. *first gets the
 * index of the first answer chosen.
 */
static int put_routed(answer_t *a, const pol_route_t *r, int *first)
{
    pol_result_t res;
    decide(a, r, &res);
    uint16_t idx[64];
    unsigned n = pol_route_order(r, &res, a->rng, idx, 64);
    dns_resp_mark_t m = dns_resp_mark(&a->r);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *rd = r->rdata[idx[i]];
        if (dns_resp_add_rr(&a->r, a->owner, a->owner_off, r->type, DNS_C_IN, r->ttl,
                            zone_rd_data(rd), zone_rd_len(rd)) < 0) {
            dns_resp_rollback(&a->r, &m);
            return ERR_SPACE;
        }
        note_target(a, r->type, rd);
    }
    *first = n ? idx[0] : -1;
    a->dec_answer = *first;
    if (a->detailed)
        for (unsigned i = 0; i < n; i++)
            srv_snapstats_answer(a->st, a->slot, r, idx[i]);
    return (int)n;
}

/* Additional section: A and AAAA of noted targets we hold (authoritative or glue). Best
 * effort: what does not fit is left out, without TC. */
static void put_additional(answer_t *a)
{
    dns_resp_section(&a->r, DNS_SEC_ADDITIONAL);
    for (int i = 0; i < a->naddl; i++) {
        uint8_t lt[DNS_NAME_MAX];
        dns_dname_lower(lt, a->addl[i]);
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = dns_dname_equal(a->addl[j], lt);
        if (dup)
            continue;
        /* The node in the deepest zone holding the name: one probe of the name index,
         * else (a name the index lacks) the zone set and the zone's own table. */
        const zone_t *z;
        size_t len = dns_dname_len(lt);
        const zone_node_t *n = zone_set_find_name(&a->snap->zones, lt, len, &z);
        if (!n) {
            zone_key_t k;
            zone_key_init(&k, lt);
            z = zone_set_find_key(&a->snap->zones, &k);
            if (!z)
                continue;
            n = zone_find_key(z, &k, 0);
            if (!n)
                continue;
        }
        const zone_rrset_t *v4 = zone_node_rrset(n, DNS_T_A);
        const zone_rrset_t *v6 = zone_node_rrset(n, DNS_T_AAAA);
        if (v4)
            put_rrset(a, a->addl[i], 0, v4);
        if (v6)
            put_rrset(a, a->addl[i], 0, v6);
    }
}

/* The answer does not fit: keep only the question and set TC. */
static void truncate_all(answer_t *a)
{
    dns_resp_rollback(&a->r, &a->base);
    a->r.section = DNS_SEC_ANSWER;
    a->truncated = true;
    a->naddl = 0;
}

static void put_soa_authority(answer_t *a, const zone_t *z)
{
    dns_resp_section(&a->r, DNS_SEC_AUTHORITY);
    const uint8_t *rd = z->soa->rdata[0];
    if (dns_resp_add_rr(&a->r, z->apex->name, 0, DNS_T_SOA, DNS_C_IN, z->neg_ttl,
                        zone_rd_data(rd), zone_rd_len(rd)) < 0)
        truncate_all(a);
}

/* Positive answer: the zone's NS RRset in authority, when it fits (as NSD does). */
static void put_ns_authority(answer_t *a, const zone_t *z)
{
    if (!z->ns || a->snap->minimal)
        return;
    dns_resp_section(&a->r, DNS_SEC_AUTHORITY);
    if (put_rrset(a, z->apex->name, 0, z->ns) == 0)
        note_targets(a, z->ns);
}

static void referral(answer_t *a, const zone_node_t *cut)
{
    const zone_rrset_t *ns = zone_node_rrset(cut, DNS_T_NS);
    if (a->r.count[DNS_SEC_ANSWER] == 0)
        a->aa = false;
    dns_resp_section(&a->r, DNS_SEC_AUTHORITY);
    if (put_rrset(a, cut->name, 0, ns) < 0) {
        truncate_all(a);
        return;
    }
    note_targets(a, ns);
}

/* Write name as the owner of the next RR set: the current chain position. */
static int put_current(answer_t *a, const zone_rrset_t *set)
{
    return put_rrset(a, a->owner, a->owner_off, set);
}

/* Move the chain to target (wire, trusted): it becomes the name resolved next. */
static void follow(answer_t *a, const uint8_t *target)
{
    dns_dname_lower(a->lbuf, target);
    a->lname = a->lbuf;
    a->owner = target;
}

/* DNAME substitution (RFC 6672): qname = prefix + owner -> prefix + target. */
static int dname_synth(answer_t *a, const zone_node_t *d, uint8_t out[DNS_NAME_MAX])
{
    const zone_rrset_t *set = zone_node_rrset(d, DNS_T_DNAME);
    const uint8_t *target = zone_rd_data(set->rdata[0]);
    size_t tlen = dns_dname_len(target);
    const uint8_t *cur = a->owner ? a->owner : a->r.buf + DNS_HDR_LEN;
    /* prefix = labels of the current name above the DNAME owner */
    int drop = dns_dname_labels(cur) - d->labels;
    size_t plen = 0;
    const uint8_t *p = cur;
    for (int i = 0; i < drop; i++) {
        plen += 1 + (size_t)*p;
        p += 1 + *p;
    }
    if (plen + tlen > DNS_NAME_MAX)
        return ERR_LIMIT;
    memcpy(out, cur, plen);
    memcpy(out + plen, target, tlen);
    return 0;
}

static void answer_in(answer_t *a)
{
    const dns_query_t *q = a->q;
    a->lname = q->qname_lc;
    a->owner = NULL;
    a->owner_off = DNS_HDR_LEN;
    a->aa = true;
    /* An existing name that is not at or below a cut or a DNAME (and no DS, which may
     * belong to the parent) is its own answer: one probe of the set's name index. */
    zone_result_t res;
    const zone_t *z = NULL;
    const zone_node_t *hit = q->qtype == DNS_T_DS
                                 ? NULL
                                 : zone_set_find_name(&a->snap->zones, a->lname, q->qname_len, &z);
    bool known = hit && !(hit->flags & (ZONE_NODE_OCCLUDED | ZONE_NODE_CUT));
    zone_key_t key; /* otherwise the name hashed once for the zone and node lookups */
    if (known) {
        res.kind = ZONE_HIT;
        res.node = hit;
    } else {
        zone_key_init(&key, a->lname);
        z = zone_set_find_key(&a->snap->zones, &key);
    }
    if (!z) {
        a->rcode = DNS_RCODE_REFUSED;
        a->aa = false;
        return;
    }
    a->zone = z;
    if (q->qtype == DNS_T_DS && z->apex->len == q->qname_len && z->apex->labels > 0) {
        /* DS lives in the parent (RFC 4035 §3.1.4.1): answer from it if we serve it. */
        const zone_t *parent = zone_set_find(&a->snap->zones, dns_dname_parent(a->lname));
        if (parent)
            z = parent;
    }
    const zone_node_t *visited[MAX_CHAIN + 1];
    int chain = 0;
    dns_resp_section(&a->r, DNS_SEC_ANSWER);
    for (;;) {
        if (!known)
            zone_lookup_key(z, &key, q->qtype, &res);
        known = false;
        const zone_node_t *n = res.node;
        if (res.kind == ZONE_DELEGATION) {
            referral(a, n);
            return;
        }
        if (res.kind == ZONE_NXDOMAIN) {
            a->rcode = DNS_RCODE_NXDOMAIN;
            put_soa_authority(a, z);
            return;
        }
        if (res.kind == ZONE_DNAME) {
            const zone_rrset_t *dn = zone_node_rrset(n, DNS_T_DNAME);
            if (put_rrset(a, n->name, 0, dn) < 0) {
                truncate_all(a);
                return;
            }
            if (a->nsynth == MAX_CHAIN || chain == MAX_CHAIN)
                return;
            uint8_t *syn = a->synth[a->nsynth++];
            if (dname_synth(a, n, syn) < 0) {
                a->rcode = DNS_RCODE_YXDOMAIN;
                return;
            }
            if (dns_resp_add_rr(&a->r, a->owner, a->owner_off, DNS_T_CNAME, DNS_C_IN, dn->ttl,
                                syn, (uint16_t)dns_dname_len(syn)) < 0) {
                truncate_all(a);
                return;
            }
            if (q->qtype == DNS_T_CNAME)
                return; /* the synthesised CNAME is the answer */
            chain++;
            follow(a, syn);
            zone_key_init(&key, a->lname);
            z = zone_set_find_key(&a->snap->zones, &key);
            if (!z)
                return;
            continue;
        }
        /* ZONE_HIT or ZONE_WILDCARD: n holds the data, the owner is the current name. */
        const snapshot_routes_t *routes = n->ext;
        int first;
        if (q->qtype == DNS_T_ANY) {
            /* RFC 8482: one RRset (the first the zone file gave this name). */
            if (n->nrrsets == 0 && routes) {
                if (put_routed(a, routes->r[0], &first) < 0)
                    truncate_all(a);
                else if (first < 0)
                    put_soa_authority(a, z);
                return;
            }
            if (n->nrrsets == 0) {
                put_soa_authority(a, z);
                return;
            }
            if (put_current(a, &n->rrsets[0]) < 0)
                truncate_all(a);
            return;
        }
        const pol_route_t *ra = routes && (q->qtype == DNS_T_A || q->qtype == DNS_T_AAAA)
                                    ? route_for(n, CONF_T_ALIAS) : NULL;
        if (ra) {
            int w = put_alias(a, ra, z);
            if (w < 0)
                truncate_all(a);
            else if (w == 0)
                put_soa_authority(a, z);
            else
                put_ns_authority(a, z);
            return;
        }
        const pol_route_t *rt = routes ? route_for(n, q->qtype) : NULL;
        if (rt) {
            int w = put_routed(a, rt, &first);
            if (w < 0)
                truncate_all(a);
            else if (w == 0)
                put_soa_authority(a, z); /* no boundary matched and no fallback: NODATA */
            else
                put_ns_authority(a, z);
            return;
        }
        /* A CNAME (routed or from the zone file) unless the CNAME itself was asked for. */
        const uint8_t *target;
        const pol_route_t *rcn = routes && q->qtype != DNS_T_CNAME ? route_for(n, DNS_T_CNAME) : NULL;
        if (rcn) {
            int w = put_routed(a, rcn, &first);
            if (w < 0) {
                truncate_all(a);
                return;
            }
            if (w == 0) {
                put_soa_authority(a, z);
                return;
            }
            target = zone_rd_data(rcn->rdata[first]);
        } else {
            const zone_rrset_t *set = zone_node_rrset(n, q->qtype);
            if (set) {
                if (put_current(a, set) < 0) {
                    truncate_all(a);
                    return;
                }
                note_targets(a, set);
                /* No NS in authority when the answer is the apex NS itself, or a DS at
                 * a delegation point (answered by the parent; NSD adds nothing there). */
                if (!(set->type == DNS_T_NS && n == z->apex) && !(n->flags & ZONE_NODE_CUT))
                    put_ns_authority(a, z);
                return;
            }
            const zone_rrset_t *cn = zone_node_rrset(n, DNS_T_CNAME);
            if (!cn) {
                put_soa_authority(a, z);
                return;
            }
            if (put_current(a, cn) < 0) {
                truncate_all(a);
                return;
            }
            target = zone_rd_data(cn->rdata[0]);
        }
        /* Follow the CNAME. The chain leaves our zones, loops, or is too long: it ends
         * here, with no authority section (as NSD). */
        visited[chain++] = n;
        follow(a, target);
        zone_key_init(&key, a->lname);
        const zone_t *tz = zone_set_find_key(&a->snap->zones, &key);
        bool loop = false;
        if (tz) {
            const zone_node_t *tn = zone_find_key(tz, &key, 0);
            for (int i = 0; i < chain && tn; i++)
                loop |= visited[i] == tn;
        }
        if (!tz || loop || chain == MAX_CHAIN)
            return;
        z = tz;
    }
}

/* CHAOS TXT id.server / hostname.bind / version.bind / version.server. */
static void answer_chaos(answer_t *a)
{
    static const uint8_t id_server[] = "\2id\6server";
    static const uint8_t hostname_bind[] = "\10hostname\4bind";
    static const uint8_t version_bind[] = "\7version\4bind";
    static const uint8_t version_server[] = "\7version\6server";
    const dns_query_t *q = a->q;
    const uint8_t *text = NULL;
    uint16_t len = 0;
    if (dns_dname_equal(q->qname_lc, id_server) || dns_dname_equal(q->qname_lc, hostname_bind)) {
        text = a->snap->identity;
        len = a->snap->identity_len;
    } else if (dns_dname_equal(q->qname_lc, version_bind) ||
               dns_dname_equal(q->qname_lc, version_server)) {
        text = a->snap->version;
        len = a->snap->version_len;
    }
    if (!text || (q->qtype != DNS_T_TXT && q->qtype != DNS_T_ANY)) {
        a->rcode = DNS_RCODE_REFUSED;
        return;
    }
    uint8_t rd[256];
    rd[0] = (uint8_t)len;
    memcpy(rd + 1, text, len);
    a->aa = true;
    if (dns_resp_add_rr(&a->r, NULL, DNS_HDR_LEN, DNS_T_TXT, DNS_C_CH, 0, rd, (uint16_t)(len + 1)) < 0)
        truncate_all(a);
}

/* What makes responses alike for RRL (RFC-less, as BIND/Knot): positive answers by name
 * and type, negative answers and referrals by zone, errors by rcode. */
static uint64_t rrl_class(const answer_t *a, const dns_query_t *q)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)a->rcode << 40;
    const uint8_t *name = NULL;
    size_t len = 0;
    if (a->rcode == DNS_RCODE_NOERROR && a->r.count[DNS_SEC_ANSWER]) {
        name = q->qname_lc;
        len = q->qname_len;
        h ^= (uint64_t)q->qtype << 24;
    } else if (a->zone) {
        name = a->zone->apex->lname;
        len = a->zone->apex->len;
        h ^= 1ull << 60;
    }
    for (size_t i = 0; i < len; i++)
        h = (h ^ name[i]) * 1099511628211ull;
    return h;
}

size_t srv_query_process(srv_worker_t *w, const uint8_t *pkt, size_t len, uint8_t *resp,
                         size_t resp_max, const struct sockaddr *src, bool tcp)
{
    struct timespec qtime;
    if (w->tap) /* the only cost of the query logs when they are off */
        srv_tap_query_time(w->tap, &qtime);
    dns_query_t q;
    int rc = dns_query_parse(pkt, len, &q);
    if (rc == DNS_PARSE_DROP) {
        SRV_STAT_INC(w->stats.dropped);
        if (len < DNS_HDR_LEN)
            SRV_STAT_INC(w->stats.malformed_dropped);
        return 0;
    }
    if (rc == DNS_RCODE_FORMERR)
        SRV_STAT_INC(w->stats.malformed_formerr);
    if (tcp)
        SRV_STAT_INC(w->stats.tcp_queries);
    else
        SRV_STAT_INC(w->stats.udp_queries);
    if (q.ecs_present)
        SRV_STAT_INC(w->stats.ecs_queries);

    answer_t a;
    a.zone = NULL;
    a.snap = snapshot_current();
    a.q = &q;
    a.scope = 0;
    a.rng = &w->rng;
    a.st = a.snap->stats;
    a.slot = w->id;
    a.detailed = a.st->detailed;
    a.dec_route = NULL;
    a.dec_answer = -1;
    a.dec_ecs = false;
    a.w = w;
    a.want_loc = w->tap && a.snap->geo;
    a.loc_known = false;
    a.loc = 0;
    if (a.detailed && q.has_question)
        SRV_STAT_INC(w->stats.qtype[srv_qtype_index(q.qtype)]);
    a.src.family = AF_INET; /* unknown source: 0.0.0.0, which no boundary contains */
    memset(a.src.addr, 0, sizeof(a.src.addr));
    if (src && src->sa_family == AF_INET) {
        memcpy(a.src.addr, &((const struct sockaddr_in *)src)->sin_addr, 4);
    } else if (src && src->sa_family == AF_INET6) {
        a.src.family = AF_INET6;
        memcpy(a.src.addr, &((const struct sockaddr_in6 *)src)->sin6_addr, 16);
    }
    /* RFC 7871: decide on the ECS address unless it says nothing about the client
     * (source prefix 0, or a private or unroutable network). */
    a.ecs_ok = false;
    a.ecs_private = 0;
    if (q.ecs_present && q.ecs.source > 0) {
        a.ecs.family = q.ecs.family == 1 ? AF_INET : AF_INET6;
        memcpy(a.ecs.addr, q.ecs.addr, 16);
        a.ecs_ok = !pol_addr_is_private(a.ecs.family, a.ecs.addr);
        a.ecs_private = a.ecs_ok ? 0 : q.ecs.source;
    }
    if (w->loc && a.snap->geo && (w->tap || a.st->countries)) { /* they will want it */
        const client_t *c = a.ecs_ok ? &a.ecs : &a.src;
        if (c->family == AF_INET)
            srv_loc_cache_prefetch(w->loc, rd_u32(c->addr));
        else
            srv_loc_cache_prefetch6(w->loc, rd_u64(c->addr));
    }
    a.rcode = rc;
    a.aa = false;
    a.truncated = false;
    a.naddl = 0;
    a.nsynth = 0;

    /* Size: UDP replies fit the client's buffer (512 without EDNS), capped by ours. */
    size_t max = resp_max < 65535 ? resp_max : 65535;
    if (!tcp) {
        size_t udp = q.edns ? MIN(q.edns_udp, a.snap->udp_max_payload) : DNS_EDNS_MIN_UDP;
        if (udp < DNS_EDNS_MIN_UDP)
            udp = DNS_EDNS_MIN_UDP;
        max = MIN(max, udp);
    }
    dns_ecs_t ecs_out;
    dns_opt_out_t opt = { .udp_size = a.snap->udp_max_payload, .do_bit = q.edns_do };
    if (q.ecs_present) {
        ecs_out = q.ecs;
        ecs_out.scope = 0; /* set from the decisions taken, below; 0 for static data */
        opt.ecs = &ecs_out;
    }
    if (rc == DNS_RCODE_BADVERS) {
        /* RFC 6891 §7: a bare OPT of version 0; nothing else of the query is echoed. */
        opt.do_bit = false;
        opt.ecs = NULL;
    } else if (q.nsid && a.snap->identity) {
        opt.nsid = a.snap->identity;
        opt.nsid_len = a.snap->identity_len;
    }
    size_t opt_len = q.edns ? dns_opt_size(&opt) : 0;
    if (opt_len + DNS_HDR_LEN + DNS_NAME_MAX + 4 > max) {
        /* Options too big for the client's buffer: drop them, keep a bare OPT. */
        opt.nsid = NULL;
        opt.nsid_len = 0;
        opt_len = q.edns ? dns_opt_size(&opt) : 0;
    }
    dns_resp_init(&a.r, resp, max, max - opt_len, &q, rc == DNS_RCODE_BADVERS ? 0 : rc);
    a.base = dns_resp_mark(&a.r);
    if (rc != DNS_RCODE_NOERROR && q.cd)
        resp[3] |= DNS_FLAG_CD; /* a rejected query's header is echoed whole (as NSD) */

    if (rc == DNS_RCODE_NOERROR) {
        if (q.qclass == DNS_C_CH) {
            answer_chaos(&a);
        } else if (q.qclass != DNS_C_IN) {
            a.rcode = DNS_RCODE_REFUSED;
        } else if (q.qtype == DNS_T_AXFR || q.qtype == DNS_T_IXFR) {
            a.rcode = DNS_RCODE_REFUSED; /* no zone transfers */
        } else if (q.qtype == DNS_T_MAILA || q.qtype == DNS_T_MAILB) {
            a.rcode = DNS_RCODE_NOTIMP;
        } else if (q.qtype == DNS_T_OPT || q.qtype == DNS_T_TSIG || q.qtype == DNS_T_TKEY) {
            a.rcode = DNS_RCODE_FORMERR;
        } else {
            answer_in(&a);
            if (!a.truncated && a.naddl)
                put_additional(&a);
        }
        if (a.aa)
            dns_resp_set_flags(&a.r, DNS_FLAG_AA);
        if (a.truncated) {
            dns_resp_set_flags(&a.r, DNS_FLAG_TC);
            SRV_STAT_INC(w->stats.truncated);
        }
        dns_resp_set_rcode(&a.r, a.rcode);
    }
    if (a.want_loc && !a.loc_known) /* no routing decision found it (see decide) */
        find_log_location(&a, a.dec_ecs ? &a.ecs : &a.src);
    if (q.edns) {
        ecs_out.scope = a.scope;
        opt.ext_rcode = a.rcode;
        dns_resp_add_opt(&a.r, &opt);
        if (opt.ecs && a.detailed) {
            if (ecs_out.family == 1)
                SRV_STAT_INC(w->stats.ecs_scope4[MIN(a.scope, 32)]);
            else
                SRV_STAT_INC(w->stats.ecs_scope6[MIN(a.scope, 128)]);
        }
    }
    if (a.detailed)
        srv_snapstats_zone(a.st, a.slot, a.zone);
    if (a.st->countries) {
        const client_t *c = a.ecs_ok ? &a.ecs : &a.src;
        unsigned ci = SRV_COUNTRY_UNKNOWN;
        if (a.snap->geo)
            ci = srv_country_index(
                geo_location(a.snap->geo, client_location(w, a.snap, c->family, c->addr))->country);
        SRV_STAT_INC(w->stats.country[ci]);
    }
    size_t out = dns_resp_finish(&a.r);
    if (!tcp && a.snap->rrl_rate) {
        srv_rrl_verdict_t v = srv_rrl_account(w, a.snap, src, rrl_class(&a, &q));
        if (v == SRV_RRL_DROP) {
            SRV_STAT_INC(w->stats.rrl_dropped);
            return 0;
        }
        if (v == SRV_RRL_SLIP) {
            /* Header and question only, TC set: a real client retries over TCP. */
            SRV_STAT_INC(w->stats.rrl_slipped);
            out = DNS_HDR_LEN + (q.has_question ? q.qname_len + 4u : 0u);
            resp[2] |= DNS_FLAG_TC;
            memset(resp + 6, 0, 6);
        }
    }
    SRV_STAT_INC(w->stats.rcode[a.rcode < 23 ? a.rcode : 23]);
    if (w->tap) {
        const client_t *c = a.dec_ecs ? &a.ecs : &a.src;
        srv_tap_event_t ev = {
            .qtime = qtime, .query = pkt, .qlen = len, .resp = resp, .rlen = out, .src = src,
            .tcp = tcp, .q = &q, .rcode = a.rcode, .snap = a.snap, .zone = a.zone,
            .route = a.dec_route, .answer = a.dec_answer, .family = c->family,
            .addr = c->addr, .ecs_used = a.dec_ecs, .scope = a.scope,
            .loc = a.loc,
        };
        srv_tap_log(w, &ev);
    }
    return out;
}
