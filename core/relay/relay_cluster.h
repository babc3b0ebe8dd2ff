/* The relay's sessions across several nodes (docs/cluster.md): the glue between the session
 * layer and the cluster's Redis (core/cluster/cluster.h). Present only with --redis-url: on one
 * node core->cluster and every session's `cl` are NULL and nothing here runs.
 *
 * What it does:
 *   admission  after the upgrade the connection waits (reads paused) for the cluster-wide
 *              budgets (the tenant's sessions, agents per session); a refusal closes it with
 *              4029/4030/4031, Redis down with 4503 unless the session is on this node
 *   following  a node with clients of a session subscribes to its channel and reads its history
 *              from Redis, so that its copy of the session (history, have) is the visitor's
 *              node's; frames arrive in seq order, a hole is filled from the history
 *   appending  the visitor's frames are appended to Redis (fencing by generation, duplicates,
 *              gaps) and applied once appended; acked then
 *   presence   the visitor and agents on other nodes (hello, visitor connected/disconnected,
 *              agent_joined/left), the agents' control messages to the visitor's node and the
 *              visitor's answers to the agents' nodes; touch every 10 s; idle across nodes
 *
 * Ownership: struct rcluster is the relay's (relay.c); struct rcsession the session's (freed by
 * rcluster_session_free). A request in flight holds its connection (rconn.async_refs); the I/O
 * layer calls rcluster_conn_release instead of freeing a connection that is still held.
 * Threading: relay thread only, except rcluster_is_up and rcluster_metrics (any thread).
 */
#ifndef COBROWSE_CORE_RELAY_CLUSTER_H
#define COBROWSE_CORE_RELAY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/relay/relay_core.h"

struct ev_loop;

/* Connects to url (it does not wait) as node_id. NULL on a bad URL or out of memory (logged). */
struct rcluster *rcluster_new(struct rcore *core, struct ev_loop *loop, const char *url,
                              const char *node_id);
/* Answers what is in flight (connections held are released) and frees. NULL is fine. */
void rcluster_free(struct rcluster *rc);
/* 1 when Redis is reachable and the scripts loaded. Any thread. */
int rcluster_is_up(const struct rcluster *rc);
/* Prometheus lines (malloc'd; NULL on out of memory). Any thread. */
char *rcluster_metrics(const struct rcluster *rc);
/* Once a second (relay thread): presence touches every 10 s. */
void rcluster_tick(struct rcluster *rc);

/* ---- the I/O layer ---- */
/* c was upgraded: it joins its session once the cluster admitted it (or is closed). */
void rcluster_admit(struct rcluster *rc, struct rconn *c);
/* The I/O layer lets go of c (WSI_DESTROY): frees it now, or when the last request holding it
 * is answered. */
void rcluster_conn_release(struct rconn *c);

/* ---- the session layer ---- */
/* The span seam (relay_core.h) over this module, for rcore.span. */
struct relay_span rcluster_span(void);

#endif
