/* core_enroll (and core_issue, which re-enrollment shares): a CSR and an authenticated identity in,
 * a certificate out, durably recorded in the ledger before the caller sees it. Shares only
 * read-only state, so it runs on many worker threads at once; the token and the ledger serialise
 * what they must. */
#include "authz.h"
#include "certbuild.h"
#include "core_internal.h"
#include "keygen.h"
#include "otp.h"
#include "signature_check.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <time.h>

#define SERIAL_OCTETS 16    /* 128 random bits, well above CA/B Forum's 64 */
#define BACKDATE_SECONDS 60 /* tolerate clients whose clock is a little behind */
#define SECONDS_PER_DAY 86400
#define MIN_RSA_BITS 2048

/* The subject names taken from the CSR. */
/* The names to issue: the CSR's, after the label's profile. Both owned. */
struct requested_names {
    X509_NAME *subject;
    GENERAL_NAMES *san; /* NULL: none requested */
};

static void names_clear(struct requested_names *names)
{
    X509_NAME_free(names->subject);
    GENERAL_NAMES_free(names->san);
    *names = (struct requested_names){0};
}

static int verify_signature(X509_REQ *csr, estca_reason *why)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    if (key == NULL)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "CSR public key cannot be decoded");
    /* Proof of possession: the requester holds the private key. */
    if (signature_check_csr(csr, key) != 1)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "CSR signature does not verify");
    return ESTCA_OK;
}

static int check_ec_curve(EVP_PKEY *key, estca_reason *why)
{
    char curve[64];
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve,
                                        NULL)) {
        ERR_clear_error();
        return estca_fail(why, ESTCA_E_POLICY, "EC key without a named curve is not allowed");
    }
    int nid = OBJ_sn2nid(curve);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(curve);
    if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1)
        return estca_fail(why, ESTCA_E_POLICY, "EC curve %s is not allowed (P-256 or P-384 only)",
                          curve);
    return ESTCA_OK;
}

/* RSA of at least 2048 bits, or EC on P-256 or P-384; nothing else. */
int core_check_csr_key(X509_REQ *csr, estca_reason *why)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    if (key == NULL)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "CSR public key cannot be decoded");
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(key) < MIN_RSA_BITS)
            return estca_fail(why, ESTCA_E_POLICY, "RSA key of %d bits is too short (minimum %d)",
                              EVP_PKEY_get_bits(key), MIN_RSA_BITS);
        return ESTCA_OK;
    case EVP_PKEY_EC:
        return check_ec_curve(key, why);
    default:
        return estca_fail(why, ESTCA_E_POLICY,
                          "key type %s is not allowed (RSA or EC P-256/P-384 only)",
                          OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
    }
}

static int curve_nid(EVP_PKEY *key)
{
    char curve[64];
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve,
                                        NULL)) {
        ERR_clear_error();
        return NID_undef;
    }
    int nid = OBJ_sn2nid(curve);
    return nid != NID_undef ? nid : EC_curve_nist2nid(curve);
}

/* The label's csr_key_type, which /csrattrs advertises, as a rule: after core_check_csr_key. */
static int check_label_key(const struct core_label *label, X509_REQ *csr, estca_reason *why)
{
    const struct core_csr_attrs *want = &label->csr_attrs;
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    int type = EVP_PKEY_get_base_id(key);
    if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) < label->rsa_min_bits)
        return estca_fail(why, ESTCA_E_POLICY, "label %s requires RSA keys of %d bits or more",
                          label->name, label->rsa_min_bits);
    switch (want->key_algorithm) {
    case CORE_CSR_KEY_ANY:
        return ESTCA_OK;
    case CORE_CSR_KEY_RSA:
        if (type != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) != want->rsa_bits)
            return estca_fail(why, ESTCA_E_POLICY, "label %s requires an RSA %d-bit key, not %s %d",
                              label->name, want->rsa_bits, OBJ_nid2sn(type),
                              EVP_PKEY_get_bits(key));
        return ESTCA_OK;
    case CORE_CSR_KEY_EC:
        if (type != EVP_PKEY_EC || curve_nid(key) != want->ec_curve_nid)
            return estca_fail(why, ESTCA_E_POLICY, "label %s requires an EC %s key, not %s",
                              label->name, EC_curve_nid2nist(want->ec_curve_nid),
                              type == EVP_PKEY_EC ? OBJ_nid2sn(curve_nid(key)) : OBJ_nid2sn(type));
        return ESTCA_OK;
    }
    return estca_fail(why, ESTCA_E_POLICY, "label %s: unknown key requirement", label->name);
}

