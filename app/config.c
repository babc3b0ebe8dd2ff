#include "app/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/crypto.h"
#include "core/base/ids.h"

#define MAX_PORT 65535

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
        if (o->accepts != NULL)
            snprintf(out, size, "%s", o->accepts);
        else
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
        if ((long long)len < o->min || (o->valid != NULL && !o->valid(val)))
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

static void trim_slashes(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
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
    if (api->proxy_public_url[0] == '\0')
        snprintf(api->proxy_public_url, sizeof(api->proxy_public_url), "http://%s:%d",
                 api->proxy_listen_host, api->proxy_listen_port);
    trim_slashes(api->public_url);
    trim_slashes(api->proxy_public_url);
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
