/* The module's own PKCS#11 function list, our own sessions and object searches, and the
 * CKR code reporting every hsm/ file uses. See pkcs11_module.h for why this exists. */
#include "pkcs11_module.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLAIMS 8

static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static char *claims[MAX_CLAIMS]; /* the modules in use: real paths or bare names */

/* Under claims_lock: the free slot for path, or -1 (*taken tells why). */
static int claim_slot(const char *path, bool *taken)
{
    int free_slot = -1;
    *taken = false;
    for (int i = 0; i < MAX_CLAIMS; i++) {
        if (claims[i] != NULL && strcmp(claims[i], path) == 0)
            *taken = true;
        else if (claims[i] == NULL && free_slot < 0)
            free_slot = i;
    }
    return *taken ? -1 : free_slot;
}

/* The real path, so that a symlink cannot make one module look like two; a bare file
 * name (found by the dynamic linker's search) stays as it is. */
static char *claim_key(const char *module_path)
{
    if (strchr(module_path, '/') == NULL)
        return strdup(module_path);
    return realpath(module_path, NULL);
}

int p11_module_claim(const char *module_path, char **claim, estca_reason *why)
{
    char *path = claim_key(module_path);
    if (path == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "PKCS#11 module %s: %s", module_path,
                          strerror(errno));
    bool taken;
    pthread_mutex_lock(&claims_lock);
    int slot = claim_slot(path, &taken);
    if (slot >= 0)
        claims[slot] = path;
    pthread_mutex_unlock(&claims_lock);
    if (slot < 0) {
        free(path);
        return estca_fail(why, ESTCA_E_INVALID,
                          taken ? "PKCS#11 module %s is already in use in this process: close "
                                  "the open token first"
                                : "too many PKCS#11 modules in use (%s)",
                          module_path);
    }
    *claim = path;
    return ESTCA_OK;
}

void p11_module_unclaim(char *claim)
{
    if (claim == NULL)
        return;
    pthread_mutex_lock(&claims_lock);
    for (int i = 0; i < MAX_CLAIMS; i++) {
        if (claims[i] == claim)
            claims[i] = NULL;
    }
    pthread_mutex_unlock(&claims_lock);
    free(claim);
}

