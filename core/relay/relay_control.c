/* Text messages on the relay: agents' control actions, the visitor's consent and its answers to
 * asset requests (the stylesheet fallback, docs/proxy.md), and the policy that decides which
 * actions reach the visitor (docs/protocol.md, "Permissions enforced by the relay"). Relay thread
 * only. Messages are re-serialized from validated fields, never forwarded raw, so a visitor or
 * an agent only ever receives well-formed messages. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/relay/relay_control.h"

#define CONTROL_RATE  200.0 /* control messages per second per agent (pointer moves included) */
#define CONTROL_BURST 400
/* The visitor's asset answers: at most one per stylesheet an agent asked for, so a page's worth
 * in a burst, then a trickle; more is a broken or hostile SDK flooding the agents. */
#define ASSET_RATE  20.0
#define ASSET_BURST 100
#define URL_MAX     2048 /* bytes, the proxy's own bound on a target URL (docs/proxy.md) */
#define REASON_MAX  32

enum need { NEED_VISITOR, NEED_PERMISSION, NEED_CONSENT, NEED_NOTHING };

struct action {
    const char *type;
    const char *const *numbers; /* required finite numbers */
    int has_key;                /* a "key" string of 1..32 chars */
    int has_url;                /* a "url": absolute http(s), at most URL_MAX bytes */
    enum need need;
};

