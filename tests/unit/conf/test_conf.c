#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/err.h"
#include "conf/conf.h"
#include "tap.h"

static conf_t *load(const char *text, char *err)
{
    err[0] = 0;
    return conf_load_buffer(text, strlen(text), "t.yaml", "/etc/gc", err, 512);
}

int main(void)
{
    char err[512];
    conf_t *c = load("server:\n  listen: [\"127.0.0.1@5300\", \"::1@5300\"]\n  workers: 3\n"
                     "  identity: node-a\n  version: false\n  tcp_idle_timeout: 1500ms\n"
                     "zones:\n  example.com:\n    file: z/example.com.zone\n"
                     "  Example.NET.:\n    file: /abs/net.zone\n",
                     err);
    if (!ok(c != NULL, "good config loads")) {
        printf("# %s\n", err);
        return done_testing();
    }
    is_int(c->nlisten, 2, "two listen addresses");
    is_int(c->listen[0].addr.ss_family, AF_INET, "IPv4 address");
    is_int(ntohs(((struct sockaddr_in *)&c->listen[0].addr)->sin_port), 5300, "port");
    is_int(c->listen[1].addr.ss_family, AF_INET6, "IPv6 address");
    is_int(c->workers, 3, "workers");
    is_str(c->identity, "node-a", "identity");
    ok(c->version == NULL, "version: false disables it");
    is_int(c->tcp_idle_timeout_ms, 1500, "duration in ms");
    is_int(c->udp_max_payload, 1232, "default UDP payload");
    ok(c->udp_gso, "udp_gso on by default");
    is_int(c->nzones, 2, "two zones");
    is_str(c->zones[0].file, "/etc/gc/z/example.com.zone", "relative zone file resolved");
    is_str(c->zones[1].file, "/abs/net.zone", "absolute zone file kept");
    is_mem(c->zones[1].origin, "\7Example\3NET", 13, "zone origin");
    is_int(c->zones[1].line, 10, "zone line recorded");
    conf_free(c);

    c = load("zones:\n  example.com: { file: x }\n", err);
    ok(c && c->nlisten == 2 && c->workers == 0, "defaults: wildcard listen, auto workers");
    conf_free(c);

    c = load("server:\n  udp_gso: off\nzones:\n  example.com: { file: x }\n", err);
    ok(c && !c->udp_gso, "udp_gso: off turns grouping off");
    conf_free(c);

    struct {
        const char *text, *want;
    } bad[] = {
        { "server:\n  lisen: []\nzones: {a.: {file: x}}\n", "t.yaml:2: server.lisen: unknown key" },
        { "server:\n  listen: [\"1.2.3.4@99999\"]\nzones: {a.: {file: x}}\n", "t.yaml:2: server.listen: bad listen address" },
        { "server:\n  listen: [\"nothere@53\"]\nzones: {a.: {file: x}}\n", "bad listen address 'nothere@53'" },
        { "server:\n  workers: 0\nzones: {a.: {file: x}}\n", "server.workers: expected a whole number" },
        { "server:\n  workers: -1\nzones: {a.: {file: x}}\n", "server.workers" },
        { "server:\n  tcp_idle_timeout: soon\nzones: {a.: {file: x}}\n", "server.tcp_idle_timeout" },
        { "server:\n  udp_max_payload: 100\nzones: {a.: {file: x}}\n", "server.udp_max_payload" },
        { "server:\n  udp_gso: maybe\nzones: {a.: {file: x}}\n", "t.yaml:2: server.udp_gso: expected true or false" },
        { "zones:\n  example.com:\n    fil: x\n", "t.yaml:3: zones.example.com.fil: unknown key" },
        { "zones:\n  example.com: {}\n", "missing key 'file'" },
        { "zones:\n  a..b: {file: x}\n", "bad zone name" },
        { "zones:\n  a.com: {file: x}\n  A.com.: {file: y}\n", "declared twice" },
        { "server: {}\n", "no zones" },
        { "", "empty" },
        { "zones: [\n", "t.yaml:2: YAML error" },
        { "server:\n  identity: [a]\nzones: {a.: {file: x}}\n", "server.identity" },
        { "zones: {a.: {file: x}}\nzones: {b.: {file: y}}\n", "zones: duplicate key" },
        { "- a\n- b\n", "expected a mapping" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        c = load(bad[i].text, err);
        ok(c == NULL && strstr(err, bad[i].want), "rejected with '%s' (%s)", bad[i].want, err);
        conf_free(c);
    }

    unsigned ms;
    ok(conf_parse_duration("2m", &ms) == 0 && ms == 120000, "2m");
    ok(conf_parse_duration("1h", &ms) == 0 && ms == 3600000, "1h");
    ok(conf_parse_duration("5", &ms) == 0 && ms == 5000, "bare seconds");
    ok(conf_parse_duration("5x", &ms) == ERR_PARSE, "bad unit");
    struct sockaddr_storage ss;
    socklen_t len;
    ok(conf_parse_listen("[::1]@53", &ss, &len) == 0 && ss.ss_family == AF_INET6, "[::1]@53");
    ok(conf_parse_listen("192.0.2.1", &ss, &len) == 0 &&
           ntohs(((struct sockaddr_in *)&ss)->sin_port) == 53, "bare address: port 53");
    ok(conf_parse_listen("192.0.2.1@", &ss, &len) == ERR_PARSE, "empty port");
    is_int(conf_load("/nonexistent/geocast.yaml", err, sizeof(err)) == NULL, 1, "missing file");
    ok(strstr(err, "/nonexistent/geocast.yaml: cannot open") != NULL, "missing file message: %s", err);
    return done_testing();
}
