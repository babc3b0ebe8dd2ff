/* core/net/netguard.c: every refused range at its edges, the allow list and its parsing.
 * Classifies sockaddrs only: nothing here opens a socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/net/netguard.h"

/* The verdict for a textual address (IPv4 or IPv6) under g. */
static enum netguard_verdict check(const struct netguard *g, const char *addr)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    memset(&sin, 0, sizeof sin);
    memset(&sin6, 0, sizeof sin6);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(80);
        return netguard_check(g, (struct sockaddr *)&sin, sizeof sin);
    }
    if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) != 1)
        fail_msg("bad test address %s", addr);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(80);
    return netguard_check(g, (struct sockaddr *)&sin6, sizeof sin6);
}

struct expect {
    const char *addr;
    enum netguard_verdict v;
};

static void check_all(const struct netguard *g, const struct expect *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum netguard_verdict v = check(g, e[i].addr);
        if (v != e[i].v)
            fail_msg("%s: got %s, want %s", e[i].addr, netguard_verdict_str(v),
                     netguard_verdict_str(e[i].v));
    }
}

#define CHECK_ALL(g, table) check_all((g), (table), sizeof(table) / sizeof((table)[0]))

static void test_ipv4_refused_ranges_at_their_edges(void **state)
{
    (void)state;
    static const struct expect e[] = {
        {"0.0.0.0", NETGUARD_UNSPECIFIED},
        {"0.255.255.255", NETGUARD_UNSPECIFIED},
        {"1.0.0.0", NETGUARD_OK},
        {"9.255.255.255", NETGUARD_OK},
        {"10.0.0.0", NETGUARD_PRIVATE},
        {"10.0.0.1", NETGUARD_PRIVATE},
        {"10.255.255.255", NETGUARD_PRIVATE},
        {"11.0.0.0", NETGUARD_OK},
        {"100.63.255.255", NETGUARD_OK},
        {"100.64.0.0", NETGUARD_PRIVATE},
        {"100.64.0.1", NETGUARD_PRIVATE},
        {"100.127.255.255", NETGUARD_PRIVATE},
        {"100.128.0.0", NETGUARD_OK},
        {"126.255.255.255", NETGUARD_OK},
        {"127.0.0.0", NETGUARD_LOOPBACK},
        {"127.0.0.1", NETGUARD_LOOPBACK},
        {"127.255.255.255", NETGUARD_LOOPBACK},
        {"128.0.0.0", NETGUARD_OK},
        {"169.253.255.255", NETGUARD_OK},
        {"169.254.0.0", NETGUARD_LINK_LOCAL},
        {"169.254.169.254", NETGUARD_LINK_LOCAL},
        {"169.254.255.255", NETGUARD_LINK_LOCAL},
        {"169.255.0.0", NETGUARD_OK},
        {"172.15.255.255", NETGUARD_OK},
        {"172.16.0.0", NETGUARD_PRIVATE},
        {"172.31.255.255", NETGUARD_PRIVATE},
        {"172.32.0.0", NETGUARD_OK},
        {"192.0.0.0", NETGUARD_RESERVED},
        {"192.0.0.255", NETGUARD_RESERVED},
        {"192.0.1.0", NETGUARD_OK},
        {"192.0.2.0", NETGUARD_RESERVED},
        {"192.0.2.255", NETGUARD_RESERVED},
        {"192.0.3.0", NETGUARD_OK},
        {"192.88.99.1", NETGUARD_RESERVED},
        {"192.88.100.0", NETGUARD_OK},
        {"192.167.255.255", NETGUARD_OK},
        {"192.168.0.0", NETGUARD_PRIVATE},
        {"192.168.1.1", NETGUARD_PRIVATE},
        {"192.168.255.255", NETGUARD_PRIVATE},
        {"192.169.0.0", NETGUARD_OK},
        {"198.17.255.255", NETGUARD_OK},
        {"198.18.0.0", NETGUARD_RESERVED},
        {"198.18.0.1", NETGUARD_RESERVED},
        {"198.19.255.255", NETGUARD_RESERVED},
        {"198.20.0.0", NETGUARD_OK},
        {"198.51.100.7", NETGUARD_RESERVED},
        {"203.0.113.9", NETGUARD_RESERVED},
        {"203.0.114.0", NETGUARD_OK},
        {"223.255.255.255", NETGUARD_OK},
        {"224.0.0.0", NETGUARD_MULTICAST},
        {"224.0.0.1", NETGUARD_MULTICAST},
        {"239.255.255.255", NETGUARD_MULTICAST},
        {"240.0.0.0", NETGUARD_RESERVED},
        {"255.255.255.255", NETGUARD_RESERVED},
    };
    CHECK_ALL(NULL, e);
}

