/* The outbound fetcher: one thread driving a libcurl multi handle. See fetch.h.
 *
 * This file holds the thread, the queue and the multi loop, and ends jobs; one transfer's setup,
 * callbacks and redirects are in fetch_hop.c, what crosses the two files in fetch_internal.h.
 */
#include "core/net/fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/net/fetch_internal.h"

/* The longest time curl_multi_poll sleeps without being woken: a safety net only, since
 * fetcher_submit and fetcher_stop wake it. */
#define FETCH_POLL_MS 1000

void fetch_result_free(struct fetch_result *r)
{
    if (r == NULL)
        return;
    free(r->final_url);
    free(r->content_type);
    free(r->etag);
    free(r->last_modified);
    free(r->cache_control);
    free(r->expires);
    free(r->date);
    free(r->age);
    free(r->retry_after);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *fetch_error_str(enum fetch_error e)
{
    switch (e) {
    case FETCH_OK:
        return "ok";
    case FETCH_E_URL:
        return "url";
    case FETCH_E_BLOCKED:
        return "blocked";
    case FETCH_E_DNS:
        return "dns";
    case FETCH_E_CONNECT:
        return "connect";
    case FETCH_E_TIMEOUT:
        return "timeout";
    case FETCH_E_TOO_LARGE:
        return "too_large";
    case FETCH_E_REDIRECTS:
        return "redirects";
    case FETCH_E_BUSY:
        return "busy";
    case FETCH_E_SHUTDOWN:
        return "shutdown";
    case FETCH_E_NOMEM:
        return "nomem";
    case FETCH_E_OTHER:
        return "other";
    }
    return "unknown";
}
/* ---- jobs (fetcher thread) ---- */

static void job_free(struct job *j)
{
    if (j->easy != NULL)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->headers);
    free(j->body);
    free(j->url);
    free(j->buf);
    fetch_result_free(&j->res);
    free(j);
}

/* Ends a job: fills the result, hands it to the callback and frees the rest. The job must not
 * be in the multi handle. */
static void fetch_job_finish(struct job *j, enum fetch_error err)
{
    struct fetcher *f = j->f;
    j->res.error = err;
    if (err == FETCH_E_BLOCKED)
        j->res.blocked = j->blocked;
    if (err != FETCH_OK) {
        free(j->res.body);
        j->res.body = NULL;
        j->res.body_len = 0;
    }
    if (j->res.final_url == NULL) {
        j->res.final_url = j->url;
        j->url = NULL;
    }
    j->res.elapsed_ms = (long)((time_monotonic() - j->submitted) * 1000.0);
    int was_active = 0;
    for (struct job **pp = &f->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            was_active = 1;
            break;
        }
    }
    pthread_mutex_lock(&f->mu);
    f->nactive -= was_active;
    f->ended[err]++;
    pthread_mutex_unlock(&f->mu);
    struct fetch_result res = j->res;
    fetch_done_fn done = j->done;
    void *arg = j->arg;
    memset(&j->res, 0, sizeof j->res);
    job_free(j);
    done(arg, &res);
}
static void drain_messages(struct fetcher *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct job *j = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        int end = fetch_hop_done(j, m->data.result);
        if (end != FETCH_HOP_STARTED)
            fetch_job_finish(j, (enum fetch_error)end);
    }
}

/* Moves queued jobs into the active set up to max_parallel; returns 1 when stopping. */
static int take_queued(struct fetcher *f, struct job **taken)
{
    pthread_mutex_lock(&f->mu);
    int stopping = f->stopping;
    while (!stopping && f->qhead != NULL && f->nactive < f->cfg.max_parallel) {
        struct job *j = f->qhead;
        f->qhead = j->next;
        if (f->qhead == NULL)
            f->qtail = NULL;
        f->queued--;
        f->nactive++;
        j->next = *taken;
        *taken = j;
    }
    pthread_mutex_unlock(&f->mu);
    return stopping;
}

static void start_taken(struct fetcher *f, struct job *taken)
{
    while (taken != NULL) {
        struct job *j = taken;
        taken = j->next;
        j->next = f->active;
        f->active = j;
        j->deadline = time_monotonic() + (double)f->cfg.total_timeout_ms / 1000.0;
        enum fetch_error err = fetch_hop_start(j);
        if (err != FETCH_OK)
            fetch_job_finish(j, err);
    }
}

/* Every job in flight or waiting ends with FETCH_E_SHUTDOWN, its callback called. */
static void shutdown_all(struct fetcher *f)
{
    while (f->active != NULL) {
        struct job *j = f->active;
        curl_multi_remove_handle(f->multi, j->easy); /* harmless when not added */
        fetch_job_finish(j, FETCH_E_SHUTDOWN);
    }
    pthread_mutex_lock(&f->mu);
    struct job *q = f->qhead;
    f->qhead = f->qtail = NULL;
    f->queued = 0;
    pthread_mutex_unlock(&f->mu);
    while (q != NULL) {
        struct job *j = q;
        q = j->next;
        fetch_job_finish(j, FETCH_E_SHUTDOWN);
    }
}

static void *fetcher_main(void *arg)
{
    struct fetcher *f = arg;
    for (;;) {
        struct job *taken = NULL;
        if (take_queued(f, &taken))
            break;
        start_taken(f, taken);
        int running = 0;
        curl_multi_perform(f->multi, &running);
        drain_messages(f);
        /* Woken by curl_multi_wakeup for new jobs and shutdown; curl shortens the wait to its
         * own next timeout. */
        curl_multi_poll(f->multi, NULL, 0, FETCH_POLL_MS, NULL);
    }
    shutdown_all(f);
    return NULL;
}

/* ---- public API ---- */

