/* gw_tls: server TLS context (see gw_tls.h). */
#include "gw_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>

#include "cmn_key.h"

/* TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all AEAD. */
#define GW_TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                         "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                         "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define GW_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define GW_TLS_GROUPS "X25519:P-256:P-384"

/* ---- session ticket keys -------------------------------------------------- */

struct gw_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t created;         /* 0: slot unused */
};

static pthread_mutex_t gw_tk_mu = PTHREAD_MUTEX_INITIALIZER;
static struct gw_ticket_key gw_tk[GW_TLS_TICKET_KEYS];    /* [0] is current */

static int gw_tk_new(struct gw_ticket_key *k, time_t now)
{
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_bytes(k->aes, sizeof k->aes) != 1 ||
        RAND_bytes(k->hmac, sizeof k->hmac) != 1)
        return -1;
    k->created = now;
    return 0;
}

/* With gw_tk_mu held: makes a new current key when there is none or it is
 * older than GW_TLS_TICKET_ROTATE_S; the oldest one is dropped. */
static int gw_tk_rotate(time_t now)
{
    if (gw_tk[0].created != 0 && now - gw_tk[0].created < GW_TLS_TICKET_ROTATE_S)
        return 0;
    struct gw_ticket_key fresh;
    if (gw_tk_new(&fresh, now) != 0)
        return -1;
    cmn_wipe(&gw_tk[GW_TLS_TICKET_KEYS - 1], sizeof gw_tk[0]);
    memmove(&gw_tk[1], &gw_tk[0], (GW_TLS_TICKET_KEYS - 1) * sizeof gw_tk[0]);
    gw_tk[0] = fresh;
    cmn_wipe(&fresh, sizeof fresh);
    return 0;
}

static int gw_tk_mac_init(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: 1 ok, 2 ok but renew the ticket,
 * 0 unknown key (full handshake), -1 error. A TLS 1.3 resumption always
 * renews: OpenSSL clients treat a TLS 1.3 session as single use (RFC 8446
 * appendix C.4), so without a fresh ticket every other connection of a
 * device would need a full handshake. */
static int gw_tk_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
                    EVP_MAC_CTX *hctx, int enc)
{
    int rc = -1;
    pthread_mutex_lock(&gw_tk_mu);
    time_t now = time(NULL);
    if (gw_tk_rotate(now) != 0)
        goto out;
    if (enc) {
        if (RAND_bytes(iv, 16) != 1)
            goto out;
        memcpy(key_name, gw_tk[0].name, 16);
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, gw_tk[0].aes, iv) != 1 ||
            gw_tk_mac_init(hctx, gw_tk[0].hmac) != 0)
            goto out;
        rc = 1;
        goto out;
    }
    rc = 0;
    for (int i = 0; i < GW_TLS_TICKET_KEYS; i++) {
        if (gw_tk[i].created == 0 || memcmp(key_name, gw_tk[i].name, 16) != 0)
            continue;
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, gw_tk[i].aes, iv) != 1 ||
            gw_tk_mac_init(hctx, gw_tk[i].hmac) != 0) {
            rc = -1;
            goto out;
        }
        rc = i == 0 && SSL_version(s) != TLS1_3_VERSION ? 1 : 2;
        break;
    }
out:
    pthread_mutex_unlock(&gw_tk_mu);
    return rc;
}

void gw_tls_cleanup(void)
{
    pthread_mutex_lock(&gw_tk_mu);
    cmn_wipe(gw_tk, sizeof gw_tk);
    pthread_mutex_unlock(&gw_tk_mu);
}

/* ---- context -------------------------------------------------------------- */

static void gw_tls_err(char *err, size_t errlen, const char *what, const char *file)
{
    char reason[256] = "unknown reason";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    if (file != NULL)
        snprintf(err, errlen, "%s %s: %s", what, file, reason);
    else
        snprintf(err, errlen, "%s: %s", what, reason);
}

