#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dname.h"

/*
 * One authoritative zone in memory: nodes (owner names, including empty non-terminals)
 * in a hash table keyed by the lowered wire name, each holding its RRsets in the order
 * the zone file first used each type. RDATA is kept in wire form ready to copy out.
 * A zone is immutable once zone_load() returns; any number of threads may read it.
 */
typedef struct {
    uint16_t type;
    uint16_t count;
    uint32_t ttl;
    const uint8_t **rdata;     /* count entries; each is [u16 length][bytes] */
} zone_rrset_t;

enum {
    ZONE_NODE_APEX = 1,        /* the zone's apex */
    ZONE_NODE_CUT = 2,         /* NS below the apex: a delegation point */
    ZONE_NODE_DNAME = 4,       /* has a DNAME RRset */
    ZONE_NODE_OCCLUDED = 8,    /* below a cut or a DNAME: only reachable as glue */
};

typedef struct zone_node zone_node_t;
struct zone_node {
    const uint8_t *name;       /* wire, case as first written */
    const uint8_t *lname;      /* wire, lowered */
    zone_node_t *parent;       /* NULL at the apex */
    zone_node_t *wildcard;     /* the "*.<this>" child, if any */
    zone_node_t *hnext;        /* hash chain */
    zone_rrset_t *rrsets;
    const void *ext;           /* data another layer attaches (routes); NULL if none */
    uint16_t nrrsets;
    uint16_t cap_;
    uint8_t flags;
    uint8_t labels;
    uint8_t len;               /* wire length of the name */
};

typedef struct zone {
    char *name;                /* presentation form, for logs */
    zone_node_t *apex;
    const zone_rrset_t *soa;
    const zone_rrset_t *ns;    /* apex NS, or NULL */
    uint32_t neg_ttl;          /* RFC 2308: min(SOA TTL, SOA MINIMUM) */
    zone_node_t **table;
    uint32_t mask;
    size_t nnodes;
    size_t nrecords;
} zone_t;

/*
 * Load a zone from a master file. origin is the zone name (wire). On failure returns
 * NULL and writes "file:line: reason" into err. The result is owned by the caller and
 * freed with zone_free(). Thread: any (reloads run off the query threads).
 */
zone_t *zone_load(const uint8_t *origin, const char *path, char *err, size_t errlen)
    ATTR_NONNULL(1, 2, 3);

/* Same from a buffer (tests, fuzzing). */
zone_t *zone_load_buffer(const uint8_t *origin, const char *text, size_t len, const char *name,
                         char *err, size_t errlen) ATTR_NONNULL(1, 2, 4, 5);

/* Free a zone; NULL is a no-op. */
void zone_free(zone_t *z);

/*
 * A lowered name prepared for lookups: where its labels start and the hash of every
 * suffix, so that finding the deepest zone and the closest encloser hashes the name once
 * (zone_name_hash() is computed label by label from the root, so each suffix's hash is a
 * step of its parent's). Fill with zone_key_init(); lives on the caller's stack.
 */
typedef struct {
    const uint8_t *lname;        /* borrowed */
    uint8_t len;                 /* wire length */
    uint8_t labels;              /* not counting the root */
    uint8_t off[DNS_NAME_MAX / 2 + 1];   /* off[i]: label i's length byte; off[labels]: root */
    uint32_t hash[DNS_NAME_MAX / 2 + 1]; /* hash[i]: of the suffix at off[i] */
} zone_key_t;

/* Prepare a lowered, trusted wire name. Never allocates. */
void zone_key_init(zone_key_t *k, const uint8_t *lname) ATTR_NONNULL(1, 2);

/* The node with this lowered name, or NULL. Never allocates. */
const zone_node_t *zone_find(const zone_t *z, const uint8_t *lname) ATTR_NONNULL(1, 2);

/* The node named by the suffix of k at label i (0: the whole name), or NULL. */
const zone_node_t *zone_find_key(const zone_t *z, const zone_key_t *k, unsigned i)
    ATTR_NONNULL(1, 2);

/*
 * The node for name (wire, at or below the apex), created with any missing ancestors if
 * it does not exist, for data attached after loading (routed names). Flags of new nodes
 * are set as zone_load() would. Returns NULL when name is outside the zone. Not for use
 * once readers can see the zone.
 */
