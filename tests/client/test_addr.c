/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs_addr_parse() and kvs_addr_format(): the address forms the server and
 * the client accept, and everything they must refuse.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "kvs/addr.h"
#include "kvs/error.h"

static void round_trip(const char *text, int family, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    cr_assert_eq(kvs_addr_parse(text, &ss, &len), 0, "parse %s", text);
    cr_assert_eq(ss.ss_family, family, "%s", text);
    if (family == AF_INET) {
        cr_assert_eq(len, sizeof(struct sockaddr_in));
        cr_assert_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), port);
    } else {
        cr_assert_eq(len, sizeof(struct sockaddr_in6));
        cr_assert_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), port);
    }
    char out[KVS_ADDR_STRLEN];
    cr_assert_eq(kvs_addr_format((struct sockaddr *)&ss, len, out, sizeof(out)), 0);
    cr_assert_str_eq(out, text);
}

Test(addr, valid_addresses)
{
    round_trip("127.0.0.1:4000", AF_INET, 4000);
    round_trip("0.0.0.0:0", AF_INET, 0);
    round_trip("10.1.2.3:65535", AF_INET, 65535);
    round_trip("[::1]:4000", AF_INET6, 4000);
    round_trip("[::]:1", AF_INET6, 1);
    round_trip("[fe80::1:2]:80", AF_INET6, 80);
    round_trip(KVS_ADDR_DEFAULT, AF_INET, 4000);
}

Test(addr, longest_ipv6_fits)
{
    /* 45 characters, the longest IPv6 text there is. */
    struct sockaddr_storage ss;
    socklen_t len;
    cr_assert_eq(kvs_addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", &ss, &len),
                 0);
    char out[KVS_ADDR_STRLEN];
    cr_assert_eq(kvs_addr_format((struct sockaddr *)&ss, len, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    round_trip("[::ffff:255.255.255.255]:65535", AF_INET6, 65535);
}

Test(addr, invalid_addresses)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        ":4000",
        "127.0.0.1:65536",
        "127.0.0.1:99999999999",
        "127.0.0.1:-1",
        "127.0.0.1:+80",
        "127.0.0.1: 80",
        "127.0.0.1:80 ",
        "127.0.0.1:4x",
        "localhost:4000",
        "256.0.0.1:4000",
        "1.2.3:4000",
        "::1:4000",
        "[::1]",
        "[::1]4000",
        "[::1:4000",
        "[]:4000",
        "[127.0.0.1]:4000",
        "[::1]:",
        "[::1%lo]:4000",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0x5a, sizeof(ss));
        socklen_t len = 77;
        cr_assert_eq(kvs_addr_parse(bad[i], &ss, &len), KVS_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_eq(len, 77, "'%s' wrote len", bad[i]);
    }
}

Test(addr, format_refuses_what_it_cannot_write)
{
    struct sockaddr_storage ss;
    socklen_t len;
    cr_assert_eq(kvs_addr_parse("[::1]:4000", &ss, &len), 0);
    char small[8];
    cr_assert_eq(kvs_addr_format((struct sockaddr *)&ss, len, small, sizeof(small)), KVS_EINVAL);
    char out[KVS_ADDR_STRLEN];
    cr_assert_eq(
        kvs_addr_format((struct sockaddr *)&ss, sizeof(struct sockaddr_in), out, sizeof(out)),
        KVS_EINVAL);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    cr_assert_eq(kvs_addr_format(&sa, sizeof(sa), out, sizeof(out)), KVS_EINVAL);
}
