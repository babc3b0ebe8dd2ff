/* core/proxy/fetch.c against a tiny HTTP server of its own on loopback (127.0.0.1, 127.0.0.2
 * and ::1): responses, redirects, bounds, time-outs, and the SSRF guard at connect time.
 * Nothing here sends a packet beyond loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "core/proxy/fetch.h"
#include "core/proxy/netguard.h"

#define MAX_BYTES (64 * 1024)
#define BOMB_SIZE (4 * 1024 * 1024) /* decoded; about 4 KB on the wire */

enum { L_127_0_0_1, L_127_0_0_2, L_IPV6, L_COUNT };

/* ---- the test server: one thread, one connection at a time, Connection: close ---- */

struct server {
    int lfd[L_COUNT];
    int port[L_COUNT];
    int stop[2]; /* a pipe: written to stop the thread */
    pthread_t thread;
    pthread_mutex_t mu;
    int conns[L_COUNT]; /* guarded by mu */
    unsigned char *bomb;
    size_t bomb_len;
};

static struct server srv;

static int listen_on(int family, const char *addr, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &sin->sin_addr);
        len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &sin6->sin6_addr);
        len = sizeof *sin6;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static int send_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

static int stopping(int timeout_ms)
{
    struct pollfd p = {.fd = srv.stop[0], .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* Reads the request head into buf (NUL-terminated); -1 on close or stop. */
static int read_request(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = srv.stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents != 0)
            return -1;
        ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            return 0;
    }
    return -1;
}

static void respond(int fd, const char *status, const char *headers, const char *body)
{
    char head[1024];
    snprintf(head, sizeof head, "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n",
             status, strlen(body), headers);
    if (send_all(fd, head, strlen(head)) == 0)
        send_all(fd, body, strlen(body));
}

static void drip(int fd)
{
    const char *head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/css\r\n"
                       "Content-Length: 1000\r\n\r\n";
    if (send_all(fd, head, strlen(head)) != 0)
        return;
    /* One byte per 50 ms until the client gives up (send fails) or the test ends. */
    while (!stopping(50))
        if (send_all(fd, "a", 1) != 0)
            return;
}

static void handle(int fd, int listener)
{
    char req[8192], hdr[512];
    if (read_request(fd, req, sizeof req) != 0)
        return;
    char path[256] = "";
    sscanf(req, "GET %255s ", path);
    if (strcmp(path, "/css") == 0) {
        if (strstr(req, "If-None-Match: \"v1\"\r\n") != NULL)
            respond(fd, "304 Not Modified", "ETag: \"v1\"\r\n", "");
        else
            respond(fd, "200 OK",
                    "Content-Type: text/css; charset=utf-8\r\nETag: \"v1\"\r\n"
                    "Cache-Control: max-age=60\r\nCache-Control: public\r\n"
                    "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
                    "a:hover{color:red}");
    } else if (strcmp(path, "/redirect") == 0) {
        respond(fd, "301 Moved Permanently",
                "Location: sub/../css\r\nETag: \"redirect\"\r\nCache-Control: no-store\r\n"
                "Age: 5\r\n",
                "moved");
    } else if (strcmp(path, "/loop") == 0) {
        respond(fd, "302 Found", "Location: /loop\r\n", "");
    } else if (strcmp(path, "/to-file") == 0) {
        respond(fd, "302 Found", "Location: file:///etc/passwd\r\n", "");
    } else if (strcmp(path, "/no-location") == 0) {
        respond(fd, "301 Moved Permanently", "", "");
    } else if (strcmp(path, "/to-127.0.0.1") == 0) {
        snprintf(hdr, sizeof hdr, "Location: http://127.0.0.1:%d/css\r\n", srv.port[L_127_0_0_1]);
        respond(fd, "302 Found", hdr, "");
    } else if (strcmp(path, "/set-cookie") == 0) {
        respond(fd, "302 Found", "Set-Cookie: sid=secret; Path=/\r\nLocation: /echo\r\n", "");
    } else if (strcmp(path, "/echo") == 0) {
        respond(fd, "200 OK", "Content-Type: text/plain\r\n", req);
    } else if (strcmp(path, "/bomb") == 0) {
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/css\r\n"
                 "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
                 srv.bomb_len);
        if (send_all(fd, hdr, strlen(hdr)) == 0)
            send_all(fd, srv.bomb, srv.bomb_len);
    } else if (strcmp(path, "/big") == 0) {
        static char big[MAX_BYTES + 2];
        memset(big, 'x', MAX_BYTES + 1);
        respond(fd, "200 OK", "", big);
    } else if (strcmp(path, "/drip") == 0) {
        drip(fd);
    } else {
        respond(fd, "404 Not Found", "Content-Type: text/plain\r\n", "no such thing");
    }
    (void)listener;
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[L_COUNT + 1];
        for (int i = 0; i < L_COUNT; i++)
            p[i] = (struct pollfd){.fd = srv.lfd[i], .events = POLLIN};
        p[L_COUNT] = (struct pollfd){.fd = srv.stop[0], .events = POLLIN};
        if (poll(p, L_COUNT + 1, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[L_COUNT].revents != 0)
            return NULL;
        for (int i = 0; i < L_COUNT; i++) {
            if (p[i].revents == 0)
                continue;
            int fd = accept4(srv.lfd[i], NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            pthread_mutex_lock(&srv.mu);
            srv.conns[i]++;
            pthread_mutex_unlock(&srv.mu);
            handle(fd, i);
            close(fd);
        }
    }
}

