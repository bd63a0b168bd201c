/* gw_apiin: the admin API's input forms (see gw_apiin.h). */
#include "gw_apiin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n digits at s; advances s. */
static int gw_apiin_digits(const char **s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)*(*s)++))
            return 0;
    return 1;
}

/* ":SS[.frac]" after HH:MM, when there. */
static int gw_apiin_seconds(const char **s)
{
    if (**s != ':')
        return 1;
    (*s)++;
    if (!gw_apiin_digits(s, 2))
        return 0;
    if (**s != '.')
        return 1;
    (*s)++;
    if (!isdigit((unsigned char)**s))
        return 0;
    while (isdigit((unsigned char)**s))
        (*s)++;
    return 1;
}

int gw_apiin_time_ok(const char *s)
{
    int y, mo, d, h, mi, n = 0;
    if (strlen(s) > 35 || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1970)
        return 0;
    s += 10;
    if (*s == '\0')
        return 1;
    if (*s != 'T' && *s != ' ' && *s != 't')
        return 0;
    s++;
    n = 0;
    if (sscanf(s, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5 || h > 23 || mi > 59)
        return 0;
    s += 5;
    if (!gw_apiin_seconds(&s))
        return 0;
    if (*s == '\0' || ((*s == 'Z' || *s == 'z') && s[1] == '\0'))
        return 1;
    if (*s != '+' && *s != '-')
        return 0;
    s++;
    if (!gw_apiin_digits(&s, 2))
        return 0;
    if (*s == ':')
        s++;
    if (*s == '\0')
        return 1;
    return gw_apiin_digits(&s, 2) && *s == '\0';
}

long gw_apiin_duration(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || n <= 0 || n > 3650L * 86400)
        return -1;
    long mul = *end == '\0' || strcmp(end, "s") == 0 ? 1 : strcmp(end, "m") == 0 ? 60 :
               strcmp(end, "h") == 0 ? 3600 : strcmp(end, "d") == 0 ? 86400 : -1;
    if (mul < 0 || n > 3650L * 86400 / mul)
        return -1;
    return n * mul;
}

int gw_apiin_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int gw_apiin_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

int gw_apiin_mac_part(const char *s, char *out)
{
    size_t o = 0;
    for (; *s; s++) {
        if (*s == ':' || *s == '-' || *s == '.')
            continue;
        if (!isxdigit((unsigned char)*s) || o == 12)
            return -1;
        out[o++] = (char)tolower((unsigned char)*s);
    }
    out[o] = '\0';
    return o >= 2 ? 0 : -1;
}

int gw_apiin_like(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *in; in++) {
        if (o + 3 >= outlen) {
            out[0] = '\0';
            return -1;
        }
        if (*in == '%' || *in == '_' || *in == '\\')
            out[o++] = '\\';
        out[o++] = *in;
    }
    out[o] = '\0';
    return 0;
}
