/* Base64 as EST wants it (RFC 8951 §3): the decoder ignores CR, LF, SP and TAB anywhere and
 * rejects anything else outside the RFC 4648 §4 alphabet; the encoder writes one line with
 * no line breaks (strongSwan pki cannot read wrapped bodies). */
#ifndef ESTCA_BASE64_H
#define ESTCA_BASE64_H

#include "status.h"

#include <stddef.h>

/* Decodes in[0..in_len) into a new buffer (caller frees with OPENSSL_free), *out_len bytes.
 * ESTCA_E_INVALID on bad characters, bad padding or empty input. */
int base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len,
                  estca_reason *why);

/* Encodes into a new NUL-terminated single line (caller frees with OPENSSL_free). */
int base64_encode(const unsigned char *in, size_t in_len, char **out, size_t *out_len,
                  estca_reason *why);

#endif
