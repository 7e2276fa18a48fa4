/* The audit log: one JSON object per line for every security decision, each line carrying the
 * SHA-256 of the line before it ("prev"), so that a deleted, altered or reordered line breaks
 * the chain; and checkpoints, lines whose signature (by a key on the token) covers the chain
 * up to them, so that rewriting the whole chain from some line on is detected too.
 *
 * Several processes may append to one log (estcad, and estca for revocations and approvals):
 * every append takes an exclusive flock and continues from the file's real last line. Lines
 * reach the kernel in one write() each (they survive a crash of the process; checkpoints are
 * fsync'd). Thread-safe. */
#ifndef ESTCA_AUDIT_H
#define ESTCA_AUDIT_H

#include "status.h"

#include <jansson.h>
#include <openssl/evp.h>

struct audit_log;

/* Opens (creating, mode 0640) the log at path for appending. signing_key (borrowed; may be
 * NULL: no checkpoints) signs a checkpoint after every checkpoint_every appends of this
 * process (0: only at audit_close); signer names it in the checkpoint ("ca:issuing"). */
int audit_open(const char *path, EVP_PKEY *signing_key, const char *signer,
               unsigned checkpoint_every, struct audit_log **out, estca_reason *why);
/* Writes a final checkpoint (when there is a key and anything was appended), then closes. */
void audit_close(struct audit_log *log);

/* Appends {"seq", "time", "event", <fields...>, "prev"}; fields (may be NULL) is a JSON object
 * whose members are copied in order. Returns the status; the line is written or not at all. */
int audit_append(struct audit_log *log, const char *event, json_t *fields, estca_reason *why);

/* Appends a signed checkpoint now. */
int audit_checkpoint(struct audit_log *log, estca_reason *why);

struct audit_verification {
    unsigned long lines;
    unsigned long checkpoints;
    unsigned long unsigned_tail; /* lines after the last checkpoint: chained but not signed */
};

/* Checks the chain of the whole file and, with public_key (may be NULL: chain only), every
 * checkpoint's signature. ESTCA_E_INVALID with the first broken line's number and why. */
int audit_verify(const char *path, EVP_PKEY *public_key, struct audit_verification *out,
                 estca_reason *why);

#endif
