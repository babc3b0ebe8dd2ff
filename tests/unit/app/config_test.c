/* app/config.c: the option registry. Every option is parsed from its flag and its environment
 * variable into its own field, values out of bounds are refused with a message naming the option,
 * the help and the README's table list every option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/config.h"

static struct config cfg;
static char err[512];

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_options_count; i++)
        unsetenv(config_options[i].env);
    err[0] = '\0';
    return 0;
}

static int parse(int argc, char *const *argv)
{
    return config_parse(&cfg, argc, argv, err, sizeof(err));
}

static int parse1(const char *a, const char *b)
{
    char *argv[] = {(char *)a, (char *)b, NULL};
    return parse(b ? 2 : 1, argv);
}

/* A valid value of o other than its default, written as it reads back. */
static const char *sample(const struct config_option *o, char *buf, size_t size)
{
    switch (o->type) {
    case CONFIG_INT:
    case CONFIG_SIZE:
        snprintf(buf, size, "%lld", o->max);
        break;
    case CONFIG_BOOL:
        snprintf(buf, size, "true");
        break;
    case CONFIG_HOSTPORT:
        snprintf(buf, size, "10.1.2.3:4321");
        break;
    case CONFIG_CHOICE:
        snprintf(buf, size, "%s", strrchr(o->choices, '|') + 1);
        break;
    default:
        snprintf(buf, size, "/tmp/sample-%s", o->flag);
        if (o->valid != NULL) { /* a checked string: the first of these its check takes */
            static const char *const checked[] = {"2s", "redis://:pw@127.0.0.1:6390/2", "node-2"};
            for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
                if (o->valid(checked[i])) {
                    snprintf(buf, size, "%s", checked[i]);
                    break;
                }
            }
        }
    }
    return buf;
}

/* The option's field as text, read by its type (independently of the parser). */
static void field_text(const struct config_option *o, char *buf, size_t size)
{
    const char *p = (const char *)&cfg + o->offset;
    switch (o->type) {
    case CONFIG_INT:
        snprintf(buf, size, "%d", *(const int *)p);
        break;
    case CONFIG_SIZE:
        snprintf(buf, size, "%zu", *(const size_t *)p);
        break;
    case CONFIG_BOOL:
        snprintf(buf, size, "%s", *(const int *)p ? "true" : "false");
        break;
    case CONFIG_HOSTPORT:
        snprintf(buf, size, "%s:%d", p, *(const int *)((const char *)&cfg + o->port_offset));
        break;
    default:
        snprintf(buf, size, "%s", p);
    }
}

static void test_registry_types_match_their_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        assert_non_null(o->env);
        assert_non_null(o->help);
        assert_true(o->def != NULL || o->def_help != NULL);
        if (o->type == CONFIG_INT || o->type == CONFIG_BOOL)
            assert_int_equal(o->size, sizeof(int));
        if (o->type == CONFIG_SIZE)
            assert_int_equal(o->size, sizeof(size_t));
        if (o->type == CONFIG_INT)
            assert_true(o->min <= o->max && o->max <= 2147483647LL);
        assert_true((o->flag == NULL) == (o->type == CONFIG_SECRET || o->secret));
        for (size_t k = 0; k < i; k++) {
            assert_string_not_equal(o->env, config_options[k].env);
            if (o->flag && config_options[k].flag)
                assert_string_not_equal(o->flag, config_options[k].flag);
        }
    }
}

static void test_every_option_parsed_from_its_flag(void **state)
{
    (void)state;
    char val[128], got[1100], eq[200];
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        if (o->flag == NULL)
            continue;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        sample(o, val, sizeof(val));
        assert_int_equal(parse1(flag, o->type == CONFIG_BOOL ? NULL : val), 0);
        field_text(o, got, sizeof(got));
        assert_string_equal(got, val);
        snprintf(eq, sizeof(eq), "--%s=%s", o->flag, val);
        assert_int_equal(parse1(eq, NULL), 0);
        field_text(o, got, sizeof(got));
        assert_string_equal(got, val);
    }
}

/* A checked string refused at parse time, before anything starts, naming the option and what it
 * takes. */
static void test_checked_strings_refused_with_what_they_take(void **state)
{
    (void)state;
    assert_int_equal(parse1("--webhook-retry-schedule", "0,5x"), -1);
    assert_non_null(strstr(err, "--webhook-retry-schedule"));
    assert_non_null(strstr(err, "durations"));
    assert_int_equal(parse1("--webhook-disable-after", "500ms"), -1);
    assert_non_null(strstr(err, "at least 1s"));
    assert_int_equal(parse1("--webhook-disable-after", "1s"), 0);
    assert_int_equal(parse1("--webhook-retry-schedule", "0,300ms,1s"), 0);
}

