/* Text messages on the relay: agents' control actions, the visitor's consent, and the policy that
 * decides which actions reach the visitor (docs/protocol.md). Relay thread only. */
#ifndef COBROWSE_CORE_RELAY_CONTROL_H
#define COBROWSE_CORE_RELAY_CONTROL_H

#include "core/relay/relay_conn.h"

/* A complete text message from c (an agent's action or the visitor's consent). */
void rcontrol_text(struct rconn *c, const char *text, size_t len);
/* A message of the visitor on another node for the agents here (its consent, its asset answers;
 * already checked and rebuilt by that node). */
void rcontrol_from_visitor_elsewhere(struct rsession *s, const char *text, size_t len);
/* The consent state a name stands for ("granted", "denied", "revoked"; anything else: none). */
enum rconsent rcontrol_consent_state(const char *name);
/* This agent's consent state: "none", "granted", "denied" or "revoked". */
const char *rcontrol_consent(const struct rsession *s, const char *agent_id);

#endif
