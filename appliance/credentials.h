/* HTTP Basic credentials: a file of "user:yescrypt-hash" lines (libxcrypt), mode 0600.
 * Verification is constant-time in the password and does the same work for unknown users. */
#ifndef ESTCA_CREDENTIALS_H
#define ESTCA_CREDENTIALS_H

#include "status.h"

#include <stddef.h>

struct credentials;

/* Loads path; a missing file is an error. Caller frees with credentials_free. */
int credentials_load(const char *path, struct credentials **out, estca_reason *why);
void credentials_free(struct credentials *credentials);

/* ESTCA_OK when user exists and password matches, ESTCA_E_AUTH otherwise. Safe from many
 * threads. A success is remembered for a few minutes as a keyed MAC of the password, so the
 * same password again skips the ~20 ms yescrypt; a wrong one always pays it. */
int credentials_check(const struct credentials *credentials, const char *user,
                      const char *password);

/* Hashes password with yescrypt into out (cap >= 128). */
int credentials_hash(const char *password, char *out, size_t cap, estca_reason *why);

/* Adds or replaces user's line in the file at path (created 0600), atomically (write a
 * temporary file, fsync, rename). */
int credentials_file_set(const char *path, const char *user, const char *hash, estca_reason *why);

/* Removes user's line from the file, atomically; ESTCA_E_NOT_FOUND if there was none. */
int credentials_file_remove(const char *path, const char *user, estca_reason *why);

/* ESTCA_OK if the file (loaded and checked as estcad would) has user, else ESTCA_E_NOT_FOUND
 * or the load error. */
int credentials_file_has(const char *path, const char *user, estca_reason *why);

#endif
