/* The proxy service's fetches (proxy_internal.h: proxy_fetch_once): one fetch per cache key at a
 * time (the in-flight table, p->flights under p->lock; other requests for the key wait on p->done),
 * the upstream answer checked (type, status) and a stylesheet rewritten into its served form
 * before it is cached. Runs on HTTP workers; a fetch blocks its worker in fetcher_get.
 */
#include "core/proxy/proxy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/proxy/css.h"
#include "core/net/fetch.h"
#include "core/net/netguard.h"
#include "core/proxy/pcache.h"
#include "core/proxy/proxy_internal.h"
#include "core/proxy/proxy_rewrite.h"
#include "core/base/crypto.h"

/* The proxy's own ETag of a body (out: sizeof(struct proxy_response).etag): computed once per
 * fetched body and kept in its cache entry, never on a hit. */
void proxy_etag_of(const char *body, size_t len, char out[24])
{
    char hex[CRYPTO_HEX_SHA256];
    if (crypto_sha256_hex(body, len, hex) != 0)
        snprintf(hex, sizeof(hex), "%016zx", len);
    snprintf(out, 24, "\"%.16s\"", hex);
}

#define DEFAULT_FRESH 60 /* seconds, for responses without any freshness information */

struct flight {
    struct flight *next;
    char key[KEY_MAX];
    int done, refs;
    struct outcome out;
};

/* The media type of a Content-Type value, lowercased, without parameters, into out. */
static void media_type(const char *ct, char *out, size_t size)
{
    size_t o = 0;
    while (ct != NULL && (*ct == ' ' || *ct == '\t'))
        ct++;
    for (; ct != NULL && *ct && *ct != ';' && *ct != ' ' && o + 1 < size; ct++)
        out[o++] = (char)(*ct >= 'A' && *ct <= 'Z' ? *ct - 'A' + 'a' : *ct);
    out[o] = '\0';
}

/* Stylesheets: text/css only. Images and fonts: image/..., font/..., the legacy font types and
 * application/octet-stream (fonts are often served so). Never HTML or scripts: the proxy's origin
 * is the viewer's. */
int proxy_type_allowed(enum proxy_kind kind, const char *content_type)
{
    char mt[96];
    media_type(content_type, mt, sizeof(mt));
    if (kind == PROXY_KIND_CSS)
        return strcmp(mt, "text/css") == 0;
    return (strncmp(mt, "image/", 6) == 0 && mt[6] != '\0') ||
           (strncmp(mt, "font/", 5) == 0 && mt[5] != '\0') ||
           (strncmp(mt, "application/font-", 17) == 0 && mt[17] != '\0') ||
           (strncmp(mt, "application/x-font-", 19) == 0 && mt[19] != '\0') ||
           strcmp(mt, "application/vnd.ms-fontobject") == 0 ||
           strcmp(mt, "application/octet-stream") == 0;
}

/* A failed fetch as the client sees it. */
static void fetch_failed(struct outcome *o, const struct fetch_result *fr)
{
    const char *why = fetch_error_str(fr->error);
    switch (fr->error) {
    case FETCH_E_BLOCKED:
        o->status = 403;
        o->problem = "proxy_address_blocked";
        snprintf(o->detail, sizeof(o->detail),
                 "The target resolves to an address the proxy may not reach (%s).",
                 netguard_verdict_str((enum netguard_verdict)fr->blocked));
        return;
    case FETCH_E_TIMEOUT:
        o->status = 504;
        o->problem = "proxy_timeout";
        snprintf(o->detail, sizeof(o->detail), "The upstream server did not answer in time.");
        return;
    case FETCH_E_TOO_LARGE:
        o->status = 413;
        o->problem = "proxy_too_large";
        snprintf(o->detail, sizeof(o->detail),
                 "The upstream body is larger than the proxy's limit.");
        return;
    case FETCH_E_BUSY:
    case FETCH_E_SHUTDOWN:
        o->status = 503;
        o->problem = "proxy_busy";
        snprintf(o->detail, sizeof(o->detail), "The proxy is busy (%s). Retry shortly.", why);
        return;
    default:
        o->status = 502;
        o->problem = "proxy_fetch_failed";
        snprintf(o->detail, sizeof(o->detail), "The upstream fetch failed: %s.", why);
    }
}

