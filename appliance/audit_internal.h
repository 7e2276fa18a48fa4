/* The audit log's line format, shared by the writer (audit.c) and the verifier
 * (audit_verify.c) so that both agree byte for byte. Not for use outside them. */
#ifndef ESTCA_AUDIT_INTERNAL_H
#define ESTCA_AUDIT_INTERNAL_H

#include <stddef.h>

#define AUDIT_HASH_HEX 65 /* SHA-256 in hex, NUL-terminated */

/* The "prev" of the first line: all zeros. */
void audit_genesis_hash(char out[AUDIT_HASH_HEX]);

/* The "prev" a line gives the next one: the hex SHA-256 of its bytes, newline excluded. */
void audit_line_hash(const char *line, size_t len, char out[AUDIT_HASH_HEX]);

/* What a checkpoint at position seq, chained to prev, signs. */
void audit_checkpoint_message(unsigned long seq, const char *prev, char *out, size_t cap);

#endif
