/* The appliance's configuration: one INI file parsed with libinih into a read-only struct.
 * Relative paths in the file are resolved against the file's directory. No secret ever
 * appears here: PINs and password hashes live in their own files.
 *
 *   [token]    module, uri, pin_file, sessions (token operations at once: libp11's pool)
 *   [server]   listen (host:port; port 0 = any free port), tls_certificate (PEM chain,
 *              leaf first), tls_key (PKCS#11 URI of a key on the token, or a PEM private
 *              key file of mode 0600, which keeps the listener up while the token is
 *              not), threads, max_body (bytes),
 *              request_timeout_ms (the TLS handshake and a whole request must arrive
 *              within it), default_label, max_connections_per_address (connections
 *              of one source address in their TLS handshake or first request at
 *              once, its others wait without a worker; 0: no limit; default
 *              threads / 2, at least 1)
 *   [ledger]   path
 *   [auth]     users_file
 *   [ca:NAME]  key (PKCS#11 URI), certificate (PEM), chain (PEM up to the root; may start
 *              with the CA certificate itself)
 *   [label:NAME] ca, validity_days, csr_key_type (rsa:2048 rsa:3072 rsa:4096 ec:P-256
 *              ec:P-384), csr_hash (sha256 sha384 sha512): what /csrattrs advertises
 *              (RFC 8951 §4); csr_key_type is enforced;
 *              pop_linking (verify-if-present, required, off: the CSR's challengePassword or
 *              estIdentityLinking against the TLS channel binding, RFC 7030 §3.5; required
 *              is also listed by /csrattrs, and cannot go with approval = manual);
 *              csr_require_challenge_password (yes/no) is its old name: yes = required,
 *              no = verify-if-present, never both keys at once;
 *              approval (auto/manual), retry_after (seconds a 202 asks the client to wait),
 *              serverkeygen (yes/no, default no: /serverkeygen, RFC 7030 §4.4);
 *              otp (yes/no, default no: one-time codes of estca otp issue, as the password
 *              of user otp-N or in the CSR's otpChallenge, RFC 7894; otp.h);
 *              the profile: key_usage, extended_key_usage (comma-separated names),
 *              csr_ca_request (refuse/ignore a CSR asking for CA:TRUE), rsa_min_bits,
 *              allowed_dns (patterns DNS names must match), subject_override (fixed
 *              subject attributes)
 *   [ca:NAME]  also crl_url and ca_issuers_url (put in issued certificates), crl_file
 *              (where the CRL is published), crl_validity_hours
 *   [server]   also crl_listen (host:port, plain HTTP, serves /crl/<ca>.crl), metrics_listen
 *              (host:port, plain HTTP, serves /metrics)
 *   [audit]    path, signer (a CA name), checkpoint_every (lines)
 *   [label:NAME] also client certificates (client_trust.h): cert_auth (yes/no, default no:
 *              /simpleenroll and /serverkeygen by a TLS client certificate alone),
 *              client_ca, client_crl (PEM files), ra_ca (PEM: RA anchors, id-kp-cmcRA)
 *   [policy:NAME] authorization (authz.h), in file order: identities (patterns, required),
 *              labels, subject, san (patterns with ${user} and ${cn}), max_certificates
 */
#ifndef ESTCA_CONFIG_H
#define ESTCA_CONFIG_H

#include "status.h"

#include <stddef.h>

struct config_ca {
    char *name;
    char *key_uri;
    char *certificate_file;
    char *chain_file;       /* PEM up to the root; may start with the CA certificate itself (then
                               it is skipped). NULL: the CA certificate is self-signed (a root) */
    char *crl_url;          /* CRL distribution point put in issued certificates (NULL: none) */
    char *ca_issuers_url;   /* AIA caIssuers put in issued certificates (NULL: none) */
    char *crl_file;         /* where estcad publishes the CA's CRL (DER; NULL: nowhere) */
    int crl_validity_hours; /* nextUpdate - thisUpdate */
};

/* What a label does with a CSR asking for basicConstraints CA:TRUE. */
enum config_ca_request {
    CONFIG_CA_REQUEST_REFUSE, /* 400 with the reason */
    CONFIG_CA_REQUEST_IGNORE, /* issue with CA:FALSE, as always */
};

/* A label's CSR requirements, as /csrattrs advertises them. NONE: not constrained. */
enum config_csr_key {
    CONFIG_CSR_KEY_NONE,
    CONFIG_CSR_KEY_RSA_2048,
    CONFIG_CSR_KEY_RSA_3072,
    CONFIG_CSR_KEY_RSA_4096,
    CONFIG_CSR_KEY_EC_P256,
    CONFIG_CSR_KEY_EC_P384,
};

