/* A request body as EST carries a PKCS#10 (RFC 7030 §4.2.1, RFC 8951 §3): base64 (blanks
 * tolerated) of DER that must end exactly where the decoded bytes end. Pure parsing, shared by
 * the handlers and the fuzz harness. */
#ifndef ESTCA_EST_CSR_H
#define ESTCA_EST_CSR_H

#include "status.h"

#include <openssl/x509.h>
#include <stddef.h>

/* ESTCA_E_INVALID with a reason a client may read. Caller frees *out. */
int est_csr_decode(const char *body, size_t len, X509_REQ **out, estca_reason *why);

#endif
