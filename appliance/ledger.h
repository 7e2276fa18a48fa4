/* The issuance ledger: an SQLite database (WAL, synchronous=FULL) in which every issued
 * certificate is durably committed before it leaves the process. Safe to call from many
 * threads at once. */
#ifndef ESTCA_LEDGER_H
#define ESTCA_LEDGER_H

#include "status.h"

#include <openssl/x509.h>
#include <stdbool.h>

struct ledger;

/* Opens or creates the database at path and brings its schema up to date. Caller frees with
 * ledger_close. */
int ledger_open(const char *path, struct ledger **out, estca_reason *why);
void ledger_close(struct ledger *ledger);

struct ledger_issued {
    const char *ca_name;
    const char *label;
    const char *requester; /* the authenticated identity, e.g. "user:alice" */
    X509 *certificate;
    const unsigned char *csr_der;
    size_t csr_der_len;
    long replaces;  /* ledger id of the certificate this one renews or rekeys; 0: none */
    long otp_code;  /* ledger id of the one-time code this certificate uses up; 0: none */
    long max_valid; /* requester may hold at most this many valid certificates, this one
                     * included (a policy's max_certificates); 0: no limit */
};

/* Records an issued certificate (serial, subject, SANs, validity, DER, CSR SHA-256) and
 * commits. A serial already present for the same CA is refused (ESTCA_E_LEDGER). With
 * otp_code, the code is burnt in the same transaction, and if it is no longer usable (used,
 * revoked or expired meanwhile) nothing is recorded (ESTCA_E_AUTH). With max_valid, the
 * requester's valid certificates are counted in that transaction too, so that concurrent
 * enrollments cannot all pass a count taken before them: one too many is refused
 * (ESTCA_E_FORBIDDEN) and not recorded. */
int ledger_record_issued(struct ledger *ledger, const struct ledger_issued *entry,
                         estca_reason *why);

/* What the ledger says of a certificate it recorded. */
struct ledger_state {
    long id;
    bool revoked; /* any status but "valid" */
};

/* Finds certificate (by CA name and serial, then checked byte for byte) in the ledger.
 * ESTCA_E_NOT_FOUND when the ledger never recorded it. */
int ledger_lookup(struct ledger *ledger, const char *ca_name, X509 *certificate,
                  struct ledger_state *out, estca_reason *why);

/* One certificate as the ledger holds it. Every pointer is valid only during the visit. */
struct ledger_certificate {
    long id;
    const char *ca;
    const char *label;
    const char *serial;     /* upper-case hex, as `openssl x509 -serial` prints it */
    const char *subject;    /* RFC 2253 */
    const char *sans;       /* NULL: none */
    const char *not_before; /* ISO 8601 UTC */
    const char *not_after;
    const char *requester;
    const char *csr_sha256;
    const char *status;
    const char *issued_at;
    const unsigned char *der;
    size_t der_len;
};

/* Calls visit for every certificate in the order issued, or, with serial non-NULL, for those
 * with that serial (hex, any case, any CA). A non-zero return from visit stops the walk and
 * is returned. For the operator's tool: not meant for the request path. */
int ledger_each_issued(struct ledger *ledger, const char *serial,
                       int (*visit)(const struct ledger_certificate *certificate, void *arg),
                       void *arg, estca_reason *why);

/* ---- requests waiting for an operator (ledger_requests.c) ---- */

enum ledger_request_status {
    LEDGER_REQUEST_PENDING,
    LEDGER_REQUEST_APPROVED,
    LEDGER_REQUEST_REJECTED,
    LEDGER_REQUEST_ISSUING, /* claimed by one worker, which is issuing it now */
    LEDGER_REQUEST_ISSUED,
};

struct ledger_request_state {
    long id;
    enum ledger_request_status status;
    long certificate;    /* ISSUED: the certificate's ledger id */
    bool same_requester; /* filed by the requester now asking (always true when just filed) */
};

/* What an approval lets the client have: a certificate for the CSR's key (/simpleenroll,
 * /simplereenroll), or a key the token generates and its certificate (/serverkeygen). The same
 * CSR posted for both is two requests, so that an operator never approves one for the other. */
enum ledger_request_kind {
    LEDGER_REQUEST_ENROLL,
    LEDGER_REQUEST_SERVERKEYGEN,
};

struct ledger_request_filing {
    enum ledger_request_kind kind;
    const char *label;
    const unsigned char *csr_der;
    size_t csr_der_len;
    const X509_NAME *subject; /* NULL: not recorded */
    const char *requester;
};

/* Files the CSR as pending unless the same CSR (by SHA-256) of the same kind is there under
 * the label already, and tells its state. A client re-posting the identical CSR finds its
 * request this way. */
int ledger_request_submit(struct ledger *ledger, const struct ledger_request_filing *filing,
                          struct ledger_request_state *out, estca_reason *why);

/* ledger_request_submit of a LEDGER_REQUEST_ENROLL filing (kept for its callers). */
int ledger_request_file(struct ledger *ledger, const char *label, const unsigned char *csr_der,
                        size_t csr_der_len, const X509_NAME *subject, const char *requester,
                        struct ledger_request_state *out, estca_reason *why);

/* The operator's decision on a pending request. ESTCA_E_NOT_FOUND, or ESTCA_E_INVALID when it
 * is no longer pending. */
int ledger_request_decide(struct ledger *ledger, long id, bool approve, estca_reason *why);

