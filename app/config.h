/* The option registry of cobrowsed: every option is one entry of config_options[] (config.c)
 * with its flag, environment variable, type, default, bounds, help and the field it fills.
 * The parser, the environment lookup, `cobrowsed --help`, the README's option table (`cobrowsed
 * help --markdown`, checked by tests/unit/app/config_test.c) all read that table: adding an
 * option is one entry plus the field it fills.
 *
 * Precedence: flags override environment variables override defaults. Each service gets its own
 * part of struct config (api/, api/static/, core/relay/ know nothing of this file).
 * Threading: filled once by the main thread before any other thread starts; read-only afterwards.
 */
#ifndef COBROWSE_APP_CONFIG_H
#define COBROWSE_APP_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "api/http.h"
#include "api/static/static.h"
#include "core/proxy/proxy.h"
#include "core/relay/relay.h"

struct config {
    struct api_config api;     /* the REST server (api/http.h); secrets loaded at start */
    struct static_config web;  /* the browser files (api/static/static.h) */
    struct relay_config relay; /* the relay; its secret and database are set at start */
    struct proxy_config proxy; /* the stylesheet proxy; its secret is set at start */
    int session_sweep_seconds; /* the session sweeper (api/sweeper.h) */
    /* The webhook dispatcher (core/webhook/dispatch.h); its allow list is
     * api.webhook_allow_private, its schedule and duration parsed when it starts
     * (core/webhook/schedule.h). */
    struct {
        int concurrency, timeout_ms, retention_days;
        char retry_schedule[512];
        char disable_after[64];
    } webhook;
    char data_dir[512];
    char log_level[16];
    int production;
    int help; /* --help or -h was given: print config_print_help, nothing else */
};

enum config_type {
    CONFIG_STRING,   /* char[size]; min is the least length */
    CONFIG_INT,      /* int, from min to max */
    CONFIG_SIZE,     /* size_t, from min to max */
    CONFIG_BOOL,     /* int 0/1; a flag without value means true */
    CONFIG_HOSTPORT, /* HOST:PORT into char[size] at offset and int at port_offset */
    CONFIG_CHOICE,   /* char[size], one of choices ("a|b|c") */
    CONFIG_SECRET,   /* environment only: 64 hex chars into unsigned char[size] (see below) */
};

struct config_option {
    const char *flag; /* without the dashes; NULL for environment-only options (secrets) */
    const char *env;
    enum config_type type;
    const char *arg;      /* the value's name in help: N, URL, DIR; NULL for booleans */
    const char *def;      /* the default, parsed like a given value; NULL: none or computed */
    const char *def_help; /* how a computed (or absent) default reads in help and docs */
    long long min, max;
    const char *choices;
    const char *file; /* CONFIG_SECRET: its file in the data dir when generated */
    int secret;       /* a secret of another type: environment only (flag NULL), never shown */
    const char *help;
    size_t offset, size; /* the field of struct config it fills */
    size_t port_offset;  /* CONFIG_HOSTPORT: the port's int */
    /* CONFIG_STRING: when set, a value must also pass valid (1), and a refusal says it expects
     * accepts. */
    int (*valid)(const char *value);
    const char *accepts;
};

extern const struct config_option config_options[];
extern const size_t config_options_count;

/* Fills cfg from the defaults, the environment and argv (the arguments after the subcommand).
 * Returns 0, or -1 with a message naming the option, the value and what it accepts written
 * into err (err_size > 0). Sets cfg->help on --help / -h and stops there. */
int config_parse(struct config *cfg, int argc, char *const *argv, char *err, size_t err_size);

/* Loads the CONFIG_SECRET options: from their environment variables (64 hex chars), or, unless
 * production is set, from (or newly into) their files in data_dir. Returns 0 or -1 (message
 * printed to stderr). */
int config_load_secrets(struct config *cfg);

/* The usage text: commands, then every option of the registry (flag, value, help, default,
 * bounds, environment variable), then the secrets. */
void config_print_help(FILE *out, const char *prog);

/* The README's option table (Markdown), one row per option of the registry. */
void config_print_markdown(FILE *out);

#endif
