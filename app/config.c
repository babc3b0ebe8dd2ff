#include "app/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/crypto.h"
#include "core/base/ids.h"

#define FIELD(m) .offset = offsetof(struct config, m), .size = sizeof(((struct config *)0)->m)
#define KIB      1024LL
#define MIB      (1024LL * KIB)
#define GIB      (1024LL * MIB)
#define MAX_PORT 65535

/* The registry. Defaults are parsed by the same code as given values, so a default out of its
 * own bounds fails every start (and tests/unit/app/config_test.c). */
const struct config_option config_options[] = {
    {.flag = "listen",
     .env = "COBROWSE_LISTEN",
     .type = CONFIG_HOSTPORT,
     .arg = "HOST:PORT",
     .def = "127.0.0.1:8080",
     .help = "REST API listen address",
     FIELD(api.listen_host),
     .port_offset = offsetof(struct config, api.listen_port)},
    {.flag = "public-url",
     .env = "COBROWSE_PUBLIC_URL",
     .type = CONFIG_STRING,
     .arg = "URL",
     .def_help = "http://<listen>",
     .help = "base URL clients reach the API and viewer at (used in embed URLs)",
     FIELD(api.public_url)},
    {.flag = "relay-url",
     .env = "COBROWSE_RELAY_URL",
     .type = CONFIG_STRING,
     .arg = "URL",
     .def_help = "ws://<relay-listen>/v1/relay",
     .help = "WebSocket URL of the relay given to clients",
     FIELD(api.relay_url)},
    {.flag = "relay-listen",
     .env = "COBROWSE_RELAY_LISTEN",
     .type = CONFIG_HOSTPORT,
     .arg = "HOST:PORT",
     .def = "127.0.0.1:8081",
     .help = "relay (WebSocket) listen address",
     FIELD(relay.listen_host),
     .port_offset = offsetof(struct config, relay.listen_port)},
    {.flag = "relay-history-bytes",
     .env = "COBROWSE_RELAY_HISTORY_BYTES",
     .type = CONFIG_SIZE,
     .arg = "N",
     .def = "8388608",
     .min = 4 * KIB,
     .max = 16 * GIB,
     .help = "per-session history kept from the latest snapshot",
     FIELD(relay.history_bytes)},
    {.flag = "relay-queue-bytes",
     .env = "COBROWSE_RELAY_QUEUE_BYTES",
     .type = CONFIG_SIZE,
     .arg = "N",
     .def = "4194304",
     .min = 4 * KIB,
     .max = 16 * GIB,
     .help = "per-connection send queue beyond the current page",
     FIELD(relay.queue_bytes)},
    {.flag = "relay-max-memory",
     .env = "COBROWSE_RELAY_MAX_MEMORY",
     .type = CONFIG_SIZE,
     .arg = "N",
     .def = "1073741824",
     .min = MIB,
     .max = 1024 * GIB,
     .help = "node-wide bytes of frames before visitors are slowed",
     FIELD(relay.max_memory)},
    {.flag = "relay-max-frame-bytes",
     .env = "COBROWSE_RELAY_MAX_FRAME_BYTES",
     .type = CONFIG_SIZE,
     .arg = "N",
     .def = "1048576",
     .min = KIB,
     .max = 64 * MIB,
     .help = "largest message a client may send (close 1009 above)",
     FIELD(relay.max_frame_bytes)},
    {.flag = "relay-idle-seconds",
     .env = "COBROWSE_RELAY_IDLE_SECONDS",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "300",
     .min = 1,
     .max = 86400,
     .help = "end a session after this long with nobody connected",
     FIELD(relay.idle_seconds)},
    {.flag = "relay-handshakes-per-second",
     .env = "COBROWSE_RELAY_HANDSHAKES_PER_SECOND",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "2000",
     .min = 1,
     .max = 1000000,
     .help = "node budget of handshakes; resumes pass first",
     FIELD(relay.handshakes_per_second)},
    {.flag = "relay-drain-seconds",
     .env = "COBROWSE_RELAY_DRAIN_SECONDS",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "10",
     .min = 0,
     .max = 600,
     .help = "grace period on SIGTERM before exiting (clients get 1012)",
     FIELD(relay.drain_seconds)},
    {.flag = "database-url",
     .env = "DATABASE_URL",
     .type = CONFIG_STRING,
     .arg = "URL",
     .def_help = "none (required)",
     .help = "PostgreSQL connection string",
     FIELD(api.database_url)},
    {.flag = "data-dir",
     .env = "COBROWSE_DATA_DIR",
     .type = CONFIG_STRING,
     .arg = "DIR",
     .def = ".cobrowse",
     .min = 1,
     .help = "folder for generated secrets in development",
     FIELD(data_dir)},
    {.flag = "web-root",
     .env = "COBROWSE_WEB_ROOT",
     .type = CONFIG_STRING,
     .arg = "DIR",
     .def_help = "<binary dir>/web, else <binary dir>/../share/cobrowse/web",
     .min = 1,
     .help = "browser files to serve (the SDK, viewer and demo)",
     FIELD(web.web_root)},
    {.flag = "log-level",
     .env = "COBROWSE_LOG_LEVEL",
     .type = CONFIG_CHOICE,
     .arg = "LEVEL",
     .def = "info",
     .choices = "debug|info|warn|error",
     .help = "least severe log line written",
     FIELD(log_level)},
    {.flag = "production",
     .env = "COBROWSE_PRODUCTION",
     .type = CONFIG_BOOL,
     .def = "false",
     .help = "require secrets from the environment; never generate or write them",
     FIELD(production)},
    {.flag = "http-threads",
     .env = "COBROWSE_HTTP_THREADS",
     .type = CONFIG_INT,
     .arg = "N",
     .def_help = "2 per CPU core, at least 4",
     .min = 1,
     .max = 256,
     .help = "HTTP worker threads",
     FIELD(api.http_threads)},
    {.flag = "http-max-connections",
     .env = "COBROWSE_HTTP_MAX_CONNECTIONS",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "4096",
     .min = 16,
     .max = 1000000,
     .help = "connections the REST listener holds at once (keep it under the open files limit, "
             "ulimit -n)",
     FIELD(api.http_max_connections)},
    {.flag = "http-connections-per-ip",
     .env = "COBROWSE_HTTP_CONNECTIONS_PER_IP",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "256",
     .min = 1,
     .max = 1000000,
     .help = "connections one client address may hold on the REST listener (a call center "
             "behind one NAT shares an address; behind a proxy all clients do: raise it there)",
     FIELD(api.http_connections_per_ip)},
    {.flag = "http-request-seconds",
     .env = "COBROWSE_HTTP_REQUEST_SECONDS",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "10",
     .min = 1,
     .max = 3600,
     .help = "a request must arrive and be answered within this long (from the accept, or from "
             "its first bytes on a keep-alive connection), or the connection is closed",
     FIELD(api.http_request_seconds)},
    {.flag = "db-pool-size",
     .env = "COBROWSE_DB_POOL_SIZE",
     .type = CONFIG_INT,
     .arg = "N",
     .def_help = "as many as HTTP threads",
     .min = 1,
     .max = 256,
     .help = "database connections",
     FIELD(api.db_pool_size)},
    {.flag = "max-body-bytes",
     .env = "COBROWSE_MAX_BODY_BYTES",
     .type = CONFIG_SIZE,
     .arg = "N",
     .def = "65536",
     .min = KIB,
     .max = 16 * MIB,
     .help = "largest request body",
     FIELD(api.max_body_bytes)},
    {.flag = "session-sweep-seconds",
     .env = "COBROWSE_SESSION_SWEEP_SECONDS",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "5",
     .min = 1,
     .max = 3600,
     .help = "how often expired sessions are ended",
     FIELD(session_sweep_seconds)},
    {.flag = "key-cache-seconds",
     .env = "COBROWSE_KEY_CACHE_SECONDS",
     .type = CONFIG_INT,
     .arg = "N",
     .def = "5",
     .min = 0,
     .max = 300,
     .help = "how long a node trusts a cached key lookup, so how late it sees a revocation made "
             "on another node (0 disables the cache)",
     FIELD(api.key_cache_seconds)},
    {.env = "COBROWSE_METRICS_TOKEN",
     .secret = 1,
     .type = CONFIG_STRING,
     .arg = "TOKEN",
     .def_help = "none: /metrics answers loopback clients only",
     .min = 16,
     .help = "bearer token a scraper must send to read /metrics, from any address (16 to 255 "
             "characters)",
     FIELD(api.metrics_token)},
    {.env = "COBROWSE_JWT_SECRET",
     .type = CONFIG_SECRET,
     .arg = "HEX",
     .def_help = "generated into the data dir unless --production",
     .file = "jwt.secret",
     .help = "64 hex chars: signs session tokens (HS256)",
     FIELD(api.jwt_secret)},
    {.env = "COBROWSE_KEY_HASH_SECRET",
     .type = CONFIG_SECRET,
     .arg = "HEX",
     .def_help = "generated into the data dir unless --production",
     .file = "key-hash.secret",
     .help = "64 hex chars: keys the HMAC-SHA256 of stored API keys",
     FIELD(api.key_hash_secret)},
};
const size_t config_options_count = sizeof(config_options) / sizeof(config_options[0]);

