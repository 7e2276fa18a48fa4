/* The CA core's private structures, shared by core.c (start-up, labels, passwords), ca.c (a
 * loaded CA instance) and issuance.c (core_enroll). Not for use outside appliance/. */
#ifndef ESTCA_CORE_INTERNAL_H
#define ESTCA_CORE_INTERNAL_H

#include "config.h"
#include "core.h"
#include "credentials.h"
#include "audit.h"
#include "ledger.h"
#include "profile.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* A CA as loaded at start-up; read-only afterwards, so shared by every worker thread. */
struct ca_instance {
    char *name;
    EVP_PKEY *key;         /* private half on the token */
    X509 *certificate;     /* the CA's own certificate */
    STACK_OF(X509) *chain; /* certificate first, then up to and including the root */
    char *crl_url;         /* CDP of issued certificates (NULL: none) */
    char *ca_issuers_url;  /* AIA caIssuers of issued certificates (NULL: none) */
    char *crl_file;        /* where the CRL is published (NULL: nowhere) */
    int crl_validity_hours;
};

struct core_label {
    char *name;
    const struct ca_instance *ca;
    int validity_days;
    struct core_csr_attrs csr_attrs;
    bool manual_approval;
    int retry_after_seconds;
    bool serverkeygen; /* /serverkeygen allowed */
    bool otp;          /* one-time enrollment codes accepted (otp.h) */
    /* The profile (profile.h). */
    unsigned key_usage_bits; /* 0: by key type */
    int eku_nids[PROFILE_MAX_EKU];
    size_t n_eku; /* 0: clientAuth + serverAuth */
    bool refuse_ca_request;
    int rsa_min_bits;
    char *allowed_dns;                 /* NULL: any subjectAltName */
    X509_NAME *subject_override;       /* NULL: the CSR's subject as it is */
    struct client_trust *client_trust; /* NULL: nobody authenticates by certificate here */
};

struct ca_core {
    struct hsm_token *token; /* borrowed; outlives the core */
    struct ca_instance *cas;
    size_t n_cas;
    struct core_label *labels;
    size_t n_labels;
    const struct core_label *default_label;
    struct credentials *credentials; /* NULL: no users file, no password succeeds */
    struct ledger *ledger;
    struct crl_publisher *crl_publisher; /* NULL until core_start_crl_publisher */
    struct audit_log *audit;             /* NULL: no [audit] path */
    struct authz *authz;                 /* the [policy:] sections (authz.h) */
};

/* crl_publisher.c: stops and frees (NULL: nothing). */
void crl_publisher_free(struct crl_publisher *publisher);

/* The loaded CA named name, or NULL. */
const struct ca_instance *core_find_ca(const struct ca_core *core, const char *name);

/* Fills ca from its configuration: key from the token, certificate and chain from their files,
 * and checks that key and certificate match and that the chain verifies up to a self-signed
 * root. On failure ca is left for ca_instance_clear. */
int ca_instance_load(struct ca_instance *ca, const struct config_ca *config,
                     struct hsm_token *token, estca_reason *why);
void ca_instance_clear(struct ca_instance *ca);

/* issuance.c: the whole issuance path after authentication — CSR signature and policy, build,
 * sign, ledger — for core_enroll (replaces 0) and core_reenroll (replaces: the ledger id of
 * the certificate being renewed). max_valid: how many valid certificates requester may hold,
 * counted again by the ledger as it records this one (0: no limit). */
int core_issue(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
               const char *requester, long replaces, long max_valid, X509 **out, estca_reason *why);

/* The base key policy for a CSR's public key: RSA of 2048 bits or more, EC P-256 or P-384
 * (ESTCA_E_POLICY with the reason otherwise). */
int core_check_csr_key(X509_REQ *csr, estca_reason *why);

/* The subjectAltName of the CSR's extension request (NULL: none). Caller frees. */
int core_csr_subject_alt_name(X509_REQ *csr, GENERAL_NAMES **out, estca_reason *why);

/* Whether label offers /serverkeygen at all, that is has serverkeygen = yes, whatever its
 * approval setting (ESTCA_E_FORBIDDEN with the reason if not). Asked by core_serverkeygen and,
 * before it, by core_server_key_recipient. */
int core_serverkeygen_offered(const struct core_label *label, estca_reason *why);

/* core_audit.c: the audit log ([audit] path; core->audit NULL when there is none). */
int core_audit_open(struct ca_core *core, const struct estca_config *config, estca_reason *why);
/* Records the outcome of operation ("simpleenroll", ...) and returns rc unchanged. */
int core_audit_issuance(struct ca_core *core, const char *operation, const struct core_label *label,
                        const char *requester, int rc, X509 *certificate, const estca_reason *why);
void core_audit_login_failure(const struct ca_core *core, const char *user);
/* An authorization decision (authz.c): policy "-" when none applied; rc ESTCA_OK: allowed. */
void core_audit_authz(struct ca_core *core, const char *operation, const struct core_label *label,
                      const char *identity, const char *policy, int rc, const char *reason);
/* A one-time code refused before issuance (otp.c): who is "otp-N" (HTTP Basic) or
 * "otpChallenge" (in the CSR); reason never holds the code. */
void core_audit_otp_refused(const struct ca_core *core, const struct core_label *label,
                            const char *who, const char *reason);

/* approval.c: labels with approval = manual. approval_admit files or finds the CSR's request
 * of kind (an enrollment, or serverkeygen):
 * ESTCA_E_PENDING or ESTCA_E_FORBIDDEN (rejected) stop the issuance; ESTCA_OK with *issued
 * set returns the certificate issued for it before; ESTCA_OK with *claimed set means this
 * caller issues it now and then reports with approval_complete (issue_rc: how it went).
 * A serverkeygen request is never answered from *issued: ESTCA_E_FORBIDDEN once it was
 * delivered (its key is gone), and whenever requester is not the one who filed it. */
int approval_admit(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                   const char *requester, enum ledger_request_kind kind, long *claimed,
                   X509 **issued, estca_reason *why);
int approval_complete(struct ca_core *core, const struct core_label *label, long request,
                      X509 *certificate, int issue_rc, estca_reason *why);

#endif
