/* The SSRF guard: classifies the address libcurl is about to connect to. See netguard.h. */
#include "core/net/netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on the operator's list: it is read once at start, but a typo should not make a
 * megabyte allocation or a list that netguard_check walks for every connection. */
#define NETGUARD_MAX_RANGES 64
#define NETGUARD_MAX_ITEM   64

struct netguard_range {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;
};

struct netguard {
    size_t n;
    struct netguard_range r[];
};

/* A refused range, written the way the RFCs write it; matched on the first `prefix` bits. */
struct netguard_rule {
    const char *cidr;
    enum netguard_verdict verdict;
};

/* Order matters: the first match wins, so the narrower IPv6 ranges inside ::/8 and 2001::/23 come
 * before the wide ones. */
static const struct netguard_rule v4_rules[] = {
    {"0.0.0.0/8", NETGUARD_UNSPECIFIED},     {"10.0.0.0/8", NETGUARD_PRIVATE},
    {"100.64.0.0/10", NETGUARD_PRIVATE},     {"127.0.0.0/8", NETGUARD_LOOPBACK},
    {"169.254.0.0/16", NETGUARD_LINK_LOCAL}, {"172.16.0.0/12", NETGUARD_PRIVATE},
    {"192.0.0.0/24", NETGUARD_RESERVED},     {"192.0.2.0/24", NETGUARD_RESERVED},
    {"192.88.99.0/24", NETGUARD_RESERVED},   {"192.168.0.0/16", NETGUARD_PRIVATE},
    {"198.18.0.0/15", NETGUARD_RESERVED},    {"198.51.100.0/24", NETGUARD_RESERVED},
    {"203.0.113.0/24", NETGUARD_RESERVED},   {"224.0.0.0/4", NETGUARD_MULTICAST},
    {"240.0.0.0/4", NETGUARD_RESERVED}, /* 255.255.255.255 included */
};

static const struct netguard_rule v6_rules[] = {
    {"::/128", NETGUARD_UNSPECIFIED},
    {"::1/128", NETGUARD_LOOPBACK},
    {"::ffff:0:0/96", NETGUARD_EMBEDDED_V4}, /* IPv4-mapped */
    {"::/96", NETGUARD_EMBEDDED_V4},         /* IPv4-compatible (deprecated) */
    {"64:ff9b::/96", NETGUARD_EMBEDDED_V4},  /* NAT64 */
    {"64:ff9b:1::/48", NETGUARD_EMBEDDED_V4},
    {"100::/64", NETGUARD_RESERVED},      /* discard-only */
    {"::/8", NETGUARD_RESERVED},          /* the rest of the IETF's reserved block */
    {"2001::/32", NETGUARD_EMBEDDED_V4},  /* Teredo */
    {"2001:db8::/32", NETGUARD_RESERVED}, /* documentation */
    {"2001::/23", NETGUARD_RESERVED},     /* IETF protocol assignments, benchmarking, ORCHID */
    {"2002::/16", NETGUARD_EMBEDDED_V4},  /* 6to4 */
    {"3fff::/20", NETGUARD_RESERVED},     /* documentation (RFC 9637) */
    {"5f00::/16", NETGUARD_RESERVED},     /* SRv6 SIDs */
    {"fc00::/7", NETGUARD_PRIVATE},       /* unique local */
    {"fe80::/10", NETGUARD_LINK_LOCAL},
    {"fec0::/10", NETGUARD_PRIVATE}, /* site-local (deprecated) */
    {"ff00::/8", NETGUARD_MULTICAST},
};

static int prefix_match(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

/* Parses "addr" or "addr/prefix" into r. Host bits after the prefix are ignored. */
static int parse_cidr(const char *s, size_t len, struct netguard_range *r)
{
    char buf[NETGUARD_MAX_ITEM + 1];
    if (len == 0 || len > NETGUARD_MAX_ITEM)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    memset(r, 0, sizeof *r);
    if (inet_pton(AF_INET, buf, r->addr) == 1)
        r->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, r->addr) == 1)
        r->family = AF_INET6;
    else
        return -1;
    int max = r->family == AF_INET ? 32 : 128;
    if (slash == NULL) {
        r->prefix = max;
        return 0;
    }
    const char *p = slash + 1;
    /* Digits only: strtol would take "+8", " 8" and "8abc". */
    size_t nd = strspn(p, "0123456789");
    if (nd == 0 || nd > 3 || p[nd] != '\0')
        return -1;
    r->prefix = atoi(p);
    return r->prefix <= max ? 0 : -1;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

