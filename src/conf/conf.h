#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/util.h"
#include "dns/dname.h"

/*
 * The YAML configuration (docs/config.md). conf_load() reads and validates a file into a
 * plain structure; nothing is bound or loaded (zones are read by the snapshot builder).
 * Errors are "FILE:LINE: key.path: what is wrong"; unknown keys are errors.
 */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *text;                 /* as written, "address@port" */
} conf_listen_t;

/* One answer of a routed name (zones.<zone>.routes.<name>.<TYPE>.answers[i]). */
typedef struct {
    char *value;                /* RDATA in zone-file syntax */
    char *boundary;             /* boundary name, or NULL: a fallback answer */
    char *location;             /* place name for `closest`, or NULL */
    bool has_latlon;            /* location given as [lat, lon] */
    double lat, lon;
    unsigned weight;            /* 0: no weight given */
    unsigned line;
} conf_answer_t;

/* Route type of an ALIAS: A/AAAA queries at the name get the A/AAAA of the chosen
 * answer, an in-zone target name (a private-use type number, never on the wire). */
#define CONF_T_ALIAS 65534

typedef struct {
    char *name;                 /* as written: "www", "@", "*.cdn" */
    uint8_t owner[DNS_NAME_MAX];/* absolute, wire form */
    uint16_t type;
    uint32_t ttl;
    bool ecs;                   /* use ECS when present (default true) */
    bool closest;               /* sort by distance */
    unsigned select;            /* keep the first N; 0: all */
    conf_answer_t *answers;
    size_t nanswers;
    unsigned line;
} conf_route_t;

typedef struct {
    char *name;                 /* as written */
    uint8_t origin[DNS_NAME_MAX];
    char *file;                 /* resolved against the config file's directory */
    unsigned line;              /* where the zone is declared */
    conf_route_t *routes;
    size_t nroutes;
} conf_zone_t;

/* A GeoIP source (geoip.mmdb or geoip.sources[i]). */
typedef enum { CONF_GEO_MMDB = 1, CONF_GEO_CSV = 2 } conf_geo_kind_t;
typedef struct {
    conf_geo_kind_t kind;
    char *path;                 /* MMDB file */
    bool flat;                  /* MMDB schema: flat keys instead of MaxMind's */
    char **blocks;              /* CSV: NULL-terminated list of blocks files */
    char *locations;            /* CSV: locations file */
    unsigned line;
} conf_geo_source_t;

/* boundaries.<name>: entries as written (places, cities, networks). */
typedef struct {
    char *name;
    char **entries;
    unsigned *lines;
    size_t nentries;
    unsigned line;
} conf_boundary_t;

typedef struct {
    char *path;                 /* the config file */
    conf_listen_t *listen;
    size_t nlisten;
    unsigned workers;           /* 0 = auto (one per core) */
    char *identity;             /* NSID, id.server, hostname.bind; NULL = disabled */
    char *version;              /* version.bind, version.server; NULL = disabled */
    uint16_t udp_max_payload;   /* largest UDP reply we send and advertise (EDNS) */
    unsigned tcp_max_clients;
    unsigned tcp_idle_timeout_ms;
    unsigned tcp_max_queries;
    unsigned rrl_rate;          /* responses per second per client prefix and class; 0: off */
    unsigned rrl_slip;          /* every Nth limited response goes out truncated; 0: none */
    uint8_t rrl_v4_prefix, rrl_v6_prefix;
    char *state_file;           /* "up"/"down" for a routing daemon's health hook, or NULL */
    unsigned drain_ms;          /* on SIGTERM: withdraw, answer this long, then stop */
    conf_zone_t *zones;
    size_t nzones;
    conf_geo_source_t *geo;
    size_t ngeo;
    conf_boundary_t *boundaries;
    size_t nboundaries;
    char *control_socket;       /* control.socket: Unix socket path, or NULL (off) */
    char *control_http;         /* control.http as written ("address@port"), or NULL (off) */
    struct sockaddr_storage control_http_addr;
    socklen_t control_http_addrlen;
} conf_t;

/* Read and validate a config file. Returns NULL with the error in err. Caller frees
 * with conf_free(). */
conf_t *conf_load(const char *path, char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Same, from a string; dir is used to resolve relative file names. */
conf_t *conf_load_buffer(const char *text, size_t len, const char *name, const char *dir,
                         char *err, size_t errlen) ATTR_NONNULL(1, 3, 4, 5);

void conf_free(conf_t *c);

/* Parse "address@port" ("::1@53", "0.0.0.0@5353"; a bare address means port 53). */
int conf_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len) ATTR_NONNULL(1, 2, 3);

/* Parse a duration: "10s", "500ms", "2m", "1h", or a bare number of seconds. Returns 0
 * and milliseconds in *ms, or ERR_PARSE. */
int conf_parse_duration(const char *s, unsigned *ms) ATTR_NONNULL(1, 2);
