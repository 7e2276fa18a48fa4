/* hsm/: token open and login, PIN files, key generation, key lookup, signing through the
 * token, key attributes, random bytes and concurrent signing, on a private SoftHSM2 token. */
#include "keygen.h"
#include "softhsm_fixture.h"
#include "token.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct softhsm_fixture f;

static void setup(void)
{
    softhsm_fixture_setup(&f);
}

static void teardown(void)
{
    softhsm_fixture_teardown(&f);
}

/* Tests that open the token themselves close the fixture's first: one user per module. */
static void close_fixture_token(void)
{
    hsm_token_close(f.token);
    f.token = NULL;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    cr_assert(fchmod(fd, mode) == 0);
    close(fd);
}

static void path_in_fixture(char *out, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", f.dir, name);
    cr_assert(n > 0 && n < PATH_MAX);
}

static void key_uri(char *out, size_t cap, const char *label)
{
    snprintf(out, cap, "%s;object=%s", FIXTURE_TOKEN_URI, label);
}

/* ---- signing helpers ---- */

/* The public half as a plain software key, via its DER encoding. */
static EVP_PKEY *software_public(EVP_PKEY *token_key)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(token_key, &der);
    cr_assert(len > 0, "i2d_PUBKEY failed");
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    cr_assert(pub != NULL);
    return pub;
}

static bool sign_and_verify(EVP_PKEY *priv, EVP_PKEY *pub)
{
    static const unsigned char msg[] = "estca: signed inside the token";
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, priv) == 1 &&
              EVP_DigestSign(ctx, sig, &siglen, msg, sizeof msg) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return false;
    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
         EVP_DigestVerify(ctx, sig, siglen, msg, sizeof msg) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *find_key(const char *uri)
{
    estca_reason why = {{0}};
    EVP_PKEY *pkey = NULL;
    int rc = hsm_key_find(f.token, uri, &pkey, &why);
    cr_assert_eq(rc, ESTCA_OK, "hsm_key_find %s: %s", uri, why.text);
    cr_assert(pkey != NULL);
    return pkey;
}

static void generate(const char *uri, const char *algorithm)
{
    estca_reason why = {{0}};
    int rc = hsm_keygen_ca(f.token, uri, algorithm, &why);
    cr_assert_eq(rc, ESTCA_OK, "hsm_keygen_ca %s %s: %s", uri, algorithm, why.text);
}

static void keygen_sign_verify(const char *algorithm, int base_id, int bits)
{
    char uri[256];
    key_uri(uri, sizeof uri, "ca-key");
    generate(uri, algorithm);
    EVP_PKEY *key = find_key(uri);
    EVP_PKEY *pub = software_public(key);
    cr_assert_eq(EVP_PKEY_get_base_id(pub), base_id);
    cr_assert_eq(EVP_PKEY_get_bits(pub), bits);
    cr_assert(sign_and_verify(key, pub), "%s signature does not verify", algorithm);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
}

/* ---- the module's function list, for set-ups hsm/ refuses to make ---- */

struct raw {
    void *dl;
    CK_FUNCTION_LIST_PTR p11;
    CK_SESSION_HANDLE session;
};

static CK_SLOT_ID fixture_slot(CK_FUNCTION_LIST_PTR p11)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    char label[32];
    memset(label, ' ', sizeof label);
    memcpy(label, FIXTURE_TOKEN_LABEL, strlen(FIXTURE_TOKEN_LABEL));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            memcmp(info.label, label, sizeof label) == 0)
            return slots[i];
    }
    cr_assert_fail("fixture token not found");
    return 0;
}

static void raw_open(struct raw *r)
{
    r->dl = dlopen(HSM_DEFAULT_MODULE, RTLD_NOW | RTLD_NOLOAD);
    cr_assert(r->dl != NULL);
    CK_C_GetFunctionList get_list;
    *(void **)&get_list = dlsym(r->dl, "C_GetFunctionList");
    cr_assert(get_list != NULL && get_list(&r->p11) == CKR_OK);
    CK_RV rv = r->p11->C_OpenSession(fixture_slot(r->p11), CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                     NULL, NULL, &r->session);
    cr_assert_eq(rv, CKR_OK);
}