int p11_module_attach(const char *module_path, void **handle, CK_FUNCTION_LIST_PTR *p11,
                      estca_reason *why)
{
    /* RTLD_NOLOAD: only the copy libp11 loaded (and initialised) will do; a second,
     * uninitialised instance of the module would know nothing of the login. */
    void *h = dlopen(module_path, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        return estca_fail(why, ESTCA_E_TOKEN, "module %s is not loaded: %s", module_path,
                          dlerror());
    CK_C_GetFunctionList get_list;
    /* POSIX allows converting dlsym's object pointer to a function pointer this way. */
    *(void **)&get_list = dlsym(h, "C_GetFunctionList");
    if (get_list == NULL) {
        dlclose(h);
        return estca_fail(why, ESTCA_E_TOKEN, "module %s has no C_GetFunctionList", module_path);
    }
    CK_RV rv = get_list(p11);
    if (rv != CKR_OK || *p11 == NULL) {
        dlclose(h);
        return p11_fail_rv(why, rv != CKR_OK ? rv : CKR_GENERAL_ERROR, "C_GetFunctionList");
    }
    *handle = h;
    return ESTCA_OK;
}

void p11_module_detach(void *handle)
{
    if (handle != NULL)
        dlclose(handle); /* drops our reference only; libp11 still holds the module */
}

struct ckr_name {
    CK_RV rv;
    const char *name;
};

#define CKR_ENTRY(code)                                                                            \
    {                                                                                              \
        code, #code                                                                                \
    }
static const struct ckr_name ckr_names[] = {
    CKR_ENTRY(CKR_OK),
    CKR_ENTRY(CKR_CANCEL),
    CKR_ENTRY(CKR_HOST_MEMORY),
    CKR_ENTRY(CKR_SLOT_ID_INVALID),
    CKR_ENTRY(CKR_GENERAL_ERROR),
    CKR_ENTRY(CKR_FUNCTION_FAILED),
    CKR_ENTRY(CKR_ARGUMENTS_BAD),
    CKR_ENTRY(CKR_CANT_LOCK),
    CKR_ENTRY(CKR_ATTRIBUTE_READ_ONLY),
    CKR_ENTRY(CKR_ATTRIBUTE_SENSITIVE),
    CKR_ENTRY(CKR_ATTRIBUTE_TYPE_INVALID),
    CKR_ENTRY(CKR_ATTRIBUTE_VALUE_INVALID),
    CKR_ENTRY(CKR_ACTION_PROHIBITED),
    CKR_ENTRY(CKR_DATA_INVALID),
    CKR_ENTRY(CKR_DATA_LEN_RANGE),
    CKR_ENTRY(CKR_DEVICE_ERROR),
    CKR_ENTRY(CKR_DEVICE_MEMORY),
    CKR_ENTRY(CKR_DEVICE_REMOVED),
    CKR_ENTRY(CKR_FUNCTION_CANCELED),
    CKR_ENTRY(CKR_FUNCTION_NOT_SUPPORTED),
    CKR_ENTRY(CKR_KEY_HANDLE_INVALID),
    CKR_ENTRY(CKR_KEY_SIZE_RANGE),
    CKR_ENTRY(CKR_KEY_TYPE_INCONSISTENT),
    CKR_ENTRY(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CKR_ENTRY(CKR_KEY_UNEXTRACTABLE),
    CKR_ENTRY(CKR_MECHANISM_INVALID),
    CKR_ENTRY(CKR_MECHANISM_PARAM_INVALID),
    CKR_ENTRY(CKR_OBJECT_HANDLE_INVALID),
    CKR_ENTRY(CKR_OPERATION_ACTIVE),
    CKR_ENTRY(CKR_OPERATION_NOT_INITIALIZED),
    CKR_ENTRY(CKR_PIN_INCORRECT),
    CKR_ENTRY(CKR_PIN_INVALID),
    CKR_ENTRY(CKR_PIN_LEN_RANGE),
    CKR_ENTRY(CKR_PIN_EXPIRED),
    CKR_ENTRY(CKR_PIN_LOCKED),
    CKR_ENTRY(CKR_SESSION_CLOSED),
    CKR_ENTRY(CKR_SESSION_COUNT),
    CKR_ENTRY(CKR_SESSION_HANDLE_INVALID),
    CKR_ENTRY(CKR_SESSION_READ_ONLY),
    CKR_ENTRY(CKR_SESSION_EXISTS),
    CKR_ENTRY(CKR_SESSION_READ_ONLY_EXISTS),
    CKR_ENTRY(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CKR_ENTRY(CKR_SIGNATURE_INVALID),
    CKR_ENTRY(CKR_SIGNATURE_LEN_RANGE),
    CKR_ENTRY(CKR_TEMPLATE_INCOMPLETE),
    CKR_ENTRY(CKR_TEMPLATE_INCONSISTENT),
    CKR_ENTRY(CKR_TOKEN_NOT_PRESENT),
    CKR_ENTRY(CKR_TOKEN_NOT_RECOGNIZED),
    CKR_ENTRY(CKR_TOKEN_WRITE_PROTECTED),
    CKR_ENTRY(CKR_USER_ALREADY_LOGGED_IN),
    CKR_ENTRY(CKR_USER_NOT_LOGGED_IN),
    CKR_ENTRY(CKR_USER_PIN_NOT_INITIALIZED),
    CKR_ENTRY(CKR_USER_TYPE_INVALID),
    CKR_ENTRY(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    CKR_ENTRY(CKR_USER_TOO_MANY_TYPES),
    CKR_ENTRY(CKR_RANDOM_NO_RNG),
    CKR_ENTRY(CKR_DOMAIN_PARAMS_INVALID),
    CKR_ENTRY(CKR_CURVE_NOT_SUPPORTED),
    CKR_ENTRY(CKR_BUFFER_TOO_SMALL),
    CKR_ENTRY(CKR_CRYPTOKI_NOT_INITIALIZED),
    CKR_ENTRY(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    CKR_ENTRY(CKR_PIN_TOO_WEAK),
    CKR_ENTRY(CKR_PUBLIC_KEY_INVALID),
    CKR_ENTRY(CKR_FUNCTION_REJECTED),
};
#undef CKR_ENTRY

const char *p11_ckr_name(CK_RV rv)
{
    for (size_t i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++) {
        if (ckr_names[i].rv == rv)
            return ckr_names[i].name;
    }
    return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_(unlisted)";
}

int p11_ckr_status(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
        return ESTCA_E_AUTH;
    case CKR_USER_PIN_NOT_INITIALIZED:
        return ESTCA_E_CONFIG;
    case CKR_HOST_MEMORY:
        return ESTCA_E_NOMEM;
    /* The token went away, the login was lost (all sessions closed) or the library lost
     * its state: worth a re-open and re-login, not a bug. */
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return ESTCA_E_UNAVAILABLE;
    default:
        return ESTCA_E_TOKEN;
    }
}

int p11_fail_rv(estca_reason *why, CK_RV rv, const char *what)
{
    return estca_fail(why, p11_ckr_status(rv), "%s: %s (0x%lx)", what, p11_ckr_name(rv),
                      (unsigned long)rv);
}

/* libp11 queues a failed PKCS#11 call as an error of its own "CKR" library whose reason
 * is the CK_RV; usually it is the only or the last entry, sometimes the first. */
static bool queued_ckr(CK_RV *rv)
{
    int lib = ERR_get_CKR_code();
    unsigned long codes[2] = {ERR_peek_last_error(), ERR_peek_error()};
    for (size_t i = 0; i < 2; i++) {
        if (codes[i] != 0 && ERR_GET_LIB(codes[i]) == lib) {
            *rv = (CK_RV)ERR_GET_REASON(codes[i]);
            return true;
        }
    }
    return false;
}

int p11_fail_libp11(estca_reason *why, int fallback, const char *what)
{
    CK_RV rv;
    if (!queued_ckr(&rv))
        return estca_fail_openssl(why, fallback, "%s failed", what);
    return estca_fail_openssl(why, p11_ckr_status(rv), "%s: %s (0x%lx)", what, p11_ckr_name(rv),
                              (unsigned long)rv);
}

int p11_session_open(const struct hsm_token *token, CK_SESSION_HANDLE *session, estca_reason *why)
{
    CK_RV rv = token->p11->C_OpenSession(token->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                         NULL, session);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_OpenSession");
    return ESTCA_OK;
}

void p11_session_close(const struct hsm_token *token, CK_SESSION_HANDLE session)
{
    /* libp11's pooled sessions stay open, so closing ours never logs the token out. */
    token->p11->C_CloseSession(session);
}

int p11_find_objects(const struct hsm_token *token, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl,
                     CK_ULONG n, CK_OBJECT_HANDLE *handles, CK_ULONG cap, CK_ULONG *count,
                     estca_reason *why)
{
    CK_FUNCTION_LIST_PTR p11 = token->p11;
    CK_RV rv = p11->C_FindObjectsInit(session, tmpl, n);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_FindObjectsInit");
    *count = 0;
    rv = p11->C_FindObjects(session, handles, cap, count);
    CK_RV final_rv = p11->C_FindObjectsFinal(session);
    if (rv != CKR_OK)
        return p11_fail_rv(why, rv, "C_FindObjects");
    if (final_rv != CKR_OK)
        return p11_fail_rv(why, final_rv, "C_FindObjectsFinal");
    return ESTCA_OK;
}