/* The subjectAltName of the CSR's extension request; every other requested extension is
 * ignored (the profile decides them). */
int core_csr_subject_alt_name(X509_REQ *csr, GENERAL_NAMES **out, estca_reason *why)
{
    *out = NULL;
    /* OpenSSL 3 answers an empty stack when nothing was requested: NULL means malformed. */
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(csr);
    if (extensions == NULL)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "CSR extension request is malformed");
    int critical = -1;
    GENERAL_NAMES *san = X509V3_get_d2i(extensions, NID_subject_alt_name, &critical, NULL);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    if (san == NULL && critical == -2)
        return estca_fail(why, ESTCA_E_INVALID, "CSR requests more than one subjectAltName");
    if (san == NULL && critical >= 0)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "CSR subjectAltName is malformed");
    if (san != NULL && sk_GENERAL_NAME_num(san) == 0) {
        GENERAL_NAMES_free(san);
        san = NULL;
    }
    *out = san;
    return ESTCA_OK;
}

static int requested_names(const struct core_label *label, X509_REQ *csr,
                           struct requested_names *names, estca_reason *why)
{
    int rc = core_csr_subject_alt_name(csr, &names->san, why);
    if (rc == ESTCA_OK)
        rc = profile_check_names(label->allowed_dns, names->san, why);
    if (rc == ESTCA_OK)
        rc = profile_apply_subject(X509_REQ_get_subject_name(csr), label->subject_override,
                                   &names->subject, why);
    if (rc == ESTCA_OK && X509_NAME_entry_count(names->subject) == 0 && names->san == NULL)
        rc = estca_fail(why, ESTCA_E_POLICY, "CSR has neither a subject nor a subjectAltName");
    return rc;
}

static int sign_certificate(struct ca_core *core, const struct core_label *label,
                            const X509_PUBKEY *subject_public_key,
                            const struct requested_names *names, X509 **out, estca_reason *why)
{
    unsigned char serial[SERIAL_OCTETS];
    if (hsm_random(core->token, serial, sizeof serial, why) != ESTCA_OK)
        return ESTCA_E_UNAVAILABLE;
    time_t now = time(NULL);
    struct certbuild_params params = {
        .profile = CERTBUILD_END_ENTITY,
        .subject = names->subject,
        .subject_public_key = subject_public_key,
        .san = names->san,
        .issuer = label->ca->certificate,
        .issuer_key = label->ca->key,
        .serial = serial,
        .serial_len = sizeof serial,
        .not_before = now - BACKDATE_SECONDS,
        .not_after = now + (time_t)label->validity_days * SECONDS_PER_DAY,
        .key_usage_bits = label->key_usage_bits,
        .eku_nids = label->eku_nids,
        .n_eku = label->n_eku,
        .crl_url = label->ca->crl_url,
        .ca_issuers_url = label->ca->ca_issuers_url,
    };
    int rc = certbuild_sign(&params, out, why);
    /* certbuild reports a failed signature as a token error: the client should retry later. */
    if (rc != ESTCA_OK)
        return rc == ESTCA_E_TOKEN ? ESTCA_E_UNAVAILABLE : rc;
    /* A token failing mid-operation, or one that was swapped, must not get a certificate with
     * a bad signature out (nor an RSA-CRT fault leak the key): check it in software, against
     * the CA certificate, before the ledger or the client sees it. */
    if (signature_check_certificate(*out, X509_get0_pubkey(label->ca->certificate)) != 1) {
        X509_free(*out);
        *out = NULL;
        return estca_fail_openssl(why, ESTCA_E_UNAVAILABLE,
                                  "the token's signature does not verify against CA %s",
                                  label->ca->name);
    }
    return ESTCA_OK;
}