static void raw_close(struct raw *r)
{
    r->p11->C_CloseSession(r->session);
    dlclose(r->dl);
}

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

/* A token key pair (EC P-256 or Ed25519) with the given label and a one-byte id. */
static void raw_generate(struct raw *r, const char *label, unsigned char id, bool ed25519)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, &id, 1},
        {CKA_EC_PARAMS, (void *)(ed25519 ? oid_ed25519 : oid_p256),
         ed25519 ? sizeof oid_ed25519 : sizeof oid_p256},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_SIGN, &yes, sizeof yes},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, &id, 1},
    };
    CK_MECHANISM mech = {ed25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv = r->p11->C_GenerateKeyPair(r->session, &mech, pub, 4, priv, 4, &hpub, &hpriv);
    cr_assert_eq(rv, CKR_OK, "C_GenerateKeyPair: 0x%lx", rv);
}

/* Destroys every object labelled label. */
static void raw_destroy(struct raw *r, const char *label)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE found[8];
    CK_ULONG n = 0;
    cr_assert_eq(r->p11->C_FindObjectsInit(r->session, tmpl, 1), CKR_OK);
    cr_assert_eq(r->p11->C_FindObjects(r->session, found, 8, &n), CKR_OK);
    cr_assert_eq(r->p11->C_FindObjectsFinal(r->session), CKR_OK);
    cr_assert(n > 0);
    for (CK_ULONG i = 0; i < n; i++)
        cr_assert_eq(r->p11->C_DestroyObject(r->session, found[i]), CKR_OK);
}

/* ---- token and PIN ---- */

TestSuite(token, .init = setup, .fini = teardown);

Test(token, open_and_login)
{
    cr_assert(f.token != NULL);
    unsigned char buf[16];
    estca_reason why = {{0}};
    cr_assert_eq(hsm_random(f.token, buf, sizeof buf, &why), ESTCA_OK, "%s", why.text);
}

Test(token, close_and_reopen)
{
    close_fixture_token();
    estca_reason why = {{0}};
    int rc = hsm_token_open(NULL, FIXTURE_TOKEN_URI, f.pin_file, &f.token, &why);
    cr_assert_eq(rc, ESTCA_OK, "%s", why.text);
}

Test(token, wrong_pin)
{
    close_fixture_token();
    char pin[PATH_MAX];
    path_in_fixture(pin, "wrong.pin");
    write_file(pin, "0000-wrong\n", 0600);
    estca_reason why = {{0}};
    struct hsm_token *t = NULL;
    int rc = hsm_token_open(HSM_DEFAULT_MODULE, FIXTURE_TOKEN_URI, pin, &t, &why);
    cr_assert_eq(rc, ESTCA_E_AUTH, "rc %d: %s", rc, why.text);
    cr_assert(t == NULL);
    cr_assert(strstr(why.text, "CKR_PIN_INCORRECT") != NULL, "reason: %s", why.text);
}

Test(token, pin_file_readable_by_others_refused)
{
    char pin[PATH_MAX];
    path_in_fixture(pin, "loose.pin");
    mode_t modes[] = {0644, 0640, 0604};
    for (size_t i = 0; i < 3; i++) {
        write_file(pin, "1234-test\n", modes[i]);
        estca_reason why = {{0}};
        struct hsm_token *t = NULL;
        int rc = hsm_token_open(HSM_DEFAULT_MODULE, FIXTURE_TOKEN_URI, pin, &t, &why);
        cr_assert_eq(rc, ESTCA_E_CONFIG, "mode %o: rc %d: %s", modes[i], rc, why.text);
        cr_assert(strstr(why.text, "group or others") != NULL, "reason: %s", why.text);
    }
}

Test(token, pin_file_missing)
{
    char pin[PATH_MAX];
    path_in_fixture(pin, "absent.pin");
    estca_reason why = {{0}};
    struct hsm_token *t = NULL;
    cr_assert_eq(hsm_token_open(NULL, FIXTURE_TOKEN_URI, pin, &t, &why), ESTCA_E_IO);
}

