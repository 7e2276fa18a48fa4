/* Certificates from PEM files, for the core (CA chains), estcad (the TLS chain) and estca. */
#ifndef ESTCA_PEM_FILE_H
#define ESTCA_PEM_FILE_H

#include "status.h"

#include <openssl/x509.h>

/* Every certificate in path, in file order; at least one (ESTCA_E_CONFIG otherwise, and when
 * the file cannot be opened). Caller frees with sk_X509_pop_free(..., X509_free). */
int pem_read_certificates(const char *path, STACK_OF(X509) **out, estca_reason *why);

#endif
