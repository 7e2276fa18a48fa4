/* Manual approval (RFC 7030 §4.2.3): a label with approval = manual files each new request
 * and answers "pending" (HTTP 202 + Retry-After) until an operator approves or rejects it with
 * estca; the client re-posts the identical CSR, which finds its request by the CSR's hash.
 * The requests live in the ledger, so they survive restarts.
 *
 * An enrollment, once issued, is answered with the same certificate every time it is re-posted.
 * A serverkeygen request cannot be: its private key left the process once and is kept nowhere,
 * so a re-post after delivery is refused (403), and a client that lost the answer files a new
 * CSR, which an operator approves anew. Nor may anyone but its requester collect it: whoever
 * re-posts the CSR would get the key. */
#include "core_internal.h"

#include <openssl/err.h>

static int issued_before(struct ca_core *core, long certificate, X509 **out, estca_reason *why)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc = ledger_certificate_der(core->ledger, certificate, &der, &der_len, why);
    if (rc != ESTCA_OK)
        return rc == ESTCA_E_NOT_FOUND ? ESTCA_E_LEDGER : rc;
    const unsigned char *p = der;
    *out = d2i_X509(NULL, &p, (long)der_len);
    OPENSSL_free(der);
    if (*out == NULL)
        return estca_fail_openssl(why, ESTCA_E_LEDGER,
                                  "certificate %ld in the ledger is unreadable", certificate);
    return ESTCA_OK;
}

/* What a serverkeygen request's state lets this re-post do, before the common cases. */
static int serverkeygen_admissible(const struct ledger_request_state *state, estca_reason *why)
{
    if (!state->same_requester)
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "request %ld was filed by another requester; only it may collect the key",
                          state->id);
    if (state->status == LEDGER_REQUEST_ISSUED)
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "request %ld was delivered: its key is not kept and cannot be sent "
                          "again; post a new CSR for a new key",
                          state->id);
    return ESTCA_OK;
}

/* What the state of the request this post belongs to means for it. */
static int admit_state(struct ca_core *core, enum ledger_request_kind kind,
                       const struct ledger_request_state *state, long *claimed, X509 **issued,
                       estca_reason *why)
{
    if (kind == LEDGER_REQUEST_SERVERKEYGEN && serverkeygen_admissible(state, why) != ESTCA_OK)
        return ESTCA_E_FORBIDDEN;
    switch (state->status) {
    case LEDGER_REQUEST_PENDING:
        return estca_fail(why, ESTCA_E_PENDING, "request %ld is waiting for an operator's approval",
                          state->id);
    case LEDGER_REQUEST_ISSUING:
        return estca_fail(why, ESTCA_E_PENDING, "request %ld is being issued", state->id);
    case LEDGER_REQUEST_REJECTED:
        return estca_fail(why, ESTCA_E_FORBIDDEN, "request %ld was rejected by an operator",
                          state->id);
    case LEDGER_REQUEST_ISSUED:
        return issued_before(core, state->certificate, issued, why);
    case LEDGER_REQUEST_APPROVED: {
        int rc = ledger_request_claim(core->ledger, state->id, why);
        if (rc == ESTCA_OK)
            *claimed = state->id;
        return rc;
    }
    }
    return estca_fail(why, ESTCA_E_LEDGER, "request %ld: unknown state", state->id);
}

int approval_admit(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                   const char *requester, enum ledger_request_kind kind, long *claimed,
                   X509 **issued, estca_reason *why)
{
    *claimed = 0;
    *issued = NULL;
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(csr, &der);
    if (der_len <= 0)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "cannot encode the CSR");
    struct ledger_request_filing filing = {
        .kind = kind,
        .label = label->name,
        .csr_der = der,
        .csr_der_len = (size_t)der_len,
        .subject = X509_REQ_get_subject_name(csr),
        .requester = requester,
    };
    struct ledger_request_state state;
    int rc = ledger_request_submit(core->ledger, &filing, &state, why);
    OPENSSL_free(der);
    if (rc != ESTCA_OK)
        return ESTCA_E_LEDGER;
    return admit_state(core, kind, &state, claimed, issued, why);
}

int approval_complete(struct ca_core *core, const struct core_label *label, long request,
                      X509 *certificate, int issue_rc, estca_reason *why)
{
    if (issue_rc != ESTCA_OK)
        return ledger_request_unclaim(core->ledger, request, why);
    struct ledger_state state;
    int rc = ledger_lookup(core->ledger, label->ca->name, certificate, &state, why);
    if (rc == ESTCA_OK)
        rc = ledger_request_issued(core->ledger, request, state.id, why);
    return rc == ESTCA_OK ? ESTCA_OK : ESTCA_E_LEDGER;
}
