/* /cacerts (RFC 7030 §4.1): no authentication (§4.1.2 SHOULD NOT require it), the label's CA
 * certificates as a base64 certs-only PKCS#7. The body never changes while the server runs,
 * so it is encoded once per label and kept.
 *
 * The core offers no list of labels, so the default label is encoded at start-up and the
 * others on their first request; the cache only grows and holds one entry per label, whose
 * body stays valid until the server is freed, so a reader may use it after unlocking. */
#include "est_response.h"

#include <openssl/crypto.h>
#include <stdlib.h>

int est_cacerts_cache_init(struct est_cacerts_cache *cache)
{
    cache->entries = NULL;
    return pthread_mutex_init(&cache->lock, NULL) == 0 ? ESTCA_OK : ESTCA_E_NOMEM;
}

void est_cacerts_cache_free(struct est_cacerts_cache *cache)
{
    struct est_cacerts_entry *entry = cache->entries;
    while (entry != NULL) {
        struct est_cacerts_entry *next = entry->next;
        OPENSSL_free(entry->body);
        free(entry);
        entry = next;
    }
    cache->entries = NULL;
    pthread_mutex_destroy(&cache->lock);
}

static struct est_cacerts_entry *find_locked(struct est_cacerts_cache *cache,
                                             const struct core_label *label)
{
    for (struct est_cacerts_entry *e = cache->entries; e != NULL; e = e->next) {
        if (e->label == label)
            return e;
    }
    return NULL;
}

static int encode_locked(struct est_cacerts_cache *cache, const struct core_label *label,
                         struct est_cacerts_entry **out, estca_reason *why)
{
    struct est_cacerts_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    int rc = est_certs_only_base64(core_label_ca_certificates(label), &entry->body,
                                   &entry->body_len, why);
    if (rc != ESTCA_OK) {
        free(entry);
        return rc;
    }
    entry->label = label;
    entry->next = cache->entries;
    cache->entries = entry;
    *out = entry;
    return ESTCA_OK;
}

/* The label's entry, encoding it if this is its first use. */
static int lookup(struct est_cacerts_cache *cache, const struct core_label *label,
                  const struct est_cacerts_entry **out, estca_reason *why)
{
    pthread_mutex_lock(&cache->lock);
    struct est_cacerts_entry *entry = find_locked(cache, label);
    int rc = ESTCA_OK;
    if (entry == NULL)
        rc = encode_locked(cache, label, &entry, why);
    pthread_mutex_unlock(&cache->lock);
    *out = entry;
    return rc;
}

int est_cacerts_prepare(struct est_cacerts_cache *cache, const struct core_label *label,
                        estca_reason *why)
{
    const struct est_cacerts_entry *entry;
    estca_reason inner = {{0}};
    int rc = lookup(cache, label, &entry, &inner);
    if (rc != ESTCA_OK)
        return estca_fail(why, rc, "label %s: /cacerts: %s", core_label_name(label), inner.text);
    return ESTCA_OK;
}

void est_cacerts_handle(struct est_request *req)
{
    const struct est_cacerts_entry *entry;
    estca_reason why = {{0}};
    if (lookup(&req->server->cacerts, req->label, &entry, &why) != ESTCA_OK) {
        est_note(req, "cannot encode /cacerts: %s", why.text);
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
