/* TLS client-certificate identities of the EST front: a device's own certificate (the label's
 * cert_auth) or an RA's (ra_ca, id-kp-cmcRA), verified by the core against the label's trust
 * stores (core_authenticate_certificate). A client certificate that verifies for the label
 * wins over HTTP Basic credentials in the same request; one that does not verify leaves the
 * request to HTTP Basic (or a one-time code); without an Authorization header (and on a
 * label without one-time codes) it is answered 401 with the reason. A revoked one is refused
 * (403). Labels without cert_auth or ra_ca behave as if no certificate had been sent. */
#ifndef ESTCA_EST_CLIENT_CERT_H
#define ESTCA_EST_CLIENT_CERT_H

#include "est_internal.h"

#include <stdbool.h>

enum est_client_cert_result {
    EST_CLIENT_CERT_NONE,          /* go on with HTTP Basic */
    EST_CLIENT_CERT_AUTHENTICATED, /* req->requester is "cert:..." or "ra:..." */
    EST_CLIENT_CERT_ANSWERED,      /* refused (401, 403, 500), the response is written */
};

enum est_client_cert_result est_client_cert_authenticate(struct est_request *req);

/* Whether the request was authenticated as an RA (RFC 7030 §3.7). */
bool est_client_cert_is_ra(const struct est_request *req);

/* The requester as the core takes it: its name, and the TLS client certificate when that is
 * what authenticated it (borrowed from the connection). */
void est_client_cert_identity(struct est_request *req, struct core_identity *out);

#endif
