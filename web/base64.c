/* Base64 for EST bodies. The decoder is our own rather than EVP_DecodeBlock, which neither
 * skips whitespace nor reports how much padding it saw (it returns a length padded to a
 * multiple of 3), so RFC 8951 tolerance and exact padding checks would need a second pass
 * anyway. The encoder is EVP_EncodeBlock, which already writes one line. */
#include "base64.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

enum { B64_SKIP = 64, B64_PAD = 65, B64_BAD = 66 };

/* The value of an RFC 4648 §4 alphabet character, or one of the B64_ classes. */
static unsigned char b64_class(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned char)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (unsigned char)(c - '0' + 52);
    switch (c) {
    case '+':
        return 62;
    case '/':
        return 63;
    case '=':
        return B64_PAD;
    case '\r':
    case '\n':
    case ' ':
    case '\t':
        return B64_SKIP; /* RFC 8951 §3.1: tolerated anywhere */
    default:
        return B64_BAD;
    }
}

/* Writes the bytes of one complete quartet (values q[0..3], pads counted in pad). */
static size_t emit_quartet(const unsigned char q[4], int pad, unsigned char *out)
{
    uint32_t bits =
        ((uint32_t)q[0] << 18) | ((uint32_t)q[1] << 12) | ((uint32_t)q[2] << 6) | (uint32_t)q[3];
    out[0] = (unsigned char)(bits >> 16);
    if (pad == 2)
        return 1;
    out[1] = (unsigned char)(bits >> 8);
    if (pad == 1)
        return 2;
    out[2] = (unsigned char)bits;
    return 3;
}

/* A padded final quartet must be "xx==" or "xxx=" with the unused bits zero (RFC 4648
 * §3.5), so that every DER body has exactly one accepted encoding. */
static int check_final_quartet(const unsigned char q[4], int pad, estca_reason *why)
{
    if (pad > 2)
        return estca_fail(why, ESTCA_E_INVALID, "base64: too much padding");
    if ((pad == 2 && (q[1] & 0x0f) != 0) || (pad == 1 && (q[2] & 0x03) != 0))
        return estca_fail(why, ESTCA_E_INVALID, "base64: non-zero bits before the padding");
    return ESTCA_OK;
}

struct b64_state {
    unsigned char q[4];
    int n;   /* characters in the current quartet, pads included */
    int pad; /* '=' seen; once > 0 only '=' and whitespace may follow in the quartet */
    bool done;
    size_t out_len;
};

static int feed(struct b64_state *s, unsigned char c, size_t pos, unsigned char *out,
                estca_reason *why)
{
    unsigned char v = b64_class(c);
    if (v == B64_SKIP)
        return ESTCA_OK;
    if (v == B64_BAD)
        return estca_fail(why, ESTCA_E_INVALID, "base64: bad character 0x%02x at offset %zu", c,
                          pos);
    if (s->done)
        return estca_fail(why, ESTCA_E_INVALID, "base64: data after the padding at offset %zu",
                          pos);
    if (v == B64_PAD) {
        if (s->n < 2)
            return estca_fail(why, ESTCA_E_INVALID, "base64: misplaced padding at offset %zu", pos);
        s->pad++;
        v = 0;
    } else if (s->pad > 0) {
        return estca_fail(why, ESTCA_E_INVALID, "base64: data after the padding at offset %zu",
                          pos);
    }
    s->q[s->n++] = v;
    if (s->n < 4)
        return ESTCA_OK;
    if (s->pad > 0) {
        int rc = check_final_quartet(s->q, s->pad, why);
        if (rc != ESTCA_OK)
            return rc;
        s->done = true;
    }
    s->out_len += emit_quartet(s->q, s->pad, out + s->out_len);
    s->n = 0;
    return ESTCA_OK;
}

int base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len,
                  estca_reason *why)
{
    *out = NULL;
    *out_len = 0;
    unsigned char *buf = OPENSSL_malloc(in_len / 4 * 3 + 3);
    if (buf == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "base64: out of memory");
    struct b64_state s = {.n = 0};
    int rc = ESTCA_OK;
    for (size_t i = 0; i < in_len && rc == ESTCA_OK; i++)
        rc = feed(&s, (unsigned char)in[i], i, buf, why);
    if (rc == ESTCA_OK && s.n != 0)
        rc = estca_fail(why, ESTCA_E_INVALID, "base64: length is not a multiple of 4");
    if (rc == ESTCA_OK && s.out_len == 0)
        rc = estca_fail(why, ESTCA_E_INVALID, "base64: empty");
    if (rc != ESTCA_OK) {
        OPENSSL_clear_free(buf, in_len / 4 * 3 + 3);
        return rc;
    }
    *out = buf;
    *out_len = s.out_len;
    return ESTCA_OK;
}

int base64_encode(const unsigned char *in, size_t in_len, char **out, size_t *out_len,
                  estca_reason *why)
{
    *out = NULL;
    *out_len = 0;
    /* EVP_EncodeBlock takes an int; EST bodies are far below that. */
    if (in_len > (size_t)INT_MAX / 4 * 3 - 3)
        return estca_fail(why, ESTCA_E_TOO_LARGE, "base64: input too large");
    size_t cap = (in_len + 2) / 3 * 4 + 1;
    char *buf = OPENSSL_malloc(cap);
    if (buf == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "base64: out of memory");
    int n = EVP_EncodeBlock((unsigned char *)buf, in, (int)in_len);
    buf[n] = '\0';
    *out = buf;
    *out_len = (size_t)n;
    return ESTCA_OK;
}
