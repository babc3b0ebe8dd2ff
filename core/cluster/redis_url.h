/* Parses the Redis URL of --redis-url / COBROWSE_REDIS_URL:
 *   redis://[[user]:password@]host[:port][/db]      (TCP; port 6379, db 0 by default)
 *   unix://[[user]:password@]/path/to/socket[?db=N]
 * Host may be a name, an IPv4 address or a bracketed IPv6 address. Percent-escapes in the user
 * and password are decoded. Any thread; no state (redis_url_resolve may block on DNS). */
#ifndef COBROWSE_CORE_CLUSTER_REDIS_URL_H
#define COBROWSE_CORE_CLUSTER_REDIS_URL_H

#include <stddef.h>

struct redis_url {
    char host[256]; /* empty for unix:// */
    int port;
    char path[108]; /* the socket's path for unix://, else empty */
    char user[64];
    char password[256];
    int db;
};

/* 0 with *out filled, or -1 with a one-line reason in err (no secret in it). */
int redis_url_parse(const char *url, struct redis_url *out, char *err, unsigned err_size);
/* The URL without its password (for logs), into out; returns out. */
const char *redis_url_redacted(const struct redis_url *u, char *out, unsigned size);

/* The address of host (a name is looked up with getaddrinfo, which blocks; an address is copied)
 * as text into out: 0, or -1 (logged, with what to do). cluster_new calls it once, on the thread
 * that starts the relay, because hiredis would otherwise resolve a name at each reconnect on the
 * relay's loop. */
int redis_url_resolve(const char *host, char *out, size_t size);

#endif
