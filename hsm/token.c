/* The token through libp11: load the module, select the token an RFC 7512 URI names, log in
 * with a PIN from a file, find keys as EVP_PKEYs, draw random bytes, read key attributes.
 *
 * libp11 0.4.12 facts this file relies on (src/p11_slot.c, src/p11_key.c):
 * - PKCS11_open_session only fixes the read-only/read-write mode of the slot's session pool;
 *   the first pooled session is opened by PKCS11_login and stays open, which keeps the
 *   token logged in for our own sessions too.
 * - PKCS11_enumerate_keys runs C_FindObjects every time and appends handles it has not seen,
 *   so keys created after the first enumeration (hsm_keygen_ca) are found; it never drops
 *   entries, so a destroyed key would linger. hsm_key_find therefore asks the token itself
 *   (a template search) first and uses libp11's list only to get the EVP_PKEY.
 * - The EVP_PKEY points at libp11's key object, which points at the slot; releasing the
 *   slots frees the slot, so every libp11 EVP_PKEY must be freed before the slots are
 *   released. Callers only ever hold proxies (key_proxy.c); the libp11 keys are ours. */
#include "token.h"

#include "pkcs11_module.h"
#include "token_guard.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PKCS#11 PINs are short; SoftHSM2 allows 255 bytes. */
#define PIN_MAX 256

static int default_pin_path(char *path, size_t cap, estca_reason *why)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (dir == NULL || *dir == '\0')
        return estca_fail(why, ESTCA_E_CONFIG,
                          "no PIN file given and $CREDENTIALS_DIRECTORY is not set");
    int n = snprintf(path, cap, "%s/token-pin", dir);
    if (n < 0 || (size_t)n >= cap)
        return estca_fail(why, ESTCA_E_CONFIG, "$CREDENTIALS_DIRECTORY is too long");
    return ESTCA_OK;
}

static int read_pin(const char *pin_file, char *pin, size_t cap, estca_reason *why)
{
    char path[PATH_MAX];
    if (pin_file == NULL) {
        int rc = default_pin_path(path, sizeof path, why);
        if (rc != ESTCA_OK)
            return rc;
        pin_file = path;
    }
    return hsm_read_secret_file(pin_file, pin, cap, why);
}

/* Loads the module into a fresh libp11 context and attaches to its function list. */
static int load_module(struct hsm_token *t, estca_reason *why)
{
    PKCS11_CTX *ctx = PKCS11_CTX_new();
    if (ctx == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "PKCS11_CTX_new failed");
    if (PKCS11_CTX_load(ctx, t->module_path) != 0) {
        int rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "loading PKCS#11 module");
        PKCS11_CTX_free(ctx);
        return rc;
    }
    t->ctx = ctx; /* from here on token_disconnect unloads it */
    int rc = p11_module_attach(t->module_path, &t->module_handle, &t->p11, why);
    if (rc != ESTCA_OK)
        return rc;
    CK_RV rv = t->p11->C_GetInfo(&t->module_info);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_GetInfo");
    return ESTCA_OK;
}

/* Whether an initialised token in slot matches uri; its descriptions go to the out args. */
static int slot_matches(const struct hsm_token *t, PKCS11_SLOT *slot, P11KitUri *uri,
                        CK_SLOT_INFO *slot_info, CK_TOKEN_INFO *token_info, bool *match,
                        estca_reason *why)
{
    *match = false;
    /* An uninitialised token (SoftHSM2 always offers one) is never what a URI means. */
    if (slot->token == NULL || !slot->token->initialized)
        return ESTCA_OK;
    CK_SLOT_ID id = PKCS11_get_slotid_from_slot(slot);
    CK_RV rv = t->p11->C_GetSlotInfo(id, slot_info);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_GetSlotInfo");
    rv = t->p11->C_GetTokenInfo(id, token_info);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_GetTokenInfo");
    *match = p11_uri_matches_slot(uri, &t->module_info, id, slot_info, token_info);
    return ESTCA_OK;
}

/* Selects the one slot whose token matches uri. */
static int select_slot(struct hsm_token *t, P11KitUri *uri, const char *token_uri,
                       estca_reason *why)
{
    if (PKCS11_enumerate_slots(t->ctx, &t->slots, &t->nslots) != 0)
        return p11_fail_libp11(why, ESTCA_E_TOKEN, "enumerating slots");
    unsigned int matches = 0;
    for (unsigned int i = 0; i < t->nslots; i++) {
        CK_SLOT_INFO slot_info;
        CK_TOKEN_INFO token_info;
        bool match;
        int rc = slot_matches(t, &t->slots[i], uri, &slot_info, &token_info, &match, why);
        if (rc != ESTCA_OK)
            return rc;
        if (!match || ++matches > 1)
            continue; /* only the first match is kept; more is an error below */
        t->slot = &t->slots[i];
        t->slot_id = PKCS11_get_slotid_from_slot(t->slot);
        t->slot_info = slot_info;
        t->token_info = token_info;
    }
    if (matches == 0)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "no initialised token matches '%s'", token_uri);
    if (matches > 1)
        return estca_fail(why, ESTCA_E_CONFIG, "'%s' matches %u tokens: add serial= to choose one",
                          token_uri, matches);
    return ESTCA_OK;
}

