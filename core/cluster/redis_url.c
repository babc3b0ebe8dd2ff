/* The Redis URL (core/cluster/redis_url.h). */
#include "core/cluster/redis_url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"

static int fail(char *err, unsigned size, const char *why)
{
    snprintf(err, size, "%s", why);
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies [p, p+n) into out (size bytes) decoding %XX; -1 when it does not fit or is malformed. */
static int decode(const char *p, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= size)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_int(const char *p, size_t n, int max, int *out)
{
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* [[user]:password@] at the start of rest; advances *rest past it. */
static int userinfo(const char **rest, struct redis_url *u, char *err, unsigned size)
{
    const char *at = strchr(*rest, '@');
    if (at == NULL || (size_t)(at - *rest) > strcspn(*rest, "/?#"))
        return 0; /* no credentials (an @ further on belongs to a path) */
    const char *colon = memchr(*rest, ':', (size_t)(at - *rest));
    if (colon == NULL)
        return fail(err, size, "the credentials must be [user]:password@");
    if (decode(*rest, (size_t)(colon - *rest), u->user, sizeof(u->user)) != 0 ||
        decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof(u->password)) != 0)
        return fail(err, size, "the user or password is malformed or too long");
    *rest = at + 1;
    return 0;
}

static int parse_tcp(const char *rest, struct redis_url *u, char *err, unsigned size)
{
    if (userinfo(&rest, u, err, size) != 0)
        return -1;
    const char *end = rest + strcspn(rest, "/?#");
    const char *host = rest, *host_end, *port = NULL;
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL)
            return fail(err, size, "an IPv6 address needs its closing ]");
        host++;
        if (host_end + 1 < end) {
            if (host_end[1] != ':')
                return fail(err, size, "expected :port after the IPv6 address");
            port = host_end + 2;
        }
    } else {
        host_end = memchr(host, ':', (size_t)(end - host));
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = end;
    }
    size_t hn = (size_t)(host_end - host);
    if (hn == 0 || hn >= sizeof(u->host))
        return fail(err, size, "the host is missing or too long");
    for (size_t i = 0; i < hn; i++)
        if (!isalnum((unsigned char)host[i]) && strchr(".-_:", host[i]) == NULL)
            return fail(err, size, "the host has a character a host name cannot have");
    memcpy(u->host, host, hn);
    u->host[hn] = '\0';
    if (port != NULL &&
        (parse_int(port, (size_t)(end - port), 65535, &u->port) != 0 || u->port == 0))
        return fail(err, size, "the port must be 1 to 65535");
    if (*end == '/' && end[1] != '\0' && parse_int(end + 1, strlen(end + 1), 1000000, &u->db) != 0)
        return fail(err, size, "the database must be a number after the last /");
    if (*end == '?' || *end == '#')
        return fail(err, size, "redis:// takes no query or fragment");
    return 0;
}

static int parse_unix(const char *rest, struct redis_url *u, char *err, unsigned size)
{
    if (userinfo(&rest, u, err, size) != 0)
        return -1;
    if (*rest != '/')
        return fail(err, size, "unix:// needs an absolute socket path");
    const char *q = strchr(rest, '?');
    size_t n = q ? (size_t)(q - rest) : strlen(rest);
    if (n >= sizeof(u->path))
        return fail(err, size, "the socket path is too long");
    memcpy(u->path, rest, n);
    u->path[n] = '\0';
    if (q != NULL &&
        (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 1000000, &u->db) != 0))
        return fail(err, size, "unix:// takes only ?db=N");
    return 0;
}

int redis_url_parse(const char *url, struct redis_url *out, char *err, unsigned err_size)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url == NULL || strlen(url) > 1024)
        return fail(err, err_size, "no URL, or longer than 1024 bytes");
    if (strncmp(url, "redis://", 8) == 0)
        return parse_tcp(url + 8, out, err, err_size);
    if (strncmp(url, "unix://", 7) == 0) {
        out->port = 0;
        return parse_unix(url + 7, out, err, err_size);
    }
    return fail(err, err_size, "the URL must start with redis:// or unix://");
}

const char *redis_url_redacted(const struct redis_url *u, char *out, unsigned size)
{
    const char *cred = u->password[0] ? "***@" : "";
    if (u->path[0])
        snprintf(out, size, "unix://%s%s?db=%d", cred, u->path, u->db);
    else if (strchr(u->host, ':'))
        snprintf(out, size, "redis://%s[%s]:%d/%d", cred, u->host, u->port, u->db);
    else
        snprintf(out, size, "redis://%s%s:%d/%d", cred, u->host, u->port, u->db);
    return out;
}

int redis_url_resolve(const char *host, char *out, size_t size)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        snprintf(out, size, "%s", host);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    int ok = rc == 0 && res != NULL;
    if (ok) {
        const void *addr = res->ai_family == AF_INET6
                               ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                               : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
        ok = inet_ntop(res->ai_family, addr, out, (socklen_t)size) != NULL;
    }
    if (res != NULL)
        freeaddrinfo(res);
    if (!ok)
        log_json(LOG_ERROR, "cannot resolve the redis host",
                 json_pack("{s:s, s:s, s:s}", "host", host, "why",
                           rc ? gai_strerror(rc) : "no usable address", "hint",
                           "check --redis-url, or give an IP address or a unix:// socket"));
    return ok ? 0 : -1;
}
