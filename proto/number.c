/* SPDX-License-Identifier: BSD-3-Clause */
/* Decimal numbers on the wire; see number.h. */
#include "number.h"

#include <limits.h>
#include <string.h>

bool resp__parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > RESP__LL_MAX_DIGITS)
        return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    bool negative = s[0] == '-';
    size_t i = negative ? 1 : 0;
    /* A first digit of 0 would be a leading zero ("-0" included). */
    if (i == n || s[i] < '1' || s[i] > '9')
        return false;
    /* Accumulate as unsigned so that LLONG_MIN's magnitude fits. */
    unsigned long long limit = negative ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* v >= 1 here when negative, and v - 1 fits in a long long. */
    *out = negative ? -(long long)(v - 1) - 1 : (long long)v;
    return true;
}

size_t resp__fmt_u64(char *dst, uint64_t v)
{
    char tmp[RESP__LL_MAX_DIGITS];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(dst, tmp + sizeof(tmp) - n, n);
    return n;
}

size_t resp__fmt_ll(char *dst, long long v)
{
    if (v >= 0)
        return resp__fmt_u64(dst, (uint64_t)v);
    dst[0] = '-';
    /* 0 - (unsigned)v is the magnitude, also for LLONG_MIN. */
    return 1 + resp__fmt_u64(dst + 1, 0 - (uint64_t)v);
}
