/* What crosses the fetcher's files (fetch.h), private to core/net/fetch*.c: fetch.c (the
 * thread, the queue, the multi loop, the public API) and fetch_hop.c (one transfer: URL checks,
 * the easy handle, callbacks, redirects).
 * Threading: a struct job belongs to the submitting thread until it is queued, then to the
 * fetcher thread; struct fetcher's fields say which lock or thread guards them. */
#ifndef COBROWSE_CORE_NET_FETCH_INTERNAL_H
#define COBROWSE_CORE_NET_FETCH_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>

#include "core/net/fetch.h"

struct job {
    struct job *next;
    struct fetcher *f;
    char *url; /* this hop's URL, normalized */
    struct curl_slist *headers;
    int post;   /* the request is a POST of body[0..body_len) */
    char *body; /* owned */
    size_t body_len;
    fetch_done_fn done;
    void *arg;
    CURL *easy;
    int hops;
    double submitted, deadline; /* monotonic seconds */
    int blocked;                /* the guard's verdict on a refused address of this hop */
    int too_large;
    char *buf;
    size_t len, cap;
    struct fetch_result res;
};

struct fetcher {
    struct fetch_config cfg;
    char *user_agent;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    struct job *qhead, *qtail; /* waiting to start; guarded by mu */
    int queued;                /* guarded by mu */
    int stopping;              /* guarded by mu */
    struct job *active;        /* fetcher thread only */
    int nactive;               /* written by the fetcher thread under mu */
    unsigned long long refused_busy, ended[FETCH_E_OTHER + 1]; /* guarded by mu */
};

/* ---- fetch_hop.c ---- */

/* Resolves ref against base (NULL: ref must be absolute) and checks it; the normalized URL
 * (malloc'd, the caller frees it) in *out, or a fetch_error. Any thread. */
int fetch_url_check(const char *base, const char *ref, char **out);

/* Appends "name: value" to *list (value NULL: nothing); refuses CR, LF and overlong values
 * (FETCH_E_URL). Returns a fetch_error. Any thread. */
int fetch_add_header(struct curl_slist **list, const char *name, const char *value);

/* Appends a caller's "Name: value" line to *list, refused (FETCH_E_URL) like fetch_add_header's
 * values and without a colon. Returns a fetch_error. Any thread. */
int fetch_add_header_line(struct curl_slist **list, const char *line);

/* Starts the job's current hop in the multi handle (the easy handle made on the first hop).
 * Returns FETCH_OK or the error to end the job with. Fetcher thread. */
enum fetch_error fetch_hop_start(struct job *j);

/* fetch_hop_done's answer when a redirect's next hop is under way (the job goes on). */
#define FETCH_HOP_STARTED (-1)

/* A hop's transfer ended with code: starts the next hop of a redirect and returns
 * FETCH_HOP_STARTED, or returns how the job ends (an enum fetch_error; the caller finishes the
 * job), so that this file never calls back into fetch.c. Fetcher thread. */
int fetch_hop_done(struct job *j, CURLcode code);

#endif
