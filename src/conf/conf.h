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
    char *monitor;              /* monitors.<name> checking this answer, or NULL: the route's */
    bool no_monitor;            /* `monitor: false`: never checked, whatever the route says */
    char *target;               /* what the monitor checks (an address; for file monitors any
                                   token); NULL: the answer's own address (A/AAAA) */
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
    char *monitor;              /* monitors.<name> for every answer, or NULL */
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

/* boundaries.<name>: entries as written (places, cities, networks), or a file of
 * networks (`{ networks_file: FILE }`, read by the policy compiler; then nentries is 0). */
typedef struct {
    char *name;
    char **entries;
    unsigned *lines;
    size_t nentries;
    char *networks_file;        /* resolved against the config file's directory, or NULL */
    unsigned line;
} conf_boundary_t;

/* monitors.<name>: a health check (docs/config.md). Thresholds: `up` consecutive good
 * results bring a down target up, `down` consecutive bad ones take an up target down. */
typedef enum { CONF_MON_TCP = 1, CONF_MON_HTTP, CONF_MON_DNS, CONF_MON_FILE } conf_mon_type_t;
typedef struct {
    char *name;
    conf_mon_type_t type;
    uint16_t port;              /* tcp (required), http (80), dns (53) */
    unsigned interval_ms;       /* between checks of one target (default 10s) */
    unsigned timeout_ms;        /* per check, at most interval (default 3s, capped) */
    unsigned up, down;          /* thresholds (default 2 and 2) */
    char *path;                 /* http: request path ("/") */
    char *host;                 /* http: Host header (NULL: the target address) */
    unsigned expect;            /* http: expected status (200) */
    char *body;                 /* http: substring the body must hold, or NULL */
    char *qname;                /* dns: name to query (required), absolute text */
    uint16_t qtype;             /* dns: type (A) */
    uint8_t rcode;              /* dns: expected rcode (NOERROR) */
    char *file;                 /* file: state file, resolved against the config's directory */
    unsigned line;
} conf_monitor_t;

typedef struct {
    char *path;                 /* the config file */
    conf_listen_t *listen;
    size_t nlisten;
    unsigned workers;           /* 0 = auto (one per core) */
    char *identity;             /* NSID, id.server, hostname.bind; NULL = disabled */
    char *version;              /* version.bind, version.server; NULL = disabled */
    uint16_t udp_max_payload;   /* largest UDP reply we send and advertise (EDNS) */
    bool minimal_responses;     /* no authority NS / additional on positive answers */
    bool udp_gso;               /* equal-size replies to one client leave as one UDP_SEGMENT send */
    unsigned tcp_max_clients;
    unsigned tcp_idle_timeout_ms;
    unsigned tcp_max_queries;
    unsigned rrl_rate;          /* responses per second per client prefix and class; 0: off */
    unsigned rrl_slip;          /* every Nth limited response goes out truncated; 0: none */
    uint8_t rrl_v4_prefix, rrl_v6_prefix;
    char *state_file;           /* "up"/"down" for a routing daemon's health hook, or NULL */
    unsigned drain_ms;          /* on SIGTERM: withdraw, answer this long, then stop */
    char *user;                 /* server.user: run as this user after binding, or NULL */
    char *group;                /* server.group: and this group (NULL: the user's) */
    conf_zone_t *zones;
    size_t nzones;
    conf_geo_source_t *geo;
    size_t ngeo;
    bool geoip_watch;           /* geoip.watch: reload when a GeoIP file is replaced */
    unsigned geoip_watch_delay_ms; /* geoip.watch_delay: settle time before that reload */
    conf_boundary_t *boundaries;
    size_t nboundaries;
    conf_monitor_t *monitors;
    size_t nmonitors;
    char *control_socket;       /* control.socket: Unix socket path, or NULL (off) */
    char *control_http;         /* control.http as written ("address@port"), or NULL (off) */
    struct sockaddr_storage control_http_addr;
    socklen_t control_http_addrlen;
    bool metrics_detailed;      /* control.metrics.detailed: by qtype, zone, answer (true) */
    bool metrics_countries;     /* control.metrics.countries: by client country (false) */
    char *dnstap_path;          /* logging.dnstap.file or .socket, or NULL (off) */
    bool dnstap_socket;         /* dnstap_path is a Unix socket (a collector listens) */
    bool dnstap_queries;        /* logging.dnstap.queries: AUTH_QUERY messages (true) */
    bool dnstap_responses;      /* logging.dnstap.responses: AUTH_RESPONSE messages (true) */
    char *dnstap_identity;      /* logging.dnstap.identity, or NULL: server.identity */
    char *dnstap_version;       /* logging.dnstap.version, or NULL: server.version */
    unsigned dnstap_queue;      /* logging.dnstap.queue: entries per I/O thread (power of 2) */
    char *query_log;            /* logging.query_log: text query log file, or NULL (off) */
} conf_t;

/* Read and validate a config file. Returns NULL with the error in err. Caller frees
 * with conf_free(). */
conf_t *conf_load(const char *path, char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Same, from a string; dir is used to resolve relative file names. */
conf_t *conf_load_buffer(const char *text, size_t len, const char *name, const char *dir,
                         char *err, size_t errlen) ATTR_NONNULL(1, 3, 4, 5);

void conf_free(conf_t *c);

/* The monitor named name, or NULL. */
const conf_monitor_t *conf_monitor_find(const conf_t *c, const char *name) ATTR_NONNULL(1, 2);

/* The monitor checking answer i of route r (answer-level `monitor:` over the route's), or
 * NULL when the answer is not checked. */
const conf_monitor_t *conf_answer_monitor(const conf_t *c, const conf_route_t *r, size_t i)
    ATTR_NONNULL(1, 2);

/* Parse "address@port" ("::1@53", "0.0.0.0@5353"; a bare address means port 53). */
int conf_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len) ATTR_NONNULL(1, 2, 3);

/* Parse a duration: "10s", "500ms", "2m", "1h", or a bare number of seconds. Returns 0
 * and milliseconds in *ms, or ERR_PARSE. */
int conf_parse_duration(const char *s, unsigned *ms) ATTR_NONNULL(1, 2);
