/* The CA core as the EST front sees it: labels, their CA chains, password authentication and
 * issuance. Built once at start-up from the configuration and an open token; every call
 * after that is safe from many threads and re-reads no file. */
#ifndef ESTCA_CORE_H
#define ESTCA_CORE_H

#include "config.h"
#include "status.h"
#include "token.h"

#include <openssl/x509.h>
#include <stdbool.h>

struct ca_core;
struct core_label;

/* Loads every CA (key on the token, certificate and chain from files, checks that key and
 * certificate match), the labels, the credentials and the ledger. The token must outlive the
 * core. Caller frees with core_free. */
int core_open(const struct estca_config *config, struct hsm_token *token, struct ca_core **out,
              estca_reason *why);
void core_free(struct ca_core *core);

/* NULL name: the default label. NULL result: no such label. */
const struct core_label *core_find_label(const struct ca_core *core, const char *name);
const char *core_label_name(const struct core_label *label);

/* Seconds a client waiting for an operator's approval is asked to wait (Retry-After). */
int core_label_retry_after(const struct core_label *label);

/* Every label, for start-up work over all of them: index 0 .. core_label_count() - 1. */
size_t core_label_count(const struct ca_core *core);
const struct core_label *core_label_at(const struct ca_core *core, size_t index);

/* The label's CA certificates for /cacerts: the issuing CA first, then up to its root.
 * Borrowed; valid for the core's lifetime. */
STACK_OF(X509) *core_label_ca_certificates(const struct core_label *label);

/* What a label requires of a CSR (RFC 8951 §4), for /csrattrs to advertise, and how the EST
 * front checks proof-of-possession linking. Not DER: the encoding is the EST front's
 * business, as is the channel binding, a fact of the TLS connection the core never sees. */
enum core_csr_key_algorithm {
    CORE_CSR_KEY_ANY, /* not constrained (beyond the base policy: RSA >= 2048, P-256, P-384) */
    CORE_CSR_KEY_RSA,
    CORE_CSR_KEY_EC,
};

/* Proof-of-possession linking (RFC 7030 §3.5): what the EST front, which alone sees the TLS
 * connection, does with a CSR's challengePassword and estIdentityLinking (RFC 7894). 0 is the
 * checking default, so a zeroed struct verifies too. */
enum core_pop_linking {
    CORE_POP_LINKING_VERIFY_IF_PRESENT, /* each one present must equal the channel binding */
    CORE_POP_LINKING_REQUIRED,          /* and one of them must be present */
    CORE_POP_LINKING_OFF,               /* neither is looked at */
};

struct core_csr_attrs {
    enum core_csr_key_algorithm key_algorithm;
    int rsa_bits;            /* CORE_CSR_KEY_RSA: exactly this modulus size (enforced) */
    int ec_curve_nid;        /* CORE_CSR_KEY_EC: NID_X9_62_prime256v1 or NID_secp384r1 */
    int hash_nid;            /* NID_sha256, NID_sha384, NID_sha512; NID_undef: any */
    bool challenge_password; /* list challengePassword (1.2.840.113549.1.9.7) */
    bool identity_linking;   /* list id-aa-estIdentityLinking (1.2.840.113549.1.9.16.2.58) */
    bool otp_challenge;      /* list id-aa-otpChallenge (RFC 7894): the label takes codes */
    enum core_pop_linking pop_linking; /* both listed exactly when REQUIRED */
};

/* Fills *out with label's CSR requirements. */
void core_label_csr_attrs(const struct core_label *label, struct core_csr_attrs *out);

/* Whether attrs asks for anything at all (false: /csrattrs has nothing to list). */
bool core_csr_attrs_any(const struct core_csr_attrs *attrs);

/* ESTCA_OK or ESTCA_E_AUTH. */
int core_check_password(struct ca_core *core, const char *user, const char *password);

