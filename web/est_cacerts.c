/* /cacerts (RFC 7030 §4.1): no authentication (§4.1.2 SHOULD NOT require it), the label's CA
 * certificates as a base64 certs-only PKCS#7. The body never changes while the server runs,
 * so it is encoded once per label at start-up and kept. */
#include "est_response.h"

#include <openssl/crypto.h>
#include <stdlib.h>

int est_cacerts_cache_build(struct est_cacerts_cache *cache, const struct ca_core *core,
                            estca_reason *why)
{
    size_t n = core_label_count(core);
    cache->entries = calloc(n > 0 ? n : 1, sizeof *cache->entries);
    cache->n = 0;
    if (cache->entries == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct est_cacerts_entry *entry = &cache->entries[i];
        entry->label = core_label_at(core, i);
        estca_reason inner = {{0}};
        int rc = est_certs_only_base64(core_label_ca_certificates(entry->label), &entry->body,
                                       &entry->body_len, &inner);
        if (rc != ESTCA_OK)
            return estca_fail(why, rc, "label %s: /cacerts: %s", core_label_name(entry->label),
                              inner.text);
        cache->n++;
    }
    return ESTCA_OK;
}

void est_cacerts_cache_free(struct est_cacerts_cache *cache)
{
    for (size_t i = 0; i < cache->n; i++)
        OPENSSL_free(cache->entries[i].body);
    free(cache->entries);
    cache->entries = NULL;
    cache->n = 0;
}

static const struct est_cacerts_entry *find(const struct est_cacerts_cache *cache,
                                            const struct core_label *label)
{
    for (size_t i = 0; i < cache->n; i++) {
        if (cache->entries[i].label == label)
            return &cache->entries[i];
    }
    return NULL;
}

void est_cacerts_handle(struct est_request *req)
{
    const struct est_cacerts_entry *entry = find(&req->server->cacerts, req->label);
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
