/* gw_cvalue: the configuration file's value types (see gw_cvalue.h). */
#include "gw_cvalue.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn_key.h"
#include "gw_config.h"
#include "gw_log.h"

#define GW_CRED_VAR "$CREDENTIALS_DIRECTORY"

/* What is wrong with the value last parsed on this thread. */
static __thread char gw_cvalue_why[400];

static const char *gw_cvalue_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *gw_cvalue_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gw_cvalue_why, sizeof gw_cvalue_why, fmt, ap);
    va_end(ap);
    return gw_cvalue_why;
}

const char *gw_cvalue_int(const char *v, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0)
        return gw_cvalue_bad("'%s' is not a whole number", v);
    if (x < min || x > max)
        return gw_cvalue_bad("%ld is out of range (%ld to %ld)", x, min, max);
    *out = (int)x;
    return NULL;
}

const char *gw_cvalue_string(const char *v, char **out)
{
    if (v[0] == '\0')
        return "empty value";
    *out = strdup(v);
    return *out ? NULL : "out of memory";
}

/* "$CREDENTIALS_DIRECTORY" or "$CREDENTIALS_DIRECTORY/rest" names the
 * directory the service manager put the unit's credentials in (systemd
 * LoadCredential=); a relative path is taken from dir. */
const char *gw_cvalue_path(const char *dir, const char *v, char **out)
{
    const char *base = dir, *rest = v;
    size_t vl = sizeof GW_CRED_VAR - 1;

    *out = NULL;
    if (v[0] == '\0')
        return "empty value";
    if (strncmp(v, GW_CRED_VAR, vl) == 0 && (v[vl] == '\0' || v[vl] == '/')) {
        base = getenv("CREDENTIALS_DIRECTORY");
        if (base == NULL || base[0] != '/')
            return "$CREDENTIALS_DIRECTORY is not set: the service manager sets it for a "
                   "unit with LoadCredential= (see docs/OPERATIONS.md, \"systemd\")";
        rest = v[vl] == '/' ? v + vl + 1 : "";
    } else if (v[0] == '/') {
        *out = strdup(v);
        return *out ? NULL : "out of memory";
    }
    size_t n = strlen(base) + 1 + strlen(rest) + 1;
    *out = malloc(n);
    if (*out == NULL)
        return "out of memory";
    snprintf(*out, n, rest[0] ? "%s/%s" : "%s", base, rest);
    return NULL;
}

/* The next comma-separated item of *save, blanks trimmed; NULL at the end. */
static char *gw_cvalue_item(char *s, char **save)
{
    char *tok = strtok_r(s, ",", save);
    if (tok == NULL)
        return NULL;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t tl = strlen(tok);
    while (tl > 0 && (tok[tl - 1] == ' ' || tok[tl - 1] == '\t'))
        tok[--tl] = '\0';
    return tok;
}

/* One more address of a listen list, or what is wrong with it. */
static const char *gw_cvalue_listen_add(gw_listen_list_t *l, const char *tok)
{
    if (l->n == GW_MAX_LISTEN)
        return gw_cvalue_bad("more than %d addresses", GW_MAX_LISTEN);
    if (gw_addr_parse(tok, -1, &l->addr[l->n]) != 0)
        return gw_cvalue_bad("'%.80s' is not addr:port (numeric address, IPv6 in brackets)",
                             tok);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->addr[i].text, l->addr[l->n].text) == 0)
            return gw_cvalue_bad("%s is listed twice", l->addr[i].text);
    l->n++;
    return NULL;
}

const char *gw_cvalue_listen(const char *v, int optional, gw_listen_list_t *l)
{
    l->n = 0;
    if (v[0] == '\0' && optional)
        return NULL;
    char *copy = strdup(v), *save = NULL;
    if (copy == NULL)
        return "out of memory";
    const char *res = NULL;
    for (char *tok = gw_cvalue_item(copy, &save); tok && res == NULL;
         tok = gw_cvalue_item(NULL, &save))
        res = gw_cvalue_listen_add(l, tok);
    free(copy);
    if (res == NULL && l->n == 0)
        res = "no address given";
    return res;
}

