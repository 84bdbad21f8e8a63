#pragma once
/*
 * Shared by the GeoIP fuzz targets (fuzz_csv.c, fuzz_mmdb.c): in-memory files the loaders
 * can open by path, and the checks run on every load. A failed load must leave the output
 * untouched and say why; a successful one must give a db whose walk covers each address
 * space exactly, in order, with aligned blocks, whose lookups agree with the walk, and
 * whose locations are well-formed. Any violation aborts.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "geo/geo.h"

/* An anonymous in-memory file, reachable by path through /proc/self/fd. */
typedef struct {
    int fd;
    char path[32];
} geo_fuzz_file_t;

static void geo_fuzz_file_open(geo_fuzz_file_t *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

/* Replace the file's content with data[0..size). */
static void geo_fuzz_file_set(const geo_fuzz_file_t *f, const uint8_t *data, size_t size)
{
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)w;
    }
}

typedef struct {
    const geo_db_t *db;
    int family;        /* of the previous block, 0 before the first */
    uint8_t next[16];  /* first address the next block must start at */
    int wrapped;       /* the previous block ended at the top of its space */
    unsigned long blocks;
} geo_fuzz_walk_t;

static void geo_fuzz_fail(const char *what)
{
    fprintf(stderr, "geo fuzz check failed: %s\n", what);
    abort();
}

/* addr += 2^(bits - prefix) in a big-endian array of bytes; returns the carry out. */
static int geo_fuzz_advance(uint8_t *addr, unsigned bytes, unsigned prefix)
{
    unsigned bit = bytes * 8 - prefix; /* add 1 << bit */
    if (bit == bytes * 8)
        return 1; /* the whole space */
    int i = (int)(bytes - 1 - bit / 8);
    unsigned v = addr[i] + (1u << (bit % 8));
    addr[i] = (uint8_t)v;
    int carry = (int)(v >> 8);
    while (carry && --i >= 0) {
        v = addr[i] + 1u;
        addr[i] = (uint8_t)v;
        carry = (int)(v >> 8);
    }
    return carry;
}

static int geo_fuzz_walk_cb(const geo_block_t *blk, void *ctx)
{
    geo_fuzz_walk_t *w = ctx;
    unsigned bytes = blk->family == AF_INET ? 4 : 16;
    if (blk->family != AF_INET && blk->family != AF_INET6)
        geo_fuzz_fail("walk: bad family");
    if (blk->prefix > bytes * 8)
        geo_fuzz_fail("walk: prefix too long");
    if (blk->family != w->family) {
        /* a new space: the previous one must have been covered to its top */
        if (w->family == AF_INET6 || (w->family == AF_INET && !w->wrapped) ||
            (w->family == 0 && blk->family != AF_INET))
            geo_fuzz_fail("walk: spaces out of order or not covered");
        w->family = blk->family;
        w->wrapped = 0;
        memset(w->next, 0, sizeof(w->next));
    }
    if (w->wrapped)
        geo_fuzz_fail("walk: block after the top of the space");
    if (memcmp(blk->addr, w->next, bytes) != 0)
        geo_fuzz_fail("walk: gap or overlap between blocks");
    /* aligned: no bits set after the prefix */
    for (unsigned b = blk->prefix; b < bytes * 8; b++)
        if (blk->addr[b / 8] & (0x80u >> (b % 8)))
            geo_fuzz_fail("walk: block not aligned on its prefix");
    if (blk->loc != GEO_LOC_V4ALIAS && blk->loc >= geo_location_count(w->db))
        geo_fuzz_fail("walk: location id out of range");
    if (blk->loc == GEO_LOC_V4ALIAS && blk->family != AF_INET6)
        geo_fuzz_fail("walk: IPv4 alias block in the IPv4 space");

    /* the first and the last address of the block look up to the block */
    uint8_t last[16];
    memcpy(last, blk->addr, bytes);
    for (unsigned b = blk->prefix; b < bytes * 8; b++)
        last[b / 8] |= (uint8_t)(0x80u >> (b % 8));
    const uint8_t *probe[2] = {blk->addr, last};
    for (int i = 0; i < 2 && blk->loc != GEO_LOC_V4ALIAS; i++) {
        unsigned prefix = 999;
        uint32_t loc = geo_lookup(w->db, blk->family, probe[i], &prefix);
        if (loc != blk->loc || prefix != blk->prefix)
            geo_fuzz_fail("lookup disagrees with the walk");
    }
    memcpy(w->next, blk->addr, bytes);
    w->wrapped = geo_fuzz_advance(w->next, bytes, blk->prefix);
    w->blocks++;
    return 0;
}

