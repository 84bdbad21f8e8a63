#include "server/rrl.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RRL_SLOTS (1u << 16) /* direct-mapped; 24 bytes each: 1.5 MiB per worker */

typedef struct {
    uint64_t key;
    uint32_t second;
    uint32_t count;          /* responses this second */
    uint32_t limited;        /* limited responses this second, for slip */
    uint32_t pad_;
} slot_t;

struct srv_rrl {
    slot_t slot[RRL_SLOTS];
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

srv_rrl_verdict_t srv_rrl_account(srv_worker_t *w, const snapshot_t *snap,
                                  const struct sockaddr *src, uint64_t cls)
{
    if (!snap->rrl_rate || !src)
        return SRV_RRL_PASS;
    if (!w->rrl) {
        /* One allocation per worker, on the first limited-mode query: not per query. */
        w->rrl = calloc(1, sizeof(*w->rrl));
        if (!w->rrl)
            return SRV_RRL_PASS;
    }
    uint64_t key = cls * 0x9E3779B97F4A7C15ull;
    if (src->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)src)->sin_addr.s_addr);
        unsigned p = snap->rrl_v4_prefix;
        key ^= mix(((uint64_t)4 << 32) | (p < 32 ? a & ~(0xFFFFFFFFu >> p) : a));
    } else if (src->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)src)->sin6_addr.s6_addr;
        uint8_t m[16];
        unsigned p = snap->rrl_v6_prefix;
        for (unsigned i = 0; i < 16; i++) {
            unsigned bits = p > i * 8 ? p - i * 8 : 0;
            m[i] = bits >= 8 ? a[i] : (uint8_t)(a[i] & (0xFF00 >> bits));
        }
        uint64_t hi, lo;
        memcpy(&hi, m, 8);
        memcpy(&lo, m + 8, 8);
        key ^= mix(hi ^ mix(lo ^ 6));
    } else {
        return SRV_RRL_PASS;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint32_t now = (uint32_t)ts.tv_sec;
    slot_t *s = &w->rrl->slot[mix(key) & (RRL_SLOTS - 1)];
    if (s->key != key || s->second != now) {
        s->key = key;
        s->second = now;
        s->count = 0;
        s->limited = 0;
    }
    if (++s->count <= snap->rrl_rate)
        return SRV_RRL_PASS;
    s->limited++;
    if (snap->rrl_slip && s->limited % snap->rrl_slip == 0)
        return SRV_RRL_SLIP;
    return SRV_RRL_DROP;
}

void srv_rrl_free(srv_rrl_t *t)
{
    free(t);
}
