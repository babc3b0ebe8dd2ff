/* A session's history: from the latest snapshot on, by reference (core/relay/relay_history.h).
 * Costs: storing is one pointer push; a replay is one pointer push per frame held. */
#include "core/relay/relay_history.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/frame.h"

static char *reset_text(uint64_t seq, const char *reason)
{
    json_t *msg =
        json_pack("{s:s, s:I, s:s}", "type", "reset", "seq", (json_int_t)seq, "reason", reason);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    return text;
}

void rhistory_clear(struct rsession *s)
{
    for (size_t i = 0; i < s->hist_n; i++)
        rframe_unref(s->hist[i]);
    RSTAT_SUB(&s->core->stats, history_bytes, s->hist_bytes);
    s->hist_n = 0;
    s->hist_bytes = 0;
}

int rhistory_usable(const struct rsession *s)
{
    return s->snapshot_seq > 0 && !s->hist_incomplete;
}

void rhistory_replay(struct rconn *a, const char *reason)
{
    struct rsession *s = a->s;
    char *text = reset_text(s->snapshot_seq, reason);
    if (text != NULL)
        rconn_send_text(a, text);
    free(text);
    for (size_t i = 0; i < s->hist_n; i++)
        rconn_push(a, s->hist[i]);
    rcore_wake(a);
}

void rhistory_resume(struct rconn *a, uint64_t after)
{
    struct rsession *s = a->s;
    for (size_t i = 0; i < s->hist_n; i++)
        if (s->hist[i]->seq > after)
            rconn_push(a, s->hist[i]);
    rcore_wake(a);
}

void rhistory_request_snapshot(struct rsession *s, const char *reason)
{
    /* With the visitor on another node, only a joiner here needs what that node does not know
     * about ("gap"): its own history is the same as this one (history_full, memory). */
    int elsewhere = s->visitor == NULL && s->cl != NULL && s->core->span.visitor_elsewhere(s) &&
                    strcmp(reason, "gap") == 0;
    if (s->snapshot_requested || (s->visitor == NULL && !elsewhere))
        return;
    s->snapshot_requested = 1;
    json_t *msg = json_pack("{s:s, s:s}", "type", "snapshot_request", "reason", reason);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (text != NULL && s->visitor != NULL)
        rconn_send_text(s->visitor, text);
    else if (text != NULL)
        s->core->span.to_visitor(s, text);
    free(text);
}

/* A snapshot restarts the history; agents that saw the gap before it are told to reset. */
static void restart(struct rsession *s, struct rframe *f, int gap)
{
    rhistory_clear(s);
    s->snapshot_seq = f->seq;
    s->hist_incomplete = 0;
    s->snapshot_requested = 0;
    if (!gap)
        return;
    char *text = reset_text(f->seq, "gap");
    for (struct rconn *a = s->agents; a && text; a = a->next)
        rconn_send_text(a, text);
    free(text);
}

void rhistory_store(struct rsession *s, struct rframe *f, int gap)
{
    size_t limit = s->core->cfg->history_bytes;
    if (f->kind == FRAME_KIND_SNAPSHOT) {
        restart(s, f, gap);
    } else if (s->snapshot_seq == 0) {
        s->hist_incomplete = 1; /* events without a page to apply them to */
        rhistory_request_snapshot(s, "gap");
    }
    if (s->hist_incomplete)
        return;
    if (s->hist_bytes + f->len > limit)
        rhistory_request_snapshot(s, "history_full");
    if (s->hist_bytes + f->len > 2 * limit) {
        s->hist_incomplete = 1;
        rhistory_clear(s);
        return;
    }
    if (s->hist_n == s->hist_cap) {
        size_t cap = s->hist_cap ? s->hist_cap * 2 : 64;
        struct rframe **n = realloc(s->hist, cap * sizeof(*n));
        if (n == NULL) {
            s->hist_incomplete = 1; /* live agents still get the frame; joiners wait */
            return;
        }
        s->hist = n;
        s->hist_cap = cap;
    }
    s->hist[s->hist_n++] = f;
    rframe_ref(f);
    s->hist_bytes += f->len;
    RSTAT_ADD(&s->core->stats, history_bytes, f->len);
}
