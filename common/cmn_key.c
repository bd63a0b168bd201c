/* cmn_key: master keys and per-device secrets (see cmn_key.h). */
#include "cmn_key.h"

#include "cmn_p11.h"
#include "cmn_secmem.h"
#include "cmn_text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define CMN_DOMAIN "ddns-device-secret-v1"        /* generation 0 */
#define CMN_DOMAIN_V2 "ddns-device-secret-v2"     /* generation 1 and later */
#define CMN_PASSWORD_LABEL "ddns-dyndns2-password-v1"

/* The keys live in memory of cmn_secmem (locked, out of core dumps);
 * growing moves them to a larger region and wipes the old one. */
struct cmn_keyset {
    cmn_master_key_t *keys;
    size_t n, cap;
    cmn_p11_token_t *token;     /* keys in a token: its sessions; NULL for files */
    char *uri;                  /* the token's URI (may hold a PIN): for after_fork */
    cmn_master_key_t standin;   /* for unknown key ids: zero, or a token session key */
};

/* Room for one more key; 0 or -1. */
static int cmn_keyset_grow(cmn_keyset_t *ks)
{
    if (ks->n < ks->cap)
        return 0;
    size_t cap = ks->cap ? ks->cap * 2 : 8;
    cmn_master_key_t *k = cmn_secmem_alloc(cap * sizeof *k, NULL);
    if (k == NULL)
        return -1;
    if (ks->n > 0)
        memcpy(k, ks->keys, ks->n * sizeof *k);
    cmn_secmem_free(ks->keys, ks->cap * sizeof *ks->keys);
    ks->keys = k;
    ks->cap = cap;
    return 0;
}

void cmn_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

int cmn_kid_valid(const char *s, size_t len)
{
    if (len == 0 || len > CMN_KID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

void cmn_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int cmn_unhex(const char *s, size_t len, uint8_t *out, size_t outlen)
{
    if (len != 2 * outlen)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] = (uint8_t)(out[i / 2] | v);
    }
    return 0;
}

#define CMN_KEYFILE_MAX 4096
#define CMN_KEYFILE_LINE_MAX 511

