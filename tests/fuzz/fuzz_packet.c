/*
 * libFuzzer target: one DNS message through the whole query path (parse, lookup,
 * response writing) against a small but rich zone, as UDP with small and large buffers
 * and as TCP. Checks the reply never exceeds the buffer and always echoes the ID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "server/query.h"
#include "server/snapshot.h"

static const char zone_text[] =
    "$ORIGIN example.com.\n$TTL 300\n"
    "@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\n@ NS ns2.other.net.\n"
    "@ MX 10 mail\n@ TXT \"v=spf1 -all\"\nns1 A 192.0.2.53\nmail A 192.0.2.25\n"
    "www A 192.0.2.1\nwww AAAA 2001:db8::1\n*.w A 192.0.2.9\n*.w TXT wild\n"
    "c1 CNAME c2\nc2 CNAME www\nloop1 CNAME loop2\nloop2 CNAME loop1\n"
    "out CNAME www.other.net.\nsub NS ns.sub\nns.sub A 192.0.2.77\n"
    "d DNAME example.net.\na.b.c.ent A 192.0.2.3\n"
    "srv._tcp SRV 0 0 443 www\nbig TXT \"" /* a big RRset for truncation */
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
    "big TXT \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\n"
    "big TXT \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"\n"
    "big TXT \"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\"\n"
    "big TXT \"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\"\n"
    "big TXT \"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"\n";

static srv_worker_t worker;

static void setup(void)
{
    char dir[] = "/tmp/geocast-fuzz-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char zpath[256], conf_text[1024], err[512];
    snprintf(zpath, sizeof(zpath), "%s/example.com.zone", dir);
    FILE *f = fopen(zpath, "w");
    if (!f)
        abort();
    fputs(zone_text, f);
    fclose(f);
    char z2[256];
    snprintf(z2, sizeof(z2), "%s/other.net.zone", dir);
    f = fopen(z2, "w");
    if (!f)
        abort();
    fputs("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n", f);
    fclose(f);
    int n = snprintf(conf_text, sizeof(conf_text),
                 "server: { identity: fuzz, version: test }\n"
                 "zones:\n  example.com: { file: %s }\n  other.net: { file: %s }\n",
                 zpath, z2);
    conf_t *c = conf_load_buffer(conf_text, (size_t)n, "fuzz.yaml", dir, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    snapshot_t *s = snapshot_build(c, NULL, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    snapshot_publish(s);
    unlink(zpath);
    unlink(z2);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    static uint8_t resp[65535];
    static const size_t sizes[] = { 512, 1232, 65535 };
    for (size_t i = 0; i < 3; i++) {
        size_t n = srv_query_process(&worker, data, size, resp, sizes[i], NULL, i == 2);
        if (n > sizes[i])
            abort();
        if (n && (n < 12 || memcmp(resp, data, 2) != 0))
            abort();
    }
    return 0;
}
