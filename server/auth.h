/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Access control, as Redis has it for its default user: a password
 * (--requirepass), what a client may do before it has given it, and
 * protected mode (no password: serve loopback peers only).
 *
 * Before AUTH a client may run only AUTH, HELLO and QUIT (the dispatcher
 * answers anything else with NOAUTH), and its parser is held to Redis's
 * small request limits, so that an unauthenticated peer cannot make the
 * server buffer big declared requests (CVE-2021-32675).
 *
 * The functions on a connection run on its worker's thread; the others are
 * pure and run on any thread. Nothing here calls outside libc, so a test
 * can compile this file on its own.
 */
#ifndef KVS_SERVER_AUTH_H
#define KVS_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "kvs/slice.h"

struct conn;
struct server_config;

/* Redis's limits on a request from a client that must authenticate. */
#define AUTH_UNAUTH_MAX_ARGS 10
#define AUTH_UNAUTH_MAX_BULK 16384

/* The reply sent to a peer refused by protected mode, "-DENIED ...\r\n". */
extern const char auth_denied_reply[];
extern const size_t auth_denied_reply_len;

/* Whether clients must authenticate: a non-empty password is set. */
bool auth_required(const struct server_config *cfg);

/* Whether attempt is the password, in time that depends on the attempt's
   length only, never on where it differs from the password. False when no
   password is set. */
bool auth_password_matches(const struct server_config *cfg, kvs_slice attempt);

/* Replace the password with len bytes of pass (0: no password), as
   CONFIG SET requirepass does; any thread. Returns 0, or -1 out of
   memory (the password unchanged). */
int auth_set_password(struct server_config *cfg, const char *pass, size_t len);

/* The password's length; its bytes are copied to out when they fit in
   size. Any thread. */
size_t auth_password_copy(const struct server_config *cfg, char *out, size_t size);

/* Whether sa is a loopback peer: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. */
bool auth_peer_is_loopback(const struct sockaddr *sa);

/* Protected mode's decision for a new connection from peer: refuse it when
   protected mode is on, no password is set and the peer is not loopback. */
bool auth_protected_refuses(bool protected_mode, bool has_password, const struct sockaddr *peer);

/* A new connection: hold it to the unauthenticated limits when a password
   is required. Called by conn_open() once the parser is ready. */
void auth_conn_init(struct conn *c);

/* The socket fd gave the password before a worker took it (while the
   store was opening): its connection starts authenticated. Any thread. */
void auth_preauthorize(int fd);

/* The connection gave the password: lift the limits, allow every command. */
void auth_conn_grant(struct conn *c);

/* Whether the connection may run commands other than AUTH, HELLO, QUIT. */
bool auth_conn_allowed(const struct conn *c);

#endif
