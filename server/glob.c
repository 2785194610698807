/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Redis's glob matching; see glob.h for the syntax and its quirks.
 *
 * The walk keeps Redis's shape on purpose, so that every corner case
 * comes out the same: one loop over pattern and string together, a
 * recursion per `*`, and the pattern read one byte past its end as a NUL
 * (Redis's patterns are NUL-terminated sds strings, and several branches
 * look at that terminator). pat() gives that byte.
 */
#include "glob.h"

#include <stddef.h>

/* Redis gives up on patterns whose `*` nest deeper than this. */
#define MAX_NESTING 1000

struct glob {
    const unsigned char *p; /* the pattern */
    size_t plen;
    const unsigned char *s; /* the string */
    size_t slen;
    bool nocase;
    /* The rest of the pattern after some `*` failed at every later
       position: no enclosing `*` can do better by taking more bytes, since
       that would only start the same rest later still. */
    bool give_up;
};

/* The pattern byte at i, or the NUL after its end; as Redis's (signed)
   char, since ranges compare that way. */
static int pat(const struct glob *g, size_t i)
{
    return i < g->plen ? (signed char)g->p[i] : 0;
}

static int str(const struct glob *g, size_t i)
{
    return (signed char)g->s[i];
}

/* ASCII lower case, as tolower() in the C locale Redis runs its matching in. */
static int fold(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

static bool same(const struct glob *g, int a, int b)
{
    return g->nocase ? fold(a) == fold(b) : a == b;
}

/* A bracket class starting after its '[' at *pi, against the string byte
   ch. Leaves *pi on the class's closing ']', or on its last byte when the
   pattern ends first. */
static bool class_matches(const struct glob *g, size_t *pi, int ch)
{
    size_t i = *pi;
    bool negate = pat(g, i) == '^';
    if (negate)
        i++;
    bool hit = false;
    for (;; i++) {
        size_t left = g->plen - i; /* i never passes plen */
        if (pat(g, i) == '\\' && left >= 2) {
            i++;
            hit |= pat(g, i) == ch;
        } else if (pat(g, i) == ']') {
            break;
        } else if (left == 0) {
            i--; /* unterminated: the class ends with the pattern */
            break;
        } else if (left >= 3 && pat(g, i + 1) == '-') {
            int lo = pat(g, i), hi = pat(g, i + 2), c = ch;
            if (lo > hi) {
                int t = lo;
                lo = hi;
                hi = t;
            }
            if (g->nocase) {
                lo = fold(lo);
                hi = fold(hi);
                c = fold(c);
            }
            i += 2;
            hit |= c >= lo && c <= hi;
        } else {
            hit |= same(g, pat(g, i), ch);
        }
    }
    *pi = i;
    return negate ? !hit : hit;
}

/* Whether the pattern from pi matches the string from si to its end;
   depth counts the `*` this call is nested in. */
static bool match_from(struct glob *g, size_t pi, size_t si, unsigned depth)
{
    if (depth > MAX_NESTING)
        return false;
    while (pi < g->plen && si < g->slen) {
        switch (pat(g, pi)) {
        case '*':
            while (pat(g, pi + 1) == '*')
                pi++;
            if (pi + 1 == g->plen)
                return true; /* a trailing `*` takes the rest */
            for (; si < g->slen; si++) {
                if (match_from(g, pi + 1, si, depth + 1))
                    return true;
                if (g->give_up)
                    return false;
            }
            g->give_up = true;
            return false;
        case '?':
            si++;
            break;
        case '[':
            pi++;
            if (!class_matches(g, &pi, str(g, si)))
                return false;
            si++;
            break;
        case '\\': /* the next byte is a literal (a trailing '\\' is one) */
            if (g->plen - pi >= 2)
                pi++;
            /* fall through */
        default:
            if (!same(g, pat(g, pi), str(g, si)))
                return false;
            si++;
            break;
        }
        pi++;
        if (si == g->slen) {
            /* Stars may match nothing at the end of the string. */
            while (pat(g, pi) == '*')
                pi++;
            break;
        }
    }
    return pi == g->plen && si == g->slen;
}

bool glob_match(kvs_slice pattern, kvs_slice string, bool nocase)
{
    struct glob g = {pattern.data, pattern.len, string.data, string.len, nocase, false};
    return match_from(&g, 0, 0, 0);
}

bool glob_is_all(kvs_slice pattern)
{
    return pattern.len == 1 && *(const char *)pattern.data == '*';
}
