/* Proof-of-possession linking (RFC 7030 §3.5, RFC 7894, RFC 9266): a CSR proves it was made
 * for this TLS connection by carrying base64 (RFC 4648, padded) of the connection's channel
 * binding in its challengePassword or estIdentityLinking attribute, so a CSR taken from
 * another connection, or relayed by a man in the middle, is refused.
 *
 * The binding is a fact of the TLS connection, so it is computed here, in the EST front; the
 * policy (off, verify-if-present, required) is the label's, asked of the core. Which binding:
 *   TLS 1.3: tls-exporter (RFC 9266): the exporter with label "EXPORTER-Channel-Binding", an
 *            empty context, 32 bytes;
 *   TLS 1.2: tls-unique (RFC 5929 §3.1): the first Finished message of the handshake (the
 *            client's in a full handshake, the server's in a resumed one), trusted only with
 *            extended master secret (RFC 7627: without it a man in the middle can make two
 *            connections share it, the triple handshake attack);
 * and only while renegotiation is off (RFC 7030 §3.5, RFC 9266 §3), which est_tls.c sets. */
#ifndef ESTCA_EST_CHANNEL_BINDING_H
#define ESTCA_EST_CHANNEL_BINDING_H

#include "core.h"
#include "status.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>

/* id-aa-estIdentityLinking (RFC 7894 §3.3); OpenSSL has no NID for it. */
#define EST_OID_IDENTITY_LINKING "1.2.840.113549.1.9.16.2.58"

/* The tls-exporter length RFC 9266 §2 fixes. */
#define EST_TLS_EXPORTER_LEN 32

/* A connection's channel binding. Wipe it with est_channel_binding_clear. */
struct est_channel_binding {
    const char *type;        /* "tls-unique" or "tls-exporter"; NULL when there is none */
    const char *unavailable; /* type NULL: why none can be trusted, for the client */
    unsigned char data[EVP_MAX_MD_SIZE];
    size_t len;
};

/* Fills *out with ssl's binding (NULL ssl: a connection without TLS). A connection that has
 * none that can be trusted is no error: out->type is NULL and out->unavailable says why.
 * ESTCA_E_CRYPTO when OpenSSL cannot produce one it should have. */
int est_channel_binding_of(SSL *ssl, struct est_channel_binding *out, estca_reason *why);

void est_channel_binding_clear(struct est_channel_binding *binding);

/* Pure: csr's challengePassword and estIdentityLinking against binding, under policy. Each
 * one present must be a single DirectoryString of at most 255 characters equal to base64 of
 * the binding (compared in constant time); REQUIRED needs at least one; OFF looks at
 * nothing. ESTCA_OK: go on; ESTCA_E_POLICY with a reason for the client (it never contains
 * the binding); ESTCA_E_NOMEM, ESTCA_E_CRYPTO. */
int est_pop_linking_check(enum core_pop_linking policy, X509_REQ *csr,
                          const struct est_channel_binding *binding, estca_reason *why);

/* est_channel_binding_of on ssl, then est_pop_linking_check; the binding is wiped. */
int est_pop_linking_verify(enum core_pop_linking policy, X509_REQ *csr, SSL *ssl,
                           estca_reason *why);

#endif
