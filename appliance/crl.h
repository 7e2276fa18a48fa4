/* Certificate revocation lists of a CA whose key is on the token, built from the ledger's
 * revocations (RFC 5280 §5): v2, CRL number from the ledger, authority key identifier, a
 * reason code per entry (none for "unspecified"), signed on the token. */
#ifndef ESTCA_CRL_H
#define ESTCA_CRL_H

#include "ledger.h"
#include "status.h"

#include <openssl/x509.h>

/* RFC 5280 CRLReason from its ASN.1 name ("keyCompromise"); -1 for an unknown name. */
int crl_reason_from_name(const char *name);

/* Builds and signs the CRL of CA ca_name (certificate ca_certificate, key ca_key), its
 * nextUpdate validity_hours from now. Consumes a CRL number. Caller frees *out. */
int crl_build(struct ledger *ledger, const char *ca_name, X509 *ca_certificate, EVP_PKEY *ca_key,
              int validity_hours, X509_CRL **out, estca_reason *why);

#endif
