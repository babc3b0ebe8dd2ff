/* cobrowsed: the co-browsing platform's single binary. Subcommands: serve, migrate,
 * create-admin-token, routes, version, help (see `cobrowsed --help`). The options come from the
 * registry in app/config.c; `serve` runs the services of app/app.c. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/admin.h"
#include "api/server.h"
#include "app/app.h"
#include "app/config.h"
#include "core/base/log.h"
#include "core/store/db.h"
#include "core/store/migrate.h"

#define COBROWSE_VERSION "0.1.0"

static int need_database(const struct config *cfg)
{
    if (cfg->api.database_url[0] == '\0') {
        fprintf(stderr, "cobrowsed: DATABASE_URL is not set. Set it (or --database-url), or use "
                        "scripts/run.sh, which starts a private PostgreSQL for you.\n");
        return -1;
    }
    return 0;
}

static int migrate_with(const struct config *cfg)
{
    PGconn *pg = db_connect(cfg->api.database_url);
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
    PGconn *pg = db_connect(cfg->api.database_url);
    if (pg == NULL)
        return;
    if (admin_count_tokens(pg) == 0) {
        if (cfg->production) {
            log_json(LOG_WARN, "no platform admin token exists",
                     json_pack("{s:s}", "hint", "run: cobrowsed create-admin-token --name ops"));
        } else {
            char token[80], path[700];
            if (admin_create_token(pg, &cfg->api, "first-start", token, sizeof(token)) == 0) {
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

/* Every relay connection is a file descriptor: use all the kernel allows us. */
static void raise_fd_limit(void)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
}

static int cmd_serve(struct config *cfg)
{
    static struct app app;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Block before any thread starts, so only sigwait below sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (need_database(cfg) != 0 || config_load_secrets(cfg) != 0 || migrate_with(cfg) != 0)
        return 1;
    first_start_admin(cfg);
    raise_fd_limit();
    app_init(&app, cfg);
    if (app_start(&app) != 0) {
        app_stop(&app);
        return 1;
    }
    log_json(LOG_INFO, "listening",
             json_pack("{s:s, s:s, s:i, s:i}", "api_url", cfg->api.public_url, "relay_url",
                       cfg->api.relay_url, "http_threads", cfg->api.http_threads, "db_pool",
                       cfg->api.db_pool_size));
    printf("cobrowsed %s: REST API on %s, relay on %s\n", COBROWSE_VERSION, cfg->api.public_url,
           cfg->api.relay_url);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    log_json(LOG_INFO, "stopping",
             json_pack("{s:s}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    app_stop(&app);
    log_json(LOG_INFO, "stopped", NULL);
    return 0;
}

/* Parses the options; returns 0 to go on, else the exit status (help printed: 0; refused: 2). */
static int parse_options(struct config *cfg, const char *prog, int argc, char **argv,
                         int *exit_code)
{
    char err[512];
    if (config_parse(cfg, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "cobrowsed: %s (see cobrowsed --help)\n", err);
        *exit_code = 2;
        return -1;
    }
    if (cfg->help) {
        config_print_help(stdout, prog);
        *exit_code = 0;
        return -1;
    }
    log_set_level_name(cfg->log_level);
    return 0;
}

static int cmd_create_admin_token(struct config *cfg, const char *prog, int argc, char **argv)
{
    const char *name = "admin";
    int rest = 0, code = 0;
    char **rest_argv = calloc((size_t)argc + 1, sizeof(char *));
    if (rest_argv == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--name=", 7) == 0)
            name = argv[i] + 7;
        else
            rest_argv[rest++] = argv[i];
    }
    int rc = parse_options(cfg, prog, rest, rest_argv, &code);
    free(rest_argv);
    if (rc != 0)
        return code;
    if (need_database(cfg) != 0 || config_load_secrets(cfg) != 0 || migrate_with(cfg) != 0)
        return 1;
    PGconn *pg = db_connect(cfg->api.database_url);
    if (pg == NULL)
        return 1;
    char token[80];
    rc = admin_create_token(pg, &cfg->api, name, token, sizeof(token));
    PQfinish(pg);
    if (rc != 0)
        return 1;
    printf("%s\n", token);
    return 0;
}

static int cmd_help(const char *prog, int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "--markdown") == 0) {
        config_print_markdown(stdout);
        return 0;
    }
    config_print_help(stdout, prog);
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    if (argc < 2) {
        config_print_help(stderr, argv[0]);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return cmd_help(argv[0], argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("cobrowsed %s\n", COBROWSE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) {
        server_print_routes();
        return 0;
    }
    if (strcmp(cmd, "create-admin-token") == 0)
        return cmd_create_admin_token(&cfg, argv[0], argc - 2, argv + 2);
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0) {
        fprintf(stderr, "cobrowsed: unknown command '%s' (see cobrowsed --help)\n", cmd);
        return 2;
    }
    int code = 0;
    if (parse_options(&cfg, argv[0], argc - 2, argv + 2, &code) != 0)
        return code;
    if (strcmp(cmd, "migrate") == 0)
        return need_database(&cfg) == 0 && migrate_with(&cfg) == 0 ? 0 : 1;
    return cmd_serve(&cfg);
}
