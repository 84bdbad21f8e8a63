/* Health checks: the threshold state machine, the state-file format, and the `monitors`
 * configuration (keys per type, defaults, references from routes). */
#include <string.h>

#include "conf/conf.h"
#include "ctl/health.h"
#include "tap.h"

/* Feed a string of results ('+' ok, '-' fail); returns the states after each, as "u"/"d". */
static const char *run(const char *results, unsigned up, unsigned down, unsigned *changes)
{
    static char out[64];
    hc_fsm_t f;
    hc_fsm_init(&f);
    size_t i;
    *changes = 0;
    for (i = 0; results[i] && i < sizeof(out) - 1; i++) {
        *changes += hc_fsm_step(&f, results[i] == '+', up, down);
        out[i] = f.up ? 'u' : 'd';
    }
    out[i] = 0;
    return out;
}

static void test_fsm(void)
{
    unsigned ch;
    hc_fsm_t f;
    hc_fsm_init(&f);
    ok(f.up && !f.known, "a fresh target is up, nothing known");

    is_str(run("+", 2, 3, &ch), "u", "first result ok: stays up");
    is_int(ch, 0, "...no change");
    is_str(run("-", 2, 3, &ch), "d", "first result bad: down at once (no threshold)");
    is_int(ch, 1, "...one change");
    is_str(run("+--+---", 2, 3, &ch), "uuuuuud", "down 3: two failures are not enough, three are");
    is_int(ch, 1, "...one change");
    is_str(run("+---+-+++", 2, 3, &ch), "uuudddduu", "up 2: a lone success does not bring it back");
    is_int(ch, 2, "...two changes");
    is_str(run("+-+-+-+-", 1, 2, &ch), "uuuuuuuu", "alternating results never reach down 2");
    is_int(ch, 0, "...no flap");
    is_str(run("+--++--+", 1, 2, &ch), "uuduuudu", "up 1 / down 2");
    is_int(ch, 4, "...four changes");
    is_str(run("-+", 1, 1, &ch), "du", "thresholds of 1 follow every result");
    is_str(run("--+-+", 2, 1, &ch), "ddddd", "a streak is reset by an agreeing result");
}

static void test_file(void)
{
    const char *t = "# comment\n\nup\n192.0.2.1 down\n 192.0.2.2\tUP  # trailing comment\r\n";
    size_t n = strlen(t);
    is_int(hc_file_state(t, n, "192.0.2.1"), 0, "an address line");
    is_int(hc_file_state(t, n, "192.0.2.2"), 1, "tabs, case and CR LF");
    is_int(hc_file_state(t, n, "192.0.2.3"), 1, "not listed: the bare line");
    is_int(hc_file_state("192.0.2.1 up\n", 13, "192.0.2.9"), -1,
           "not listed, no bare line: unknown");
    is_int(hc_file_state("", 0, "x"), -1, "empty file: unknown");
    is_int(hc_file_state("down\nup", 7, "x"), 1, "the last bare line wins; no final newline");
    is_int(hc_file_state("x down\ndown\nup\n", 15, "x"), 0, "an address line beats any bare line");
    is_int(hc_file_state("x maybe\n", 8, "x"), -1, "other words are ignored");
    is_int(hc_file_state("x up extra\n", 11, "x"), -1, "three words are ignored");
    is_int(hc_file_state("192.0.2.10 down\n", 16, "192.0.2.1"), -1,
           "a longer address is another one");
}

static conf_t *load(const char *text, char *err, size_t errlen)
{
    return conf_load_buffer(text, strlen(text), "t.yaml", "/etc/geocast", err, errlen);
}