static void test_every_option_parsed_from_its_environment_variable(void **state)
{
    (void)state;
    char val[128], got[1100];
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        if (o->type == CONFIG_SECRET)
            continue;
        sample(o, val, sizeof(val));
        setenv(o->env, val, 1);
        assert_int_equal(parse(0, NULL), 0);
        unsetenv(o->env);
        field_text(o, got, sizeof(got));
        assert_string_equal(got, val);
    }
}

/* The table's offsets could point at the wrong field and the round trips above still pass:
 * here each flag is checked against the field it must fill, by name. */
static void test_flags_fill_their_own_fields(void **state)
{
    (void)state;
    char *argv[] = {"--listen=10.0.0.1:1001",
                    "--public-url=http://p/",
                    "--relay-url=ws://r",
                    "--relay-listen=10.0.0.2:1002",
                    "--relay-history-bytes=5001",
                    "--relay-queue-bytes=5002",
                    "--relay-max-memory=2000003",
                    "--relay-max-frame-bytes=5004",
                    "--relay-idle-seconds=5005",
                    "--relay-handshakes-per-second=5006",
                    "--relay-drain-seconds=7",
                    "--database-url=db",
                    "--data-dir=dd",
                    "--web-root=wr",
                    "--log-level=warn",
                    "--production",
                    "--http-threads=9",
                    "--db-pool-size=11",
                    "--max-body-bytes=5012",
                    "--session-sweep-seconds=13",
                    "--key-cache-seconds=14"};
    assert_int_equal(parse((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
    assert_string_equal(cfg.api.listen_host, "10.0.0.1");
    assert_int_equal(cfg.api.listen_port, 1001);
    assert_string_equal(cfg.api.public_url, "http://p"); /* trailing slash dropped */
    assert_string_equal(cfg.api.relay_url, "ws://r");
    assert_string_equal(cfg.relay.listen_host, "10.0.0.2");
    assert_int_equal(cfg.relay.listen_port, 1002);
    assert_int_equal(cfg.relay.history_bytes, 5001);
    assert_int_equal(cfg.relay.queue_bytes, 5002);
    assert_int_equal(cfg.relay.max_memory, 2000003);
    assert_int_equal(cfg.relay.max_frame_bytes, 5004);
    assert_int_equal(cfg.relay.idle_seconds, 5005);
    assert_int_equal(cfg.relay.handshakes_per_second, 5006);
    assert_int_equal(cfg.relay.drain_seconds, 7);
    assert_string_equal(cfg.api.database_url, "db");
    assert_string_equal(cfg.data_dir, "dd");
    assert_string_equal(cfg.web.web_root, "wr");
    assert_string_equal(cfg.log_level, "warn");
    assert_int_equal(cfg.production, 1);
    assert_int_equal(cfg.api.http_threads, 9);
    assert_int_equal(cfg.api.db_pool_size, 11);
    assert_int_equal(cfg.api.max_body_bytes, 5012);
    assert_int_equal(cfg.session_sweep_seconds, 13);
    assert_int_equal(cfg.api.key_cache_seconds, 14);
}

static void test_defaults_and_derived_values(void **state)
{
    (void)state;
    assert_int_equal(parse(0, NULL), 0);
    assert_string_equal(cfg.api.listen_host, "127.0.0.1");
    assert_int_equal(cfg.api.listen_port, 8080);
    assert_string_equal(cfg.api.public_url, "http://127.0.0.1:8080");
    assert_string_equal(cfg.api.relay_url, "ws://127.0.0.1:8081/v1/relay");
    assert_int_equal(cfg.relay.history_bytes, 8u << 20);
    assert_int_equal(cfg.relay.max_memory, 1u << 30);
    assert_int_equal(cfg.relay.idle_seconds, 300);
    assert_int_equal(cfg.relay.drain_seconds, 10);
    assert_string_equal(cfg.data_dir, ".cobrowse");
    assert_string_equal(cfg.web.web_root, "");
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.production, 0);
    assert_true(cfg.api.http_threads >= 4);
    assert_int_equal(cfg.api.db_pool_size, cfg.api.http_threads);
    assert_int_equal(cfg.api.max_body_bytes, 65536);
    assert_int_equal(cfg.session_sweep_seconds, 5);
    assert_int_equal(cfg.api.key_cache_seconds, 5);
}

static void test_flag_wins_over_environment(void **state)
{
    (void)state;
    setenv("COBROWSE_RELAY_IDLE_SECONDS", "60", 1);
    assert_int_equal(parse1("--relay-idle-seconds", "61"), 0);
    assert_int_equal(cfg.relay.idle_seconds, 61);
    assert_int_equal(parse(0, NULL), 0);
    assert_int_equal(cfg.relay.idle_seconds, 60);
}

static void expect_refused(const char *flag, const char *val, const char *what)
{
    assert_int_equal(parse1(flag, val), -1);
    char shown[80];
    snprintf(shown, sizeof(shown), "'%.64s", val); /* long values are cut in the message */
    if (strstr(err, flag) == NULL || strstr(err, shown) == NULL || strstr(err, what) == NULL)
        fail_msg("message for %s %s should name both and say '%s': %s", flag, val, what, err);
}

static void test_numbers_out_of_bounds_refused_with_clear_message(void **state)
{
    (void)state;
    char flag[64], below[32], above[32], what[96];
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        if (o->type != CONFIG_INT && o->type != CONFIG_SIZE)
            continue;
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        snprintf(below, sizeof(below), "%lld", o->min - 1);
        snprintf(above, sizeof(above), "%lld", o->max + 1);
        snprintf(what, sizeof(what), "from %lld to %lld", o->min, o->max);
        expect_refused(flag, below, what);
        expect_refused(flag, above, what);
        expect_refused(flag, "12abc", what);
        expect_refused(flag, "", what);
        /* the bounds themselves are accepted */
        snprintf(below, sizeof(below), "%lld", o->min);
        assert_int_equal(parse1(flag, below), 0);
        snprintf(above, sizeof(above), "%lld", o->max);
        assert_int_equal(parse1(flag, above), 0);
        snprintf(above, sizeof(above), "%lld", o->max + 1);
        setenv(o->env, above, 1);
        assert_int_equal(parse(0, NULL), -1);
        if (strstr(err, o->env) == NULL || strstr(err, what) == NULL)
            fail_msg("message for %s=%s should name it: %s", o->env, above, err);
        unsetenv(o->env);
    }
}

static void test_other_values_out_of_bounds_refused(void **state)
{
    (void)state;
    expect_refused("--listen", "127.0.0.1", "HOST:PORT");
    expect_refused("--listen", "127.0.0.1:0", "HOST:PORT");
    expect_refused("--listen", "127.0.0.1:65536", "HOST:PORT");
    expect_refused("--listen", ":8080", "HOST:PORT");
    expect_refused("--log-level", "verbose", "debug|info|warn|error");
    assert_int_equal(parse1("--production=maybe", NULL), -1);
    assert_non_null(strstr(err, "'maybe' for --production: expected true or false"));
    expect_refused("--web-root", "", "text of 1 to");
    char long_url[600];
    memset(long_url, 'a', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    expect_refused("--public-url", long_url, "characters");
}

static void test_unknown_options_and_missing_values_refused(void **state)
{
    (void)state;
    assert_int_equal(parse1("--no-such-option", NULL), -1);
    assert_non_null(strstr(err, "unknown option '--no-such-option'"));
    assert_int_equal(parse1("--relay-idle-seconds", NULL), -1);
    assert_non_null(strstr(err, "--relay-idle-seconds needs a value"));
    assert_int_equal(parse1("serve", NULL), -1);
    assert_non_null(strstr(err, "unexpected argument 'serve'"));
    assert_int_equal(parse1("--help", NULL), 0);
    assert_int_equal(cfg.help, 1);
}

static char *capture(void (*print)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    print(f);
    fclose(f);
    return text;
}

static void print_help(FILE *f)
{
    config_print_help(f, "cobrowsed");
}

/* Collapses runs of spaces and newlines into one space (the help wraps long lines). */
static void squeeze(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++)
        if (!((*r == ' ' || *r == '\n') && w > s && w[-1] == ' '))
            *w++ = *r == '\n' ? ' ' : *r;
    *w = '\0';
}

static void test_help_lists_every_option(void **state)
{
    (void)state;
    char *help = capture(print_help);
    squeeze(help);
    char flag[64];
    for (size_t i = 0; i < config_options_count; i++) {
        const struct config_option *o = &config_options[i];
        snprintf(flag, sizeof(flag), "--%s ", o->flag ? o->flag : "");
        if (o->flag != NULL && strstr(help, flag) == NULL)
            fail_msg("--help does not list %s", flag);
        if (strstr(help, o->env) == NULL || strstr(help, o->help) == NULL)
            fail_msg("--help does not list %s with its help", o->env);
    }
    assert_non_null(strstr(help, "(default 300; 1 to 86400; env COBROWSE_RELAY_IDLE_SECONDS)"));
    free(help);
}

/* The README's table between its markers is what `cobrowsed help --markdown` prints. */
static void test_readme_lists_every_option(void **state)
{
    (void)state;
    FILE *f = fopen(README_MD, "r");
    assert_non_null(f);
    static char readme[1 << 17];
    size_t n = fread(readme, 1, sizeof(readme) - 1, f);
    fclose(f);
    readme[n] = '\0';
    const char *begin = strstr(readme, "<!-- options:begin");
    const char *end = strstr(readme, "<!-- options:end -->");
    assert_non_null(begin);
    assert_non_null(end);
    begin = strchr(begin, '\n') + 1;
    char *table = capture(config_print_markdown);
    if (strlen(table) != (size_t)(end - begin) || strncmp(table, begin, strlen(table)) != 0)
        fail_msg("README.md's option table is stale; replace it with `cobrowsed help "
                 "--markdown`:\n%s",
                 table);
    free(table);
}

static void test_secret_from_environment_must_be_64_hex_chars(void **state)
{
    (void)state;
    assert_int_equal(parse(0, NULL), 0);
    setenv("COBROWSE_JWT_SECRET", "abcd-not-hex-and-short", 1);
    assert_int_equal(config_load_secrets(&cfg), -1);
    setenv("COBROWSE_JWT_SECRET",
           "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    setenv("COBROWSE_KEY_HASH_SECRET",
           "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 1);
    setenv("COBROWSE_DATA_KEY", "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
           1);
    assert_int_equal(config_load_secrets(&cfg), 0);
    assert_int_equal(cfg.api.jwt_secret[1], 0x11);
    assert_int_equal(cfg.api.key_hash_secret[0], 0xff);
    assert_int_equal(cfg.api.data_key[31], 0xbf);
}

static void test_metrics_token_from_environment_only_and_never_shown(void **state)
{
    (void)state;
    setenv("COBROWSE_METRICS_TOKEN", "short-secret", 1); /* under 16 characters */
    assert_int_equal(parse(0, NULL), -1);
    assert_non_null(strstr(err, "COBROWSE_METRICS_TOKEN (not shown)"));
    assert_null(strstr(err, "short-secret"));
    char *argv[] = {"--metrics-token", "0123456789abcdef0123"};
    unsetenv("COBROWSE_METRICS_TOKEN");
    assert_int_equal(parse(2, argv), -1); /* no such flag: it would show in process listings */
    setenv("COBROWSE_METRICS_TOKEN", "0123456789abcdef0123", 1);
    assert_int_equal(parse(0, NULL), 0);
    assert_string_equal(cfg.api.metrics_token, "0123456789abcdef0123");
}

static void test_secrets_required_in_production_else_generated_once(void **state)
{
    (void)state;
    char dir[] = "/tmp/config_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char data[64];
    snprintf(data, sizeof(data), "--data-dir=%s/d", dir);
    assert_int_equal(parse1(data, "--production"), 0);
    assert_int_equal(config_load_secrets(&cfg), -1);
    assert_int_equal(parse1(data, NULL), 0);
    assert_int_equal(config_load_secrets(&cfg), 0);
    unsigned char first[API_SECRET_LEN];
    memcpy(first, cfg.api.jwt_secret, sizeof(first));
    assert_int_equal(parse1(data, NULL), 0);
    assert_int_equal(config_load_secrets(&cfg), 0);
    assert_memory_equal(first, cfg.api.jwt_secret, sizeof(first));
    char path[128];
    snprintf(path, sizeof(path), "%s/d/jwt.secret", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/d/key-hash.secret", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/d/data.key", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/d", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_registry_types_match_their_fields, clear_env),
        cmocka_unit_test_setup(test_every_option_parsed_from_its_flag, clear_env),
        cmocka_unit_test_setup(test_every_option_parsed_from_its_environment_variable, clear_env),
        cmocka_unit_test_setup(test_checked_strings_refused_with_what_they_take, clear_env),
        cmocka_unit_test_setup(test_flags_fill_their_own_fields, clear_env),
        cmocka_unit_test_setup(test_defaults_and_derived_values, clear_env),
        cmocka_unit_test_setup(test_flag_wins_over_environment, clear_env),
        cmocka_unit_test_setup(test_numbers_out_of_bounds_refused_with_clear_message, clear_env),
        cmocka_unit_test_setup(test_other_values_out_of_bounds_refused, clear_env),
        cmocka_unit_test_setup(test_unknown_options_and_missing_values_refused, clear_env),
        cmocka_unit_test_setup(test_help_lists_every_option, clear_env),
        cmocka_unit_test_setup(test_readme_lists_every_option, clear_env),
        cmocka_unit_test_setup(test_secret_from_environment_must_be_64_hex_chars, clear_env),
        cmocka_unit_test_setup(test_metrics_token_from_environment_only_and_never_shown, clear_env),
        cmocka_unit_test_setup(test_secrets_required_in_production_else_generated_once, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
