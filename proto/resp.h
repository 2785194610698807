/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RESP2, the Redis protocol: the codec shared by kvs-server and the client.
 *
 * No I/O here. The request parser reads a connection's input buffer and
 * yields one command at a time as argument slices pointing into that
 * buffer, or, for the quoted words of an inline command, into the parser's
 * scratch buffer; it allocates nothing per argument (one argv array per
 * parser, grown only as arguments actually arrive) and never by a length a
 * peer declared. The encoders append to a caller-owned kvs_buf. The reply
 * parser is the client's half: it reads one reply element at a time.
 *
 * Who owns the arguments of a parsed command, and until when:
 *  1. argv itself (the array of slices) is the parser's and is rewritten
 *     by the next resp_parse(): copy the slices (not the bytes) to keep
 *     them.
 *  2. A slice into the caller's buffer stays valid while the caller leaves
 *     those bytes where they are: it may queue a command and parse further
 *     commands, as long as it neither drops nor moves the bytes of the
 *     queued one.
 *  3. A slice into the scratch buffer (a quoted inline word) stays valid,
 *     also across later resp_parse() calls, until the caller calls
 *     resp_parser_release() or resp_parser_free(). The parser never moves
 *     or overwrites words it holds: when a later line's words do not fit
 *     beside them, resp_parse() returns RESP_FULL and parses that line
 *     once the caller has released them.
 * So a caller that runs each command before parsing the next one calls
 * resp_parser_release() before each resp_parse(); one that queues
 * commands calls it once no queued command is left.
 *
 * Thread safety: a parser belongs to one connection and one thread at a time.
 */
#ifndef KVS_PROTO_RESP_H
#define KVS_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/slice.h"

/* Limits a parser enforces, with Redis's defaults. */
#define RESP_DEFAULT_MAX_BULK (512u << 20)    /* proto-max-bulk-len */
#define RESP_DEFAULT_MAX_ARGS (1024u * 1024u) /* arguments per command */
#define RESP_DEFAULT_MAX_INLINE (64u << 10)   /* inline line and count lines */

typedef struct resp_limits {
    size_t max_bulk;
    size_t max_args;
    size_t max_inline;
    /* Error texts for a multibulk count over max_args and a bulk length
       over max_bulk that the defaults would allow: a caller that lowers the
       limits for some clients (Redis's "unauthenticated multibulk length")
       names why. NULL: the invalid-length errors. Static storage. */
    const char *args_error;
    const char *bulk_error;
} resp_limits;

enum resp_status {
    RESP_DONE = 0,   /* a complete command is in argc/argv */
    RESP_MORE = 1,   /* the buffer holds only part of a command */
    RESP_FULL = 2,   /* the scratch holds earlier words: release them, parse again */
    RESP_ERROR = -1, /* protocol error: reply with error, then close */
};

typedef struct resp_parser {
    resp_limits limits;
    /* Output of a RESP_DONE parse: slices into the buffer passed in or
       into the scratch buffer, valid as the rules above say. argc may be 0
       for an empty inline line or "*0"/"*-1", which Redis ignores. */
    size_t argc;
    kvs_slice *argv;
    /* On RESP_ERROR, Redis's text without the leading '-', e.g.
       "ERR Protocol error: invalid bulk length". Static storage. */
    const char *error;
    /* True when the last RESP_DONE came from an inline command. */
    bool inline_cmd;

    /* Private: progress through a partly received command, as offsets from
       the start of the buffer so that the caller may move the buffer. */
    size_t argv_cap;
    size_t *arg_off; /* offsets of arguments parsed so far */
    size_t *arg_len;
    size_t pos;        /* bytes of the current command examined so far */
    long long pending; /* arguments still to read in a multibulk, -1: none */
    long long bulk;    /* length of the bulk being read, -1: none */
    size_t scan;       /* offset up to which the current line was searched for its end */
    char *scratch;     /* inline arguments unescaped from quotes; reused, grown */
    size_t scratch_cap;
    size_t scratch_used; /* bytes of scratch holding words not yet released */
} resp_parser;

/* Prepare a parser; limits NULL for the defaults (a field of 0 also takes
   its default). Returns 0 or KVS_ENOMEM. */
int resp_parser_init(resp_parser *p, const resp_limits *limits);
/* Release a parser's memory; accepts NULL. Every argument it returned is
   invalid afterwards. */
void resp_parser_free(resp_parser *p);

/* The caller is done with every command parsed so far: the scratch words
   of all of them become invalid, and their room is reused. Keeps the
   memory and any partly parsed command. */
void resp_parser_release(resp_parser *p);

/*
 * resp_parse - parse one command from buf[0..len).
 * The buffer must start where the previous RESP_DONE's command ended (the
 * caller drops the consumed bytes or advances its pointer by *consumed).
 * Call again with the same bytes plus more after RESP_MORE; the parser
 * resumes where it stopped rather than rescanning.
 * Returns RESP_DONE with argc/argv set and *consumed = bytes of this
 * command; RESP_MORE with *consumed = 0; RESP_FULL with *consumed = 0
 * when an inline line's quoted words do not fit beside the scratch words
 * still held (never right after resp_parser_release()): call again with
 * the same bytes once they are released; or RESP_ERROR with p->error set.
 * The words a RESP_FULL or RESP_ERROR parse had begun are dropped.
 * *need, if not NULL, receives on RESP_MORE the number of bytes the parser
 * knows it needs in total (a declared bulk, capped by max_bulk), so the
 * caller can size a read; it is only a hint and never over max_bulk + 2.
 * Precisely: the length buf must reach for the bulk being read to be
 * complete (the bytes of the command before that bulk, plus the bulk and
 * its "\r\n", which are at most max_bulk + 2), or 0 when unknown (a line).
 */
int resp_parse(resp_parser *p, const char *buf, size_t len, size_t *consumed, size_t *need);

/* Reply encoders: each appends to out and returns 0 or KVS_ENOMEM. */
int resp_add_simple(kvs_buf *out, const char *text); /* +text\r\n */
int resp_add_error(kvs_buf *out, const char *text);  /* -text\r\n */
int resp_add_errorf(kvs_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int resp_add_int(kvs_buf *out, long long value);               /* :value\r\n */
int resp_add_bulk(kvs_buf *out, const void *data, size_t len); /* $len\r\n...\r\n */
int resp_add_nil(kvs_buf *out);                                /* $-1\r\n */
int resp_add_array(kvs_buf *out, size_t count);                /* *count\r\n */
int resp_add_nil_array(kvs_buf *out);                          /* *-1\r\n */

/* Request encoder for clients: a command as an array of bulk strings. */
int resp_add_command(kvs_buf *out, size_t argc, const kvs_slice *argv);

/* One element of a reply, as the client reads it. */
enum resp_type {
    RESP_SIMPLE,  /* +text: str */
    RESP_ERR,     /* -text: str */
    RESP_INTEGER, /* :n: integer */
    RESP_BULK,    /* $n: str */
    RESP_NIL,     /* $-1 or *-1 */
    RESP_ARRAY,   /* *n: integer = n; the n elements follow as further elements */
};

typedef struct resp_reply {
    enum resp_type type;
    long long integer;
    kvs_slice str; /* into the buffer passed to resp_parse_reply() */
} resp_reply;

/*
 * resp_parse_reply - parse one reply element from buf[0..len).
 * Returns RESP_DONE with *r and *consumed set, RESP_MORE, or RESP_ERROR
 * for bytes that are not RESP (or a bulk over max_bulk).
 */
int resp_parse_reply(const char *buf, size_t len, size_t max_bulk, resp_reply *r, size_t *consumed);

#endif