Test(token, secret_file_strips_one_newline)
{
    char path[PATH_MAX], buf[64];
    path_in_fixture(path, "secret");
    estca_reason why = {{0}};
    write_file(path, "abc\n\n", 0600);
    cr_assert_eq(hsm_read_secret_file(path, buf, sizeof buf, &why), ESTCA_OK, "%s", why.text);
    cr_assert_str_eq(buf, "abc\n");
    write_file(path, "abc", 0400);
    cr_assert_eq(hsm_read_secret_file(path, buf, sizeof buf, &why), ESTCA_OK, "%s", why.text);
    cr_assert_str_eq(buf, "abc");
    write_file(path, "\n", 0600);
    cr_assert_eq(hsm_read_secret_file(path, buf, sizeof buf, &why), ESTCA_E_CONFIG);
    write_file(path, "0123456789", 0600);
    cr_assert_eq(hsm_read_secret_file(path, buf, 8, &why), ESTCA_E_TOO_LARGE);
}

Test(token, pin_from_credentials_directory)
{
    close_fixture_token();
    char pin[PATH_MAX];
    path_in_fixture(pin, "token-pin");
    write_file(pin, "1234-test", 0400);
    estca_reason why = {{0}};
    unsetenv("CREDENTIALS_DIRECTORY");
    cr_assert_eq(hsm_token_open(NULL, FIXTURE_TOKEN_URI, NULL, &f.token, &why), ESTCA_E_CONFIG);
    setenv("CREDENTIALS_DIRECTORY", f.dir, 1);
    int rc = hsm_token_open(NULL, FIXTURE_TOKEN_URI, NULL, &f.token, &why);
    cr_assert_eq(rc, ESTCA_OK, "%s", why.text);
}

Test(token, unknown_token_not_found)
{
    close_fixture_token();
    estca_reason why = {{0}};
    struct hsm_token *t = NULL;
    int rc = hsm_token_open(NULL, "pkcs11:token=no-such-token", f.pin_file, &t, &why);
    cr_assert_eq(rc, ESTCA_E_NOT_FOUND, "rc %d: %s", rc, why.text);
    cr_assert(strstr(why.text, "no-such-token") != NULL, "reason: %s", why.text);
}

Test(token, bad_uris_refused)
{
    const char *uris[] = {"file:///etc/passwd", "pkcs11:token=estca-test;pin-value=1234-test",
                          "pkcs11:token=estca-test;frobnicate=1", "pkcs11:token=%zz"};
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        estca_reason why = {{0}};
        struct hsm_token *t = NULL;
        int rc = hsm_token_open(NULL, uris[i], f.pin_file, &t, &why);
        cr_assert_eq(rc, ESTCA_E_CONFIG, "%s: rc %d: %s", uris[i], rc, why.text);
    }
}

Test(token, second_open_in_process_refused)
{
    estca_reason why = {{0}};
    struct hsm_token *t = NULL;
    int rc = hsm_token_open(NULL, FIXTURE_TOKEN_URI, f.pin_file, &t, &why);
    cr_assert_eq(rc, ESTCA_E_INVALID, "rc %d: %s", rc, why.text);
    cr_assert(strstr(why.text, "already in use") != NULL, "reason: %s", why.text);
    /* The fixture's token is unharmed. */
    unsigned char buf[8];
    cr_assert_eq(hsm_random(f.token, buf, sizeof buf, &why), ESTCA_OK, "%s", why.text);
}

Test(token, random_differs)
{
    unsigned char a[32], b[32];
    estca_reason why = {{0}};
    cr_assert_eq(hsm_random(f.token, a, sizeof a, &why), ESTCA_OK, "%s", why.text);
    cr_assert_eq(hsm_random(f.token, b, sizeof b, &why), ESTCA_OK, "%s", why.text);
    cr_assert(memcmp(a, b, sizeof a) != 0);
    cr_assert_eq(hsm_random(f.token, NULL, 0, &why), ESTCA_OK);
    cr_assert_eq(hsm_random(f.token, NULL, 4, &why), ESTCA_E_INVALID);
}