static void make_bomb(void)
{
    unsigned char *zeros = calloc(1, BOMB_SIZE);
    srv.bomb = malloc(BOMB_SIZE / 100);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = zeros;
    z.avail_in = BOMB_SIZE;
    z.next_out = srv.bomb;
    z.avail_out = BOMB_SIZE / 100;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    srv.bomb_len = z.total_out;
    deflateEnd(&z);
    free(zeros);
}

static int server_start(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    srv.lfd[L_127_0_0_1] = listen_on(AF_INET, "127.0.0.1", &srv.port[L_127_0_0_1]);
    srv.lfd[L_127_0_0_2] = listen_on(AF_INET, "127.0.0.2", &srv.port[L_127_0_0_2]);
    if (srv.lfd[L_127_0_0_1] < 0 || srv.lfd[L_127_0_0_2] < 0)
        return -1;
    /* Containers may have no ::1; the [::1] cases still hold there (a broken guard would get
     * "connection refused", not "blocked"), they only lose the connection count. poll skips
     * a negative fd. */
    srv.lfd[L_IPV6] = listen_on(AF_INET6, "::1", &srv.port[L_IPV6]);
    if (srv.lfd[L_IPV6] < 0)
        srv.port[L_IPV6] = srv.port[L_127_0_0_1];
    make_bomb();
    if (pipe(srv.stop) != 0)
        return -1;
    pthread_mutex_init(&srv.mu, NULL);
    return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int server_stop(void **state)
{
    (void)state;
    if (write(srv.stop[1], "x", 1) != 1)
        return -1;
    pthread_join(srv.thread, NULL);
    for (int i = 0; i < L_COUNT; i++)
        if (srv.lfd[i] >= 0)
            close(srv.lfd[i]);
    close(srv.stop[0]);
    close(srv.stop[1]);
    pthread_mutex_destroy(&srv.mu);
    free(srv.bomb);
    return 0;
}

static int conns(int listener)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.conns[listener];
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* ---- helpers ---- */

struct fixture {
    struct netguard *guard;
    struct fetcher *f;
};

static void start(struct fixture *fx, const char *allow, long total_ms)
{
    char err[128];
    assert_int_equal(netguard_new(allow, &fx->guard, err, sizeof err), 0);
    struct fetch_config cfg = {
        .guard = fx->guard,
        .connect_timeout_ms = 2000,
        .total_timeout_ms = total_ms,
        .max_bytes = MAX_BYTES,
        .max_redirects = 3,
        .max_parallel = 4,
        .max_queued = 16,
        .user_agent = "cobrowse-test",
    };
    fx->f = fetcher_start(&cfg);
    assert_non_null(fx->f);
}

static void stop(struct fixture *fx)
{
    fetcher_stop(fx->f);
    netguard_free(fx->guard);
}

static char *url(int listener, const char *path)
{
    static char buf[4][256];
    static int next;
    char *u = buf[next++ % 4];
    const char *host = listener == L_127_0_0_1   ? "127.0.0.1"
                       : listener == L_127_0_0_2 ? "127.0.0.2"
                                                 : "[::1]";
    snprintf(u, 256, "http://%s:%d%s", host, srv.port[listener], path);
    return u;
}

static struct fetch_result get(struct fetcher *f, const char *u)
{
    struct fetch_request req = {.url = u, .accept = "text/css,*/*;q=0.1"};
    struct fetch_result r;
    fetcher_get(f, &req, &r);
    return r;
}

static void expect_error(struct fetcher *f, const char *u, enum fetch_error want)
{
    struct fetch_result r = get(f, u);
    if (r.error != want)
        fail_msg("%s: got %s, want %s", u, fetch_error_str(r.error), fetch_error_str(want));
    fetch_result_free(&r);
}

/* ---- responses ---- */

static void test_stylesheet_fetched_with_its_headers(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    struct fetch_result r = get(fx.f, url(L_127_0_0_1, "/css"));
    assert_int_equal(r.error, FETCH_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a:hover{color:red}");
    assert_int_equal(r.body_len, strlen("a:hover{color:red}"));
    assert_string_equal(r.content_type, "text/css; charset=utf-8");
    assert_string_equal(r.etag, "\"v1\"");
    assert_string_equal(r.cache_control, "max-age=60, public");
    assert_string_equal(r.last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_null(r.expires);
    assert_null(r.age);
    assert_string_equal(r.final_url, url(L_127_0_0_1, "/css"));
    fetch_result_free(&r);
    stop(&fx);
}

static void test_redirect_to_relative_location_keeps_only_final_headers(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    struct fetch_result r = get(fx.f, url(L_127_0_0_1, "/redirect"));
    assert_int_equal(r.error, FETCH_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.final_url, url(L_127_0_0_1, "/css"));
    assert_string_equal(r.body, "a:hover{color:red}");
    assert_string_equal(r.etag, "\"v1\"");
    assert_string_equal(r.cache_control, "max-age=60, public");
    assert_null(r.age); /* the 301 had one */
    fetch_result_free(&r);
    stop(&fx);
}

static void test_redirect_loop_stops_after_max_hops(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    int before = conns(L_127_0_0_1);
    struct fetch_result r = get(fx.f, url(L_127_0_0_1, "/loop"));
    assert_int_equal(r.error, FETCH_E_REDIRECTS);
    assert_int_equal(r.status, 302);
    assert_int_equal(conns(L_127_0_0_1) - before, 1 + 3); /* the request and 3 hops */
    fetch_result_free(&r);
    stop(&fx);
}

static void test_redirect_without_usable_location_refused(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    expect_error(fx.f, url(L_127_0_0_1, "/to-file"), FETCH_E_REDIRECTS);
    expect_error(fx.f, url(L_127_0_0_1, "/no-location"), FETCH_E_REDIRECTS);
    stop(&fx);
}

static void test_conditional_request_gets_304(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    struct fetch_request req = {.url = url(L_127_0_0_1, "/css"), .if_none_match = "\"v1\""};
    struct fetch_result r;
    assert_int_equal(fetcher_get(fx.f, &req, &r), 0);
    assert_int_equal(r.error, FETCH_OK);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.etag, "\"v1\"");
    fetch_result_free(&r);
    stop(&fx);
}

static void test_any_status_is_a_response(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    struct fetch_result r = get(fx.f, url(L_127_0_0_1, "/missing"));
    assert_int_equal(r.error, FETCH_OK);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "no such thing");
    fetch_result_free(&r);
    stop(&fx);
}

static void test_gzip_bomb_stops_at_max_bytes(void **state)
{
    (void)state;
    assert_true(srv.bomb_len < MAX_BYTES); /* small on the wire, huge decoded */
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    struct fetch_result r = get(fx.f, url(L_127_0_0_1, "/bomb"));
    assert_int_equal(r.error, FETCH_E_TOO_LARGE);
    assert_null(r.body);
    fetch_result_free(&r);
    expect_error(fx.f, url(L_127_0_0_1, "/big"), FETCH_E_TOO_LARGE);
    stop(&fx);
}

static void test_slow_drip_trips_the_total_timeout(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 300);
    expect_error(fx.f, url(L_127_0_0_1, "/drip"), FETCH_E_TIMEOUT);
    stop(&fx);
}

