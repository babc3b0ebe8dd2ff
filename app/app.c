#include "app/app.h"

#include <string.h>

#include "api/metrics.h"
#include "api/static/static.h"
#include "api/sweeper.h"
#include "core/proxy/proxy.h"
#include "core/base/log.h"
#include "core/cluster/kv.h"
#include "core/relay/relay.h"
#include "core/webhook/dispatch.h"

/* The browser files: loaded before the REST server starts, mounted on it, freed after it stopped.
 */
static int static_service_start(void *self)
{
    struct app *app = self;
    app->site = static_open(&app->cfg->web);
    return app->site != NULL ? 0 : -1;
}

static void static_service_stop(void *self)
{
    struct app *app = self;
    static_free(app->site);
    app->site = NULL;
}

static int mount_static(struct server *srv, void *arg)
{
    struct app *app = arg;
    return static_register(&srv->api.instance, srv, app->site);
}

static char *render_metrics(void *arg)
{
    struct app *app = arg;
    return lifecycle_metrics(&app->lifecycle);
}

static int relay_state_of(void *self)
{
    struct app *app = self;
    return relay_draining(app->relay);
}

static int relay_redis_of(void *self)
{
    struct app *app = self;
    return relay_cluster_state(app->relay);
}

/* /readyz: the relay, while it runs (draining, and its Redis with --redis-url). */
static int relay_state(void *arg, int *redis)
{
    struct app *app = arg;
    *redis = lifecycle_query(&app->lifecycle, "relay", relay_redis_of, -1);
    return lifecycle_query(&app->lifecycle, "relay", relay_state_of, -1);
}

/* The stylesheet proxy (its fetcher thread): started before the REST server, which serves it. */
static int proxy_service_start(void *self)
{
    struct app *app = self;
    struct config *cfg = app->cfg;
    cfg->proxy.secret = cfg->api.jwt_secret;
    cfg->proxy.secret_len = sizeof(cfg->api.jwt_secret);
    cfg->proxy.redis_url = cfg->relay.redis_url;
    app->proxy = proxy_new(&cfg->proxy);
    if (app->proxy == NULL || proxy_start(app->proxy) != 0) {
        proxy_free(app->proxy);
        app->proxy = NULL;
        return -1;
    }
    app->server.proxy = app->proxy;
    return 0;
}

static void proxy_service_stop(void *self)
{
    struct app *app = self;
    app->server.proxy = NULL;
    proxy_free(app->proxy); /* stops the fetcher first */
    app->proxy = NULL;
}

static char *proxy_service_metrics(void *self)
{
    struct app *app = self;
    return proxy_metrics_text(app->proxy);
}

static void api_service_stop(void *self)
{
    struct app *app = self;
    server_stop(&app->server);
    kv_free(app->server.kv); /* after the workers that use it */
    app->server.kv = NULL;
}

static int api_service_start(void *self)
{
    struct app *app = self;
    app->server.mount = mount_static;
    app->server.mount_arg = app;
    app->server.metrics = render_metrics;
    app->server.metrics_arg = app;
    app->server.relay_state = relay_state;
    app->server.relay_state_arg = app;
    if (app->cfg->relay.redis_url[0] != '\0') { /* GET /v1/sessions/{id} shows relay_node */
        struct kv_config kc = {app->cfg->relay.redis_url, 2, 500, 500, 1000};
        if ((app->server.kv = kv_new(&kc)) == NULL)
            return -1;
    }
    if (server_start(&app->server, &app->cfg->api) != 0) {
        api_service_stop(app);
        return -1;
    }
    return 0;
}

static char *api_service_metrics(void *self)
{
    struct app *app = self;
    return metrics_render(app->server.db);
}

static int sweeper_service_start(void *self)
{
    struct app *app = self;
    app->sweeper = sweeper_new(app->server.db, app->cfg->session_sweep_seconds);
    if (app->sweeper == NULL || sweeper_start(app->sweeper) != 0) {
        sweeper_free(app->sweeper);
        app->sweeper = NULL;
        return -1;
    }
    return 0;
}