/* Who the certificate is for, in the ledger's terms. */
struct issuance_terms {
    const char *requester;
    long replaces;  /* ledger id of the certificate renewed; 0: none */
    long otp_code;  /* ledger id of the one-time code used up; 0: none */
    long max_valid; /* valid certificates requester may hold; 0: no limit */
};

static int record(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                  const struct issuance_terms *terms, X509 *certificate, estca_reason *why)
{
    unsigned char *csr_der = NULL;
    int csr_len = i2d_X509_REQ(csr, &csr_der);
    if (csr_len <= 0)
        return estca_fail_openssl(why, ESTCA_E_LEDGER, "cannot encode the CSR for the ledger");
    struct ledger_issued entry = {
        .ca_name = label->ca->name,
        .label = label->name,
        .requester = terms->requester,
        .certificate = certificate,
        .csr_der = csr_der,
        .csr_der_len = (size_t)csr_len,
        .replaces = terms->replaces,
        .otp_code = terms->otp_code,
        .max_valid = terms->max_valid,
    };
    int rc = ledger_record_issued(core->ledger, &entry, why);
    OPENSSL_free(csr_der);
    /* A ledger that cannot write (disk full, I/O error, locked) is a dependency that is down:
     * the client should retry later (503), and the certificate it would have got is dropped
     * unseen. So is it when its one-time code was used up meanwhile (401), or when concurrent
     * enrollments brought the requester to its limit meanwhile (403). */
    return rc == ESTCA_OK || rc == ESTCA_E_AUTH || rc == ESTCA_E_FORBIDDEN ? rc
                                                                           : ESTCA_E_UNAVAILABLE;
}

/* A key the token generates for the client (serverkeygen), and its public half. */
struct server_key {
    const char *algorithm; /* for hsm_keygen_device */
    unsigned char *pkcs8;  /* DER PrivateKeyInfo; wiped and freed with OPENSSL_clear_free */
    size_t pkcs8_len;
    X509_PUBKEY *public_key; /* for the certificate */
};

/* The public half of a PKCS#8 private key, as the certificate's subjectPublicKeyInfo. */
static int pkcs8_public_key(const unsigned char *der, size_t len, X509_PUBKEY **out,
                            estca_reason *why)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    EVP_PKEY *key = p8 != NULL ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    int ok = key != NULL && X509_PUBKEY_set(out, key) == 1;
    EVP_PKEY_free(key);
    if (!ok)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot take the generated public key");
    return ESTCA_OK;
}

static int generate_server_key(struct ca_core *core, struct server_key *key, estca_reason *why)
{
    int rc = hsm_keygen_device(core->token, key->algorithm, &key->pkcs8, &key->pkcs8_len, why);
    if (rc != ESTCA_OK)
        return rc == ESTCA_E_TOKEN ? ESTCA_E_UNAVAILABLE : rc;
    return pkcs8_public_key(key->pkcs8, key->pkcs8_len, &key->public_key, why);
}

/* Everything a CSR must pass before an operator sees it or anything is signed. own_key: the
 * certificate will be for the CSR's key, whose possession its signature proves; otherwise
 * (serverkeygen) the CSR supplies only the names (RFC 7030 §4.4.1). */
static int check_request(const struct core_label *label, X509_REQ *csr, bool own_key,
                         struct requested_names *names, estca_reason *why)
{
    int rc = ESTCA_OK;
    if (own_key) {
        rc = verify_signature(csr, why);
        if (rc == ESTCA_OK)
            rc = core_check_csr_key(csr, why);
        if (rc == ESTCA_OK)
            rc = check_label_key(label, csr, why);
    }
    if (rc == ESTCA_OK)
        rc = profile_check_csr_extensions(csr, label->refuse_ca_request, why);
    if (rc == ESTCA_OK)
        rc = requested_names(label, csr, names, why);
    return rc;
}

