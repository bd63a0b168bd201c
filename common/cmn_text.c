/* cmn_text: small text helpers (see cmn_text.h). */
#include "cmn_text.h"

#include <string.h>

size_t cmn_rtrim(char *s, const char *set)
{
    size_t n = strlen(s);
    while (n > 0 && strchr(set, s[n - 1]) != NULL)
        s[--n] = '\0';
    return n;
}
