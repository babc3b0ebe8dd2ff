/* Relay load generator (benchmark tool, not part of cobrowsed).
 *
 * One thread, non-blocking sockets and epoll, and its own minimal WebSocket client (RFC 6455:
 * client handshake, masked client frames, server frames with 7/16/64-bit lengths, fragmentation,
 * ping/close) so that the load generator costs as little CPU as possible: on a 2-core machine it
 * shares the cores with the server under test and PostgreSQL, and every cycle it spends is one the
 * server does not get. Drives docs/protocol.md: visitors send 16-byte-header binary frames (seq
 * from hello.next_seq, a snapshot first) and honour ack/resend/slow_down/snapshot_request from an
 * outbox; agents check that frames arrive in seq order, each once, and measure visitor-to-agent
 * latency from the CLOCK_MONOTONIC send time carried in the first 8 payload bytes.
 *
 * Prints one line on stdout: "RESULT mode=... key=value ...". Diagnostics (and WARN lines for
 * anything that contradicts docs/protocol.md) go to stderr. Usage: loadgen --help.
 *
 * Files, one concern each: lg.h (shared types and state), lg_ws.c (the WebSocket client),
 * lg_conn.c (connections' life and the reconnect policy), lg_session.c (the relay protocol of
 * visitors and agents), lg_stats.c (latency histogram, CPU, the RESULT line), and this one: the
 * options, the setup, the phases of each mode and the epoll loop.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg.h"
#include "lg_conn.h"
#include "lg_session.h"
#include "lg_stats.h"
#include "lg_ws.h"

#define LG_MAX_WARNINGS 20

struct lg_options lg_opt = {
    .mode = LG_THROUGHPUT,
    .sessions = 0,
    .agents_per_session = 1,
    .connections = 0,
    .max_pending = 512,
    .size = 1024,
    .seconds = 5,
    .warmup = 1,
    .rate = 4000,
    .timeout = 60,
    .window_bytes = 1u << 20,
};

struct lg_run lg;

void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* Anything that contradicts docs/protocol.md: counted, and the first few printed, so that a run
 * against a misbehaving relay says what it saw instead of only producing odd figures. */
void lg_violation(const char *fmt, ...)
{
    lg.violations++;
    if (lg.warned >= LG_MAX_WARNINGS)
        return;
    lg.warned++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "WARN protocol: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", lg.warned == LG_MAX_WARNINGS ? " (further warnings not shown)" : "");
    va_end(ap);
}

void *lg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL)
        lg_die("out of memory (%zu bytes)", n);
    return q;
}

/* ---- setup and phases ------------------------------------------------------------------------ */

static void lg_load_tokens(void)
{
    FILE *f = fopen(lg_opt.tokens_file, "r");
    if (f == NULL)
        lg_die("cannot open %s: %s", lg_opt.tokens_file, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int n = 0, want = lg_opt.sessions;
    while (getline(&line, &cap, f) > 0 && (want == 0 || n < want)) {
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (tok == NULL || tok[0] == '#')
            continue;
        lg.sess = lg_xrealloc(lg.sess, sizeof(*lg.sess) * (size_t)(n + 1));
        struct lg_session *s = &lg.sess[n];
        memset(s, 0, sizeof(*s));
        snprintf(s->id, sizeof(s->id), "%s", tok);
        if ((tok = strtok_r(NULL, " \t\r\n", &save)) == NULL)
            lg_die("%s: line %d has no visitor token", lg_opt.tokens_file, n + 1);
        s->vtoken = strdup(tok);
        while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && s->natokens < LG_MAX_AGENTS)
            s->atoken[s->natokens++] = strdup(tok);
        n++;
    }
    free(line);
    fclose(f);
    if (n == 0)
        lg_die("no sessions in %s", lg_opt.tokens_file);
    if (want && n < want)
        lg_die("%s has %d sessions, %d wanted", lg_opt.tokens_file, n, want);
    lg.nsess = n;
}

/* The url session i's visitor (a < 0) or agent a starts on (--layout). */
static int lg_place(int i, int a)
{
    int n = lg.ntargets;
    if (n == 1)
        return 0;
    if (lg_opt.layout == LG_LAYOUT_SPREAD)
        return (i + (a < 0 ? 0 : 1 + a)) % n;
    return a < 0 ? 0 : 1 + (i + a) % (n - 1);
}

