/* Reference-counted frames (core/relay/relay_frame.h). */
#include "core/relay/relay_frame.h"

#include <stdlib.h>
#include <string.h>

struct rframe *rframe_new(struct relay_stats *stats, size_t cap, int binary)
{
    struct rframe *f = malloc(sizeof(*f) + RELAY_PRE + cap);
    if (f == NULL)
        return NULL;
    f->stats = stats;
    f->refs = 1;
    f->binary = binary;
    f->kind = 0;
    f->seq = 0;
    f->len = 0;
    f->cap = cap;
    RSTAT_ADD(stats, memory_bytes, cap);
    return f;
}

struct rframe *rframe_reserve(struct rframe *f, size_t need)
{
    if (need <= f->cap)
        return f;
    size_t cap = f->cap * 2 > need ? f->cap * 2 : need;
    struct rframe *n = realloc(f, sizeof(*f) + RELAY_PRE + cap);
    if (n == NULL)
        return NULL;
    RSTAT_ADD(n->stats, memory_bytes, cap - n->cap);
    n->cap = cap;
    return n;
}

struct rframe *rframe_text(struct relay_stats *stats, const char *text)
{
    size_t len = strlen(text);
    struct rframe *f = rframe_new(stats, len, 0);
    if (f == NULL)
        return NULL;
    memcpy(f->buf + RELAY_PRE, text, len);
    f->len = len;
    return f;
}

void rframe_ref(struct rframe *f)
{
    f->refs++;
}

void rframe_unref(struct rframe *f)
{
    if (f != NULL && --f->refs == 0) {
        RSTAT_SUB(f->stats, memory_bytes, f->cap);
        free(f);
    }
}
