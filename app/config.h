/* Configuration of cobrowsed: flags override environment variables override defaults.
 * Filled once by the main thread before any other thread starts; read-only afterwards.
 */
#ifndef COBROWSE_API_CONFIG_H
#define COBROWSE_API_CONFIG_H

#include <stddef.h>

#include "core/relay/relay.h"

#define CONFIG_SECRET_LEN 32

struct config {
    char listen_host[64];
    int listen_port;
    char public_url[512];
    char relay_url[512];
    char database_url[1024];
    char data_dir[512];
    char web_root[1024]; /* --web-root; "" means the default search (api/static.h) */
    char log_level[16];
    int production;
    int http_threads;
    int db_pool_size;
    size_t max_body_bytes;
    int session_sweep_seconds;
    int key_cache_seconds;
    struct relay_config relay; /* --relay-* options; secrets and database filled at start */
    unsigned char jwt_secret[CONFIG_SECRET_LEN];
    unsigned char key_hash_secret[CONFIG_SECRET_LEN];
};

/* Parses argv (after the subcommand) and the environment into cfg. Prints a clear message to
 * stderr and returns -1 on a bad value; returns 1 if --help was printed, else 0. */
int config_parse(struct config *cfg, int argc, char **argv);

/* Loads the secrets: from COBROWSE_JWT_SECRET / COBROWSE_KEY_HASH_SECRET (64 hex chars), or, unless
 * production is set, from (or newly into) files in data_dir. Returns 0 or -1 (message printed). */
int config_load_secrets(struct config *cfg);

void config_print_help(const char *prog);

#endif