static int login(struct hsm_token *t, const char *pin, estca_reason *why)
{
    /* Read-write before the login: the pool's mode is fixed by the first session, and
     * key generation needs read-write sessions. */
    if (PKCS11_open_session(t->slot, 1) != 0)
        return p11_fail_libp11(why, ESTCA_E_TOKEN, "opening a session");
    if (PKCS11_login(t->slot, 0, pin) != 0)
        return p11_fail_libp11(why, ESTCA_E_AUTH, "user login");
    return ESTCA_OK;
}

int token_connect(struct hsm_token *t, estca_reason *why)
{
    char pin[PIN_MAX];
    int rc = read_pin(t->pin_file, pin, sizeof pin, why);
    if (rc != ESTCA_OK)
        return rc;
    P11KitUri *uri = NULL;
    rc = p11_uri_parse(t->token_uri, "token", &uri, why);
    /* Claimed at the first connect, after the PIN and the URI proved usable, and kept
     * across re-opens. */
    if (rc == ESTCA_OK && t->module_claim == NULL)
        rc = p11_module_claim(t->module_path, &t->module_claim, why);
    if (rc == ESTCA_OK)
        rc = load_module(t, why);
    if (rc == ESTCA_OK)
        rc = select_slot(t, uri, t->token_uri, why);
    if (rc == ESTCA_OK)
        rc = login(t, pin, why);
    p11_kit_uri_free(uri);
    OPENSSL_cleanse(pin, sizeof pin);
    return rc;
}

void token_disconnect(struct hsm_token *t)
{
    /* Slots first: releasing them closes libp11's sessions through the still loaded
     * module. Then our module reference, so that libp11's unload really unloads (and a
     * SoftHSM2 that lost its token directory reads it afresh when loaded again). */
    if (t->slots != NULL)
        PKCS11_release_all_slots(t->ctx, t->slots, t->nslots);
    t->slots = NULL;
    t->nslots = 0;
    t->slot = NULL;
    p11_module_detach(t->module_handle);
    t->module_handle = NULL;
    t->p11 = NULL;
    if (t->ctx != NULL) {
        PKCS11_CTX_unload(t->ctx); /* C_Finalize */
        PKCS11_CTX_free(t->ctx);
    }
    t->ctx = NULL;
}

static int copy_settings(struct hsm_token *t, const char *module_path, const char *token_uri,
                         const char *pin_file, estca_reason *why)
{
    t->module_path = strdup(module_path);
    t->token_uri = strdup(token_uri);
    t->pin_file = pin_file != NULL ? strdup(pin_file) : NULL;
    if (t->module_path == NULL || t->token_uri == NULL || (pin_file != NULL && t->pin_file == NULL))
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    return ESTCA_OK;
}

