#include "api/validate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/scopes.h"
#include "core/base/timeutil.h"

#define SCOPE_NAME(id, name) name,
static const char *const scope_names[] = {SCOPES(SCOPE_NAME) NULL};

static const char *const remote_control_values[] = {"off", "ask", NULL};
const struct vfield validate_permission_fields[] = {
    {"remote_control", V_ENUM, 0, 0, 0, 0, VF_NONE, remote_control_values, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};

int validate_datetime(const char *s)
{
    double t;
    if (time_parse_rfc3339(s, &t) != 0)
        return 0;
    /* RFC 3339 allows offsets to 23:59, PostgreSQL only to 15:59: refuse here what the database
     * would fail on (a 500 otherwise). The offset is the string's last 6 characters unless Z. */
    size_t n = strlen(s);
    if (s[n - 1] == 'Z' || s[n - 1] == 'z')
        return 1;
    return n >= 6 && (s[n - 5] - '0') * 10 + (s[n - 4] - '0') <= 15;
}

size_t validate_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int fail(struct verror *err, const char *code, const char *path, const char *fmt,
                const char *arg)
{
    err->status = 422;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%.159s", path);
    snprintf(err->detail, sizeof(err->detail), fmt, path, arg ? arg : "");
    return -1;
}

/* Checks "host[:port]" ending at end: DNS-style labels (letters, digits, '-', not at a label's
 * edges, no empty label) and an optional port 1..65535 without leading zeros. */
static int valid_authority(const char *p, const char *end)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *host_end = colon ? colon : end;
    if (host_end == p || host_end - p > 253)
        return 0;
    const char *label = p;
    for (const char *q = p; q <= host_end; q++) {
        if (q == host_end || *q == '.') {
            size_t len = (size_t)(q - label);
            if (len == 0 || len > 63 || label[0] == '-' || q[-1] == '-')
                return 0;
            label = q + 1;
        } else if (!isalnum((unsigned char)*q) && *q != '-') {
            return 0;
        }
    }
    if (colon != NULL) {
        const char *d = colon + 1;
        long port = 0;
        if (d == end || *d == '0' || end - d > 5)
            return 0;
        for (; d < end; d++) {
            if (!isdigit((unsigned char)*d))
                return 0;
            port = port * 10 + (*d - '0');
        }
        if (port < 1 || port > 65535)
            return 0;
    }
    return 1;
}

/* Length of "http://" or "https://" at the start of s, or 0. */
static size_t scheme_len(const char *s, int *https)
{
    *https = strncmp(s, "https://", 8) == 0;
    if (*https)
        return 8;
    return strncmp(s, "http://", 7) == 0 ? 7 : 0;
}

int validate_origin(const char *s)
{
    int https;
    size_t n = scheme_len(s, &https);
    return n > 0 && valid_authority(s + n, s + strlen(s));
}

int validate_https_url(const char *s)
{
    int https;
    size_t n = scheme_len(s, &https);
    if (n == 0)
        return 0;
    const char *host = s + n;
    const char *end = host + strcspn(host, "/?#");
    if (!valid_authority(host, end)) /* also refuses userinfo ("user@host") */
        return 0;
    if (!https) { /* plain http only to this machine, for development */
        size_t hlen = strcspn(host, ":/?#");
        if (!((hlen == 9 && strncmp(host, "localhost", 9) == 0) ||
              (hlen == 9 && strncmp(host, "127.0.0.1", 9) == 0)))
            return 0;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>' ||
            *p == '\\')
            return 0;
    return 1;
}

int validate_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
        return 0;
    const char *dot = strrchr(at + 1, '.');
    if (dot == NULL || dot == at + 1 || dot[1] == '\0')
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == '<' || *p == '>' || *p == '"')
            return 0;
    return 1;
}

