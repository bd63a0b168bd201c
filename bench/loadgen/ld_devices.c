/* ld_devices: device credentials (see ld_devices.h). */
#include "ld_devices.h"

#include "ddns_check.h"
#include "ddns_credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define LD_LINE_MAX 4096

static void wipe_json_string(json_t *v)
{
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

static const char *get_text(json_t *o, const char *key, size_t *len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* "Basic " + base64(device_id ":" password), where the password is
 * prefix "." text (the key reference and the 43 characters after it). */
static char *make_basic(const char *device_id, const char *prefix, const char *text,
                        size_t len)
{
    char plain[DDNS_DEVICE_ID_LEN + 1 + DDNS_KID_MAX + 1 + DDNS_SECRET_TEXT_LEN + 1];
    int n = snprintf(plain, sizeof plain, "%s:%s.%.*s", device_id, prefix, (int)len, text);
    char *out = NULL;
    if (n > 0 && (size_t)n < sizeof plain) {
        size_t enc = 4 * (((size_t)n + 2) / 3);
        out = malloc(6 + enc + 1);
        if (out != NULL) {
            memcpy(out, "Basic ", 6);
            EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
        }
    }
    OPENSSL_cleanse(plain, sizeof plain);
    return out;
}

/* Fills d from one parsed line. Returns 0, or -1 with the reason in why. */
static int parse_device(json_t *o, bool need_fqdn, ld_device_t *d, char *why, size_t whylen)
{
    size_t idl = 0, kidl = 0, secl = 0, pwl = 0, fl = 0;
    const char *id, *kid, *sec, *pw, *fqdn;
    char pw_kid[DDNS_KID_MAX + 1];
    uint8_t pw_secret[DDNS_SECRET_LEN];
    size_t pw_kid_len = 0;
    int rc = -1;

    if (!json_is_object(o)) {
        snprintf(why, whylen, "not a JSON object");
        return -1;
    }
    id = get_text(o, "device_id", &idl);
    kid = get_text(o, "kid", &kidl);
    sec = get_text(o, "secret", &secl);
    pw = get_text(o, "password", &pwl);
    fqdn = get_text(o, "fqdn", &fl);
    if (id == NULL) {
        snprintf(why, whylen, "device_id: missing or not a string");
        goto out;
    }
    if (ddns_device_id_check(ddns_span(id, idl)) != DDNS_OK) {
        snprintf(why, whylen, "device_id '%.*s': not a canonical device id (12 lowercase hex "
                 "digits, not zero or multicast)", (int)(idl > 20 ? 20 : idl), id);
        goto out;
    }
    memcpy(d->device_id, id, idl);
    d->device_id[idl] = '\0';
    if ((kid == NULL) != (sec == NULL)) {
        snprintf(why, whylen, "%s: missing (kid and secret go together)",
                 kid == NULL ? "kid" : "secret");
        goto out;
    }
    if (kid == NULL && pw == NULL) {
        snprintf(why, whylen, "credentials: need kid and secret, or password");
        goto out;
    }
    if (kid != NULL) {
        if (ddns_kid_check(ddns_span(kid, kidl)) != DDNS_OK) {
            snprintf(why, whylen, "kid: not 1 to 16 characters of [a-z0-9]");
            goto out;
        }
        if (ddns_secret_decode(ddns_span(sec, secl), d->secret) != DDNS_OK) {
            snprintf(why, whylen, "secret: not 43 base64url characters");
            goto out;
        }
        memcpy(d->kid, kid, kidl);
        d->kid[kidl] = '\0';
    }
    /* From generation 1 on (a kid with "/") the password is the dyndns2
     * password derived from the secret: it is sent as it is. */
    if (pw != NULL && kid != NULL && memchr(kid, '/', kidl) != NULL) {
        size_t dot = strcspn(pw, ".");
        if (dot != kidl || memcmp(pw, kid, kidl) != 0 || pwl != kidl + 1 + DDNS_SECRET_TEXT_LEN) {
            snprintf(why, whylen, "password: not the kid, \".\" and 43 characters");
            goto out;
        }
        sec = pw + kidl + 1;
        secl = DDNS_SECRET_TEXT_LEN;
    } else if (pw != NULL) {
        if (ddns_password_decode(ddns_span(pw, pwl), pw_kid, &pw_kid_len, pw_secret) !=
            DDNS_OK) {
            snprintf(why, whylen, "password: not of the form kid.secret (from generation 1 on "
                     "give kid and secret)");
            goto out;
        }
        if (kid != NULL && (strcmp(pw_kid, d->kid) != 0 ||
                            CRYPTO_memcmp(pw_secret, d->secret, DDNS_SECRET_LEN) != 0)) {
            snprintf(why, whylen, "password: does not match kid and secret");
            goto out;
        }
        if (kid == NULL) {
            memcpy(d->kid, pw_kid, pw_kid_len + 1);
            memcpy(d->secret, pw_secret, DDNS_SECRET_LEN);
            sec = pw + pw_kid_len + 1;
            secl = pwl - pw_kid_len - 1;
        }
    }
    if (fqdn != NULL && fl > 0 && fl < 254 && strspn(fqdn, "abcdefghijklmnopqrstuvwxyz"
                                                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                           "0123456789-.") == fl) {
        d->fqdn = strdup(fqdn);
        if (d->fqdn == NULL) {
            snprintf(why, whylen, "out of memory");
            goto out;
        }
    } else if (fqdn != NULL) {
        snprintf(why, whylen, "fqdn: not a host name");
        goto out;
    } else if (need_fqdn) {
        snprintf(why, whylen, "fqdn: missing (the dyndns2 workload sends it as hostname=)");
        goto out;
    }
    if (pw == NULL && strchr(d->kid, '/') != NULL) {
        /* generation 1 or later without its dyndns2 password: signed only */
        if (need_fqdn) {
            snprintf(why, whylen, "password: missing (the dyndns2 workload sends it; from "
                     "generation 1 on it is not the secret)");
            goto out;
        }
    } else if ((d->basic = make_basic(d->device_id, d->kid, sec, secl)) == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(pw_secret, sizeof pw_secret);
    return rc;
}

static void free_one(ld_device_t *d)
{
    free(d->fqdn);
    if (d->basic != NULL) {
        OPENSSL_cleanse(d->basic, strlen(d->basic));
        free(d->basic);
    }
    OPENSSL_cleanse(d, sizeof *d);
}

static int cmp_id(const void *a, const void *b)
{
    const ld_device_t *const *x = a, *const *y = b;
    return strcmp((*x)->device_id, (*y)->device_id);
}

/* A device given twice would break the replay rule for itself. */
static int find_duplicate(ld_device_t *devs, size_t n, char *why, size_t whylen)
{
    ld_device_t **p = malloc(n * sizeof *p);
    int rc = 0;
    if (p == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = &devs[i];
    qsort(p, n, sizeof *p, cmp_id);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(p[i - 1]->device_id, p[i]->device_id) == 0) {
            snprintf(why, whylen, "device %s is given twice (entries %u and %u): "
                     "each device may appear once", p[i]->device_id, p[i - 1]->index < p[i]->index ?
                     p[i - 1]->index + 1 : p[i]->index + 1, p[i - 1]->index < p[i]->index ?
                     p[i]->index + 1 : p[i - 1]->index + 1);
            rc = -1;
            break;
        }
    }
    free(p);
    return rc;
}

void ld_devices_free(ld_device_t *d, size_t n)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free_one(&d[i]);
    free(d);
}

int ld_devices_load(const char *path, bool need_fqdn, ld_device_t **out, size_t *n, char *err,
                    size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    ld_device_t *devs = NULL;
    size_t ndev = 0, cap = 0, lineno = 0, linecap = 0;
    char *line = NULL, why[200];
    ssize_t len;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        if ((size_t)len > LD_LINE_MAX) {
            snprintf(err, errlen, "%s:%zu: line longer than %d bytes", path, lineno,
                     LD_LINE_MAX);
            goto out;
        }
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        if (ndev == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            ld_device_t *nd = realloc(devs, ncap * sizeof *nd);
            if (nd == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            devs = nd;
            cap = ncap;
        }
        ld_device_t *d = &devs[ndev];
        memset(d, 0, sizeof *d);
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)len, 0, &jerr);
        OPENSSL_cleanse(line, (size_t)len);
        if (o == NULL) {
            snprintf(err, errlen, "%s:%zu: not JSON: %s", path, lineno, jerr.text);
            goto out;
        }
        int bad = parse_device(o, need_fqdn, d, why, sizeof why);
        wipe_json_string(json_object_get(o, "secret"));
        wipe_json_string(json_object_get(o, "password"));
        json_decref(o);
        if (bad) {
            free_one(d);
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            goto out;
        }
        d->index = (uint32_t)ndev;
        ndev++;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (ndev == 0) {
        snprintf(err, errlen, "%s: no device in the file", path);
        goto out;
    }
    if (find_duplicate(devs, ndev, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto out;
    }
    *out = devs;
    *n = ndev;
    devs = NULL;
    ndev = 0;
    rc = 0;
out:
    ld_devices_free(devs, ndev);
    if (line != NULL) {
        OPENSSL_cleanse(line, linecap);
        free(line);
    }
    if (f != stdin)
        fclose(f);
    return rc;
}