/* ---------------------------------------------------------------------------------------------
 * Values */

/* Parses a whole decimal number within bounds. Returns 0 or -1. */
static int parse_number(const char *val, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(val, &end, 10);
    if (end == val || *end != '\0' || errno != 0 || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *val, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no",
                                                                                "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(val, yes[i]) == 0 || strcmp(val, no[i]) == 0) {
            *out = strcmp(val, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

static int in_choices(const char *choices, const char *val)
{
    size_t n = strlen(val);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (n > 0 && len == n && strncmp(p, val, n) == 0)
            return 1;
        p += len + (bar != NULL);
    }
    return 0;
}

/* What a value of opt must look like, for error messages. */
static void describe(const struct config_option *o, char *out, size_t size)
{
    switch (o->type) {
    case CONFIG_INT:
    case CONFIG_SIZE:
        snprintf(out, size, "a whole number from %lld to %lld", o->min, o->max);
        break;
    case CONFIG_BOOL:
        snprintf(out, size, "true or false (1/0, yes/no, on/off)");
        break;
    case CONFIG_HOSTPORT:
        snprintf(out, size, "HOST:PORT with a port from 1 to %d and a host under %zu characters",
                 MAX_PORT, o->size);
        break;
    case CONFIG_CHOICE:
        snprintf(out, size, "one of %s", o->choices);
        break;
    case CONFIG_SECRET:
        snprintf(out, size, "%zu hex characters (try: openssl rand -hex %zu)", 2 * o->size,
                 o->size);
        break;
    default:
        snprintf(out, size, "text of %lld to %zu characters", o->min, o->size - 1);
    }
}

static int set_hostport(struct config *cfg, const struct config_option *o, const char *val)
{
    const char *colon = strrchr(val, ':');
    long long port;
    if (colon == NULL || colon == val || (size_t)(colon - val) >= o->size ||
        parse_number(colon + 1, 1, MAX_PORT, &port) != 0)
        return -1;
    char *host = (char *)cfg + o->offset;
    memcpy(host, val, (size_t)(colon - val));
    host[colon - val] = '\0';
    *(int *)((char *)cfg + o->port_offset) = (int)port;
    return 0;
}

/* Stores val into opt's field. Returns 0, or -1 when val is out of opt's bounds. */
static int set_value(struct config *cfg, const struct config_option *o, const char *val)
{
    void *field = (char *)cfg + o->offset;
    long long n;
    size_t len = strlen(val);
    switch (o->type) {
    case CONFIG_INT:
        if (parse_number(val, o->min, o->max, &n) != 0)
            return -1;
        *(int *)field = (int)n;
        return 0;
    case CONFIG_SIZE:
        if (parse_number(val, o->min, o->max, &n) != 0)
            return -1;
        *(size_t *)field = (size_t)n;
        return 0;
    case CONFIG_BOOL:
        return parse_bool(val, (int *)field);
    case CONFIG_HOSTPORT:
        return set_hostport(cfg, o, val);
    case CONFIG_SECRET:
        return len == 2 * o->size && crypto_hex_decode(val, field, o->size) == (int)o->size ? 0
                                                                                            : -1;
    case CONFIG_CHOICE:
        if (!in_choices(o->choices, val))
            return -1;
        break;
    case CONFIG_STRING:
        if ((long long)len < o->min)
            return -1;
        break;
    }
    if (len >= o->size)
        return -1;
    memcpy(field, val, len + 1);
    return 0;
}

/* set_value, with the message for a refused value: where it came from and what it accepts. */
static int set_from(struct config *cfg, const struct config_option *o, const char *val,
                    int from_env, char *err, size_t err_size)
{
    if (set_value(cfg, o, val) == 0)
        return 0;
    char what[160];
    describe(o, what, sizeof(what));
    /* A long value is cut in the message, so that the reason still fits. */
    const char *more = strlen(val) > 64 ? "..." : "";
    if (o->type == CONFIG_SECRET || o->secret)
        snprintf(err, err_size, "invalid %s (not shown): expected %s", o->env, what);
    else if (from_env)
        snprintf(err, err_size, "invalid %s='%.64s%s'%s%s%s: expected %s", o->env, val, more,
                 o->flag ? " (--" : "", o->flag ? o->flag : "", o->flag ? ")" : "", what);
    else
        snprintf(err, err_size, "invalid value '%.64s%s' for --%s: expected %s", val, more, o->flag,
                 what);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing */

static const struct config_option *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < config_options_count; i++) {
        const char *f = config_options[i].flag;
        if (f != NULL && strlen(f) == len && strncmp(f, name, len) == 0)
            return &config_options[i];
    }
    return NULL;
}

/* Applies argv[*i] (and its value, which may be argv[*i + 1]). Returns 0 or -1 (err set). */
static int parse_arg(struct config *cfg, int argc, char *const *argv, int *i, char *err,
                     size_t err_size)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) {
        snprintf(err, err_size, "unexpected argument '%s'", a);
        return -1;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct config_option *o = find_flag(name, len);
    if (o == NULL) {
        snprintf(err, err_size, "unknown option '--%.*s'", (int)(len > 64 ? 64 : len), name);
        return -1;
    }
    const char *val;
    if (eq != NULL)
        val = eq + 1;
    else if (o->type == CONFIG_BOOL)
        val = "true";
    else if (*i + 1 < argc)
        val = argv[++*i];
    else {
        snprintf(err, err_size, "--%s needs a value (%s)", o->flag, o->arg);
        return -1;
    }
    return set_from(cfg, o, val, 0, err, err_size);
}

