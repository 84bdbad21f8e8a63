/*
 * dnsload: closed-loop UDP DNS load generator (Linux).
 *
 * Keeps a window of W queries outstanding over S connected UDP sockets, sends with
 * sendmmsg and receives with recvmmsg in batches, for a fixed duration or count. Every
 * query carries an EDNS OPT record (unless -E) and, when given, an ECS option; the ECS
 * subnet can vary per query from a list. Latency is measured per query (send and receive
 * times are taken once per batch, so it includes batching delay); besides p50/p99/p99.9
 * of the answered queries it reports the p99 over answered and lost queries together, a
 * lost one counting as the timeout (-T).
 *
 *   dnsload [-s ADDR] [-p PORT] [-w WINDOW] [-S SOCKETS] [-d SECONDS | -N COUNT]
 *           [-r RATE] [-f QUERYFILE | -n NAME -t TYPE] [-e ECSFILE] [-c CPU] [-E]
 *           [-j|--json]
 *
 *   -s ADDR     server address, IPv4 or IPv6 (default 127.0.0.1)
 *   -p PORT     server port (default 53)
 *   -w W        queries outstanding (default 100, max 4096)
 *   -S S        sockets (default 4, max 64)
 *   -d SECONDS  how long to send (default 5, max 120)
 *   -N COUNT    stop after COUNT queries sent (the duration still bounds the run)
 *   -r RATE     open loop: send RATE queries per second on schedule (the window, made
 *               large, only caps what may be outstanding), to compare latency at the
 *               same offered load; without -r the window alone paces (closed loop)
 *   -f FILE     queries, one `NAME TYPE [ECS-SUBNET]` per line (cycled)
 *   -n NAME -t TYPE   one generated query (default www.example.com A)
 *   -e FILE     ECS subnets, one per line (`1.2.3.0/24`, `2001:db8::/48`), cycled per query;
 *               a subnet on a query-file line takes precedence
 *   -c CPU      pin the generator to this CPU
 *   -E          no EDNS OPT record (and so no ECS)
 *   -T MS       timeout after which a query counts as lost (default 1000)
 *   -j, --json  print one JSON object instead of the text report
 *
 * Timed-out queries are counted as lost; a late answer to one is ignored. IDs are taken
 * from a per-socket FIFO of free IDs, so an ID is reused only after ~65000 other queries
 * on that socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKS 64
#define MAX_WINDOW 4096
#define BATCH 64
#define PKT_MAX 512
#define RBUF_MAX 4096
#define LAT_BUCKETS 1000000 /* 1 µs resolution up to 1 s */
#define RING_BITS 22         /* pending-send ring: 4M entries */
#define MAX_ANS 8

struct query {
    uint8_t *base; /* header + question (+ OPT header without options) */
    uint16_t base_len;
    uint16_t opt_off; /* offset of the OPT RR (0: no OPT) */
    int ecs;          /* index into ecs list, -1: use the cycled list */
};

struct ecsopt {
    uint8_t wire[4 + 4 + 16]; /* code, len, family, source, scope, address */
    uint16_t len;
};

struct slot {
    uint64_t sent_ns;
    uint32_t gen; /* 0: free */
};

struct sock {
    int fd;
    struct slot slots[65536];
    uint16_t freeq[65536];
    uint32_t fhead, ftail; /* FIFO of free IDs: [fhead, ftail) mod 65536 */
    uint32_t outstanding;
};

static struct sock *socks;
static int nsocks = 4;
static struct query *queries;
static size_t nqueries, qcap;
static struct ecsopt *ecslist;
static size_t necs, ecscap;
static uint64_t *ring;
static uint64_t ring_head, ring_tail;
static uint32_t *lat_hist;
static uint64_t lat_over, lat_max_ns;
static uint64_t rcodes[16], tc_count, sent, answered, lost, answered_in_time, unexpected;
static uint64_t ans_total;
static uint32_t ans_addr[MAX_ANS];
static uint64_t ans_count[MAX_ANS], ans_other, ans_none;
static uint32_t gen_counter = 1;
static volatile sig_atomic_t stop_flag;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "dnsload: %s\n", msg);
    exit(2);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int type_code(const char *t)
{
    static const struct {
        const char *n;
        int v;
    } tab[] = {{"A", 1},     {"NS", 2},   {"CNAME", 5}, {"SOA", 6},    {"PTR", 12},
               {"MX", 15},   {"TXT", 16}, {"AAAA", 28}, {"SRV", 33},   {"DS", 43},
               {"DNSKEY", 48}, {"CAA", 257}, {"ANY", 255}, {"HTTPS", 65}, {"SVCB", 64}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcasecmp(t, tab[i].n) == 0)
            return tab[i].v;
    if (strncasecmp(t, "TYPE", 4) == 0 && t[4])
        return atoi(t + 4);
    return -1;
}

