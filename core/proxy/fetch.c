/* The proxy's fetcher: one thread driving a libcurl multi handle. See fetch.h.
 *
 * Redirects are followed here rather than by libcurl so that every hop's URL is checked the
 * same way as the first (scheme, credentials, length) and the hop count and the total deadline
 * span the whole chain. The SSRF guard runs in open_socket, on the address libcurl is about to
 * connect to: nothing here resolves a name or remembers a verdict, so a DNS answer that changes
 * between two connections is checked again.
 */
#include "core/proxy/fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/proxy/netguard.h"

/* Longest header value the caller may pass (Accept, validators): an ETag is a few dozen bytes. */
#define FETCH_HEADER_MAX 1024
/* The longest time curl_multi_poll sleeps without being woken: a safety net only, since
 * fetcher_submit and fetcher_stop wake it. */
#define FETCH_POLL_MS 1000

struct job {
    struct job *next;
    struct fetcher *f;
    char *url; /* this hop's URL, normalized */
    struct curl_slist *headers;
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
    int nactive;               /* fetcher thread only */
};

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

/* ---- URLs ---- */

/* Resolves ref against base (base NULL: ref must be absolute) and checks the result: http or
 * https, a host, no user or password, at most FETCH_URL_MAX bytes. Returns the normalized URL
 * (malloc'd) in *out, or a fetch_error. */
static int url_check(const char *base, const char *ref, char **out)
{
    int rc = FETCH_E_URL;
    char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL, *url = NULL;
    *out = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return FETCH_E_NOMEM;
    if (strlen(ref) > FETCH_URL_MAX)
        goto done;
    if (base != NULL && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto done;
    if (curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK)
        goto done;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        goto done;
    /* Credentials would be sent to the origin: the proxy never forwards any. */
    if (curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) != CURLUE_NO_PASSWORD)
        goto done;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        goto done;
    /* The fragment never reaches the origin; dropping it keeps final_url what was fetched. */
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK || strlen(url) > FETCH_URL_MAX)
        goto done;
    *out = strdup(url);
    rc = *out != NULL ? FETCH_OK : FETCH_E_NOMEM;
done:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(host);
    curl_free(url);
    curl_url_cleanup(u);
    return rc;
}

/* Appends "name: value" to *list; a value with CR, LF or past FETCH_HEADER_MAX is refused so
 * that nothing the caller passes can add a header of its own. */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[FETCH_HEADER_MAX + 64];
    if (value == NULL)
        return FETCH_OK;
    if (strlen(value) > FETCH_HEADER_MAX || strpbrk(value, "\r\n") != NULL)
        return FETCH_E_URL;
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL)
        return FETCH_E_NOMEM;
    *list = l;
    return FETCH_OK;
}

/* ---- libcurl callbacks (fetcher thread) ---- */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct job *j = clientp;
    (void)purpose;
    enum netguard_verdict v = netguard_check(j->f->cfg.guard, &a->addr, a->addrlen);
    if (v != NETGUARD_OK) {
        j->blocked = (int)v;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Called with decoded bytes (CURLOPT_ACCEPT_ENCODING), so a small gzip that inflates past
 * max_bytes stops here, after at most max_bytes are held. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct job *j = ud;
    size_t len = size * n, max = j->f->cfg.max_bytes;
    if (len > max - j->len) {
        j->too_large = 1;
        return 0;
    }
    if (j->len + len + 1 > j->cap) {
        size_t cap = j->cap != 0 ? j->cap * 2 : 16384;
        if (cap < j->len + len + 1)
            cap = j->len + len + 1;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(j->buf, cap);
        if (b == NULL)
            return 0;
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, p, len);
    j->len += len;
    j->buf[j->len] = '\0';
    return len;
}

/* ---- jobs (fetcher thread) ---- */

static void job_free(struct job *j)
{
    if (j->easy != NULL)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->headers);
    free(j->url);
    free(j->buf);
    fetch_result_free(&j->res);
    free(j);
}

/* Ends a job: fills the result, hands it to the callback and frees the rest. The job must not
 * be in the multi handle. */
static void job_finish(struct job *j, enum fetch_error err)
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
    for (struct job **pp = &f->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            f->nactive--;
            break;
        }
    }
    struct fetch_result res = j->res;
    fetch_done_fn done = j->done;
    void *arg = j->arg;
    memset(&j->res, 0, sizeof j->res);
    job_free(j);
    done(arg, &res);
}

/* The options every hop shares. Returns 0 or -1. */
static int easy_setup(struct job *j)
{
    struct fetcher *f = j->f;
    CURL *e = curl_easy_init();
    if (e == NULL)
        return -1;
    j->easy = e;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, j) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    /* No proxy from http_proxy/https_proxy/all_proxy: it would connect past the guard. */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    /* curl's own DNS cache keeps answers 60 s whatever their TTL; resolving per fetch lets the
     * system resolver honour TTLs. Safety does not depend on it (open_socket checks whatever
     * address is used), but a changed answer is then seen by the next fetch, as a test expects. */
    bad |= curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, j) != CURLE_OK;
    /* "" offers every encoding this libcurl decodes; on_body bounds the decoded size. */
    bad |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK;
    /* A Content-Length over the bound fails before any byte is read. */
    bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->cfg.max_bytes) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, f->user_agent) != CURLE_OK;
    return bad ? -1 : 0;
}