static int gw_tls_load_pair(SSL_CTX *ctx, const char *certificate, const char *private_key,
                            char *err, size_t errlen, int *bad, int bad_cert, int bad_key)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1) {
        gw_tls_err(err, errlen, "cannot load certificate", certificate);
        *bad = bad_cert;
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, private_key, SSL_FILETYPE_PEM) != 1) {
        gw_tls_err(err, errlen, "cannot load private key", private_key);
        *bad = bad_key;
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        gw_tls_err(err, errlen, "private key does not match the certificate", private_key);
        *bad = bad_key;
        return -1;
    }
    return 0;
}

/* ---- OCSP stapling -------------------------------------------------------- */

#define GW_TLS_OCSP_MAX (64 * 1024)

struct gw_staple {
    X509 *cert;             /* the context's certificate it belongs to */
    unsigned char *der;
    size_t len;
    time_t next_update;     /* 0: the response gives none */
};

struct gw_staples {
    struct gw_staple s[2];
};

static int gw_staple_idx = -1;
static pthread_once_t gw_staple_once = PTHREAD_ONCE_INIT;

static void gw_staples_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct gw_staples *st = ptr;
    if (st == NULL)
        return;
    for (int i = 0; i < 2; i++)
        OPENSSL_free(st->s[i].der);
    OPENSSL_free(st);
}

static void gw_staple_init(void)
{
    gw_staple_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, gw_staples_free);
}

/* The status request callback: staples the response of the certificate
 * this handshake uses, while it is current. */
static int gw_staple_cb(SSL *ssl, void *arg)
{
    (void)arg;
    const struct gw_staples *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), gw_staple_idx);
    X509 *cert = SSL_get_certificate(ssl);
    if (st == NULL || cert == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (int i = 0; i < 2; i++) {
        const struct gw_staple *one = &st->s[i];
        if (one->der == NULL || one->cert != cert)
            continue;
        if (one->next_update != 0 && time(NULL) >= one->next_update)
            return SSL_TLSEXT_ERR_NOACK;
        unsigned char *copy = OPENSSL_malloc(one->len);
        if (copy == NULL)
            return SSL_TLSEXT_ERR_NOACK;
        memcpy(copy, one->der, one->len);
        if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)one->len) != 1) {
            OPENSSL_free(copy);
            return SSL_TLSEXT_ERR_NOACK;
        }
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static const char *gw_ocsp_status_name(int status)
{
    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD: return "good";
    case V_OCSP_CERTSTATUS_REVOKED: return "revoked";
    default: return "unknown";
    }
}

/* Reads file as the OCSP response for cert into *out. Returns 0, or -1
 * with the reason in err. */
/* The DER bytes of an OCSP response file (at most GW_TLS_OCSP_MAX) into
 * *der (OPENSSL_malloc'd); 0 or -1 with err. */
static int gw_staple_read(const char *file, unsigned char **der, size_t *len, char *err,
                          size_t errlen)
{
    int rc = -1;
    FILE *f = fopen(file, "rb");
    *der = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "cannot open OCSP response %s: %s", file, strerror(errno));
        return -1;
    }
    *der = OPENSSL_malloc(GW_TLS_OCSP_MAX + 1);
    if (*der == NULL) {
        snprintf(err, errlen, "out of memory");
    } else {
        *len = fread(*der, 1, GW_TLS_OCSP_MAX + 1, f);
        if (ferror(f))
            snprintf(err, errlen, "cannot read OCSP response %s: %s", file, strerror(errno));
        else if (*len > GW_TLS_OCSP_MAX)
            snprintf(err, errlen, "OCSP response %s: larger than %d bytes", file,
                     GW_TLS_OCSP_MAX);
        else
            rc = 0;
    }
    fclose(f);
    if (rc != 0) {
        OPENSSL_free(*der);
        *der = NULL;
    }
    return rc;
}

/* The entry of basic about cert (by serial number), or NULL. */
static OCSP_SINGLERESP *gw_staple_single(OCSP_BASICRESP *basic, X509 *cert)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    for (int i = 0; i < OCSP_resp_count(basic); i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(basic, i);
        ASN1_INTEGER *sn = NULL;
        if (OCSP_id_get0_info(NULL, NULL, NULL, &sn, (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(sr)) ==
                1 && sn != NULL && ASN1_INTEGER_cmp(sn, serial) == 0)
            return sr;
    }
    return NULL;
}

