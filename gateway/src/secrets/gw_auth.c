/* gw_auth: signed update request verification (see gw_auth.h). */
#include "gw_auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Longest string to sign: the fixed lines, the fields and the body. */
#define GW_STS_MAX (sizeof GW_AUTH_SCHEME + 64 + CMN_DEVICE_ID_LEN + CMN_KID_MAX + 13 + \
                    GW_AUTH_NONCE_LEN + 8 + GW_AUTH_BODY_MAX)

const char *gw_verdict_name(gw_verdict_t v)
{
    switch (v) {
    case GW_AUTH_OK: return "ok";
    case GW_AUTH_BADREQUEST: return "badrequest";
    case GW_AUTH_BADTIME: return "badtime";
    case GW_AUTH_BADAUTH: return "badauth";
    }
    return "?";
}

const cmn_master_key_t *gw_auth_keyset_lookup(void *ctx, const char *kid, size_t kidlen)
{
    return cmn_keyset_find(ctx, kid, kidlen);
}

static int gw_lowhex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Takes "name=" at *p and the value up to the next ',' (or the end when
 * last). Returns the value length or -1. */
static long gw_take_field(const char **p, const char *name, int last, const char **val)
{
    size_t nl = strlen(name);
    if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '=')
        return -1;
    *val = *p + nl + 1;
    size_t vl = strcspn(*val, ",");
    if (last) {
        if ((*val)[vl] != '\0')
            return -1;
        *p = *val + vl;
    } else {
        if ((*val)[vl] != ',')
            return -1;
        *p = *val + vl + 1;
    }
    return vl == 0 ? -1 : (long)vl;
}

