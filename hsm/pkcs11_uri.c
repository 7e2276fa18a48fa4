/* RFC 7512 PKCS#11 URIs, parsed and matched by p11-kit: which token a URI names and which
 * private key on it. */
#include "pkcs11_module.h"

#include <stdlib.h>
#include <string.h>

int p11_uri_parse(const char *text, const char *what, P11KitUri **out, estca_reason *why)
{
    if (text == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "no %s URI given", what);
    P11KitUri *uri = p11_kit_uri_new();
    if (uri == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory parsing a PKCS#11 URI");
    int rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, uri);
    if (rc != P11_KIT_URI_OK) {
        p11_kit_uri_free(uri);
        return estca_fail(why, ESTCA_E_CONFIG, "%s URI '%s': %s", what, text,
                          p11_kit_uri_message(rc));
    }
    /* p11-kit's match functions silently match nothing when a path attribute was not
     * understood; say so instead of reporting "not found". */
    if (p11_kit_uri_any_unrecognized(uri)) {
        p11_kit_uri_free(uri);
        return estca_fail(why, ESTCA_E_CONFIG, "%s URI '%s' has an unrecognised attribute", what,
                          text);
    }
    if (p11_kit_uri_get_pin_value(uri) != NULL || p11_kit_uri_get_pin_source(uri) != NULL) {
        p11_kit_uri_free(uri);
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s URI '%s' carries a PIN: PINs come from pin files only", what, text);
    }
    *out = uri;
    return ESTCA_OK;
}

bool p11_uri_matches_slot(P11KitUri *uri, const CK_INFO *module, CK_SLOT_ID slot_id,
                          const CK_SLOT_INFO *slot, const CK_TOKEN_INFO *token_info)
{
    CK_SLOT_ID wanted = p11_kit_uri_get_slot_id(uri);
    if (wanted != (CK_SLOT_ID)-1 && wanted != slot_id)
        return false;
    return p11_kit_uri_match_module_info(uri, module) && p11_kit_uri_match_slot_info(uri, slot) &&
           p11_kit_uri_match_token_info(uri, token_info);
}

static int selector_class(P11KitUri *uri, const char *key_uri, estca_reason *why)
{
    CK_ATTRIBUTE *attr = p11_kit_uri_get_attribute(uri, CKA_CLASS);
    if (attr == NULL)
        return ESTCA_OK;
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    if (attr->ulValueLen == sizeof cls)
        memcpy(&cls, attr->pValue, sizeof cls);
    if (cls != CKO_PRIVATE_KEY)
        return estca_fail(why, ESTCA_E_CONFIG, "key URI '%s' names no private key (type=)",
                          key_uri);
    return ESTCA_OK;
}

static int selector_label(P11KitUri *uri, const char *key_uri, struct p11_key_selector *sel,
                          estca_reason *why)
{
    CK_ATTRIBUTE *attr = p11_kit_uri_get_attribute(uri, CKA_LABEL);
    if (attr == NULL)
        return ESTCA_OK;
    /* A %00 in object= cannot be compared as a C string; no sane label has one. */
    if (attr->ulValueLen == 0 || memchr(attr->pValue, '\0', attr->ulValueLen) != NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "key URI '%s': empty or binary object=", key_uri);
    sel->label = strndup(attr->pValue, attr->ulValueLen);
    if (sel->label == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    return ESTCA_OK;
}

static int selector_id(P11KitUri *uri, struct p11_key_selector *sel, estca_reason *why)
{
    CK_ATTRIBUTE *attr = p11_kit_uri_get_attribute(uri, CKA_ID);
    if (attr == NULL || attr->ulValueLen == 0)
        return ESTCA_OK;
    sel->id = malloc(attr->ulValueLen);
    if (sel->id == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    memcpy(sel->id, attr->pValue, attr->ulValueLen);
    sel->id_len = attr->ulValueLen;
    return ESTCA_OK;
}

static int selector_from_uri(const struct hsm_token *token, P11KitUri *uri, const char *key_uri,
                             struct p11_key_selector *sel, estca_reason *why)
{
    if (!p11_uri_matches_slot(uri, &token->module_info, token->slot_id, &token->slot_info,
                              &token->token_info))
        return estca_fail(why, ESTCA_E_NOT_FOUND,
                          "key URI '%s' names a token other than the open one", key_uri);
    int rc = selector_class(uri, key_uri, why);
    if (rc == ESTCA_OK)
        rc = selector_label(uri, key_uri, sel, why);
    if (rc == ESTCA_OK)
        rc = selector_id(uri, sel, why);
    if (rc != ESTCA_OK)
        return rc;
    if (sel->label == NULL && sel->id_len == 0)
        return estca_fail(why, ESTCA_E_CONFIG, "key URI '%s' has neither object= nor id=", key_uri);
    return ESTCA_OK;
}

int p11_key_selector_parse(const struct hsm_token *token, const char *key_uri,
                           struct p11_key_selector *sel, estca_reason *why)
{
    *sel = (struct p11_key_selector){0};
    P11KitUri *uri = NULL;
    int rc = p11_uri_parse(key_uri, "key", &uri, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = selector_from_uri(token, uri, key_uri, sel, why);
    p11_kit_uri_free(uri);
    return rc;
}

void p11_key_selector_free(struct p11_key_selector *sel)
{
    free(sel->label);
    free(sel->id);
    *sel = (struct p11_key_selector){0};
}

int p11_find_private_key(const struct hsm_token *token, CK_SESSION_HANDLE session,
                         const struct p11_key_selector *sel, const char *key_uri,
                         CK_OBJECT_HANDLE *out, estca_reason *why)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_ULONG n = 1;
    if (sel->label != NULL)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, sel->label, strlen(sel->label)};
    if (sel->id_len > 0)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, sel->id, sel->id_len};
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    int rc = p11_find_objects(token, session, tmpl, n, found, 2, &count, why);
    if (rc != ESTCA_OK)
        return rc;
    if (count == 0)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "no private key matches '%s'", key_uri);
    if (count > 1)
        return estca_fail(why, ESTCA_E_CONFIG,
                          "'%s' matches more than one private key: add id= to choose", key_uri);
    *out = found[0];
    return ESTCA_OK;
}
