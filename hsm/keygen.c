/* CA key pairs generated inside the token through the module's own function list: libp11
 * 0.4.12 generates only RSA, with a template we cannot choose. (hsm_token_init, the other
 * call of keygen.h, is in token_init.c.) */
#include "keygen.h"

#include "pkcs11_module.h"
#include "token_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RANDOM_ID_LEN 16

/* DER of the named curves' OIDs, the CKA_EC_PARAMS form PKCS#11 v2.40 recommends. */
static const unsigned char oid_prime256v1[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                               0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_secp384r1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static const struct p11_key_algorithm algorithms[] = {
    {"rsa:2048", CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, NULL, 0},
    {"rsa:3072", CKM_RSA_PKCS_KEY_PAIR_GEN, 3072, NULL, 0},
    {"rsa:4096", CKM_RSA_PKCS_KEY_PAIR_GEN, 4096, NULL, 0},
    {"ec:P-256", CKM_EC_KEY_PAIR_GEN, 0, oid_prime256v1, sizeof oid_prime256v1},
    {"ec:P-384", CKM_EC_KEY_PAIR_GEN, 0, oid_secp384r1, sizeof oid_secp384r1},
};

int p11_find_key_algorithm(const char *name, const struct p11_key_algorithm **out,
                           estca_reason *why)
{
    for (size_t i = 0; name != NULL && i < sizeof algorithms / sizeof algorithms[0]; i++) {
        if (strcmp(algorithms[i].name, name) == 0) {
            *out = &algorithms[i];
            return ESTCA_OK;
        }
    }
    return estca_fail(why, ESTCA_E_INVALID,
                      "unknown key type '%s' (rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384)",
                      name ? name : "(none)");
}

void p11_append_key_params(const struct p11_key_algorithm *alg, CK_ATTRIBUTE *attrs, CK_ULONG *n,
                           CK_ULONG *bits)
{
    static CK_BYTE exponent[] = {0x01, 0x00, 0x01}; /* 65537 */
    *bits = alg->modulus_bits;
    if (alg->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN) {
        attrs[(*n)++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, bits, sizeof *bits};
        attrs[(*n)++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exponent, sizeof exponent};
    } else {
        attrs[(*n)++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)alg->ec_params, alg->ec_params_len};
    }
}

/* Fails if a key object of class cls carries attribute attr (a label or an id). */
static int refuse_existing(const struct hsm_token *t, CK_SESSION_HANDLE session,
                           CK_OBJECT_CLASS cls, CK_ATTRIBUTE attr, const char *key_uri,
                           estca_reason *why)
{
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}, attr};
    CK_OBJECT_HANDLE found;
    CK_ULONG count = 0;
    int rc = p11_find_objects(t, session, tmpl, 2, &found, 1, &count, why);
    if (rc != ESTCA_OK)
        return rc;
    if (count > 0)
        return estca_fail(why, ESTCA_E_INVALID, "a %s key with the %s of '%s' already exists",
                          cls == CKO_PRIVATE_KEY ? "private" : "public",
                          attr.type == CKA_LABEL ? "object=" : "id=", key_uri);
    return ESTCA_OK;
}

/* A new key must not share its label or id with any key half: key URIs select by label,
 * and libp11 pairs a private EC key with its public half by CKA_ID. */
static int refuse_duplicates(const struct hsm_token *t, CK_SESSION_HANDLE session,
                             const struct p11_key_selector *sel, const char *key_uri,
                             estca_reason *why)
{
    CK_ATTRIBUTE attrs[2] = {{CKA_LABEL, sel->label, strlen(sel->label)},
                             {CKA_ID, sel->id, sel->id_len}};
    size_t nattrs = sel->id_len > 0 ? 2 : 1;
    CK_OBJECT_CLASS classes[2] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    for (size_t a = 0; a < nattrs; a++) {
        for (size_t c = 0; c < 2; c++) {
            int rc = refuse_existing(t, session, classes[c], attrs[a], key_uri, why);
            if (rc != ESTCA_OK)
                return rc;
        }
    }
    return ESTCA_OK;
}

/* Without id= the pair gets a random 16-byte CKA_ID from the token's RNG. */
static int ensure_id(const struct hsm_token *t, CK_SESSION_HANDLE session,
                     struct p11_key_selector *sel, estca_reason *why)
{
    if (sel->id_len > 0)
        return ESTCA_OK;
    sel->id = malloc(RANDOM_ID_LEN);
    if (sel->id == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    CK_RV rv = t->p11->C_GenerateRandom(session, sel->id, RANDOM_ID_LEN);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_GenerateRandom for the key id");
    sel->id_len = RANDOM_ID_LEN;
    return ESTCA_OK;
}

static CK_RV generate_pair(const struct hsm_token *t, CK_SESSION_HANDLE session,
                           const struct p11_key_algorithm *alg, const struct p11_key_selector *sel)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits;
    CK_ULONG label_len = strlen(sel->label);
    CK_ATTRIBUTE pub[7] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no}, /* readable without login, e.g. by key show */
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_LABEL, sel->label, label_len},
        {CKA_ID, sel->id, sel->id_len},
    };
    CK_ULONG npub = 5;
    p11_append_key_params(alg, pub, &npub, &bits);
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},      {CKA_LABEL, sel->label, label_len},
        {CKA_ID, sel->id, sel->id_len},
    };
    CK_MECHANISM mechanism = {alg->mechanism, NULL, 0};
    CK_OBJECT_HANDLE pub_handle, priv_handle;
    return t->p11->C_GenerateKeyPair(session, &mechanism, pub, npub, priv,
                                     sizeof priv / sizeof priv[0], &pub_handle, &priv_handle);
}

static int keygen_in_session(struct hsm_token *t, CK_SESSION_HANDLE session,
                             const struct p11_key_algorithm *alg, struct p11_key_selector *sel,
                             const char *key_uri, estca_reason *why)
{
    int rc = refuse_duplicates(t, session, sel, key_uri, why);
    if (rc == ESTCA_OK)
        rc = ensure_id(t, session, sel, why);
    if (rc != ESTCA_OK)
        return rc;
    CK_RV rv = generate_pair(t, session, alg, sel);
    if (rv != CKR_OK) {
        char what[128];
        snprintf(what, sizeof what, "C_GenerateKeyPair %s", alg->name);
        return p11_fail_rv(why, rv, what);
    }
    return ESTCA_OK;
}

int hsm_keygen_ca(struct hsm_token *token, const char *key_uri, const char *algorithm,
                  estca_reason *why)
{
    if (token == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "hsm_keygen_ca: no token");
    const struct p11_key_algorithm *alg = NULL;
    if (p11_find_key_algorithm(algorithm, &alg, why) != ESTCA_OK)
        return ESTCA_E_INVALID;
    struct p11_key_selector sel;
    int rc = p11_key_selector_parse(token, key_uri, &sel, why);
    if (rc == ESTCA_OK && sel.label == NULL)
        rc =
            estca_fail(why, ESTCA_E_INVALID, "key URI '%s' needs object= to name the key", key_uri);
    if (rc == ESTCA_OK && (rc = token_guard_enter(token, why)) == ESTCA_OK) {
        CK_SESSION_HANDLE session;
        rc = p11_session_open(token, &session, why);
        if (rc == ESTCA_OK) {
            rc = keygen_in_session(token, session, alg, &sel, key_uri, why);
            p11_session_close(token, session);
        }
        token_guard_leave(token, rc);
    }
    p11_key_selector_free(&sel);
    return rc;
}