static int config_ok(const struct fetch_config *c)
{
    return c->connect_timeout_ms > 0 && c->total_timeout_ms > 0 && c->max_bytes > 0 &&
           c->max_redirects >= 0 && c->max_parallel > 0 && c->max_queued >= 0;
}

struct fetcher *fetcher_start(const struct fetch_config *cfg)
{
    if (!config_ok(cfg)) {
        log_msg(LOG_ERROR, "fetcher: invalid configuration");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_msg(LOG_ERROR, "fetcher: curl_global_init failed");
        return NULL;
    }
    struct fetcher *f = calloc(1, sizeof *f);
    if (f == NULL)
        goto fail;
    f->cfg = *cfg;
    f->user_agent = strdup(cfg->user_agent != NULL ? cfg->user_agent : "cobrowsed-proxy");
    f->cfg.user_agent = f->user_agent;
    f->multi = curl_multi_init();
    if (f->user_agent == NULL || f->multi == NULL)
        goto fail;
    if (pthread_mutex_init(&f->mu, NULL) != 0)
        goto fail;
    if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
        pthread_mutex_destroy(&f->mu);
        goto fail;
    }
    return f;
fail:
    log_msg(LOG_ERROR, "fetcher: cannot start (out of memory or threads)");
    if (f != NULL) {
        if (f->multi != NULL)
            curl_multi_cleanup(f->multi);
        free(f->user_agent);
        free(f);
    }
    curl_global_cleanup();
    return NULL;
}

void fetcher_stop(struct fetcher *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_mutex_unlock(&f->mu);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    curl_multi_cleanup(f->multi);
    pthread_mutex_destroy(&f->mu);
    free(f->user_agent);
    free(f);
    curl_global_cleanup();
}

/* Copies req's POST body into j; only "POST" is known besides GET. A fetch_error. */
static int job_set_post(struct job *j, const struct fetch_request *req)
{
    if (strcmp(req->method, "POST") != 0 || (req->body == NULL && req->body_len > 0))
        return FETCH_E_URL;
    j->post = 1;
    j->body = malloc(req->body_len + 1);
    if (j->body == NULL)
        return FETCH_E_NOMEM;
    if (req->body_len > 0)
        memcpy(j->body, req->body, req->body_len);
    j->body_len = req->body_len;
    /* libcurl would wait up to a second for "100 Continue" before sending a larger body. */
    return fetch_add_header_line(&j->headers, "Expect:");
}

/* A job for req, or a fetch_error. */
static int job_new(struct fetcher *f, const struct fetch_request *req, struct job **out)
{
    struct job *j = calloc(1, sizeof *j);
    *out = NULL;
    if (j == NULL)
        return FETCH_E_NOMEM;
    j->f = f;
    int rc = req->url != NULL ? fetch_url_check(NULL, req->url, &j->url) : FETCH_E_URL;
    if (rc == FETCH_OK)
        rc = fetch_add_header(&j->headers, "Accept", req->accept);
    if (rc == FETCH_OK)
        rc = fetch_add_header(&j->headers, "If-None-Match", req->if_none_match);
    if (rc == FETCH_OK)
        rc = fetch_add_header(&j->headers, "If-Modified-Since", req->if_modified_since);
    for (int i = 0; rc == FETCH_OK && req->headers != NULL && req->headers[i] != NULL; i++)
        rc = i < FETCH_MAX_HEADERS ? fetch_add_header_line(&j->headers, req->headers[i])
                                   : FETCH_E_URL;
    if (rc == FETCH_OK && req->method != NULL)
        rc = job_set_post(j, req);
    if (rc != FETCH_OK) {
        job_free(j);
        return rc;
    }
    *out = j;
    return FETCH_OK;
}

int fetcher_submit(struct fetcher *f, const struct fetch_request *req, fetch_done_fn done,
                   void *arg)
{
    struct job *j = NULL;
    int rc = job_new(f, req, &j);
    if (rc != FETCH_OK)
        return -rc;
    j->done = done;
    j->arg = arg;
    j->submitted = time_monotonic();
    pthread_mutex_lock(&f->mu);
    if (f->stopping)
        rc = FETCH_E_SHUTDOWN;
    else if (f->queued >= f->cfg.max_queued) {
        rc = FETCH_E_BUSY;
        f->refused_busy++;
    } else {
        if (f->qtail != NULL)
            f->qtail->next = j;
        else
            f->qhead = j;
        f->qtail = j;
        f->queued++;
    }
    pthread_mutex_unlock(&f->mu);
    if (rc != FETCH_OK) {
        job_free(j);
        return -rc;
    }
    curl_multi_wakeup(f->multi);
    return 0;
}

void fetcher_stats(struct fetcher *f, struct fetcher_stats *out)
{
    pthread_mutex_lock(&f->mu);
    out->queued = f->queued;
    out->active = f->nactive;
    out->refused_busy = f->refused_busy;
    memcpy(out->ended, f->ended, sizeof out->ended);
    pthread_mutex_unlock(&f->mu);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct fetch_result *out;
};

/* r is not const: the signature is fetch_done_fn's, whose callbacks take r's strings. */
// cppcheck-suppress constParameter
static void waiter_done(void *arg, struct fetch_result *r)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    *w->out = *r;
    w->done = 1;
    /* Signalled under the lock: the waiter may destroy w as soon as it sees done. */
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int fetcher_get(struct fetcher *f, const struct fetch_request *req, struct fetch_result *out)
{
    memset(out, 0, sizeof *out);
    struct waiter w = {.done = 0, .out = out};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = fetcher_submit(f, req, waiter_done, &w);
    if (rc != 0) {
        out->error = (enum fetch_error) - rc;
    } else {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return out->error == FETCH_OK ? 0 : -1;
}
