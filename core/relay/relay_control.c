/* Text messages on the relay: agents' control actions and the visitor's consent, and the policy
 * that decides which actions reach the visitor (docs/protocol.md, "Permissions enforced by the
 * relay"). Relay thread only. Actions are re-serialized from validated fields, never forwarded
 * raw, so a visitor only ever receives well-formed messages. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/relay/relay_control.h"

#define CONTROL_RATE  200.0 /* control messages per second per agent (pointer moves included) */
#define CONTROL_BURST 400

enum need { NEED_VISITOR, NEED_PERMISSION, NEED_CONSENT, NEED_NOTHING };

struct action {
    const char *type;
    const char *const *numbers; /* required finite numbers */
    int has_key;                /* a "key" string of 1..32 chars */
    enum need need;
};

static const char *const xy[] = {"x", "y", NULL};
static const char *const xywh[] = {"x", "y", "w", "h", NULL};
static const char *const none[] = {NULL};
static const struct action actions[] = {
    {"pointer", xy, 0, NEED_VISITOR},
    {"highlight", xywh, 0, NEED_VISITOR},
    {"scroll", xy, 0, NEED_CONSENT},
    {"click", xy, 0, NEED_CONSENT},
    {"key", none, 1, NEED_CONSENT},
    {"request_control", none, 0, NEED_PERMISSION},
    {"release_control", none, 0, NEED_NOTHING},
};
#define N_ACTIONS (sizeof(actions) / sizeof(actions[0]))

static const char *consent_name(enum rconsent c)
{
    switch (c) {
    case RCONSENT_GRANTED:
        return "granted";
    case RCONSENT_DENIED:
        return "denied";
    case RCONSENT_REVOKED:
        return "revoked";
    default:
        return "none";
    }
}

/* The agent's own decision if the visitor made one for its id, else the decision for all. */
static enum rconsent consent_of(const struct rsession *s, const struct rconn *a)
{
    return a->has_consent ? a->consent : s->consent_all;
}

const char *rcontrol_consent(const struct rsession *s, const char *agent_id)
{
    for (const struct rconn *a = s->agents; a; a = a->next)
        if (strcmp(a->claims.sub, agent_id) == 0)
            return consent_name(consent_of(s, a));
    return consent_name(s->consent_all);
}

/* Records a decision on the agents' connections themselves, so there is no table to fill up:
 * a decision for an agent that is not connected has no effect (it asks again when it comes),
 * and a decision for all replaces every individual one. Returns how many agents it reached. */
static int consent_set(struct rsession *s, const char *agent_id, enum rconsent state)
{
    int n = 0;
    if (agent_id[0] == '\0')
        s->consent_all = state;
    for (struct rconn *a = s->agents; a; a = a->next) {
        if (agent_id[0] == '\0') {
            a->has_consent = 0;
            n++;
        } else if (strcmp(a->claims.sub, agent_id) == 0) {
            a->has_consent = 1;
            a->consent = state;
            n++;
        }
    }
    return n;
}

static void refuse(struct rconn *a, json_t *msg, const char *type, const char *reason)
{
    json_t *out = json_pack("{s:s, s:s, s:s}", "type", "refused", "action", type ? type : "",
                            "reason", reason);
    json_t *ref = json_object_get(msg, "ref");
    if (json_is_string(ref) && json_string_length(ref) <= 64)
        json_object_set(out, "ref", ref);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (text)
        rconn_send_text(a, text);
    free(text);
    RSTAT_ADD(&a->core->stats, control_refused, 1);
}

static int rate_ok(struct rconn *a, double now)
{
    double interval = 1.0 / CONTROL_RATE, tol = interval * (CONTROL_BURST - 1);
    double tat = a->ctl_tat > now ? a->ctl_tat : now;
    if (tat - now > tol + 1e-9) /* epsilon: sums of 1/rate are not exact in binary */
        return 0;
    a->ctl_tat = tat + interval;
    return 1;
}

