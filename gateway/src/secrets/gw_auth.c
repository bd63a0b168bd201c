/* gw_auth: signed update request verification (see gw_auth.h). */
#include "gw_auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>


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
    size_t kidlen;
    if (n < 0 || cmn_keyref_parse(v, (size_t)n, &kidlen, &r.generation) != 0)
        return -1;
    memcpy(r.kid, v, kidlen);

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
    out->generation = r.generation;
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

/* An address value of the body into out (outlen bytes, enough for the
 * family) in canonical text: family AF_INET or AF_INET6, or 0 for either.
 * An IPv4-mapped IPv6 address is an IPv4 address, so never an AF_INET6
 * one. Returns 0 or -1. */
static int gw_body_addr(const uint8_t *val, size_t vl, int family, char *out, size_t outlen)
{
    char text[INET6_ADDRSTRLEN + 1];
    struct in_addr a4;
    struct in6_addr a6;
    if (vl >= sizeof text)
        return -1;
    memcpy(text, val, vl);
    text[vl] = '\0';
    if (family != AF_INET6 && inet_pton(AF_INET, text, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) != NULL ? 0 : -1;
    if (family != AF_INET && inet_pton(AF_INET6, text, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6))
        return inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen) != NULL ? 0 : -1;
    return -1;
}

int gw_auth_parse_body(const uint8_t *body, size_t len, gw_auth_result_t *out)
{
    struct { size_t off, nlen; } seen[GW_AUTH_BODY_MAX / 2 + 1];
    size_t nseen = 0, pos = 0;
    char v4[INET_ADDRSTRLEN] = "", v6[INET6_ADDRSTRLEN] = "", pr[INET6_ADDRSTRLEN] = "";

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

        /* ipv4, ipv6: that family; peer: either */
        if (nl == 4 && (memcmp(seg, "ipv4", 4) == 0 || memcmp(seg, "ipv6", 4) == 0 ||
                        memcmp(seg, "peer", 4) == 0)) {
            int family = seg[0] == 'p' ? 0 : seg[3] == '6' ? AF_INET6 : AF_INET;
            char *dst = family == 0 ? pr : family == AF_INET ? v4 : v6;
            size_t dlen = family == AF_INET ? sizeof v4 : sizeof v6;
            if (gw_body_addr(val, vl, family, dst, dlen) != 0) {
                gw_set_field(out, seg, nl);
                return -1;
            }
        }
        pos += sl + 1;
        if (pos == len) {   /* trailing '&' */
            strcpy(out->field, "body");
            return -1;
        }
    }
    if (pr[0] && (v4[0] || v6[0])) {
        /* the connection's address and named ones: say which one */
        strcpy(out->field, "peer");
        return -1;
    }
    memcpy(out->ipv4, v4, sizeof v4);
    memcpy(out->ipv6, v6, sizeof v6);
    memcpy(out->peer, pr, sizeof pr);
    return 0;
}

int gw_auth_derive(gw_auth_key_lookup_fn lookup, void *lookup_ctx, const char *kid, size_t kidlen,
                   uint32_t generation, const char *device_id, uint8_t secret[CMN_SECRET_LEN])
{
    /* Stands in for the master key of an unknown kid, at the same cost: a
     * key set's stand-in is computed where its keys are (a token's keys:
     * by the token). */
    static const cmn_master_key_t dummy_key;
    const cmn_master_key_t *key = lookup(lookup_ctx, kid, kidlen);
    int found = key != NULL;
    if (!found)
        key = lookup == gw_auth_keyset_lookup ? cmn_keyset_standin(lookup_ctx) : &dummy_key;
    int rc = cmn_derive_secret(key, kid, kidlen, device_id, CMN_DEVICE_ID_LEN, generation,
                               secret);
    return rc != 0 ? -1 : found;
}