/* Wire-encode NAME into out (max 255 bytes); returns length or -1. */
static int encode_name(const char *name, uint8_t *out)
{
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    int o = 0;
    size_t i = 0;
    if (len == 0) {
        out[0] = 0;
        return 1;
    }
    while (i <= len) {
        size_t j = i;
        while (j < len && name[j] != '.')
            j++;
        size_t l = j - i;
        if (l == 0 || l > 63 || o + 1 + (int)l > 254)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, name + i, l);
        o += (int)l;
        i = j + 1;
    }
    out[o++] = 0;
    return o;
}

static int parse_subnet(const char *s, struct ecsopt *e)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    int prefix = -1;
    if (slash) {
        *slash = 0;
        prefix = atoi(slash + 1);
    }
    uint8_t addr[16];
    int family, alen;
    if (inet_pton(AF_INET, buf, addr) == 1) {
        family = 1;
        alen = 4;
        if (prefix < 0)
            prefix = 24;
        if (prefix > 32)
            return -1;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        family = 2;
        alen = 16;
        if (prefix < 0)
            prefix = 56;
        if (prefix > 128)
            return -1;
    } else {
        return -1;
    }
    int nbytes = (prefix + 7) / 8;
    (void)alen;
    if (nbytes > 0 && prefix % 8)
        addr[nbytes - 1] &= (uint8_t)(0xff << (8 - prefix % 8));
    uint8_t *w = e->wire;
    uint16_t optlen = (uint16_t)(4 + nbytes);
    w[0] = 0;
    w[1] = 8; /* option code: ECS */
    w[2] = (uint8_t)(optlen >> 8);
    w[3] = (uint8_t)optlen;
    w[4] = 0;
    w[5] = (uint8_t)family;
    w[6] = (uint8_t)prefix;
    w[7] = 0;
    memcpy(w + 8, addr, (size_t)nbytes);
    e->len = (uint16_t)(4 + optlen);
    return 0;
}

static int add_ecs(const char *s)
{
    if (necs == ecscap) {
        ecscap = ecscap ? ecscap * 2 : 1024;
        ecslist = realloc(ecslist, ecscap * sizeof *ecslist);
        if (!ecslist)
            die("out of memory");
    }
    if (parse_subnet(s, &ecslist[necs]) < 0)
        return -1;
    return (int)necs++;
}

static int add_query(const char *name, const char *type, const char *subnet, int edns)
{
    uint8_t buf[PKT_MAX];
    memset(buf, 0, 12);
    buf[2] = 0x00; /* RD off: authoritative queries */
    buf[5] = 1;    /* QDCOUNT */
    int n = encode_name(name, buf + 12);
    int t = type_code(type);
    if (n < 0 || t < 0)
        return -1;
    int o = 12 + n;
    buf[o++] = (uint8_t)(t >> 8);
    buf[o++] = (uint8_t)t;
    buf[o++] = 0;
    buf[o++] = 1; /* IN */
    int opt_off = 0, ecs = -1;
    if (edns) {
        buf[11] = 1; /* ARCOUNT */
        opt_off = o;
        buf[o++] = 0;             /* root */
        buf[o++] = 0;
        buf[o++] = 41;            /* OPT */
        buf[o++] = 1232 >> 8;
        buf[o++] = 1232 & 0xff;   /* UDP payload size */
        buf[o++] = 0;
        buf[o++] = 0;             /* ext rcode, version */
        buf[o++] = 0;
        buf[o++] = 0;             /* flags */
        buf[o++] = 0;
        buf[o++] = 0;             /* RDLEN, patched at send */
        if (subnet) {
            ecs = add_ecs(subnet);
            if (ecs < 0)
                return -1;
        }
    }
    if (nqueries == qcap) {
        qcap = qcap ? qcap * 2 : 256;
        queries = realloc(queries, qcap * sizeof *queries);
        if (!queries)
            die("out of memory");
    }
    struct query *q = &queries[nqueries++];
    q->base = malloc((size_t)o);
    if (!q->base)
        die("out of memory");
    memcpy(q->base, buf, (size_t)o);
    q->base_len = (uint16_t)o;
    q->opt_off = (uint16_t)opt_off;
    q->ecs = ecs;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        *--e = 0;
    return s;
}

