#include <string.h>

#include "common/err.h"
#include "dns/rrtype.h"
#include "tap.h"
#include "zone/zone.h"

static const uint8_t origin[] = "\7example\3com";

static const char text[] =
    "$ORIGIN example.com.\n$TTL 300\n"
    "@ SOA ns1 hm 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n"
    "www A 192.0.2.1\nwww AAAA 2001:db8::1\nwww A 192.0.2.1\n"  /* duplicate dropped */
    "*.w A 192.0.2.9\nx.w A 192.0.2.10\n"
    "a.b.c.ent A 192.0.2.3\n"
    "sub NS ns.sub\nns.sub A 192.0.2.77\ndeep.below.sub A 192.0.2.78\n"
    "d DNAME example.net.\n"
    "*.ent2 TXT x\n";

static zone_t *load(const char *t, char *err)
{
    return zone_load_buffer(origin, t, strlen(t), "test.zone", err, 512);
}

static zone_result_t look(const zone_t *z, const char *name, uint16_t qtype)
{
    uint8_t w[DNS_NAME_MAX], l[DNS_NAME_MAX];
    dns_dname_from_text(name, strlen(name), NULL, w);
    dns_dname_lower(l, w);
    zone_result_t r;
    zone_lookup(z, l, qtype, &r);
    return r;
}

static bool node_is(const zone_node_t *n, const char *name)
{
    uint8_t w[DNS_NAME_MAX];
    dns_dname_from_text(name, strlen(name), NULL, w);
    return n && dns_dname_equal(n->lname, w);
}