/* The entry's status must be good and its nextUpdate, when given, still to
 * come (*next: 0 when none). 0 or -1 with err. */
static int gw_staple_check_single(const char *file, OCSP_SINGLERESP *single, time_t *next,
                                  char *err, size_t errlen)
{
    int reason = 0;
    ASN1_GENERALIZEDTIME *revoked = NULL, *this_upd = NULL, *next_upd = NULL;
    int status = OCSP_single_get0_status(single, &reason, &revoked, &this_upd, &next_upd);
    *next = 0;
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        snprintf(err, errlen, "OCSP response %s: the certificate's status is %s", file,
                 gw_ocsp_status_name(status));
        return -1;
    }
    if (next_upd == NULL)
        return 0;
    struct tm tm;
    if (ASN1_TIME_to_tm(next_upd, &tm) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "OCSP response %s: unreadable nextUpdate", file);
        return -1;
    }
    *next = timegm(&tm);
    if (*next <= time(NULL)) {
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(err, errlen, "OCSP response %s: expired at %s (fetch a fresh one)", file,
                 when);
        return -1;
    }
    return 0;
}

static int gw_staple_load(const char *file, X509 *cert, struct gw_staple *out, char *err,
                          size_t errlen)
{
    int rc = -1;
    unsigned char *der = NULL;
    size_t len = 0;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *basic = NULL;
    OCSP_SINGLERESP *single;
    time_t next;
    if (gw_staple_read(file, &der, &len, err, errlen) != 0)
        goto out;
    const unsigned char *p = der;
    resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    ERR_clear_error();
    if (resp == NULL || p != der + len) {
        snprintf(err, errlen, "OCSP response %s: not a DER-encoded OCSP response", file);
        goto out;
    }
    int rstatus = OCSP_response_status(resp);
    if (rstatus != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, errlen, "OCSP response %s: the responder answered '%s'", file,
                 OCSP_response_status_str(rstatus));
        goto out;
    }
    basic = OCSP_response_get1_basic(resp);
    if (basic == NULL) {
        ERR_clear_error();
        snprintf(err, errlen, "OCSP response %s: no basic response inside", file);
        goto out;
    }
    if ((single = gw_staple_single(basic, cert)) == NULL) {
        snprintf(err, errlen, "OCSP response %s: is not about this certificate (no entry "
                 "for its serial number)", file);
        goto out;
    }
    if (gw_staple_check_single(file, single, &next, err, errlen) != 0)
        goto out;
    out->cert = cert;
    out->der = der;
    out->len = len;
    out->next_update = next;
    der = NULL;
    rc = 0;
out:
    OPENSSL_free(der);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    return rc;
}

/* Attaches the staples to ctx (which owns them from then on). */
static int gw_staples_attach(SSL_CTX *ctx, struct gw_staples *st, char *err, size_t errlen)
{
    pthread_once(&gw_staple_once, gw_staple_init);
    if (gw_staple_idx < 0 || SSL_CTX_set_ex_data(ctx, gw_staple_idx, st) != 1 ||
        SSL_CTX_set_tlsext_status_cb(ctx, gw_staple_cb) != 1) {
        gw_tls_err(err, errlen, "cannot set up OCSP stapling", NULL);
        return -1;
    }
    return 0;
}

/* The policy every context has: versions, options, suites, groups and
 * resumption (a server cache for TLS 1.2 session ids, and tickets under
 * the process's rotating keys for both versions). 0 or -1 with err. */
