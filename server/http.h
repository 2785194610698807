/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The HTTP/JSON interface (--http-addr; docs/http.md): the same store
 * over HTTP, the URL path being the key.
 *
 * libmicrohttpd parses HTTP (benches/http-libs measured it faster than
 * libevent's evhttp on this machine, and it takes any method name, such
 * as DEL, and answers 414 and 431 itself). Each worker runs one MHD daemon
 * without a listening socket, driven from the worker's own event loop
 * (MHD_run() when MHD's epoll descriptor is ready): the main thread's HTTP
 * listener (listener.h) accepts, counts the connection against
 * --maxclients and hands it to a worker like a RESP connection, and the
 * worker adds it to its daemon. So requests run on the worker thread, and
 * their writes go into the worker's batch of the turn with the RESP
 * writes (worker.h): one store_write_batch(), one fsync under --fsync
 * always. A request whose writes are queued is suspended until the batch
 * has been applied, then answered.
 *
 * Everything here runs on the worker's thread.
 */
#ifndef KVS_SERVER_HTTP_H
#define KVS_SERVER_HTTP_H

struct worker;
struct http_worker;

/* Set up w's HTTP daemon and its events on w->base, into *hwp. Returns 0,
   or -1 (nothing to release but through http_worker_destroy(*hwp)). */
int http_worker_init(struct http_worker **hwp, struct worker *w);

/* Take over an accepted HTTP connection (counted in srv->clients, which
   its close gives back). On failure the socket is closed. */
void http_conn_open(struct http_worker *hw, int fd);

/* A stop: answer the requests already received (their queued writes
   applied), then close every HTTP connection. */
void http_worker_stop(struct http_worker *hw);

/* Free everything; accepts NULL. */
void http_worker_destroy(struct http_worker *hw);

#endif
