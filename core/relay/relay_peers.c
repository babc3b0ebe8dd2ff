/* The other nodes' messages on a session's channel, and this node's (core/relay/relay_peers.h). */
#include "core/relay/relay_peers.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cluster/cluster.h"

static void on_ctl(struct rsession *s, const char *json, size_t len)
{
    json_t *msg = json_loadb(json, len, 0, NULL);
    const char *t = json_string_value(json_object_get(msg, "t"));
    const char *state = json_string_value(json_object_get(msg, "state"));
    if (t != NULL && state != NULL && strcmp(t, "visitor") == 0) {
        json_t *gen = json_object_get(msg, "gen");
        if (json_is_integer(gen) && json_integer_value(gen) > 0)
            rfollow_visitor_news(s, state, (uint64_t)json_integer_value(gen));
    } else if (t != NULL && state != NULL && strcmp(t, "agent") == 0 && s->visitor != NULL) {
        json_t *agent = json_object_get(msg, "agent");
        if (json_is_object(agent))
            rconn_send_json(s->visitor,
                            json_pack("{s:s, s:O}", "type",
                                      strcmp(state, "joined") == 0 ? "agent_joined" : "agent_left",
                                      "agent", agent));
    }
    json_decref(msg);
}

void rpeers_message(struct rcluster *rc, const char *sid, const unsigned char *data, size_t len)
{
    struct rsession *s = rc->closing ? NULL : rsession_find(rc->core, sid);
    if (s == NULL || s->cl == NULL || len < 1)
        return;
    if (data[0] == 'F') {
        struct rframe *f = rfollow_frame_from(s, data + 1, len - 1);
        if (f != NULL)
            rfollow_frame(s, f);
        rframe_unref(f);
        return;
    }
    const char *node = (const char *)data + 1;
    const char *sp = memchr(node, ' ', len - 1);
    if (sp == NULL)
        return;
    size_t node_len = (size_t)(sp - node);
    if (node_len == strlen(rc->node) && memcmp(node, rc->node, node_len) == 0)
        return; /* this node's own message: it acted on it locally */
    const char *json = sp + 1;
    size_t json_len = len - 2 - node_len;
    if (data[0] == 'C') {
        on_ctl(s, json, json_len);
    } else if (data[0] == 'U' && s->visitor != NULL && !s->visitor->fenced) {
        char *text = strndup(json, json_len);
        if (text != NULL)
            rconn_send_text(s->visitor, text);
        free(text);
    } else if (data[0] == 'D') {
        rcontrol_from_visitor_elsewhere(s, json, json_len);
    }
}
