/* A PKCS#11 token reached through libp11: open a module and a token named by an RFC 7512
 * URI, log in with a PIN read from a file, find private keys as EVP_PKEYs whose private half
 * stays on the token, draw random bytes from the token, and read key attributes.
 *
 * Thread-safety: hsm_token_open/close and hsm_key_find are for start-up (one thread); the
 * EVP_PKEYs they return may then sign from many threads at once (libp11 keeps a session
 * pool per slot). hsm_random is safe from any thread.
 *
 * Faults: with hsm_token_supervise running, a token that fails (removed, reset, logged out)
 * is re-opened in the background; meanwhile every operation, signing with the keys
 * hsm_key_find returned included, fails at once with ESTCA_E_UNAVAILABLE. The keys stay
 * valid across a re-open: they follow the token. */
#ifndef ESTCA_HSM_TOKEN_H
#define ESTCA_HSM_TOKEN_H

#include "status.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

struct hsm_token;

/* Loads module_path (NULL: HSM_DEFAULT_MODULE), selects the one token matching token_uri
 * (e.g. "pkcs11:token=estca"; its token attributes are matched, object attributes
 * ignored), opens a read-write session and logs in as user with the PIN from pin_file
 * (mode 0600 or stricter; trailing newline ignored; NULL: $CREDENTIALS_DIRECTORY/token-pin).
 * Caller frees with hsm_token_close. */
int hsm_token_open(const char *module_path, const char *token_uri, const char *pin_file,
                   struct hsm_token **out, estca_reason *why);
void hsm_token_close(struct hsm_token *token);

/* What the supervisor reports, once per change: the token was lost (detail: why), a re-open
 * failed for a reason not reported since the loss (detail: the reason), or it is back
 * (detail: after how long). */
enum hsm_token_event {
    HSM_TOKEN_LOST,
    HSM_TOKEN_REOPEN_FAILED,
    HSM_TOKEN_RECOVERED,
};
typedef void hsm_token_event_fn(void *arg, enum hsm_token_event event, const char *detail);

/* Starts the supervisor thread: it probes the token every probe_interval_ms, and at once
 * when an operation fails; a failed probe marks the token unavailable, and it then
 * re-initialises the module, logs in again (re-reading the PIN file) and re-finds every
 * handed-out key (which must have the same public key as before) every retry_interval_ms
 * until that works. on_event (may be NULL) runs on the supervisor thread. It stops in
 * hsm_token_close. */
int hsm_token_supervise(struct hsm_token *token, unsigned probe_interval_ms,
                        unsigned retry_interval_ms, hsm_token_event_fn *on_event, void *arg,
                        estca_reason *why);

/* libp11 0.4.12's session pool per slot: no more operations can run on a token at once. */
#define HSM_MAX_SESSIONS 16

/* At start-up: at most sessions (1..HSM_MAX_SESSIONS, the default) token operations run at
 * once; more wait for a free one. Sized with the worker count: workers beyond it queue here
 * for signatures, and libp11 never opens more sessions than this (a hardware token may allow
 * fewer sessions than libp11 would otherwise open). */
int hsm_token_limit_sessions(struct hsm_token *token, unsigned sessions, estca_reason *why);

/* false while the token is down or being re-opened (an atomic read: cheap). */
bool hsm_token_available(const struct hsm_token *token);

/* Finds the private key named by key_uri ("pkcs11:token=estca;object=issuing-ca", with
 * optional id=) on the open token and returns it as an EVP_PKEY usable by X509_sign,
 * SSL_CTX_use_PrivateKey, CMS_sign. Exactly one key must match. Caller frees, before
 * hsm_token_close. */
int hsm_key_find(struct hsm_token *token, const char *key_uri, EVP_PKEY **out, estca_reason *why);

/* Fills buf with len bytes from the token's RNG (C_GenerateRandom). */
int hsm_random(struct hsm_token *token, unsigned char *buf, size_t len, estca_reason *why);

struct hsm_key_attributes {
    bool token;       /* CKA_TOKEN */
    bool private_obj; /* CKA_PRIVATE */
    bool sensitive;   /* CKA_SENSITIVE */
    bool extractable; /* CKA_EXTRACTABLE */
    bool always_sensitive;
    bool never_extractable;
};

/* Reads the protection attributes of the private key object named by key_uri, through the
 * module's own function list. */
int hsm_key_attributes(struct hsm_token *token, const char *key_uri, struct hsm_key_attributes *out,
                       estca_reason *why);

/* Test and diagnostics helper: counts every object visible to a logged-in session of
 * ours (token objects; session objects of other sessions included as the module shows
 * them). Used to check that serverkeygen leaves nothing behind. */
int hsm_count_objects(struct hsm_token *token, unsigned long *out, estca_reason *why);

/* Reads a PIN or password file: refuses files readable by group or others, strips one
 * trailing newline. buf is cleansed by the caller after use. */
int hsm_read_secret_file(const char *path, char *buf, size_t cap, estca_reason *why);

#endif
