#include "app/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/crypto.h"
#include "core/base/ids.h"

struct option_def {
    const char *flag; /* without leading dashes */
    const char *env;
    const char *arg;
    const char *help;
};

static const struct option_def options[] = {
    {"listen", "COBROWSE_LISTEN", "HOST:PORT", "REST API listen address (default 127.0.0.1:8080)"},
    {"public-url", "COBROWSE_PUBLIC_URL", "URL",
     "base URL clients reach the API and viewer at (default http://<listen>)"},
    {"relay-url", "COBROWSE_RELAY_URL", "URL",
     "WebSocket URL of the relay given to clients (default ws://<relay-listen>/v1/relay)"},
    {"relay-listen", "COBROWSE_RELAY_LISTEN", "HOST:PORT",
     "relay (WebSocket) listen address (default 127.0.0.1:8081)"},
    {"relay-history-bytes", "COBROWSE_RELAY_HISTORY_BYTES", "N",
     "per-session history from the latest snapshot (default 8388608)"},
    {"relay-queue-bytes", "COBROWSE_RELAY_QUEUE_BYTES", "N",
     "per-connection send queue beyond the current page (default 4194304)"},
    {"relay-max-memory", "COBROWSE_RELAY_MAX_MEMORY", "N",
     "node-wide bytes of frames before visitors are slowed (default 1073741824)"},
    {"relay-max-frame-bytes", "COBROWSE_RELAY_MAX_FRAME_BYTES", "N",
     "largest message a client may send (default 1048576)"},
    {"relay-idle-seconds", "COBROWSE_RELAY_IDLE_SECONDS", "N",
     "end a session after this long with nobody connected (default 300)"},
    {"relay-handshakes-per-second", "COBROWSE_RELAY_HANDSHAKES_PER_SECOND", "N",
     "node budget of handshakes; resumes pass first (default 2000)"},
    {"relay-drain-seconds", "COBROWSE_RELAY_DRAIN_SECONDS", "N",
     "grace period on SIGTERM before exiting (default 10)"},
    {"database-url", "DATABASE_URL", "URL", "PostgreSQL connection string (required)"},
    {"data-dir", "COBROWSE_DATA_DIR", "DIR",
     "folder for generated secrets in development (default ./.cobrowse)"},
    {"web-root", "COBROWSE_WEB_ROOT", "DIR",
     "browser files to serve (SDK, viewer); default <binary dir>/web, else "
     "<binary dir>/../share/cobrowse/web"},
    {"log-level", "COBROWSE_LOG_LEVEL", "LEVEL", "debug, info, warn or error (default info)"},
    {"production", "COBROWSE_PRODUCTION", NULL,
     "require secrets from the environment; never generate or write them"},
    {"http-threads", "COBROWSE_HTTP_THREADS", "N",
     "HTTP worker threads (default 2 x CPU cores, at least 4)"},
    {"db-pool-size", "COBROWSE_DB_POOL_SIZE", "N",
     "database connections (default: as many as HTTP threads)"},
    {"max-body-bytes", "COBROWSE_MAX_BODY_BYTES", "N", "largest request body (default 65536)"},
    {"session-sweep-seconds", "COBROWSE_SESSION_SWEEP_SECONDS", "N",
     "how often expired sessions are ended (default 5)"},
    {"key-cache-seconds", "COBROWSE_KEY_CACHE_SECONDS", "N",
     "how long a node trusts a cached key lookup; bounds how late another node sees a revocation "
     "(default 5, 0 disables)"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

void config_print_help(const char *prog)
{
    printf("Usage: %s COMMAND [OPTIONS]\n\n"
           "Commands:\n"
           "  serve               run the REST API (applies pending migrations first)\n"
           "  migrate             apply pending database migrations and exit\n"
           "  create-admin-token  create a platform admin token and print it once\n"
           "                      (--name NAME labels it)\n"
           "  routes              print the served routes as JSON\n"
           "  version             print the version\n\n"
           "Options (each also read from the environment variable shown):\n",
           prog);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", options[i].flag, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        printf("  %-32s %s\n  %-32s [env %s]\n", left, options[i].help, "", options[i].env);
    }
    printf("\nSecrets (environment only, never flags, so they stay out of process listings):\n"
           "  COBROWSE_JWT_SECRET       64 hex chars: signs session tokens (HS256)\n"
           "  COBROWSE_KEY_HASH_SECRET  64 hex chars: keys the HMAC-SHA256 of stored API keys\n"
           "  Without --production they are generated once into the data dir.\n");
}

static int set_value(struct config *cfg, const char *name, const char *val)
{
    char *end = NULL;
    long n;
    if (strcmp(name, "listen") == 0 || strcmp(name, "relay-listen") == 0) {
        int relay = name[0] == 'r';
        char *host = relay ? cfg->relay.listen_host : cfg->listen_host;
        const char *colon = strrchr(val, ':');
        if (colon == NULL || colon == val || (size_t)(colon - val) >= sizeof(cfg->listen_host))
            goto bad;
        n = strtol(colon + 1, &end, 10);
        if (*end != '\0' || n < 1 || n > 65535)
            goto bad;
        memcpy(host, val, (size_t)(colon - val));
        host[colon - val] = '\0';
        *(relay ? &cfg->relay.listen_port : &cfg->listen_port) = (int)n;
    } else if (strcmp(name, "public-url") == 0) {
        snprintf(cfg->public_url, sizeof(cfg->public_url), "%s", val);
    } else if (strcmp(name, "relay-url") == 0) {
        snprintf(cfg->relay_url, sizeof(cfg->relay_url), "%s", val);
    } else if (strcmp(name, "database-url") == 0) {
        snprintf(cfg->database_url, sizeof(cfg->database_url), "%s", val);
    } else if (strcmp(name, "data-dir") == 0) {
        snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", val);
    } else if (strcmp(name, "web-root") == 0) {
        if (val[0] == '\0' || strlen(val) >= sizeof(cfg->web_root))
            goto bad;
        snprintf(cfg->web_root, sizeof(cfg->web_root), "%s", val);
    } else if (strcmp(name, "log-level") == 0) {
        if (strcmp(val, "debug") && strcmp(val, "info") && strcmp(val, "warn") &&
            strcmp(val, "error"))
            goto bad;
        snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", val);
    } else if (strcmp(name, "production") == 0) {
        cfg->production = !(strcmp(val, "0") == 0 || strcmp(val, "false") == 0 || val[0] == 0);
    } else {
        n = strtol(val, &end, 10);
        if (end == val || *end != '\0' || n < 0)
            goto bad;
        if (strcmp(name, "http-threads") == 0 && n >= 1 && n <= 256)
            cfg->http_threads = (int)n;
        else if (strcmp(name, "db-pool-size") == 0 && n >= 1 && n <= 256)
            cfg->db_pool_size = (int)n;
        else if (strcmp(name, "max-body-bytes") == 0 && n >= 1024 && n <= 16 * 1024 * 1024)
            cfg->max_body_bytes = (size_t)n;
        else if (strcmp(name, "session-sweep-seconds") == 0 && n >= 1 && n <= 3600)
            cfg->session_sweep_seconds = (int)n;
        else if (strcmp(name, "key-cache-seconds") == 0 && n <= 300)
            cfg->key_cache_seconds = (int)n;
        else if (strcmp(name, "relay-history-bytes") == 0 && n >= 4096)
            cfg->relay.history_bytes = (size_t)n;
        else if (strcmp(name, "relay-queue-bytes") == 0 && n >= 4096)
            cfg->relay.queue_bytes = (size_t)n;
        else if (strcmp(name, "relay-max-memory") == 0 && n >= 1048576)
            cfg->relay.max_memory = (size_t)n;
        else if (strcmp(name, "relay-max-frame-bytes") == 0 && n >= 1024 && n <= 64 * 1048576)
            cfg->relay.max_frame_bytes = (size_t)n;
        else if (strcmp(name, "relay-idle-seconds") == 0 && n >= 1 && n <= 86400)
            cfg->relay.idle_seconds = (int)n;
        else if (strcmp(name, "relay-handshakes-per-second") == 0 && n >= 1 && n <= 1000000)
            cfg->relay.handshakes_per_second = (int)n;
        else if (strcmp(name, "relay-drain-seconds") == 0 && n <= 600)
            cfg->relay.drain_seconds = (int)n;
        else
            goto bad;
    }
    return 0;
bad:
    fprintf(stderr, "cobrowsed: invalid value for --%s: '%s' (see cobrowsed --help)\n", name, val);
    return -1;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 8080;
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), ".cobrowse");
    snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
    cfg->http_threads = 0; /* 0: chosen from the core count below */
    cfg->db_pool_size = 0;
    cfg->max_body_bytes = 65536;
    cfg->session_sweep_seconds = 5;
    cfg->key_cache_seconds = 5;
    snprintf(cfg->relay.listen_host, sizeof(cfg->relay.listen_host), "127.0.0.1");
    cfg->relay.listen_port = 8081;
    cfg->relay.history_bytes = 8u << 20;
    cfg->relay.queue_bytes = 4u << 20;
    cfg->relay.max_memory = 1u << 30;
    cfg->relay.max_frame_bytes = 1u << 20;
    cfg->relay.idle_seconds = 300;
    cfg->relay.handshakes_per_second = 2000;
    cfg->relay.drain_seconds = 10;

    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v != NULL && v[0] != '\0' && set_value(cfg, options[i].flag, v) != 0)
            return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "cobrowsed: unexpected argument '%s' (see cobrowsed --help)\n", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        char key[64];
        size_t klen = eq ? (size_t)(eq - name) : strlen(name);
        if (klen >= sizeof(key)) {
            fprintf(stderr, "cobrowsed: unknown option '%s'\n", a);
            return -1;
        }
        memcpy(key, name, klen);
        key[klen] = '\0';
        const struct option_def *def = NULL;
        for (size_t k = 0; k < N_OPTIONS; k++)
            if (strcmp(options[k].flag, key) == 0)
                def = &options[k];
        if (def == NULL) {
            fprintf(stderr, "cobrowsed: unknown option '--%s' (see cobrowsed --help)\n", key);
            return -1;
        }
        const char *val;
        if (def->arg == NULL)
            val = eq ? eq + 1 : "1";
        else if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "cobrowsed: --%s needs a value\n", key);
            return -1;
        }
        if (set_value(cfg, key, val) != 0)
            return -1;
    }
    /* Measured (docs/benchmarks.md): more threads than 2 per core only add context switches and
     * raise p99 latency, since every request waits on PostgreSQL on the same machine. */
    if (cfg->http_threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->http_threads = cores > 2 ? (int)(2 * cores) : 4;
    }
    if (cfg->db_pool_size == 0)
        cfg->db_pool_size = cfg->http_threads;
    if (cfg->public_url[0] == '\0')
        snprintf(cfg->public_url, sizeof(cfg->public_url), "http://%s:%d", cfg->listen_host,
                 cfg->listen_port);
    if (cfg->relay_url[0] == '\0')
        snprintf(cfg->relay_url, sizeof(cfg->relay_url), "ws://%s:%d/v1/relay",
                 cfg->relay.listen_host, cfg->relay.listen_port);
    size_t pl = strlen(cfg->public_url);
    while (pl > 0 && cfg->public_url[pl - 1] == '/')
        cfg->public_url[--pl] = '\0';
    return 0;
}

