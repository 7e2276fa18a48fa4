/* hsm_token_init (keygen.h): a fresh token for provisioning and tests, through libp11.
 *
 * SoftHSM2 facts: it always offers one uninitialised token; after C_InitToken that token
 * reappears under a new slot id (and a new empty slot is added), so the slots are
 * enumerated again and the token is found by its label before the user PIN is set. */
#include "keygen.h"

#include "pkcs11_module.h"

#include <openssl/crypto.h>
#include <string.h>

#define PIN_MAX 256
#define TOKEN_LABEL_LEN 32 /* CK_TOKEN_INFO.label: blank padded, not NUL terminated */

struct init_request {
    const char *label;
    char padded_label[TOKEN_LABEL_LEN + 1];
    char so_pin[PIN_MAX];
    char user_pin[PIN_MAX];
};

static int check_label(const char *label, estca_reason *why)
{
    size_t len = label == NULL ? 0 : strlen(label);
    if (len == 0 || len > TOKEN_LABEL_LEN)
        return estca_fail(why, ESTCA_E_INVALID, "token label must have 1 to %d bytes",
                          TOKEN_LABEL_LEN);
    /* libp11 and p11-kit strip the padding blanks, so a trailing blank would be lost. */
    if (label[len - 1] == ' ')
        return estca_fail(why, ESTCA_E_INVALID, "token label must not end in a blank");
    return ESTCA_OK;
}

/* libp11 hands the label straight to C_InitToken, which reads 32 blank-padded bytes. */
static void pad_label(const char *label, char padded[TOKEN_LABEL_LEN + 1])
{
    memset(padded, ' ', TOKEN_LABEL_LEN);
    memcpy(padded, label, strlen(label));
    padded[TOKEN_LABEL_LEN] = '\0';
}

static bool has_label(const PKCS11_SLOT *slot, const char *label)
{
    const PKCS11_TOKEN *tok = slot->token;
    return tok != NULL && tok->initialized && tok->label != NULL && strcmp(tok->label, label) == 0;
}

/* The first slot with an uninitialised token; refuses if the label is already taken. */
static int find_free_slot(PKCS11_SLOT *slots, unsigned int nslots, const char *label,
                          PKCS11_SLOT **out, estca_reason *why)
{
    *out = NULL;
    for (unsigned int i = 0; i < nslots; i++) {
        if (has_label(&slots[i], label))
            return estca_fail(why, ESTCA_E_INVALID, "a token labelled '%s' already exists", label);
        if (*out == NULL && slots[i].token != NULL && !slots[i].token->initialized)
            *out = &slots[i];
    }
    if (*out == NULL)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "no slot holds an uninitialised token");
    return ESTCA_OK;
}

static int find_labelled_slot(PKCS11_SLOT *slots, unsigned int nslots, const char *label,
                              PKCS11_SLOT **out, estca_reason *why)
{
    *out = NULL;
    for (unsigned int i = 0; i < nslots; i++) {
        if (has_label(&slots[i], label)) {
            if (*out != NULL)
                return estca_fail(why, ESTCA_E_TOKEN, "two tokens are labelled '%s'", label);
            *out = &slots[i];
        }
    }
    if (*out == NULL)
        return estca_fail(why, ESTCA_E_TOKEN, "the token '%s' vanished after C_InitToken", label);
    return ESTCA_OK;
}

static int enumerate(PKCS11_CTX *ctx, PKCS11_SLOT **slots, unsigned int *nslots, estca_reason *why)
{
    if (PKCS11_enumerate_slots(ctx, slots, nslots) != 0)
        return p11_fail_libp11(why, ESTCA_E_TOKEN, "enumerating slots");
    return ESTCA_OK;
}

static int init_token(PKCS11_CTX *ctx, const struct init_request *req, estca_reason *why)
{
    PKCS11_SLOT *slots = NULL, *slot;
    unsigned int nslots = 0;
    int rc = enumerate(ctx, &slots, &nslots, why);
    if (rc == ESTCA_OK)
        rc = find_free_slot(slots, nslots, req->label, &slot, why);
    if (rc == ESTCA_OK && PKCS11_init_token(slot->token, req->so_pin, req->padded_label) != 0)
        rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "C_InitToken");
    if (slots != NULL)
        PKCS11_release_all_slots(ctx, slots, nslots);
    return rc;
}

/* As SO on a read-write session: set the user PIN, then log out again. */
static int init_user_pin(PKCS11_CTX *ctx, const struct init_request *req, estca_reason *why)
{
    PKCS11_SLOT *slots = NULL, *slot;
    unsigned int nslots = 0;
    int rc = enumerate(ctx, &slots, &nslots, why);
    if (rc == ESTCA_OK)
        rc = find_labelled_slot(slots, nslots, req->label, &slot, why);
    if (rc == ESTCA_OK && PKCS11_open_session(slot, 1) != 0)
        rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "opening a session");
    if (rc == ESTCA_OK && PKCS11_login(slot, 1, req->so_pin) != 0)
        rc = p11_fail_libp11(why, ESTCA_E_AUTH, "SO login");
    if (rc == ESTCA_OK) {
        if (PKCS11_init_pin(slot->token, req->user_pin) != 0)
            rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "C_InitPIN");
        if (PKCS11_logout(slot) != 0 && rc == ESTCA_OK)
            rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "SO logout");
    }
    if (slots != NULL)
        PKCS11_release_all_slots(ctx, slots, nslots);
    return rc;
}

static int init_with_module(const char *module_path, const struct init_request *req,
                            estca_reason *why)
{
    PKCS11_CTX *ctx = PKCS11_CTX_new();
    if (ctx == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "PKCS11_CTX_new failed");
    int rc;
    if (PKCS11_CTX_load(ctx, module_path) != 0) {
        rc = p11_fail_libp11(why, ESTCA_E_TOKEN, "loading PKCS#11 module");
        PKCS11_CTX_free(ctx);
        return rc;
    }
    rc = init_token(ctx, req, why);
    if (rc == ESTCA_OK)
        rc = init_user_pin(ctx, req, why);
    PKCS11_CTX_unload(ctx); /* C_Finalize */
    PKCS11_CTX_free(ctx);
    return rc;
}

int hsm_token_init(const char *module_path, const char *token_label, const char *so_pin_file,
                   const char *user_pin_file, estca_reason *why)
{
    int rc = check_label(token_label, why);
    if (rc != ESTCA_OK)
        return rc;
    struct init_request req = {.label = token_label};
    pad_label(token_label, req.padded_label);
    rc = hsm_read_secret_file(so_pin_file, req.so_pin, sizeof req.so_pin, why);
    if (rc == ESTCA_OK)
        rc = hsm_read_secret_file(user_pin_file, req.user_pin, sizeof req.user_pin, why);
    if (module_path == NULL)
        module_path = HSM_DEFAULT_MODULE;
    char *claim = NULL;
    if (rc == ESTCA_OK)
        rc = p11_module_claim(module_path, &claim, why);
    if (rc == ESTCA_OK)
        rc = init_with_module(module_path, &req, why);
    p11_module_unclaim(claim);
    OPENSSL_cleanse(&req, sizeof req);
    return rc;
}
