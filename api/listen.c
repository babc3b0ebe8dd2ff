/* One HTTP listener (api/listen.h): address, ulfius instance, libmicrohttpd daemon, deadline. */
#include "api/listen.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <string.h>

#include "api/deadline.h"
#include "core/base/log.h"

/* MHD's inactivity timeout: a backstop for connections the deadline could not track, and the
 * end of idle keep-alive connections. */
#define IDLE_TIMEOUT_SECONDS 60

/* ulfius needs its own completion callback; the deadline learns there that a request is done. */
static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    mhd_request_completed(NULL, conn, con_cls, toe);
    deadline_completed(cls, conn);
}

int listen_init(struct listener *l, const struct listen_spec *spec)
{
    memset(&l->addr, 0, sizeof(l->addr));
    l->addr.sin_family = AF_INET;
    l->addr.sin_port = htons((uint16_t)spec->port);
    const char *host = strcmp(spec->host, "localhost") == 0 ? "127.0.0.1" : spec->host;
    if (inet_pton(AF_INET, host, &l->addr.sin_addr) != 1) {
        log_json(LOG_ERROR, "invalid listen address",
                 json_pack("{s:s, s:s, s:s, s:s}", "listener", spec->name, "option", spec->option,
                           "host", spec->host, "hint",
                           "use an IPv4 address such as 127.0.0.1 or 0.0.0.0"));
        return -1;
    }
    l->deadline = deadline_new(spec->request_seconds,
                               spec->threads > 0 ? DEADLINE_SERVED_TIME : DEADLINE_WALL_TIME);
    if (l->deadline == NULL)
        return -1;
    if (ulfius_init_instance(&l->instance, (unsigned)spec->port, &l->addr, NULL) != U_OK)
        return -1;
    l->initialised = 1;
    /* One more byte than allowed: ulfius truncates silently, so a body that reaches the limit
     * plus one was too large (answered 413 by the dispatcher). */
    l->instance.max_post_body_size = spec->max_body + 1;
    l->instance.check_utf8 = 0; /* we answer 400 invalid_utf8 instead of dropping values */
    l->instance.allowed_post_processor = U_POST_PROCESS_NONE;
    return 0;
}

/* A pool: MHD's epoll loop on `threads` workers, each serving many connections. A thread per
 * connection: poll on each connection's own thread, so a handler that waits holds only its
 * connection. Either way, the whole connection limit, one per client address so that one host
 * cannot take all of them, and the request deadline's callbacks. */
int listen_start(struct listener *l, const struct listen_spec *spec)
{
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_SECONDS, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, spec->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, spec->per_ip, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &l->addr},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, l->deadline},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)deadline_notify, l->deadline},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL},
        {MHD_OPTION_END, 0, NULL}, /* the pool's size, below */
        {MHD_OPTION_END, 0, NULL},
    };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (spec->threads > 0) {
        flags |= MHD_USE_EPOLL;
        ops[7] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, spec->threads, NULL};
    } else {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    }
    if (ulfius_start_framework_with_mhd_options(&l->instance, flags, ops) != U_OK) {
        log_json(LOG_ERROR, "could not listen",
                 json_pack("{s:s, s:s, s:i, s:s, s:s}", "listener", spec->name, "host", spec->host,
                           "port", spec->port, "option", spec->option, "hint",
                           "is another process using the port? change the address with the "
                           "option named here"));
        return -1;
    }
    l->started = 1;
    if (deadline_start(l->deadline) != 0)
        return -1;
    return 0;
}

void listen_stop(struct listener *l)
{
    if (l->started) {
        deadline_stop(l->deadline); /* before MHD: its nodes point at MHD's threads */
        ulfius_stop_framework(&l->instance);
        l->started = 0;
    }
    if (l->initialised) {
        ulfius_clean_instance(&l->instance);
        l->initialised = 0;
    }
    deadline_free(l->deadline);
    l->deadline = NULL;
}