static void load_query_file(const char *path, int edns)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        char *name = strtok(s, " \t");
        char *type = strtok(NULL, " \t");
        char *subnet = strtok(NULL, " \t");
        if (!type || add_query(name, type, subnet, edns) < 0) {
            fprintf(stderr, "dnsload: %s:%u: bad query line\n", path, lineno);
            exit(2);
        }
    }
    fclose(f);
}

static void load_ecs_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char line[256];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (add_ecs(s) < 0) {
            fprintf(stderr, "dnsload: %s:%u: bad subnet\n", path, lineno);
            exit(2);
        }
    }
    fclose(f);
}

/* Pending-send ring entry: sock << 48 | id << 32 | gen. */
static void ring_push(int s, uint16_t id, uint32_t gen)
{
    if (ring_tail - ring_head >= (1ull << RING_BITS))
        die("pending ring overflow");
    ring[ring_tail++ & ((1ull << RING_BITS) - 1)] =
        ((uint64_t)s << 48) | ((uint64_t)id << 32) | gen;
}

static void free_id(struct sock *sk, uint16_t id)
{
    sk->slots[id].gen = 0;
    sk->freeq[sk->ftail++ & 0xffff] = id;
    sk->outstanding--;
}

/* Retire pending entries: answered ones, and ones older than timeout (lost). */
static void expire(uint64_t now, uint64_t timeout_ns, int all)
{
    while (ring_head < ring_tail) {
        uint64_t e = ring[ring_head & ((1ull << RING_BITS) - 1)];
        struct sock *sk = &socks[e >> 48];
        uint16_t id = (uint16_t)(e >> 32);
        uint32_t gen = (uint32_t)e;
        struct slot *sl = &sk->slots[id];
        if (sl->gen == gen) {
            if (!all && now - sl->sent_ns < timeout_ns)
                break;
            lost++;
            free_id(sk, id);
        }
        ring_head++;
    }
}

static void record_answer(const uint8_t *p, ssize_t len)
{
    unsigned rc = p[3] & 0x0f;
    rcodes[rc]++;
    if (p[2] & 0x02)
        tc_count++;
    uint16_t qd = (uint16_t)(p[4] << 8 | p[5]), an = (uint16_t)(p[6] << 8 | p[7]);
    if (an == 0 || qd != 1) {
        ans_none++;
        return;
    }
    /* skip the question name (uncompressed) and type/class */
    ssize_t o = 12;
    while (o < len && p[o] != 0) {
        if ((p[o] & 0xc0) == 0xc0) {
            o++;
            break;
        }
        o += p[o] + 1;
    }
    o += 1 + 4;
    /* answer owner: pointer or name */
    while (o < len && p[o] != 0) {
        if ((p[o] & 0xc0) == 0xc0) {
            o++;
            break;
        }
        o += p[o] + 1;
    }
    o += 1;
    if (o + 10 > len) {
        ans_other++;
        return;
    }
    uint16_t type = (uint16_t)(p[o] << 8 | p[o + 1]);
    uint16_t rdlen = (uint16_t)(p[o + 8] << 8 | p[o + 9]);
    if (type != 1 || rdlen != 4 || o + 14 > len) {
        ans_other++;
        return;
    }
    uint32_t a;
    memcpy(&a, p + o + 10, 4);
    ans_total++;
    for (int i = 0; i < MAX_ANS; i++) {
        if (ans_count[i] && ans_addr[i] == a) {
            ans_count[i]++;
            return;
        }
        if (!ans_count[i]) {
            ans_addr[i] = a;
            ans_count[i] = 1;
            return;
        }
    }
    ans_other++;
}