static const char *const xy[] = {"x", "y", NULL};
static const char *const xywh[] = {"x", "y", "w", "h", NULL};
static const char *const none[] = {NULL};
static const struct action actions[] = {
    {"pointer", xy, 0, 0, NEED_VISITOR},
    {"highlight", xywh, 0, 0, NEED_VISITOR},
    {"scroll", xy, 0, 0, NEED_CONSENT},
    {"click", xy, 0, 0, NEED_CONSENT},
    {"key", none, 1, 0, NEED_CONSENT},
    {"request_control", none, 0, 0, NEED_PERMISSION},
    {"release_control", none, 0, 0, NEED_NOTHING},
    {"asset_request", none, 0, 1, NEED_VISITOR},
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

/* GCRA on the connection's ctl_tat: an agent's actions, or the visitor's asset answers. */
static int rate_ok(struct rconn *c, double now, double rate, int burst)
{
    double interval = 1.0 / rate, tol = interval * (burst - 1);
    double tat = c->ctl_tat > now ? c->ctl_tat : now;
    if (tat - now > tol + 1e-9) /* epsilon: sums of 1/rate are not exact in binary */
        return 0;
    c->ctl_tat = tat + interval;
    return 1;
}

/* An absolute http(s) URL as a browser serializes one (URL.href): lowercase scheme, a host,
 * printable ASCII only (no spaces, controls or raw UTF-8: browsers percent-encode those), at
 * most URL_MAX bytes. The receivers parse it again; this keeps junk and huge strings off them. */
static int url_ok(json_t *v)
{
    if (!json_is_string(v))
        return 0;
    const char *u = json_string_value(v);
    size_t n = json_string_length(v), skip;
    if (n > URL_MAX)
        return 0;
    if (strncmp(u, "https://", 8) == 0)
        skip = 8;
    else if (strncmp(u, "http://", 7) == 0)
        skip = 7;
    else
        return 0;
    if (n == skip || u[skip] == '/' || u[skip] == '?' || u[skip] == '#')
        return 0; /* no host */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return 0;
    return 1;
}

/* A short machine-readable token: 1..REASON_MAX of [a-z0-9_]. */
static int reason_ok(json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > REASON_MAX)
        return 0;
    for (const char *p = json_string_value(v); *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

/* The action rebuilt from its validated fields (and an optional short ref), or NULL when one is
 * missing or out of bounds. */
static json_t *clean_action(const struct action *act, json_t *msg)
{
    json_t *clean = json_pack("{s:s}", "type", act->type);
    for (int i = 0; act->numbers[i]; i++) {
        json_t *v = json_object_get(msg, act->numbers[i]);
        if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
            fabs(json_number_value(v)) > 1e7)
            goto fail;
        json_object_set(clean, act->numbers[i], v);
    }
    if (act->has_key) {
        json_t *k = json_object_get(msg, "key");
        if (!json_is_string(k) || json_string_length(k) < 1 || json_string_length(k) > 32)
            goto fail;
        json_object_set(clean, "key", k);
    }
    if (act->has_url) {
        if (!url_ok(json_object_get(msg, "url")))
            goto fail;
        json_object_set(clean, "url", json_object_get(msg, "url"));
    }
    json_t *ref = json_object_get(msg, "ref");
    if (json_is_string(ref) && json_string_length(ref) <= 64)
        json_object_set(clean, "ref", ref);
    return clean;
fail:
    json_decref(clean);
    return NULL;
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
    json_t *clean = clean_action(act, msg);
    if (clean == NULL) {
        refuse(a, msg, type, "invalid");
        return;
    }
    int permitted = s->remote_control && a->claims.remote_control;
    const char *why = NULL;
    if (!rate_ok(a, rcore_now(a->core), CONTROL_RATE, CONTROL_BURST))
        why = "rate_limited";
    else if (act->need == NEED_PERMISSION && !permitted)
        why = "remote_control_off";
    else if (act->need == NEED_CONSENT && !permitted)
        why = "remote_control_off";
    else if (act->need == NEED_CONSENT && consent_of(s, a) != RCONSENT_GRANTED)
        why = "no_consent";
    else if (act->need != NEED_NOTHING && s->visitor == NULL &&
             !(s->cl != NULL && s->core->span.visitor_elsewhere(s)))
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
    if (act->need == NEED_NOTHING && s->visitor == NULL &&
        !(s->cl != NULL && s->core->span.visitor_elsewhere(s))) {
        json_decref(clean);
        return;
    }
    json_t *out =
        json_pack("{s:s, s:{s:s, s:s?}, s:o}", "type", "control", "agent", "id", a->claims.sub,
                  "name", a->claims.name[0] ? a->claims.name : NULL, "action", clean);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (text == NULL)
        return;
    if (s->visitor != NULL)
        rconn_send_text(s->visitor, text);
    else /* on the node that holds it */
        s->core->span.to_visitor(s, text);
    free(text);
    RSTAT_ADD(&a->core->stats, control_forwarded, 1);
}

/* asset_ready / asset_unavailable: the visitor's answer to an agent's asset_request, for every
 * agent of the session (any of them may be showing that stylesheet). The relay keeps no record of
 * what was asked: an unsolicited answer only makes the viewers load a proxy URL once more. */
static void visitor_asset(struct rconn *v, json_t *msg, const char *type)
{
    struct rsession *s = v->s;
    int unavailable = strcmp(type, "asset_unavailable") == 0;
    json_t *url = json_object_get(msg, "url"), *reason = json_object_get(msg, "reason");
    if (!url_ok(url) || (unavailable && !reason_ok(reason))) {
        refuse(v, msg, type, "invalid");
        return;
    }
    if (!rate_ok(v, rcore_now(v->core), ASSET_RATE, ASSET_BURST)) {
        refuse(v, msg, type, "rate_limited");
        return;
    }
    json_t *out = json_pack("{s:s, s:O}", "type", type, "url", url);
    if (unavailable)
        json_object_set(out, "reason", reason);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (text == NULL)
        return;
    for (struct rconn *a = s->agents; a; a = a->next)
        rconn_send_text(a, text);
    if (s->cl != NULL)
        s->core->span.to_agents(s, text);
    free(text);
    RSTAT_ADD(&v->core->stats, control_forwarded, 1);
}

static const struct {
    const char *name;
    enum rconsent c;
    enum relay_event_type ev;
} consent_states[] = {{"granted", RCONSENT_GRANTED, REV_CONTROL_GRANTED},
                      {"denied", RCONSENT_DENIED, REV_CONTROL_DENIED},
                      {"revoked", RCONSENT_REVOKED, REV_CONTROL_REVOKED}};
#define N_CONSENT_STATES (sizeof(consent_states) / sizeof(consent_states[0]))

/* The state a consent message names, or -1. */
static int consent_parse(json_t *msg, enum rconsent *c, enum relay_event_type *ev)
{
    const char *state = json_string_value(json_object_get(msg, "remote_control"));
    for (size_t i = 0; state && i < N_CONSENT_STATES; i++) {
        if (strcmp(state, consent_states[i].name) == 0) {
            *c = consent_states[i].c;
            *ev = consent_states[i].ev;
            return 0;
        }
    }
    return -1;
}

/* The visitor's decision reaches the agents of this node: recorded on their connections, and
 * told to those it concerns. Returns how many agents here it reached. */
static int consent_deliver(struct rsession *s, const char *agent, enum rconsent c)
{
    int n = consent_set(s, agent, c);
    char text[96];
    snprintf(text, sizeof(text), "{\"type\":\"consent\",\"remote_control\":\"%s\"}",
             consent_name(c));
    for (struct rconn *a = s->agents; a; a = a->next)
        if (agent[0] == '\0' || strcmp(agent, a->claims.sub) == 0)
            rconn_send_text(a, text);
    return n;
}

static void visitor_message(struct rconn *v, json_t *msg)
{
    struct rsession *s = v->s;
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type && (strcmp(type, "asset_ready") == 0 || strcmp(type, "asset_unavailable") == 0)) {
        visitor_asset(v, msg, type);
        return;
    }
    if (type == NULL || strcmp(type, "consent") != 0)
        return; /* unknown visitor messages are ignored: newer SDKs may send more */
    json_t *aid = json_object_get(msg, "agent_id");
    const char *agent = json_is_string(aid) ? json_string_value(aid) : "";
    enum rconsent c;
    enum relay_event_type ev;
    if (consent_parse(msg, &c, &ev) != 0 || strlen(agent) >= sizeof(v->claims.sub))
        return;
    int here = consent_deliver(s, agent, c);
    if (s->cl != NULL) { /* the agent may be on another node; agents joining later read it */
        json_t *out = json_pack("{s:s, s:s, s:s}", "type", "consent", "remote_control",
                                consent_name(c), "agent_id", agent);
        char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
        json_decref(out);
        if (text != NULL)
            s->core->span.to_agents(s, text);
        free(text);
        if (agent[0] == '\0')
            s->core->span.consent_all(s, consent_name(c));
    } else if (here == 0 && agent[0] != '\0') {
        return; /* no such agent connected: nothing to tell or record */
    }
    rcore_post(s->core, ev, s->id, s->tenant, agent[0] ? agent : NULL, NULL);
}

void rcontrol_from_visitor_elsewhere(struct rsession *s, const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    enum rconsent c;
    enum relay_event_type ev;
    if (type != NULL && strcmp(type, "consent") == 0) {
        const char *agent = json_string_value(json_object_get(msg, "agent_id"));
        if (agent != NULL && consent_parse(msg, &c, &ev) == 0)
            consent_deliver(s, agent, c);
    } else if (type != NULL &&
               (strcmp(type, "asset_ready") == 0 || strcmp(type, "asset_unavailable") == 0)) {
        for (struct rconn *a = s->agents; a; a = a->next) /* rebuilt by the visitor's node */
            rconn_send_text(a, text);
    }
    json_decref(msg);
}

enum rconsent rcontrol_consent_state(const char *name)
{
    for (size_t i = 0; name && i < N_CONSENT_STATES; i++)
        if (strcmp(name, consent_states[i].name) == 0)
            return consent_states[i].c;
    return RCONSENT_NONE;
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