/* Issues a certificate for csr under label: verifies the CSR signature (proof of possession),
 * applies the label's profile (subject and subjectAltName from the CSR, CA:FALSE, fixed key
 * usage and EKU, validity bounded by the CA's; the key type and size the label's csr_key_type
 * names, if any), draws a 16-byte serial from the token,
 * signs on the token, and commits to the ledger before returning.
 * requester is the authenticated identity ("user:alice"). Caller frees *out.
 * Errors: ESTCA_E_INVALID (bad CSR), ESTCA_E_POLICY, ESTCA_E_UNAVAILABLE (the token, or a
 * ledger that cannot write: nothing was issued). On a label with approval = manual the first
 * request is filed and answered ESTCA_E_PENDING until an operator decides (estca request
 * approve|reject); the identical CSR posted again then gets the certificate, or ESTCA_E_FORBIDDEN
 * if rejected. */
int core_enroll(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                const char *requester, X509 **out, estca_reason *why);

/* Re-enrollment (RFC 7030 §4.2.2). current is the TLS client certificate the client
 * authenticated with, presented_chain what else it sent (may be NULL). current must have been
 * issued by the label's CA, be valid now for TLS client use, and be in the ledger, not
 * revoked; the CSR's subject and subjectAltName must equal current's. Then issues as
 * core_enroll does, recording that the new certificate replaces current (same key: a renewal,
 * a new key: a rekey). Errors: ESTCA_E_AUTH (current not acceptable), ESTCA_E_FORBIDDEN
 * (revoked), ESTCA_E_INVALID (names differ), and those of core_enroll. */
int core_reenroll(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                  X509 *current, STACK_OF(X509) *presented_chain, const char *requester, X509 **out,
                  estca_reason *why);

/* Server-side key generation (RFC 7030 §4.4). The token generates the key pair (see
 * hsm_keygen_device); the CSR supplies only the subject and subjectAltName: its public key
 * and signature are ignored (§4.4.1), but it must parse. Key type: the label's csr_key_type
 * if set, else the CSR's key type if the base policy allows it, else ec:P-256. The
 * certificate is built, signed and recorded in the ledger as core_enroll does. On success
 * *pkcs8_out is the DER PKCS#8 PrivateKeyInfo: the caller wipes and frees it with
 * OPENSSL_clear_free once the response is written, and frees *cert_out. Sent as it is, or
 * encrypted with core_envelope_server_key when core_server_key_recipient (asked first) names
 * a recipient.
 * With approval = manual the first request is filed (ESTCA_E_PENDING) and no key is made;
 * after approval the identical CSR from the same requester gets a fresh key; after rejection,
 * after delivery (the key is not kept), or from another requester: ESTCA_E_FORBIDDEN.
 * Errors: ESTCA_E_FORBIDDEN (also: the label lacks serverkeygen = yes), ESTCA_E_UNAVAILABLE
 * (token), and those of core_enroll. */
int core_serverkeygen(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                      const char *requester, X509 **cert_out, unsigned char **pkcs8_out,
                      size_t *pkcs8_len, estca_reason *why);

/* Whether the serverkeygen CSR asks for the key to be encrypted (RFC 7030 §4.4.1.2), and to
 * whom; to be asked before core_serverkeygen, so that a request the server cannot honour
 * leaves no certificate behind. presented: the TLS client certificate (NULL: none), the only
 * key this server knows a client by. *recipient NULL: no encryption asked; else presented
 * (borrowed), whose subjectKeyIdentifier the CSR's AsymmetricDecryptKeyIdentifier names.
 * Errors: ESTCA_E_FORBIDDEN (label offers no serverkeygen, as core_serverkeygen would say),
 * ESTCA_E_INVALID (the CSR names a key the server lacks: no client certificate, another SKI,
 * or a symmetric DecryptKeyIdentifier; or the attribute is malformed), ESTCA_E_POLICY (the
 * client certificate's key is neither RSA nor EC). */
int core_server_key_recipient(const struct core_label *label, X509_REQ *csr, X509 *presented,
                              X509 **recipient, estca_reason *why);

