/*
 * libFuzzer target for the zone-file parser. Every record is read in full, its embedded
 * names are checked to lie inside the RDATA, and its RDATA is re-parsed from the RFC 3597
 * generic form (a nested, re-entrant zparse_buffer() call), which must give the same bytes.
 * Inputs containing "$INCLUDE" are skipped: they would read arbitrary files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dname.h"
#include "dns/rrtype.h"
#include "zone/zparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_origin[] = "\007example\003com";

typedef struct {
    unsigned sum;
    int nested;
    const uint8_t *want;
    size_t wantlen;
} fuzz_ctx_t;

static int inner_cb(void *ctx, const zparse_rr_t *rr, char *err, size_t errlen)
{
    fuzz_ctx_t *c = ctx;
    (void)err;
    (void)errlen;
    if (rr->rdlen != c->wantlen || memcmp(rr->rdata, c->want, rr->rdlen) != 0)
        abort(); /* generic re-parse differs from the presentation parse */
    c->nested++;
    return 0;
}

static int touch_cb(void *ctx, const zparse_rr_t *rr, char *err, size_t errlen)
{
    fuzz_ctx_t *c = ctx;
    size_t olen = dns_dname_len(rr->owner);
    if (olen > DNS_NAME_MAX)
        abort();
    for (size_t i = 0; i < olen; i++)
        c->sum += rr->owner[i];
    for (size_t i = 0; i < rr->rdlen; i++)
        c->sum += rr->rdata[i];
    for (const char *p = rr->file; *p; p++)
        c->sum += (unsigned char)*p;

    uint16_t offs[2];
    int n = dns_rdata_names(rr->type, rr->rdata, rr->rdlen, offs);
    for (int i = 0; i < n; i++)
        if (offs[i] >= rr->rdlen || offs[i] + dns_dname_len(rr->rdata + offs[i]) > rr->rdlen)
            abort();

    /* Round trip through "owner TTL TYPEn \# len hex". */
    char owner[DNS_TEXT_MAX];
    dns_dname_to_text(rr->owner, owner);
    size_t cap = strlen(owner) + 64 + 2 * (size_t)rr->rdlen;
    char *text = malloc(cap);
    if (!text)
        abort();
    int o = snprintf(text, cap, "%s %u TYPE%u \\# %u ", owner, rr->ttl, rr->type, rr->rdlen);
    for (size_t i = 0; i < rr->rdlen; i++)
        o += snprintf(text + o, cap - (size_t)o, "%02x", rr->rdata[i]);
    text[o++] = '\n';
    fuzz_ctx_t inner = {.want = rr->rdata, .wantlen = rr->rdlen};
    zparse_opts_t opts = {.origin = fuzz_origin, .default_ttl = 3600};
    char ierr[256];
    int rc =
        zparse_buffer(text, (size_t)o, "roundtrip", &opts, inner_cb, &inner, ierr, sizeof(ierr));
    if (rc != 0 || inner.nested != 1) {
        fprintf(stderr, "round trip failed: %s\n%.*s", ierr, o, text);
        abort();
    }
    free(text);
    (void)err;
    (void)errlen;
    return 0;
}

static int has_include(const uint8_t *d, size_t n)
{
    static const char pat[] = "$include";
    for (size_t i = 0; i + 8 <= n; i++) {
        size_t k = 0;
        while (k < 8 && (d[i + k] | 0x20) == (pat[k] | 0x20))
            k++;
        if (k == 8)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (has_include(data, size))
        return 0;
    zparse_opts_t opts = {.origin = fuzz_origin, .default_ttl = 3600};
    fuzz_ctx_t ctx = {0};
    char err[256];
    int rc =
        zparse_buffer((const char *)data, size, "fuzz", &opts, touch_cb, &ctx, err, sizeof(err));
    if (rc > 0 || (rc < 0 && (err[0] == 0 || strlen(err) >= sizeof(err))))
        abort();
    volatile unsigned sink = ctx.sum;
    (void)sink;
    return 0;
}