static void agent_action(struct rconn *a, json_t *msg)
{
    struct rsession *s = a->s;
    const char *type = json_string_value(json_object_get(msg, "type"));
    const struct action *act = NULL;
    for (size_t i = 0; type && i < N_ACTIONS; i++)
        if (strcmp(type, actions[i].type) == 0)
            act = &actions[i];
    if (act == NULL) {
        refuse(a, msg, type, "invalid");
        return;
    }
    json_t *clean = json_pack("{s:s}", "type", act->type);
    for (int i = 0; act->numbers[i]; i++) {
        json_t *v = json_object_get(msg, act->numbers[i]);
        if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
            fabs(json_number_value(v)) > 1e7) {
            json_decref(clean);
            refuse(a, msg, type, "invalid");
            return;
        }
        json_object_set(clean, act->numbers[i], v);
    }
    if (act->has_key) {
        json_t *k = json_object_get(msg, "key");
        if (!json_is_string(k) || json_string_length(k) < 1 || json_string_length(k) > 32) {
            json_decref(clean);
            refuse(a, msg, type, "invalid");
            return;
        }
        json_object_set(clean, "key", k);
    }
    json_t *ref = json_object_get(msg, "ref");
    if (json_is_string(ref) && json_string_length(ref) <= 64)
        json_object_set(clean, "ref", ref);
    int permitted = s->remote_control && a->claims.remote_control;
    const char *why = NULL;
    if (!rate_ok(a, rcore_now(a->core)))
        why = "rate_limited";
    else if (act->need == NEED_PERMISSION && !permitted)
        why = "remote_control_off";
    else if (act->need == NEED_CONSENT && !permitted)
        why = "remote_control_off";
    else if (act->need == NEED_CONSENT && consent_of(s, a) != RCONSENT_GRANTED)
        why = "no_consent";
    else if (act->need != NEED_NOTHING && s->visitor == NULL)
        why = "visitor_absent";
    if (why != NULL) {
        json_decref(clean);
        refuse(a, msg, type, why);
        return;
    }
    if (strcmp(act->type, "release_control") == 0) {
        a->has_consent = 1;
        a->consent = RCONSENT_NONE;
    }
    if (strcmp(act->type, "request_control") == 0)
        rcore_post(s->core, REV_CONTROL_REQUESTED, s->id, s->tenant, a->claims.sub, a->claims.name);
    if (s->visitor != NULL) {
        json_t *out =
            json_pack("{s:s, s:{s:s, s:s?}, s:o}", "type", "control", "agent", "id", a->claims.sub,
                      "name", a->claims.name[0] ? a->claims.name : NULL, "action", clean);
        char *text = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        if (text)
            rconn_send_text(s->visitor, text);
        free(text);
        RSTAT_ADD(&a->core->stats, control_forwarded, 1);
    } else {
        json_decref(clean);
    }
}

static void visitor_message(struct rconn *v, json_t *msg)
{
    struct rsession *s = v->s;
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL || strcmp(type, "consent") != 0)
        return; /* unknown visitor messages are ignored: newer SDKs may send more */
    const char *state = json_string_value(json_object_get(msg, "remote_control"));
    json_t *aid = json_object_get(msg, "agent_id");
    const char *agent = json_is_string(aid) ? json_string_value(aid) : "";
    enum rconsent c;
    enum relay_event_type ev;
    if (state && strcmp(state, "granted") == 0) {
        c = RCONSENT_GRANTED;
        ev = REV_CONTROL_GRANTED;
    } else if (state && strcmp(state, "denied") == 0) {
        c = RCONSENT_DENIED;
        ev = REV_CONTROL_DENIED;
    } else if (state && strcmp(state, "revoked") == 0) {
        c = RCONSENT_REVOKED;
        ev = REV_CONTROL_REVOKED;
    } else {
        return;
    }
    if (consent_set(s, agent, c) == 0 && agent[0] != '\0')
        return; /* no such agent connected: nothing to tell or record */
    char text[96];
    snprintf(text, sizeof(text), "{\"type\":\"consent\",\"remote_control\":\"%s\"}",
             consent_name(c));
    for (struct rconn *a = s->agents; a; a = a->next)
        if (agent[0] == '\0' || strcmp(agent, a->claims.sub) == 0)
            rconn_send_text(a, text);
    rcore_post(s->core, ev, s->id, s->tenant, agent[0] ? agent : NULL, NULL);
}

void rcontrol_text(struct rconn *c, const char *text, size_t len)
{
    if (c->s == NULL || c->fenced)
        return;
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(msg)) {
        json_decref(msg);
        if (c->role == RROLE_AGENT)
            refuse(c, NULL, NULL, "invalid");
        return;
    }
    if (c->role == RROLE_AGENT)
        agent_action(c, msg);
    else
        visitor_message(c, msg);
    json_decref(msg);
}
