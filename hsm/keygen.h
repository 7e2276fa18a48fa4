/* Key pairs created inside the token, for provisioning: CA and TLS listener keys as token
 * objects that are private, sensitive and never extractable. libp11 0.4.12 generates only
 * RSA, so this calls the module's PKCS#11 function list directly (C_GenerateKeyPair). */
#ifndef ESTCA_HSM_KEYGEN_H
#define ESTCA_HSM_KEYGEN_H

#include "token.h"

/* algorithm: "rsa:2048", "rsa:3072", "rsa:4096", "ec:P-256" or "ec:P-384".
 * key_uri names the new key: its object= becomes CKA_LABEL of both halves, its id= (if
 * given) CKA_ID; without id= a random 16-byte CKA_ID is drawn from the token. Refuses if a
 * key with that label already exists. */
int hsm_keygen_ca(struct hsm_token *token, const char *key_uri, const char *algorithm,
                  estca_reason *why);

/* Server-side key generation (RFC 7030 §4.4): the token generates a device key pair of
 * algorithm (as for hsm_keygen_ca) as session objects (CKA_TOKEN false, private, sensitive,
 * extractable); a one-time AES-256 key made in software and imported as a session object
 * wraps the private key out (CKM_AES_KEY_WRAP_PAD); OpenSSL unwraps it. All three objects
 * are destroyed and the AES key wiped before returning, also on failure. On success
 * *pkcs8_der is the DER PKCS#8 PrivateKeyInfo; the caller frees it with OPENSSL_clear_free.
 * Thread-safe: each call uses a session of its own. */
int hsm_keygen_device(struct hsm_token *token, const char *algorithm, unsigned char **pkcs8_der,
                      size_t *pkcs8_len, estca_reason *why);

/* Initialises a token for provisioning and tests: finds the first slot whose token is not
 * initialised, C_InitToken with the SO PIN and label token_label, then sets the user PIN.
 * Both PINs are read from files (see hsm_read_secret_file). */
int hsm_token_init(const char *module_path, const char *token_label, const char *so_pin_file,
                   const char *user_pin_file, estca_reason *why);

#endif
