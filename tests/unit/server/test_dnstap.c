/* The dnstap protobuf encoder (server/dnstap_pb.c) and the metric index helpers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "server/dnstap.h"
#include "server/stats.h"
#include "tap.h"

/* A minimal protobuf reader: finds field `field` in buf, returns its wire type and sets
 * *val (varint/fixed32) or *data and *len (bytes); -1 when absent or malformed. */
static int pb_find(const uint8_t *buf, size_t n, unsigned field, uint64_t *val,
                   const uint8_t **data, size_t *len)
{
    size_t p = 0;
    while (p < n) {
        uint64_t key = 0;
        for (int s = 0; p < n; s += 7) {
            key |= (uint64_t)(buf[p] & 0x7f) << s;
            if (!(buf[p++] & 0x80))
                break;
        }
        unsigned wt = key & 7;
        uint64_t v = 0;
        const uint8_t *d = NULL;
        if (wt == 0 || wt == 2) {
            for (int s = 0; p < n; s += 7) {
                v |= (uint64_t)(buf[p] & 0x7f) << s;
                if (!(buf[p++] & 0x80))
                    break;
            }
            if (wt == 2) {
                if (v > n - p)
                    return -1;
                d = buf + p;
                p += v;
            }
        } else if (wt == 5) {
            if (n - p < 4)
                return -1;
            v = (uint64_t)buf[p] | (uint64_t)buf[p + 1] << 8 | (uint64_t)buf[p + 2] << 16 |
                (uint64_t)buf[p + 3] << 24;
            p += 4;
        } else {
            return -1;
        }
        if ((key >> 3) == field) {
            if (val)
                *val = v;
            if (data) {
                *data = d;
                *len = (size_t)v;
            }
            return (int)wt;
        }
    }
    return -1;
}

static uint64_t msg_uint(const uint8_t *m, size_t n, unsigned field)
{
    uint64_t v = ~0ull;
    pb_find(m, n, field, &v, NULL, NULL);
    return v;
}