int cmn_secret_file_read(const char *path, const char *what, char *buf, size_t cap, char *err,
                         size_t errlen)
{
    struct stat st;
    size_t len = 0;
    int rc = -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        cmn_errf(err, errlen, "%s: cannot open %s: %s", path, what, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cmn_errf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        cmn_errf(err, errlen, "%s: %s is accessible by group or others (mode %04o); "
                 "refusing to use it: run chmod 600 on it", path, what,
                 (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cmn_errf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap - 1) {
            cmn_errf(err, errlen, "%s: larger than %zu bytes: not a %s", path, cap - 1, what);
            goto out;
        }
    }
    buf[len] = '\0';
    rc = 0;
out:
    close(fd);
    if (rc != 0)
        cmn_wipe(buf, cap);
    return rc;
}

/* One "name = value" line (already trimmed at its end) of a key file into
 * out; *have_key is set by the key line. Blank lines and comments are
 * skipped. Returns 0 or -1 with err naming the file and line. */
static int cmn_keyfile_line(const char *path, int lineno, char *line, cmn_master_key_t *out,
                            int *have_key, char *err, size_t errlen)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    char *eq = strchr(p, '=');
    if (eq == NULL) {
        cmn_errf(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
        return -1;
    }
    char *name_end = eq;
    while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
        name_end--;
    *name_end = '\0';
    char *val = eq + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    if (strcmp(p, "kid") == 0) {
        if (!cmn_kid_valid(val, strlen(val))) {
            cmn_errf(err, errlen, "%s:%d: kid must be 1 to %d characters of [a-z0-9]", path,
                    lineno, CMN_KID_MAX);
            return -1;
        }
        memcpy(out->kid, val, strlen(val) + 1);
    } else if (strcmp(p, "created") == 0) {
        snprintf(out->created, sizeof out->created, "%s", val);
    } else if (strcmp(p, "key") == 0) {
        if (cmn_unhex(val, strlen(val), out->key, CMN_KEY_LEN) != 0) {
            cmn_errf(err, errlen, "%s:%d: key must be %d lowercase hex digits", path, lineno,
                    2 * CMN_KEY_LEN);
            return -1;
        }
        *have_key = 1;
    } else {
        cmn_errf(err, errlen, "%s:%d: unknown field '%s'", path, lineno, p);
        return -1;
    }
    return 0;
}

int cmn_keyfile_read(const char *path, cmn_master_key_t *out, char *err, size_t errlen)
{
    int rc = -1, lineno = 0, have_key = 0;
    char buf[CMN_KEYFILE_MAX];

    memset(out, 0, sizeof *out);
    if (cmn_secret_file_read(path, "key file", buf, sizeof buf, err, errlen) != 0)
        goto out;
    for (char *line = buf, *next; *line != '\0'; line = next) {
        lineno++;
        size_t n = strcspn(line, "\n");
        next = line[n] == '\n' ? line + n + 1 : line + n;
        line[n] = '\0';
        if (n > CMN_KEYFILE_LINE_MAX) {
            cmn_errf(err, errlen, "%s:%d: line too long", path, lineno);
            goto out;
        }
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (cmn_keyfile_line(path, lineno, line, out, &have_key, err, errlen) != 0)
            goto out;
    }
    if (out->kid[0] == '\0' || !have_key) {
        cmn_errf(err, errlen, "%s: missing %s", path, out->kid[0] == '\0' ? "kid" : "key");
        goto out;
    }
    rc = 0;
out:
    cmn_wipe(buf, sizeof buf);
    if (rc != 0)
        cmn_wipe(out, sizeof *out);
    return rc;
}

int cmn_keyfile_write(const char *path, const cmn_master_key_t *key, char *err, size_t errlen)
{
    char hex[2 * CMN_KEY_LEN + 1];
    char buf[256];
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cmn_errf(err, errlen, "%s: cannot create key file: %s", path, strerror(errno));
        return -1;
    }
    cmn_hex(key->key, CMN_KEY_LEN, hex);
    int n = snprintf(buf, sizeof buf,
                     "# ddns master key: keep secret, never copy into firmware or a database\n"
                     "kid = %s\ncreated = %s\nkey = %s\n", key->kid, key->created, hex);
    if (n < 0 || (size_t)n >= sizeof buf || write(fd, buf, (size_t)n) != (ssize_t)n ||
        fsync(fd) != 0) {
        cmn_errf(err, errlen, "%s: cannot write key file: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rc = 0;
out:
    cmn_wipe(hex, sizeof hex);
    cmn_wipe(buf, sizeof buf);
    close(fd);
    return rc;
}

static int cmn_key_cmp(const void *a, const void *b)
{
    return strcmp(((const cmn_master_key_t *)a)->kid, ((const cmn_master_key_t *)b)->kid);
}

cmn_keyset_t *cmn_keyset_load_dir(const char *dir, char *err, size_t errlen)
{
    cmn_keyset_t *ks = calloc(1, sizeof *ks);
    DIR *d = NULL;
    struct dirent *de;
    char path[4096];

    if (ks == NULL) {
        cmn_errf(err, errlen, "out of memory");
        goto fail;
    }
    d = opendir(dir);
    if (d == NULL) {
        cmn_errf(err, errlen, "%s: cannot open key directory: %s", dir, strerror(errno));
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".key") != 0 || de->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path) {
            cmn_errf(err, errlen, "%s/%s: path too long", dir, de->d_name);
            goto fail;
        }
        if (cmn_keyset_grow(ks) != 0) {
            cmn_errf(err, errlen, "out of memory for keys");
            goto fail;
        }
        if (cmn_keyfile_read(path, &ks->keys[ks->n], err, errlen) != 0)
            goto fail;
        for (size_t i = 0; i < ks->n; i++) {
            if (strcmp(ks->keys[i].kid, ks->keys[ks->n].kid) == 0) {
                cmn_errf(err, errlen, "%s: key id '%s' is also defined by another file in %s",
                        path, ks->keys[i].kid, dir);
                ks->n++;
                goto fail;
            }
        }
        ks->n++;
    }
    closedir(d);
    if (ks->n > 1)
        qsort(ks->keys, ks->n, sizeof *ks->keys, cmn_key_cmp);
    return ks;
fail:
    if (d != NULL)
        closedir(d);
    cmn_keyset_free(ks);
    return NULL;
}

