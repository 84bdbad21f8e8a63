#pragma once
/* geo_same_db(): whether two dbs are the same table, block for block (header-only). */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo.h"

typedef struct {
    geo_block_t blk;
    geo_location_t loc; /* city pointer not compared: its text is, below */
    const char *city;   /* in its db (alive for the whole comparison) */
} geo_same_entry_t;

typedef struct {
    const geo_db_t *db;
    geo_same_entry_t *v;
    size_t n, cap, at, bad;
    bool compare; /* second pass: compare with v[at] instead of appending */
} geo_same_ctx_t;

static inline void geo_same_fill(const geo_db_t *db, const geo_block_t *b, geo_same_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    e->blk = *b;
    e->city = "";
    if (b->loc == GEO_LOC_V4ALIAS)
        return;
    const geo_location_t *l = geo_location(db, b->loc);
    if (!l)
        return;
    e->loc = *l;
    e->loc.city = NULL;
    e->city = l->city ? l->city : "";
}

static inline bool geo_same_entry(const geo_same_entry_t *x, const geo_same_entry_t *y)
{
    const geo_location_t *a = &x->loc, *b = &y->loc;
    return x->blk.family == y->blk.family && x->blk.prefix == y->blk.prefix &&
           memcmp(x->blk.addr, y->blk.addr, 16) == 0 &&
           (x->blk.loc == GEO_LOC_V4ALIAS) == (y->blk.loc == GEO_LOC_V4ALIAS) &&
           (x->blk.loc == 0) == (y->blk.loc == 0) && !strcmp(a->continent, b->continent) &&
           !strcmp(a->country, b->country) && !strcmp(a->subdivision, b->subdivision) &&
           !strcmp(x->city, y->city) && a->flags == b->flags && a->source == b->source &&
           a->lat == b->lat && a->lon == b->lon;
}

static inline int geo_same_cb(const geo_block_t *b, void *arg)
{
    geo_same_ctx_t *c = arg;
    geo_same_entry_t e;
    geo_same_fill(c->db, b, &e);
    if (c->compare) {
        if (c->at >= c->n || !geo_same_entry(&c->v[c->at], &e)) {
            if (c->bad++ < 3)
                printf("#   block %zu differs: prefix /%u loc %u, country '%s' city '%s'\n",
                       c->at, b->prefix, b->loc, e.loc.country, e.city);
        }
        c->at++;
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        if (!c->v)
            abort();
    }
    c->v[c->n++] = e;
    return 0;
}

/* Same blocks (address, prefix) with the same location contents, in the same order. The
 * location ids themselves may differ. Prints the first differences as TAP comments. */
static inline bool geo_same_db(const geo_db_t *a, const geo_db_t *b)
{
    geo_same_ctx_t c = {.db = a};
    geo_walk(a, geo_same_cb, &c);
    c.db = b;
    c.compare = true;
    geo_walk(b, geo_same_cb, &c);
    if (c.at != c.n)
        printf("#   %zu blocks against %zu\n", c.n, c.at);
    bool same = c.bad == 0 && c.at == c.n;
    free(c.v);
    return same;
}
