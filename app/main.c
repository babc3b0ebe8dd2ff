/* cobrowsed: the co-browsing platform's single binary. Subcommands: serve, migrate,
 * create-admin-token, routes, version (see `cobrowsed --help`). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/admin.h"
#include "app/config.h"
#include "api/server.h"
#include "api/sweeper.h"
#include "core/store/db.h"
#include "core/base/log.h"
#include "core/store/migrate.h"
#include "core/relay/relay.h"

#define COBROWSE_VERSION "0.1.0"

static int need_database(const struct config *cfg)
{
    if (cfg->database_url[0] == '\0') {
        fprintf(stderr, "cobrowsed: DATABASE_URL is not set. Set it (or --database-url), or use "
                        "scripts/run.sh, which starts a private PostgreSQL for you.\n");
        return -1;
    }
    return 0;
}

static int migrate_with(const struct config *cfg)
{
    PGconn *pg = db_connect(cfg->database_url);
    if (pg == NULL)
        return -1;
    int n = migrate_run(pg);
    PQfinish(pg);
    if (n < 0)
        return -1;
    log_json(LOG_INFO, "migrations up to date", json_pack("{s:i}", "applied", n));
    return 0;
}

/* On the first development start, create an admin token and keep it in the data dir so the
 * run script can show it again. In production, only say how to make one. */
static void first_start_admin(const struct config *cfg)
{
    PGconn *pg = db_connect(cfg->database_url);
    if (pg == NULL)
        return;
    if (admin_count_tokens(pg) == 0) {
        if (cfg->production) {
            log_json(LOG_WARN, "no platform admin token exists",
                     json_pack("{s:s}", "hint", "run: cobrowsed create-admin-token --name ops"));
        } else {
            char token[80], path[700];
            if (admin_create_token(pg, cfg, "first-start", token, sizeof(token)) == 0) {
                snprintf(path, sizeof(path), "%s/admin-token", cfg->data_dir);
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (fd >= 0) {
                    dprintf(fd, "%s\n", token);
                    close(fd);
                }
                printf("\nPlatform admin token (shown once, also saved to %s):\n  %s\n\n", path,
                       token);
                fflush(stdout);
            }
        }
    }
    PQfinish(pg);
}

static int cmd_serve(struct config *cfg)
{
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Block before any thread starts, so only sigwait below sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (need_database(cfg) != 0 || config_load_secrets(cfg) != 0 || migrate_with(cfg) != 0)
        return 1;
    first_start_admin(cfg);
    cfg->relay.jwt_secret = cfg->jwt_secret;
    cfg->relay.jwt_secret_len = sizeof(cfg->jwt_secret);
    cfg->relay.database_url = cfg->database_url;
    struct relay *relay = relay_new(&cfg->relay);
    if (relay == NULL)
        return 1;
    srv.relay = relay; /* before the API's threads exist: /metrics reads it */
    if (server_start(&srv, cfg) != 0) {
        server_stop(&srv);
        relay_free(relay);
        return 1;
    }
    if (sweeper_start(srv.db, cfg->session_sweep_seconds) != 0) {
        server_stop(&srv);
        relay_free(relay);
        return 1;
    }
    /* Every relay connection is a file descriptor: use all the kernel allows us. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (relay_start(relay) != 0) {
        sweeper_stop();
        server_stop(&srv);
        relay_free(relay);
        return 1;
    }
    log_json(LOG_INFO, "listening",
             json_pack("{s:s, s:s, s:i, s:i}", "api_url", cfg->public_url, "relay_url",
                       cfg->relay_url, "http_threads", cfg->http_threads, "db_pool",
                       cfg->db_pool_size));
    printf("cobrowsed %s: REST API on %s, relay on %s\n", COBROWSE_VERSION, cfg->public_url,
           cfg->relay_url);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    log_json(LOG_INFO, "stopping",
             json_pack("{s:s}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    /* Relay first: its clients are told to reconnect elsewhere while the API still answers. */
    relay_drain(relay);
    relay_stop(relay);
    sweeper_stop();
    server_stop(&srv); /* no /metrics request can read the relay after this */
    relay_free(relay);
    log_json(LOG_INFO, "stopped", NULL);
    return 0;
}

static int cmd_create_admin_token(struct config *cfg, int argc, char **argv)
{
    const char *name = "admin";
    int rest = 0;
    char **rest_argv = calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--name=", 7) == 0)
            name = argv[i] + 7;
        else
            rest_argv[rest++] = argv[i];
    }
    int rc = config_parse(cfg, rest, rest_argv);
    free(rest_argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    log_set_level_name(cfg->log_level);
    if (need_database(cfg) != 0 || config_load_secrets(cfg) != 0 || migrate_with(cfg) != 0)
        return 1;
    PGconn *pg = db_connect(cfg->database_url);
    if (pg == NULL)
        return 1;
    char token[80];
    rc = admin_create_token(pg, cfg, name, token, sizeof(token));
    PQfinish(pg);
    if (rc != 0)
        return 1;
    printf("%s\n", token);
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        config_print_help(argv[0]);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("cobrowsed %s\n", COBROWSE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) {
        server_print_routes();
        return 0;
    }
    if (strcmp(cmd, "create-admin-token") == 0)
        return cmd_create_admin_token(&cfg, argc - 2, argv + 2);
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0) {
        fprintf(stderr, "cobrowsed: unknown command '%s' (see cobrowsed --help)\n", cmd);
        return 2;
    }
    int rc = config_parse(&cfg, argc - 2, argv + 2);
    if (rc > 0) {
        config_print_help(argv[0]);
        return 0;
    }
    if (rc < 0)
        return 2;
    log_set_level_name(cfg.log_level);
    if (strcmp(cmd, "migrate") == 0)
        return need_database(&cfg) == 0 && migrate_with(&cfg) == 0 ? 0 : 1;
    return cmd_serve(&cfg);
}
