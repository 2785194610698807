/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inline commands: a line of words, as typed into telnet ("SET k v\r\n").
 *
 * Redis splits such a line with sdssplitargs(), and so does this file, rule
 * for rule: blanks separate words; a word may open a "double-quoted" part
 * that understands \xHH, \n, \r, \t, \b, \a and \<any>, or a 'single-quoted'
 * part where only \' is special; a closing quote must be followed by a blank
 * or the end of the line, otherwise the quotes are unbalanced. The line is a
 * C string to Redis, so a NUL ends it.
 *
 * Words without quotes are slices of the caller's buffer. Words with quotes
 * are unescaped into the parser's scratch buffer, after the words of
 * earlier lines that the caller has not released yet (resp.h). Room is
 * reserved once per line, at its first quoted word, for the rest of the
 * line (unescaping never lengthens). The buffer is only reallocated while
 * it holds no word; a line that does not fit beside held words is
 * RESP_FULL, parsed again once they are released.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvs/error.h"
#include "request.h"
#include "resp.h"

/* The scratch buffer's first size: the quoted words of many short lines
   fit side by side between two releases. */
#define SCRATCH_MIN 1024

enum split_result { SPLIT_OK, SPLIT_QUOTES, SPLIT_TOO_MANY, SPLIT_NOMEM, SPLIT_FULL };

/* isspace() in the C locale, which sdssplitargs() skips between words. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The bytes that end an unquoted word (sdssplitargs() does not end one at
   \v or \f, although it skips them between words). */
static bool ends_word(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte a backslash escape inside double quotes stands for. */
static char unescape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/*
 * Copy the quoted part starting at line[*i] (the opening quote) to out +
 * *olen, unescaping. On success *i is past the closing quote.
 * Returns false for an unterminated quote or a closing quote followed by
 * something other than a blank.
 */
static bool unquote(const char *line, size_t n, size_t *i, char *out, size_t *olen)
{
    char quote = line[*i];
    size_t k = *i + 1;
    size_t o = *olen;
    for (;;) {
        if (k == n)
            return false;
        char c = line[k];
        if (quote == '"' && c == '\\' && k + 3 < n && line[k + 1] == 'x' &&
            hex_value(line[k + 2]) >= 0 && hex_value(line[k + 3]) >= 0) {
            out[o++] = (char)(hex_value(line[k + 2]) * 16 + hex_value(line[k + 3]));
            k += 4;
        } else if (quote == '"' && c == '\\' && k + 1 < n) {
            out[o++] = unescape(line[k + 1]);
            k += 2;
        } else if (quote == '\'' && c == '\\' && k + 1 < n && line[k + 1] == '\'') {
            out[o++] = '\'';
            k += 2;
        } else if (c == quote) {
            if (k + 1 < n && !is_blank(line[k + 1]))
                return false;
            *i = k + 1;
            *olen = o;
            return true;
        } else {
            out[o++] = c;
            k++;
        }
    }
}

static int add_arg(resp_parser *p, const char *data, size_t len)
{
    if (p->argc >= p->limits.max_args)
        return SPLIT_TOO_MANY;
    if (resp__reserve_arg(p) != 0)
        return SPLIT_NOMEM;
    p->argv[p->argc].data = data;
    p->argv[p->argc].len = len;
    p->argc++;
    return SPLIT_OK;
}

/* Room for need more bytes after the words the scratch holds. The buffer
   is replaced (at least doubling) only while it holds none: a word handed
   out never moves. */
static int reserve_scratch(resp_parser *p, size_t need)
{
    if (need <= p->scratch_cap - p->scratch_used)
        return SPLIT_OK;
    if (p->scratch_used > 0)
        return SPLIT_FULL;
    size_t cap = p->scratch_cap > SIZE_MAX / 2 ? SIZE_MAX : p->scratch_cap * 2;
    if (cap < SCRATCH_MIN)
        cap = SCRATCH_MIN;
    if (cap < need)
        cap = need;
    free(p->scratch); /* nothing in it is held: no copy */
    p->scratch = malloc(cap);
    p->scratch_cap = p->scratch ? cap : 0;
    return p->scratch ? SPLIT_OK : SPLIT_NOMEM;
}

/* Split a line into p->argv. Quoted words go to the scratch buffer after
   the held ones; they become held (scratch_used) only if the whole line
   splits. */
static int split(resp_parser *p, const char *line, size_t n)
{
    size_t i = 0;
    size_t used = p->scratch_used; /* end of the words held and this line's */
    bool reserved = false;
    p->argc = 0;
    for (;;) {
        while (i < n && is_blank(line[i]))
            i++;
        if (i == n) {
            p->scratch_used = used;
            return SPLIT_OK;
        }
        size_t start = i;
        while (i < n && !ends_word(line[i]) && line[i] != '"' && line[i] != '\'')
            i++;
        const char *word = line + start;
        size_t len = i - start;
        if (i < n && (line[i] == '"' || line[i] == '\'')) {
            /* The first quoted word reserves room for the rest of the
               line, before this line's words are in the scratch. */
            if (!reserved) {
                int rc = reserve_scratch(p, n - start);
                if (rc != SPLIT_OK)
                    return rc;
                reserved = true;
            }
            char *out = p->scratch + used;
            memcpy(out, word, len);
            if (!unquote(line, n, &i, out, &len))
                return SPLIT_QUOTES;
            word = out;
            used += len;
        }
        int rc = add_arg(p, word, len);
        if (rc != SPLIT_OK)
            return rc;
    }
}

int resp__parse_inline(resp_parser *p, const char *buf, size_t len, size_t *consumed)
{
    /* The '\n' may sit at most max_inline bytes into the line: Redis
       refuses a line once more than that is buffered without one. */
    size_t max = p->limits.max_inline;
    bool all_here = len > max;
    size_t end = all_here ? max + 1 : len;
    if (p->scan > end)
        p->scan = end;
    const char *nl = memchr(buf + p->scan, '\n', end - p->scan);
    if (!nl) {
        if (all_here)
            return resp__fail(p, RESP__ERR_INLINE_BIG);
        p->scan = len;
        return RESP_MORE;
    }
    size_t line_len = (size_t)(nl - buf);
    if (line_len > 0 && buf[line_len - 1] == '\r')
        line_len--;
    const char *nul = memchr(buf, '\0', line_len);
    if (nul)
        line_len = (size_t)(nul - buf);

    switch (split(p, buf, line_len)) {
    case SPLIT_OK:
        break;
    case SPLIT_QUOTES:
        return resp__fail(p, RESP__ERR_QUOTES);
    case SPLIT_FULL:
        /* Parsed again, from the start of the line, once released. */
        p->argc = 0;
        p->scan = (size_t)(nl - buf);
        return RESP_FULL;
    case SPLIT_TOO_MANY:
        /* Redis has no argument limit for inline commands (its line limit
           bounds them); a configured one answers as for a multibulk. */
        return resp__fail(p, RESP__ERR_MBULK_LEN);
    default:
        return resp__fail(p, RESP__ERR_NOMEM);
    }
    *consumed = (size_t)(nl - buf) + 1;
    p->inline_cmd = true;
    p->pos = 0;
    p->scan = 0;
    return RESP_DONE;
}
