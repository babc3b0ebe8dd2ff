/* Scopes of secret keys: the one list of their names and bits (docs/rest-api.md and the
 * x-required-scope of each operation in openapi/openapi.yaml name them). Each entry is
 * X(enum constant, wire name); the order gives the bit, so append new scopes at the end (stored
 * keys keep their names, not bits, so reordering is safe but pointless).
 * Threading: constants only.
 */
#ifndef COBROWSE_API_SCOPES_H
#define COBROWSE_API_SCOPES_H

#define SCOPES(X)                                                                                  \
    X(SCOPE_TENANTS_READ, "tenants:read")                                                          \
    X(SCOPE_TENANTS_WRITE, "tenants:write")                                                        \
    X(SCOPE_KEYS_READ, "api_keys:read")                                                            \
    X(SCOPE_KEYS_WRITE, "api_keys:write")                                                          \
    X(SCOPE_SESSIONS_READ, "sessions:read")                                                        \
    X(SCOPE_SESSIONS_WRITE, "sessions:write")                                                      \
    X(SCOPE_AGENT_TOKENS_WRITE, "agent_tokens:write")                                              \
    X(SCOPE_WEBHOOKS_READ, "webhooks:read")                                                        \
    X(SCOPE_WEBHOOKS_WRITE, "webhooks:write")                                                      \
    X(SCOPE_AUDIT_READ, "audit:read")                                                              \
    X(SCOPE_USAGE_READ, "usage:read")

#define SCOPE_INDEX_(id, name) id##_INDEX,
enum scope_index { SCOPES(SCOPE_INDEX_) SCOPE_COUNT };
#undef SCOPE_INDEX_

#define SCOPE_BIT_(id, name) id = 1u << id##_INDEX,
enum scope { SCOPES(SCOPE_BIT_) SCOPE_ALL = (1u << SCOPE_COUNT) - 1 };
#undef SCOPE_BIT_

#endif
