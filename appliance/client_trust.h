/* TLS client-certificate trust of one label, built once at start-up from its configuration:
 *   client_ca  (PEM anchors and intermediates, e.g. a manufacturer's IDevID CA) and
 *   client_crl (PEM or DER CRLs for them: every certificate of the chain is then checked, and
 *              a missing or expired CRL fails closed), used when cert_auth = yes, together
 *              with the label's own CA (whose certificates are checked against the ledger);
 *   ra_ca      the anchors of Registration Authorities (RFC 7030 §3.7), whose certificates
 *              must also carry id-kp-cmcRA.
 * core_authenticate_certificate (core.h) asks it at request time. */
#ifndef ESTCA_CLIENT_TRUST_H
#define ESTCA_CLIENT_TRUST_H

#include "config.h"
#include "status.h"

#include <openssl/x509.h>

struct client_trust;

/* *out NULL when the label authenticates nobody by certificate (no cert_auth, no ra_ca).
 * Caller frees with client_trust_free. */
int client_trust_load(const struct estca_config *config, const struct config_label *source,
                      X509 *label_ca, struct client_trust **out, estca_reason *why);
void client_trust_free(struct client_trust *trust);

#endif
