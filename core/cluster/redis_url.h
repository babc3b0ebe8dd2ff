/* Parses the Redis URL of --redis-url / COBROWSE_REDIS_URL:
 *   redis://[[user]:password@]host[:port][/db]      (TCP; port 6379, db 0 by default)
 *   unix://[[user]:password@]/path/to/socket[?db=N]
 * Host may be a name, an IPv4 address or a bracketed IPv6 address. Percent-escapes in the user
 * and password are decoded. Pure function, any thread. */
#ifndef COBROWSE_CORE_CLUSTER_REDIS_URL_H
#define COBROWSE_CORE_CLUSTER_REDIS_URL_H

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

#endif