void cmn_keyset_free(cmn_keyset_t *ks)
{
    if (ks == NULL)
        return;
    cmn_secmem_free(ks->keys, ks->cap * sizeof *ks->keys);
    cmn_p11_close(ks->token);
    if (ks->uri != NULL) {
        cmn_wipe(ks->uri, strlen(ks->uri));
        free(ks->uri);
    }
    free(ks);
}

int cmn_key_p11_usable(const cmn_p11_key_t *k, const char *token, int named, char *err,
                       size_t errlen)
{
    if (k->label_too_long || !cmn_kid_valid(k->label, strlen(k->label)) || !k->generic ||
        k->sign != 1) {
        if (!named)
            return 0;
        cmn_errf(err, errlen, "token '%s': key '%s' is not a master key: %s", token, k->label,
                !cmn_kid_valid(k->label, strlen(k->label))
                    ? "its label is not a key id (1 to 16 characters of [a-z0-9])"
                    : "it is not an HMAC key (CKK_GENERIC_SECRET with CKA_SIGN)");
        return -1;
    }
    if (k->sensitive != 1 || k->extractable != 0) {
        cmn_errf(err, errlen, "token '%s': key '%s' can be read out of the token (%s); "
                "refusing it: master keys are made in the token with 'ddns-provision keygen "
                "--pkcs11', sensitive and not extractable", token, k->label,
                k->sensitive != 1 ? "CKA_SENSITIVE is not true" : "CKA_EXTRACTABLE is not false");
        return -1;
    }
    if (k->value_len >= 0 && k->value_len != CMN_KEY_LEN) {
        cmn_errf(err, errlen, "token '%s': key '%s' is %ld bytes long, not %d", token, k->label,
                k->value_len, CMN_KEY_LEN);
        return -1;
    }
    return 1;
}

cmn_keyset_t *cmn_keyset_load_p11(const char *uri, char *err, size_t errlen)
{
    cmn_p11_uri_t u;
    cmn_p11_key_t *found = NULL;
    size_t nfound = 0;
    cmn_keyset_t *ks = calloc(1, sizeof *ks);

    if (ks == NULL || (ks->uri = strdup(uri)) == NULL) {
        cmn_errf(err, errlen, "out of memory");
        goto fail;
    }
    if (cmn_p11_uri_parse(uri, &u, err, errlen) != 0)
        goto fail;
    ks->token = cmn_p11_open(&u, 0, err, errlen);
    if (ks->token == NULL)
        goto fail;
    const char *label = cmn_p11_token_label(ks->token);
    if (cmn_p11_list(ks->token, u.object[0] ? u.object : NULL, &found, &nfound, err,
                     errlen) != 0)
        goto fail;
    if (u.object[0] != '\0' && nfound == 0) {
        cmn_errf(err, errlen, "token '%s' holds no key labelled '%s'", label, u.object);
        goto fail;
    }
    for (size_t i = 0; i < nfound; i++) {
        int use = cmn_key_p11_usable(&found[i], label, u.object[0] != '\0', err, errlen);
        if (use < 0)
            goto fail;
        if (use == 0)
            continue;
        if (cmn_keyset_find(ks, found[i].label, strlen(found[i].label)) != NULL) {
            cmn_errf(err, errlen, "token '%s': two keys are labelled '%s'", label,
                    found[i].label);
            goto fail;
        }
        if (cmn_keyset_grow(ks) != 0) {
            cmn_errf(err, errlen, "out of memory for keys");
            goto fail;
        }
        cmn_master_key_t *k = &ks->keys[ks->n++];
        memcpy(k->kid, found[i].label, strlen(found[i].label) + 1);
        memcpy(k->created, found[i].created, sizeof k->created);
        k->token = ks->token;
        k->handle = found[i].handle;
    }
    /* The stand-in costs what a key of the token does: a session key of the
     * same kind (or, where the token cannot make one, its first key). */
    ks->standin.token = ks->token;
    if (cmn_p11_standin(ks->token, &ks->standin.handle, NULL, 0) != 0) {
        if (ks->n > 0)
            ks->standin.handle = ks->keys[0].handle;
        else
            ks->standin.token = NULL;
    }
    if (ks->n > 1)
        qsort(ks->keys, ks->n, sizeof *ks->keys, cmn_key_cmp);
    free(found);
    cmn_p11_uri_clear(&u);
    return ks;
fail:
    free(found);
    cmn_p11_uri_clear(&u);
    cmn_keyset_free(ks);
    return NULL;
}