/* What the defaults leave to be computed from other options. */
static void derive(struct config *cfg)
{
    struct api_config *api = &cfg->api;
    /* Measured (docs/benchmarks.md): more threads than 2 per core only add context switches and
     * raise p99 latency, since every request waits on PostgreSQL on the same machine. */
    if (api->http_threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        api->http_threads = cores > 2 ? (int)(2 * cores) : 4;
    }
    if (api->db_pool_size == 0)
        api->db_pool_size = api->http_threads;
    if (api->public_url[0] == '\0')
        snprintf(api->public_url, sizeof(api->public_url), "http://%s:%d", api->listen_host,
                 api->listen_port);
    if (api->relay_url[0] == '\0')
        snprintf(api->relay_url, sizeof(api->relay_url), "ws://%s:%d/v1/relay",
                 cfg->relay.listen_host, cfg->relay.listen_port);
    size_t pl = strlen(api->public_url);
    while (pl > 0 && api->public_url[pl - 1] == '/')
        api->public_url[--pl] = '\0';
}

int config_parse(struct config *cfg, int argc, char *const *argv, char *err, size_t err_size)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        if (o->def != NULL && set_value(cfg, o, o->def) != 0) {
            snprintf(err, err_size, "the default of --%s is out of its own bounds", o->flag);
            return -1;
        }
    }
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        const char *v = o->type == CONFIG_SECRET ? NULL : getenv(o->env);
        if (v != NULL && v[0] != '\0' && set_from(cfg, o, v, 1, err, err_size) != 0)
            return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cfg->help = 1;
            return 0;
        }
        if (parse_arg(cfg, argc, argv, &i, err, err_size) != 0)
            return -1;
    }
    derive(cfg);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Help and docs */

