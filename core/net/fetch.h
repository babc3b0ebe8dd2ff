/* The outbound HTTP fetcher of the stylesheet proxy (docs/proxy.md, "Fetching") and of the
 * webhook dispatcher (docs/webhooks.md, "Delivery"): one thread running a libcurl multi handle,
 * so that DNS, connects, TLS and downloads never run on the relay thread, hold an HTTP worker
 * busy beyond waiting for its own answer, or hold the dispatcher's database work.
 *
 * Every fetch: http and https only (also for redirects); the SSRF guard (netguard.h) checked on
 * every connection at connect time; redirects followed by the fetcher itself, each hop's URL
 * checked again (scheme, length), at most cfg.max_redirects hops (or none with cfg.no_redirects:
 * a 3xx is then the response); no cookies, no credentials
 * (user:pass in a URL is refused), no proxy from the environment; a connect and a total timeout;
 * the body (after content decoding) bounded by cfg.max_bytes, refused as it grows past it.
 * Threading: fetcher_start/fetcher_stop from the thread that owns the fetcher (the composition
 * root); fetcher_submit, fetcher_get and fetcher_stats from any thread. Callbacks run on the
 * fetcher thread and must not block.
 */
#ifndef COBROWSE_CORE_NET_FETCH_H
#define COBROWSE_CORE_NET_FETCH_H

#include <stddef.h>

struct netguard;
struct fetcher;

/* The longest URL fetched, the first one and every redirect target (docs/proxy.md). */
#define FETCH_URL_MAX 2048

struct fetch_config {
    const struct netguard *guard; /* owned by the caller, outlives the fetcher; NULL allows no
                                     private range */
    long connect_timeout_ms;      /* per connection */
    long total_timeout_ms;        /* per fetch, all redirect hops together, from the moment it
                                     leaves the queue */
    size_t max_bytes;             /* decoded body */
    int max_redirects;            /* hops after the first request */
    int max_parallel;             /* transfers at once; more wait in a queue */
    int max_queued;               /* beyond this, fetcher_submit refuses (FETCH_E_BUSY) */
    const char *user_agent;
    int no_redirects; /* 1: a 3xx is returned as the response (FETCH_OK), never followed (the
                         webhooks: a receiver must not bounce a signed POST elsewhere) */
    int keep_prefix;  /* 1: a body past max_bytes is cut there (the rest read and dropped)
                         rather than failing with FETCH_E_TOO_LARGE (the webhooks keep an
                         excerpt of any answer) */
};

enum fetch_error {
    FETCH_OK = 0,
    FETCH_E_URL,       /* not an absolute http(s) URL, credentials in it, or too long */
    FETCH_E_BLOCKED,   /* the guard refused an address (result.blocked says why) */
    FETCH_E_DNS,       /* the name did not resolve */
    FETCH_E_CONNECT,   /* connection refused or reset, TLS failure */
    FETCH_E_TIMEOUT,   /* connect or total timeout */
    FETCH_E_TOO_LARGE, /* body over max_bytes */
    FETCH_E_REDIRECTS, /* more than max_redirects, or a redirect without a usable Location */
    FETCH_E_BUSY,      /* the queue is full */
    FETCH_E_SHUTDOWN,  /* the fetcher stopped before the fetch ended */
    FETCH_E_NOMEM,
    FETCH_E_OTHER,
};

struct fetch_request {
    const char *url;               /* absolute http(s) URL */
    const char *accept;            /* Accept header value, or NULL */
    const char *if_none_match;     /* validator for a conditional request, or NULL */
    const char *if_modified_since; /* validator for a conditional request, or NULL */
    const char *method;            /* "POST", or NULL for GET */
    const char *body;              /* POST only: the request body (copied), body_len bytes */
    size_t body_len;
    /* Extra header lines ("Name: value"), NULL-terminated, or NULL; at most FETCH_MAX_HEADERS,
     * each refused (FETCH_E_URL) with CR, LF, no colon or over 1,024 bytes. */
    const char *const *headers;
};

#define FETCH_MAX_HEADERS 16

/* What a finished fetch gives. Strings are malloc'd and NUL-terminated, or NULL when absent;
 * fetch_result_free releases them. */
struct fetch_result {
    enum fetch_error error;
    int blocked;        /* enum netguard_verdict when error == FETCH_E_BLOCKED */
    long status;        /* the final response's HTTP status (0 without a response) */
    char *final_url;    /* the URL after redirects */
    char *content_type; /* as sent, parameters included */
    char *etag;
    char *last_modified;
    char *cache_control;
    char *expires;
    char *date;
    char *age;
    char *retry_after; /* as sent: delta seconds or an HTTP date */
    char *body;        /* decoded body, NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    long elapsed_ms;
};

void fetch_result_free(struct fetch_result *r);
const char *fetch_error_str(enum fetch_error e);

/* Called once per submitted fetch on the fetcher thread; takes ownership of the strings of *r:
 * r itself points to the fetcher's memory, valid only during the call, so copy the struct
 * (`struct fetch_result mine = *r;`) and later fetch_result_free(&mine), on any thread. */
typedef void (*fetch_done_fn)(void *arg, struct fetch_result *r);

/* Starts the fetcher thread (and calls curl_global_init; fetcher_stop balances it). Returns
 * NULL (logged) on failure or a config out of range. cfg is copied, user_agent included. */
struct fetcher *fetcher_start(const struct fetch_config *cfg);
/* Stops the thread: fetches in flight and queued end with FETCH_E_SHUTDOWN (their callbacks
 * run), then frees the fetcher. NULL-safe. */
void fetcher_stop(struct fetcher *f);

/* Queues a fetch; req's strings are copied. Returns 0 (done will be called exactly once), or a
 * negative code (done is not called): -FETCH_E_BUSY, -FETCH_E_URL (also for a header value
 * with CR or LF, or over 1,024 bytes), -FETCH_E_NOMEM, -FETCH_E_SHUTDOWN (fetcher_stop has
 * begun). */
int fetcher_submit(struct fetcher *f, const struct fetch_request *req, fetch_done_fn done,
                   void *arg);

/* Submits and waits for the result on the calling thread (an HTTP worker; never the fetcher
 * thread, i.e. not from a done callback). Always fills *out (out->error says how it went;
 * fetch_result_free(out) after); returns 0 when a response came, else -1. */
int fetcher_get(struct fetcher *f, const struct fetch_request *req, struct fetch_result *out);

/* Counters for /metrics, read under the fetcher's lock. */
struct fetcher_stats {
    int queued;                                  /* waiting for a transfer slot */
    int active;                                  /* transfers in progress (<= max_parallel) */
    unsigned long long refused_busy;             /* submits refused with FETCH_E_BUSY */
    unsigned long long ended[FETCH_E_OTHER + 1]; /* fetches ended, by enum fetch_error */
};
void fetcher_stats(struct fetcher *f, struct fetcher_stats *out);

#endif