int cmn_keyset_after_fork(cmn_keyset_t *ks, char *err, size_t errlen)
{
    if (ks->uri == NULL)
        return 0;
    cmn_keyset_t *fresh = cmn_keyset_load_p11(ks->uri, err, errlen);
    if (fresh == NULL)
        return -1;
    /* swap the contents: ks gets the child's token, fresh the inherited one,
     * which cmn_keyset_free releases without a PKCS#11 call (another
     * process's sessions) */
    cmn_keyset_t old = *ks;
    *ks = *fresh;
    *fresh = old;
    cmn_keyset_free(fresh);
    return 0;
}

const char *cmn_keyset_token_label(const cmn_keyset_t *ks)
{
    return ks->token != NULL ? cmn_p11_token_label(ks->token) : NULL;
}

const cmn_master_key_t *cmn_keyset_standin(const cmn_keyset_t *ks)
{
    static const cmn_master_key_t zero;
    return ks != NULL ? &ks->standin : &zero;
}

size_t cmn_keyset_count(const cmn_keyset_t *ks)
{
    return ks->n;
}

const cmn_master_key_t *cmn_keyset_at(const cmn_keyset_t *ks, size_t i)
{
    return i < ks->n ? &ks->keys[i] : NULL;
}

size_t cmn_keyset_ids(const cmn_keyset_t *ks, char *out, size_t outlen)
{
    size_t o = 0, n = ks != NULL ? ks->n : 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t need = (i > 0) + strlen(ks->keys[i].kid);
        if (o + need >= outlen)
            break;
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", i > 0 ? " " : "", ks->keys[i].kid);
    }
    return n;
}

const cmn_master_key_t *cmn_keyset_find(const cmn_keyset_t *ks, const char *kid, size_t kidlen)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strlen(ks->keys[i].kid) == kidlen && memcmp(ks->keys[i].kid, kid, kidlen) == 0)
            return &ks->keys[i];
    return NULL;
}

const cmn_master_key_t *cmn_keyset_newest(const cmn_keyset_t *ks)
{
    const cmn_master_key_t *best = NULL;
    for (size_t i = 0; i < ks->n; i++) {
        const cmn_master_key_t *k = &ks->keys[i];
        if (best == NULL || strcmp(k->created, best->created) > 0 ||
            (strcmp(k->created, best->created) == 0 && strcmp(k->kid, best->kid) > 0))
            best = k;
    }
    return best;
}

int cmn_key_in_token(const cmn_master_key_t *key)
{
    return key->token != NULL;
}

int cmn_key_hmac(const cmn_master_key_t *key, const void *msg, size_t len,
                 uint8_t out[CMN_SECRET_LEN])
{
    unsigned int outlen = 0;
    if (key->token != NULL)
        return cmn_p11_hmac(key->token, key->handle, msg, len, out);
    if (HMAC(EVP_sha256(), key->key, CMN_KEY_LEN, msg, len, out, &outlen) == NULL ||
        outlen != CMN_SECRET_LEN)
        return -1;
    return 0;
}