/* ---- key generation and use ---- */

TestSuite(keygen, .init = setup, .fini = teardown);

Test(keygen, rsa_2048)
{
    keygen_sign_verify("rsa:2048", EVP_PKEY_RSA, 2048);
}

Test(keygen, rsa_3072)
{
    keygen_sign_verify("rsa:3072", EVP_PKEY_RSA, 3072);
}

Test(keygen, rsa_4096, .timeout = 240)
{
    keygen_sign_verify("rsa:4096", EVP_PKEY_RSA, 4096);
}

Test(keygen, ec_p256)
{
    keygen_sign_verify("ec:P-256", EVP_PKEY_EC, 256);
}

Test(keygen, ec_p384)
{
    keygen_sign_verify("ec:P-384", EVP_PKEY_EC, 384);
}

Test(keygen, protection_attributes)
{
    char uri[256];
    key_uri(uri, sizeof uri, "protected");
    generate(uri, "ec:P-256");
    struct hsm_key_attributes a;
    memset(&a, 0xff, sizeof a);
    estca_reason why = {{0}};
    cr_assert_eq(hsm_key_attributes(f.token, uri, &a, &why), ESTCA_OK, "%s", why.text);
    cr_assert(a.token && a.private_obj && a.sensitive && a.always_sensitive);
    cr_assert(!a.extractable && a.never_extractable);
}

Test(keygen, duplicate_label_refused)
{
    char uri[256];
    key_uri(uri, sizeof uri, "twice");
    generate(uri, "ec:P-256");
    estca_reason why = {{0}};
    cr_assert_eq(hsm_keygen_ca(f.token, uri, "rsa:2048", &why), ESTCA_E_INVALID);
    cr_assert(strstr(why.text, "already exists") != NULL, "reason: %s", why.text);
}

Test(keygen, duplicate_id_refused)
{
    generate(FIXTURE_TOKEN_URI ";object=one;id=%01%02", "ec:P-256");
    estca_reason why = {{0}};
    int rc = hsm_keygen_ca(f.token, FIXTURE_TOKEN_URI ";object=two;id=%01%02", "ec:P-256", &why);
    cr_assert_eq(rc, ESTCA_E_INVALID, "rc %d: %s", rc, why.text);
}

Test(keygen, bad_requests_refused)
{
    estca_reason why = {{0}};
    char uri[256];
    key_uri(uri, sizeof uri, "x");
    cr_assert_eq(hsm_keygen_ca(f.token, uri, "rsa:1024", &why), ESTCA_E_INVALID);
    cr_assert_eq(hsm_keygen_ca(f.token, uri, "ec:P-521", &why), ESTCA_E_INVALID);
    cr_assert_eq(hsm_keygen_ca(f.token, FIXTURE_TOKEN_URI ";id=%01", "ec:P-256", &why),
                 ESTCA_E_INVALID);
    cr_assert_eq(hsm_keygen_ca(f.token, "pkcs11:token=other;object=x", "ec:P-256", &why),
                 ESTCA_E_NOT_FOUND);
}

Test(keygen, find_picks_the_named_key)
{
    generate(FIXTURE_TOKEN_URI ";object=ec-key", "ec:P-256");
    generate(FIXTURE_TOKEN_URI ";object=rsa-key;id=%a1%b2", "rsa:2048");
    EVP_PKEY *ec = find_key(FIXTURE_TOKEN_URI ";object=ec-key");
    EVP_PKEY *rsa = find_key(FIXTURE_TOKEN_URI ";object=rsa-key");
    EVP_PKEY *by_id = find_key("pkcs11:id=%a1%b2");
    EVP_PKEY *typed = find_key(FIXTURE_TOKEN_URI ";object=ec-key;type=private");
    cr_assert_eq(EVP_PKEY_get_base_id(ec), EVP_PKEY_EC);
    cr_assert_eq(EVP_PKEY_get_base_id(rsa), EVP_PKEY_RSA);
    EVP_PKEY *rsa_pub = software_public(rsa), *id_pub = software_public(by_id);
    EVP_PKEY *ec_pub = software_public(ec), *typed_pub = software_public(typed);
    cr_assert_eq(EVP_PKEY_eq(rsa_pub, id_pub), 1);
    cr_assert_eq(EVP_PKEY_eq(ec_pub, typed_pub), 1);
    cr_assert(sign_and_verify(ec, ec_pub));
    cr_assert(!sign_and_verify(by_id, ec_pub)); /* the other key's signature must not verify */
    EVP_PKEY *all[] = {ec, rsa, by_id, typed, rsa_pub, id_pub, ec_pub, typed_pub};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        EVP_PKEY_free(all[i]);
}

