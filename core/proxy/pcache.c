/* The proxy's cache: a chained hash table and an LRU list under one mutex. See pcache.h. */
#include "core/proxy/pcache.h"

#include <ctype.h>
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One allocation per entry: the node, then the key, the strings and the body. The public entry
 * comes first so that a const struct pcache_entry * handed out is the node itself. */
struct node {
    struct pcache_entry e;
    struct node *hnext;       /* hash chain */
    struct node *prev, *next; /* LRU list: head most recent */
    uint64_t hash;
    size_t cost;  /* bytes counted against max_bytes: the whole allocation */
    int refs;     /* the cache's own reference counts as one while in_cache */
    int in_cache; /* reachable from the table */
};

struct pcache {
    pthread_mutex_t mu;
    struct node **buckets;
    size_t nbuckets; /* a power of two */
    struct node *head, *tail;
    size_t max_bytes, bytes, entries;
    unsigned long long hits, misses, evictions;
};

#define PCACHE_MIN_BUCKETS 256
/* RFC 9111 4.2.2: a heuristic lifetime of 10 % of the time since Last-Modified, capped at a day
 * here so that a file unchanged for a year is still asked about daily. */
#define PCACHE_HEURISTIC_MAX 86400L
/* RFC 9111 1.2.2: delta-seconds past 2^31 are taken as 2^31. */
#define PCACHE_DELTA_MAX 2147483648LL

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: keys are short URLs, not attacker-chosen
                                            bucket floods (they are signed by the platform) */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct pcache *pcache_new(size_t max_bytes)
{
    struct pcache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->nbuckets = PCACHE_MIN_BUCKETS;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (c->buckets == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    return c;
}

void pcache_free(struct pcache *c)
{
    if (c == NULL)
        return;
    /* Entries still referenced by a reader are a caller bug (the header says release first);
     * freeing them anyway keeps ASan's leak report about the real culprit. */
    for (struct node *n = c->head, *next; n != NULL; n = next) {
        next = n->next;
        free(n);
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static size_t opt_len(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static const char *copy_str(char **p, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *out = *p;
    *p += n;
    return out;
}

/* A node holding a copy of e; NULL when out of memory. */
static struct node *node_new(const struct pcache_entry *e)
{
    size_t cost = sizeof(struct node) + opt_len(e->key) + opt_len(e->content_type) +
                  opt_len(e->etag) + opt_len(e->last_modified) + opt_len(e->tag) + e->body_len + 1;
    struct node *n = malloc(cost);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof *n);
    char *p = (char *)(n + 1);
    n->e = *e;
    n->e.key = copy_str(&p, e->key);
    n->e.content_type = copy_str(&p, e->content_type);
    n->e.etag = copy_str(&p, e->etag);
    n->e.last_modified = copy_str(&p, e->last_modified);
    n->e.tag = copy_str(&p, e->tag);
    if (e->body_len > 0)
        memcpy(p, e->body, e->body_len);
    p[e->body_len] = '\0';
    n->e.body = p;
    n->hash = hash_key(e->key);
    n->cost = cost;
    return n;
}

static struct node **slot(struct pcache *c, const char *key, uint64_t h)
{
    struct node **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->e.key, key) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(struct pcache *c, struct node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        c->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        c->tail = n->prev;
    n->prev = n->next = NULL;
}

static void lru_push_front(struct pcache *c, struct node *n)
{
    n->prev = NULL;
    n->next = c->head;
    if (c->head != NULL)
        c->head->prev = n;
    c->head = n;
    if (c->tail == NULL)
        c->tail = n;
}

/* Takes n out of the table and the list; returns n when nobody else holds it (the caller frees
 * it after unlocking), else NULL (the last pcache_release frees it). */
static struct node *detach(struct pcache *c, struct node *n)
{
    struct node **pp = slot(c, n->e.key, n->hash);
    *pp = n->hnext;
    lru_unlink(c, n);
    n->in_cache = 0;
    c->bytes -= n->cost;
    c->entries--;
    return --n->refs == 0 ? n : NULL;
}

/* Doubles the table when it gets denser than one entry per bucket. Failure is harmless: chains
 * just get longer. */
static void maybe_grow(struct pcache *c)
{
    if (c->entries <= c->nbuckets || c->nbuckets > SIZE_MAX / 2 / sizeof(struct node *))
        return;
    size_t nb = c->nbuckets * 2;
    struct node **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct node *n = c->buckets[i], *next; n != NULL; n = next) {
            next = n->hnext;
            n->hnext = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* Frees a chain (linked through hnext) built under the lock, after it is released. */
static void free_chain(struct node *n)
{
    while (n != NULL) {
        struct node *next = n->hnext;
        free(n);
        n = next;
    }
}

static void chain_push(struct node **chain, struct node *n)
{
    if (n != NULL) {
        n->hnext = *chain;
        *chain = n;
    }
}

/* Inserts n (replacing its key's entry) and evicts from the tail until within bounds. Called
 * with the lock held; what must be freed goes onto *dead. */
static void insert_locked(struct pcache *c, struct node *n, struct node **dead)
{
    struct node **pp = slot(c, n->e.key, n->hash);
    if (*pp != NULL)
        chain_push(dead, detach(c, *pp));
    pp = slot(c, n->e.key, n->hash);
    n->hnext = NULL;
    *pp = n;
    n->in_cache = 1;
    n->refs = 1;
    lru_push_front(c, n);
    c->bytes += n->cost;
    c->entries++;
    while (c->bytes > c->max_bytes && c->tail != NULL && c->tail != n) {
        chain_push(dead, detach(c, c->tail));
        c->evictions++;
    }
    maybe_grow(c);
}

int pcache_put(struct pcache *c, const struct pcache_entry *e)
{
    struct node *dead = NULL;
    size_t cost = sizeof(struct node) + opt_len(e->key) + opt_len(e->content_type) +
                  opt_len(e->etag) + opt_len(e->last_modified) + opt_len(e->tag) + e->body_len + 1;
    if (cost > c->max_bytes / 8) {
        /* The origin sent a newer response than the cached one: serving the older one would be
         * serving something the origin replaced, so it goes too. */
        uint64_t h = hash_key(e->key);
        pthread_mutex_lock(&c->mu);
        struct node **pp = slot(c, e->key, h);
        if (*pp != NULL)
            chain_push(&dead, detach(c, *pp));
        pthread_mutex_unlock(&c->mu);
        free_chain(dead);
        return 1;
    }
    struct node *n = node_new(e); /* copied before locking: readers never wait on memcpy */
    if (n == NULL)
        return -1;
    pthread_mutex_lock(&c->mu);
    insert_locked(c, n, &dead);
    pthread_mutex_unlock(&c->mu);
    free_chain(dead);
    return 0;
}

const struct pcache_entry *pcache_get(struct pcache *c, const char *key)
{
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&c->mu);
    struct node *n = *slot(c, key, h);
    if (n != NULL) {
        n->refs++;
        if (c->head != n) {
            lru_unlink(c, n);
            lru_push_front(c, n);
        }
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return n != NULL ? &n->e : NULL;
}

void pcache_release(struct pcache *c, const struct pcache_entry *e)
{
    if (e == NULL)
        return;
    struct node *n = (struct node *)e; /* e is the first member of its node */
    pthread_mutex_lock(&c->mu);
    int last = --n->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        free(n); /* only possible once detached: the table's own reference is gone */
}

int pcache_refresh(struct pcache *c, const char *key, time_t fresh_until)
{
    const struct pcache_entry *old = pcache_get(c, key);
    if (old == NULL)
        return -1;
    struct pcache_entry e = *old;
    e.fresh_until = fresh_until;
    e.stored_at = time(NULL);
    struct node *n = node_new(&e);
    int rc = -1, replaced = 0;
    struct node *dead = NULL;
    if (n != NULL) {
        pthread_mutex_lock(&c->mu);
        /* Only over the entry we copied: a put that came in meanwhile holds a newer response. */
        if (*slot(c, key, n->hash) == (const struct node *)old) {
            insert_locked(c, n, &dead);
            replaced = 1;
        }
        pthread_mutex_unlock(&c->mu);
        if (!replaced)
            free(n);
        rc = replaced ? 0 : -1;
    }
    pcache_release(c, old);
    free_chain(dead);
    return rc;
}

void pcache_stats(struct pcache *c, struct pcache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->bytes = c->bytes;
    out->entries = c->entries;
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
}

/* ---- Freshness (RFC 9111) ---- */

struct cc {
    int no_store, private_, no_cache, must_revalidate;
    long long max_age, s_maxage; /* -1 absent; 0 when present but invalid (stale) */
};

/* delta-seconds: digits only; an invalid value makes the response stale (RFC 9111 1.2.2 says a
 * recipient may not make up a lifetime it cannot parse). Quotes are tolerated (4.2.1). */
static long long parse_delta(const char *v, size_t len)
{
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (len == 0)
        return 0;
    long long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        if (n < PCACHE_DELTA_MAX)
            n = n * 10 + (v[i] - '0');
    }
    return n < PCACHE_DELTA_MAX ? n : PCACHE_DELTA_MAX;
}

static int token_is(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* One directive "name" or "name=value" of a Cache-Control list. The first max-age or s-maxage
 * wins when a response repeats one. */
static void parse_directive(const char *s, size_t len, struct cc *cc)
{
    const char *eq = memchr(s, '=', len);
    size_t nlen = eq != NULL ? (size_t)(eq - s) : len;
    const char *v = eq != NULL ? eq + 1 : s + len;
    size_t vlen = (size_t)(s + len - v);
    while (nlen > 0 && isspace((unsigned char)s[nlen - 1]))
        nlen--;
    while (vlen > 0 && isspace((unsigned char)*v)) {
        v++;
        vlen--;
    }
    if (token_is(s, nlen, "no-store"))
        cc->no_store = 1;
    else if (token_is(s, nlen, "private"))
        cc->private_ = 1; /* private="field" too: a shared cache keeps none of it */
    else if (token_is(s, nlen, "no-cache"))
        cc->no_cache = 1; /* no-cache="field": revalidating everything is the safe reading */
    else if (token_is(s, nlen, "must-revalidate") || token_is(s, nlen, "proxy-revalidate"))
        cc->must_revalidate = 1;
    else if (token_is(s, nlen, "max-age") && cc->max_age < 0)
        cc->max_age = eq != NULL ? parse_delta(v, vlen) : 0;
    else if (token_is(s, nlen, "s-maxage") && cc->s_maxage < 0)
        cc->s_maxage = eq != NULL ? parse_delta(v, vlen) : 0;
}

static void parse_cc(const char *s, struct cc *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->max_age = cc->s_maxage = -1;
    if (s == NULL)
        return;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        const char *start = s;
        int quoted = 0;
        for (; *s != '\0' && (quoted || *s != ','); s++)
            if (*s == '"')
                quoted = !quoted;
        if (s > start)
            parse_directive(start, (size_t)(s - start), cc);
    }
}

/* An HTTP-date (IMF-fixdate, RFC 850 or asctime: curl_getdate reads all three), or -1. */
static time_t http_date(const char *s)
{
    return s != NULL ? curl_getdate(s, NULL) : -1;
}

/* Seconds the response may be used from its origin's point of view, before subtracting its
 * age (RFC 9111 4.2.1, then 4.2.2's heuristic). */
static long long lifetime(const struct cc *cc, const char *expires, time_t date,
                          const char *last_modified, long default_fresh)
{
    if (cc->s_maxage >= 0)
        return cc->s_maxage;
    if (cc->max_age >= 0)
        return cc->max_age;
    if (expires != NULL) {
        time_t exp = http_date(expires);
        /* An invalid Expires ("0", "-1") means already expired. */
        return exp < 0 || exp <= date ? 0 : (long long)(exp - date);
    }
    time_t lm = http_date(last_modified);
    if (lm >= 0) {
        if (lm >= date)
            return 0;
        long long h = (long long)(date - lm) / 10;
        return h < PCACHE_HEURISTIC_MAX ? h : PCACHE_HEURISTIC_MAX;
    }
    return default_fresh > 0 ? default_fresh : 0;
}

void pcache_policy(const char *cache_control, const char *expires, const char *date,
                   const char *age, const char *last_modified, long default_fresh, time_t now,
                   struct pcache_policy *out)
{
    struct cc cc;
    parse_cc(cache_control, &cc);
    memset(out, 0, sizeof *out);
    if (cc.no_store || cc.private_)
        return;
    out->store = 1;
    /* A missing or invalid Date is taken as the time it arrived (RFC 9110 6.6.1). */
    time_t d = http_date(date);
    if (d < 0)
        d = now;
    long long life = lifetime(&cc, expires, d, last_modified, default_fresh);
    /* RFC 9111 4.2.3 at the moment of storing: the larger of the apparent age (our clock minus
     * the origin's Date) and the Age a cache on the way added. */
    long long apparent = now > d ? (long long)(now - d) : 0;
    long long age_v = age != NULL ? parse_delta(age, strlen(age)) : 0;
    long long cur_age = apparent > age_v ? apparent : age_v;
    long long fresh = life - cur_age;
    out->fresh_for = fresh > 0 ? (fresh < LONG_MAX ? (long)fresh : LONG_MAX) : 0;
    if (cc.no_cache) {
        out->fresh_for = 0;
        out->revalidate = 1;
    }
    if (cc.must_revalidate)
        out->revalidate = 1;
}
