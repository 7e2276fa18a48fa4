/* The EVP_PKEYs hsm_key_find hands out: public halves whose private operations go through the
 * token guard to whatever libp11 key currently stands for them (token_guard.h says why).
 *
 * They are legacy RSA / EC_KEY objects with key methods of ours: OpenSSL 3 routes keys with
 * a non-default method ("foreign" keys) through the legacy method path, the same path
 * libp11 0.4.12's own keys take, so X509_sign, CMS_sign and TLS handshakes use them
 * unchanged. That API is deprecated in OpenSSL 3, hence the suppression below; libp11 has no
 * provider to build on instead. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "token_guard.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

static CRYPTO_ONCE methods_once = CRYPTO_ONCE_STATIC_INIT;
static EC_KEY_METHOD *ec_method;
static RSA_METHOD *rsa_method;
static int ec_record_index = -1;
static int rsa_record_index = -1;

/* Enters the guard for rec's token; false (with the reason queued for OpenSSL's caller) when
 * the token cannot be used now. */
static bool proxy_enter(struct hsm_key_record *rec)
{
    estca_reason why = {{0}};
    if (rec == NULL) {
        ERR_raise_data(ERR_LIB_USER, ERR_R_INTERNAL_ERROR, "token key proxy without a record");
        return false;
    }
    if (token_guard_enter(rec->token, &why) != ESTCA_OK) {
        ERR_raise_data(ERR_LIB_USER, ERR_R_INTERNAL_ERROR, "%s: %s", rec->uri, why.text);
        return false;
    }
    return true;
}

static void proxy_leave(struct hsm_key_record *rec, bool ok)
{
    token_guard_leave(rec->token, ok ? ESTCA_OK : ESTCA_E_TOKEN);
}

static int proxy_ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
                         unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
    (void)kinv; /* precomputed nonces are meaningless for a key on the token */
    (void)r;
    struct hsm_key_record *rec = EC_KEY_get_ex_data(eckey, ec_record_index);
    if (!proxy_enter(rec))
        return 0;
    int ok =
        ECDSA_sign(type, dgst, dlen, sig, siglen, (EC_KEY *)EVP_PKEY_get0_EC_KEY(rec->current));
    proxy_leave(rec, ok == 1);
    return ok;
}

static ECDSA_SIG *proxy_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
                                    const BIGNUM *r, EC_KEY *eckey)
{
    (void)kinv;
    (void)r;
    struct hsm_key_record *rec = EC_KEY_get_ex_data(eckey, ec_record_index);
    if (!proxy_enter(rec))
        return NULL;
    ECDSA_SIG *sig = ECDSA_do_sign(dgst, dlen, (EC_KEY *)EVP_PKEY_get0_EC_KEY(rec->current));
    proxy_leave(rec, sig != NULL);
    return sig;
}

static int proxy_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                              int padding)
{
    struct hsm_key_record *rec = RSA_get_ex_data(rsa, rsa_record_index);
    if (!proxy_enter(rec))
        return -1;
    int n = RSA_private_encrypt(flen, from, to, (RSA *)EVP_PKEY_get0_RSA(rec->current), padding);
    proxy_leave(rec, n >= 0);
    return n;
}

static int proxy_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                              int padding)
{
    struct hsm_key_record *rec = RSA_get_ex_data(rsa, rsa_record_index);
    if (!proxy_enter(rec))
        return -1;
    int n = RSA_private_decrypt(flen, from, to, (RSA *)EVP_PKEY_get0_RSA(rec->current), padding);
    proxy_leave(rec, n >= 0);
    return n;
}

static void create_methods(void)
{
    ec_record_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    rsa_record_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ec_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (ec_method != NULL)
        EC_KEY_METHOD_set_sign(ec_method, proxy_ec_sign, NULL, proxy_ec_sign_sig);
    rsa_method = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    if (rsa_method != NULL && (RSA_meth_set1_name(rsa_method, "estca token key proxy") != 1 ||
                               RSA_meth_set_priv_enc(rsa_method, proxy_rsa_priv_enc) != 1 ||
                               RSA_meth_set_priv_dec(rsa_method, proxy_rsa_priv_dec) != 1)) {
        RSA_meth_free(rsa_method);
        rsa_method = NULL;
    }
}

static int ec_proxy(struct hsm_key_record *rec, EVP_PKEY *pkey, estca_reason *why)
{
    const EC_KEY *source = EVP_PKEY_get0_EC_KEY(rec->current);
    EC_KEY *ec = EC_KEY_new();
    if (source == NULL || ec == NULL || EC_KEY_set_group(ec, EC_KEY_get0_group(source)) != 1 ||
        EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(source)) != 1 ||
        EC_KEY_set_method(ec, ec_method) != 1 ||
        EC_KEY_set_ex_data(ec, ec_record_index, rec) != 1 ||
        EVP_PKEY_assign_EC_KEY(pkey, ec) != 1) {
        EC_KEY_free(ec);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "building the EC key proxy for %s",
                                  rec->uri);
    }
    return ESTCA_OK;
}

static int rsa_proxy(struct hsm_key_record *rec, EVP_PKEY *pkey, estca_reason *why)
{
    const RSA *source = EVP_PKEY_get0_RSA(rec->current);
    RSA *rsa = RSA_new();
    BIGNUM *n = NULL, *e = NULL;
    if (source != NULL && rsa != NULL) {
        n = BN_dup(RSA_get0_n(source));
        e = BN_dup(RSA_get0_e(source));
    }
    if (n == NULL || e == NULL || RSA_set0_key(rsa, n, e, NULL) != 1) {
        BN_free(n);
        BN_free(e);
        RSA_free(rsa);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "building the RSA key proxy for %s",
                                  rec->uri);
    }
    if (RSA_set_method(rsa, rsa_method) != 1 || RSA_set_ex_data(rsa, rsa_record_index, rec) != 1 ||
        EVP_PKEY_assign_RSA(pkey, rsa) != 1) {
        RSA_free(rsa);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "building the RSA key proxy for %s",
                                  rec->uri);
    }
    return ESTCA_OK;
}

int key_proxy_new(struct hsm_key_record *rec, EVP_PKEY **out, estca_reason *why)
{
    *out = NULL;
    if (!CRYPTO_THREAD_run_once(&methods_once, create_methods) || ec_method == NULL ||
        rsa_method == NULL || ec_record_index < 0 || rsa_record_index < 0)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "creating the token key methods");
    EVP_PKEY *pkey = EVP_PKEY_new();
    if (pkey == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    int rc;
    switch (EVP_PKEY_get_base_id(rec->current)) {
    case EVP_PKEY_EC:
        rc = ec_proxy(rec, pkey, why);
        break;
    case EVP_PKEY_RSA:
        rc = rsa_proxy(rec, pkey, why);
        break;
    default:
        rc = estca_fail(why, ESTCA_E_TOKEN, "%s is neither an RSA nor an EC key", rec->uri);
    }
    if (rc != ESTCA_OK) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    *out = pkey;
    return ESTCA_OK;
}
