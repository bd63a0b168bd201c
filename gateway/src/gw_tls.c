/* gw_tls: server TLS context (see gw_tls.h). */
#include "gw_tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

/* TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all AEAD. */
#define GW_TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                         "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                         "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

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

SSL_CTX *gw_tls_ctx_new(const char *certificate, const char *private_key, char *err,
                        size_t errlen, int *bad_key)
{
    *bad_key = 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        gw_tls_err(err, errlen, "cannot create TLS context", NULL);
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        gw_tls_err(err, errlen, "cannot set the minimum TLS version", NULL);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF |
                             SSL_OP_SINGLE_ECDH_USE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, GW_TLS12_CIPHERS) != 1) {
        gw_tls_err(err, errlen, "cannot set the cipher list", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1) {
        gw_tls_err(err, errlen, "cannot load certificate", certificate);
        goto fail;
    }
    *bad_key = 1;
    if (SSL_CTX_use_PrivateKey_file(ctx, private_key, SSL_FILETYPE_PEM) != 1) {
        gw_tls_err(err, errlen, "cannot load private key", private_key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        gw_tls_err(err, errlen, "private key does not match the certificate", private_key);
        goto fail;
    }
    *bad_key = 0;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