static uint64_t percentile(uint64_t total, double pct)
{
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)total * pct / 100.0);
    if (want >= total)
        want = total - 1;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < LAT_BUCKETS; i++) {
        acc += lat_hist[i];
        if (acc > want)
            return i;
    }
    return LAT_BUCKETS;
}

static const char *rcode_name(unsigned rc)
{
    static const char *names[16] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                    "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                    "NXRRSET", "NOTAUTH", "NOTZONE",  "RCODE11",
                                    "RCODE12", "RCODE13", "RCODE14",  "RCODE15"};
    return names[rc & 15];
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Time this thread spent runnable but waiting for a CPU (ns), from /proc/self/schedstat:
 * other work on the generator's CPU shows here. */
static uint64_t run_delay_ns(void)
{
    unsigned long long cpu = 0, delay = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &cpu, &delay) != 2)
        delay = 0;
    fclose(f);
    return delay;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: dnsload [-s ADDR] [-p PORT] [-w WINDOW] [-S SOCKETS] [-d SECONDS] [-N COUNT]\n"
            "               [-r RATE] [-f QUERYFILE | -n NAME -t TYPE] [-e ECSFILE] [-c CPU]\n"
            "               [-E] [-T MS] [-j|--json]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *qfile = NULL, *efile = NULL;
    const char *qname = "www.example.com", *qtype = "A";
    int port = 53, window = 100, cpu = -1, edns = 1, json = 0;
    double duration = 5, rate = 0;
    uint64_t count = 0, timeout_ns = 1000000000ull;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                                            \
    do {                                                                                   \
        if (!v)                                                                            \
            usage();                                                                       \
        i++;                                                                               \
    } while (0)
        if (!strcmp(a, "-j") || !strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "-E"))
            edns = 0;
        else if (!strcmp(a, "-s")) { NEEDV(); server = v; }
        else if (!strcmp(a, "-p")) { NEEDV(); port = atoi(v); }
        else if (!strcmp(a, "-w")) { NEEDV(); window = atoi(v); }
        else if (!strcmp(a, "-S")) { NEEDV(); nsocks = atoi(v); }
        else if (!strcmp(a, "-d")) { NEEDV(); duration = atof(v); }
        else if (!strcmp(a, "-N")) { NEEDV(); count = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "-r")) { NEEDV(); rate = atof(v); }
        else if (!strcmp(a, "-f")) { NEEDV(); qfile = v; }
        else if (!strcmp(a, "-n")) { NEEDV(); qname = v; }
        else if (!strcmp(a, "-t")) { NEEDV(); qtype = v; }
        else if (!strcmp(a, "-e")) { NEEDV(); efile = v; }
        else if (!strcmp(a, "-c")) { NEEDV(); cpu = atoi(v); }
        else if (!strcmp(a, "-T")) { NEEDV(); timeout_ns = strtoull(v, NULL, 10) * 1000000ull; }
        else
            usage();
