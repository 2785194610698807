/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Socket addresses as kvs writes them on command lines: "IP:PORT" for IPv4
 * and "[IPv6]:PORT" for IPv6 (no scope ids), and "HOST:PORT" with a host
 * name, resolved. Shared by kvs-server (--addr to listen on) and the
 * client (--addr to connect to), so that both accept and print exactly the
 * same forms.
 *
 * Thread safety: every function here is reentrant.
 */
#ifndef KVS_ADDR_H
#define KVS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where the server listens and the client connects unless told otherwise. */
#define KVS_ADDR_DEFAULT "127.0.0.1:4000"

/* Bytes enough for any address kvs_addr_format() writes, with its NUL:
   "[" + 45 characters of IPv6 text + "]:" + 5 digits + NUL. */
#define KVS_ADDR_STRLEN 56

/*
 * kvs_addr_parse - parse "IP:PORT" or "[IPv6]:PORT".
 * @text: the address; the port is 0..65535 in decimal, digits only.
 * @ss:   receives a sockaddr_in or sockaddr_in6 on success.
 * @len:  receives the length of that address on success.
 * Returns 0, or KVS_EINVAL (ss and len untouched) for anything else,
 * including a missing port, a host name and an IPv6 address without [].
 */
int kvs_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/*
 * kvs_addr_resolve - what kvs_addr_parse() takes, or "HOST:PORT" with a
 * host name, resolved (getaddrinfo: /etc/hosts, then DNS; this may block).
 * @ss, @len: arrays of max entries receiving the addresses, in the order
 *            the resolver gives them (connect to each in turn).
 * @n:        receives how many were written (at least 1 on success).
 * @why:      NULL, or size bytes for a one-line reason on failure.
 * Returns 0, KVS_EINVAL (not one of the forms), or KVS_ENOTFOUND (the
 * name does not resolve).
 */
int kvs_addr_resolve(const char *text, struct sockaddr_storage *ss, socklen_t *len, size_t max,
                     size_t *n, char *why, size_t size);

/*
 * kvs_addr_format - write an AF_INET/AF_INET6 address as kvs_addr_parse()
 * reads it ("127.0.0.1:4000", "[::1]:4000") into out (size bytes, at least
 * KVS_ADDR_STRLEN for any address).
 * Returns 0, or KVS_EINVAL for another family, a short len or a short out.
 */
int kvs_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