int gw_auth_parse_authorization(const char *value, gw_auth_result_t *out, uint8_t sig[32])
{
    gw_auth_result_t r;
    const char *p = value, *v;
    long n;

    memset(&r, 0, sizeof r);
    if (value == NULL || strncmp(p, GW_AUTH_SCHEME " ", sizeof GW_AUTH_SCHEME) != 0)
        return -1;
    p += sizeof GW_AUTH_SCHEME;

    n = gw_take_field(&p, "id", 0, &v);
    if (n != CMN_DEVICE_ID_LEN || cmn_device_id_check(v, (size_t)n) != CMN_MAC_OK)
        return -1;
    memcpy(r.device_id, v, (size_t)n);

    n = gw_take_field(&p, "kid", 0, &v);
    if (n < 0 || !cmn_kid_valid(v, (size_t)n))
        return -1;
    memcpy(r.kid, v, (size_t)n);

    n = gw_take_field(&p, "ts", 0, &v);
    if (n < 1 || n > 12 || v[0] < '1' || v[0] > '9')
        return -1;
    for (long i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        r.ts = r.ts * 10 + (v[i] - '0');
    }

    n = gw_take_field(&p, "nonce", 0, &v);
    if (n != GW_AUTH_NONCE_LEN)
        return -1;
    for (long i = 0; i < n; i++)
        if (gw_lowhex_val(v[i]) < 0)
            return -1;
    memcpy(r.nonce, v, (size_t)n);

    n = gw_take_field(&p, "sig", 1, &v);
    if (n != GW_AUTH_SIG_LEN)
        return -1;
    for (long i = 0; i < n; i += 2) {
        int hi = gw_lowhex_val(v[i]), lo = gw_lowhex_val(v[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        sig[i / 2] = (uint8_t)(hi << 4 | lo);
    }

    memcpy(out->device_id, r.device_id, sizeof r.device_id);
    memcpy(out->kid, r.kid, sizeof r.kid);
    memcpy(out->nonce, r.nonce, sizeof r.nonce);
    out->ts = r.ts;
    return 0;
}

static int gw_value_char_ok(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           c == '.' || c == ':';
}

/* The name of a parameter as it may appear in "badrequest <field>": the
 * name itself when it is short and plain, else "body". */
static void gw_set_field(gw_auth_result_t *out, const uint8_t *name, size_t len)
{
    int plain = len > 0 && len < sizeof out->field;
    for (size_t i = 0; plain && i < len; i++) {
        uint8_t c = name[i];
        plain = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                c == '_' || c == '-' || c == '.';
    }
    if (plain) {
        memcpy(out->field, name, len);
        out->field[len] = '\0';
    } else {
        strcpy(out->field, "body");
    }
}

int gw_auth_parse_body(const uint8_t *body, size_t len, gw_auth_result_t *out)
{
    struct { size_t off, nlen; } seen[GW_AUTH_BODY_MAX / 2 + 1];
    size_t nseen = 0, pos = 0;
    char v4[INET_ADDRSTRLEN] = "", v6[INET6_ADDRSTRLEN] = "";

    if (len > GW_AUTH_BODY_MAX) {
        strcpy(out->field, "body");
        return -1;
    }
    while (len > 0 && pos <= len) {
        const uint8_t *seg = body + pos;
        size_t sl = 0;
        while (pos + sl < len && seg[sl] != '&')
            sl++;
        const uint8_t *eq = memchr(seg, '=', sl);
        size_t nl = eq ? (size_t)(eq - seg) : sl;
        if (nl == 0) {
            strcpy(out->field, "body");
            return -1;
        }
        if (eq == NULL) {
            gw_set_field(out, seg, nl);
            return -1;
        }
        const uint8_t *val = eq + 1;
        size_t vl = sl - nl - 1;
        if (vl == 0) {
            gw_set_field(out, seg, nl);
            return -1;
        }
        for (size_t i = 0; i < vl; i++)
            if (!gw_value_char_ok(val[i])) {
                gw_set_field(out, seg, nl);
                return -1;
            }
        for (size_t i = 0; i < nseen; i++)
            if (seen[i].nlen == nl && memcmp(body + seen[i].off, seg, nl) == 0) {
                gw_set_field(out, seg, nl);
                return -1;
            }
        seen[nseen].off = pos;
        seen[nseen].nlen = nl;
        nseen++;

        char text[INET6_ADDRSTRLEN + 1];
        if (nl == 4 && (memcmp(seg, "ipv4", 4) == 0 || memcmp(seg, "ipv6", 4) == 0)) {
            int v6param = seg[3] == '6';
            int bad = vl >= sizeof text;
            if (!bad) {
                memcpy(text, val, vl);
                text[vl] = '\0';
            }
            if (!v6param) {
                struct in_addr a;
                bad = bad || inet_pton(AF_INET, text, &a) != 1 ||
                      inet_ntop(AF_INET, &a, v4, sizeof v4) == NULL;
            } else {
                struct in6_addr a;
                /* an IPv4-mapped address is an IPv4 address: wrong family */
                bad = bad || inet_pton(AF_INET6, text, &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a) ||
                      inet_ntop(AF_INET6, &a, v6, sizeof v6) == NULL;
            }
            if (bad) {
                strcpy(out->field, v6param ? "ipv6" : "ipv4");
                return -1;
            }
        }
        pos += sl + 1;
        if (pos == len) {   /* trailing '&' */
            strcpy(out->field, "body");
            return -1;
        }
    }
    memcpy(out->ipv4, v4, sizeof v4);
    memcpy(out->ipv6, v6, sizeof v6);
    return 0;
}

int gw_auth_derive(gw_auth_key_lookup_fn lookup, void *lookup_ctx, const char *kid, size_t kidlen,
                   const char *device_id, uint8_t secret[CMN_SECRET_LEN])
{
    /* Stands in for the master key of an unknown kid, at the same cost: a
     * key set's stand-in is computed where its keys are (a token's keys:
     * by the token). */
    static const cmn_master_key_t dummy_key;
    const cmn_master_key_t *key = lookup(lookup_ctx, kid, kidlen);
    int found = key != NULL;
    if (!found)
        key = lookup == gw_auth_keyset_lookup ? cmn_keyset_standin(lookup_ctx) : &dummy_key;
    int rc = cmn_derive_secret(key, kid, kidlen, device_id, CMN_DEVICE_ID_LEN, secret);
    return rc != 0 ? -1 : found;
}

void gw_auth_verify(const char *authorization, const uint8_t *body, size_t body_len,
                    int64_t server_time, int64_t skew, gw_auth_key_lookup_fn lookup,
                    void *lookup_ctx, gw_auth_result_t *out)
{
    uint8_t sig[32], secret[CMN_SECRET_LEN], mac[EVP_MAX_MD_SIZE];
    uint8_t sts[GW_STS_MAX];
    unsigned int maclen = 0;
    int found, hmac_ok = 0;

    memset(out, 0, sizeof *out);
    out->verdict = GW_AUTH_BADREQUEST;

    /* 1. syntax */
    if (gw_auth_parse_authorization(authorization, out, sig) != 0) {
        strcpy(out->field, "authorization");
        goto out;
    }
    if (gw_auth_parse_body(body, body_len, out) != 0)
        goto out;

    /* 2. clock window */
    int64_t d = server_time - out->ts;
    if (d < 0)
        d = -d;
    if (d > skew) {
        out->verdict = GW_AUTH_BADTIME;
        goto out;
    }

    /* 3. signature: an unknown kid does the same work (derivation, HMAC) */
    found = gw_auth_derive(lookup, lookup_ctx, out->kid, strlen(out->kid), out->device_id,
                           secret);
    if (found < 0) {
        out->verdict = GW_AUTH_BADAUTH;
        goto out;
    }
    int n = snprintf((char *)sts, sizeof sts, "%s\nPOST\n/v1/update\n%s\n%s\n%lld\n%s\n",
                     GW_AUTH_SCHEME, out->device_id, out->kid, (long long)out->ts, out->nonce);
    if (n < 0 || (size_t)n + body_len > sizeof sts) {
        out->verdict = GW_AUTH_BADAUTH;
        goto out;
    }
    if (body_len > 0)
        memcpy(sts + n, body, body_len);
    if (HMAC(EVP_sha256(), secret, sizeof secret, sts, (size_t)n + body_len, mac, &maclen) != NULL &&
        maclen == 32)
        hmac_ok = CRYPTO_memcmp(mac, sig, 32) == 0;
    out->verdict = (hmac_ok & found) ? GW_AUTH_OK : GW_AUTH_BADAUTH;
out:
    if (out->verdict != GW_AUTH_BADREQUEST)
        out->field[0] = '\0';
    cmn_wipe(secret, sizeof secret);
    cmn_wipe(mac, sizeof mac);
    cmn_wipe(sig, sizeof sig);
}
