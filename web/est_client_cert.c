/* Client-certificate authentication for /simpleenroll and /serverkeygen (est_client_cert.h).
 * The TLS layer accepts any client certificate for later verification (est_tls.c); this is
 * where, for labels that ask for it, it is verified. */
#include "est_client_cert.h"

#include "est_response.h"
#include "http_basic.h"
#include "otp.h"

#include <stdio.h>
#include <string.h>

static X509 *peer_certificate(struct est_request *req, STACK_OF(X509) **chain)
{
    SSL *ssl = est_tls_connection_ssl(req->conn);
    if (chain != NULL)
        *chain = ssl != NULL ? SSL_get_peer_cert_chain(ssl) : NULL;
    return ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
}

enum est_client_cert_result est_client_cert_authenticate(struct est_request *req)
{
    STACK_OF(X509) *chain = NULL;
    X509 *certificate = peer_certificate(req, &chain);
    char identity[EST_REQUESTER_MAX];
    estca_reason why = {{0}};
    int rc = core_authenticate_certificate(req->core, req->label, certificate, chain, identity,
                                           sizeof identity, &why);
    switch (rc) {
    case ESTCA_OK:
        snprintf(req->requester, sizeof req->requester, "%s", identity);
        return EST_CLIENT_CERT_AUTHENTICATED;
    case ESTCA_E_NOT_FOUND:
        return EST_CLIENT_CERT_NONE;
    case ESTCA_E_AUTH:
        /* Not a certificate this label accepts: HTTP Basic decides, or a one-time code in the
         * CSR; with neither possible, the client is told why its certificate did not do. */
        est_note(req, "%s", why.text);
        if (mg_get_header(req->conn, "Authorization") != NULL || core_label_allows_otp(req->label))
            return EST_CLIENT_CERT_NONE;
        est_respond_error(req, 401, HTTP_BASIC_CHALLENGE, "%s", why.text);
        return EST_CLIENT_CERT_ANSWERED;
    case ESTCA_E_FORBIDDEN:
        est_respond_error(req, 403, NULL, "%s", why.text);
        return EST_CLIENT_CERT_ANSWERED;
    default:
        est_note(req, "client certificate: %s: %s", estca_status_name(rc), why.text);
        est_respond_error(req, 500, NULL, "internal error");
        return EST_CLIENT_CERT_ANSWERED;
    }
}

bool est_client_cert_is_ra(const struct est_request *req)
{
    return strncmp(req->requester, "ra:", 3) == 0;
}

void est_client_cert_identity(struct est_request *req, struct core_identity *out)
{
    bool by_certificate =
        strncmp(req->requester, "cert:", 5) == 0 || strncmp(req->requester, "ra:", 3) == 0;
    out->name = req->requester;
    out->certificate = by_certificate ? peer_certificate(req, NULL) : NULL;
}