#undef NEEDV
    }
    if (port <= 0 || port > 65535 || window < 1 || window > MAX_WINDOW || nsocks < 1 ||
        nsocks > MAX_SOCKS || duration <= 0 || timeout_ns == 0 || rate < 0 || rate > 1e7)
        usage();
    if (duration > 120)
        duration = 120; /* bounded */

    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) {
            perror("sched_setaffinity");
            return 2;
        }
    }

    if (qfile)
        load_query_file(qfile, edns);
    else if (add_query(qname, qtype, NULL, edns) < 0)
        die("bad -n/-t");
    size_t nlist = 0; /* ECS entries from -e are [ecs_base, necs) */
    size_t ecs_base = necs;
    if (efile) {
        if (!edns)
            die("-e needs EDNS (drop -E)");
        load_ecs_file(efile);
        nlist = necs - ecs_base;
        if (!nlist)
            die("empty ECS file");
    }
    if (!nqueries)
        die("no queries");

    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, server, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sslen = sizeof *s4;
    } else if (inet_pton(AF_INET6, server, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *s6;
    } else {
        die("bad server address");
    }

    socks = calloc((size_t)nsocks, sizeof *socks);
    ring = malloc(sizeof(uint64_t) << RING_BITS);
    lat_hist = calloc(LAT_BUCKETS, sizeof *lat_hist);
    if (!socks || !ring || !lat_hist)
        die("out of memory");
    for (int s = 0; s < nsocks; s++) {
        struct sock *sk = &socks[s];
        sk->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (sk->fd < 0) {
            perror("socket");
            return 2;
        }
        int bufsz = 4 << 20;
        setsockopt(sk->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
        setsockopt(sk->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
        if (connect(sk->fd, (struct sockaddr *)&ss, sslen) < 0) {
            perror("connect");
            return 2;
        }
        /* random-ish starting point so IDs differ between runs */
        uint16_t start = (uint16_t)(now_ns() * 2654435761u >> 7);
        for (uint32_t i = 0; i < 65536; i++)
            sk->freeq[i] = (uint16_t)(start + i);
        sk->fhead = 0;
        sk->ftail = 65536;
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    static uint8_t sbuf[BATCH][PKT_MAX];
    static struct iovec siov[BATCH];
    static struct mmsghdr smsg[BATCH];
    static uint8_t rbuf[BATCH][RBUF_MAX];
    static struct iovec riov[BATCH];
    static struct mmsghdr rmsg[BATCH];
    for (int i = 0; i < BATCH; i++) {
        siov[i].iov_base = sbuf[i];
        smsg[i].msg_hdr.msg_iov = &siov[i];
        smsg[i].msg_hdr.msg_iovlen = 1;
        riov[i].iov_base = rbuf[i];
        riov[i].iov_len = RBUF_MAX;
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
    }
    struct pollfd pfds[MAX_SOCKS];
    for (int s = 0; s < nsocks; s++) {
        pfds[s].fd = socks[s].fd;
        pfds[s].events = POLLIN;
    }

    uint64_t qi = 0, ei = 0;
    uint64_t outstanding = 0;
    int next_sock = 0;
    uint64_t send_errors = 0, polls = 0, loops = 0;
    double cpu0 = cpu_self();
    uint64_t delay0 = run_delay_ns();
    uint64_t t0 = now_ns();
    uint64_t t_end = t0 + (uint64_t)(duration * 1e9);
    uint64_t t_last_expire = t0;
    uint64_t now = t0;
    int sending = 1;
    uint64_t t_stop = t_end;

    for (;;) {
        loops++;
        if (sending && (now >= t_end || stop_flag || (count && sent >= count))) {
            sending = 0;
            t_stop = now;
            answered_in_time = answered;
        }
        if (!sending && (outstanding == 0 || now >= t_stop + timeout_ns + 100000000ull))
            break;
        /* fill the window, spreading over sockets */
        while (sending && outstanding < (uint64_t)window) {
            uint64_t need = (uint64_t)window - outstanding;
            if (count && sent + need > count)
                need = count - sent;
            if (rate > 0) { /* only what the schedule has made due by now */
                uint64_t due = (uint64_t)((double)(now - t0) * rate / 1e9) + 1;
                uint64_t owed = due > sent ? due - sent : 0;
                if (owed < need)
                    need = owed;
            }
            if (need == 0)
                break;
            int s = next_sock;
            next_sock = (next_sock + 1) % nsocks;
            uint64_t per = (need + (uint64_t)nsocks - 1) / (uint64_t)nsocks;
            if (per > BATCH)
                per = BATCH;
            struct sock *sk = &socks[s];
            unsigned n = 0;
            for (; n < per; n++) {
                struct query *q = &queries[qi % nqueries];
                qi++;
                uint8_t *p = sbuf[n];
                memcpy(p, q->base, q->base_len);
                size_t len = q->base_len;
                if (q->opt_off) {
                    const struct ecsopt *e = NULL;
                    if (q->ecs >= 0)
                        e = &ecslist[q->ecs];
                    else if (nlist)
                        e = &ecslist[ecs_base + (ei++ % nlist)];
                    if (e) {
                        memcpy(p + len, e->wire, e->len);
                        len += e->len;
                        p[q->opt_off + 9] = (uint8_t)(e->len >> 8);
                        p[q->opt_off + 10] = (uint8_t)e->len;
                    }
                }
                uint16_t id = sk->freeq[sk->fhead++ & 0xffff];
                p[0] = (uint8_t)(id >> 8);
                p[1] = (uint8_t)id;
                siov[n].iov_len = len;
            }
            int r = sendmmsg(sk->fd, smsg, n, 0);
            if (r < 0) {
                if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED &&
                    errno != EINTR) {
                    perror("sendmmsg");
                    return 2;
                }
                r = 0;
                send_errors++;
            }
            /* IDs of unsent messages go back to the free FIFO head */
            for (unsigned k = n; k > (unsigned)r; k--) {
                sk->fhead--;
            }
            uint64_t ts = now_ns();
            for (int k = 0; k < r; k++) {
                uint16_t id = (uint16_t)(sbuf[k][0] << 8 | sbuf[k][1]);
                uint32_t gen = gen_counter++;
                if (gen_counter == 0)
                    gen_counter = 1;
                sk->slots[id].sent_ns = ts;
                sk->slots[id].gen = gen;
                sk->outstanding++;
                ring_push(s, id, gen);
            }
            sent += (uint64_t)r;
            outstanding += (uint64_t)r;
            if ((unsigned)r < n)
                break; /* socket busy: receive first */
        }
        /* receive from every socket */
        uint64_t got = 0;
        for (int s = 0; s < nsocks; s++) {
            struct sock *sk = &socks[s];
            if (!sk->outstanding)
                continue;
            for (int round = 0; round < 4; round++) {
                int r = recvmmsg(sk->fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
                if (r <= 0)
                    break;
                uint64_t ts = now_ns();
                for (int k = 0; k < r; k++) {
                    const uint8_t *p = rbuf[k];
                    ssize_t len = rmsg[k].msg_len;
                    if (len < 12 || !(p[2] & 0x80)) {
                        unexpected++;
                        continue;
                    }
                    uint16_t id = (uint16_t)(p[0] << 8 | p[1]);
                    struct slot *sl = &sk->slots[id];
                    if (!sl->gen) {
                        unexpected++; /* late answer to a lost query, or stray */
                        continue;
                    }
                    uint64_t lat = ts - sl->sent_ns;
                    uint64_t us = lat / 1000;
                    if (us < LAT_BUCKETS)
                        lat_hist[us]++;
                    else
                        lat_over++;
                    if (lat > lat_max_ns)
                        lat_max_ns = lat;
                    record_answer(p, len);
                    free_id(sk, id);
                    answered++;
                    outstanding--;
                    got++;
                }
                if (r < BATCH)
                    break;
            }
        }
        now = now_ns();
        if (now - t_last_expire > 10000000ull) { /* every 10 ms */
            uint64_t before = lost;
            expire(now, timeout_ns, 0);
            outstanding -= lost - before;
            t_last_expire = now;
        }
        if (rate > 0 && sending && !got && outstanding < (uint64_t)window) {
            now = now_ns(); /* open loop: nothing due yet, look again (no sleep: the
                             * generator has its own CPU, and a 1 ms poll would send in
                             * bursts) */
            continue;
        }
        if (!got && (!sending || outstanding >= (uint64_t)window)) {
            polls++;
            poll(pfds, (nfds_t)nsocks, 1);
            now = now_ns();
        }
    }
    {
        uint64_t before = lost;
        expire(now, timeout_ns, 1);
        outstanding -= lost - before;
    }
    double elapsed = (double)(t_stop - t0) / 1e9;
    double cpu_used = cpu_self() - cpu0;
    double delay_ms = (double)(run_delay_ns() - delay0) / 1e6;
    double wall = (double)(now - t0) / 1e9;
    double qps = elapsed > 0 ? (double)answered_in_time / elapsed : 0;
    uint64_t p50 = percentile(answered, 50), p99 = percentile(answered, 99),
             p999 = percentile(answered, 99.9);
    /* the same over every query that got an answer or timed out, a lost one counting as
     * the timeout: a server that drops its slowest queries does not look faster for it */
    uint64_t p99_all = percentile(answered + lost, 99);
    if (p99_all > timeout_ns / 1000)
        p99_all = timeout_ns / 1000;
    char abuf[MAX_ANS][INET_ADDRSTRLEN];
    for (int i = 0; i < MAX_ANS; i++)
        if (ans_count[i])
            inet_ntop(AF_INET, &ans_addr[i], abuf[i], sizeof abuf[i]);

    if (json) {
        printf("{\"server\":\"%s\",\"port\":%d,\"window\":%d,\"sockets\":%d,\"rate\":%.0f,"
               "\"duration\":%.3f,"
               "\"sent\":%llu,\"answered\":%llu,\"lost\":%llu,\"unexpected\":%llu,"
               "\"qps\":%.1f,\"lat_us\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%.1f,"
               "\"p99_all\":%llu},"
               "\"tc\":%llu,\"rcodes\":{",
               server, port, window, nsocks, rate, elapsed, (unsigned long long)sent,
               (unsigned long long)answered, (unsigned long long)lost,
               (unsigned long long)unexpected, qps, (unsigned long long)p50,
               (unsigned long long)p99, (unsigned long long)p999, (double)lat_max_ns / 1e3,
               (unsigned long long)p99_all,
               (unsigned long long)tc_count);
        int first = 1;
        for (unsigned i = 0; i < 16; i++)
            if (rcodes[i]) {
                printf("%s\"%s\":%llu", first ? "" : ",", rcode_name(i),
                       (unsigned long long)rcodes[i]);
                first = 0;
            }
        printf("},\"answers_a\":{");
        first = 1;
        for (int i = 0; i < MAX_ANS; i++)
            if (ans_count[i]) {
                printf("%s\"%s\":%llu", first ? "" : ",", abuf[i],
                       (unsigned long long)ans_count[i]);
                first = 0;
            }
        printf("},\"answers_other\":%llu,\"answers_empty\":%llu,\"send_errors\":%llu,"
               "\"gen_cpu_s\":%.3f,\"gen_cpu_pct\":%.1f,\"gen_run_delay_ms\":%.1f,\"polls\":%llu,"
               "\"loops\":%llu}\n",
               (unsigned long long)ans_other, (unsigned long long)ans_none,
               (unsigned long long)send_errors, cpu_used, wall > 0 ? 100 * cpu_used / wall : 0,
               delay_ms, (unsigned long long)polls, (unsigned long long)loops);
    } else {
        printf("server            %s port %d, window %d over %d sockets, %.2f s\n", server, port,
               window, nsocks, elapsed);
        if (rate > 0)
            printf("offered           %.0f q/s (open loop)\n", rate);
        printf("queries           %zu distinct, %zu ECS subnets cycled\n", nqueries, nlist);
        printf("sent              %llu\n", (unsigned long long)sent);
        printf("answered          %llu (%.2f%%)\n", (unsigned long long)answered,
               sent ? 100.0 * (double)answered / (double)sent : 0);
        printf("lost              %llu (timeout %llu ms)\n", (unsigned long long)lost,
               (unsigned long long)(timeout_ns / 1000000));
        printf("queries/s         %.0f\n", qps);
        printf("latency µs        p50 %llu  p99 %llu  p99.9 %llu  max %.0f\n",
               (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999,
               (double)lat_max_ns / 1e3);
        printf("p99 with lost     %llu µs (a lost query counted as the timeout)\n",
               (unsigned long long)p99_all);
        printf("rcodes           ");
        for (unsigned i = 0; i < 16; i++)
            if (rcodes[i])
                printf(" %s %llu", rcode_name(i), (unsigned long long)rcodes[i]);
        printf("\nTC                %llu\n", (unsigned long long)tc_count);
        printf("first A answer   ");
        for (int i = 0; i < MAX_ANS; i++)
            if (ans_count[i])
                printf(" %s %llu", abuf[i], (unsigned long long)ans_count[i]);
        printf("  (other %llu, none %llu)\n", (unsigned long long)ans_other,
               (unsigned long long)ans_none);
        printf("generator CPU     %.2f s (%.0f%% of one core), waited %.0f ms for its CPU%s\n",
               cpu_used, wall > 0 ? 100 * cpu_used / wall : 0, delay_ms,
               unexpected ? ", unexpected replies seen" : "");
    }
    return answered ? 0 : 1;
}
