/* Certificates from PEM files, for the core (CA chains), estcad (the TLS chain) and estca; a
 * private key named either way (a token URI or a 0600 PEM file), for the TLS listener; and the
 * atomic write of what the CA publishes. */
#ifndef ESTCA_PEM_FILE_H
#define ESTCA_PEM_FILE_H

#include "status.h"
#include "token.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Every certificate in path, in file order; at least one (ESTCA_E_CONFIG otherwise, and when
 * the file cannot be opened). Caller frees with sk_X509_pop_free(..., X509_free). */
int pem_read_certificates(const char *path, STACK_OF(X509) **out, estca_reason *why);

/* The private key ref names: a PKCS#11 URI ("pkcs11:...") on token, or a PEM file that group
 * and others may not read. Caller frees, before the token closes. */
int pem_load_private_key(struct hsm_token *token, const char *ref, EVP_PKEY **out,
                         estca_reason *why);

/* Replaces path (mode 0644) with data through a temporary file, fsync and rename, so that a
 * reader sees the old file or the new one, never half. For published certificates and CRLs. */
int file_write_atomically(const char *path, const void *data, size_t len, estca_reason *why);

#endif