int gw_auth_prepare(const char *authorization, const uint8_t *body, size_t body_len,
                    int64_t server_time, int64_t skew, gw_auth_result_t *out, gw_auth_signed_t *s)
{
    memset(out, 0, sizeof *out);
    memset(s, 0, sizeof *s);
    out->verdict = GW_AUTH_BADREQUEST;

    /* 1. syntax */
    if (gw_auth_parse_authorization(authorization, out, s->sig) != 0) {
        strcpy(out->field, "authorization");
        return -1;
    }
    if (gw_auth_parse_body(body, body_len, out) != 0)
        return -1;
    out->field[0] = '\0';

    /* 2. clock window */
    int64_t d = server_time - out->ts;
    if (d < 0)
        d = -d;
    if (d > skew) {
        out->verdict = GW_AUTH_BADTIME;
        return -1;
    }

    /* 3. what the signature covers: the key reference as sent (its
     * syntax has one text per value) */
    char ref[CMN_KEYREF_MAX + 1];
    int n = cmn_keyref_format(out->kid, out->generation, ref, sizeof ref) < 0 ? -1 :
            snprintf((char *)s->sts, sizeof s->sts, "%s\nPOST\n/v1/update\n%s\n%s\n%lld\n%s\n",
                     GW_AUTH_SCHEME, out->device_id, ref, (long long)out->ts, out->nonce);
    if (n < 0 || (size_t)n + body_len > sizeof s->sts) {
        out->verdict = GW_AUTH_BADAUTH;
        return -1;
    }
    if (body_len > 0)
        memcpy(s->sts + n, body, body_len);
    s->sts_len = (size_t)n + body_len;
    out->verdict = GW_AUTH_OK;
    return 0;
}

int gw_auth_check_signature(gw_auth_key_lookup_fn lookup, void *lookup_ctx, const char *kid,
                            size_t kidlen, uint32_t generation, const char *device_id,
                            const uint8_t *sts, size_t sts_len, const uint8_t sig[32])
{
    uint8_t secret[CMN_SECRET_LEN], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int hmac_ok = 0;

    /* an unknown kid does the same work (derivation, HMAC) */
    int found = gw_auth_derive(lookup, lookup_ctx, kid, kidlen, generation, device_id, secret);
    if (found >= 0 && HMAC(EVP_sha256(), secret, sizeof secret, sts, sts_len, mac, &maclen) != NULL &&
        maclen == 32)
        hmac_ok = CRYPTO_memcmp(mac, sig, 32) == 0;
    cmn_wipe(secret, sizeof secret);
    cmn_wipe(mac, sizeof mac);
    return hmac_ok & (found == 1);
}

int gw_auth_check_password(gw_auth_key_lookup_fn lookup, void *lookup_ctx,
                           const char *device_id, const char *kid, size_t kidlen,
                           uint32_t generation, const uint8_t password[CMN_SECRET_LEN])
{
    uint8_t secret[CMN_SECRET_LEN], want[CMN_SECRET_LEN];
    /* an unknown kid derives under a zero key: the same work */
    int found = gw_auth_derive(lookup, lookup_ctx, kid, kidlen, generation, device_id, secret);
    int same = found >= 0 && cmn_dyndns2_password(secret, generation, want) == 0 &&
               CRYPTO_memcmp(want, password, CMN_SECRET_LEN) == 0;
    cmn_wipe(secret, sizeof secret);
    cmn_wipe(want, sizeof want);
    return same & (found == 1);
}

void gw_auth_verify(const char *authorization, const uint8_t *body, size_t body_len,
                    int64_t server_time, int64_t skew, gw_auth_key_lookup_fn lookup,
                    void *lookup_ctx, gw_auth_result_t *out)
{
    gw_auth_signed_t s;
    if (gw_auth_prepare(authorization, body, body_len, server_time, skew, out, &s) == 0 &&
        !gw_auth_check_signature(lookup, lookup_ctx, out->kid, strlen(out->kid), out->generation,
                                 out->device_id, s.sts, s.sts_len, s.sig))
        out->verdict = GW_AUTH_BADAUTH;
    cmn_wipe(&s, sizeof s);
}
