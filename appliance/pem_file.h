/* Certificates from PEM files, for the core (CA chains), estcad (the TLS chain) and estca;
 * the TLS listener's key when it is kept in a file rather than on the token; and the atomic
 * write of what the CA publishes. */
#ifndef ESTCA_PEM_FILE_H
#define ESTCA_PEM_FILE_H

#include "status.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Every certificate in path, in file order; at least one (ESTCA_E_CONFIG otherwise, and when
 * the file cannot be opened). Caller frees with sk_X509_pop_free(..., X509_free). */
int pem_read_certificates(const char *path, STACK_OF(X509) **out, estca_reason *why);

/* The private key in the PEM file at path, which must not be accessible to group or others.
 * Caller frees. */
int pem_read_private_key(const char *path, EVP_PKEY **out, estca_reason *why);

/* Replaces path (mode 0644) with data through a temporary file, fsync and rename, so that a
 * reader sees the old file or the new one, never half. For published certificates and CRLs. */
int file_write_atomically(const char *path, const void *data, size_t len, estca_reason *why);

#endif
