/* SPDX-License-Identifier: BSD-3-Clause */
/* "IP:PORT", "[IPv6]:PORT" and "HOST:PORT" addresses; see include/kvs/addr.h. */
#include "kvs/addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kvs/error.h"

/* Decimal 0..65535, digits only: strtoul would take signs and spaces. */
static int parse_port(const char *text, unsigned *port)
{
    unsigned value = 0;
    size_t n = 0;
    for (; text[n]; n++) {
        if (text[n] < '0' || text[n] > '9' || n >= 5)
            return KVS_EINVAL;
        value = value * 10 + (unsigned)(text[n] - '0');
    }
    if (n == 0 || value > 65535)
        return KVS_EINVAL;
    *port = value;
    return 0;
}

int kvs_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    /* The longest IPv6 text inet_pton reads is 45 characters. */
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    const char *host_start = text;
    size_t host_len;
    bool v6 = text[0] == '[';

    if (v6) {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return KVS_EINVAL;
        host_start = text + 1;
        host_len = (size_t)(close - host_start);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return KVS_EINVAL;
        host_len = (size_t)(colon - text);
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return KVS_EINVAL;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';

    unsigned port;
    if (parse_port(colon + 1, &port) != 0)
        return KVS_EINVAL;

    struct sockaddr_storage out;
    memset(&out, 0, sizeof(out));
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return KVS_EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&out;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return KVS_EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
    }
    *ss = out;
    return 0;
}

int kvs_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    int n;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        if (!inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host)))
            return KVS_EINVAL;
        port = ntohs(a4->sin_port);
        n = snprintf(out, size, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        if (!inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host)))
            return KVS_EINVAL;
        port = ntohs(a6->sin6_port);
        n = snprintf(out, size, "[%s]:%u", host, port);
    } else {
        return KVS_EINVAL;
    }
    return n >= 0 && (size_t)n < size ? 0 : KVS_EINVAL;
}

int kvs_addr_resolve(const char *text, struct sockaddr_storage *ss, socklen_t *len, size_t max,
                     size_t *n, char *why, size_t size)
{
    *n = 0;
    if (max == 0)
        return KVS_EINVAL;
    if (kvs_addr_parse(text, &ss[0], &len[0]) == 0) {
        *n = 1;
        return 0;
    }
    /* HOST:PORT: a name (an IPv6 literal needs its brackets). */
    const char *colon = strrchr(text, ':');
    unsigned port;
    char host[256];
    size_t host_len = colon ? (size_t)(colon - text) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof(host) || text[0] == '[' ||
        memchr(text, ':', host_len) || parse_port(colon + 1, &port) != 0) {
        if (why)
            snprintf(why, size, "expected IP:PORT, [IPv6]:PORT or HOST:PORT");
        return KVS_EINVAL;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        if (why)
            snprintf(why, size, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return KVS_ENOTFOUND;
    }
    for (const struct addrinfo *ai = res; ai && *n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(ss[0]))
            continue;
        memset(&ss[*n], 0, sizeof(ss[0]));
        memcpy(&ss[*n], ai->ai_addr, ai->ai_addrlen);
        len[*n] = ai->ai_addrlen;
        (*n)++;
    }
    freeaddrinfo(res);
    if (*n == 0) {
        if (why)
            snprintf(why, size, "cannot resolve '%s': no IPv4 or IPv6 address", host);
        return KVS_ENOTFOUND;
    }
    return 0;
}