int hsm_token_open(const char *module_path, const char *token_uri, const char *pin_file,
                   struct hsm_token **out, estca_reason *why)
{
    if (out == NULL || token_uri == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "hsm_token_open: bad arguments");
    *out = NULL;
    if (module_path == NULL)
        module_path = HSM_DEFAULT_MODULE;
    struct hsm_token *t = calloc(1, sizeof *t);
    if (t == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    int rc = token_guard_init(t, why);
    if (rc != ESTCA_OK) {
        free(t);
        return rc;
    }
    rc = copy_settings(t, module_path, token_uri, pin_file, why);
    if (rc == ESTCA_OK)
        rc = token_connect(t, why);
    if (rc != ESTCA_OK) {
        hsm_token_close(t);
        return rc;
    }
    *out = t;
    return ESTCA_OK;
}

static void key_record_free(struct hsm_key_record *rec)
{
    EVP_PKEY_free(rec->current);
    p11_key_selector_free(&rec->selector);
    OPENSSL_free(rec->spki);
    free(rec->uri);
    free(rec);
}

void hsm_token_close(struct hsm_token *t)
{
    if (t == NULL)
        return;
    token_guard_destroy(t); /* the supervisor stops first: it uses everything below */
    for (size_t i = 0; i < t->n_keys; i++)
        key_record_free(t->keys[i]);
    free(t->keys);
    token_disconnect(t);
    p11_module_unclaim(t->module_claim);
    free(t->module_path);
    free(t->token_uri);
    free(t->pin_file);
    free(t);
}

static bool libp11_key_matches(const PKCS11_KEY *key, const struct p11_key_selector *sel)
{
    if (sel->label != NULL && (key->label == NULL || strcmp(key->label, sel->label) != 0))
        return false;
    if (sel->id_len > 0 &&
        (key->id_len != sel->id_len || memcmp(key->id, sel->id, sel->id_len) != 0))
        return false;
    return true;
}

/* The token has exactly one matching key; find libp11's entry for it. The PKCS11_KEY
 * array is reallocated by every enumeration, so nothing of it is kept. */
static int libp11_private_key(struct hsm_token *t, const struct p11_key_selector *sel,
                              const char *key_uri, EVP_PKEY **out, estca_reason *why)
{
    PKCS11_KEY *keys = NULL;
    unsigned int nkeys = 0;
    /* libp11 0.4.12 gives up on the whole list at a private key that is neither RSA nor
     * EC (an Ed25519 key, say) and queues no reason: the message says so. */
    if (PKCS11_enumerate_keys(t->slot->token, &keys, &nkeys) != 0)
        return p11_fail_libp11(why, ESTCA_E_TOKEN,
                               "libp11 enumerating private keys (it fails if any private key "
                               "on the token is neither RSA nor EC)");
    PKCS11_KEY *found = NULL;
    unsigned int matches = 0;
    for (unsigned int i = 0; i < nkeys; i++) {
        if (libp11_key_matches(&keys[i], sel) && matches++ == 0)
            found = &keys[i];
    }
    if (matches != 1)
        return estca_fail(why, ESTCA_E_TOKEN,
                          "libp11 lists %u private keys for '%s' where the token has one "
                          "(a key destroyed and re-created under the same name?)",
                          matches, key_uri);
    EVP_PKEY *pkey = PKCS11_get_private_key(found);
    if (pkey == NULL)
        return p11_fail_libp11(why, ESTCA_E_TOKEN, "loading the private key");
    *out = pkey;
    return ESTCA_OK;
}

/* Resolves sel to the one private key object on the token, with our own session. */
static int locate_key(struct hsm_token *t, const struct p11_key_selector *sel, const char *key_uri,
                      CK_OBJECT_HANDLE *handle, estca_reason *why)
{
    CK_SESSION_HANDLE session;
    int rc = p11_session_open(t, &session, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = p11_find_private_key(t, session, sel, key_uri, handle, why);
    p11_session_close(t, session);
    return rc;
}

int token_bind_key(struct hsm_token *t, struct hsm_key_record *rec, estca_reason *why)
{
    CK_OBJECT_HANDLE handle;
    int rc = locate_key(t, &rec->selector, rec->uri, &handle, why);
    EVP_PKEY *key = NULL;
    if (rc == ESTCA_OK)
        rc = libp11_private_key(t, &rec->selector, rec->uri, &key, why);
    if (rc != ESTCA_OK)
        return rc;
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    if (spki_len <= 0) {
        EVP_PKEY_free(key);
        return estca_fail_openssl(why, ESTCA_E_TOKEN, "reading the public half of %s", rec->uri);
    }
    /* A key that comes back under the same name must be the same key: a swapped token
     * must not sign in the place of the one the certificates name. */
    if (rec->spki != NULL &&
        (spki_len != rec->spki_len || memcmp(spki, rec->spki, (size_t)spki_len) != 0)) {
        OPENSSL_free(spki);
        EVP_PKEY_free(key);
        return estca_fail(why, ESTCA_E_TOKEN, "%s is now a different key than at start-up",
                          rec->uri);
    }
    if (rec->spki == NULL) {
        rec->spki = spki;
        rec->spki_len = spki_len;
    } else {
        OPENSSL_free(spki);
    }
    rec->current = key;
    return ESTCA_OK;
}

static int add_record(struct hsm_token *t, struct hsm_key_record *rec, estca_reason *why)
{
    pthread_mutex_lock(&t->keys_lock);
    struct hsm_key_record **grown = realloc(t->keys, (t->n_keys + 1) * sizeof *grown);
    if (grown != NULL) {
        grown[t->n_keys++] = rec;
        t->keys = grown;
    }
    pthread_mutex_unlock(&t->keys_lock);
    return grown != NULL ? ESTCA_OK : estca_fail(why, ESTCA_E_NOMEM, "out of memory");
}

static int find_key(struct hsm_token *t, const char *key_uri, EVP_PKEY **out, estca_reason *why)
{
    struct hsm_key_record *rec = calloc(1, sizeof *rec);
    if (rec == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    rec->token = t;
    int rc = (rec->uri = strdup(key_uri)) != NULL ? ESTCA_OK
                                                  : estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (rc == ESTCA_OK)
        rc = p11_key_selector_parse(t, key_uri, &rec->selector, why);
    if (rc == ESTCA_OK)
        rc = token_bind_key(t, rec, why);
    if (rc == ESTCA_OK)
        rc = key_proxy_new(rec, out, why);
    if (rc == ESTCA_OK)
        rc = add_record(t, rec, why);
    if (rc != ESTCA_OK) {
        EVP_PKEY_free(*out);
        *out = NULL;
        key_record_free(rec);
    }
    return rc;
}

int hsm_key_find(struct hsm_token *token, const char *key_uri, EVP_PKEY **out, estca_reason *why)
{
    if (token == NULL || key_uri == NULL || out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "hsm_key_find: bad arguments");
    *out = NULL;
    int rc = token_guard_enter(token, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = find_key(token, key_uri, out, why);
    token_guard_leave(token, rc);
    return rc;
}

int token_probe(struct hsm_token *t, estca_reason *why)
{
    CK_SESSION_HANDLE session;
    int rc = p11_session_open(t, &session, why);
    if (rc != ESTCA_OK)
        return rc;
    CK_SESSION_INFO info;
    CK_RV rv = t->p11->C_GetSessionInfo(session, &info);
    if (rv != CKR_OK)
        rc = p11_fail_rv(why, rv, "C_GetSessionInfo");
    else if (info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS)
        rc = estca_fail(why, ESTCA_E_UNAVAILABLE, "the token is no longer logged in");
    pthread_mutex_lock(&t->keys_lock);
    for (size_t i = 0; rc == ESTCA_OK && i < t->n_keys; i++) {
        CK_OBJECT_HANDLE handle;
        rc = p11_find_private_key(t, session, &t->keys[i]->selector, t->keys[i]->uri, &handle, why);
    }
    pthread_mutex_unlock(&t->keys_lock);
    p11_session_close(t, session);
    return rc;
}

int hsm_random(struct hsm_token *token, unsigned char *buf, size_t len, estca_reason *why)
{
    if (token == NULL || (buf == NULL && len > 0))
        return estca_fail(why, ESTCA_E_INVALID, "hsm_random: bad arguments");
    if (len == 0)
        return ESTCA_OK;
    if (len > UINT_MAX)
        return estca_fail(why, ESTCA_E_TOO_LARGE, "hsm_random: %zu bytes at once is too many", len);
    int rc = token_guard_enter(token, why);
    if (rc != ESTCA_OK)
        return rc;
    if (PKCS11_generate_random(token->slot, buf, (unsigned int)len) != 0)
        rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "C_GenerateRandom");
    token_guard_leave(token, rc);
    return rc;
}

static int read_protection(struct hsm_token *t, CK_OBJECT_HANDLE handle,
                           struct hsm_key_attributes *out, estca_reason *why)
{
    CK_BBOOL v[6] = {0};
    CK_ATTRIBUTE tmpl[6] = {
        {CKA_TOKEN, &v[0], sizeof v[0]},
        {CKA_PRIVATE, &v[1], sizeof v[1]},
        {CKA_SENSITIVE, &v[2], sizeof v[2]},
        {CKA_EXTRACTABLE, &v[3], sizeof v[3]},
        {CKA_ALWAYS_SENSITIVE, &v[4], sizeof v[4]},
        {CKA_NEVER_EXTRACTABLE, &v[5], sizeof v[5]},
    };
    CK_SESSION_HANDLE session;
    int rc = p11_session_open(t, &session, why);
    if (rc != ESTCA_OK)
        return rc;
    CK_RV rv = t->p11->C_GetAttributeValue(session, handle, tmpl, 6);
    p11_session_close(t, session);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_GetAttributeValue");
    *out = (struct hsm_key_attributes){
        .token = v[0] == CK_TRUE,
        .private_obj = v[1] == CK_TRUE,
        .sensitive = v[2] == CK_TRUE,
        .extractable = v[3] == CK_TRUE,
        .always_sensitive = v[4] == CK_TRUE,
        .never_extractable = v[5] == CK_TRUE,
    };
    return ESTCA_OK;
}

int hsm_key_attributes(struct hsm_token *token, const char *key_uri, struct hsm_key_attributes *out,
                       estca_reason *why)
{
    if (token == NULL || out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "hsm_key_attributes: bad arguments");
    int rc = token_guard_enter(token, why);
    if (rc != ESTCA_OK)
        return rc;
    struct p11_key_selector sel;
    CK_OBJECT_HANDLE handle;
    rc = p11_key_selector_parse(token, key_uri, &sel, why);
    if (rc == ESTCA_OK)
        rc = locate_key(token, &sel, key_uri, &handle, why);
    if (rc == ESTCA_OK)
        rc = read_protection(token, handle, out, why);
    p11_key_selector_free(&sel);
    token_guard_leave(token, rc);
    return rc;
}