int main(void)
{
    char err[512] = "";
    zone_t *z = load(text, err);
    if (!ok(z != NULL, "zone loads")) {
        printf("# %s\n", err);
        return done_testing();
    }
    is_int(z->neg_ttl, 60, "negative TTL is min(SOA TTL, MINIMUM)");
    is_int(z->nrecords, 13, "duplicate record dropped");
    ok(z->ns != NULL, "apex NS found");

    zone_result_t r = look(z, "WWW.example.com.", DNS_T_A);
    ok(r.kind == ZONE_HIT && node_is(r.node, "www.example.com."), "exact match, any case");
    ok(zone_node_rrset(r.node, DNS_T_A)->count == 1, "one A record");

    r = look(z, "nope.example.com.", DNS_T_A);
    ok(r.kind == ZONE_NXDOMAIN && node_is(r.node, "example.com."), "NXDOMAIN, encloser apex");

    r = look(z, "b.c.ent.example.com.", DNS_T_A);
    ok(r.kind == ZONE_HIT && r.node->nrrsets == 0, "empty non-terminal is a hit with no data");
    r = look(z, "zz.b.c.ent.example.com.", DNS_T_A);
    ok(r.kind == ZONE_NXDOMAIN, "below an ENT: NXDOMAIN");

    r = look(z, "foo.w.example.com.", DNS_T_A);
    ok(r.kind == ZONE_WILDCARD && node_is(r.node, "*.w.example.com."), "wildcard match");
    r = look(z, "a.b.w.example.com.", DNS_T_A);
    ok(r.kind == ZONE_WILDCARD, "wildcard covers several labels");
    r = look(z, "x.w.example.com.", DNS_T_A);
    ok(r.kind == ZONE_HIT, "explicit name beside a wildcard wins");
    r = look(z, "y.x.w.example.com.", DNS_T_A);
    ok(r.kind == ZONE_NXDOMAIN && node_is(r.node, "x.w.example.com."),
       "closest encloser x.w has no wildcard: NXDOMAIN (RFC 4592)");
    r = look(z, "q.ent2.example.com.", DNS_T_TXT);
    ok(r.kind == ZONE_WILDCARD, "wildcard below an ENT");

    r = look(z, "sub.example.com.", DNS_T_A);
    ok(r.kind == ZONE_DELEGATION && node_is(r.node, "sub.example.com."), "delegation point");
    r = look(z, "x.y.sub.example.com.", DNS_T_A);
    ok(r.kind == ZONE_DELEGATION && node_is(r.node, "sub.example.com."), "below a delegation");
    r = look(z, "ns.sub.example.com.", DNS_T_A);
    ok(r.kind == ZONE_DELEGATION, "glue is not answered authoritatively");
    r = look(z, "sub.example.com.", DNS_T_DS);
    ok(r.kind == ZONE_HIT, "DS at a cut is answered by the parent");
    ok(zone_find(z, (const uint8_t *)"\2ns\3sub\7example\3com")->flags & ZONE_NODE_OCCLUDED,
       "glue is marked occluded");

    r = look(z, "x.d.example.com.", DNS_T_A);
    ok(r.kind == ZONE_DNAME && node_is(r.node, "d.example.com."), "below a DNAME");
    r = look(z, "d.example.com.", DNS_T_DNAME);
    ok(r.kind == ZONE_HIT, "the DNAME owner itself is a hit");
    zone_free(z);

    struct {
        const char *zone, *want;
    } bad[] = {
        { "$TTL 1\n@ NS ns\n", "no SOA" },
        { "$TTL 1\n@ SOA a b 1 2 3 4 5\nx CNAME y\nx A 192.0.2.1\n", "CNAME and other data" },
        { "$TTL 1\n@ SOA a b 1 2 3 4 5\nx A 192.0.2.1\nx CNAME y\n", "CNAME and other data" },
        { "$TTL 1\n@ SOA a b 1 2 3 4 5\nx CNAME y\nx CNAME z\n", "more than one CNAME" },
        { "$TTL 1\n@ SOA a b 1 2 3 4 5\nwww SOA a b 1 2 3 4 5\n", "not at the zone apex" },
        { "$TTL 1\n@ SOA a b 1 2 3 4 5\n@ SOA a b 2 2 3 4 5\n", "more than one SOA" },
        { "$TTL 1\n@ SOA a b 1 2 3 4 5\nwww.example.org. A 192.0.2.1\n", "outside the zone" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = 0;
        z = load(bad[i].zone, err);
        ok(z == NULL && strstr(err, bad[i].want) && strstr(err, "test.zone"),
           "rejected: %s (%s)", bad[i].want, err);
        zone_free(z);
    }
    err[0] = 0;
    z = load("$TTL 1\n@ SOA a b 1 2 3 4 5\nx CNAME y\nx CNAME y\n", err);
    ok(z != NULL, "identical CNAME twice is one record");
    zone_free(z);

    /* Zone sets: deepest zone wins. */
    zone_t *zs[2];
    zs[0] = load(text, err);
    const uint8_t sub_origin[] = "\3sub\7example\3com";
    zs[1] = zone_load_buffer(sub_origin, "$TTL 1\n@ SOA a b 1 2 3 4 5\n", 27, "sub", err, 512);
    zone_set_t set;
    is_int(zone_set_init(&set, zs, 2), 0, "zone set built");
    const zone_t *f = zone_set_find(&set, (const uint8_t *)"\1x\3sub\7example\3com");
    ok(f == zs[1], "name in the child zone finds the child");
    f = zone_set_find(&set, (const uint8_t *)"\3www\7example\3com");
    ok(f == zs[0], "name in the parent finds the parent");
    ok(zone_set_find(&set, (const uint8_t *)"\3www\7example\3org") == NULL, "no zone");
    ok(zone_set_find(&set, (const uint8_t *)"\3sub\7example\3com") == zs[1], "the child's apex");
    ok(zone_set_find(&set, (const uint8_t *)"\7example\3com") == zs[0], "the parent's apex");
    ok(zone_set_find(&set, (const uint8_t *)"\3com") == NULL, "above every zone");

    /* Prepared names: every suffix's hash is the hash of that suffix on its own. */
    const uint8_t *kn = (const uint8_t *)"\1a\2bb\3sub\7example\3com";
    zone_key_t k;
    zone_key_init(&k, kn);
    is_int(k.labels, 5, "key: labels");
    is_int(k.len, (int)dns_dname_len(kn), "key: length");
    bool hashes = true;
    const uint8_t *p = kn;
    for (unsigned i = 0; i <= k.labels; i++, p = dns_dname_parent(p))
        hashes &= k.lname + k.off[i] == p && k.hash[i] == zone_name_hash(p, dns_dname_len(p));
    ok(hashes, "key: offsets and suffix hashes");
    ok(zone_set_find_key(&set, &k) == zs[1], "key: deepest zone");
    zone_result_t kr;
    zone_lookup_key(zs[1], &k, DNS_T_A, &kr);
    ok(kr.kind == ZONE_NXDOMAIN && kr.node == zs[1]->apex, "key: NXDOMAIN below the child's apex");
    ok(zone_find_key(zs[1], &k, 2) == zs[1]->apex && zone_find_key(zs[1], &k, 1) == NULL,
       "key: nodes by suffix");
    zone_key_init(&k, (const uint8_t *)"");
    ok(k.labels == 0 && k.len == 1 && zone_set_find_key(&set, &k) == NULL, "key: the root");

    /* The name index: whole names, only from the deepest zone that contains them. */
    const zone_t *iz = NULL;
    const uint8_t *nm = (const uint8_t *)"\3www\7example\3com";
    ok(zone_set_find_name(&set, nm, dns_dname_len(nm), &iz) == NULL, "index: none before zone_set_index");
    zone_set_index(&set);
    const zone_node_t *in = zone_set_find_name(&set, nm, dns_dname_len(nm), &iz);
    ok(iz == zs[0] && node_is(in, "www.example.com."), "index: a name of the parent");
    nm = (const uint8_t *)"\3sub\7example\3com";
    in = zone_set_find_name(&set, nm, dns_dname_len(nm), &iz);
    ok(iz == zs[1] && in == zs[1]->apex, "index: the child's apex, not the parent's cut");
    nm = (const uint8_t *)"\2ns\3sub\7example\3com";
    ok(zone_set_find_name(&set, nm, dns_dname_len(nm), &iz) == NULL,
       "index: the parent's glue below the child's apex is not there");
    nm = (const uint8_t *)"\1x\1w\7example\3com";
    in = zone_set_find_name(&set, nm, dns_dname_len(nm), &iz);
    ok(node_is(in, "x.w.example.com.") && iz == zs[0], "index: a name with a wildcard sibling");
    nm = (const uint8_t *)"\1y\1w\7example\3com";
    ok(zone_set_find_name(&set, nm, dns_dname_len(nm), &iz) == NULL,
       "index: a name only a wildcard covers is not there");
    nm = (const uint8_t *)"\3new\7example\3com";
    zone_node_t *added = zone_node_ensure(zs[0], nm);
    ok(zone_set_find_name(&set, nm, dns_dname_len(nm), &iz) == NULL,
       "index: a node added later is missing...");
    zone_set_index(&set);
    ok(zone_set_find_name(&set, nm, dns_dname_len(nm), &iz) == added && iz == zs[0],
       "...until the index is rebuilt");
    size_t indexed = 0;
    for (uint32_t i = 0; i <= set.names_mask; i++)
        indexed += set.names[i].node != NULL;
    /* parent: every node but the 3 under sub (sub, ns.sub, below.sub, deep.below.sub
     * are shadowed) ; child: its apex */
    is_int((int)indexed, (int)(zs[0]->nnodes - 4 + zs[1]->nnodes), "index: every unshadowed node");
    /* names of every length hash alike however they were built */
    bool same = true;
    uint8_t lab[DNS_NAME_MAX];
    for (size_t len = 1; len < 20; len++) {
        memset(lab, 'a', sizeof(lab));
        lab[0] = (uint8_t)(len - 1);
        lab[len] = 0;
        uint8_t copy[DNS_NAME_MAX + 8];
        memset(copy, 0xEE, sizeof(copy));
        memcpy(copy, lab, len + 1);
        same &= zone_set_name_hash(lab, len + 1) == zone_set_name_hash(copy, len + 1);
    }
    ok(same, "index: the hash reads only the name's bytes");
    zone_set_clear(&set);
    return done_testing();
}