zone_node_t *zone_node_ensure(zone_t *z, const uint8_t *name) ATTR_NONNULL(1, 2);

/* The RRset of this type at a node, or NULL. */
const zone_rrset_t *zone_node_rrset(const zone_node_t *n, uint16_t type) ATTR_NONNULL(1);

typedef enum {
    ZONE_HIT,          /* node is the exact match (maybe with no RRsets: an ENT) */
    ZONE_WILDCARD,     /* node is the wildcard "*.<closest encloser>" that matches */
    ZONE_NXDOMAIN,     /* no such name; node is the closest encloser */
    ZONE_DELEGATION,   /* node is the (highest) zone cut above or at the name */
    ZONE_DNAME,        /* node owns a DNAME above the name */
} zone_result_kind_t;

typedef struct {
    zone_result_kind_t kind;
    const zone_node_t *node;
} zone_result_t;

/*
 * RFC 1034 §4.3.2 step 3 for a lowered name inside z (caller checked the name is at or
 * below the apex). qtype matters only for DS at a delegation point, which is answered
 * from this (the parent) zone. Never allocates.
 */
void zone_lookup(const zone_t *z, const uint8_t *lname, uint16_t qtype, zone_result_t *res)
    ATTR_NONNULL(1, 2, 4);
/* The same for a prepared name. */
void zone_lookup_key(const zone_t *z, const zone_key_t *k, uint16_t qtype, zone_result_t *res)
    ATTR_NONNULL(1, 2, 4);

/* RDATA accessors for a stored entry. */
static inline uint16_t zone_rd_len(const uint8_t *rd)
{
    return (uint16_t)(rd[0] << 8 | rd[1]);
}
static inline const uint8_t *zone_rd_data(const uint8_t *rd)
{
    return rd + 2;
}

/* An entry of a zone set's name index: a node and the zone it answers from. */
typedef struct {
    const zone_node_t *node;   /* NULL: empty slot */
    uint32_t hash;             /* zone_set_name_hash() of the node's name */
    uint32_t zone;             /* index in zones[] */
} zone_set_name_t;

/* A set of zones; the deepest zone containing a name is found by zone_set_find(). */
typedef struct {
    zone_t **zones;
    size_t n;
    zone_t **table;            /* hash of apex names */
    uint32_t mask;
    /* Every node of every zone by its whole name, for the nodes whose zone is the deepest
     * one containing them (zone_set_index()): an existing name is one probe. */
    zone_set_name_t *names;
    uint32_t names_mask;
} zone_set_t;

/* Build the set (takes ownership of zones[]; the array itself is copied), without the
 * name index. Fails with ERR_EXISTS if two zones have the same name. */
int zone_set_init(zone_set_t *s, zone_t **zones, size_t n) ATTR_NONNULL(1);
void zone_set_clear(zone_set_t *s);

/* (Re)build the name index, once every node is in place (zone_node_ensure() adds nodes;
 * a node missing from the index is only found the slower way, and without an index every
 * name is). Not for use once readers can see the set. */
void zone_set_index(zone_set_t *s) ATTR_NONNULL(1);

/* Hash of a whole lowered wire name of len bytes (words at a time, not by label). */
uint32_t zone_set_name_hash(const uint8_t *lname, size_t len) ATTR_NONNULL(1);

/*
 * The node named exactly lname (lowered wire name, len bytes) in the deepest zone that
 * contains it, and that zone in *zone; NULL when the name is not in the index. Whatever
 * the flags of the node, the caller decides whether the exact node is the answer (cuts,
 * DNAMEs and occluded names need zone_lookup()). Never allocates.
 */
const zone_node_t *zone_set_find_name(const zone_set_t *s, const uint8_t *lname, size_t len,
                                      const zone_t **zone) ATTR_NONNULL(1, 2, 4);

/* Deepest zone whose apex is lname or one of its ancestors, or NULL. */
const zone_t *zone_set_find(const zone_set_t *s, const uint8_t *lname) ATTR_NONNULL(1, 2);
/* The same for a prepared name. */
const zone_t *zone_set_find_key(const zone_set_t *s, const zone_key_t *k) ATTR_NONNULL(1, 2);

/* Hash of a lowered wire name of len bytes, computed over its labels from the root down
 * to the first label (a word at a time within a label). */
uint32_t zone_name_hash(const uint8_t *lname, size_t len) ATTR_NONNULL(1);
