/* gw_tls: the server's TLS policy.
 *
 * Owns the SSL_CTX: certificate chain and private key loading (and the check
 * that they match), optionally a second certificate and key of another type
 * (ECDSA and RSA side by side; OpenSSL picks the one the client supports),
 * TLS 1.2 and 1.3 only, forward-secret AEAD cipher suites only, the key
 * exchange groups (X25519, P-256, P-384), no compression, no renegotiation,
 * SSL_OP_IGNORE_UNEXPECTED_EOF so that a peer closing without close_notify
 * is an ordinary end of stream, and session resumption: a server-side
 * session cache plus session tickets whose keys are the gateway's own
 * (AES-256-CBC + HMAC-SHA256, random at start), shared by every context the
 * process creates (so a reload keeps tickets valid) and rotated every
 * GW_TLS_TICKET_ROTATE_S seconds; the previous GW_TLS_TICKET_KEYS - 1 keys
 * still decrypt (and the ticket is then renewed under the current key).
 * Every TLS 1.3 resumption gets a fresh ticket (clients use each once).
 *
 * Also owns OCSP stapling: a DER OCSP response per certificate, fetched by
 * the operator (for example `openssl ocsp ... -respout`) and loaded with the
 * context. It must be a successful response naming the certificate's serial
 * with status good and must not have expired; it is stapled to every
 * handshake that asks for it while its nextUpdate lies ahead (after that
 * nothing is stapled until a reload brings a fresh one). */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#define GW_TLS_TICKET_ROTATE_S (12 * 3600)
#define GW_TLS_TICKET_KEYS 3

enum gw_tls_bad {
    GW_TLS_BAD_NONE = 0,
    GW_TLS_BAD_CERT = 1,
    GW_TLS_BAD_KEY = 2,
    GW_TLS_BAD_CERT2 = 3,
    GW_TLS_BAD_KEY2 = 4,
    GW_TLS_BAD_OCSP = 5,
    GW_TLS_BAD_OCSP2 = 6,
};

/* The files of a context; NULL for what is not used (certificate and
 * private_key are required). */
typedef struct gw_tls_files {
    const char *certificate, *private_key;
    const char *certificate2, *private_key2;
    const char *ocsp_response, *ocsp_response2;  /* DER OCSP responses */
} gw_tls_files_t;

/* Returns a server SSL_CTX, or NULL with a message in err (naming the file
 * and the reason) and *bad saying which file is at fault (enum
 * gw_tls_bad). */
SSL_CTX *gw_tls_ctx_new(const gw_tls_files_t *files, char *err, size_t errlen, int *bad);

/* Frees the ticket keys (at exit). */
void gw_tls_cleanup(void);

#endif