static void sweeper_service_stop(void *self)
{
    struct app *app = self;
    sweeper_free(app->sweeper); /* stops the thread first */
    app->sweeper = NULL;
}

static char *sweeper_service_metrics(void *self)
{
    struct app *app = self;
    return sweeper_metrics_text(app->sweeper);
}

/* The webhook dispatcher. Its schedule and duration were checked when the options were parsed
 * (app/options.c); here they become numbers. */
static int webhook_service_start(void *self)
{
    struct app *app = self;
    struct config *cfg = app->cfg;
    char err[160];
    struct dispatch_config dc = {
        .database_url = cfg->api.database_url,
        .data_key = cfg->api.data_key,
        .allow_private = cfg->api.webhook_allow_private,
        .concurrency = cfg->webhook.concurrency,
        .timeout_ms = cfg->webhook.timeout_ms,
        .disable_after_ms = schedule_parse_duration(cfg->webhook.disable_after),
        .retention_days = cfg->webhook.retention_days,
    };
    if (schedule_parse(cfg->webhook.retry_schedule, &dc.schedule, err, sizeof err) != 0 ||
        dc.disable_after_ms < 1000)
        return -1; /* refused by the options' checks already */
    app->webhooks = dispatch_new(&dc);
    if (app->webhooks == NULL || dispatch_start(app->webhooks) != 0) {
        dispatch_free(app->webhooks);
        app->webhooks = NULL;
        return -1;
    }
    return 0;
}

static void webhook_service_stop(void *self)
{
    struct app *app = self;
    dispatch_free(app->webhooks); /* stops the thread and its fetcher first */
    app->webhooks = NULL;
}

static char *webhook_service_metrics(void *self)
{
    struct app *app = self;
    return dispatch_metrics_text(app->webhooks);
}

static int relay_service_start(void *self)
{
    struct app *app = self;
    struct config *cfg = app->cfg;
    cfg->relay.jwt_secret = cfg->api.jwt_secret;
    cfg->relay.jwt_secret_len = sizeof(cfg->api.jwt_secret);
    cfg->relay.database_url = cfg->api.database_url;
    app->relay = relay_new(&cfg->relay);
    if (app->relay == NULL)
        return -1;
    if (relay_start(app->relay) != 0) {
        relay_free(app->relay);
        app->relay = NULL;
        return -1;
    }
    return 0;
}

static void relay_service_drain(void *self)
{
    struct app *app = self;
    relay_drain(app->relay);
}

static void relay_service_stop(void *self)
{
    struct app *app = self;
    relay_stop(app->relay);
    relay_free(app->relay);
    app->relay = NULL;
}

static char *relay_service_metrics(void *self)
{
    struct app *app = self;
    return relay_metrics_text(app->relay);
}

void app_init(struct app *app, struct config *cfg)
{
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    const struct service services[] = {
        {"static", static_service_start, NULL, static_service_stop, NULL, app},
        {"proxy", proxy_service_start, NULL, proxy_service_stop, proxy_service_metrics, app},
        {"api", api_service_start, NULL, api_service_stop, api_service_metrics, app},
        {"sweeper", sweeper_service_start, NULL, sweeper_service_stop, sweeper_service_metrics,
         app},
        {"webhooks", webhook_service_start, NULL, webhook_service_stop, webhook_service_metrics,
         app},
        {"relay", relay_service_start, relay_service_drain, relay_service_stop,
         relay_service_metrics, app},
    };
    _Static_assert(sizeof(services) == sizeof(app->services), "one slot per service");
    memcpy(app->services, services, sizeof(services));
    lifecycle_init(&app->lifecycle);
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        lifecycle_add(&app->lifecycle, &app->services[i]);
}

int app_start(struct app *app)
{
    return lifecycle_start(&app->lifecycle);
}

void app_stop(struct app *app)
{
    lifecycle_drain(&app->lifecycle);
    lifecycle_stop(&app->lifecycle);
    lifecycle_destroy(&app->lifecycle);
}
