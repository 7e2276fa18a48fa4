/* Certificates from PEM files, for the core (CA chains), estcad (the TLS chain) and estca;
 * and the TLS listener's key when it is kept in a file rather than on the token. */
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

#endif