/* Signs and records the certificate for public_key; on failure nothing is left. */
static int sign_and_record(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                           const X509_PUBKEY *public_key, const struct requested_names *names,
                           const struct issuance_terms *terms, X509 **out, estca_reason *why)
{
    int rc = sign_certificate(core, label, public_key, names, out, why);
    /* Recorded before anyone sees it: a certificate the ledger lacks must not exist. */
    if (rc == ESTCA_OK)
        rc = record(core, label, csr, terms, *out, why);
    if (rc != ESTCA_OK) {
        X509_free(*out);
        *out = NULL;
    }
    return rc;
}

/* The issuance path. server_key NULL: the certificate is for the CSR's own key, after proof of
 * possession and the key policy. server_key set (serverkeygen): the token generates the key,
 * only once the request is admitted (an operator's approval on labels with approval = manual),
 * and the certificate is for it. */
static int issue(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                 struct server_key *server_key, const char *requester, long replaces,
                 long max_valid, X509 **out, estca_reason *why)
{
    *out = NULL;
    if (core == NULL || label == NULL || csr == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_issue: bad arguments");
    /* While the token is being re-opened nothing can be signed: say so before any work. */
    if (!hsm_token_available(core->token))
        return estca_fail(why, ESTCA_E_UNAVAILABLE, "the token is unavailable; retry later");
    struct requested_names names = {0};
    int rc = check_request(label, csr, server_key == NULL, &names, why);
    /* A one-time code's request (otp.h): the code is its policy, burnt with the certificate.
     * Nothing is burnt before: a request that fails on the way (token down, 503) leaves the
     * code usable for the device's retry. */
    struct issuance_terms terms = {
        .requester = requester, .replaces = replaces, .max_valid = max_valid};
    if (rc == ESTCA_OK)
        rc = otp_admit(core, label, csr, names.san, requester, &terms.otp_code, why);
    /* An operator approves only requests that passed every check above. */
    long request = 0;
    if (rc == ESTCA_OK && label->manual_approval) {
        enum ledger_request_kind kind =
            server_key != NULL ? LEDGER_REQUEST_SERVERKEYGEN : LEDGER_REQUEST_ENROLL;
        rc = approval_admit(core, label, csr, requester, kind, &request, out, why);
        if (rc != ESTCA_OK || *out != NULL) {
            names_clear(&names);
            return rc;
        }
    }
    if (rc == ESTCA_OK && server_key != NULL)
        rc = generate_server_key(core, server_key, why);
    if (rc == ESTCA_OK)
        rc = sign_and_record(core, label, csr,
                             server_key != NULL ? server_key->public_key
                                                : X509_REQ_get_X509_PUBKEY(csr),
                             &names, &terms, out, why);
    names_clear(&names);
    if (request != 0) {
        estca_reason approval_why;
        int completed = approval_complete(core, label, request, *out, rc, &approval_why);
        if (rc == ESTCA_OK && completed != ESTCA_OK) {
            rc = completed;
            *why = approval_why;
            X509_free(*out);
            *out = NULL;
        }
    }
    return rc;
}

int core_issue(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
               const char *requester, long replaces, long max_valid, X509 **out, estca_reason *why)
{
    return issue(core, label, csr, NULL, requester, replaces, max_valid, out, why);
}

int core_enroll_as(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                   const struct core_identity *who, X509 **out, estca_reason *why)
{
    *out = NULL;
    const char *requester = who != NULL ? who->name : NULL;
    long max_valid = 0;
    int rc =
        authz_decide(core, label, csr, who, "simpleenroll", AUTHZ_NEW_CERTIFICATE, &max_valid, why);
    if (rc == ESTCA_OK)
        rc = core_issue(core, label, csr, requester, 0, max_valid, out, why);
    return core_audit_issuance(core, "simpleenroll", label, requester, rc, *out, why);
}

int core_enroll(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                const char *requester, X509 **out, estca_reason *why)
{
    struct core_identity who = {.name = requester};
    return core_enroll_as(core, label, csr, &who, out, why);
}

/* The key type for serverkeygen: the label's csr_key_type, else the CSR's key type when the
 * base policy allows it, else P-256. */
static const char *serverkeygen_algorithm(const struct core_label *label, X509_REQ *csr)
{
    const struct core_csr_attrs *want = &label->csr_attrs;
    int type = EVP_PKEY_NONE, bits = 0, nid = NID_undef;
    if (want->key_algorithm == CORE_CSR_KEY_RSA) {
        type = EVP_PKEY_RSA;
        bits = want->rsa_bits;
    } else if (want->key_algorithm == CORE_CSR_KEY_EC) {
        type = EVP_PKEY_EC;
        nid = want->ec_curve_nid;
    } else {
        EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
        ERR_clear_error();
        type = key != NULL ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;
        if (type == EVP_PKEY_RSA)
            bits = EVP_PKEY_get_bits(key);
        else if (type == EVP_PKEY_EC)
            nid = curve_nid(key);
    }
    if (type == EVP_PKEY_RSA && bits == 2048)
        return "rsa:2048";
    if (type == EVP_PKEY_RSA && bits == 3072)
        return "rsa:3072";
    if (type == EVP_PKEY_RSA && bits == 4096)
        return "rsa:4096";
    if (type == EVP_PKEY_EC && nid == NID_secp384r1)
        return "ec:P-384";
    return "ec:P-256";
}

int core_serverkeygen_offered(const struct core_label *label, estca_reason *why)
{
    if (!label->serverkeygen)
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "label %s does not allow server-side key generation", label->name);
    return ESTCA_OK;
}

