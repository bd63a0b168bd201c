/* gw_tls: the server's TLS policy.
 *
 * Owns the SSL_CTX: certificate chain and private key loading (and the check
 * that they match), TLS 1.2 as the minimum, strong AEAD cipher suites only,
 * no compression, no renegotiation, and SSL_OP_IGNORE_UNEXPECTED_EOF so that
 * a peer closing without close_notify is an ordinary end of stream. */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Returns a server SSL_CTX, or NULL with a message in err (naming the file
 * and OpenSSL's reason) and *bad_key set to 1 when the private key (rather
 * than the certificate) is at fault. */
SSL_CTX *gw_tls_ctx_new(const char *certificate, const char *private_key, char *err,
                        size_t errlen, int *bad_key);

#endif
