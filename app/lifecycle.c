#include "app/lifecycle.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"

void lifecycle_init(struct lifecycle *lc)
{
    memset(lc, 0, sizeof(*lc));
    pthread_mutex_init(&lc->lock, NULL);
}

void lifecycle_destroy(struct lifecycle *lc)
{
    pthread_mutex_destroy(&lc->lock);
}

int lifecycle_add(struct lifecycle *lc, const struct service *svc)
{
    if (lc->count >= LIFECYCLE_MAX_SERVICES || svc == NULL || svc->start == NULL)
        return -1;
    lc->services[lc->count++] = svc;
    return 0;
}

int lifecycle_start(struct lifecycle *lc)
{
    for (int i = lc->started; i < lc->count; i++) {
        const struct service *s = lc->services[i];
        int rc = s->start(s->self);
        if (rc != 0) {
            log_json(LOG_ERROR, "service did not start",
                     json_pack("{s:s, s:i}", "service", s->name, "code", rc));
            lifecycle_stop(lc);
            return rc < 0 ? rc : -1;
        }
        pthread_mutex_lock(&lc->lock);
        lc->started = i + 1;
        pthread_mutex_unlock(&lc->lock);
    }
    return 0;
}

void lifecycle_drain(struct lifecycle *lc)
{
    for (int i = lc->started - 1; i >= 0; i--)
        if (lc->services[i]->drain != NULL)
            lc->services[i]->drain(lc->services[i]->self);
}

void lifecycle_stop(struct lifecycle *lc)
{
    while (lc->started > 0) {
        pthread_mutex_lock(&lc->lock);
        const struct service *s = lc->services[--lc->started];
        pthread_mutex_unlock(&lc->lock);
        if (s->stop != NULL)
            s->stop(s->self);
    }
}

/* Appends text (freed here) to *out of *len bytes. Returns 0 or -1 (out of memory, *out freed). */
static int append(char **out, size_t *len, char *text)
{
    size_t n = strlen(text);
    char *grown = realloc(*out, *len + n + 1);
    if (grown == NULL) {
        free(text);
        free(*out);
        *out = NULL;
        return -1;
    }
    memcpy(grown + *len, text, n + 1);
    *out = grown;
    *len += n;
    free(text);
    return 0;
}

int lifecycle_query(struct lifecycle *lc, const char *name, int (*fn)(void *self), int otherwise)
{
    int result = otherwise;
    pthread_mutex_lock(&lc->lock);
    for (int i = 0; i < lc->started; i++)
        if (strcmp(lc->services[i]->name, name) == 0)
            result = fn(lc->services[i]->self);
    pthread_mutex_unlock(&lc->lock);
    return result;
}

char *lifecycle_metrics(struct lifecycle *lc)
{
    size_t len = 0;
    char *out = calloc(1, 1);
    pthread_mutex_lock(&lc->lock);
    for (int i = 0; out != NULL && i < lc->started; i++) {
        const struct service *s = lc->services[i];
        if (s->metrics == NULL)
            continue;
        char *text = s->metrics(s->self);
        if (text == NULL)
            log_json(LOG_WARN, "service metrics unavailable",
                     json_pack("{s:s}", "service", s->name));
        else
            append(&out, &len, text);
    }
    pthread_mutex_unlock(&lc->lock);
    return out;
}