/* Moves an approved request to ISSUING; ESTCA_E_PENDING when another worker got there first.
 * Then exactly one of ledger_request_issued (with the new certificate's ledger id) or
 * ledger_request_unclaim (issuance failed: approved again). */
int ledger_request_claim(struct ledger *ledger, long id, estca_reason *why);
int ledger_request_issued(struct ledger *ledger, long id, long certificate, estca_reason *why);
int ledger_request_unclaim(struct ledger *ledger, long id, estca_reason *why);

/* The DER of the certificate with ledger id certificate; caller frees *der with
 * OPENSSL_free. */
int ledger_certificate_der(struct ledger *ledger, long certificate, unsigned char **der,
                           size_t *der_len, estca_reason *why);

struct ledger_request {
    long id;
    const char *label; /* "LABEL/serverkeygen" for a LEDGER_REQUEST_SERVERKEYGEN request */
    const char *subject;
    const char *requester;
    const char *status;
    const char *received_at;
    const char *decided_at; /* NULL while pending */
    const char *csr_sha256;
};

/* Visits every request, oldest first; the pointers are valid during the visit only. */
int ledger_each_request(struct ledger *ledger,
                        int (*visit)(const struct ledger_request *request, void *arg), void *arg,
                        estca_reason *why);

/* ---- revocation (ledger_revocation.c) ---- */

/* Marks the certificate with this serial (hex, any case; the one of CA ca_name, or of any CA
 * when ca_name is NULL and the serial is unique) revoked now for reason (an RFC 5280 CRLReason
 * code). ESTCA_E_NOT_FOUND, or ESTCA_E_INVALID if already revoked or ambiguous. */
int ledger_revoke(struct ledger *ledger, const char *ca_name, const char *serial, int reason,
                  estca_reason *why);

struct ledger_revoked {
    const char *serial;     /* upper-case hex */
    const char *revoked_at; /* ISO 8601 UTC */
    int reason;             /* RFC 5280 CRLReason */
};

/* Visits every certificate of ca_name that is revoked and not yet expired. */
int ledger_each_revoked(struct ledger *ledger, const char *ca_name,
                        int (*visit)(const struct ledger_revoked *revoked, void *arg), void *arg,
                        estca_reason *why);

/* The next CRL number for ca_name (1, 2, ...), committed before it is returned so that no
 * number is ever used twice. */
int ledger_next_crl_number(struct ledger *ledger, const char *ca_name, long *out,
                           estca_reason *why);

/* Number of certificates of ca_name ever revoked: it only grows, so a change means a new
 * revocation (estcad re-signs the CA's CRL then). */
int ledger_count_revoked(struct ledger *ledger, const char *ca_name, long *out, estca_reason *why);

/* Number of certificates recorded (for tests and status). */
int ledger_count_issued(struct ledger *ledger, long *out, estca_reason *why);

/* Number of certificates issued to requester that are valid now: not revoked, not expired
 * (for an authorization policy's max_certificates). */
int ledger_count_valid_for(struct ledger *ledger, const char *requester, long *out,
                           estca_reason *why);

/* ---- one-time enrollment codes (ledger_otp.c; otp.h makes and checks them) ---- */

#define LEDGER_OTP_HASH_LEN 32 /* SHA-256 */

/* A code as the ledger holds it: never the code itself, only its SHA-256. Every pointer is
 * valid only during the visit. */
struct ledger_otp {
    long id;
    const char *label;
    const char *subject;              /* RFC 2253, for people */
    const unsigned char *subject_der; /* X509_NAME DER: what a CSR's subject is compared with */
    size_t subject_der_len;
    const char *sans;              /* as given to estca otp issue; NULL: none */
    const unsigned char *sans_der; /* GENERAL_NAMES DER; NULL: the CSR may carry no SAN */
    size_t sans_der_len;
    const unsigned char *code_sha256; /* LEDGER_OTP_HASH_LEN octets */
    const char *created_at;           /* ISO 8601 UTC, as every time in the ledger */
    const char *expires_at;
    const char *used_at;    /* NULL: not used */
    const char *revoked_at; /* NULL: not revoked */
    long certificate;       /* the certificate it was used for; 0: none */
    bool usable;            /* unused, not revoked, not expired (by the ledger's clock) */
};

/* Records a new code, created now and expiring ttl_seconds later, from its label,
 * subject_der, sans, sans_der and code_sha256 (the subject's text is made from subject_der);
 * *id is its ledger id. A hash already recorded is refused (ESTCA_E_LEDGER). */
int ledger_otp_insert(struct ledger *ledger, const struct ledger_otp *code, long ttl_seconds,
                      long *id, estca_reason *why);

/* Calls visit with the code of ledger id id, or, with id 0, the code whose SHA-256 is
 * code_sha256. ESTCA_E_NOT_FOUND when there is none; otherwise what visit returns. */
int ledger_otp_find(struct ledger *ledger, long id, const unsigned char *code_sha256,
                    int (*visit)(const struct ledger_otp *code, void *arg), void *arg,
                    estca_reason *why);

/* Visits every code, oldest first. For the operator's tool. */
int ledger_otp_each(struct ledger *ledger, int (*visit)(const struct ledger_otp *code, void *arg),
                    void *arg, estca_reason *why);

/* Makes an unused code unusable. ESTCA_E_NOT_FOUND, or ESTCA_E_INVALID when it was used or
 * revoked already. */
int ledger_otp_revoke(struct ledger *ledger, long id, estca_reason *why);

#endif