static void test_no_cookies_and_no_proxy_from_the_environment(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    /* main() set http_proxy to a closed port: used, it would fail the fetch. */
    struct fetch_result r = get(fx.f, url(L_127_0_0_1, "/set-cookie"));
    assert_int_equal(r.error, FETCH_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(r.body, "Accept: text/css,*/*;q=0.1\r\n"));
    assert_non_null(strstr(r.body, "User-Agent: cobrowse-test\r\n"));
    assert_null(strstr(r.body, "sid=secret"));
    assert_null(strstr(r.body, "Cookie"));
    fetch_result_free(&r);
    stop(&fx);
}

/* ---- the guard ---- */

static void expect_blocked(struct fetcher *f, const char *u, enum netguard_verdict why)
{
    struct fetch_result r = get(f, u);
    if (r.error != FETCH_E_BLOCKED)
        fail_msg("%s: got %s, want blocked", u, fetch_error_str(r.error));
    if (r.blocked != (int)why)
        fail_msg("%s: blocked as %s, want %s", u, netguard_verdict_str(r.blocked),
                 netguard_verdict_str(why));
    assert_int_equal(r.status, 0);
    fetch_result_free(&r);
}

static void test_loopback_refused_in_every_spelling_without_allow(void **state)
{
    (void)state;
    struct fixture fx;
    char u[128];
    start(&fx, "", 5000);
    int before[L_COUNT];
    for (int i = 0; i < L_COUNT; i++)
        before[i] = conns(i);
    expect_blocked(fx.f, url(L_127_0_0_1, "/css"), NETGUARD_LOOPBACK);
    snprintf(u, sizeof u, "http://localhost:%d/css", srv.port[L_127_0_0_1]);
    expect_blocked(fx.f, u, NETGUARD_LOOPBACK);
    expect_blocked(fx.f, url(L_IPV6, "/css"), NETGUARD_LOOPBACK);
    snprintf(u, sizeof u, "http://[::ffff:127.0.0.1]:%d/css", srv.port[L_127_0_0_1]);
    expect_blocked(fx.f, u, NETGUARD_EMBEDDED_V4);
    snprintf(u, sizeof u, "http://2130706433:%d/css", srv.port[L_127_0_0_1]);
    expect_blocked(fx.f, u, NETGUARD_LOOPBACK);
    for (int i = 0; i < L_COUNT; i++)
        assert_int_equal(conns(i), before[i]); /* not one connection reached the server */
    stop(&fx);
}

