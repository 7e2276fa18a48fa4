/* Per-label response bodies that never change while the server runs (/cacerts, /csrattrs):
 * encoded once at start-up, then only read. */
#include "est_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>

int est_label_bodies_build(struct est_label_bodies *bodies, const struct ca_core *core,
                           est_label_encoder encode, const char *what, estca_reason *why)
{
    size_t n = core_label_count(core);
    bodies->entries = calloc(n > 0 ? n : 1, sizeof *bodies->entries);
    bodies->n = 0;
    if (bodies->entries == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct est_label_body *entry = &bodies->entries[i];
        entry->label = core_label_at(core, i);
        estca_reason inner = {{0}};
        int rc = encode(entry->label, &entry->body, &entry->body_len, &inner);
        if (rc != ESTCA_OK)
            return estca_fail(why, rc, "label %s: %s: %s", core_label_name(entry->label), what,
                              inner.text);
        bodies->n++;
    }
    return ESTCA_OK;
}

void est_label_bodies_free(struct est_label_bodies *bodies)
{
    for (size_t i = 0; i < bodies->n; i++)
        OPENSSL_free(bodies->entries[i].body);
    free(bodies->entries);
    bodies->entries = NULL;
    bodies->n = 0;
}

const struct est_label_body *est_label_bodies_find(const struct est_label_bodies *bodies,
                                                   const struct core_label *label)
{
    for (size_t i = 0; i < bodies->n; i++) {
        if (bodies->entries[i].label == label)
            return &bodies->entries[i];
    }
    return NULL;
}