static int serverkeygen(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                        const struct core_identity *who, X509 **cert_out, unsigned char **pkcs8_out,
                        size_t *pkcs8_len, estca_reason *why)
{
    if (cert_out != NULL)
        *cert_out = NULL;
    if (pkcs8_out != NULL)
        *pkcs8_out = NULL;
    if (pkcs8_len != NULL)
        *pkcs8_len = 0;
    if (core == NULL || label == NULL || csr == NULL || cert_out == NULL || pkcs8_out == NULL ||
        pkcs8_len == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_serverkeygen: bad arguments");
    long max_valid = 0;
    int rc = core_serverkeygen_offered(label, why);
    if (rc == ESTCA_OK)
        rc = authz_decide(core, label, csr, who, "serverkeygen", AUTHZ_NEW_CERTIFICATE, &max_valid,
                          why);
    if (rc != ESTCA_OK)
        return rc;
    struct server_key key = {.algorithm = serverkeygen_algorithm(label, csr)};
    rc = issue(core, label, csr, &key, who != NULL ? who->name : NULL, 0, max_valid, cert_out, why);
    X509_PUBKEY_free(key.public_key);
    if (rc != ESTCA_OK) {
        OPENSSL_clear_free(key.pkcs8, key.pkcs8_len);
        return rc;
    }
    *pkcs8_out = key.pkcs8;
    *pkcs8_len = key.pkcs8_len;
    return ESTCA_OK;
}

int core_serverkeygen_as(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                         const struct core_identity *who, X509 **cert_out,
                         unsigned char **pkcs8_out, size_t *pkcs8_len, estca_reason *why)
{
    int rc = serverkeygen(core, label, csr, who, cert_out, pkcs8_out, pkcs8_len, why);
    return core_audit_issuance(core, "serverkeygen", label, who != NULL ? who->name : NULL, rc,
                               cert_out != NULL ? *cert_out : NULL, why);
}

int core_serverkeygen(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                      const char *requester, X509 **cert_out, unsigned char **pkcs8_out,
                      size_t *pkcs8_len, estca_reason *why)
{
    struct core_identity who = {.name = requester};
    return core_serverkeygen_as(core, label, csr, &who, cert_out, pkcs8_out, pkcs8_len, why);
}
