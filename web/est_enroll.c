/* /simpleenroll and /simplereenroll (RFC 7030 §4.2). Enrollment authenticates with HTTP
 * Basic, re-enrollment with the TLS client certificate being renewed; both then take a base64
 * DER PKCS#10 body of type application/pkcs10, have the core issue, and answer a certs-only
 * PKCS#7 holding only the new certificate (§4.2.3). Content-Transfer-Encoding is ignored
 * (RFC 8951 §3).
 *
 * Order of checks: credentials before the body, so unauthenticated clients never make us
 * read or parse anything; then the media type, the size, the encoding, the DER. */
#include "base64.h"
#include "est_response.h"
#include "http_basic.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EST_USER_MAX (EST_REQUESTER_MAX - sizeof "user:")

static bool authenticate(struct est_request *req)
{
    struct http_basic_credentials credentials;
    estca_reason why = {{0}};
    int rc = http_basic_parse(mg_get_header(req->conn, "Authorization"), &credentials, &why);
    if (rc == ESTCA_OK && strlen(credentials.user) > EST_USER_MAX) {
        rc = estca_fail(&why, ESTCA_E_AUTH, "user name too long");
    } else if (rc == ESTCA_OK) {
        rc = core_check_password(req->server->core, credentials.user, credentials.password);
        if (rc == ESTCA_OK)
            snprintf(req->requester, sizeof req->requester, "user:%s", credentials.user);
        else
            estca_fail(&why, ESTCA_E_AUTH, "wrong password or unknown user (user %s)",
                       credentials.user);
    }
    http_basic_credentials_clear(&credentials);
    if (rc == ESTCA_OK)
        return true;
    est_note(req, "%s", why.text);
    est_respond_error(req, 401, HTTP_BASIC_CHALLENGE, "authentication required");
    return false;
}

static bool check_content_type(struct est_request *req)
{
    if (est_media_type_is(mg_get_header(req->conn, "Content-Type"), "application/pkcs10"))
        return true;
    est_respond_error(req, 415, NULL, "Content-Type must be application/pkcs10");
    return false;
}

/* Base64, then DER that must end exactly where the decoded bytes end. */
static bool decode_csr(struct est_request *req, const char *body, size_t len, X509_REQ **out)
{
    unsigned char *der;
    size_t der_len;
    estca_reason why = {{0}};
    if (base64_decode(body, len, &der, &der_len, &why) != ESTCA_OK) {
        est_respond_error(req, 400, NULL, "request body is not base64 (%s)", why.text);
        return false;
    }
    const unsigned char *p = der;
    X509_REQ *csr = d2i_X509_REQ(NULL, &p, (long)der_len);
    bool exact = csr != NULL && p == der + der_len;
    OPENSSL_free(der);
    ERR_clear_error();
    if (!exact) {
        X509_REQ_free(csr);
        est_respond_error(req, 400, NULL,
                          csr == NULL ? "request body is not a DER PKCS#10 request"
                                      : "trailing bytes after the PKCS#10 request");
        return false;
    }
    *out = csr;
    return true;
}

/* Maps the core's status onto HTTP; the client sees the reason for its own mistakes only. */
static void respond_core_error(struct est_request *req, int rc, const estca_reason *why)
{
    switch (rc) {
    case ESTCA_E_INVALID:
    case ESTCA_E_POLICY:
        est_respond_error(req, 400, NULL, "%s", why->text);
        return;
    case ESTCA_E_AUTH:
        est_respond_error(req, 401, HTTP_BASIC_CHALLENGE, "%s", why->text);
        return;
    case ESTCA_E_FORBIDDEN:
        est_respond_error(req, 403, NULL, "%s", why->text);
        return;
    case ESTCA_E_PENDING: {
        /* RFC 7030 §4.2.3: 202 with Retry-After, in integer seconds (strongSwan pki ignores an
         * HTTP-date); the client re-posts the same CSR. */
        char retry_after[48];
        snprintf(retry_after, sizeof retry_after, "Retry-After: %d\r\n",
                 core_label_retry_after(req->label));
        est_respond_error(req, 202, retry_after, "%s", why->text);
        return;
    }
    case ESTCA_E_UNAVAILABLE:
        est_note(req, "unavailable: %s", why->text);
        /* Retry-After in integer seconds: strongSwan pki ignores an HTTP-date. */
        est_respond_error(req, 503, "Retry-After: 30\r\n", "the CA is temporarily unavailable");
        return;
    default:
        est_note(req, "enroll failed: %s: %s", estca_status_name(rc), why->text);
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
}

static void respond_certificate(struct est_request *req, X509 *cert)
{
    STACK_OF(X509) *one = sk_X509_new_null();
    char *body = NULL;
    size_t body_len = 0;
    estca_reason why = {{0}};
    int rc = ESTCA_E_NOMEM;
    if (one != NULL && sk_X509_push(one, cert) > 0)
        rc = est_certs_only_base64(one, &body, &body_len, &why);
    sk_X509_free(one); /* the certificate itself stays the caller's */
    if (rc != ESTCA_OK) {
        est_note(req, "certificate issued but not encoded: %s", why.text);
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
    struct est_response response = {
        .status = 200,
        .content_type = "application/pkcs7-mime; smime-type=certs-only",
        .body = body,
        .body_len = body_len,
    };
    est_respond(req, &response);
    OPENSSL_free(body);
}

/* The request's CSR, or false when it has answered (415, 413, 400...). */
static bool read_csr(struct est_request *req, X509_REQ **out)
{
    if (!check_content_type(req))
        return false;
    char *body;
    size_t body_len;
    if (!est_read_body(req, &body, &body_len))
        return false;
    bool decoded = decode_csr(req, body, body_len, out);
    free(body);
    return decoded;
}

static void respond_issued(struct est_request *req, int rc, X509 *cert, const estca_reason *why)
{
    if (rc != ESTCA_OK) {
        respond_core_error(req, rc, why);
        return;
    }
    respond_certificate(req, cert);
    X509_free(cert);
}

void est_enroll_handle(struct est_request *req)
{
    X509_REQ *csr = NULL;
    if (!authenticate(req) || !read_csr(req, &csr))
        return;
    X509 *cert = NULL;
    estca_reason why = {{0}};
    int rc = core_enroll(req->server->core, req->label, csr, req->requester, &cert, &why);
    X509_REQ_free(csr);
    respond_issued(req, rc, cert, &why);
}

/* The certificate being renewed is the TLS client certificate (RFC 7030 §4.2.2); HTTP Basic
 * plays no part. */
void est_reenroll_handle(struct est_request *req)
{
    SSL *ssl = est_tls_connection_ssl(req->conn);
    X509 *current = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    if (current == NULL) {
        est_respond_error(req, 401, HTTP_BASIC_CHALLENGE,
                          "re-enrollment needs the certificate being renewed as the TLS client "
                          "certificate");
        return;
    }
    char subject[EST_REQUESTER_MAX - sizeof "cert:"];
    X509_NAME_oneline(X509_get_subject_name(current), subject, sizeof subject);
    snprintf(req->requester, sizeof req->requester, "cert:%s", subject);
    X509_REQ *csr = NULL;
    if (!read_csr(req, &csr))
        return;
    X509 *cert = NULL;
    estca_reason why = {{0}};
    int rc = core_reenroll(req->server->core, req->label, csr, current,
                           SSL_get_peer_cert_chain(ssl), req->requester, &cert, &why);
    X509_REQ_free(csr);
    respond_issued(req, rc, cert, &why);
}
