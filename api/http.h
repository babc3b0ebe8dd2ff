/* The per-request context shared by the dispatcher (server.c) and the route handlers, and the
 * helpers handlers use to answer: JSON bodies, RFC 9457 problems, lists, database calls.
 *
 * Threading: a context lives on one MHD worker thread for one request. Handlers own nothing in
 * it: the dispatcher frees the body, the response and releases the database connection.
 */
#ifndef COBROWSE_API_HTTP_H
#define COBROWSE_API_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <ulfius.h>

#include "core/store/db.h"
#include "core/base/token.h"

struct server;
struct http_ctx;

#include "api/scopes.h"

#define API_SECRET_LEN 32

/* What the REST layer needs of the options (app/options.c's registry fills it: one entry per
 * option, its flag, environment variable, default and bounds are there). Filled by the main
 * thread before server_start; read-only afterwards, from any thread. */
struct api_config {
    char listen_host[64];
    int listen_port;
    char public_url[512]; /* no trailing slash */
    char relay_url[512];  /* given to clients in session answers and the viewer's CSP */
    /* The proxy listener (api/listen.h): proxy URLs and stylesheet uploads, a thread per
     * connection. proxy_public_url: how viewers and visitors reach it, no trailing slash. */
    char proxy_listen_host[64];
    int proxy_listen_port;
    char proxy_public_url[512];
    int proxy_connections;
    char database_url[1024];
    int http_threads;
    int db_pool_size;
    size_t max_body_bytes;
    int key_cache_seconds;       /* 0: every request looks its key up */
    int http_max_connections;    /* the listener's whole connection limit */
    int http_connections_per_ip; /* per client address */
    int http_request_seconds;    /* a request's deadline (api/deadline.h) */
    char metrics_token[256];     /* "" : /metrics answers loopback clients only (api/metrics.h) */
    unsigned char jwt_secret[API_SECRET_LEN];
    unsigned char key_hash_secret[API_SECRET_LEN];
    unsigned char data_key[API_SECRET_LEN]; /* seals secrets at rest (core/base/crypto.h) */
    /* --webhook-allow-private: CIDRs webhook receivers may be in although private ("" none);
     * when set, endpoints may also use http: (docs/webhooks.md). */
    char webhook_allow_private[1024];
};

enum route_flags {
    ROUTE_PUBLIC = 1u << 0,         /* no authentication (health, metrics, preflight) */
    ROUTE_PUBLISHABLE_OK = 1u << 1, /* publishable keys may call it */
    ROUTE_NEEDS_TENANT = 1u << 2,   /* needs an acting tenant (admins must send the header) */
    ROUTE_BODY = 1u << 3,           /* expects a JSON object body */
    ROUTE_BODY_OPTIONAL = 1u << 4,  /* a JSON object body may be sent, or none */
    ROUTE_SESSION_TOKEN = 1u << 5,  /* authenticated by a session JWT (visitor or agent token),
                                     * not an API key; answers carry Access-Control-Allow-Origin: *
                                     */
    ROUTE_UPLOAD_BODY = 1u << 6,    /* body up to HTTP_UPLOAD_BODY_BYTES, not max_body_bytes */
    ROUTE_PROXY_LISTENER = 1u << 7, /* served on the proxy listener (--proxy-listen), not the
                                     * API's (api/listen.h) */
};

/* The body limit of ROUTE_UPLOAD_BODY routes: a stylesheet's text of at most 1 MiB, its URL and
 * the JSON around them. */
#define HTTP_UPLOAD_BODY_BYTES ((1u << 20) + 4096)

struct route {
    const char *method;
    const char *path;      /* OpenAPI form: /v1/tenants/{id} */
    const char *operation; /* operationId in openapi/openapi.yaml */
    void (*handler)(struct http_ctx *c);
    unsigned scope; /* required scope, 0 for none */
    unsigned flags;
};

enum principal_kind { PRINCIPAL_NONE = 0, PRINCIPAL_ADMIN, PRINCIPAL_KEY, PRINCIPAL_SESSION };
enum key_type { KEY_SECRET = 1, KEY_PUBLISHABLE = 2 };

struct principal {
    enum principal_kind kind;
    enum key_type key_type;
    char id[48];        /* key id, admin token id, or a session token's jti */
    char tenant_id[48]; /* the key's tenant ("" for admins) */
    char parent_id[48]; /* that tenant's parent ("" if top-level) */
    unsigned scopes;
    double api_rps;
    char *allowed_origins; /* JSON array text, publishable keys only; freed by the dispatcher */
};