static int gw_tls_policy(SSL_CTX *ctx, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "ddns-gateway";
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        gw_tls_err(err, errlen, "cannot set the TLS versions", NULL);
        return -1;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF |
                             SSL_OP_SINGLE_ECDH_USE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, GW_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, GW_TLS13_SUITES) != 1) {
        gw_tls_err(err, errlen, "cannot set the cipher suites", NULL);
        return -1;
    }
    if (SSL_CTX_set1_groups_list(ctx, GW_TLS_GROUPS) != 1) {
        gw_tls_err(err, errlen, "cannot set the key exchange groups", NULL);
        return -1;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_timeout(ctx, 7200);
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, gw_tk_cb) != 1) {
        gw_tls_err(err, errlen, "cannot set the session ticket callback", NULL);
        return -1;
    }
    return 0;
}

/* The certificate(s) and key(s); *cert1, *cert2 (NULL: none) as loaded.
 * Each key type has one slot: a second certificate of the same type would
 * silently replace the first, so it is refused. 0 or -1 with err, *bad. */
static int gw_tls_certs(SSL_CTX *ctx, const gw_tls_files_t *files, X509 **cert1, X509 **cert2,
                        char *err, size_t errlen, int *bad)
{
    *cert2 = NULL;
    if (gw_tls_load_pair(ctx, files->certificate, files->private_key, err, errlen, bad,
                         GW_TLS_BAD_CERT, GW_TLS_BAD_KEY) != 0)
        return -1;
    *cert1 = SSL_CTX_get0_certificate(ctx);
    if (files->certificate2 == NULL || files->private_key2 == NULL)
        return 0;
    EVP_PKEY *pk1 = *cert1 ? X509_get0_pubkey(*cert1) : NULL;
    int type1 = pk1 ? EVP_PKEY_get_base_id(pk1) : 0;
    if (gw_tls_load_pair(ctx, files->certificate2, files->private_key2, err, errlen, bad,
                         GW_TLS_BAD_CERT2, GW_TLS_BAD_KEY2) != 0)
        return -1;
    X509 *second = SSL_CTX_get0_certificate(ctx);
    EVP_PKEY *pk2 = second ? X509_get0_pubkey(second) : NULL;
    if (pk2 != NULL && EVP_PKEY_get_base_id(pk2) == type1) {
        snprintf(err, errlen, "%s has the same key type as [tls] certificate (give one "
                 "ECDSA and one RSA certificate)", files->certificate2);
        *bad = GW_TLS_BAD_CERT2;
        return -1;
    }
    *cert2 = second;
    return 0;
}

/* The OCSP responses stapled for cert1 and cert2, when configured. */
static int gw_tls_staples(SSL_CTX *ctx, const gw_tls_files_t *files, X509 *cert1, X509 *cert2,
                          char *err, size_t errlen, int *bad)
{
    if (files->ocsp_response == NULL && files->ocsp_response2 == NULL)
        return 0;
    struct gw_staples *st = OPENSSL_zalloc(sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (files->ocsp_response != NULL &&
        gw_staple_load(files->ocsp_response, cert1, &st->s[0], err, errlen) != 0) {
        *bad = GW_TLS_BAD_OCSP;
    } else if (files->ocsp_response2 != NULL &&
               (cert2 == NULL ||
                gw_staple_load(files->ocsp_response2, cert2, &st->s[1], err, errlen) != 0)) {
        if (cert2 == NULL)
            snprintf(err, errlen, "ocsp_response2 needs certificate2");
        *bad = GW_TLS_BAD_OCSP2;
    } else if (gw_staples_attach(ctx, st, err, errlen) == 0) {
        return 0;   /* ctx owns st */
    }
    gw_staples_free(NULL, st, NULL, 0, 0, NULL);
    return -1;
}

SSL_CTX *gw_tls_ctx_new(const gw_tls_files_t *files, char *err, size_t errlen, int *bad)
{
    X509 *cert1 = NULL, *cert2 = NULL;
    *bad = GW_TLS_BAD_NONE;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        gw_tls_err(err, errlen, "cannot create TLS context", NULL);
        return NULL;
    }
    if (gw_tls_policy(ctx, err, errlen) != 0 ||
        gw_tls_certs(ctx, files, &cert1, &cert2, err, errlen, bad) != 0 ||
        gw_tls_staples(ctx, files, cert1, cert2, err, errlen, bad) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
