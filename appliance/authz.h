/* Authorization (who may have which certificate): the [policy:NAME] sections, built once at
 * start-up, and the decision the core takes before anything is signed or filed.
 *
 * A policy names identities ("user:alice", "user:*", "cert:CN=*.example.com*", "ra:*";
 * fnmatch patterns), and says which labels, requested subjects (RFC 2253, patterns with
 * ${user} and ${cn}), subjectAltName entries ("DNS:*.dev.example.com", "IP:10.*") and how
 * many valid certificates at once it allows. The first section in file order whose
 * identities match decides. Without any [policy:] section every authenticated identity may
 * request anything (the quick start); with one, an identity no policy names is refused.
 * Independent of policies, a device authenticated by its own certificate ("cert:" with the
 * certificate) may only request its own subject and a subset of its subjectAltName. "otp:"
 * identities are the one-time code's own business and pass untouched. */
#ifndef ESTCA_AUTHZ_H
#define ESTCA_AUTHZ_H

#include "config.h"
#include "core.h"
#include "status.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>

struct authz;

/* Builds the policies of config (none: everything is allowed). Caller frees with authz_free. */
int authz_new(const struct estca_config *config, struct authz **out, estca_reason *why);
void authz_free(struct authz *authz);

enum authz_request {
    AUTHZ_NEW_CERTIFICATE, /* /simpleenroll, /serverkeygen: max_certificates applies */
    AUTHZ_RENEWAL,         /* /simplereenroll replaces a certificate: it does not */
};

/* May who have a certificate for csr's names under label? ESTCA_OK, or ESTCA_E_FORBIDDEN with
 * the reason; ESTCA_E_INVALID for a malformed CSR; ESTCA_E_LEDGER when max_certificates cannot
 * be counted. Every decision of a policy is recorded in the audit log (operation, identity,
 * label, policy, reason). *max_certificates (may be NULL) gets the deciding policy's limit for
 * a new certificate, for the ledger to count again when it records it (0: no limit). */
int authz_decide(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                 const struct core_identity *who, const char *operation, enum authz_request kind,
                 long *max_certificates, estca_reason *why);

/* ---- pure helpers, offered for the unit tests ---- */

/* What ${user} and ${cn} stand for; NULL: the identity has no such value. */
struct authz_vars {
    const char *user; /* the HTTP Basic user name of a "user:" identity */
    const char *cn;   /* the commonName of the authenticating certificate (cert:, ra:) */
};

/* pattern with ${user} and ${cn} replaced by their values, escaped so that they match only
 * themselves, into out. False when a variable is unknown or has no value here (such a pattern
 * matches nothing), or out is too small. */
bool authz_expand(const char *pattern, const struct authz_vars *vars, char *out, size_t size);

/* Whether value matches pattern (fnmatch after authz_expand; casefold for DNS names). */
bool authz_pattern_match(const char *pattern, const struct authz_vars *vars, const char *value,
                         bool casefold);

/* Splits a list: at every comma when any_comma, else only at a comma followed by a blank (so
 * that RFC 2253 names, "CN=a,O=b", stay whole); items are trimmed, empty ones refused
 * (ESTCA_E_CONFIG). Caller frees with authz_list_free. */
int authz_split_list(const char *list, bool any_comma, char ***items, size_t *n, estca_reason *why);
void authz_list_free(char **items, size_t n);

/* Room for an identity built by authz_certificate_identity. */
#define AUTHZ_IDENTITY_MAX 1024

/* prefix ("cert:", "ra:") and certificate's subject in RFC 2253 form into out; ESTCA_E_FORBIDDEN
 * when it does not fit (a cut name could match a pattern the whole name does not). */
int authz_certificate_identity(const char *prefix, X509 *certificate, char *out, size_t size,
                               estca_reason *why);

/* A subjectAltName entry as policies name it: "DNS:host", "IP:10.0.0.1", "email:a@b",
 * "URI:...", else "other:<type>". False when it cannot be rendered (embedded NUL). */
bool authz_general_name_text(const GENERAL_NAME *name, char *out, size_t size);

#endif
