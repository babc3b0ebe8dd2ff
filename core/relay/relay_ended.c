/* Sessions known to have ended (their tokens are refused at the handshake) and the inbox through
 * which other threads (the worker's LISTEN) report ended sessions to the relay thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/relay/relay_state.h"
#include "core/base/timeutil.h"

#define ENDED_BUCKETS      65536
#define ENDED_KEEP_SECONDS (25 * 3600) /* longer than any token lives */

struct ended {
    char id[48];
    double at;
    struct ended *next;
};
static struct ended *ended_set[ENDED_BUCKETS];

static unsigned ended_bucket(const char *id)
{
    return (unsigned)(relay_hash(id) % ENDED_BUCKETS);
}

int relay_is_ended(const char *id)
{
    for (struct ended *e = ended_set[ended_bucket(id)]; e; e = e->next)
        if (strcmp(e->id, id) == 0)
            return 1;
    return 0;
}

void relay_mark_ended(const char *id)
{
    if (relay_is_ended(id))
        return;
    struct ended *e = malloc(sizeof(*e));
    if (e == NULL)
        return;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->at = time_now();
    unsigned b = ended_bucket(id);
    e->next = ended_set[b];
    ended_set[b] = e;
}

void relay_ended_expire(double now, int all)
{
    for (int b = 0; b < ENDED_BUCKETS; b++) {
        struct ended **pp = &ended_set[b];
        while (*pp) {
            if (all || now - (*pp)->at > ENDED_KEEP_SECONDS) {
                struct ended *dead = *pp;
                *pp = dead->next;
                free(dead);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

/* ---- inbox from other threads ---- */

struct inbox_item {
    char id[48];
    char reason[64];
    struct inbox_item *next;
};
static pthread_mutex_t inbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inbox_item *inbox;

void relay_notify_ended(const char *session_id, const char *reason)
{
    struct inbox_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return;
    snprintf(it->id, sizeof(it->id), "%s", session_id);
    snprintf(it->reason, sizeof(it->reason), "%s", reason ? reason : "ended");
    pthread_mutex_lock(&inbox_lock);
    it->next = inbox;
    inbox = it;
    pthread_mutex_unlock(&inbox_lock);
    relay_io_cancel();
}

void relay_drain_inbox(void)
{
    pthread_mutex_lock(&inbox_lock);
    struct inbox_item *list = inbox;
    inbox = NULL;
    pthread_mutex_unlock(&inbox_lock);
    while (list) {
        struct inbox_item *next = list->next;
        relay_mark_ended(list->id);
        struct rsession *s = rsession_find(list->id);
        if (s)
            rsession_end(s, list->reason);
        free(list);
        list = next;
    }
}
