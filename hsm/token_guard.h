/* Internal to hsm/: keeping the token usable across faults.
 *
 * Every operation on the token runs between token_guard_enter and token_guard_leave, a read
 * lock that only the supervisor takes for writing, while it re-opens the token (C_Finalize,
 * C_Initialize, login, find the keys again). Signers therefore never wait on each other;
 * while the token is down they fail at once with ESTCA_E_UNAVAILABLE instead of queueing.
 *
 * The keys hsm_key_find hands out are proxies (key_proxy.c): EVP_PKEYs with key methods of
 * ours that take the guard and sign with the record's current libp11 key. A re-open swaps
 * that key under the write lock, so OpenSSL objects holding a proxy (an SSL_CTX, a CA
 * instance) never see a stale libp11 key, which libp11 0.4.12 would use after freeing. */
#ifndef ESTCA_HSM_TOKEN_GUARD_H
#define ESTCA_HSM_TOKEN_GUARD_H

#include "pkcs11_module.h"

#include <openssl/evp.h>

enum token_state {
    TOKEN_UP = 0,
    TOKEN_DOWN = 1, /* a fault was seen; the supervisor re-opens until it works */
};

/* A key hsm_key_find handed out: what names it, what it must remain, and the libp11 key
 * that signs for it now (NULL while the token is down). */
struct hsm_key_record {
    struct hsm_token *token;
    char *uri;
    struct p11_key_selector selector;
    unsigned char *spki; /* DER SubjectPublicKeyInfo: a re-found key must have the same */
    int spki_len;
    EVP_PKEY *current; /* libp11's; changed only under the write lock */
};

int token_guard_init(struct hsm_token *t, estca_reason *why);
/* Stops the supervisor (if any) and destroys the lock. */
void token_guard_destroy(struct hsm_token *t);

/* ESTCA_OK: the caller may use the token until token_guard_leave. ESTCA_E_UNAVAILABLE
 * (with the reason) while the token is down or being re-opened. */
int token_guard_enter(struct hsm_token *t, estca_reason *why);
/* rc is the operation's result: a failure of the kind a lost token causes asks the
 * supervisor to probe the token now. */
void token_guard_leave(struct hsm_token *t, int rc);

/* token.c: (re)connecting. token_connect loads the module, selects the token, reads the PIN
 * file again and logs in; token_disconnect undoes as much of it as was done. */
int token_connect(struct hsm_token *t, estca_reason *why);
void token_disconnect(struct hsm_token *t);
/* Points rec->current at the libp11 key the token now has under rec's URI, refusing a key
 * whose public half differs from rec->spki. */
int token_bind_key(struct hsm_token *t, struct hsm_key_record *rec, estca_reason *why);
/* A cheap health check through our own session: logged in, every handed-out key present. */
int token_probe(struct hsm_token *t, estca_reason *why);

/* key_proxy.c: the EVP_PKEY handed out for rec (RSA or EC, as rec->current is).
 * Caller frees. */
int key_proxy_new(struct hsm_key_record *rec, EVP_PKEY **out, estca_reason *why);

#endif
