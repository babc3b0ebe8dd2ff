/* The fetcher's transfers (fetch_internal.h): URL checks, one hop's easy handle and its libcurl
 * callbacks, the response's headers, and redirects. Runs on the fetcher thread, except
 * fetch_url_check and fetch_add_header, which any thread may call (they touch only their
 * arguments).
 *
 * Redirects are followed here rather than by libcurl so that every hop's URL is checked the
 * same way as the first (scheme, credentials, length) and the hop count and the total deadline
 * span the whole chain. The SSRF guard runs in open_socket, on the address libcurl is about to
 * connect to: nothing here resolves a name or remembers a verdict, so a DNS answer that changes
 * between two connections is checked again.
 */
#include "core/net/fetch_internal.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/base/timeutil.h"
#include "core/net/netguard.h"

/* Longest header value the caller may pass (Accept, validators): an ETag is a few dozen bytes. */
#define FETCH_HEADER_MAX 1024
/* ---- URLs ---- */

/* Resolves ref against base (base NULL: ref must be absolute) and checks the result: http or
 * https, a host, no user or password, at most FETCH_URL_MAX bytes. Returns the normalized URL
 * (malloc'd) in *out, or a fetch_error. */
int fetch_url_check(const char *base, const char *ref, char **out)
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
int fetch_add_header(struct curl_slist **list, const char *name, const char *value)
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

int fetch_add_header_line(struct curl_slist **list, const char *line)
{
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line || strlen(line) > FETCH_HEADER_MAX ||
        strpbrk(line, "\r\n") != NULL)
        return FETCH_E_URL;
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
    size_t len = size * n, max = j->f->cfg.max_bytes, keep = len;
    if (len > max - j->len) {
        if (!j->f->cfg.keep_prefix) {
            j->too_large = 1;
            return 0;
        }
        keep = max - j->len; /* the rest is read and dropped */
        if (keep == 0)
            return len;
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
    memcpy(j->buf + j->len, p, keep);
    j->len += keep;
    j->buf[j->len] = '\0';
    return len;
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
    /* A Content-Length over the bound fails before any byte is read (unless only a prefix is
     * kept). */
    if (!f->cfg.keep_prefix)
        bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->cfg.max_bytes) !=
               CURLE_OK;
    if (j->post) {
        bad |=
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body) != CURLE_OK;
    }
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, f->user_agent) != CURLE_OK;
    return bad ? -1 : 0;
}

/* Starts the job's current hop: fresh per-hop state, the time left of the total deadline. */
enum fetch_error fetch_hop_start(struct job *j)
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
    r->retry_after = header_copy(j->easy, "Retry-After");
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
    int rc = fetch_url_check(j->url, loc->value, &next);
    if (rc != FETCH_OK)
        return rc == FETCH_E_NOMEM ? FETCH_E_NOMEM : FETCH_E_REDIRECTS;
    free(j->url);
    j->url = next;
    j->hops++;
    return FETCH_OK;
}

/* A hop's transfer ended: its next hop started (FETCH_E_REDIRECT_STARTED), or how the job ends
 * (the caller finishes it). */
int fetch_hop_done(struct job *j, CURLcode code)
{
    long status = 0;
    curl_multi_remove_handle(j->f->multi, j->easy);
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    j->res.status = status;
    if (code != CURLE_OK)
        return map_error(j, code);
    if (!is_redirect(status) || j->f->cfg.no_redirects) {
        collect_response(j);
        return FETCH_OK;
    }
    enum fetch_error err = next_hop(j);
    if (err == FETCH_OK)
        err = fetch_hop_start(j);
    return err == FETCH_OK ? FETCH_HOP_STARTED : (int)err;
}
