/* /csrattrs (RFC 7030 §4.5 as replaced by RFC 8951 §4): what a label requires of a CSR, as
 * CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID, base64 DER. No authentication (§4.5.1
 * SHOULD NOT require it). Like /cacerts, every label's body is encoded once at start-up.
 *
 * In order:
 *   challengePassword required -> the OID 1.2.840.113549.1.9.7 alone;
 *   estIdentityLinking required -> the OID 1.2.840.113549.1.9.16.2.58 alone (RFC 7894: a
 *                                client that knows it puts the channel binding there instead);
 *   one-time codes accepted   -> the OID 1.2.840.113549.1.9.16.2.56 alone (RFC 7894
 *                                otpChallenge: where a client without credentials puts its code);
 *   EC key on a curve         -> Attribute { id-ecPublicKey, SET { curve OID } } (8951 §4.3.1);
 *   RSA key of a size         -> Attribute { rsaEncryption, SET { INTEGER bits } } (§4.3.2);
 *   hash                      -> the signature algorithm OID for the key type; with no key type
 *                                both ecdsa-with-SHAxxx and shaxxxWithRSAEncryption, since
 *                                either kind of key is then accepted.
 * A label that requires nothing gets no body: 204. */
#include "base64.h"
#include "est_channel_binding.h"
#include "est_response.h"
#include "otp.h"

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>

/* AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute {{AttrSet}} } */
typedef struct attr_or_oid_st {
    int type;
    union {
        ASN1_OBJECT *oid;
        X509_ATTRIBUTE *attribute;
    } value;
} ATTR_OR_OID;

enum { ATTR_OR_OID_OID, ATTR_OR_OID_ATTRIBUTE };

DEFINE_STACK_OF(ATTR_OR_OID)
typedef STACK_OF(ATTR_OR_OID) CSR_ATTRS;

/* CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID */
// clang-format off
ASN1_CHOICE(ATTR_OR_OID) = {
    ASN1_SIMPLE(ATTR_OR_OID, value.oid, ASN1_OBJECT),
    ASN1_SIMPLE(ATTR_OR_OID, value.attribute, X509_ATTRIBUTE),
} static_ASN1_CHOICE_END(ATTR_OR_OID)

ASN1_ITEM_TEMPLATE(CSR_ATTRS) =
    ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, CsrAttrs, ATTR_OR_OID)
static_ASN1_ITEM_TEMPLATE_END(CSR_ATTRS);
// clang-format on

static void attr_or_oid_free(ATTR_OR_OID *element)
{
    ASN1_item_free((ASN1_VALUE *)element, ASN1_ITEM_rptr(ATTR_OR_OID));
}

/* Appends an element to attrs; takes oid or attribute (exactly one non-NULL) in every case. */
static int push(CSR_ATTRS *attrs, ASN1_OBJECT *oid, X509_ATTRIBUTE *attribute)
{
    ATTR_OR_OID *element = (ATTR_OR_OID *)ASN1_item_new(ASN1_ITEM_rptr(ATTR_OR_OID));
    if (element == NULL || (oid == NULL && attribute == NULL)) {
        ASN1_OBJECT_free(oid);
        X509_ATTRIBUTE_free(attribute);
        attr_or_oid_free(element);
        return 0;
    }
    if (oid != NULL) {
        element->type = ATTR_OR_OID_OID;
        element->value.oid = oid;
    } else {
        element->type = ATTR_OR_OID_ATTRIBUTE;
        element->value.attribute = attribute;
    }
    if (sk_ATTR_OR_OID_push(attrs, element) <= 0) {
        attr_or_oid_free(element);
        return 0;
    }
    return 1;
}

static int push_oid(CSR_ATTRS *attrs, int nid)
{
    ASN1_OBJECT *oid = OBJ_nid2obj(nid);
    return oid != NULL && push(attrs, OBJ_dup(oid), NULL);
}

static int push_dotted_oid(CSR_ATTRS *attrs, const char *dotted)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(dotted, 1);
    return oid != NULL && push(attrs, oid, NULL);
}