static void test_ipv6_refused_ranges_at_their_edges(void **state)
{
    (void)state;
    static const struct expect e[] = {
        {"::", NETGUARD_UNSPECIFIED},
        {"::1", NETGUARD_LOOPBACK},
        {"::2", NETGUARD_EMBEDDED_V4},
        {"::127.0.0.1", NETGUARD_EMBEDDED_V4},
        {"::255.255.255.255", NETGUARD_EMBEDDED_V4},
        {"::1:0:0", NETGUARD_RESERVED},
        {"::fffe:ffff:ffff", NETGUARD_RESERVED},
        {"::1:0:0:0:0", NETGUARD_RESERVED},
        {"::ffff:127.0.0.1", NETGUARD_EMBEDDED_V4},
        {"::ffff:8.8.8.8", NETGUARD_EMBEDDED_V4},
        {"::ffff:0:0", NETGUARD_EMBEDDED_V4},
        {"::ffff:255.255.255.255", NETGUARD_EMBEDDED_V4},
        {"::1:0:0:0", NETGUARD_RESERVED},
        {"64:ff9b::7f00:1", NETGUARD_EMBEDDED_V4},
        {"64:ff9b::808:808", NETGUARD_EMBEDDED_V4},
        {"64:ff9b:1::1", NETGUARD_EMBEDDED_V4},
        {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", NETGUARD_EMBEDDED_V4},
        {"64:ff9b:2::", NETGUARD_RESERVED},
        {"100::", NETGUARD_RESERVED},
        {"100::ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
        {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
        {"2000::", NETGUARD_OK},
        {"2001::", NETGUARD_EMBEDDED_V4},
        {"2001::1", NETGUARD_EMBEDDED_V4},
        {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_EMBEDDED_V4},
        {"2001:1::1", NETGUARD_RESERVED},
        {"2001:2::1", NETGUARD_RESERVED},
        {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
        {"2001:200::", NETGUARD_OK},
        {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_OK},
        {"2001:db8::", NETGUARD_RESERVED},
        {"2001:db8::1", NETGUARD_RESERVED},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
        {"2001:db9::", NETGUARD_OK},
        {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_OK},
        {"2002::", NETGUARD_EMBEDDED_V4},
        {"2002:7f00:1::", NETGUARD_EMBEDDED_V4},
        {"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_EMBEDDED_V4},
        {"2003::", NETGUARD_OK},
        {"3ffe:ffff::", NETGUARD_OK},
        {"3fff::1", NETGUARD_RESERVED},
        {"3fff:fff:ffff::", NETGUARD_RESERVED},
        {"3fff:1000::", NETGUARD_OK},
        {"4000::", NETGUARD_RESERVED},
        {"5f00::1", NETGUARD_RESERVED},
        {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
        {"fc00::", NETGUARD_PRIVATE},
        {"fc00::1", NETGUARD_PRIVATE},
        {"fd12::1", NETGUARD_PRIVATE},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_PRIVATE},
        {"fe00::", NETGUARD_RESERVED},
        {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
        {"fe80::", NETGUARD_LINK_LOCAL},
        {"fe80::1", NETGUARD_LINK_LOCAL},
        {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_LINK_LOCAL},
        {"fec0::", NETGUARD_PRIVATE},
        {"fec0::1", NETGUARD_PRIVATE},
        {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_PRIVATE},
        {"ff00::", NETGUARD_MULTICAST},
        {"ff02::1", NETGUARD_MULTICAST},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_MULTICAST},
    };
    CHECK_ALL(NULL, e);
}

static void test_public_addresses_allowed(void **state)
{
    (void)state;
    static const struct expect e[] = {
        {"8.8.8.8", NETGUARD_OK},
        {"1.1.1.1", NETGUARD_OK},
        {"93.184.216.34", NETGUARD_OK},
        {"2606:4700::1111", NETGUARD_OK},
        {"2a00:1450:4001:80b::200e", NETGUARD_OK},
    };
    CHECK_ALL(NULL, e);
}

static void test_empty_allow_list_allows_nothing_private(void **state)
{
    (void)state;
    struct netguard *g = NULL;
    char err[128];
    assert_int_equal(netguard_new("", &g, err, sizeof err), 0);
    assert_int_equal(check(g, "127.0.0.1"), NETGUARD_LOOPBACK);
    assert_int_equal(check(g, "8.8.8.8"), NETGUARD_OK);
    netguard_free(g);
    assert_int_equal(netguard_new(NULL, &g, err, sizeof err), 0);
    assert_int_equal(check(g, "10.1.2.3"), NETGUARD_PRIVATE);
    netguard_free(g);
}

static void test_loopback_allow_covers_ipv4_only_and_never_mapped(void **state)
{
    (void)state;
    struct netguard *g = NULL;
    char err[128];
    assert_int_equal(netguard_new("127.0.0.0/8", &g, err, sizeof err), 0);
    static const struct expect e[] = {
        {"127.0.0.1", NETGUARD_OK},
        {"127.255.255.255", NETGUARD_OK},
        {"::1", NETGUARD_LOOPBACK},
        {"::ffff:127.0.0.1", NETGUARD_EMBEDDED_V4},
        {"::127.0.0.1", NETGUARD_EMBEDDED_V4},
        {"64:ff9b::7f00:1", NETGUARD_EMBEDDED_V4},
        {"10.0.0.1", NETGUARD_PRIVATE},
        {"0.0.0.0", NETGUARD_UNSPECIFIED},
    };
    CHECK_ALL(g, e);
    netguard_free(g);
}

static void test_allow_list_of_several_ranges_with_spaces(void **state)
{
    (void)state;
    struct netguard *g = NULL;
    char err[128];
    assert_int_equal(netguard_new("10.1.0.0/16, fd00::/8 ,192.168.1.7", &g, err, sizeof err), 0);
    static const struct expect e[] = {
        {"10.1.0.0", NETGUARD_OK},         {"10.1.255.255", NETGUARD_OK},
        {"10.2.0.0", NETGUARD_PRIVATE},    {"10.0.255.255", NETGUARD_PRIVATE},
        {"fd00::1", NETGUARD_OK},          {"fdff::1", NETGUARD_OK},
        {"fc00::1", NETGUARD_PRIVATE},     {"192.168.1.7", NETGUARD_OK},
        {"192.168.1.6", NETGUARD_PRIVATE}, {"192.168.1.8", NETGUARD_PRIVATE},
    };
    CHECK_ALL(g, e);
    netguard_free(g);
}

static void test_odd_prefixes_and_host_bits(void **state)
{
    (void)state;
    struct netguard *g = NULL;
    char err[128];
    /* /13 cuts a byte; host bits after the prefix are ignored (10.9.x is inside 10.8.0.0/13). */
    assert_int_equal(netguard_new("10.9.1.1/13,fe80::/11,::1/128", &g, err, sizeof err), 0);
    static const struct expect e[] = {
        {"10.8.0.0", NETGUARD_OK},        {"10.15.255.255", NETGUARD_OK},
        {"10.16.0.0", NETGUARD_PRIVATE},  {"10.7.255.255", NETGUARD_PRIVATE},
        {"fe80::1", NETGUARD_OK},         {"fe9f:ffff::1", NETGUARD_OK},
        {"fea0::1", NETGUARD_LINK_LOCAL}, {"::1", NETGUARD_OK},
    };
    CHECK_ALL(g, e);
    netguard_free(g);
}

static void test_zero_prefix_allows_a_family_but_never_embedded(void **state)
{
    (void)state;
    struct netguard *g = NULL;
    char err[128];
    assert_int_equal(netguard_new("0.0.0.0/0,::/0", &g, err, sizeof err), 0);
    static const struct expect e[] = {
        {"127.0.0.1", NETGUARD_OK},
        {"169.254.169.254", NETGUARD_OK},
        {"::1", NETGUARD_OK},
        {"fd12::1", NETGUARD_OK},
        {"::ffff:127.0.0.1", NETGUARD_EMBEDDED_V4},
        {"::ffff:8.8.8.8", NETGUARD_EMBEDDED_V4},
        {"64:ff9b::7f00:1", NETGUARD_EMBEDDED_V4},
        {"2002:7f00:1::", NETGUARD_EMBEDDED_V4},
        {"2001::1", NETGUARD_EMBEDDED_V4},
    };
    CHECK_ALL(g, e);
    netguard_free(g);
}

static void test_bad_allow_lists_refused_with_the_item_named(void **state)
{
    (void)state;
    static const char *bad[] = {
        "10.0.0.0/33", "x",           "10.0.0.0/8,,",  "10.0.0.0/8,",
        ",10.0.0.0/8", "::/129",      "10.0.0.0/",     "10.0.0.0/-1",
        "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0/8",      "1.2.3.4.5",
        " ",           "fe80::1%lo",  "10.0.0.0/0008", "127.0.0.1 127.0.0.2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct netguard *g = (struct netguard *)&g; /* must be reset to NULL */
        char err[128] = "";
        if (netguard_new(bad[i], &g, err, sizeof err) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_null(g);
        assert_true(err[0] != '\0');
    }
    struct netguard *g = NULL;
    char err[128] = "";
    assert_int_equal(netguard_new("10.0.0.0/8, nope", &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "nope"));
}

static void test_other_families_and_short_lengths_refused(void **state)
{
    (void)state;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr);
    assert_int_equal(netguard_check(NULL, (struct sockaddr *)&sin, sizeof sin), NETGUARD_OK);
    assert_int_equal(netguard_check(NULL, (struct sockaddr *)&sin, 4), NETGUARD_FAMILY);
    sin.sin_family = AF_UNIX;
    assert_int_equal(netguard_check(NULL, (struct sockaddr *)&sin, sizeof sin), NETGUARD_FAMILY);
    assert_int_equal(netguard_check(NULL, NULL, 0), NETGUARD_FAMILY);
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2606:4700::1111", &sin6.sin6_addr);
    assert_int_equal(netguard_check(NULL, (struct sockaddr *)&sin6, sizeof sin6), NETGUARD_OK);
    assert_int_equal(netguard_check(NULL, (struct sockaddr *)&sin6, sizeof sin), NETGUARD_FAMILY);
}

static void test_verdict_names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(netguard_verdict_str(NETGUARD_OK), "ok");
    assert_string_equal(netguard_verdict_str(NETGUARD_LOOPBACK), "loopback");
    assert_string_equal(netguard_verdict_str(NETGUARD_PRIVATE), "private");
    assert_string_equal(netguard_verdict_str(NETGUARD_LINK_LOCAL), "link-local");
    assert_string_equal(netguard_verdict_str(NETGUARD_MULTICAST), "multicast");
    assert_string_equal(netguard_verdict_str(NETGUARD_UNSPECIFIED), "unspecified");
    assert_string_equal(netguard_verdict_str(NETGUARD_RESERVED), "reserved");
    assert_string_equal(netguard_verdict_str(NETGUARD_EMBEDDED_V4), "embedded-ipv4");
    assert_string_equal(netguard_verdict_str(NETGUARD_FAMILY), "family");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_refused_ranges_at_their_edges),
        cmocka_unit_test(test_ipv6_refused_ranges_at_their_edges),
        cmocka_unit_test(test_public_addresses_allowed),
        cmocka_unit_test(test_empty_allow_list_allows_nothing_private),
        cmocka_unit_test(test_loopback_allow_covers_ipv4_only_and_never_mapped),
        cmocka_unit_test(test_allow_list_of_several_ranges_with_spaces),
        cmocka_unit_test(test_odd_prefixes_and_host_bits),
        cmocka_unit_test(test_zero_prefix_allows_a_family_but_never_embedded),
        cmocka_unit_test(test_bad_allow_lists_refused_with_the_item_named),
        cmocka_unit_test(test_other_families_and_short_lengths_refused),
        cmocka_unit_test(test_verdict_names_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
