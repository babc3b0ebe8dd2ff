/* The Redis store of the visitors' uploaded stylesheets, private to core/proxy/proxy_upload.c,
 * which chooses it behind proxy_upload.h (whose contract, threading included, these keep: any
 * thread, one blocking round trip each). */
#ifndef COBROWSE_CORE_PROXY_PROXY_UPLOAD_REDIS_H
#define COBROWSE_CORE_PROXY_PROXY_UPLOAD_REDIS_H

#include <stddef.h>

#include "core/proxy/proxy_upload.h"

struct upload_redis;

struct upload_redis *upload_redis_new(const char *url);
void upload_redis_free(struct upload_redis *r);
int upload_redis_put(struct upload_redis *r, const char *tenant, const char *session,
                     const char *url, const char *text, size_t len);
char *upload_redis_get(struct upload_redis *r, const char *tenant, const char *session,
                       const char *url, size_t *len);
void upload_redis_stats(struct upload_redis *r, struct proxy_uploads_stats *out);

#endif
