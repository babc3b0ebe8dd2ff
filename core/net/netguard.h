/* The proxy's SSRF guard (docs/proxy.md, "What the proxy refuses to reach"): decides, for the
 * address a connection is about to be made to, whether the proxy may connect. It is called at
 * connect time (libcurl's CURLOPT_OPENSOCKETFUNCTION) for every connection, redirects included,
 * so that neither DNS rebinding nor a redirect can get around it.
 *
 * Refused unless the operator allowed the range (--proxy-allow-private): loopback, RFC 1918 and
 * other private or shared ranges, link-local, multicast, unspecified, reserved and documentation
 * ranges, IPv6 unique-local, site-local and link-local. Always refused, whatever is allowed:
 * IPv4-mapped and IPv4-compatible IPv6, NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 and Teredo,
 * and any address family other than AF_INET and AF_INET6.
 * Threading: a netguard is immutable after netguard_new; netguard_check is safe from any thread.
 */
#ifndef COBROWSE_CORE_NET_NETGUARD_H
#define COBROWSE_CORE_NET_NETGUARD_H

#include <stddef.h>
#include <sys/socket.h>

struct netguard;

enum netguard_verdict {
    NETGUARD_OK = 0,
    NETGUARD_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    NETGUARD_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10 */
    NETGUARD_LINK_LOCAL,  /* 169.254/16 (cloud metadata), fe80::/10 */
    NETGUARD_MULTICAST,   /* 224/4, ff00::/8 */
    NETGUARD_UNSPECIFIED, /* 0.0.0.0/8, :: */
    NETGUARD_RESERVED,    /* 240/4, broadcast, documentation, benchmarking, 192.0.0/24, 100::/64 */
    NETGUARD_EMBEDDED_V4, /* ::ffff:0:0/96, ::/96, 64:ff9b::/96, 64:ff9b:1::/48, 2002::/16,
                             2001::/32 */
    NETGUARD_FAMILY,      /* not IPv4 or IPv6 */
};

/* Parses the operator's allowed ranges: a comma-separated list of CIDRs ("10.0.0.0/8,fd00::/8",
 * a bare address means /32 or /128); NULL or "" allows nothing. On error returns -1 and writes a
 * message naming the bad item into err. */
int netguard_new(const char *allow, struct netguard **out, char *err, size_t err_size);
void netguard_free(struct netguard *g);

/* The verdict for one address (g may be NULL: nothing allowed). */
enum netguard_verdict netguard_check(const struct netguard *g, const struct sockaddr *sa,
                                     socklen_t len);

/* A short stable name ("loopback", "private", ...) for logs and problem details. */
const char *netguard_verdict_str(enum netguard_verdict v);

#endif