static void test_mapped_loopback_refused_even_with_loopback_allowed(void **state)
{
    (void)state;
    struct fixture fx;
    char u[128];
    start(&fx, "127.0.0.0/8", 5000);
    int before = conns(L_127_0_0_1);
    snprintf(u, sizeof u, "http://[::ffff:127.0.0.1]:%d/css", srv.port[L_127_0_0_1]);
    expect_blocked(fx.f, u, NETGUARD_EMBEDDED_V4);
    expect_blocked(fx.f, url(L_IPV6, "/css"), NETGUARD_LOOPBACK); /* ::1 is not 127/8 */
    assert_int_equal(conns(L_127_0_0_1), before);
    stop(&fx);
}

static void test_redirect_to_a_refused_address_blocked_at_the_second_hop(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.2/32", 5000);
    int before1 = conns(L_127_0_0_1), before2 = conns(L_127_0_0_2);
    struct fetch_result r = get(fx.f, url(L_127_0_0_2, "/css"));
    assert_int_equal(r.error, FETCH_OK); /* the allowed address works */
    fetch_result_free(&r);
    expect_blocked(fx.f, url(L_127_0_0_2, "/to-127.0.0.1"), NETGUARD_LOOPBACK);
    assert_int_equal(conns(L_127_0_0_2) - before2, 2);
    assert_int_equal(conns(L_127_0_0_1), before1);
    stop(&fx);
}

static void test_bad_urls_and_headers_refused_at_submit(void **state)
{
    (void)state;
    struct fixture fx;
    start(&fx, "127.0.0.0/8", 5000);
    char longurl[FETCH_URL_MAX + 64];
    int n = snprintf(longurl, sizeof longurl, "http://127.0.0.1:%d/", srv.port[L_127_0_0_1]);
    memset(longurl + n, 'a', FETCH_URL_MAX + 1 - (size_t)n);
    longurl[FETCH_URL_MAX + 1] = '\0';
    const char *bad[] = {
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "http://user:pass@127.0.0.1/",
        "http://user@127.0.0.1/",
        "/relative/path",
        "",
        "http://",
        "not a url",
        longurl,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fetch_request req = {.url = bad[i]};
        struct fetch_result r;
        if (fetcher_get(fx.f, &req, &r) != -1 || r.error != FETCH_E_URL)
            fail_msg("\"%.60s\": got %s", bad[i], fetch_error_str(r.error));
        fetch_result_free(&r);
    }
    struct fetch_request req = {.url = url(L_127_0_0_1, "/css"),
                                .if_none_match = "\"v1\"\r\nCookie: x=1"};
    assert_int_equal(fetcher_submit(fx.f, &req, NULL, NULL), -FETCH_E_URL);
    longurl[FETCH_URL_MAX] = '\0'; /* exactly the limit is fine */
    struct fetch_result r = get(fx.f, longurl);
    assert_int_equal(r.error, FETCH_OK);
    assert_int_equal(r.status, 404);
    fetch_result_free(&r);
    stop(&fx);
}

