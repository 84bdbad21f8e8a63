/*
 * libFuzzer target: the YAML configuration loader, then the route compiler on what it
 * accepted (without GeoIP data, so places are rejected but networks, values, answers and
 * options are compiled). Zone files are not read.
 */
#include <stdlib.h>

#include "conf/conf.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    conf_t *c = conf_load_buffer((const char *)data, size, "fuzz.yaml", "/nonexistent", err,
                                 sizeof(err));
    if (!c)
        return 0;
    pol_set_t *s = NULL;
    if (pol_set_build(&s, c, NULL, NULL, NULL, err, sizeof(err)) == 0) {
        /* Every route answers every address with one of its own answers. */
        static const uint8_t a4[4] = { 1, 2, 3, 4 };
        static const uint8_t a6[16] = { 0x2a, 0, 0x10 };
        for (size_t i = 0; i < pol_set_route_count(s); i++) {
            const pol_route_t *r = pol_set_route(s, i);
            pol_result_t res;
            pol_route_decide(r, 2 /* AF_INET */, a4, &res);
            for (unsigned j = 0; j < res.d->n; j++)
                if (res.d->idx[j] >= r->nanswers)
                    abort();
            pol_route_decide(r, 10 /* AF_INET6 */, a6, &res);
            for (unsigned j = 0; j < res.d->n; j++)
                if (res.d->idx[j] >= r->nanswers)
                    abort();
        }
        pol_set_free(s);
    }
    conf_free(c);
    return 0;
}
