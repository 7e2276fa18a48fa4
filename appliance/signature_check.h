/* Signature checks on the issuance path: a CSR's proof of possession and, after the token
 * signed, the certificate against its CA's key. Same verdicts as X509_REQ_verify and
 * X509_verify; ECDSA signatures from EC keys take a cheaper road to them (signature_check.c). */
#ifndef ESTCA_SIGNATURE_CHECK_H
#define ESTCA_SIGNATURE_CHECK_H

#include <openssl/x509.h>

/* 1 when CSR's signature verifies with KEY (its own public key); 0 or less otherwise, with the
 * reason on OpenSSL's error queue. */
int signature_check_csr(X509_REQ *csr, EVP_PKEY *key);

/* 1 when CERTIFICATE's signature verifies with ISSUER_KEY; 0 or less otherwise, as above. */
int signature_check_certificate(X509 *certificate, EVP_PKEY *issuer_key);

#endif