static void lg_setup(void)
{
    lg_load_tokens();
    if (lg_opt.mode == LG_IDLE) {
        /* N connections over the sessions: each session's visitor, then its agents */
        int per = 1 + lg_opt.agents_per_session, need = lg_opt.connections;
        if (need <= 0)
            lg_die("--mode idle needs --connections N");
        if ((long)per * lg.nsess < need)
            lg_die("%d sessions x (1 visitor + %d agents) < %d connections", lg.nsess,
                   lg_opt.agents_per_session, need);
        for (int i = 0; i < lg.nsess && lg.nconns < need; i++) {
            struct lg_session *s = &lg.sess[i];
            s->visitor = lg_conn_new(s, LG_VISITOR, s->vtoken);
            for (int a = 0; a < lg_opt.agents_per_session && lg.nconns < need; a++) {
                if (a >= s->natokens)
                    lg_die("session %s has %d agent tokens, %d wanted", s->id, s->natokens,
                           lg_opt.agents_per_session);
                s->agent[s->nagents++] = lg_conn_new(s, LG_AGENT, s->atoken[a]);
            }
        }
        for (int i = 0; i < lg.nconns; i++)
            lg_conn_enqueue(lg.conns[i]);
        lg.nsess = 0; /* no visitor streams */
        return;
    }
    size_t nframes = lg_opt.window_bytes / lg_opt.size;
    lg.window = nframes < 16 ? 16 : nframes;
    for (lg.ring = 1; lg.ring <= lg.window; lg.ring <<= 1)
        ;
    for (int i = 0; i < lg.nsess; i++) {
        struct lg_session *s = &lg.sess[i];
        if (s->natokens < lg_opt.agents_per_session)
            lg_die("session %s has %d agent tokens, %d wanted", s->id, s->natokens,
                   lg_opt.agents_per_session);
        s->visitor = lg_conn_new(s, LG_VISITOR, s->vtoken);
        s->visitor->target = lg_place(i, -1);
        for (int a = 0; a < lg_opt.agents_per_session; a++) {
            s->agent[s->nagents] = lg_conn_new(s, LG_AGENT, s->atoken[a]);
            s->agent[s->nagents++]->target = lg_place(i, a);
        }
        s->ts = calloc(lg.ring, sizeof(*s->ts));
        s->kind = calloc(lg.ring, 1);
        if (s->ts == NULL || s->kind == NULL)
            lg_die("out of memory");
        s->need_snapshot = 1;
        lg_conn_enqueue(s->agent[0]); /* agents first: queued in session order */
        for (int a = 1; a < s->nagents; a++)
            lg_conn_enqueue(s->agent[a]);
    }
    lg.filler = malloc(lg_opt.size);
    if (lg.filler == NULL)
        lg_die("out of memory");
    /* looks like what the SDK sends (rrweb JSON), so a compressing proxy would not cheat */
    static const char pat[] = "[{\"type\":3,\"data\":{\"source\":0,\"texts\":[],\"attributes\":[],"
                              "\"removes\":[],\"adds\":[{\"parentId\":17,\"node\":{\"type\":3,"
                              "\"textContent\":\"lorem ipsum dolor sit amet\"}}]}}]";
    for (size_t i = 0; i < lg_opt.size; i++)
        lg.filler[i] = (uint8_t)pat[i % (sizeof(pat) - 1)];
}

static void lg_enter(enum lg_phase ph, int64_t now)
{
    lg.phase = ph;
    lg.phase_at = now;
    if (lg_opt.verbose)
        fprintf(stderr, "loadgen: phase %d at %.3f s\n", ph, (double)(now - lg.t0) / 1e9);
}

/* Resume mode with --kill-pid: a node dies (kill -9) while every session streams. Its clients
 * see their connections drop and come back with resume= on the next url; the others stay. The
 * figure is the time until every visitor that was on the killed node has its hello again and
 * every agent (wherever it is) has every frame made before the kill. */
static void lg_kill_node(int64_t now)
{
    lg.need_visitors = 0;
    for (int i = 0; i < lg.nsess; i++) {
        struct lg_session *s = &lg.sess[i];
        s->target = s->produced;
        s->resumed = s->visitor->target != lg_opt.kill_target;
        lg.need_visitors += !s->resumed;
    }
    lg.resumed_visitors = lg.reached_agents = 0;
    lg.need_agents = lg.nsess * lg_opt.agents_per_session;
    lg_stats_reset();
    lg.lost = lg.dups = lg.resets = 0;
    lg.setup_rejects = lg.rejects;
    lg.rejects = 0;
    lg.traced[0] = lg.traced[1] = 0;
    lg.resume_at = now;
    lg_enter(LG_PH_RESUMING, now);
    if (kill(lg_opt.kill_pid, SIGKILL) != 0)
        lg_die("kill -9 %d: %s", lg_opt.kill_pid, strerror(errno));
    for (int i = 0; i < lg.nconns; i++)
        if (lg.conns[i]->role == LG_AGENT)
            lg_session_agent_reached(lg.conns[i]);
}

