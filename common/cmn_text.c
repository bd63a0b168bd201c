/* cmn_text: small text helpers (see cmn_text.h). */
#include "cmn_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint64_t cmn_hash(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

size_t cmn_rtrim(char *s, const char *set)
{
    size_t n = strlen(s);
    while (n > 0 && strchr(set, s[n - 1]) != NULL)
        s[--n] = '\0';
    return n;
}

void cmn_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