static int push_key(CSR_ATTRS *attrs, const struct core_csr_attrs *want)
{
    if (want->key_algorithm == CORE_CSR_KEY_EC) {
        ASN1_OBJECT *curve = OBJ_dup(OBJ_nid2obj(want->ec_curve_nid));
        X509_ATTRIBUTE *attribute =
            curve != NULL ? X509_ATTRIBUTE_create(NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT, curve)
                          : NULL;
        if (attribute == NULL)
            ASN1_OBJECT_free(curve);
        return push(attrs, NULL, attribute);
    }
    ASN1_INTEGER *bits = ASN1_INTEGER_new();
    if (bits == NULL || !ASN1_INTEGER_set(bits, want->rsa_bits)) {
        ASN1_INTEGER_free(bits);
        return 0;
    }
    X509_ATTRIBUTE *attribute = X509_ATTRIBUTE_create(NID_rsaEncryption, V_ASN1_INTEGER, bits);
    if (attribute == NULL)
        ASN1_INTEGER_free(bits);
    return push(attrs, NULL, attribute);
}

static int push_signature_algorithm(CSR_ATTRS *attrs, int hash_nid, int key_nid)
{
    int signature_nid = NID_undef;
    return OBJ_find_sigid_by_algs(&signature_nid, hash_nid, key_nid) &&
           push_oid(attrs, signature_nid);
}

static int push_hash(CSR_ATTRS *attrs, const struct core_csr_attrs *want)
{
    switch (want->key_algorithm) {
    case CORE_CSR_KEY_EC:
        return push_signature_algorithm(attrs, want->hash_nid, NID_X9_62_id_ecPublicKey);
    case CORE_CSR_KEY_RSA:
        return push_signature_algorithm(attrs, want->hash_nid, NID_rsaEncryption);
    case CORE_CSR_KEY_ANY:
        break;
    }
    return push_signature_algorithm(attrs, want->hash_nid, NID_X9_62_id_ecPublicKey) &&
           push_signature_algorithm(attrs, want->hash_nid, NID_rsaEncryption);
}

static int fill(CSR_ATTRS *attrs, const struct core_csr_attrs *want)
{
    if (want->challenge_password && !push_oid(attrs, NID_pkcs9_challengePassword))
        return 0;
    if (want->identity_linking && !push_dotted_oid(attrs, EST_OID_IDENTITY_LINKING))
        return 0;
    if (want->otp_challenge && !push_dotted_oid(attrs, OTP_OID))
        return 0;
    if (want->key_algorithm != CORE_CSR_KEY_ANY && !push_key(attrs, want))
        return 0;
    if (want->hash_nid != NID_undef && !push_hash(attrs, want))
        return 0;
    return 1;
}

int est_csrattrs_der(const struct core_csr_attrs *want, unsigned char **out, size_t *out_len,
                     estca_reason *why)
{
    *out = NULL;
    *out_len = 0;
    CSR_ATTRS *attrs = sk_ATTR_OR_OID_new_null();
    if (attrs == NULL || !fill(attrs, want)) {
        sk_ATTR_OR_OID_pop_free(attrs, attr_or_oid_free);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot build CsrAttrs");
    }
    unsigned char *der = NULL;
    int der_len = ASN1_item_i2d((ASN1_VALUE *)attrs, &der, ASN1_ITEM_rptr(CSR_ATTRS));
    sk_ATTR_OR_OID_pop_free(attrs, attr_or_oid_free);
    if (der_len <= 0)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot encode CsrAttrs");
    *out = der;
    *out_len = (size_t)der_len;
    return ESTCA_OK;
}

int est_csrattrs_base64(const struct core_csr_attrs *want, char **out, size_t *out_len,
                        estca_reason *why)
{
    *out = NULL;
    *out_len = 0;
    if (!core_csr_attrs_any(want))
        return ESTCA_OK;
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc = est_csrattrs_der(want, &der, &der_len, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = base64_encode(der, der_len, out, out_len, why);
    OPENSSL_free(der);
    return rc;
}

int est_csrattrs_encode(const struct core_label *label, char **body, size_t *body_len,
                        estca_reason *why)
{
    struct core_csr_attrs want;
    core_label_csr_attrs(label, &want);
    return est_csrattrs_base64(&want, body, body_len, why);
}

void est_csrattrs_handle(struct est_request *req)
{
    const struct est_label_body *entry =
        est_label_bodies_find(&req->generation->csrattrs, req->label);
    if (entry == NULL) {
        est_note(req, "no /csrattrs entry for label %s", core_label_name(req->label));
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
    if (entry->body == NULL) {
        /* RFC 8951 §4: 204 = no attributes are required. */
        struct est_response none = {.status = 204};
        est_respond(req, &none);
        return;
    }
    struct est_response response = {
        .status = 200,
        .content_type = "application/csrattrs",
        .body = entry->body,
        .body_len = entry->body_len,
    };
    est_respond(req, &response);
}