/* Resume mode: every socket closed at once, as when a node or a network path goes away; every
 * client then reconnects with resume= (the visitor its last seq sent, an agent its last seq
 * received). Visitors keep making frames into their outbox meanwhile, as a page would. */
static void lg_mass_disconnect(int64_t now)
{
    for (int i = 0; i < lg.nsess; i++) {
        struct lg_session *s = &lg.sess[i];
        s->target = s->produced;
        s->resumed = 0;
    }
    lg_conn_close_all();
    lg.resumed_visitors = lg.reached_agents = 0;
    lg.need_visitors = lg.nsess;
    lg.need_agents = lg.nsess * lg_opt.agents_per_session;
    lg_stats_reset();
    lg.lost = lg.dups = lg.resets = 0;
    lg.setup_rejects = lg.rejects; /* rejections while resuming are what this mode measures */
    lg.rejects = 0;
    lg.traced[0] = lg.traced[1] = 0;
    lg.resume_at = now;
    lg_enter(LG_PH_RESUMING, now);
    for (int i = 0; i < lg.nconns; i++)
        if (lg.conns[i]->role == LG_AGENT)
            lg_session_agent_reached(lg.conns[i]);
}

static void lg_tick(int64_t now)
{
    double since = (double)(now - lg.phase_at) / 1e9;
    int nagents = lg.nsess * lg_opt.agents_per_session;
    switch (lg.phase) {
    case LG_PH_AGENTS:
        if (lg_opt.mode == LG_IDLE) {
            if (lg.conns_open == lg.nconns) {
                printf("READY connections=%d seconds=%.2f\n", lg.nconns,
                       (double)(now - lg.t0) / 1e9);
                fflush(stdout);
                lg_enter(LG_PH_HOLD, now);
            }
        } else if (lg.agents_open == nagents) {
            for (int i = 0; i < lg.nsess; i++)
                lg_conn_enqueue(lg.sess[i].visitor);
            lg_enter(LG_PH_VISITORS, now);
        }
        break;
    case LG_PH_VISITORS:
        if (lg.visitors_hello == lg.nsess && lg.agents_open == nagents) {
            for (int i = 0; i < lg.nsess; i++) /* spread the sessions' frames evenly */
                lg.sess[i].next_due = now + (int64_t)(1e9 * i / lg_opt.rate);
            lg_enter(LG_PH_WARMUP, now);
            for (int i = 0; i < lg.nsess; i++)
                lg_session_pump(&lg.sess[i], now);
        }
        break;
    case LG_PH_WARMUP:
        if (since >= lg_opt.warmup) {
            lg_stats_reset();
            lg_stats_cpu_mark(0, 0);
            lg_enter(LG_PH_MEASURE, now);
        }
        break;
    case LG_PH_MEASURE:
        if (since >= lg_opt.seconds) {
            lg_stats_cpu_mark(1, since);
            if (lg_opt.mode == LG_RESUME && lg_opt.kill_pid)
                lg_kill_node(now);
            else if (lg_opt.mode == LG_RESUME)
                lg_mass_disconnect(now);
            else
                lg_enter(LG_PH_DONE, now);
        }
        break;
    case LG_PH_HOLD:
        if (since >= lg_opt.seconds)
            lg_enter(LG_PH_DONE, now);
        break;
    case LG_PH_RESUMING:
        if ((lg.resumed_visitors == lg.need_visitors && lg.reached_agents == lg.need_agents) ||
            since >= lg_opt.timeout)
            lg_enter(LG_PH_DONE, now);
        break;
    case LG_PH_DONE:
        break;
    }
    int connecting = lg.phase == LG_PH_AGENTS || lg.phase == LG_PH_VISITORS;
    int hopeless = lg.dead > 0 && lg.qhead == NULL && lg.pending == 0 && lg.nwait == 0;
    if (connecting && (hopeless || (double)(now - lg.phase_at) / 1e9 > lg_opt.timeout)) {
        fprintf(stderr,
                "loadgen: could not connect everything: %d of %d connections open, %d agents, %d "
                "visitors with hello, %d given up, %" PRIu64 " rejections\n",
                lg.conns_open, lg.nconns, lg.agents_open, lg.visitors_hello, lg.dead, lg.rejects);
        lg_stats_report_connect_failed();
        exit(1);
    }
}

