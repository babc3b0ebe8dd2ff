/* Declarative validation of JSON request bodies.
 *
 * A body is checked against a table of fields: unknown fields (422 unknown_field), missing
 * required ones (422 missing_field), wrong types and out-of-range values (422 invalid_field).
 * The offending field is reported as a dotted path ("limits.concurrent_sessions").
 * Bodies are parsed with JSON_DECODE_INT_AS_REAL so that huge integers reach the range check
 * instead of failing the parser: integers are reals with no fraction here.
 * Thread-safe: tables are const, results are written to the caller's struct.
 */
#ifndef COBROWSE_API_VALIDATE_H
#define COBROWSE_API_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

enum vtype {
    V_STRING, /* min..max characters (code points) */
    V_INT,    /* integral number in [min, max] */
    V_BOOL,
    V_ENUM,        /* one of enum_values */
    V_OBJECT,      /* nested fields */
    V_STR_ARRAY,   /* at most max items, each a V_STRING of maxlen with the given format, and
                    * one of enum_values when they are given */
    V_FREE_OBJECT, /* at most max keys (<= 100 chars), scalar values, strings <= 1000 chars */
};

enum vformat {
    VF_NONE = 0,
    VF_COLOR,     /* #rrggbb */
    VF_HTTPS_URL, /* https://... (http://localhost allowed for development) */
    VF_ORIGIN,    /* scheme://host[:port], no path */
    VF_EMAIL,
    VF_DATETIME, /* RFC 3339 */
    VF_SCOPE,    /* one of the scopes */
    VF_SELECTOR, /* a CSS selector: no '{', '}' or ';' */
};

struct vfield {
    const char *name;
    enum vtype type;
    int required;
    int nullable;
    double min, max; /* V_STRING: length bounds; V_INT: value bounds; arrays/objects: max items */
    enum vformat format;
    const char *const *enum_values;
    const struct vfield *children; /* V_OBJECT: terminated by {NULL} */
    size_t item_max_len;           /* V_STR_ARRAY */
};

struct verror {
    int status;       /* 422 */
    const char *code; /* missing_field | unknown_field | invalid_field */
    char field[160];
    char detail[320];
};

/* {"remote_control": "off" | "ask"}: the permissions object of tenants, sessions and tokens. */
extern const struct vfield validate_permission_fields[];

/* Validates obj against fields. Returns 0 or -1 with *err filled. */
int validate_object(const json_t *obj, const struct vfield *fields, struct verror *err);

/* Turns integral reals (as parsed with JSON_DECODE_INT_AS_REAL) back into integers, recursively,
 * so stored JSON keeps 3 and not 3.0. Returns a new reference. */
json_t *validate_normalize(json_t *v);

/* Helpers for the formats, exposed for tests and handlers. */
int validate_origin(const char *s);
int validate_email(const char *s);
int validate_https_url(const char *s);
size_t validate_utf8_length(const char *s);
/* 1 if s is an RFC 3339 date-time PostgreSQL accepts (offset at most 15:59), else 0. */
int validate_datetime(const char *s);

#endif