struct http_ctx {
    struct server *srv;
    const struct api_config *cfg;
    const struct _u_request *req;
    struct _u_response *resp;
    const struct route *route;
    int route_index;
    char request_id[48];
    double started;
    struct db_conn *db;
    json_t *body; /* parsed request body, or NULL */
    struct principal who;
    struct token_claims session; /* the verified session token (ROUTE_SESSION_TOKEN routes) */
    char tenant_id[48];          /* acting tenant, "" when an admin acts at platform level */
    int tenant_is_self;          /* acting tenant == the key's own tenant */
    int answered;                /* a response (success or problem) has been set */
    int status;
    const char *problem_code;
    int audit_pending;   /* a mutating route: set the actor before the first statement */
    int audit_actor_set; /* the actor is set on db (api/audit.h): clear it before release */
};

/* Answers with status and a JSON text body (copied). */
void http_reply_text(struct http_ctx *c, int status, const char *json_text);
/* Answers with status and a JSON value (reference stolen). */
void http_reply_json(struct http_ctx *c, int status, json_t *body);
/* Answers with an RFC 9457 problem. field may be NULL. */
void http_problem(struct http_ctx *c, int status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void http_set_header(struct http_ctx *c, const char *name, const char *value);
const char *http_header(struct http_ctx *c, const char *name); /* case-insensitive */
const char *http_param(struct http_ctx *c, const char *name);  /* path or query parameter */

/* Runs a statement on the request's connection (acquired on first use). On a database error it
 * answers 503/500 itself and returns NULL; otherwise the caller PQclear()s the result. */
PGresult *http_db(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params);
/* Same, but returns failed results too (to inspect db_sqlstate); NULL only if unreachable. */
PGresult *http_db_raw(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params);
/* Gives the request's database connection back to the pool now rather than when the request
 * ends: for a handler that goes on to wait for something else (the proxy, for an upstream). A
 * later http_db takes one again. */
void http_db_done(struct http_ctx *c);

/* Pagination: validates limit (1..100, default 20) and starting_after (an id with prefix).
 * Returns 0, or -1 after answering 400 invalid_parameter. *after is NULL when absent. */
int http_page_params(struct http_ctx *c, const char *id_prefix, int *limit, const char **after);
/* Answers 200 with {"object":"list","data":[rows' column 0 JSON],"has_more"} where res holds up
 * to limit+1 rows (the extra row only signals has_more). */
void http_reply_list(struct http_ctx *c, PGresult *res, int limit);
/* A list route over the acting tenant's rows of one kind: checks the query (limit and
 * starting_after, an id with prefix), runs q with $1 the tenant, $2 starting_after (NULL when
 * absent) and $3 limit + 1, and answers the page. */
void http_reply_tenant_page(struct http_ctx *c, struct db_stmt *q, const char *prefix);
/* Rejects query parameters not in allowed (NULL-terminated) and not path parameters of the route.
 * Returns 0, or -1 after answering 400 invalid_parameter. */
int http_check_query(struct http_ctx *c, const char *const *allowed);

/* Runs stmt and returns its result if it has exactly one row; otherwise answers 404 for `what`
 * (or the database error) and returns NULL. The caller PQclear()s the result. */
PGresult *http_db_one(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params,
                      const char *what);
/* Runs stmt and answers 200 with column 0 of its single row, or 404 for `what` when it returns no
 * row. Returns 1 if a row was found, 0 if not, -1 on a database error (answered too). */
int http_reply_one(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params,
                   const char *what);
/* Sets Retry-After (whole seconds, at least 1) and writes the value into out[16]. */
void http_set_retry_after(struct http_ctx *c, double seconds, char out[16]);

/* Answers 404 not_found for a kind of object ("session", "tenant", ...). */
void http_not_found(struct http_ctx *c, const char *what);

/* Answers status with the JSON object text obj plus one more string member key:value at its end
 * (for values shown once: a key's secret, a session's visitor token). */
void http_reply_with_field(struct http_ctx *c, int status, const char *obj, const char *key,
                           const char *value);
/* Answers 422 from a validation error. */
struct verror;
void http_reply_verror(struct http_ctx *c, const struct verror *err);
/* Validates c->body (or {} when there is none) against fields; answers 422 and returns -1. */
struct vfield;
int http_validate_body(struct http_ctx *c, const struct vfield *fields);
/* The life of one request's context, for the route dispatcher and for answers outside the route
 * table (api/static/static.c): init sets it up (request id, clock); finish, once answered, sets
 * X-Request-Id, counts it in the metrics, writes the request's log line (labelled with
 * c->route->path when c->route is set) and releases its database connection. */
void http_ctx_init(struct http_ctx *c, struct server *srv, const struct _u_request *req,
                   struct _u_response *resp);
void http_ctx_finish(struct http_ctx *c);

#endif