static void geo_fuzz_check_location(const geo_location_t *l)
{
    if (memchr(l->continent, '\0', sizeof(l->continent)) == NULL ||
        memchr(l->country, '\0', sizeof(l->country)) == NULL ||
        memchr(l->subdivision, '\0', sizeof(l->subdivision)) == NULL || l->city == NULL)
        geo_fuzz_fail("location: unterminated field");
    if ((l->flags & GEO_HAS_COORDS) &&
        !(l->lat >= -90 && l->lat <= 90 && l->lon >= -180 && l->lon <= 180))
        geo_fuzz_fail("location: coordinates out of range");
    volatile size_t sink = strlen(l->city);
    (void)sink;
}

/* GEO_FUZZ_VERBOSE=1 in the environment: print each load's outcome to stderr. */
static int geo_fuzz_verbose(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("GEO_FUZZ_VERBOSE");
        v = e && *e && *e != '0';
    }
    return v;
}

/* Load srcs and check the result as described at the top. */
static void geo_fuzz_load_and_check(const geo_source_t *srcs, size_t n)
{
    geo_db_t *const sentinel = (geo_db_t *)&sentinel;
    geo_db_t *db = sentinel;
    char err[512];
    memset(err, 'x', sizeof(err));
    int rc = geo_db_load(&db, srcs, n, err, sizeof(err));
    if (rc < 0) {
        if (db != sentinel)
            geo_fuzz_fail("failed load touched the output");
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
            geo_fuzz_fail("failed load without a message");
        if (geo_fuzz_verbose())
            fprintf(stderr, "load failed (%d): %s\n", rc, err);
        return;
    }
    if (rc != 0 || db == sentinel || db == NULL)
        geo_fuzz_fail("load returned no db");

    uint32_t nlocs = geo_location_count(db);
    if (nlocs == 0 || geo_location(db, nlocs) != NULL)
        geo_fuzz_fail("location count");
    const geo_location_t *unknown = geo_location(db, GEO_LOC_UNKNOWN);
    if (!unknown || unknown->country[0] || unknown->city[0] || unknown->flags)
        geo_fuzz_fail("location 0 is not the unknown location");
    for (uint32_t i = 0; i < nlocs; i++)
        geo_fuzz_check_location(geo_location(db, i));

    geo_fuzz_walk_t w = {.db = db};
    if (geo_walk(db, geo_fuzz_walk_cb, &w) != 0 || w.family != AF_INET6 || !w.wrapped)
        geo_fuzz_fail("walk did not cover both spaces");
    if (geo_fuzz_verbose())
        fprintf(stderr, "loaded: %u locations, %zu ranges, %lu blocks\n", nlocs,
                geo_db_ranges(db), w.blocks);

    /* IPv4 addresses and their IPv6 aliases agree */
    static const uint8_t v4s[][4] = {{1, 2, 3, 4}, {81, 2, 69, 160}, {255, 255, 255, 255}};
    for (size_t i = 0; i < sizeof(v4s) / sizeof(v4s[0]); i++) {
        uint8_t m[16] = {[10] = 0xff, [11] = 0xff};
        memcpy(m + 12, v4s[i], 4);
        unsigned p4, p6;
        if (geo_lookup(db, AF_INET, v4s[i], &p4) != geo_lookup(db, AF_INET6, m, &p6) ||
            p6 != 96 + p4)
            geo_fuzz_fail("IPv4-mapped lookup disagrees with IPv4");
    }
    geo_db_free(db);
}
