/* The query path without sockets: srv_query_process() against a real snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dns/pkt.h"
#include "dns/rrtype.h"
#include "server/query.h"
#include "server/snapshot.h"
#include "tap.h"

static const char zone_text[] =
    "$ORIGIN example.com.\n$TTL 300\n"
    "@ SOA ns1 hm 1 3600 600 86400 60\n@ NS ns1\n@ MX 10 mail\nns1 A 192.0.2.53\n"
    "mail A 192.0.2.25\nwww A 192.0.2.1\nwww AAAA 2001:db8::1\n*.w A 192.0.2.9\n"
    "c1 CNAME c2\nc2 CNAME www\nl1 CNAME l2\nl2 CNAME l1\nout CNAME www.example.org.\n"
    "sub NS ns.sub\nns.sub A 192.0.2.77\nd DNAME example.net.\na.b.ent A 192.0.2.3\n"
    "big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"1123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"2123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"3123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"4123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"5123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"6123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"7123456789012345678901234567890123456789012345678901234567890123456789\"\n";

static srv_worker_t w;
static uint8_t resp[65535];

typedef struct {
    size_t len;
    int rcode;
    bool aa, tc;
    int an, ns, ar;
} reply_t;

static reply_t ask(const char *name, uint16_t type, uint16_t qclass, int edns, uint16_t bufsize,
                   bool tcp)
{
    uint8_t q[512];
    memset(q, 0, 12);
    q[0] = 0xAB;
    q[1] = 0xCD;
    q[5] = 1;
    size_t o = 12;
    int n = dns_dname_from_text(name, strlen(name), NULL, q + o);
    o += (size_t)n;
    wr_u16(q + o, type);
    wr_u16(q + o + 2, qclass);
    o += 4;
    if (edns >= 0) {
        q[11] = 1;
        uint8_t opt[11] = { 0, 0, 41, (uint8_t)(bufsize >> 8), (uint8_t)bufsize, 0, (uint8_t)edns, 0, 0, 0, 0 };
        memcpy(q + o, opt, 11);
        o += 11;
    }
    reply_t r = { 0 };
    r.len = srv_query_process(&w, q, o, resp, sizeof(resp), NULL, tcp);
    if (r.len >= 12) {
        r.rcode = resp[3] & 0x0F;
        r.aa = resp[2] & DNS_FLAG_AA;
        r.tc = resp[2] & DNS_FLAG_TC;
        r.an = rd_u16(resp + 6);
        r.ns = rd_u16(resp + 8);
        r.ar = rd_u16(resp + 10);
    }
    return r;
}

#define IN DNS_C_IN

static void setup(void)
{
    char dir[] = "/tmp/geocast-test-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char zpath[300], cfg[600], err[512];
    snprintf(zpath, sizeof(zpath), "%s/example.com.zone", dir);
    FILE *f = fopen(zpath, "w");
    fputs(zone_text, f);
    fclose(f);
    int n = snprintf(cfg, sizeof(cfg),
                     "server: { identity: node-1, version: vtest }\nzones:\n  example.com: { file: %s }\n",
                     zpath);
    conf_t *c = conf_load_buffer(cfg, (size_t)n, "t.yaml", dir, err, sizeof(err));
    snapshot_t *s = c ? snapshot_build(c, NULL, NULL, err, sizeof(err)) : NULL;
    if (!s) {
        printf("Bail out! %s\n", err);
        exit(1);
    }
    snapshot_publish(s);
    unlink(zpath);
    rmdir(dir);
}

int main(void)
{
    setup();
    reply_t r = ask("www.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.aa && r.an == 1 && r.ns == 1 && r.ar == 1,
       "A: answer, apex NS in authority, its glue in additional (an=%d ns=%d ar=%d)", r.an, r.ns, r.ar);
    ok(resp[0] == 0xAB && resp[1] == 0xCD, "ID echoed");

    r = ask("example.com.", DNS_T_NS, IN, -1, 0, false);
    ok(r.an == 1 && r.ns == 0, "apex NS: no duplicate NS in authority");
    r = ask("example.com.", DNS_T_MX, IN, -1, 0, false);
    ok(r.an == 1 && r.ar >= 2, "MX: target address in additional (ar=%d)", r.ar);

    r = ask("nope.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == DNS_RCODE_NXDOMAIN && r.aa && r.an == 0 && r.ns == 1, "NXDOMAIN with SOA");
    r = ask("www.example.com.", DNS_T_MX, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 0 && r.ns == 1, "NODATA with SOA");
    r = ask("b.ent.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 0 && r.ns == 1, "empty non-terminal: NODATA");

    r = ask("c1.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 3 && r.aa, "CNAME chain followed (an=%d)", r.an);
    r = ask("c1.example.com.", DNS_T_CNAME, IN, -1, 0, false);
    ok(r.an == 1, "CNAME query answers the CNAME only");
    r = ask("l1.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 2, "CNAME loop stops (an=%d)", r.an);
    r = ask("out.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 1, "CNAME out of our zones: just the CNAME");

    r = ask("foo.w.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 1 && r.aa, "wildcard");

    r = ask("x.sub.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && !r.aa && r.an == 0 && r.ns == 1 && r.ar == 1, "referral with glue, AA=0");
    r = ask("ns.sub.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && !r.aa && r.an == 0 && r.ns == 1 && r.ar == 1,
       "glue name below a cut: referral, not the glue as an answer");
    r = ask("sub.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && !r.aa && r.an == 0 && r.ns == 1, "the cut itself: referral");
    r = ask("d.example.com.", DNS_T_DNAME, IN, -1, 0, false);
    ok(r.rcode == 0 && r.aa && r.an == 1, "the DNAME owner itself: its DNAME");
    r = ask("WwW.ExAmPlE.cOm.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.aa && r.an == 1 && !memcmp(resp + 12, "\3WwW\7ExAmPlE\3cOm", 17),
       "mixed case: answered, question echoed as received");
    r = ask("sub.example.com.", DNS_T_DS, IN, -1, 0, false);
    ok(r.rcode == 0 && r.aa && r.an == 0 && r.ns == 1, "DS at a cut: NODATA from the parent");

    r = ask("x.d.example.com.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 2, "DNAME: DNAME + synthesised CNAME (an=%d)", r.an);

    r = ask("www.example.org.", DNS_T_A, IN, -1, 0, false);
    ok(r.rcode == DNS_RCODE_REFUSED && !r.aa, "out of zone: REFUSED");
    r = ask("www.example.com.", DNS_T_A, DNS_C_HS, -1, 0, false);
    ok(r.rcode == DNS_RCODE_REFUSED, "class HS: REFUSED");
    r = ask("example.com.", DNS_T_AXFR, IN, -1, 0, true);
    ok(r.rcode == DNS_RCODE_REFUSED, "AXFR: REFUSED");

    r = ask("www.example.com.", DNS_T_ANY, IN, -1, 0, false);
    ok(r.rcode == 0 && r.an == 1 && r.ns == 0, "ANY: one RRset (RFC 8482)");

    r = ask("big.example.com.", DNS_T_TXT, IN, -1, 0, false);
    ok(r.tc && r.an == 0 && r.len <= 512, "big answer over UDP/512: TC=1");
    r = ask("big.example.com.", DNS_T_TXT, IN, 0, 1232, false);
    ok(!r.tc && r.an == 8, "big answer fits with EDNS 1232");
    r = ask("big.example.com.", DNS_T_TXT, IN, -1, 0, true);
    ok(!r.tc && r.an == 8, "big answer over TCP");

    r = ask("www.example.com.", DNS_T_A, IN, 1, 1232, false);
    ok(r.rcode == 0 && r.an == 0 && r.ar == 1, "EDNS version 1: BADVERS in the OPT");
    size_t opt = r.len - 11;
    is_int(resp[opt + 5], 1, "BADVERS upper rcode bits");

    r = ask("id.server.", DNS_T_TXT, DNS_C_CH, -1, 0, false);
    ok(r.rcode == 0 && r.an == 1 && r.aa, "CH TXT id.server");
    ok(memcmp(resp + r.len - 6, "node-1", 6) == 0, "id.server is the identity");
    r = ask("version.bind.", DNS_T_TXT, DNS_C_CH, -1, 0, false);
    ok(r.an == 1 && memcmp(resp + r.len - 5, "vtest", 5) == 0, "CH TXT version.bind");
    r = ask("foo.bind.", DNS_T_TXT, DNS_C_CH, -1, 0, false);
    ok(r.rcode == DNS_RCODE_REFUSED, "other CH names: REFUSED");

    uint64_t before = w.stats.dropped;
    uint8_t junk[5] = { 1, 2, 3, 4, 5 };
    is_int(srv_query_process(&w, junk, sizeof(junk), resp, sizeof(resp), NULL, false), 0,
           "short packet: no reply");
    is_int(w.stats.dropped, before + 1, "dropped counted");
    return done_testing();
}
