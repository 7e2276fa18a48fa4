/* One-time enrollment codes, for zero-touch and keyless devices. An operator issues a code
 * for one label and one subject (and the subjectAltNames the device may ask for) with
 * `estca otp issue`; a device presents it either as the HTTP Basic password of user
 * "otp-<id>" or, with no Authorization header, in its CSR's id-aa-otpChallenge attribute
 * (RFC 7894). The first request presenting it and asking for exactly that subject on that
 * label gets its certificate (/simpleenroll or /serverkeygen), and the code is burnt in the
 * ledger transaction that records the certificate: it works once, also across restarts.
 * The code is then the requester's identity ("otp:<id>") and its whole policy.
 *
 * A code is 160 bits from RAND_bytes written as 32 base32 characters (RFC 4648, A-Z 2-7,
 * case-insensitive), safe in a password and in a PrintableString. The ledger keeps only its
 * SHA-256: for a random 160-bit secret a plain hash is as good as a slow one (there is no
 * dictionary to try), and it lets a CSR's code be looked up by its hash. */
#ifndef ESTCA_OTP_H
#define ESTCA_OTP_H

#include "core.h"
#include "ledger.h"
#include "status.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>

#define OTP_CODE_LEN 32                      /* base32 characters, 160 bits */
#define OTP_USER_PREFIX "otp-"               /* the HTTP Basic user of code N: "otp-N" */
#define OTP_REQUESTER_PREFIX "otp:"          /* the identity of a request that showed code N */
#define OTP_OID "1.2.840.113549.1.9.16.2.56" /* id-aa-otpChallenge, RFC 7894 §3 */

/* ---- for estca: making codes ---- */

struct otp_issue_request {
    const char *label;
    const X509_NAME *subject;
    const GENERAL_NAMES *sans; /* what the CSR may carry; NULL: no subjectAltName at all */
    const char *sans_text;     /* the same as the operator wrote it, for listings */
    long ttl_seconds;
};

/* Draws a code, records its hash in the ledger, and gives the code's ledger id and the code
 * (NUL-terminated): the caller shows it to the operator once and wipes it with
 * OPENSSL_cleanse. */
int otp_issue(struct ledger *ledger, const struct otp_issue_request *request, long *id,
              char code[OTP_CODE_LEN + 1], estca_reason *why);

/* "unused", "used", "revoked" or "expired". */
const char *otp_status(const struct ledger_otp *code);

/* ---- for the EST front: checking a presented code ---- */

/* Whether label accepts one-time codes ([label:] otp = yes). */
bool core_label_allows_otp(const struct core_label *label);

/* Whether user is a one-time code's user name ("otp-N") on a label that accepts codes; if
 * not, user is an ordinary user and its password goes to core_check_password. */
bool core_otp_user(const struct core_label *label, const char *user);

/* HTTP Basic: user "otp-N" with code as its password. ESTCA_OK when code is code N and N is
 * unused, unrevoked and unexpired: then requester (cap bytes) is "otp:N". ESTCA_E_AUTH
 * otherwise, why saying which (never the code); the refusal is audited. */
int core_otp_check_password(struct ca_core *core, const struct core_label *label, const char *user,
                            const char *code, char *requester, size_t cap, estca_reason *why);

/* A request without credentials on a label that accepts codes: the code in csr's
 * otpChallenge (a UTF8String or PrintableString), looked up by its hash. ESTCA_OK and
 * requester "otp:N" as above; ESTCA_E_NOT_FOUND when csr carries no otpChallenge;
 * ESTCA_E_AUTH for a malformed, unknown or unusable code (audited). */
int core_otp_check_csr(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                       char *requester, size_t cap, estca_reason *why);

/* ---- inside the core (issuance.c) ---- */

/* The code's policy, for a request whose requester the EST front set to "otp:N" after one of
 * the checks above (any other requester: *code 0, ESTCA_OK). The code must still be usable
 * (ESTCA_E_AUTH), be for label, and csr's subject must equal the code's (as X509_NAME_cmp
 * compares names, as re-enrollment does) and each of san (the CSR's subjectAltName, may be
 * NULL) be one the code allows (ESTCA_E_FORBIDDEN). *code is then N, for the ledger to burn
 * with the certificate (struct ledger_issued's otp_code). */
int otp_admit(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
              const GENERAL_NAMES *san, const char *requester, long *code, estca_reason *why);

#endif
