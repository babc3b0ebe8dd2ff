/* Structured logging: one JSON object per line on stderr.
 *
 * Thread-safe: any thread may call log_*; each line is written with a single write(2), so lines
 * from several threads never interleave. Never pass secrets (keys, tokens, passwords) as fields.
 */
#ifndef COBROWSE_CORE_LOG_H
#define COBROWSE_CORE_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the minimum level written. Returns 0, or -1 if name is not debug|info|warn|error. */
int log_set_level_name(const char *name);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* Writes {"ts":..., "level":..., "msg": msg, ...fields}. Steals the reference to fields (may be
 * NULL). */
void log_json(enum log_level level, const char *msg, json_t *fields);

/* printf-style message without fields. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
