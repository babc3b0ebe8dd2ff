/* The fetcher test's HTTP server (loopback_server.h). */
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

#include "tests/unit/core/net/loopback_server.h"

struct lsrv lsrv;

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
    struct pollfd p = {.fd = lsrv.stop[0], .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* The whole request is in buf[0..len): its head and as many body bytes as Content-Length says. */
static int request_complete(const char *buf, size_t len)
{
    const char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL)
        return 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    return len >= (size_t)(end + 4 - buf) + want;
}

/* Reads the request (head and body) into buf (NUL-terminated); -1 on close or stop. */
static int read_request(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = lsrv.stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents != 0)
            return -1;
        ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (request_complete(buf, len))
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

/* Returns 1 when it kept fd open ("/hold"), else 0: the caller closes it. */
static int handle(int fd)
{
    char req[8192], hdr[512];
    if (read_request(fd, req, sizeof req) != 0)
        return 0;
    char path[256] = "";
    sscanf(req, "%*s %255s ", path);
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
        snprintf(hdr, sizeof hdr, "Location: http://127.0.0.1:%d/css\r\n", lsrv.port[L_127_0_0_1]);
        respond(fd, "302 Found", hdr, "");
    } else if (strcmp(path, "/set-cookie") == 0) {
        respond(fd, "302 Found", "Set-Cookie: sid=secret; Path=/\r\nLocation: /echo\r\n", "");
    } else if (strcmp(path, "/echo") == 0) {
        respond(fd, "200 OK", "Content-Type: text/plain\r\n", req);
    } else if (strcmp(path, "/busy") == 0) {
        respond(fd, "503 Service Unavailable", "Retry-After: 120\r\n", "try later");
    } else if (strcmp(path, "/bomb") == 0) {
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/css\r\n"
                 "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
                 lsrv.bomb_len);
        if (send_all(fd, hdr, strlen(hdr)) == 0)
            send_all(fd, lsrv.bomb, lsrv.bomb_len);
    } else if (strcmp(path, "/big") == 0) {
        static char big[MAX_BYTES + 2];
        memset(big, 'x', MAX_BYTES + 1);
        respond(fd, "200 OK", "", big);
    } else if (strcmp(path, "/drip") == 0) {
        drip(fd);
    } else if (strcmp(path, "/hold") == 0) {
        pthread_mutex_lock(&lsrv.mu);
        int keep = lsrv.nheld < MAX_HELD;
        if (keep) {
            lsrv.held[lsrv.nheld++] = fd;
            if (lsrv.nheld > lsrv.max_held)
                lsrv.max_held = lsrv.nheld;
        }
        pthread_mutex_unlock(&lsrv.mu);
        return keep;
    } else {
        respond(fd, "404 Not Found", "Content-Type: text/plain\r\n", "no such thing");
    }
    return 0;
}

/* A held connection became readable: the client closed it (it sends nothing more). */
static void drop_held(int i)
{
    char b[64];
    if (recv(lsrv.held[i], b, sizeof b, MSG_DONTWAIT) > 0)
        return;
    close(lsrv.held[i]);
    pthread_mutex_lock(&lsrv.mu);
    lsrv.held[i] = lsrv.held[--lsrv.nheld];
    pthread_mutex_unlock(&lsrv.mu);
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[L_COUNT + 1 + MAX_HELD];
        int nheld = lsrv.nheld; /* only this thread changes it */
        for (int i = 0; i < L_COUNT; i++)
            p[i] = (struct pollfd){.fd = lsrv.lfd[i], .events = POLLIN};
        p[L_COUNT] = (struct pollfd){.fd = lsrv.stop[0], .events = POLLIN};
        for (int i = 0; i < nheld; i++)
            p[L_COUNT + 1 + i] = (struct pollfd){.fd = lsrv.held[i], .events = POLLIN};
        if (poll(p, (nfds_t)(L_COUNT + 1 + nheld), -1) < 0 && errno != EINTR)
            break;
        if (p[L_COUNT].revents != 0)
            break;
        for (int i = nheld - 1; i >= 0; i--)
            if (p[L_COUNT + 1 + i].revents != 0)
                drop_held(i);
        for (int i = 0; i < L_COUNT; i++) {
            if (p[i].revents == 0)
                continue;
            int fd = accept4(lsrv.lfd[i], NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            pthread_mutex_lock(&lsrv.mu);
            lsrv.conns[i]++;
            pthread_mutex_unlock(&lsrv.mu);
            if (!handle(fd))
                close(fd);
        }
    }
    for (int i = 0; i < lsrv.nheld; i++)
        close(lsrv.held[i]);
    return NULL;
}

static void make_bomb(void)
{
    unsigned char *zeros = calloc(1, BOMB_SIZE);
    lsrv.bomb = malloc(BOMB_SIZE / 100);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = zeros;
    z.avail_in = BOMB_SIZE;
    z.next_out = lsrv.bomb;
    z.avail_out = BOMB_SIZE / 100;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    lsrv.bomb_len = z.total_out;
    deflateEnd(&z);
    free(zeros);
}

int lsrv_start(void **state)
{
    (void)state;
    memset(&lsrv, 0, sizeof lsrv);
    lsrv.lfd[L_127_0_0_1] = listen_on(AF_INET, "127.0.0.1", &lsrv.port[L_127_0_0_1]);
    lsrv.lfd[L_127_0_0_2] = listen_on(AF_INET, "127.0.0.2", &lsrv.port[L_127_0_0_2]);
    if (lsrv.lfd[L_127_0_0_1] < 0 || lsrv.lfd[L_127_0_0_2] < 0)
        return -1;
    /* Containers may have no ::1; the [::1] cases still hold there (a broken guard would get
     * "connection refused", not "blocked"), they only lose the connection count. poll skips
     * a negative fd. */
    lsrv.lfd[L_IPV6] = listen_on(AF_INET6, "::1", &lsrv.port[L_IPV6]);
    if (lsrv.lfd[L_IPV6] < 0)
        lsrv.port[L_IPV6] = lsrv.port[L_127_0_0_1];
    make_bomb();
    if (pipe(lsrv.stop) != 0)
        return -1;
    pthread_mutex_init(&lsrv.mu, NULL);
    return pthread_create(&lsrv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

int lsrv_stop(void **state)
{
    (void)state;
    if (write(lsrv.stop[1], "x", 1) != 1)
        return -1;
    pthread_join(lsrv.thread, NULL);
    for (int i = 0; i < L_COUNT; i++)
        if (lsrv.lfd[i] >= 0)
            close(lsrv.lfd[i]);
    close(lsrv.stop[0]);
    close(lsrv.stop[1]);
    pthread_mutex_destroy(&lsrv.mu);
    free(lsrv.bomb);
    return 0;
}

int lsrv_conns(int listener)
{
    pthread_mutex_lock(&lsrv.mu);
    int n = lsrv.conns[listener];
    pthread_mutex_unlock(&lsrv.mu);
    return n;
}

int lsrv_held(void)
{
    pthread_mutex_lock(&lsrv.mu);
    int n = lsrv.nheld;
    pthread_mutex_unlock(&lsrv.mu);
    return n;
}