static int check_format(enum vformat f, const char *s)
{
    switch (f) {
    case VF_COLOR:
        if (strlen(s) != 7 || s[0] != '#')
            return 0;
        for (int i = 1; i < 7; i++)
            if (!isxdigit((unsigned char)s[i]))
                return 0;
        return 1;
    case VF_HTTPS_URL:
        return validate_https_url(s);
    case VF_ORIGIN:
        return validate_origin(s);
    case VF_EMAIL:
        return validate_email(s);
    case VF_DATETIME:
        return validate_datetime(s);
    case VF_SCOPE:
        for (int i = 0; scope_names[i]; i++)
            if (strcmp(s, scope_names[i]) == 0)
                return 1;
        return 0;
    case VF_SELECTOR:
        return strpbrk(s, "{};") == NULL;
    default:
        return 1;
    }
}

static const char *format_hint(enum vformat f)
{
    switch (f) {
    case VF_COLOR:
        return "a colour like #1a2b3c";
    case VF_HTTPS_URL:
        return "an https:// URL";
    case VF_ORIGIN:
        return "an origin like https://www.example.com (scheme, host, optional port, no path)";
    case VF_EMAIL:
        return "an email address";
    case VF_DATETIME:
        return "an RFC 3339 date-time like 2026-01-31T12:00:00Z (offset at most 15:59)";
    case VF_SCOPE:
        return "a scope from the documented list";
    case VF_SELECTOR:
        return "a CSS selector";
    default:
        return "valid";
    }
}

static int check_string(const json_t *v, double min, double max, enum vformat f, const char *path,
                        struct verror *err)
{
    char range[64];
    if (!json_is_string(v))
        return fail(err, "invalid_field", path, "%s must be a string.", NULL);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return fail(err, "invalid_field", path, "%s must not contain NUL characters.", NULL);
    size_t n = validate_utf8_length(s);
    if ((double)n < min || (double)n > max) {
        snprintf(range, sizeof(range), "%.0f to %.0f", min, max);
        return fail(err, "invalid_field", path, "%s must be %s characters long.", range);
    }
    if (!check_format(f, s))
        return fail(err, "invalid_field", path, "%s must be %s.", format_hint(f));
    return 0;
}

static int check_fields(const json_t *obj, const struct vfield *fields, const char *prefix,
                        struct verror *err);

static int in_list(const char *const *values, const char *s)
{
    for (int i = 0; values[i]; i++)
        if (strcmp(s, values[i]) == 0)
            return 1;
    return 0;
}

