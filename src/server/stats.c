/*
 * Per-snapshot counters (by zone, by routed answer), their registry and the by-label
 * totals kept across reloads. See server/stats.h.
 */
#include "server/stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "dns/dname.h"
#include "server/snapshot.h"

static const char *const qtype_labels[SRV_QT_N] = {
    "A",   "NS", "CNAME",  "SOA",  "PTR",   "MX",  "TXT", "AAAA", "SRV",
    "NAPTR", "DS", "DNSKEY", "SVCB", "HTTPS", "CAA", "ANY", "other",
};

const char *srv_qtype_label(unsigned i)
{
    return i < SRV_QT_N ? qtype_labels[i] : "other";
}

/* ---- a small string -> counter table, in insertion order ---------------------------- */

typedef struct {
    char *key;
    uint64_t v;
} sum_ent_t;

typedef struct {
    sum_ent_t *e;
    size_t n, cap;
    uint32_t *idx;     /* open addressing over e (index + 1; 0: empty) */
    uint32_t mask;
} sum_table_t;

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void sum_rehash(sum_table_t *t)
{
    uint32_t size = t->mask ? (t->mask + 1) * 2 : 64;
    free(t->idx);
    t->idx = xcalloc(size, sizeof(*t->idx));
    t->mask = size - 1;
    for (size_t k = 0; k < t->n; k++) {
        uint32_t i = str_hash(t->e[k].key) & t->mask;
        while (t->idx[i])
            i = (i + 1) & t->mask;
        t->idx[i] = (uint32_t)k + 1;
    }
}

