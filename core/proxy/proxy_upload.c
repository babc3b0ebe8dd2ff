/* The visitors' uploaded stylesheets (core/proxy/proxy_upload.h): in memory, a list, newest
 * first; in Redis, core/proxy/proxy_upload_redis.c, chosen here. */
#include "core/proxy/proxy_upload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/proxy/proxy_upload_redis.h"

struct sheet {
    struct sheet *next;
    char *tenant, *session, *url;
    char *text;
    size_t len;
    time_t stored_at;
};

struct proxy_uploads {
    struct upload_redis *redis; /* the Redis store, or NULL: the rest is the memory store */
    pthread_mutex_t lock;
    struct sheet *head; /* newest first */
    size_t bytes, sheets, max_bytes;
    unsigned long long stored, evicted;
};

struct proxy_uploads *proxy_uploads_new(size_t max_bytes)
{
    struct proxy_uploads *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    pthread_mutex_init(&u->lock, NULL);
    u->max_bytes = max_bytes;
    return u;
}

struct proxy_uploads *proxy_uploads_new_redis(const char *url)
{
    struct proxy_uploads *u = proxy_uploads_new(0);
    if (u != NULL && (u->redis = upload_redis_new(url)) == NULL) {
        proxy_uploads_free(u);
        return NULL;
    }
    return u;
}

static void sheet_free(struct sheet *s)
{
    free(s->tenant);
    free(s->session);
    free(s->url);
    free(s->text);
    free(s);
}

void proxy_uploads_free(struct proxy_uploads *u)
{
    if (u == NULL)
        return;
    upload_redis_free(u->redis);
    for (struct sheet *s = u->head, *next; s != NULL; s = next) {
        next = s->next;
        sheet_free(s);
    }
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static int same_session(const struct sheet *s, const char *tenant, const char *session)
{
    return strcmp(s->session, session) == 0 && strcmp(s->tenant, tenant) == 0;
}

/* Unlinks *link's sheet and frees it. Lock held. */
static void drop(struct proxy_uploads *u, struct sheet **link)
{
    struct sheet *s = *link;
    *link = s->next;
    u->bytes -= s->len;
    u->sheets--;
    sheet_free(s);
}

/* Drops the oldest sheet of the session (or of anyone when tenant is NULL); 0 when none. */
static int drop_oldest(struct proxy_uploads *u, const char *tenant, const char *session)
{
    struct sheet **oldest = NULL;
    for (struct sheet **l = &u->head; *l != NULL; l = &(*l)->next)
        if (tenant == NULL || same_session(*l, tenant, session))
            oldest = l;
    if (oldest == NULL)
        return 0;
    drop(u, oldest);
    u->evicted++;
    return 1;
}

/* Removes what the new sheet replaces or pushes out (expired ones too). Lock held. */
static void make_room(struct proxy_uploads *u, const char *tenant, const char *session,
                      const char *url, size_t len, time_t now)
{
    size_t mine = 0, my_bytes = 0;
    for (struct sheet **l = &u->head; *l != NULL;) {
        struct sheet *s = *l;
        int same = same_session(s, tenant, session);
        if ((same && strcmp(s->url, url) == 0) || now - s->stored_at > PROXY_UPLOAD_TTL_SECONDS) {
            drop(u, l);
            continue;
        }
        mine += same;
        my_bytes += same ? s->len : 0;
        l = &s->next;
    }
    while ((mine >= PROXY_UPLOAD_SESSION_SHEETS || my_bytes + len > PROXY_UPLOAD_SESSION_BYTES) &&
           mine > 0) {
        size_t before = u->bytes;
        if (!drop_oldest(u, tenant, session))
            break;
        mine--;
        my_bytes -= before - u->bytes;
    }
    while (u->bytes + len > u->max_bytes && drop_oldest(u, NULL, NULL))
        ;
}

int proxy_uploads_put(struct proxy_uploads *u, const char *tenant, const char *session,
                      const char *url, const char *text, size_t len, time_t now)
{
    if (u->redis != NULL)
        return upload_redis_put(u->redis, tenant, session, url, text, len);
    if (len > PROXY_UPLOAD_MAX_BYTES || len > u->max_bytes || len > PROXY_UPLOAD_SESSION_BYTES)
        return 1;
    struct sheet *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->tenant = strdup(tenant);
    s->session = strdup(session);
    s->url = strdup(url);
    s->text = malloc(len + 1);
    if (s->tenant == NULL || s->session == NULL || s->url == NULL || s->text == NULL) {
        sheet_free(s);
        return -1;
    }
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    s->len = len;
    s->stored_at = now;
    pthread_mutex_lock(&u->lock);
    make_room(u, tenant, session, url, len, now);
    s->next = u->head;
    u->head = s;
    u->bytes += len;
    u->sheets++;
    u->stored++;
    pthread_mutex_unlock(&u->lock);
    return 0;
}

char *proxy_uploads_get(struct proxy_uploads *u, const char *tenant, const char *session,
                        const char *url, time_t now, size_t *len)
{
    char *copy = NULL;
    if (u->redis != NULL)
        return upload_redis_get(u->redis, tenant, session, url, len);
    pthread_mutex_lock(&u->lock);
    for (struct sheet *s = u->head; s != NULL; s = s->next) {
        if (same_session(s, tenant, session) && strcmp(s->url, url) == 0) {
            if (now - s->stored_at <= PROXY_UPLOAD_TTL_SECONDS && (copy = malloc(s->len + 1))) {
                memcpy(copy, s->text, s->len + 1);
                *len = s->len;
            }
            break;
        }
    }
    pthread_mutex_unlock(&u->lock);
    return copy;
}

void proxy_uploads_stats(struct proxy_uploads *u, struct proxy_uploads_stats *out)
{
    if (u->redis != NULL) {
        upload_redis_stats(u->redis, out);
        return;
    }
    pthread_mutex_lock(&u->lock);
    out->errors = 0;
    out->shared = 0;
    out->bytes = u->bytes;
    out->sheets = u->sheets;
    out->stored = u->stored;
    out->evicted = u->evicted;
    pthread_mutex_unlock(&u->lock);
}
