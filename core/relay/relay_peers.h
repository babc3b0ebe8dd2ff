/* What the other nodes say about a session, on its channel (docs/cluster.md, "Keys"):
 * "F<frame>" (published by the append script), "C<node> <json>" (the visitor connected with its
 * generation or left, agents joined or left), "U<node> <json>" (for the visitor, from an agent's
 * node), "D<node> <json>" (for the agents, from the visitor's node). A node ignores its own. The
 * frames go to the session's copy (core/relay/relay_follow.h); the rest to the connections here.
 * Internal to core/relay/; relay thread only. */
#ifndef COBROWSE_CORE_RELAY_PEERS_H
#define COBROWSE_CORE_RELAY_PEERS_H

#include "core/relay/relay_follow.h"

/* A message on the channel of session sid (the cluster's hook). */
void rpeers_message(struct rcluster *rc, const char *sid, const unsigned char *data, size_t len);

#endif
