/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, max U+10FFFF). Thread-safe. */
#ifndef COBROWSE_CORE_UTF8_H
#define COBROWSE_CORE_UTF8_H

#include <stddef.h>

/* 1 if the len bytes at s are valid UTF-8 without NUL bytes, else 0. */
int utf8_valid(const char *s, size_t len);

#endif