static void lg_usage(FILE *f)
{
    fprintf(f, "usage: loadgen --url ws://HOST:PORT/v1/relay [--url ...] --tokens FILE --mode MODE "
               "[options]\n"
               "  FILE: one session a line: \"session_id visitor_token agent_token...\"\n"
               "  --mode throughput   visitors send as fast as the window allows\n"
               "  --mode latency      --rate frames/s in total, spread over the sessions\n"
               "  --mode idle         open --connections N and hold them --seconds\n"
               "  --mode resume       stream at --rate, close every socket at once, reconnect\n"
               "  --sessions N        sessions to use (default: every line of FILE)\n"
               "  --agents-per-session N (default 1)  --size BYTES frame size (default 1024)\n"
               "  --seconds S (default 5)  --warmup S (default 1)  --rate F (default 4000)\n"
               "  --window-bytes B    unacked bytes per visitor (default 1048576)\n"
               "  --max-pending N     handshakes in flight (default 512)\n"
               "  --timeout S         connect / resume deadline (default 60)  --verbose\n"
               "  --server-pid PID    report the server's CPU use while measuring (repeatable:\n"
               "                      the sum of the processes)\n"
               "  --url given up to 8 times: the nodes of a cluster; a connection that is lost\n"
               "                      comes back on the next url\n"
               "  --layout split|spread  split (default): visitors on the first url, agents on\n"
               "                      the others; spread: session i's visitor on url i mod n,\n"
               "                      its agents on the following ones\n"
               "  --kill-pid PID --kill-url K  resume mode: kill -9 PID (the node of the K-th\n"
               "                      --url, from 0) instead of closing every socket\n"
               "  --token-via query|header|subprotocol  how the JWT travels (default query:\n"
               "                      ?access_token=, as browsers send it)\n");
}

static void lg_parse_url(const char *url, struct lg_target *t)
{
    char path[512];
    if (sscanf(url, "ws://%255[^:/]:%15[0-9]%511s", t->host, t->port, path) != 3)
        lg_die("--url must look like ws://127.0.0.1:8081/v1/relay");
    if (lg_opt.path[0] && strcmp(path, lg_opt.path) != 0)
        lg_die("every --url must have the same path");
    snprintf(lg_opt.path, sizeof(lg_opt.path), "%s", path);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(t->host, t->port, &hints, &ai);
    if (rc)
        lg_die("%s: %s", t->host, gai_strerror(rc));
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
}