/* Reads 64 hex chars from env, else from data_dir/file, else (not production) generates them. */
static int load_secret(const struct config *cfg, const char *env, const char *file,
                       unsigned char out[CONFIG_SECRET_LEN])
{
    char hex[2 * CONFIG_SECRET_LEN + 2];
    const char *v = getenv(env);
    if (v != NULL && v[0] != '\0') {
        if (strlen(v) != 2 * CONFIG_SECRET_LEN ||
            crypto_hex_decode(v, out, CONFIG_SECRET_LEN) != CONFIG_SECRET_LEN) {
            fprintf(stderr, "cobrowsed: %s must be 64 hex characters (try: openssl rand -hex 32)\n",
                    env);
            return -1;
        }
        return 0;
    }
    if (cfg->production) {
        fprintf(stderr,
                "cobrowsed: %s is required with --production (64 hex characters, e.g. from "
                "`openssl rand -hex 32`); keep it the same on every node\n",
                env);
        return -1;
    }
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, file);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(hex, 1, sizeof(hex) - 1, f);
        fclose(f);
        hex[n] = '\0';
        while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
            hex[--n] = '\0';
        if (crypto_hex_decode(hex, out, CONFIG_SECRET_LEN) != CONFIG_SECRET_LEN) {
            fprintf(stderr, "cobrowsed: %s is corrupt: expected 64 hex characters\n", path);
            return -1;
        }
        return 0;
    }
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cobrowsed: cannot create data dir %s: %s\n", cfg->data_dir,
                strerror(errno));
        return -1;
    }
    if (ids_random(out, CONFIG_SECRET_LEN) != 0)
        return -1;
    crypto_hex_encode(out, CONFIG_SECRET_LEN, hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        fprintf(stderr, "cobrowsed: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(hex);
    hex[len] = '\n';
    int ok = write(fd, hex, len + 1) == (ssize_t)(len + 1);
    close(fd);
    return ok ? 0 : -1;
}

int config_load_secrets(struct config *cfg)
{
    if (load_secret(cfg, "COBROWSE_JWT_SECRET", "jwt.secret", cfg->jwt_secret) != 0 ||
        load_secret(cfg, "COBROWSE_KEY_HASH_SECRET", "key-hash.secret", cfg->key_hash_secret) != 0)
        return -1;
    return 0;
}