/* The accepted values, when the type has bounds worth stating ("" otherwise). */
static void bounds_text(const struct config_option *o, char *out, size_t size)
{
    out[0] = '\0';
    if (o->type == CONFIG_INT || o->type == CONFIG_SIZE) {
        snprintf(out, size, "%lld to %lld", o->min, o->max);
    } else if (o->type == CONFIG_CHOICE) {
        size_t n = 0;
        for (const char *p = o->choices; *p && n + 3 < size; p++) {
            if (*p == '|') {
                out[n++] = ',';
                out[n++] = ' ';
            } else {
                out[n++] = *p;
            }
        }
        out[n] = '\0';
    }
}

static void usage_name(const struct config_option *o, char *out, size_t size)
{
    if (o->flag == NULL)
        snprintf(out, size, "%s", o->env);
    else
        snprintf(out, size, "--%s%s%s", o->flag, o->arg ? " " : "", o->arg ? o->arg : "");
}

#define HELP_INDENT 35
#define HELP_WIDTH  100

/* Writes text's words from column col on, breaking lines at HELP_WIDTH onto HELP_INDENT. */
static void print_wrapped(FILE *out, size_t col, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, " ");
        if (col + 1 + n > HELP_WIDTH && col > HELP_INDENT) {
            fprintf(out, "\n%*s", HELP_INDENT - 1, "");
            col = HELP_INDENT - 1;
        }
        fprintf(out, " %.*s", (int)n, p);
        col += 1 + n;
        p += n;
        p += strspn(p, " ");
    }
}