/* A 200 from upstream: type check, the cache's form of a stylesheet, storing. */
static void fetched_ok(struct proxy *p, const struct parsed *x, struct fetch_result *fr,
                       struct outcome *o)
{
    enum proxy_kind kind = x->kind;
    time_t now = time(NULL);
    if (!proxy_type_allowed(kind, fr->content_type)) {
        atomic_fetch_add(&p->upstream_type, 1);
        o->status = 415;
        o->problem = "proxy_type_not_allowed";
        snprintf(o->detail, sizeof(o->detail),
                 "The upstream content type (%.80s) is not allowed for %s.",
                 fr->content_type ? fr->content_type : "none", proxy_kind_str(kind));
        return;
    }
    if (kind == PROXY_KIND_CSS) {
        struct css_buf out = {0};
        const char *base = fr->final_url ? fr->final_url : x->url;
        if (proxy_rewrite_signed(fr->body ? fr->body : "", fr->body_len, base, p->key,
                                 x->cap.tenant, &out) != 0) {
            css_buf_free(&out);
            o->status = 500;
            o->problem = "internal_error";
            snprintf(o->detail, sizeof(o->detail), "The stylesheet could not be rewritten.");
            return;
        }
        free(fr->body);
        fr->body = out.data;
        fr->body_len = out.len;
    }
    struct pcache_policy pol;
    pcache_policy(fr->cache_control, fr->expires, fr->date, fr->age, fr->last_modified,
                  DEFAULT_FRESH, now, &pol);
    o->status = 200;
    o->body = fr->body ? fr->body : strdup("");
    o->body_len = fr->body ? fr->body_len : 0;
    fr->body = NULL;
    snprintf(o->content_type, sizeof(o->content_type), "%s", fr->content_type);
    o->fresh_until = now + pol.fresh_for;
    if (o->body == NULL)
        return;
    proxy_etag_of(o->body, o->body_len, o->tag);
    if (!pol.store)
        return;
    struct pcache_entry e = {.key = x->key,
                             .status = 200,
                             .content_type = o->content_type,
                             .etag = fr->etag,
                             .last_modified = fr->last_modified,
                             .tag = o->tag,
                             .body = o->body,
                             .body_len = o->body_len,
                             .stored_at = now,
                             .fresh_until = o->fresh_until,
                             .must_revalidate = pol.revalidate};
    pcache_put(p->cache, &e);
}

/* One fetch (conditional when a stale entry is given) into o. */
static void fetch_into(struct proxy *p, const struct parsed *x, const struct pcache_entry *stale,
                       struct outcome *o)
{
    struct fetch_request fq = {
        .url = x->url,
        .accept = x->kind == PROXY_KIND_CSS ? "text/css,*/*;q=0.1" : "image/*,font/*,*/*;q=0.5",
        .if_none_match = stale ? stale->etag : NULL,
        .if_modified_since = stale ? stale->last_modified : NULL,
    };
    struct fetch_result fr;
    memset(&fr, 0, sizeof(fr));
    fetcher_get(p->fetcher, &fq, &fr);
    atomic_fetch_add(&p->fetches[fr.error < FETCH_OUTCOMES ? fr.error : FETCH_E_OTHER], 1);
    if (fr.error != FETCH_OK) {
        fetch_failed(o, &fr);
    } else if (fr.status == 304 && stale != NULL) {
        struct pcache_policy pol;
        time_t now = time(NULL);
        pcache_policy(fr.cache_control, fr.expires, fr.date, fr.age, stale->last_modified,
                      DEFAULT_FRESH, now, &pol);
        pcache_refresh(p->cache, x->key, now + pol.fresh_for);
        atomic_fetch_add(&p->revalidated, 1);
        o->status = 200;
        o->body = malloc(stale->body_len + 1);
        if (o->body != NULL)
            memcpy(o->body, stale->body, stale->body_len + 1);
        o->body_len = stale->body_len;
        snprintf(o->content_type, sizeof(o->content_type), "%s", stale->content_type);
        if (stale->tag != NULL)
            snprintf(o->tag, sizeof(o->tag), "%s", stale->tag);
        else if (o->body != NULL)
            proxy_etag_of(o->body, o->body_len, o->tag);
        o->fresh_until = now + pol.fresh_for;
    } else if (fr.status == 200) {
        fetched_ok(p, x, &fr, o);
    } else {
        atomic_fetch_add(&p->upstream_status, 1);
        o->status = 502;
        o->problem = "proxy_fetch_failed";
        snprintf(o->detail, sizeof(o->detail), "The upstream server answered %ld.", fr.status);
    }
    if (o->status == 200 && o->body == NULL) {
        o->status = 500;
        o->problem = "internal_error";
        snprintf(o->detail, sizeof(o->detail), "Out of memory.");
    }
    fetch_result_free(&fr);
}