const char *gw_cvalue_cidrs(const char *v, gw_cidr_list_t *l)
{
    char *copy = strdup(v), *save = NULL;
    const char *res = NULL;
    if (copy == NULL)
        return "out of memory";
    l->n = 0;
    for (char *tok = gw_cvalue_item(copy, &save); tok && res == NULL;
         tok = gw_cvalue_item(NULL, &save)) {
        if (l->n == GW_MAX_CIDRS)
            res = gw_cvalue_bad("more than %d networks", GW_MAX_CIDRS);
        else if (gw_addr_parse_cidr(tok, &l->net[l->n]) != 0)
            res = gw_cvalue_bad("'%.80s' is not an address or network (192.0.2.0/24, "
                                "2001:db8::/32)", tok);
        else
            l->n++;
    }
    free(copy);
    return res;
}

const char *gw_cvalue_addrport(const char *v, int defport, gw_sockaddr_t *out)
{
    if (gw_addr_parse(v, defport, out) != 0)
        return gw_cvalue_bad("'%.80s' is not addr[:port] (numeric address, IPv6 in brackets)",
                             v);
    return NULL;
}

/* 1 when s[0..n) is a domain name as gw_cvalue_dname says, copied to d. */
static int gw_cvalue_dname_ok(const char *s, size_t n, int host, char *d)
{
    size_t lab = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (lab == 0 || (host && d[i - 1] == '-'))
                return 0;
            lab = 0;
            d[i] = c;
            continue;
        }
        if (host)
            c = (char)tolower((unsigned char)c);
        int ok = isalnum((unsigned char)c) || c == '-' || (!host && c == '_');
        if (!ok || (host && c == '-' && lab == 0) || ++lab > 63)
            return 0;
        d[i] = c;
    }
    return lab != 0 && !(host && d[n - 1] == '-');
}

const char *gw_cvalue_dname(const char *v, int host, char **out)
{
    size_t n = strlen(v);
    if (n > 0 && v[n - 1] == '.')
        n--;
    char *d = n > 0 && n <= 253 ? malloc(n + 1) : NULL;
    if (d == NULL || !gw_cvalue_dname_ok(v, n, host, d)) {
        free(d);
        return gw_cvalue_bad("'%.80s' is not a domain name", v);
    }
    d[n] = '\0';
    *out = d;
    return NULL;
}

const char *gw_cvalue_bool(const char *v, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"},
                             *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return NULL;
        }
    return gw_cvalue_bad("'%.40s' is not yes or no", v);
}

const char *gw_cvalue_level(const char *v, int *out)
{
    int lvl = gw_log_level_parse(v);
    if (lvl < 0)
        return gw_cvalue_bad("'%s' is not one of debug, info, warn, error", v);
    *out = lvl;
    return NULL;
}

const char *gw_cvalue_logfmt(const char *v, int *out)
{
    if (strcmp(v, "text") == 0)
        *out = GW_LOGFMT_TEXT;
    else if (strcmp(v, "json") == 0)
        *out = GW_LOGFMT_JSON;
    else
        return gw_cvalue_bad("'%.40s' is not text or json", v);
    return NULL;
}

const char *gw_cvalue_tsigalg(const char *v, char **out)
{
    if (strcmp(v, "hmac-sha256") != 0 && strcmp(v, "hmac-sha512") != 0)
        return gw_cvalue_bad("'%.40s' is not hmac-sha256 or hmac-sha512", v);
    *out = strdup(v);
    return *out ? NULL : "out of memory";
}

static int gw_cvalue_b64_ok(const char *s, size_t n)
{
    size_t pad = 0;
    if (n == 0 || n % 4 != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0)
            return 0;
        if (!(isalnum((unsigned char)c) || c == '+' || c == '/'))
            return 0;
    }
    return pad <= 2 && n - pad >= 2;
}

/* The one line of base64 in buf (NUL-terminated), or what is wrong. */
static const char *gw_cvalue_secret_line(const char *path, char *buf, char **out)
{
    char *p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    size_t len = strcspn(p, " \t\r\n");
    for (char *q = p + len; *q; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
            return gw_cvalue_bad("%s must hold exactly one line of base64", path);
    if (!gw_cvalue_b64_ok(p, len))
        return gw_cvalue_bad("%s does not hold a base64 secret", path);
    *out = strndup(p, len);
    return *out ? NULL : "out of memory";
}

const char *gw_cvalue_secret_file(const char *path, char **out)
{
    const char *res = NULL;
    char buf[1024], err[sizeof gw_cvalue_why];

    *out = NULL;
    if (cmn_secret_file_read(path, "TSIG secret file", buf, sizeof buf, err, sizeof err) != 0)
        return gw_cvalue_bad("%s", err);
    res = gw_cvalue_secret_line(path, buf, out);
    cmn_wipe(buf, sizeof buf);
    return res;
}