int netguard_new(const char *allow, struct netguard **out, char *err, size_t err_size)
{
    struct netguard *g = calloc(1, sizeof *g + NETGUARD_MAX_RANGES * sizeof g->r[0]);
    *out = NULL;
    if (g == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    const char *p = allow != NULL ? allow : "";
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        size_t ilen = len;
        trim(&item, &ilen);
        if (g->n == NETGUARD_MAX_RANGES) {
            snprintf(err, err_size, "more than %d ranges", NETGUARD_MAX_RANGES);
            goto fail;
        }
        if (parse_cidr(item, ilen, &g->r[g->n]) != 0) {
            snprintf(err, err_size, "not an address or CIDR range: \"%.*s\"",
                     (int)(ilen > NETGUARD_MAX_ITEM ? NETGUARD_MAX_ITEM : ilen), item);
            goto fail;
        }
        g->n++;
        if (comma == NULL)
            break;
        p = comma + 1;
        if (*p == '\0') { /* "10.0.0.0/8," : a trailing empty item is a typo too */
            snprintf(err, err_size, "empty item at the end of the list");
            goto fail;
        }
    }
    *out = g;
    return 0;
fail:
    free(g);
    return -1;
}

void netguard_free(struct netguard *g)
{
    free(g);
}

#define NV4 (sizeof v4_rules / sizeof v4_rules[0])
#define NV6 (sizeof v6_rules / sizeof v6_rules[0])

/* The tables above parsed once, so that a check is a few memcmp, not inet_pton calls. */
static struct netguard_range v4_parsed[NV4], v6_parsed[NV6];
static pthread_once_t parsed_once = PTHREAD_ONCE_INIT;

static void parse_rules(void)
{
    /* The tables are constants: the unit tests check every entry parses (a range that did not
     * would keep prefix 0 and refuse everything of its family, failing closed). */
    for (size_t i = 0; i < NV4; i++)
        parse_cidr(v4_rules[i].cidr, strlen(v4_rules[i].cidr), &v4_parsed[i]);
    for (size_t i = 0; i < NV6; i++)
        parse_cidr(v6_rules[i].cidr, strlen(v6_rules[i].cidr), &v6_parsed[i]);
}

static enum netguard_verdict classify(int family, const uint8_t *a)
{
    pthread_once(&parsed_once, parse_rules);
    const struct netguard_rule *rules = family == AF_INET ? v4_rules : v6_rules;
    const struct netguard_range *parsed = family == AF_INET ? v4_parsed : v6_parsed;
    size_t n = family == AF_INET ? NV4 : NV6;
    for (size_t i = 0; i < n; i++)
        if (prefix_match(a, parsed[i].addr, parsed[i].prefix))
            return rules[i].verdict;
    /* Global unicast is 2000::/3; anything else not named above is unassigned. */
    if (family == AF_INET6 && (a[0] & 0xe0) != 0x20)
        return NETGUARD_RESERVED;
    return NETGUARD_OK;
}

enum netguard_verdict netguard_check(const struct netguard *g, const struct sockaddr *sa,
                                     socklen_t len)
{
    uint8_t a[16];
    int family;
    if (sa == NULL)
        return NETGUARD_FAMILY;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        family = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        family = AF_INET6;
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return NETGUARD_FAMILY;
    }
    enum netguard_verdict v = classify(family, a);
    /* Embedded IPv4 is refused whatever the operator allowed: an allow list names ranges in
     * their own family, and ::ffff:127.0.0.1 must not slip through "::/0". */
    if (v == NETGUARD_OK || v == NETGUARD_EMBEDDED_V4 || g == NULL)
        return v;
    for (size_t i = 0; i < g->n; i++)
        if (g->r[i].family == family && prefix_match(a, g->r[i].addr, g->r[i].prefix))
            return NETGUARD_OK;
    return v;
}

const char *netguard_verdict_str(enum netguard_verdict v)
{
    switch (v) {
    case NETGUARD_OK:
        return "ok";
    case NETGUARD_LOOPBACK:
        return "loopback";
    case NETGUARD_PRIVATE:
        return "private";
    case NETGUARD_LINK_LOCAL:
        return "link-local";
    case NETGUARD_MULTICAST:
        return "multicast";
    case NETGUARD_UNSPECIFIED:
        return "unspecified";
    case NETGUARD_RESERVED:
        return "reserved";
    case NETGUARD_EMBEDDED_V4:
        return "embedded-ipv4";
    case NETGUARD_FAMILY:
        return "family";
    }
    return "unknown";
}