Test(keygen, generated_key_found_after_earlier_enumeration)
{
    /* libp11 enumerated (and cached) the keys for the first find; the second key, made
     * afterwards on the same open token, must be found too. */
    generate(FIXTURE_TOKEN_URI ";object=first", "ec:P-256");
    EVP_PKEY *first = find_key(FIXTURE_TOKEN_URI ";object=first");
    generate(FIXTURE_TOKEN_URI ";object=second", "ec:P-384");
    EVP_PKEY *second = find_key(FIXTURE_TOKEN_URI ";object=second");
    cr_assert_eq(EVP_PKEY_get_bits(second), 384);
    EVP_PKEY *pub = software_public(second);
    cr_assert(sign_and_verify(second, pub));
    EVP_PKEY_free(pub);
    EVP_PKEY_free(second);
    EVP_PKEY_free(first);
}

/* ---- key lookup errors ---- */

TestSuite(key, .init = setup, .fini = teardown);

static int find_status(const char *uri, estca_reason *why)
{
    EVP_PKEY *pkey = (EVP_PKEY *)1;
    int rc = hsm_key_find(f.token, uri, &pkey, why);
    cr_assert(rc == ESTCA_OK || pkey == NULL);
    EVP_PKEY_free(rc == ESTCA_OK ? pkey : NULL);
    return rc;
}

Test(key, lookup_errors)
{
    generate(FIXTURE_TOKEN_URI ";object=present", "ec:P-256");
    estca_reason why = {{0}};
    cr_assert_eq(find_status(FIXTURE_TOKEN_URI ";object=absent", &why), ESTCA_E_NOT_FOUND);
    cr_assert_eq(find_status(FIXTURE_TOKEN_URI ";object=present;id=%99", &why), ESTCA_E_NOT_FOUND);
    cr_assert_eq(find_status(FIXTURE_TOKEN_URI, &why), ESTCA_E_CONFIG);
    cr_assert_eq(find_status("pkcs11:token=other;object=present", &why), ESTCA_E_NOT_FOUND);
    cr_assert_eq(find_status(FIXTURE_TOKEN_URI ";object=present;type=cert", &why), ESTCA_E_CONFIG);
    cr_assert_eq(find_status("not a uri", &why), ESTCA_E_CONFIG);
    struct hsm_key_attributes a;
    cr_assert_eq(hsm_key_attributes(f.token, FIXTURE_TOKEN_URI ";object=absent", &a, &why),
                 ESTCA_E_NOT_FOUND);
}

Test(key, ambiguous_label)
{
    struct raw r;
    raw_open(&r);
    raw_generate(&r, "shared", 1, false);
    raw_generate(&r, "shared", 2, false);
    raw_close(&r);
    estca_reason why = {{0}};
    int rc = find_status(FIXTURE_TOKEN_URI ";object=shared", &why);
    cr_assert_eq(rc, ESTCA_E_CONFIG, "rc %d: %s", rc, why.text);
    cr_assert(strstr(why.text, "more than one") != NULL, "reason: %s", why.text);
    EVP_PKEY *one = find_key(FIXTURE_TOKEN_URI ";object=shared;id=%02");
    EVP_PKEY_free(one);
}