int cmn_derive_secret(const cmn_master_key_t *key, const char *kid, size_t kidlen,
                      const char *device_id, size_t idlen, uint32_t generation,
                      uint8_t out[CMN_SECRET_LEN])
{
    _Static_assert(sizeof CMN_DOMAIN == sizeof CMN_DOMAIN_V2, "labels of one length");
    uint8_t msg[sizeof CMN_DOMAIN + CMN_KID_MAX + 1 + 64 + 1 + 7 + 1]; /* + sprintf's NUL */
    size_t n = 0;
    int rc;

    if (kidlen > CMN_KID_MAX || idlen > 64 || generation > CMN_GENERATION_MAX)
        return -1;
    /* the label with its 0x00 separator */
    memcpy(msg, generation == 0 ? CMN_DOMAIN : CMN_DOMAIN_V2, sizeof CMN_DOMAIN);
    n = sizeof CMN_DOMAIN;
    memcpy(msg + n, kid, kidlen);
    n += kidlen;
    msg[n++] = 0;
    memcpy(msg + n, device_id, idlen);
    n += idlen;
    if (generation > 0)
        n += (size_t)sprintf((char *)msg + n, "%c%" PRIu32, 0, generation);
    rc = cmn_key_hmac(key, msg, n, out);
    cmn_wipe(msg, sizeof msg);
    return rc;
}

int cmn_keyref_parse(const char *s, size_t len, size_t *kidlen, uint32_t *generation)
{
    size_t kl = 0;
    uint32_t g = 0;

    while (kl < len && s[kl] != '/')
        kl++;
    if (!cmn_kid_valid(s, kl))
        return -1;
    if (kl < len) {
        size_t digits = len - kl - 1;
        const char *d = s + kl + 1;
        if (digits == 0 || digits > 7 || d[0] == '0')
            return -1;
        for (size_t i = 0; i < digits; i++) {
            if (d[i] < '0' || d[i] > '9')
                return -1;
            g = g * 10 + (uint32_t)(d[i] - '0');
        }
    }
    *kidlen = kl;
    *generation = g;
    return 0;
}

int cmn_keyref_format(const char *kid, uint32_t generation, char *out, size_t outlen)
{
    size_t kl = strlen(kid);
    int n;
    if (!cmn_kid_valid(kid, kl) || generation > CMN_GENERATION_MAX)
        return -1;
    if (generation == 0)
        n = snprintf(out, outlen, "%s", kid);
    else
        n = snprintf(out, outlen, "%s/%" PRIu32, kid, generation);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int cmn_dyndns2_password(const uint8_t secret[CMN_SECRET_LEN], uint32_t generation,
                         uint8_t out[CMN_SECRET_LEN])
{
    unsigned int outlen = 0;
    if (generation > CMN_GENERATION_MAX)
        return -1;
    if (generation == 0) {
        memcpy(out, secret, CMN_SECRET_LEN);
        return 0;
    }
    if (HMAC(EVP_sha256(), secret, CMN_SECRET_LEN, (const uint8_t *)CMN_PASSWORD_LABEL,
             sizeof CMN_PASSWORD_LABEL - 1, out, &outlen) == NULL || outlen != CMN_SECRET_LEN)
        return -1;
    return 0;
}

size_t cmn_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0);
    size_t o = 0;
    if (outlen < need + 1)
        return 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alpha[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alpha[v & 63];
    }
    out[o] = '\0';
    return o;
}

static int cmn_b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int cmn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = cmn_b64val(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-canonical: leftover bits must be zero */
        return -1;
    return (int)o;
}

int cmn_password_format(const char *kid, uint32_t generation,
                        const uint8_t secret[CMN_SECRET_LEN], char *out, size_t outlen)
{
    uint8_t pw[CMN_SECRET_LEN];
    int n = cmn_keyref_format(kid, generation, out, outlen), rc = -1;
    if (n < 0 || outlen < (size_t)n + 1 + CMN_SECRET_B64_LEN + 1 ||
        cmn_dyndns2_password(secret, generation, pw) != 0)
        goto out;
    out[n] = '.';
    if (cmn_b64url_encode(pw, CMN_SECRET_LEN, out + n + 1, outlen - (size_t)n - 1) ==
        CMN_SECRET_B64_LEN)
        rc = 0;
out:
    cmn_wipe(pw, sizeof pw);
    if (rc != 0 && outlen > 0)
        out[0] = '\0';
    return rc;
}