enum config_csr_hash {
    CONFIG_CSR_HASH_NONE,
    CONFIG_CSR_HASH_SHA256,
    CONFIG_CSR_HASH_SHA384,
    CONFIG_CSR_HASH_SHA512,
};

/* Proof-of-possession linking (RFC 7030 §3.5): whether a CSR's challengePassword or
 * estIdentityLinking (RFC 7894) must carry the request's TLS channel binding. The checking
 * default is 0, so that a label built by hand verifies too (§3.5 MUST). */
enum config_pop_linking {
    CONFIG_POP_LINKING_VERIFY_IF_PRESENT, /* checked when the CSR carries one (the default) */
    CONFIG_POP_LINKING_REQUIRED,          /* must be present and match; listed by /csrattrs */
    CONFIG_POP_LINKING_OFF,               /* neither attribute is looked at */
};

struct config_label {
    char *name;
    char *ca_name;
    int validity_days;
    int csr_key_type;                   /* enum config_csr_key */
    int csr_hash;                       /* enum config_csr_hash */
    int pop_linking;                    /* enum config_pop_linking */
    int csr_require_challenge_password; /* 1 exactly when pop_linking is required (old name) */
    int manual_approval;                /* 0: issue at once; 1: an operator approves first */
    int retry_after_seconds;            /* what a 202 tells the client to wait */
    int serverkeygen;                   /* 0 or 1: /serverkeygen allowed */
    int otp;                            /* 0 or 1: one-time enrollment codes accepted (otp.h) */
    char *key_usage;                    /* "digitalSignature,keyEncipherment" (NULL: by key type) */
    char *extended_key_usage;           /* "clientAuth,serverAuth" (NULL: those two) */
    int csr_ca_request;                 /* enum config_ca_request */
    int rsa_min_bits;                   /* smallest RSA key accepted in a CSR */
    char *allowed_dns;      /* "*.dev.example.com, gw.example.com": DNS SANs must match one */
    char *subject_override; /* "/O=Example/OU=Devices": these attributes replace the CSR's */
    int cert_auth;          /* 0 or 1: enrollment by a verified TLS client certificate alone */
    char *client_ca;        /* PEM anchors and intermediates for client certificates (NULL: none) */
    char *client_crl;       /* PEM or DER CRLs for client_ca (NULL: no CRL checking) */
    char *ra_ca;            /* PEM anchors of RA certificates (NULL: no RAs) */
};

/* An authorization policy (authz.h); the lists as written, split by authz. */
struct config_policy {
    char *name;
    char *identities;     /* patterns over "user:...", "cert:...", "ra:..." (required) */
    char *labels;         /* NULL: every label */
    char *subject;        /* NULL: any subject */
    char *san;            /* NULL: any subjectAltName */
    int max_certificates; /* valid certificates at once; 0: no limit */
};

struct estca_config {
    char *path; /* the file this came from */

    char *module_path;
    char *token_uri;
    char *pin_file;     /* NULL: $CREDENTIALS_DIRECTORY/token-pin */
    int token_sessions; /* token operations at once, 1..16 (libp11's pool per slot) */

    char *listen;
    char *tls_certificate_file;
    char *tls_key; /* a PKCS#11 URI ("pkcs11:...") or a PEM key file (mode 0600) */
    int threads;
    size_t max_body;
    int request_timeout_ms;
    int max_connections_per_address; /* handshakes + first requests per address; 0: none */
    char *default_label;

    char *ledger_path;
    char *users_file;

    char *crl_listen; /* host:port of the plain-HTTP listener serving /crl/<ca>.crl (NULL: none) */
    char *metrics_listen; /* host:port of the plain-HTTP listener serving /metrics (NULL: none) */

    char *audit_path;   /* NULL: no audit log */
    char *audit_signer; /* the CA whose key signs checkpoints (NULL: the default label's) */
    int audit_checkpoint_every;

    struct config_ca *cas;
    size_t n_cas;
    struct config_label *labels;
    size_t n_labels;
    struct config_policy *policies; /* in file order: the first that names an identity decides */
    size_t n_policies;
};

/* Parses and validates path. Caller frees with config_free. Unknown sections or keys are
 * errors (a typo must not silently weaken policy). */
int config_load(const char *path, struct estca_config **out, estca_reason *why);
void config_free(struct estca_config *config);

const struct config_ca *config_find_ca(const struct estca_config *config, const char *name);
const struct config_label *config_find_label(const struct estca_config *config, const char *name);

/* The CA whose key signs the audit log's checkpoints: [audit] signer, else the default
 * label's CA. */
const struct config_ca *config_audit_signer(const struct estca_config *config);

#endif