static int check_value(const json_t *v, const struct vfield *f, const char *path,
                       struct verror *err)
{
    char buf[96];
    if (json_is_null(v)) {
        if (f->nullable)
            return 0;
        return fail(err, "invalid_field", path, "%s must not be null.", NULL);
    }
    switch (f->type) {
    case V_STRING:
        return check_string(v, f->min, f->max, f->format, path, err);
    case V_INT: {
        if (!json_is_number(v))
            return fail(err, "invalid_field", path, "%s must be an integer.", NULL);
        double d = json_number_value(v);
        if (!isfinite(d) || floor(d) != d)
            return fail(err, "invalid_field", path, "%s must be an integer.", NULL);
        if (d < f->min || d > f->max) {
            snprintf(buf, sizeof(buf), "%.0f to %.0f", f->min, f->max);
            return fail(err, "invalid_field", path, "%s must be from %s.", buf);
        }
        return 0;
    }
    case V_BOOL:
        if (!json_is_boolean(v))
            return fail(err, "invalid_field", path, "%s must be true or false.", NULL);
        return 0;
    case V_ENUM: {
        buf[0] = '\0';
        for (int i = 0; f->enum_values[i]; i++) {
            if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
                strcmp(json_string_value(v), f->enum_values[i]) == 0)
                return 0;
            size_t len = strlen(buf);
            snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? ", " : "", f->enum_values[i]);
        }
        return fail(err, "invalid_field", path, "%s must be one of: %s.", buf);
    }
    case V_OBJECT:
        if (!json_is_object(v))
            return fail(err, "invalid_field", path, "%s must be an object.", NULL);
        return check_fields(v, f->children, path, err);
    case V_STR_ARRAY: {
        if (!json_is_array(v))
            return fail(err, "invalid_field", path, "%s must be an array of strings.", NULL);
        if ((double)json_array_size(v) > f->max) {
            snprintf(buf, sizeof(buf), "%.0f", f->max);
            return fail(err, "invalid_field", path, "%s must have at most %s items.", buf);
        }
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            char ipath[200];
            snprintf(ipath, sizeof(ipath), "%.150s.%zu", path, i);
            if (check_string(item, 1, (double)f->item_max_len, f->format, ipath, err) != 0)
                return -1;
            if (f->enum_values != NULL && !in_list(f->enum_values, json_string_value(item)))
                return fail(err, "invalid_field", ipath,
                            "%s is not one of the values the API reference lists for it.", NULL);
        }
        return 0;
    }
    case V_FREE_OBJECT: {
        if (!json_is_object(v))
            return fail(err, "invalid_field", path, "%s must be an object.", NULL);
        if ((double)json_object_size(v) > f->max) {
            snprintf(buf, sizeof(buf), "%.0f", f->max);
            return fail(err, "invalid_field", path, "%s must have at most %s keys.", buf);
        }
        const char *k;
        size_t klen;
        json_t *item;
        json_object_keylen_foreach((json_t *)v, k, klen, item)
        {
            char ipath[200];
            if (klen != strlen(k))
                return fail(err, "invalid_field", path, "%s has a key containing a NUL character.",
                            NULL);
            snprintf(ipath, sizeof(ipath), "%.90s.%.100s", path, k);
            if (validate_utf8_length(k) > 100 || k[0] == '\0')
                return fail(err, "invalid_field", ipath, "%s: keys must be 1 to 100 characters.",
                            NULL);
            if (json_is_string(item)) {
                if (check_string(item, 0, 1000, VF_NONE, ipath, err) != 0)
                    return -1;
            } else if (json_is_number(item)) {
                if (!isfinite(json_number_value(item)) || fabs(json_number_value(item)) > 9.0e15)
                    return fail(err, "invalid_field", ipath, "%s must be a number within +-9e15.",
                                NULL);
            } else if (!json_is_boolean(item) && !json_is_null(item)) {
                return fail(err, "invalid_field", ipath,
                            "%s must be a string, number, boolean or null.", NULL);
            }
        }
        return 0;
    }
    }
    return 0;
}

static int check_fields(const json_t *obj, const struct vfield *fields, const char *prefix,
                        struct verror *err)
{
    char path[160];
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, key, key_len, v)
    {
        if (key_len != strlen(key)) /* "\u0000" inside a key */
            return fail(err, "unknown_field", prefix[0] ? prefix : "body",
                        "%s has a field name containing a NUL character.", NULL);
        const struct vfield *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        snprintf(path, sizeof(path), "%s%s%.100s", prefix, prefix[0] ? "." : "", key);
        if (f->name == NULL)
            return fail(err, "unknown_field", path,
                        "%s is not a field of this request. Check the spelling against the API "
                        "reference.",
                        NULL);
        if (check_value(v, f, path, err) != 0)
            return -1;
    }
    for (const struct vfield *f = fields; f->name; f++) {
        if (f->required && json_object_get(obj, f->name) == NULL) {
            snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", f->name);
            return fail(err, "missing_field", path, "%s is required.", NULL);
        }
    }
    return 0;
}

int validate_object(const json_t *obj, const struct vfield *fields, struct verror *err)
{
    memset(err, 0, sizeof(*err));
    if (!json_is_object(obj))
        return fail(err, "invalid_field", "", "The body must be a JSON object.%s", NULL);
    return check_fields(obj, fields, "", err);
}

json_t *validate_normalize(json_t *v)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (floor(d) == d && fabs(d) <= 9007199254740992.0)
            return json_integer((json_int_t)d);
        return json_incref(v);
    }
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *k;
        json_t *item;
        json_object_foreach(v, k, item) json_object_set_new(out, k, validate_normalize(item));
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) json_array_append_new(out, validate_normalize(item));
        return out;
    }
    return json_incref(v);
}