static void test_conf(void)
{
    char err[512];
    conf_t *c = load("monitors:\n"
                     "  t: { type: tcp, port: 443 }\n"
                     "  h: { type: http, interval: 1s }\n"
                     "  d: { type: dns, name: www.example.com, qtype: AAAA, rcode: nxdomain, port: 5353 }\n"
                     "  f: { type: file, file: states/x, up: 1, down: 5, interval: 200ms }\n"
                     "zones:\n"
                     "  example.com:\n"
                     "    file: z\n"
                     "    routes:\n"
                     "      www: { A: { monitor: t, answers: [192.0.2.1, {value: 192.0.2.2, monitor: h},"
                     " {value: 192.0.2.3, monitor: false}] } }\n"
                     "      mx: { MX: { answers: [ {value: \"10 a\", monitor: f, target: site-a} ] } }\n",
                     err, sizeof(err));
    ok(c != NULL, "a config with monitors loads%s%s", c ? "" : ": ", c ? "" : err);
    if (!c)
        return;
    is_int(c->nmonitors, 4, "four monitors");
    const conf_monitor_t *t = conf_monitor_find(c, "t"), *h = conf_monitor_find(c, "h");
    const conf_monitor_t *d = conf_monitor_find(c, "d"), *f = conf_monitor_find(c, "f");
    ok(t && h && d && f, "found by name");
    if (t && h && d && f) {
        is_int(t->type, CONF_MON_TCP, "tcp");
        is_int(t->interval_ms, 10000, "default interval 10s");
        is_int(t->timeout_ms, 3000, "default timeout 3s");
        is_int(t->up, 2, "default up threshold 2");
        is_int(t->down, 2, "default down threshold 2");
        is_int(h->port, 80, "http: port 80 by default");
        is_str(h->path, "/", "http: path / by default");
        is_int(h->expect, 200, "http: expects 200 by default");
        is_int(h->timeout_ms, 1000, "the default timeout is capped at the interval");
        is_int(d->port, 5353, "dns: port");
        is_int(d->qtype, 28, "dns: qtype AAAA");
        is_int(d->rcode, 3, "dns: rcode NXDOMAIN (any case)");
        is_str(f->file, "/etc/geocast/states/x", "file: relative to the config's directory");
        is_int(f->up, 1, "up threshold");
        is_int(f->down, 5, "down threshold");
        is_int(f->interval_ms, 200, "interval in ms");
    }
    const conf_route_t *www = &c->zones[0].routes[0];
    ok(conf_answer_monitor(c, www, 0) == t, "an answer takes the route's monitor");
    ok(conf_answer_monitor(c, www, 1) == h, "an answer-level monitor overrides it");
    ok(conf_answer_monitor(c, www, 2) == NULL, "monitor: false turns checks off for an answer");
    const conf_route_t *mx = &c->zones[0].routes[1];
    ok(conf_answer_monitor(c, mx, 0) == f && !strcmp(mx->answers[0].target, "site-a"),
       "an MX answer with a target");
    conf_free(c);

    static const struct {
        const char *y, *want;
    } bad[] = {
        { "monitors: {m: {type: tcp, port: 0}}\nzones: {a.: {file: f}}\n",
          "t.yaml:1: monitors.m.port: expected a whole number from 1 to 65535" },
        { "monitors: {m: {type: http, expect: 99}}\nzones: {a.: {file: f}}\n", "monitors.m.expect" },
        { "monitors: {m: {type: http, path: health}}\nzones: {a.: {file: f}}\n",
          "monitors.m.path: expected a request path" },
        { "monitors: {m: {type: tcp, port: 1, up: 0}}\nzones: {a.: {file: f}}\n", "monitors.m.up" },
        { "monitors: {m: {type: tcp, port: 1, interval: soon}}\nzones: {a.: {file: f}}\n",
          "monitors.m.interval: expected a duration" },
        { "monitors: {m: {type: dns, name: x., qtype: NOPE}}\nzones: {a.: {file: f}}\n",
          "monitors.m.qtype" },
        { "monitors: {m: {type: tcp, port: 1, body: x}}\nzones: {a.: {file: f}}\n",
          "monitors.m.body: does not apply to tcp monitors" },
        { "monitors: {m: {type: file, file: x, port: 1}}\nzones: {a.: {file: f}}\n",
          "monitors.m.port: does not apply to file monitors" },
        { "monitors: [a]\nzones: {a.: {file: f}}\n", "monitors: expected a mapping" },
        { "monitors: {m: {type: tcp, port: 1}, m: {type: tcp, port: 2}}\nzones: {a.: {file: f}}\n",
          "monitors.m: monitor declared twice" },
        { "zones:\n  a.:\n    file: f\n    routes: {w: {A: {monitor: x, answers: [192.0.2.1]}}}\n",
          "t.yaml:4: zones.a..routes.w.A.monitor: unknown monitor 'x'" },
        { "monitors: {m: {type: tcp, port: 1}}\nzones:\n  a.:\n    file: f\n    routes: {w: {TXT: {"
          "monitor: m, answers: [hello]}}}\n",
          "zones.a..routes.w.TXT.answers[0].monitor: needs 'target: ADDRESS'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        c = load(bad[i].y, err, sizeof(err));
        ok(!c && strstr(err, bad[i].want), "error: %s", bad[i].want);
        if (c || !strstr(err, bad[i].want))
            printf("#   got: %s\n", err);
        conf_free(c);
    }
}

int main(void)
{
    test_fsm();
    test_file();
    test_conf();
    return done_testing();
}
