/* Tenant limits: the one definition of each limit's name, bounds and default.
 *
 * LIMITS_TOKEN lists the limits the relay enforces, carried in session tokens (claim "lim",
 * struct token_limits in core/base/token.h has a field of each name); LIMITS_API the ones only
 * the REST API enforces. Each entry is X(name, minimum, maximum, default). The validator
 * (api/tenants.c), the defaults of a new reseller, the token claims (api/auth.c) and the
 * effective-limit rule (limits_min in migrations/004, which takes whatever keys a tenant has)
 * all read this list; tests/integration/limits.test.mjs checks openapi/openapi.yaml's
 * LimitsInput (bounds, defaults) against what the server does. A new limit is one line here plus
 * its schema in the spec.
 * Threading: constants only.
 */
#ifndef COBROWSE_API_LIMITS_H
#define COBROWSE_API_LIMITS_H

#define LIMITS_TOKEN(X)                                                                            \
    X(concurrent_sessions, 1, 1000000, 100)                                                        \
    X(sessions_per_minute, 1, 1000000, 60)                                                         \
    X(frames_per_second, 1, 1000000, 200)                                                          \
    X(bytes_per_second, 1, 1073741824, 1048576)                                                    \
    X(agents_per_session, 1, 1000000, 5)

#define LIMITS_API(X) X(api_requests_per_second, 1, 1000000, 100)

#define LIMITS_ALL(X) LIMITS_TOKEN(X) LIMITS_API(X)

#endif
