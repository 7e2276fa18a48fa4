/* /cacerts (RFC 7030 §4.1): no authentication (§4.1.2 SHOULD NOT require it), the label's CA
 * certificates as a base64 certs-only PKCS#7, encoded once per label at start-up. */
#include "est_response.h"

int est_cacerts_encode(const struct core_label *label, char **body, size_t *body_len,
                       estca_reason *why)
{
    return est_certs_only_base64(core_label_ca_certificates(label), body, body_len, why);
}

void est_cacerts_handle(struct est_request *req)
{
    const struct est_label_body *entry =
        est_label_bodies_find(&req->generation->cacerts, req->label);
    if (entry == NULL) {
        est_note(req, "no /cacerts body for label %s", core_label_name(req->label));
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
    struct est_response response = {
        .status = 200,
        .content_type = "application/pkcs7-mime",
        .body = entry->body,
        .body_len = entry->body_len,
    };
    est_respond(req, &response);
}