/* The encrypted key of §4.4.2: pkcs8 as an RFC 5958 AsymmetricKeyPackage in CMS SignedData
 * signed by label's CA on the token (its certificate included), in CMS EnvelopedData for
 * recipient (AES-256-CBC; RSA-OAEP key transport or ECDH key agreement). *der is the DER
 * ContentInfo, caller frees with OPENSSL_free; the clear copies made on the way are wiped.
 * Errors: ESTCA_E_TOKEN (the CA could not sign), ESTCA_E_CRYPTO, ESTCA_E_NOMEM. */
int core_envelope_server_key(const struct core_label *label, const unsigned char *pkcs8, size_t len,
                             X509 *recipient, unsigned char **der, size_t *der_len,
                             estca_reason *why);

/* What the CRL publisher reports (on its own thread): a CRL signed (detail: its number and
 * entries) or a failure to sign one (detail: why; the last CRL keeps being served). */
typedef void core_crl_event_fn(void *arg, const char *ca_name, bool signed_ok, const char *detail);

/* Starts re-signing every CA's CRL in the background (estcad): at once, within a few seconds
 * of a revocation in the ledger (estca cert revoke), and when half its validity has passed.
 * Each CRL is kept in memory for core_crl_der and written to the CA's crl_file (atomically).
 * Stops in core_free. */
int core_start_crl_publisher(struct ca_core *core, core_crl_event_fn *on_event, void *arg,
                             estca_reason *why);

/* The latest CRL of CA ca_name, DER; caller frees with OPENSSL_free. ESTCA_E_NOT_FOUND: no
 * such CA; ESTCA_E_UNAVAILABLE: none signed yet. */
int core_crl_der(struct ca_core *core, const char *ca_name, unsigned char **der, size_t *len,
                 estca_reason *why);

/* Records an event of estcad's in the audit log ([audit] path; nothing without one):
 * "start", "token-unavailable", "token-recovered"... detail is free text, never a secret. */
void core_audit_note(struct ca_core *core, const char *event, const char *detail);

/* Records that the EST front refused a request to issue before asking the core (bad or
 * missing credentials, throttled, malformed): operation ("simpleenroll"), label (may be
 * NULL), requester and peer (may be NULL), the HTTP status and the reason given. */
void core_audit_refusal(struct ca_core *core, const char *operation, const struct core_label *label,
                        const char *requester, const char *peer, int http_status,
                        const char *reason);

/* ---- identities and authorization (issue 5: client certificates, RAs, policies) ---- */

/* Who asks, as the EST front authenticated them. */
struct core_identity {
    const char *name;  /* "user:alice", "cert:CN=dev1,O=Example", "ra:CN=ra1,O=Example", "otp:7" */
    X509 *certificate; /* the TLS client certificate behind a cert: or ra: name; else NULL */
};

/* TLS client-certificate authentication on label (client_trust.h): an RA when certificate
 * verifies against the label's ra_ca and carries id-kp-cmcRA ("ra:<RFC 2253 subject>"), a
 * device when the label has cert_auth = yes and it verifies against client_ca (with
 * client_crl) or is one of the label's CA's own, unrevoked in the ledger ("cert:<subject>").
 * chain: what else the client sent (may be NULL). identity gets the name.
 * ESTCA_E_NOT_FOUND: the label authenticates nobody by certificate, or there is none (go on
 * with HTTP Basic); ESTCA_E_AUTH: a certificate that does not verify (why says why);
 * ESTCA_E_FORBIDDEN: revoked, or verifies as an RA's without id-kp-cmcRA. */
int core_authenticate_certificate(struct ca_core *core, const struct core_label *label,
                                  X509 *certificate, STACK_OF(X509) *chain, char *identity,
                                  size_t size, estca_reason *why);

/* core_enroll and core_serverkeygen for who, whose authorization policy (authz.h) is checked
 * first: ESTCA_E_FORBIDDEN with the reason when it does not allow the request. The plain
 * calls are these with who = {requester, NULL}. */
int core_enroll_as(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                   const struct core_identity *who, X509 **out, estca_reason *why);
int core_serverkeygen_as(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                         const struct core_identity *who, X509 **cert_out,
                         unsigned char **pkcs8_out, size_t *pkcs8_len, estca_reason *why);

#endif
