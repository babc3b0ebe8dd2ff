#include "api/metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <strings.h>

#include "api/server.h"
#include "core/base/crypto.h"

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))
#define N_SLOTS   (METRICS_MAX_ROUTES + 1) /* slot 0: unmatched */

static uint64_t counts[N_SLOTS][600];
static uint64_t hist[N_SLOTS][N_BUCKETS + 1];
static uint64_t sum_us[N_SLOTS];
static uint64_t conns_opened, conns_closed, conns_cut;

void metrics_connection_opened(void)
{
    __atomic_add_fetch(&conns_opened, 1, __ATOMIC_RELAXED);
}

void metrics_connection_closed(void)
{
    __atomic_add_fetch(&conns_closed, 1, __ATOMIC_RELAXED);
}

void metrics_connections_cut(int n)
{
    __atomic_add_fetch(&conns_cut, (uint64_t)n, __ATOMIC_RELAXED);
}

void metrics_observe(int route_index, int status, double seconds)
{
    int slot = route_index + 1;
    if (slot < 0 || slot >= N_SLOTS)
        slot = 0;
    if (status < 100 || status > 599)
        status = 500;
    __atomic_add_fetch(&counts[slot][status], 1, __ATOMIC_RELAXED);
    size_t b = 0;
    while (b < N_BUCKETS && seconds > buckets[b])
        b++;
    __atomic_add_fetch(&hist[slot][b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sum_us[slot], (uint64_t)(seconds * 1e6), __ATOMIC_RELAXED);
}

static int peer_is_loopback(const struct sockaddr *peer)
{
    if (peer != NULL && peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (peer != NULL && peer->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

enum metrics_access metrics_access(const char *token, const char *authorization,
                                   const struct sockaddr *peer)
{
    if (token == NULL || token[0] == '\0')
        return peer_is_loopback(peer) ? METRICS_ALLOWED : METRICS_NOT_LOOPBACK;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return METRICS_TOKEN_MISSING;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    /* Digests of equal length, compared in constant time: neither the token's characters nor
     * its length show in the answer's timing. */
    char want_hex[CRYPTO_HEX_SHA256], given_hex[CRYPTO_HEX_SHA256];
    if (crypto_sha256_hex(token, strlen(token), want_hex) != 0 ||
        crypto_sha256_hex(given, strlen(given), given_hex) != 0)
        return METRICS_TOKEN_WRONG;
    return crypto_equal(want_hex, given_hex, sizeof(want_hex)) ? METRICS_ALLOWED
                                                               : METRICS_TOKEN_WRONG;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->p == NULL)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        char *np = realloc(b->p, b->cap * 2);
        if (np == NULL) {
            free(b->p);
            b->p = NULL;
            return;
        }
        b->p = np;
        b->cap *= 2;
    }
}

static void route_labels(int slot, char *out, size_t size)
{
    if (slot == 0 || slot - 1 >= server_routes_count)
        snprintf(out, size, "route=\"unmatched\",method=\"\"");
    else
        snprintf(out, size, "route=\"%s\",method=\"%s\"", server_routes[slot - 1].path,
                 server_routes[slot - 1].method);
}

char *metrics_render(struct db_pool *pool)
{
    struct buf b = {malloc(16384), 0, 16384};
    char labels[160];
    put(&b, "# HELP http_requests_total HTTP requests answered, by route, method and status.\n"
            "# TYPE http_requests_total counter\n");
    for (int s = 0; s < N_SLOTS; s++) {
        route_labels(s, labels, sizeof(labels));
        for (int st = 100; st < 600; st++) {
            uint64_t v = __atomic_load_n(&counts[s][st], __ATOMIC_RELAXED);
            if (v)
                put(&b, "http_requests_total{%s,status=\"%d\"} %llu\n", labels, st,
                    (unsigned long long)v);
        }
    }
    put(&b, "# HELP http_request_duration_seconds Time from routing to response, by route.\n"
            "# TYPE http_request_duration_seconds histogram\n");
    for (int s = 0; s < N_SLOTS; s++) {
        uint64_t total = 0;
        for (size_t k = 0; k <= N_BUCKETS; k++)
            total += __atomic_load_n(&hist[s][k], __ATOMIC_RELAXED);
        if (total == 0)
            continue;
        route_labels(s, labels, sizeof(labels));
        uint64_t cum = 0;
        for (size_t k = 0; k < N_BUCKETS; k++) {
            cum += __atomic_load_n(&hist[s][k], __ATOMIC_RELAXED);
            put(&b, "http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", labels, buckets[k],
                (unsigned long long)cum);
        }
        put(&b, "http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", labels,
            (unsigned long long)total);
        put(&b, "http_request_duration_seconds_sum{%s} %.6f\n", labels,
            (double)__atomic_load_n(&sum_us[s], __ATOMIC_RELAXED) / 1e6);
        put(&b, "http_request_duration_seconds_count{%s} %llu\n", labels,
            (unsigned long long)total);
    }
    uint64_t closed = __atomic_load_n(&conns_closed, __ATOMIC_RELAXED);
    uint64_t opened = __atomic_load_n(&conns_opened, __ATOMIC_RELAXED);
    put(&b,
        "# HELP http_connections_open Connections open on the REST listener.\n"
        "# TYPE http_connections_open gauge\nhttp_connections_open %llu\n"
        "# HELP http_connections_deadline_closed_total Connections closed because a request was "
        "not received and answered within --http-request-seconds.\n"
        "# TYPE http_connections_deadline_closed_total counter\n"
        "http_connections_deadline_closed_total %llu\n",
        (unsigned long long)(opened > closed ? opened - closed : 0),
        (unsigned long long)__atomic_load_n(&conns_cut, __ATOMIC_RELAXED));
    if (pool != NULL) {
        struct db_pool_stats st;
        db_pool_get_stats(pool, &st);
        put(&b,
            "# HELP db_pool_size Database connections in the pool.\n# TYPE db_pool_size gauge\n"
            "db_pool_size %d\n"
            "# HELP db_pool_in_use Database connections lent out now.\n"
            "# TYPE db_pool_in_use gauge\ndb_pool_in_use %d\n"
            "# HELP db_pool_acquires_total Connections handed out.\n"
            "# TYPE db_pool_acquires_total counter\ndb_pool_acquires_total %llu\n"
            "# HELP db_pool_waits_total Acquisitions that had to wait for a free connection.\n"
            "# TYPE db_pool_waits_total counter\ndb_pool_waits_total %llu\n"
            "# HELP db_pool_timeouts_total Acquisitions that gave up (answered 503).\n"
            "# TYPE db_pool_timeouts_total counter\ndb_pool_timeouts_total %llu\n"
            "# HELP db_pool_wait_seconds_total Time spent waiting for a connection.\n"
            "# TYPE db_pool_wait_seconds_total counter\ndb_pool_wait_seconds_total %.6f\n",
            st.size, st.in_use, (unsigned long long)st.acquires, (unsigned long long)st.waits,
            (unsigned long long)st.timeouts, st.wait_seconds);
    }
    return b.p;
}