void config_print_help(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s COMMAND [OPTIONS]\n\n"
            "Commands:\n"
            "  serve               run the REST API and the relay (applies pending migrations "
            "first)\n"
            "  migrate             apply pending database migrations and exit\n"
            "  create-admin-token  create a platform admin token and print it once\n"
            "                      (--name NAME labels it)\n"
            "  routes              print the served routes as JSON\n"
            "  version             print the version\n"
            "  help [--markdown]   this text; --markdown prints README.md's option table\n\n"
            "Options (each also read from the environment variable shown; flags win):\n",
            prog);
    for (int secrets = 0; secrets < 2; secrets++) {
        if (secrets)
            fprintf(out, "\nSecrets (environment only, never flags, so they stay out of process "
                         "listings):\n");
        for (size_t i = 0; i < config_options_count; i++) {
            const struct config_option *o = &config_options[i];
            if ((o->type == CONFIG_SECRET || o->secret) != secrets)
                continue;
            char name[64], bounds[96], more[512];
            usage_name(o, name, sizeof(name));
            bounds_text(o, bounds, sizeof(bounds));
            snprintf(more, sizeof(more), "(default %s%s%s%s%s)", o->def_help ? o->def_help : o->def,
                     bounds[0] ? "; " : "", bounds, o->flag ? "; env " : "", o->flag ? o->env : "");
            fprintf(out, "  %-32s", name);
            size_t col = 34 + (strlen(name) > 32 ? strlen(name) - 32 : 0);
            print_wrapped(out, col, o->help);
            fprintf(out, "\n%*s", HELP_INDENT - 1, "");
            print_wrapped(out, HELP_INDENT - 1, more);
            fputc('\n', out);
        }
    }
}