static void flight_release(struct proxy *p, struct flight *f)
{
    if (--f->refs > 0)
        return;
    for (struct flight **l = &p->flights; *l != NULL; l = &(*l)->next)
        if (*l == f) {
            *l = f->next;
            break;
        }
    free(f->out.body);
    free(f);
}

/* Copies o into a request's own outcome (the body duplicated). */
static void outcome_copy(const struct outcome *from, struct outcome *to)
{
    *to = *from;
    to->body = NULL;
    if (from->body != NULL && (to->body = malloc(from->body_len + 1)) != NULL)
        memcpy(to->body, from->body, from->body_len + 1);
    if (from->body != NULL && to->body == NULL) {
        to->status = 500;
        to->problem = "internal_error";
        snprintf(to->detail, sizeof(to->detail), "Out of memory.");
    }
}

/* A fresh cache entry of key copied into o (1), or 0 when there is none. */
static int fresh_copy(struct proxy *p, const char *key, struct outcome *o)
{
    const struct pcache_entry *e = pcache_get(p->cache, key);
    int fresh = e != NULL && e->fresh_until > time(NULL);
    if (fresh) {
        struct outcome from = {.status = 200,
                               .body = (char *)e->body,
                               .body_len = e->body_len,
                               .fresh_until = e->fresh_until};
        snprintf(from.content_type, sizeof(from.content_type), "%s", e->content_type);
        snprintf(from.tag, sizeof(from.tag), "%s", e->tag ? e->tag : "");
        outcome_copy(&from, o);
    }
    if (e != NULL)
        pcache_release(p->cache, e);
    return fresh;
}

/* The fetch of key, made by this request or by the one already making it: one fetch per key at a
 * time. */
void proxy_fetch_once(struct proxy *p, const struct parsed *x, const struct pcache_entry *stale,
                      struct outcome *o)
{
    const char *key = x->key;
    pthread_mutex_lock(&p->lock);
    p->waiting++;
    struct flight *f = p->flights;
    while (f != NULL && (f->done || strcmp(f->key, key) != 0))
        f = f->next;
    if (f == NULL && fresh_copy(p, key, o)) {
        /* A fetch of this key ended between this request's cache miss and now. */
    } else if (f != NULL) {
        atomic_fetch_add(&p->deduplicated, 1);
        f->refs++;
        while (!f->done)
            pthread_cond_wait(&p->done, &p->lock);
        outcome_copy(&f->out, o);
    } else if ((f = calloc(1, sizeof(*f))) != NULL) {
        snprintf(f->key, sizeof(f->key), "%s", key);
        f->refs = 1;
        f->next = p->flights;
        p->flights = f;
        pthread_mutex_unlock(&p->lock);
        fetch_into(p, x, stale, &f->out);
        pthread_mutex_lock(&p->lock);
        f->done = 1;
        pthread_cond_broadcast(&p->done);
        outcome_copy(&f->out, o);
    } else {
        o->status = 500;
        o->problem = "internal_error";
        snprintf(o->detail, sizeof(o->detail), "Out of memory.");
    }
    if (f != NULL)
        flight_release(p, f);
    p->waiting--;
    pthread_mutex_unlock(&p->lock);
}
