/* A label's certificate profile beyond the base policy: the key usages and extended key usages
 * its certificates carry (from the names in the configuration), and what a CSR may ask for.
 * A CSR's extensions are never copied: only its subjectAltName is used (issuance.c); the
 * checks here refuse what would otherwise be silently dropped and matter to the requester. */
#ifndef ESTCA_PROFILE_H
#define ESTCA_PROFILE_H

#include "status.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>

#define PROFILE_MAX_EKU 8

/* "digitalSignature,keyEncipherment" (RFC 5280 names, case-sensitive) to bits: bit i set for
 * KeyUsage bit i. NULL or empty: 0 (the profile's default). ESTCA_E_CONFIG naming a bad word. */
int profile_parse_key_usage(const char *list, unsigned *bits, estca_reason *why);

/* "clientAuth,serverAuth,codeSigning,emailProtection,timeStamping,OCSPSigning,cmcRA" or dotted
 * OIDs to NIDs; at most PROFILE_MAX_EKU. NULL or empty: *n = 0 (the default). */
int profile_parse_extended_key_usage(const char *list, int nids[PROFILE_MAX_EKU], size_t *n,
                                     estca_reason *why);

/* The CSR's requested extensions: CA:TRUE in basicConstraints is refused when refuse_ca (else
 * ignored: end-entity certificates are always CA:FALSE), and so is any critical extension
 * other than subjectAltName, keyUsage, extendedKeyUsage and basicConstraints (its requester
 * relies on it and would not get it). ESTCA_E_POLICY with the reason. */
int profile_check_csr_extensions(X509_REQ *csr, bool refuse_ca, estca_reason *why);

/* "/CN=dev1/O=Test" or "CN=dev1,O=Test" (no escapes) into a new X509_NAME (also used by
 * estca for the names of CA and TLS certificates). */
int profile_parse_name(const char *text, X509_NAME **out, estca_reason *why);

/* allowed_dns (NULL: no restriction) lists patterns ("*.dev.example.com", "gw.example.com");
 * with it every subjectAltName entry must be a DNS name matching one. ESTCA_E_POLICY. */
int profile_check_names(const char *allowed_dns, const GENERAL_NAMES *san, estca_reason *why);

/* The subject to issue: requested, with every attribute type override (may be NULL) names
 * replaced by override's values. Caller frees *out. */
int profile_apply_subject(const X509_NAME *requested, const X509_NAME *override, X509_NAME **out,
                          estca_reason *why);

#endif
