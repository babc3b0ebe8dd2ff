/* The static module's pure rules (api/static/static.h): which file a URL path names, content types,
 * Accept-Encoding, If-None-Match, and which origins may go into a CSP header. No state, no I/O:
 * unit-tested in tests/unit/api/static/static_test.c. Loading and serving are in
 * api/static/static.c. */
#include "api/static/static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_MAX_LEN 512

/* 1 if every segment of p (after its leading '/') is a plain name: not empty (except a final
 * one when trailing_ok), not "." or "..", no backslash or control character. */
static int segments_ok(const char *p, int trailing_ok)
{
    if (*p != '/')
        return 0;
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '\\')
            return 0;
    const char *seg = p + 1;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 && !(end == NULL && trailing_ok))
            return 0;
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        if (end == NULL)
            return 1;
        seg = end + 1;
    }
}

static int put(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s%s", a, b);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

enum static_kind static_map(const char *url_path, char *file, size_t file_size, char *tenant,
                            size_t tenant_size)
{
    if (url_path == NULL || !segments_ok(url_path, 1))
        return STATIC_NONE;
    if (strcmp(url_path, "/sdk/v1/cobrowse.js") == 0)
        return put(file, file_size, "sdk/v1/cobrowse.js", "") == 0 ? STATIC_SDK : STATIC_NONE;
    if (strcmp(url_path, "/demo/console/") == 0)
        return put(file, file_size, "demo/console/index.html", "") == 0 ? STATIC_CONSOLE
                                                                        : STATIC_NONE;
    if (strcmp(url_path, "/demo/console") == 0)
        return STATIC_CONSOLE_REDIRECT;
    if (strncmp(url_path, "/assets/", 8) == 0) {
        const char *rest = url_path + 8;
        size_t n = strlen(rest);
        if (n == 0 || rest[n - 1] == '/')
            return STATIC_NONE;
        return put(file, file_size, "assets/", rest) == 0 ? STATIC_ASSET : STATIC_NONE;
    }
    if (strncmp(url_path, "/viewer/", 8) == 0) {
        const char *rest = url_path + 8;
        if (rest[0] == '\0' || strchr(rest, '/') != NULL)
            return STATIC_NONE;
        if (put(tenant, tenant_size, rest, "") != 0 ||
            put(file, file_size, "viewer/index.html", "") != 0)
            return STATIC_NONE;
        return STATIC_VIEWER;
    }
    return STATIC_NONE;
}

const char *static_mime(const char *name)
{
    static const char *const types[][2] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"woff2", "font/woff2"},
        {"woff", "font/woff"},
        {"txt", "text/plain; charset=utf-8"},
    };
    const char *slash = name ? strrchr(name, '/') : NULL;
    const char *base = slash ? slash + 1 : name;
    const char *dot = base ? strrchr(base, '.') : NULL;
    if (dot == NULL || dot == base)
        return "application/octet-stream";
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot + 1, types[i][0]) == 0)
            return types[i][1];
    return "application/octet-stream";
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The q value of one coding's parameters (";q=0.5"), 1 when absent, 0 when malformed. */
static double coding_q(const char *params, const char *end)
{
    const char *p = params;
    while (p < end) {
        p = skip_ows(p);
        if (p < end && *p == ';')
            p = skip_ows(p + 1);
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char buf[16];
            size_t n = 0;
            for (const char *v = p + 2; v < end && n + 1 < sizeof(buf) && *v != ';' && *v != ' ';
                 v++)
                buf[n++] = *v;
            buf[n] = '\0';
            char *stop = NULL;
            double q = strtod(buf, &stop);
            if (n == 0 || *stop != '\0' || q < 0 || q > 1)
                return 0;
            return q;
        }
        const char *next = memchr(p, ';', (size_t)(end - p));
        if (next == NULL)
            break;
        p = next;
    }
    return 1;
}

int static_accepts_gzip(const char *accept_encoding)
{
    if (accept_encoding == NULL)
        return 0;
    double gz = -1, star = -1;
    const char *p = accept_encoding;
    while (*p) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *name = skip_ows(p);
        size_t n = 0;
        while (name + n < end && name[n] != ';' && name[n] != ' ' && name[n] != '\t')
            n++;
        double q = coding_q(name + n, end);
        if ((n == 4 && strncasecmp(name, "gzip", 4) == 0) ||
            (n == 6 && strncasecmp(name, "x-gzip", 6) == 0))
            gz = q;
        else if (n == 1 && name[0] == '*')
            star = q;
        p = *end ? end + 1 : end;
    }
    return gz >= 0 ? gz > 0 : star > 0;
}

int static_origin_safe(const char *origin)
{
    if (origin == NULL)
        return 0;
    size_t len = strlen(origin);
    const char *host;
    if (strncmp(origin, "https://", 8) == 0)
        host = origin + 8;
    else if (strncmp(origin, "http://", 7) == 0)
        host = origin + 7;
    else if (strncmp(origin, "wss://", 6) == 0)
        host = origin + 6;
    else if (strncmp(origin, "ws://", 5) == 0)
        host = origin + 5;
    else
        return 0;
    if (*host == '\0' || len > ORIGIN_MAX_LEN)
        return 0;
    for (const char *p = host; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']';
        if (!ok)
            return 0;
    }
    return 1;
}

int static_etag_match(const char *inm, const char *etag)
{
    if (inm == NULL || etag == NULL)
        return 0;
    size_t elen = strlen(etag);
    const char *p = skip_ows(inm);
    if (p[0] == '*' && *skip_ows(p + 1) == '\0')
        return 1;
    while (*p) {
        p = skip_ows(p);
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *t = p;
        if (end - t >= 2 && t[0] == 'W' && t[1] == '/')
            t += 2;
        const char *te = end;
        while (te > t && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        if ((size_t)(te - t) == elen && memcmp(t, etag, elen) == 0)
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}