Test(key, destroyed_key_not_found_and_recreated_after_reopen)
{
    const char *uri = FIXTURE_TOKEN_URI ";object=rotated";
    generate(uri, "ec:P-256");
    EVP_PKEY_free(find_key(uri)); /* now in libp11's key list */
    struct raw r;
    raw_open(&r);
    raw_destroy(&r, "rotated");
    raw_close(&r);
    estca_reason why = {{0}};
    cr_assert_eq(find_status(uri, &why), ESTCA_E_NOT_FOUND, "%s", why.text);
    /* libp11 0.4.12 never forgets a listed key: a re-created one is refused as ambiguous
     * on the same open token, and found once the token is re-opened. */
    generate(uri, "ec:P-256");
    int rc = find_status(uri, &why);
    cr_assert_eq(rc, ESTCA_E_TOKEN, "rc %d: %s", rc, why.text);
    close_fixture_token();
    rc = hsm_token_open(NULL, FIXTURE_TOKEN_URI, f.pin_file, &f.token, &why);
    cr_assert_eq(rc, ESTCA_OK, "%s", why.text);
    EVP_PKEY_free(find_key(uri));
}

Test(key, other_key_types_break_libp11_lookup)
{
    /* Documents libp11 0.4.12: one private key that is neither RSA nor EC on the token
     * makes its key enumeration, and so every hsm_key_find, fail. */
    generate(FIXTURE_TOKEN_URI ";object=fine", "ec:P-256");
    struct raw r;
    raw_open(&r);
    raw_generate(&r, "edwards", 7, true);
    raw_close(&r);
    estca_reason why = {{0}};
    int rc = find_status(FIXTURE_TOKEN_URI ";object=fine", &why);
    cr_assert_eq(rc, ESTCA_E_TOKEN, "rc %d: %s", rc, why.text);
    cr_assert(strstr(why.text, "neither RSA nor EC") != NULL, "reason: %s", why.text);
}

/* ---- concurrency ---- */

#define SIGN_THREADS 4
#define SIGNS_PER_THREAD 200

struct signer {
    EVP_PKEY *key, *pub;
    int good;
};

static void *sign_loop(void *arg)
{
    struct signer *s = arg;
    for (int i = 0; i < SIGNS_PER_THREAD; i++)
        s->good += sign_and_verify(s->key, s->pub) ? 1 : 0;
    return NULL;
}

/* SIGN_THREADS threads sign with key at once; every signature must verify with pub. */
static void expect_threads_sign(EVP_PKEY *key, EVP_PKEY *pub)
{
    pthread_t threads[SIGN_THREADS];
    struct signer signers[SIGN_THREADS];
    for (int i = 0; i < SIGN_THREADS; i++) {
        signers[i] = (struct signer){.key = key, .pub = pub};
        cr_assert_eq(pthread_create(&threads[i], NULL, sign_loop, &signers[i]), 0);
    }
    for (int i = 0; i < SIGN_THREADS; i++) {
        pthread_join(threads[i], NULL);
        cr_expect_eq(signers[i].good, SIGNS_PER_THREAD, "thread %d: %d of %d verified", i,
                     signers[i].good, SIGNS_PER_THREAD);
    }
}

Test(concurrency, four_threads_share_one_key, .init = setup, .fini = teardown, .timeout = 120)
{
    const char *uri = FIXTURE_TOKEN_URI ";object=busy";
    generate(uri, "rsa:2048");
    EVP_PKEY *key = find_key(uri);
    EVP_PKEY *pub = software_public(key);
    expect_threads_sign(key, pub);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
}

/* With one session allowed, four signing threads take turns instead of failing or blocking. */
Test(concurrency, a_session_limit_serialises_signers, .init = setup, .fini = teardown,
     .timeout = 120)
{
    estca_reason why = {{0}};
    cr_expect_eq(hsm_token_limit_sessions(f.token, 0, &why), ESTCA_E_INVALID);
    cr_expect_eq(hsm_token_limit_sessions(f.token, HSM_MAX_SESSIONS + 1, &why), ESTCA_E_INVALID);
    cr_assert_eq(hsm_token_limit_sessions(f.token, 1, &why), ESTCA_OK, "%s", why.text);
    const char *uri = FIXTURE_TOKEN_URI ";object=one-at-a-time";
    generate(uri, "ec:P-256");
    EVP_PKEY *key = find_key(uri);
    EVP_PKEY *pub = software_public(key);
    expect_threads_sign(key, pub);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
}