/* Writes text into a Markdown table cell: '<' would open an HTML tag and '|' end the cell. */
static void md_text(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '|')
            fputc('\\', out);
        fputc(*p, out);
    }
}

void config_print_markdown(FILE *out)
{
    fprintf(out, "| flag | environment | default | what it sets |\n|---|---|---|---|\n");
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        char name[64], bounds[96];
        usage_name(o, name, sizeof(name));
        bounds_text(o, bounds, sizeof(bounds));
        if (o->flag != NULL)
            fprintf(out, "| `%s` | `%s` | ", name, o->env);
        else
            fprintf(out, "| | `%s` | ", o->env);
        if (o->def_help != NULL)
            md_text(out, o->def_help);
        else
            fprintf(out, "`%s`", o->def);
        fprintf(out, " | ");
        md_text(out, o->help);
        if (bounds[0])
            fprintf(out, "; %s", bounds);
        fprintf(out, " |\n");
    }
}

/* ---------------------------------------------------------------------------------------------
 * Secrets */

/* Reads a secret file (hex) into out. Returns 0, 1 when it does not exist, or -1 (printed). */
static int read_secret_file(const char *path, unsigned char *out, size_t size)
{
    char hex[160];
    FILE *f = fopen(path, "r");
    if (f == NULL && errno == ENOENT)
        return 1;
    if (f == NULL) {
        fprintf(stderr, "cobrowsed: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(hex, 1, sizeof(hex) - 1, f);
    fclose(f);
    hex[n] = '\0';
    while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
        hex[--n] = '\0';
    if (n != 2 * size || crypto_hex_decode(hex, out, size) != (int)size) {
        fprintf(stderr, "cobrowsed: %s is corrupt: expected %zu hex characters\n", path, 2 * size);
        return -1;
    }
    return 0;
}

/* Generates a secret into out and writes it to path (created, never overwritten). */
static int write_secret_file(const struct config *cfg, const char *path, unsigned char *out,
                             size_t size)
{
    char hex[160];
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cobrowsed: cannot create data dir %s: %s\n", cfg->data_dir,
                strerror(errno));
        return -1;
    }
    if (2 * size + 2 > sizeof(hex) || ids_random(out, size) != 0)
        return -1;
    crypto_hex_encode(out, size, hex);
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

/* From the environment, else from the data dir, else (not production) newly generated. */
static int load_secret(struct config *cfg, const struct config_option *o)
{
    unsigned char *out = (unsigned char *)cfg + o->offset;
    const char *v = getenv(o->env);
    if (v != NULL && v[0] != '\0') {
        char err[256];
        if (set_from(cfg, o, v, 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "cobrowsed: %s\n", err);
            return -1;
        }
        return 0;
    }
    if (cfg->production) {
        fprintf(stderr,
                "cobrowsed: %s is required with --production (%zu hex characters, e.g. from "
                "`openssl rand -hex %zu`); keep it the same on every node\n",
                o->env, 2 * o->size, o->size);
        return -1;
    }
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, o->file);
    int rc = read_secret_file(path, out, o->size);
    return rc == 1 ? write_secret_file(cfg, path, out, o->size) : rc;
}

int config_load_secrets(struct config *cfg)
{
    for (size_t i = 0; i < config_options_count; i++)
        if (config_options[i].type == CONFIG_SECRET && load_secret(cfg, &config_options[i]) != 0)
            return -1;
    return 0;
}