int main(void)
{
    static const uint8_t qaddr[4] = { 192, 0, 2, 1 }, raddr[4] = { 127, 0, 0, 1 };
    static const uint8_t query[] = { 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                     3, 'w', 'w', 'w', 0, 0, 1, 0, 1 };
    srv_dnstap_msg_t m = {
        .identity = (const uint8_t *)"ns1", .identity_len = 3,
        .version = (const uint8_t *)"geocast", .version_len = 7,
        .extra = (const uint8_t *)"loc=-", .extra_len = 5,
        .type = SRV_DNSTAP_AUTH_QUERY, .family = AF_INET, .tcp = false,
        .query_addr = qaddr, .response_addr = raddr, .query_port = 40000, .response_port = 53,
        .query_time = { 1700000000, 123456789 },
        .message = query, .message_len = sizeof(query),
    };
    uint8_t buf[4096];
    size_t n = srv_dnstap_encode(buf, sizeof(buf), &m);
    ok(n > 0 && n <= srv_dnstap_size(&m), "encodes within the size bound (%zu)", n);

    /* Golden bytes: written out from the schema by hand. */
    static const uint8_t golden[] = {
        0x0a, 3, 'n', 's', '1',                           /* 1: identity */
        0x12, 7, 'g', 'e', 'o', 'c', 'a', 's', 't',       /* 2: version */
        0x1a, 5, 'l', 'o', 'c', '=', '-',                 /* 3: extra */
        0x72, 58,                                         /* 14: message, 58 bytes */
        0x08, 1, 0x10, 1, 0x18, 1,                        /* type, family, protocol */
        0x22, 4, 192, 0, 2, 1, 0x2a, 4, 127, 0, 0, 1,     /* addresses */
        0x30, 0xc0, 0xb8, 0x02, 0x38, 53,                 /* ports 40000, 53 */
        0x40, 0x80, 0xe2, 0xcf, 0xaa, 0x06,               /* query_time_sec 1700000000 */
        0x4d, 0x15, 0xcd, 0x5b, 0x07,                     /* query_time_nsec (fixed32) */
        0x52, 21,                                         /* 10: query_message */
    };
    ok(n == sizeof(golden) + sizeof(query) + 2 && memcmp(buf, golden, sizeof(golden)) == 0 &&
           memcmp(buf + sizeof(golden), query, sizeof(query)) == 0 &&
           buf[n - 2] == 0x78 && buf[n - 1] == 1,
       "AUTH_QUERY: the exact bytes of the schema (then 15: type MESSAGE)");

    const uint8_t *inner;
    size_t ilen;
    ok(pb_find(buf, n, 14, NULL, &inner, &ilen) == 2, "the message is field 14");
    is_int(msg_uint(inner, ilen, 1), 1, "Message.type AUTH_QUERY");
    ok(pb_find(inner, ilen, 14, NULL, NULL, NULL) < 0 && pb_find(inner, ilen, 12, NULL, NULL, NULL) < 0,
       "a query carries no response fields");

    /* A response over TCP/IPv6 with a message long enough for a 2-byte length. */
    uint8_t big[300];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8 }, b6[16] = { [15] = 1 };
    srv_dnstap_msg_t r = {
        .type = SRV_DNSTAP_AUTH_RESPONSE, .family = AF_INET6, .tcp = true,
        .query_addr = a6, .response_addr = b6, .query_port = 1, .response_port = 53,
        .query_time = { 5, 6 }, .response_time = { 7, 8 },
        .message = big, .message_len = sizeof(big),
    };
    n = srv_dnstap_encode(buf, sizeof(buf), &r);
    ok(n > 0 && pb_find(buf, n, 14, NULL, &inner, &ilen) == 2 && inner + ilen == buf + n - 2,
       "a 2-byte message length, the message right after it");
    ok(pb_find(buf, n, 1, NULL, NULL, NULL) < 0 && pb_find(buf, n, 3, NULL, NULL, NULL) < 0,
       "no identity, no extra when not given");
    is_int(msg_uint(inner, ilen, 1), 2, "Message.type AUTH_RESPONSE");
    is_int(msg_uint(inner, ilen, 2), 2, "socket_family INET6");
    is_int(msg_uint(inner, ilen, 3), 2, "socket_protocol TCP");
    is_int(msg_uint(inner, ilen, 12), 7, "response_time_sec");
    is_int(msg_uint(inner, ilen, 13), 8, "response_time_nsec");
    const uint8_t *d;
    size_t dl;
    ok(pb_find(inner, ilen, 14, NULL, &d, &dl) == 2 && dl == sizeof(big) &&
           memcmp(d, big, dl) == 0, "response_message holds the bytes");
    ok(pb_find(inner, ilen, 4, NULL, &d, &dl) == 2 && dl == 16 && !memcmp(d, a6, 16),
       "query_address: 16 bytes for IPv6");
    ok(pb_find(inner, ilen, 10, NULL, NULL, NULL) < 0, "a response carries no query_message");

    is_int(n, srv_dnstap_size(&r), "srv_dnstap_size is the exact size");

    /* A message over 16383 bytes: 3-byte lengths, and still the exact size. */
    static uint8_t huge[20000];
    huge[19999] = 0xab;
    srv_dnstap_msg_t h = r;
    h.message = huge;
    h.message_len = sizeof(huge);
    static uint8_t hbuf[20200];
    size_t hn = srv_dnstap_encode(hbuf, sizeof(hbuf), &h);
    ok(hn == srv_dnstap_size(&h) && pb_find(hbuf, hn, 14, NULL, &inner, &ilen) == 2 &&
           pb_find(inner, ilen, 14, NULL, &d, &dl) == 2 && dl == sizeof(huge) && d[dl - 1] == 0xab &&
           inner + ilen == hbuf + hn - 2,
       "a 20000-byte message: 3-byte lengths, bytes intact");

    /* Every buffer too small fails cleanly. */
    bool all_zero = true;
    for (size_t cap = 0; cap < n; cap++)
        all_zero &= srv_dnstap_encode(buf, cap, &r) == 0;
    ok(all_zero, "every smaller buffer: 0, no overflow");

    /* The decision text (dnstap's extra): numbers of one to three digits. */
    static const struct {
        uint8_t a[4], source, scope;
        bool used;
        const char *want;
    } dt[] = {
        { { 203, 0, 113, 0 }, 24, 24, true, "loc=- ecs=203.0.113.0/24 scope=24" },
        { { 9, 99, 100, 255 }, 32, 0, false, "loc=- ecs=9.99.100.255/32(unused) scope=0" },
        { { 10, 1, 0, 0 }, 7, 128, true, "loc=- ecs=10.1.0.0/7 scope=128" },
    };
    for (size_t i = 0; i < sizeof(dt) / sizeof(dt[0]); i++) {
        dns_query_t dq;
        memset(&dq, 0, sizeof(dq));
        dq.ecs_present = true;
        dq.ecs.family = 1;
        dq.ecs.source = dt[i].source;
        memcpy(dq.ecs.addr, dt[i].a, 4);
        srv_tap_event_t ev = { .q = &dq, .ecs_used = dt[i].used, .scope = dt[i].scope };
        char text[128];
        size_t tl = srv_tap_decision(&ev, text, sizeof(text));
        is_str(text, dt[i].want, "decision text %zu", i);
        is_int(tl, strlen(dt[i].want), "  its length");
    }
    {
        dns_query_t dq;
        memset(&dq, 0, sizeof(dq));
        dq.ecs_present = true;
        dq.ecs.family = 1;
        dq.ecs.source = 24;
        memcpy(dq.ecs.addr, (uint8_t[]){ 203, 0, 113, 0 }, 4);
        srv_tap_event_t ev = { .q = &dq, .ecs_used = true, .scope = 24 };
        char text[22]; /* "loc=- ecs=203.0.113." and the NUL: cut inside a number */
        size_t tl = srv_tap_decision(&ev, text, sizeof(text));
        is_int(tl, sizeof(text) - 1, "a short buffer: cut, never overrun");
        is_str(text, "loc=- ecs=203.0.113.0", "  what fits");
    }
    {
        /* every octet value in every position, every source and scope up to 255; and
         * every buffer size cuts the full text where snprintf would */
        unsigned bad4 = 0, badcut = 0, n4 = 0;
        for (unsigned v = 0; v < 256; v++) {
            dns_query_t dq;
            memset(&dq, 0, sizeof(dq));
            dq.ecs_present = true;
            dq.ecs.family = 1;
            dq.ecs.source = (uint8_t)(v % 33);
            uint8_t a[4] = { (uint8_t)v, (uint8_t)(255 - v), (uint8_t)(v * 7), (uint8_t)(v / 3) };
            memcpy(dq.ecs.addr, a, 4);
            srv_tap_event_t ev = { .q = &dq, .ecs_used = true, .scope = (uint8_t)(255 - v) };
            char want[128], text[128];
            snprintf(want, sizeof(want), "loc=- ecs=%u.%u.%u.%u/%u scope=%u", a[0], a[1], a[2],
                     a[3], dq.ecs.source, ev.scope);
            size_t tl = srv_tap_decision(&ev, text, sizeof(text));
            n4++;
            if ((strcmp(text, want) != 0 || tl != strlen(want)) && bad4++ < 5)
                printf("# got '%s', want '%s'\n", text, want);
            for (size_t cap = 1; cap <= strlen(want) + 1; cap++) {
                char cut[128];
                memset(cut, 'X', sizeof(cut));
                size_t cl = srv_tap_decision(&ev, cut, cap);
                if ((cl != cap - 1 && cl != strlen(want)) || strncmp(cut, want, cl) != 0 ||
                    cut[cl] != 0 || cut[cap] != 'X') {
                    if (badcut++ < 5)
                        printf("# cap %zu: got '%.*s' (%zu)\n", cap, (int)cap, cut, cl);
                }
            }
        }
        is_int(bad4, 0, "%u IPv4 ECS texts equal snprintf's", n4);
        is_int(badcut, 0, "  and every shorter buffer holds a prefix of it, never overrun");
    }

    /* IPv6 ECS addresses in the decision text: as inet_ntop writes them. */
    {
        static const char *const special[] = {
            "::", "::1", "1::", "::ffff:1.2.3.4", "::1.2.3.4", "::ffff:0:0", "::ffff:0.0.0.1",
            "1:0:0:1:0:0:0:1", "0:0:1:0:0:1:0:0", "1:0:1:0:1:0:1:0", "2001:db8::",
            "2001:db8:0:0:1::", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8", "0:0:0:0:0:1:0:0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::0.1.0.0", "0:1::", "a:b:c:d::e:f:0",
        };
        uint64_t rs = 88172645463325252ull;
        unsigned bad6 = 0, n6 = 0;
        for (unsigned i = 0; i < 20000 + sizeof(special) / sizeof(special[0]); i++) {
            dns_query_t dq;
            memset(&dq, 0, sizeof(dq));
            dq.ecs_present = true;
            dq.ecs.family = 2;
            dq.ecs.source = 56;
            if (i < sizeof(special) / sizeof(special[0])) {
                if (inet_pton(AF_INET6, special[i], dq.ecs.addr) != 1)
                    printf("# bad test address %s\n", special[i]);
            } else {
                for (int g = 0; g < 8; g++) {
                    rs ^= rs << 13;
                    rs ^= rs >> 7;
                    rs ^= rs << 17;
                    unsigned v = (rs & 3) == 0 ? 0 : (rs & 3) == 1 ? (unsigned)(rs >> 8 & 0xf)
                                                                   : (unsigned)(rs >> 16 & 0xffff);
                    if ((rs >> 40 & 1) && g < 6)
                        v = 0; /* more runs of zeros */
                    dq.ecs.addr[2 * g] = (uint8_t)(v >> 8);
                    dq.ecs.addr[2 * g + 1] = (uint8_t)v;
                }
            }
            char want[128], t[INET6_ADDRSTRLEN], text[128];
            inet_ntop(AF_INET6, dq.ecs.addr, t, sizeof(t));
            snprintf(want, sizeof(want), "loc=- ecs=%s/56 scope=0", t);
            srv_tap_event_t ev = { .q = &dq, .ecs_used = true };
            srv_tap_decision(&ev, text, sizeof(text));
            n6++;
            if (strcmp(text, want) != 0 && bad6++ < 5)
                printf("# got '%s', want '%s'\n", text, want);
        }
        is_int(bad6, 0, "%u IPv6 ECS addresses written as inet_ntop writes them", n6);
    }

    /* Metric indexes. */
    is_int(srv_country_index("US"), ('U' - 'A') * 26 + ('S' - 'A'), "country index US");
    is_int(srv_country_index("AA"), 0, "country index AA");
    is_int(srv_country_index(""), SRV_COUNTRY_UNKNOWN, "no country: unknown");
    is_int(srv_country_index("us"), SRV_COUNTRY_UNKNOWN, "lower case: unknown");
    is_int(srv_country_index("A1"), SRV_COUNTRY_UNKNOWN, "not a letter: unknown");
    is_int(srv_qtype_index(DNS_T_AAAA), SRV_QT_AAAA, "qtype AAAA");
    is_int(srv_qtype_index(DNS_T_SPF), SRV_QT_OTHER, "qtype SPF is other");
    is_str(srv_qtype_label(SRV_QT_HTTPS), "HTTPS", "qtype label");
    return done_testing();
}
