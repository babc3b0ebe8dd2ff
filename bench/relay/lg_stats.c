/* What a load generator run measured, and the RESULT line: see lg_stats.h. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lg_stats.h"

#define LG_HIST_BUCKETS (128 + 48 * 64)

struct lg_hist {
    uint64_t count[LG_HIST_BUCKETS];
    uint64_t n, max;
};

static struct lg_hist hist;
static double cpu_self, cpu_server;         /* CPU seconds at measure start, -1 if unknown */
static double cpu_self_pct, cpu_server_pct; /* % of one core while measuring, -1 if unknown */

static const char *const lg_mode_name[] = {"throughput", "latency", "idle", "resume"};

/* ---- latency histogram: 64 sub-buckets per power of two (under 1.6 % error) -------------- */

static int lg_hist_index(uint64_t v)
{
    if (v < 128)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    if (e > 47)
        return LG_HIST_BUCKETS - 1;
    int shift = e - 6;
    return 128 + (e - 7) * 64 + (int)((v >> shift) - 64);
}

static uint64_t lg_hist_value(int i)
{
    if (i < 128)
        return (uint64_t)i;
    int e = (i - 128) / 64 + 7, m = (i - 128) % 64 + 64, shift = e - 6;
    return ((uint64_t)m << shift) + ((1ULL << shift) >> 1); /* bucket middle */
}

static void lg_hist_add(struct lg_hist *h, uint64_t v)
{
    h->count[lg_hist_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t lg_hist_pct(const struct lg_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->n), seen = 0;
    if (want == 0)
        want = 1;
    for (int i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want)
            return lg_hist_value(i) < h->max ? lg_hist_value(i) : h->max;
    }
    return h->max;
}

void lg_stats_latency(uint64_t ns)
{
    lg_hist_add(&hist, ns);
}

/* ---- counters, CPU, the RESULT line ----------------------------------------------------- */

void lg_stats_reset(void)
{
    lg.frames = lg.bytes = lg.produced = 0;
    memset(&hist, 0, sizeof(hist));
}

/* CPU seconds (user + system) a process has used so far, from /proc/PID/stat; -1 if unknown. */
static double lg_cpu_seconds(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), pid ? "/proc/%d/stat" : "/proc/self/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU seconds of every --server-pid together (the nodes of a cluster and their Redis); -1
 * if none was given or one is unknown. */
static double lg_cpu_servers(void)
{
    double sum = lg_opt.nserver_pids ? 0 : -1;
    for (int i = 0; i < lg_opt.nserver_pids; i++) {
        double v = lg_cpu_seconds(lg_opt.server_pid[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* The share of one core each side used while measuring: shows which side was saturated, and so
 * how large a ratio this machine could show at all. */
void lg_stats_cpu_mark(int end, double secs)
{
    double self = lg_cpu_seconds(0), server = lg_cpu_servers();
    if (!end) {
        cpu_self = self;
        cpu_server = server;
        return;
    }
    cpu_self_pct = self >= 0 && cpu_self >= 0 ? 100 * (self - cpu_self) / secs : -1;
    cpu_server_pct = server >= 0 && cpu_server >= 0 ? 100 * (server - cpu_server) / secs : -1;
}

void lg_stats_report(int64_t now)
{
    const struct lg_hist *h = &hist;
    printf("RESULT mode=%s", lg_mode_name[lg_opt.mode]);
    if (lg_opt.mode == LG_IDLE) {
        printf(" connections=%d open=%d dead=%d rejects=%" PRIu64 " reconnects=%" PRIu64, lg.nconns,
               lg.conns_open, lg.dead, lg.rejects, lg.reconnects);
    } else {
        double secs =
            lg_opt.mode == LG_RESUME ? (double)(now - lg.resume_at) / 1e9 : lg_opt.seconds;
        if (lg_opt.mode == LG_RESUME) {
            /* what never arrived: frames up to each session's last one before the disconnect */
            uint64_t missing = 0;
            for (int i = 0; i < lg.nconns; i++) {
                struct lg_conn *c = lg.conns[i];
                if (c->role == LG_AGENT && c->last < c->s->target)
                    missing += c->s->target - c->last;
            }
            lg.lost += missing;
            int complete =
                lg.resumed_visitors == lg.need_visitors && lg.reached_agents == lg.need_agents;
            printf(" sessions=%d agents=%d resume_s=%.3f complete=%d visitors_resumed=%d "
                   "agents_caught_up=%d setup_rejects=%" PRIu64,
                   lg.nsess, lg_opt.agents_per_session, secs, complete, lg.resumed_visitors,
                   lg.reached_agents, lg.setup_rejects);
        } else {
            printf(" sessions=%d agents=%d size=%zu seconds=%.2f", lg.nsess,
                   lg_opt.agents_per_session, lg_opt.size, secs);
        }
        printf(" frames=%" PRIu64 " frames_per_s=%.0f mb_per_s=%.2f in_frames_per_s=%.0f",
               lg.frames, (double)lg.frames / secs, (double)lg.bytes / secs / 1e6,
               (double)lg.produced / secs);
        printf(" p50_us=%.0f p99_us=%.0f max_us=%.0f", (double)lg_hist_pct(h, 0.50) / 1e3,
               (double)lg_hist_pct(h, 0.99) / 1e3, (double)h->max / 1e3);
        printf(" lost=%" PRIu64 " dups=%" PRIu64 " resets=%" PRIu64 " resends=%" PRIu64
               " slow_downs=%" PRIu64 " snapshot_requests=%" PRIu64 " rejects=%" PRIu64
               " reconnects=%" PRIu64,
               lg.lost, lg.dups, lg.resets, lg.resends, lg.slow_downs, lg.snapshot_requests,
               lg.rejects, lg.reconnects);
    }
    if (lg_opt.mode == LG_THROUGHPUT || lg_opt.mode == LG_LATENCY)
        printf(" cpu_loadgen_pct=%.0f cpu_server_pct=%.0f", cpu_self_pct, cpu_server_pct);
    printf(" closed=%" PRIu64 " violations=%" PRIu64 "\n", lg.closes_final, lg.violations);
    fflush(stdout);
}

void lg_stats_report_connect_failed(void)
{
    printf("RESULT mode=%s error=connect_failed open=%d of=%d rejects=%" PRIu64
           " violations=%" PRIu64 "\n",
           lg_mode_name[lg_opt.mode], lg.conns_open, lg.nconns, lg.rejects, lg.violations);
}