static void lg_parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", 1, 0, 'u'},
        {"tokens", 1, 0, 't'},
        {"mode", 1, 0, 'm'},
        {"sessions", 1, 0, 'S'},
        {"agents-per-session", 1, 0, 'a'},
        {"size", 1, 0, 'z'},
        {"seconds", 1, 0, 's'},
        {"warmup", 1, 0, 'w'},
        {"rate", 1, 0, 'r'},
        {"connections", 1, 0, 'c'},
        {"window-bytes", 1, 0, 'W'},
        {"max-pending", 1, 0, 'p'},
        {"timeout", 1, 0, 'T'},
        {"verbose", 0, 0, 'v'},
        {"token-via", 1, 0, 'k'},
        {"server-pid", 1, 0, 'P'},
        {"layout", 1, 0, 'L'},
        {"kill-pid", 1, 0, 'K'},
        {"kill-url", 1, 0, 'X'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *url[LG_MAX_TARGETS];
    int nurl = 0, ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u':
            if (nurl == LG_MAX_TARGETS)
                lg_die("at most %d --url", LG_MAX_TARGETS);
            url[nurl++] = optarg;
            break;
        case 'L':
            if (strcmp(optarg, "split") == 0)
                lg_opt.layout = LG_LAYOUT_SPLIT;
            else if (strcmp(optarg, "spread") == 0)
                lg_opt.layout = LG_LAYOUT_SPREAD;
            else
                lg_die("--layout is split or spread");
            break;
        case 'K':
            lg_opt.kill_pid = atoi(optarg);
            break;
        case 'X':
            lg_opt.kill_target = atoi(optarg);
            break;
        case 't':
            lg_opt.tokens_file = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "throughput") == 0)
                lg_opt.mode = LG_THROUGHPUT;
            else if (strcmp(optarg, "latency") == 0)
                lg_opt.mode = LG_LATENCY;
            else if (strcmp(optarg, "idle") == 0)
                lg_opt.mode = LG_IDLE;
            else if (strcmp(optarg, "resume") == 0)
                lg_opt.mode = LG_RESUME;
            else
                lg_die("unknown mode %s", optarg);
            break;
        case 'S':
            lg_opt.sessions = atoi(optarg);
            break;
        case 'a':
            lg_opt.agents_per_session = atoi(optarg);
            break;
        case 'z':
            lg_opt.size = strtoul(optarg, NULL, 10);
            break;
        case 's':
            lg_opt.seconds = atof(optarg);
            break;
        case 'w':
            lg_opt.warmup = atof(optarg);
            break;
        case 'r':
            lg_opt.rate = atof(optarg);
            break;
        case 'c':
            lg_opt.connections = atoi(optarg);
            break;
        case 'W':
            lg_opt.window_bytes = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            lg_opt.max_pending = atoi(optarg);
            break;
        case 'T':
            lg_opt.timeout = atof(optarg);
            break;
        case 'v':
            lg_opt.verbose = 1;
            break;
        case 'P':
            if (lg_opt.nserver_pids == LG_MAX_TARGETS + 1)
                lg_die("at most %d --server-pid", LG_MAX_TARGETS + 1);
            lg_opt.server_pid[lg_opt.nserver_pids++] = atoi(optarg);
            break;
        case 'k':
            if (strcmp(optarg, "query") == 0)
                lg_opt.token_via = LG_TOKEN_QUERY;
            else if (strcmp(optarg, "header") == 0)
                lg_opt.token_via = LG_TOKEN_HEADER;
            else if (strcmp(optarg, "subprotocol") == 0)
                lg_opt.token_via = LG_TOKEN_SUBPROTOCOL;
            else
                lg_die("--token-via is query, header or subprotocol");
            break;
        case 'h':
            lg_usage(stdout);
            exit(0);
        default:
            lg_usage(stderr);
            exit(2);
        }
    }
    lg.phase = LG_PH_AGENTS;
    if (nurl == 0 || lg_opt.tokens_file == NULL) {
        lg_usage(stderr);
        exit(2);
    }
    if (lg_opt.size < LG_MIN_FRAME || lg_opt.size > LG_MAX_MSG)
        lg_die("--size must be %d..%u", LG_MIN_FRAME, LG_MAX_MSG);
    if (lg_opt.agents_per_session < 1 || lg_opt.agents_per_session > LG_MAX_AGENTS)
        lg_die("--agents-per-session must be 1..%d", LG_MAX_AGENTS);
    if (lg_opt.rate <= 0 || lg_opt.seconds <= 0 || lg_opt.max_pending < 1)
        lg_die("--rate, --seconds and --max-pending must be positive");
    if (lg_opt.kill_pid && (lg_opt.mode != LG_RESUME || nurl < 2 || lg_opt.kill_target < 0 ||
                            lg_opt.kill_target >= nurl))
        lg_die("--kill-pid needs --mode resume, several --url and --kill-url 0..%d", nurl - 1);
    for (int i = 0; i < nurl; i++)
        lg_parse_url(url[i], &lg.target[i]);
    lg.ntargets = nurl;
}

int main(int argc, char **argv)
{
    lg_parse_args(argc, argv);
    if (getrandom(&lg.rng, sizeof(lg.rng), 0) != sizeof(lg.rng) || lg.rng == 0)
        lg.rng = (uint64_t)lg_now() | 1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* 10,000 connections need more than the usual 1,024 */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lg.ep = epoll_create1(EPOLL_CLOEXEC);
    if (lg.ep < 0)
        lg_die("epoll_create1: %s", strerror(errno));
    lg_setup();
    lg.t0 = lg.phase_at = lg_now();
    struct epoll_event evs[512];
    int rated = lg_opt.mode == LG_LATENCY || lg_opt.mode == LG_RESUME;
    int64_t next_tick = 0;
    while (lg.phase != LG_PH_DONE) {
        lg_conn_start_connects();
        /* 1 ms ticks for the rate modes' schedule; otherwise events drive everything */
        int n = epoll_wait(lg.ep, evs, 512, rated && lg_streaming() ? 1 : 10);
        if (n < 0 && errno != EINTR)
            lg_die("epoll_wait: %s", strerror(errno));
        int64_t now = lg_now();
        for (int i = 0; i < n; i++) {
            struct lg_conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                lg_ws_on_readable(c, now);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                lg_ws_on_writable(c, now);
        }
        if (now >= next_tick) {
            next_tick = now + 1000000;
            lg_conn_retries(now);
            if (lg_streaming()) /* rate schedules, and the end of a slow_down pause */
                for (int i = 0; i < lg.nsess; i++)
                    lg_session_pump(&lg.sess[i], now);
            lg_tick(now);
        }
    }
    lg_stats_report(lg_now());
    return 0;
}
