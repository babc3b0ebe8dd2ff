/* A small synchronous Redis client for threads that may block (hiredis 0.14, blocking API): the
 * proxy's listener threads (a thread per connection, api/listen.c) store and read the visitors'
 * uploaded stylesheets with it (core/proxy/proxy_upload_redis.c). The relay thread must never
 * use it: the relay has its asynchronous client (core/cluster/cluster.h).
 *
 * A pool of up to `pool` connections, each used by one thread at a time. Why a pool and not one
 * connection under a mutex: every stylesheet request of the proxy asks Redis first (is there an
 * uploaded copy?), so one connection would queue those lookups behind any other thread's 1 MiB
 * upload; a few connections keep them apart, and a bound keeps a node's connections to Redis
 * few. A thread that finds every connection busy waits for one (each is held for at most the
 * connect and command timeouts).
 *
 * Connections are made lazily, on the first command that needs one, with AUTH and SELECT from the
 * URL (core/cluster/redis_url.h). A connection that failed (I/O error, timeout, protocol error)
 * is closed; the next command on that slot connects again. A command on a connection that had
 * been idle and turns out to be closed by the server (Redis restarted) is retried once on a new
 * connection, so a restart costs no failed command; callers only send commands that may run
 * twice. After a failed connect, commands fail at once for `retry_ms` (no connect per request
 * while Redis is down). An outage is logged once when it starts and once when it ends, with the
 * URL redacted (never the password).
 *
 * The process must ignore SIGPIPE (hiredis writes with write(2)); cobrowsed does (lws sets it when
 * the relay starts; unit tests set it themselves).
 *
 * Ownership: kv_new copies the config; kv_free closes every connection (no command may be running).
 * Replies belong to the caller (freeReplyObject). Threading: kv_command, kv_eval and kv_stats from
 * any thread at once; kv_new and kv_free from one thread, before and after them.
 */
#ifndef COBROWSE_CORE_CLUSTER_KV_H
#define COBROWSE_CORE_CLUSTER_KV_H

#include <hiredis/hiredis.h>
#include <stddef.h>

struct kv;

struct kv_config {
    const char *url;        /* redis:// or unix:// (core/cluster/redis_url.h) */
    int pool;               /* connections at most (>= 1) */
    int connect_timeout_ms; /* a connect, and each of AUTH and SELECT */
    int command_timeout_ms; /* one command's send and reply */
    int retry_ms;           /* after a failed connect, commands fail at once this long (>= 0) */
};

/* Connects nothing yet. NULL on a bad URL or config (logged, without secrets) or out of memory. */
struct kv *kv_new(const struct kv_config *cfg);
void kv_free(struct kv *kv);

/* One command: argc arguments, argv[i] of lens[i] bytes (binary-safe). Returns the reply
 * (freeReplyObject it), which may be an error reply (REDIS_REPLY_ERROR: Redis refused it, e.g.
 * OOM or WRONGTYPE; the caller logs it), or NULL when Redis could not be reached or the connection
 * failed (logged here, once per outage). */
redisReply *kv_command(struct kv *kv, int argc, const char **argv, const size_t *lens);

/* A Lua script run with EVALSHA; after NOSCRIPT (a restart, SCRIPT FLUSH) it is loaded again and
 * run once more. kv_script_init computes the SHA-1 (0, or -1 on a libcrypto failure); `source`
 * must outlive the script (a string literal). */
struct kv_script {
    const char *source;
    char sha[41];
};
int kv_script_init(struct kv_script *s, const char *source);
/* EVALSHA sha nkeys args...: args[0..nkeys) are the keys. Replies as kv_command. */
redisReply *kv_eval(struct kv *kv, const struct kv_script *s, int nkeys, int argc,
                    const char **argv, const size_t *lens);

/* Counters since kv_new (relaxed atomics: any thread). failures: commands answered NULL;
 * connects: connections made (a reconnect is a connect after the first of its slot). */
struct kv_stats {
    unsigned long long commands, failures, connects;
};
void kv_stats(struct kv *kv, struct kv_stats *out);

#endif
