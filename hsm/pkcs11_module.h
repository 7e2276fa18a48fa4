/* Internal to hsm/: what libp11 0.4.12 does not offer, done through the PKCS#11 function
 * list of the very module libp11 loaded (template searches, attribute reads, EC key
 * generation), plus the error reporting shared by the hsm/ files.
 *
 * Why the module's own function list: libp11 has no template search, reads no protection
 * attributes and generates only RSA keys. dlopen(RTLD_NOLOAD) returns the handle libp11
 * already holds, so C_GetFunctionList gives the same initialised library; login state is
 * per token per application, so our own sessions on the slot are logged in as soon as
 * libp11's are. We never C_Initialize or C_Finalize through it: libp11 owns that. */
#ifndef ESTCA_HSM_PKCS11_MODULE_H
#define ESTCA_HSM_PKCS11_MODULE_H

#include "status.h"

#include <libp11.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct hsm_key_record;
struct token_supervisor;

/* The state behind struct hsm_token (token.h), shared by the hsm/ files. The connection
 * fields (ctx .. token_info) change only under the guard's write lock (token_guard.h). */
struct hsm_token {
    char *module_path, *token_uri, *pin_file; /* what re-opening needs; pin_file may be NULL */
    pthread_rwlock_t guard;                   /* read: any token operation; write: re-open */
    sem_t sessions;                           /* token operations at once (hsm_token_limit) */
    atomic_int state;                         /* enum token_state (token_guard.h) */
    struct hsm_key_record **keys;             /* every key hsm_key_find handed out */
    size_t n_keys;
    pthread_mutex_t keys_lock; /* appending to keys */
    struct token_supervisor *supervisor;
    PKCS11_CTX *ctx;    /* libp11 context; the module is loaded in it */
    PKCS11_SLOT *slots; /* libp11's slot array (owned) */
    unsigned int nslots;
    PKCS11_SLOT *slot;        /* the selected slot, an element of slots */
    char *module_claim;       /* p11_module_claim's record, released at close */
    void *module_handle;      /* our dlopen reference on the module libp11 loaded */
    CK_FUNCTION_LIST_PTR p11; /* the module's function list */
    CK_SLOT_ID slot_id;
    CK_INFO module_info; /* kept to match key URIs' module and token parts */
    CK_SLOT_INFO slot_info;
    CK_TOKEN_INFO token_info;
};

/* ---- the module's function list (pkcs11_module.c) ---- */

/* Records that this process now uses module_path through one libp11 context, refusing if
 * it already does: contexts on one module share its state (one C_Initialize, one login
 * per token), and closing either one C_Finalizes the module under the other.
 * *claim is released with p11_module_unclaim. */
int p11_module_claim(const char *module_path, char **claim, estca_reason *why);
void p11_module_unclaim(char *claim);

/* Takes a reference on the already loaded module_path and returns its function list.
 * Fails if libp11 has not loaded it. Release with p11_module_detach. */
int p11_module_attach(const char *module_path, void **handle, CK_FUNCTION_LIST_PTR *p11,
                      estca_reason *why);
void p11_module_detach(void *handle);

/* "CKR_PIN_INCORRECT" etc.; "CKR_0x..." style text is not returned: unknown codes give
 * "CKR_(unknown)" and callers print the hex value beside it. */
const char *p11_ckr_name(CK_RV rv);

/* The estca status a CKR code stands for (wrong PIN: auth; token gone: unavailable). */
int p11_ckr_status(CK_RV rv);

/* Reports a failed PKCS#11 call: "<what>: CKR_NAME (0xNN)", status from p11_ckr_status. */
int p11_fail_rv(estca_reason *why, CK_RV rv, const char *what);

/* Reports a failed libp11 call: takes the CKR code libp11 left on the OpenSSL error queue
 * (if any) for the status and the name, then appends and clears the queue. fallback is
 * the status when no CKR code is queued. */
int p11_fail_libp11(estca_reason *why, int fallback, const char *what);

/* A read-write session of our own on the token's slot; logged in through libp11's login. */
int p11_session_open(const struct hsm_token *token, CK_SESSION_HANDLE *session, estca_reason *why);
void p11_session_close(const struct hsm_token *token, CK_SESSION_HANDLE session);

/* Searches objects matching the template; stores up to cap handles and the number found
 * (capped at cap) in *count. */
int p11_find_objects(const struct hsm_token *token, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl,
                     CK_ULONG n, CK_OBJECT_HANDLE *handles, CK_ULONG cap, CK_ULONG *count,
                     estca_reason *why);

/* ---- key pair algorithms (keygen.c), shared by CA and device key generation ---- */

struct p11_key_algorithm {
    const char *name; /* "rsa:2048" ... "ec:P-384" */
    CK_MECHANISM_TYPE mechanism;
    CK_ULONG modulus_bits;          /* RSA */
    const unsigned char *ec_params; /* EC: DER of the curve's OID */
    CK_ULONG ec_params_len;
};

/* The algorithm named "rsa:2048" ... "ec:P-384"; ESTCA_E_INVALID naming the choices else. */
int p11_find_key_algorithm(const char *name, const struct p11_key_algorithm **out,
                           estca_reason *why);

/* Appends alg's public-key generation attributes (modulus size and exponent 65537, or the
 * curve) to attrs at *n. They point into alg (static) and at *bits, which must outlive the
 * C_GenerateKeyPair call. */
void p11_append_key_params(const struct p11_key_algorithm *alg, CK_ATTRIBUTE *attrs, CK_ULONG *n,
                           CK_ULONG *bits);

/* ---- RFC 7512 URIs (pkcs11_uri.c) ---- */

/* Parses text as a PKCS#11 URI; refuses unrecognised path attributes and an embedded PIN
 * (PINs come from files). Caller frees with p11_kit_uri_free. */
int p11_uri_parse(const char *text, const char *what, P11KitUri **out, estca_reason *why);

/* Whether uri's module, slot and token parts all match the given descriptions. */
bool p11_uri_matches_slot(P11KitUri *uri, const CK_INFO *module, CK_SLOT_ID slot_id,
                          const CK_SLOT_INFO *slot, const CK_TOKEN_INFO *token_info);

/* The key a URI names: its object= (CKA_LABEL, NUL-terminated) and id= (CKA_ID), copies
 * owned by the selector; NULL when absent. */
struct p11_key_selector {
    char *label;
    unsigned char *id;
    size_t id_len; /* 0: no id= */
};

/* Parses key_uri and extracts the selector; refuses a type= other than private and a URI
 * naming no object= and no id=, and checks the URI's token part against the open token.
 * Caller frees with p11_key_selector_free (also after a failure). */
int p11_key_selector_parse(const struct hsm_token *token, const char *key_uri,
                           struct p11_key_selector *sel, estca_reason *why);
void p11_key_selector_free(struct p11_key_selector *sel);

/* Finds the one private key object matching sel on the token, through our own session. */
int p11_find_private_key(const struct hsm_token *token, CK_SESSION_HANDLE session,
                         const struct p11_key_selector *sel, const char *key_uri,
                         CK_OBJECT_HANDLE *out, estca_reason *why);

#endif