/* Starts the job's current hop: fresh per-hop state, the time left of the total deadline. */
static enum fetch_error hop_start(struct job *j)
{
    struct fetcher *f = j->f;
    long left = (long)((j->deadline - time_monotonic()) * 1000.0);
    if (left <= 0)
        return FETCH_E_TIMEOUT;
    if (j->easy == NULL && easy_setup(j) != 0)
        return FETCH_E_NOMEM;
    long connect = f->cfg.connect_timeout_ms < left ? f->cfg.connect_timeout_ms : left;
    j->len = 0;
    j->blocked = NETGUARD_OK;
    j->too_large = 0;
    if (curl_easy_setopt(j->easy, CURLOPT_URL, j->url) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, left) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS, connect) != CURLE_OK)
        return FETCH_E_NOMEM;
    if (curl_multi_add_handle(f->multi, j->easy) != CURLM_OK)
        return FETCH_E_OTHER;
    return FETCH_OK;
}

static enum fetch_error map_error(const struct job *j, CURLcode code)
{
    if (j->too_large || code == CURLE_FILESIZE_EXCEEDED)
        return FETCH_E_TOO_LARGE;
    if (j->blocked != NETGUARD_OK)
        return FETCH_E_BLOCKED;
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return FETCH_E_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
        return FETCH_E_DNS;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return FETCH_E_CONNECT;
    case CURLE_OUT_OF_MEMORY:
        return FETCH_E_NOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return FETCH_E_URL;
    default:
        return FETCH_E_OTHER;
    }
}

/* A copy of the final response's header `name` (several occurrences joined with ", "), or NULL.
 * The easy handle was reset by this hop's transfer, so earlier hops' headers are not seen. */
static char *header_copy(CURL *e, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return NULL;
    size_t n = h->amount, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (curl_easy_header(e, name, i, CURLH_HEADER, -1, &h) != CURLHE_OK)
            return NULL;
        total += strlen(h->value) + 2;
    }
    char *out = malloc(total + 1), *p = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        curl_easy_header(e, name, i, CURLH_HEADER, -1, &h);
        size_t len = strlen(h->value);
        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, h->value, len);
        p += len;
    }
    *p = '\0';
    return out;
}

static void collect_response(struct job *j)
{
    struct fetch_result *r = &j->res;
    r->content_type = header_copy(j->easy, "Content-Type");
    r->etag = header_copy(j->easy, "ETag");
    r->last_modified = header_copy(j->easy, "Last-Modified");
    r->cache_control = header_copy(j->easy, "Cache-Control");
    r->expires = header_copy(j->easy, "Expires");
    r->date = header_copy(j->easy, "Date");
    r->age = header_copy(j->easy, "Age");
    if (j->buf == NULL)
        j->buf = calloc(1, 1); /* an empty body is "", not NULL */
    r->body = j->buf;
    r->body_len = j->buf != NULL ? j->len : 0;
    j->buf = NULL;
    j->len = j->cap = 0;
}

static int is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The next hop's URL, or a fetch_error: too many hops, no Location, or one we would refuse. */
static enum fetch_error next_hop(struct job *j)
{
    struct curl_header *loc = NULL;
    if (j->hops >= j->f->cfg.max_redirects)
        return FETCH_E_REDIRECTS;
    if (curl_easy_header(j->easy, "Location", 0, CURLH_HEADER, -1, &loc) != CURLHE_OK)
        return FETCH_E_REDIRECTS;
    char *next = NULL;
    int rc = url_check(j->url, loc->value, &next);
    if (rc != FETCH_OK)
        return rc == FETCH_E_NOMEM ? FETCH_E_NOMEM : FETCH_E_REDIRECTS;
    free(j->url);
    j->url = next;
    j->hops++;
    return FETCH_OK;
}

/* A hop's transfer ended: finish the job or start its next hop. */
static void hop_done(struct job *j, CURLcode code)
{
    long status = 0;
    curl_multi_remove_handle(j->f->multi, j->easy);
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    j->res.status = status;
    if (code != CURLE_OK) {
        job_finish(j, map_error(j, code));
        return;
    }
    if (!is_redirect(status)) {
        collect_response(j);
        job_finish(j, FETCH_OK);
        return;
    }
    enum fetch_error err = next_hop(j);
    if (err == FETCH_OK)
        err = hop_start(j);
    if (err != FETCH_OK)
        job_finish(j, err);
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
        hop_done(j, m->data.result);
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
        enum fetch_error err = hop_start(j);
        if (err != FETCH_OK)
            job_finish(j, err);
    }
}

/* Every job in flight or waiting ends with FETCH_E_SHUTDOWN, its callback called. */
static void shutdown_all(struct fetcher *f)
{
    while (f->active != NULL) {
        struct job *j = f->active;
        curl_multi_remove_handle(f->multi, j->easy); /* harmless when not added */
        job_finish(j, FETCH_E_SHUTDOWN);
    }
    pthread_mutex_lock(&f->mu);
    struct job *q = f->qhead;
    f->qhead = f->qtail = NULL;
    f->queued = 0;
    pthread_mutex_unlock(&f->mu);
    while (q != NULL) {
        struct job *j = q;
        q = j->next;
        job_finish(j, FETCH_E_SHUTDOWN);
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

/* A job for req, or a fetch_error. */
static int job_new(struct fetcher *f, const struct fetch_request *req, struct job **out)
{
    struct job *j = calloc(1, sizeof *j);
    *out = NULL;
    if (j == NULL)
        return FETCH_E_NOMEM;
    j->f = f;
    int rc = req->url != NULL ? url_check(NULL, req->url, &j->url) : FETCH_E_URL;
    if (rc == FETCH_OK)
        rc = add_header(&j->headers, "Accept", req->accept);
    if (rc == FETCH_OK)
        rc = add_header(&j->headers, "If-None-Match", req->if_none_match);
    if (rc == FETCH_OK)
        rc = add_header(&j->headers, "If-Modified-Since", req->if_modified_since);
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
    else if (f->queued >= f->cfg.max_queued)
        rc = FETCH_E_BUSY;
    else {
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