/* ---- queue and shutdown ---- */

struct counter {
    pthread_mutex_t mu;
    int calls, shutdown;
};

static void count_done(void *arg, struct fetch_result *r)
{
    struct counter *c = arg;
    pthread_mutex_lock(&c->mu);
    c->calls++;
    c->shutdown += r->error == FETCH_E_SHUTDOWN;
    pthread_mutex_unlock(&c->mu);
    fetch_result_free(r);
}

static void test_queue_bound_and_shutdown_end_every_fetch(void **state)
{
    (void)state;
    struct netguard *g = NULL;
    char err[64];
    assert_int_equal(netguard_new("127.0.0.0/8", &g, err, sizeof err), 0);
    struct fetch_config cfg = {.guard = g,
                               .connect_timeout_ms = 2000,
                               .total_timeout_ms = 60000,
                               .max_bytes = MAX_BYTES,
                               .max_redirects = 3,
                               .max_parallel = 1,
                               .max_queued = 1};
    struct fetcher *f = fetcher_start(&cfg);
    assert_non_null(f);
    struct counter c = {.calls = 0, .shutdown = 0};
    pthread_mutex_init(&c.mu, NULL);
    struct fetch_request req = {.url = url(L_127_0_0_1, "/drip")};
    int accepted = 0, busy = 0;
    for (int i = 0; i < 3; i++) {
        int rc = fetcher_submit(f, &req, count_done, &c);
        accepted += rc == 0;
        busy += rc == -FETCH_E_BUSY;
    }
    /* One may have left the queue for the single transfer slot; the third never fits. */
    assert_true(accepted >= 1 && accepted <= 2);
    assert_int_equal(accepted + busy, 3);
    fetcher_stop(f);
    assert_int_equal(c.calls, accepted);
    assert_int_equal(c.shutdown, accepted);
    pthread_mutex_destroy(&c.mu);
    netguard_free(g);
}

static void test_bad_config_refused(void **state)
{
    (void)state;
    struct fetch_config cfg = {
        .connect_timeout_ms = 1000, .total_timeout_ms = 1000, .max_bytes = 0, .max_parallel = 1};
    assert_null(fetcher_start(&cfg));
    cfg.max_bytes = 1;
    cfg.max_parallel = 0;
    assert_null(fetcher_start(&cfg));
}

int main(void)
{
    /* Proof that the fetcher ignores the environment's proxy (a closed port on loopback). */
    setenv("http_proxy", "http://127.0.0.1:9/", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:9/", 1);
    setenv("all_proxy", "http://127.0.0.1:9/", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stylesheet_fetched_with_its_headers),
        cmocka_unit_test(test_redirect_to_relative_location_keeps_only_final_headers),
        cmocka_unit_test(test_redirect_loop_stops_after_max_hops),
        cmocka_unit_test(test_redirect_without_usable_location_refused),
        cmocka_unit_test(test_conditional_request_gets_304),
        cmocka_unit_test(test_any_status_is_a_response),
        cmocka_unit_test(test_gzip_bomb_stops_at_max_bytes),
        cmocka_unit_test(test_slow_drip_trips_the_total_timeout),
        cmocka_unit_test(test_no_cookies_and_no_proxy_from_the_environment),
        cmocka_unit_test(test_loopback_refused_in_every_spelling_without_allow),
        cmocka_unit_test(test_mapped_loopback_refused_even_with_loopback_allowed),
        cmocka_unit_test(test_redirect_to_a_refused_address_blocked_at_the_second_hop),
        cmocka_unit_test(test_bad_urls_and_headers_refused_at_submit),
        cmocka_unit_test(test_queue_bound_and_shutdown_end_every_fetch),
        cmocka_unit_test(test_bad_config_refused),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