/* Add v to key (copied on first sight). */
static void sum_add(sum_table_t *t, const char *key, uint64_t v)
{
    if (t->mask) {
        for (uint32_t i = str_hash(key) & t->mask; t->idx[i]; i = (i + 1) & t->mask) {
            sum_ent_t *e = &t->e[t->idx[i] - 1];
            if (!strcmp(e->key, key)) {
                e->v += v;
                return;
            }
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->e = xrealloc(t->e, t->cap * sizeof(*t->e));
    }
    t->e[t->n].key = xstrdup(key);
    t->e[t->n].v = v;
    t->n++;
    if (2 * t->n > t->mask) /* load factor under 1/2 */
        sum_rehash(t);
    else {
        uint32_t i = str_hash(key) & t->mask;
        while (t->idx[i])
            i = (i + 1) & t->mask;
        t->idx[i] = (uint32_t)t->n;
    }
}

static void sum_clear(sum_table_t *t)
{
    for (size_t k = 0; k < t->n; k++)
        free(t->e[k].key);
    free(t->e);
    free(t->idx);
    memset(t, 0, sizeof(*t));
}

/* ---- registry -------------------------------------------------------------------------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static srv_snapstats_t *reg_head;          /* newest first */
static sum_table_t retired_zones, retired_answers;
static unsigned min_slots;

void srv_stats_min_slots(unsigned n)
{
    pthread_mutex_lock(&reg_lock);
    if (n > min_slots)
        min_slots = n;
    pthread_mutex_unlock(&reg_lock);
}

/* "www.example.com/A" for a route; key "ROUTE\x1fVALUE" for one of its answers. */
static void route_label(const pol_route_t *r, char *out, size_t len)
{
    char name[DNS_TEXT_MAX], tb[16];
    size_t n = dns_dname_to_text(r->owner, name);
    if (n > 1 && name[n - 1] == '.')
        name[n - 1] = 0;
    const char *t = r->type == CONF_T_ALIAS ? "ALIAS" : dns_rrtype_to_text(r->type, tb);
    snprintf(out, len, "%s/%s", name, t);
}

void srv_snapstats_new(snapshot_t *s)
{
    srv_snapstats_t *st = xcalloc(1, sizeof(*st));
    const conf_t *conf = s->conf;
    st->detailed = conf->metrics_detailed;
    st->countries = conf->metrics_countries;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = conf->workers ? conf->workers : (unsigned)(cores > 0 ? cores : 1);
    st->nslots = workers + 1; /* UDP workers, then the TCP thread */
    st->nzones = s->zones.n;
    st->nroutes = pol_set_route_count(s->pol);
    st->route0 = st->nroutes ? pol_set_route(s->pol, 0) : NULL;
    st->abase = xcalloc(st->nroutes + 1, sizeof(*st->abase));
    st->rlabel = xcalloc(st->nroutes + 1, sizeof(*st->rlabel));
    size_t col = st->nzones + 1;
    for (size_t i = 0; i < st->nroutes; i++) {
        char rl[DNS_TEXT_MAX + 24];
        route_label(pol_set_route(s->pol, i), rl, sizeof(rl));
        st->rlabel[i] = xstrdup(rl);
        st->abase[i] = col;
        col += pol_set_route(s->pol, i)->nanswers;
    }
    st->abase[st->nroutes] = col;
    st->stride = (col + 7) / 8 * 8;
    uint32_t size = 16;
    while (size < 2 * st->nzones)
        size *= 2;
    st->zmask = size - 1;
    st->zkey = xcalloc(size, sizeof(*st->zkey));
    st->zval = xcalloc(size, sizeof(*st->zval));
    for (size_t k = 0; k < st->nzones; k++) {
        const zone_t *z = s->zones.zones[k];
        uintptr_t h = ((uintptr_t)z >> 4) * 0x9E3779B97F4A7C15ull;
        uint32_t i = (uint32_t)(h >> 32) & st->zmask;
        while (st->zkey[i])
            i = (i + 1) & st->zmask;
        st->zkey[i] = z;
        st->zval[i] = (uint32_t)k;
    }
    st->owner = s;
    pthread_mutex_lock(&reg_lock);
    if (st->nslots < min_slots)
        st->nslots = min_slots;
    size_t bytes = (size_t)st->nslots * st->stride * sizeof(uint64_t);
    st->c = aligned_alloc(64, bytes ? bytes : 64);
    if (!st->c)
        abort();
    memset(st->c, 0, bytes);
    st->next = reg_head;
    reg_head = st;
    pthread_mutex_unlock(&reg_lock);
    s->stats = st;
}

/* Add the counters of one snapshot into zones/answers by label. Under reg_lock. */
static void fold(const srv_snapstats_t *st, sum_table_t *zones, sum_table_t *answers)
{
    const snapshot_t *s = st->owner;
    for (size_t col = 0; col <= st->nzones; col++) {
        uint64_t v = 0;
        for (unsigned k = 0; k < st->nslots; k++)
            v += __atomic_load_n(&st->c[(size_t)k * st->stride + col], __ATOMIC_RELAXED);
        sum_add(zones, col < st->nzones ? s->zones.zones[col]->name : "none", v);
    }
    for (size_t ri = 0; ri < st->nroutes; ri++) {
        const pol_route_t *r = pol_set_route(s->pol, ri);
        const char *rl = st->rlabel[ri];
        for (unsigned a = 0; a < r->nanswers; a++) {
            uint64_t v = 0;
            size_t col = st->abase[ri] + a;
            for (unsigned k = 0; k < st->nslots; k++)
                v += __atomic_load_n(&st->c[(size_t)k * st->stride + col], __ATOMIC_RELAXED);
            const char *val = r->conf ? r->conf->answers[a].value : "?";
            size_t len = strlen(rl) + strlen(val) + 2;
            char *key = xmalloc(len);
            snprintf(key, len, "%s\x1f%s", rl, val);
            sum_add(answers, key, v);
            free(key);
        }
    }
}

void srv_snapstats_retire(snapshot_t *s)
{
    srv_snapstats_t *st = s->stats;
    if (!st)
        return;
    pthread_mutex_lock(&reg_lock);
    for (srv_snapstats_t **p = &reg_head; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    fold(st, &retired_zones, &retired_answers);
    pthread_mutex_unlock(&reg_lock);
    free(st->c);
    free(st->abase);
    for (size_t i = 0; i < st->nroutes; i++)
        free(st->rlabel[i]);
    free(st->rlabel);
    free(st->zkey);
    free(st->zval);
    free(st);
    s->stats = NULL;
}

void srv_stats_label(FILE *f, const char *v)
{
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
    fputc('"', f);
}

void srv_stats_write_snapshot_metrics(FILE *f)
{
    sum_table_t zones = { 0 }, answers = { 0 };
    pthread_mutex_lock(&reg_lock);
    for (const srv_snapstats_t *st = reg_head; st; st = st->next)
        fold(st, &zones, &answers);
    for (size_t k = 0; k < retired_zones.n; k++)
        sum_add(&zones, retired_zones.e[k].key, retired_zones.e[k].v);
    for (size_t k = 0; k < retired_answers.n; k++)
        sum_add(&answers, retired_answers.e[k].key, retired_answers.e[k].v);
    pthread_mutex_unlock(&reg_lock);

    fprintf(f, "# HELP geocast_zone_queries_total Queries by the zone that answered them "
               "(\"none\": no zone, e.g. REFUSED).\n"
               "# TYPE geocast_zone_queries_total counter\n");
    for (size_t k = 0; k < zones.n; k++) {
        fputs("geocast_zone_queries_total{zone=", f);
        srv_stats_label(f, zones.e[k].key);
        fprintf(f, "} %llu\n", (unsigned long long)zones.e[k].v);
    }
    fprintf(f, "# HELP geocast_answers_total Routed answers sent, by route (name/TYPE) "
               "and answer value.\n"
               "# TYPE geocast_answers_total counter\n");
    for (size_t k = 0; k < answers.n; k++) {
        char *key = answers.e[k].key;
        char *sep = strchr(key, '\x1f');
        *sep = 0;
        fputs("geocast_answers_total{route=", f);
        srv_stats_label(f, key);
        fputs(",answer=", f);
        srv_stats_label(f, sep + 1);
        fprintf(f, "} %llu\n", (unsigned long long)answers.e[k].v);
        *sep = '\x1f';
    }
    sum_clear(&zones);
    sum_clear(&answers);
}
