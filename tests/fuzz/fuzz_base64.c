/* libFuzzer harness for web/base64.c, the decoder of every EST request body.
 *
 * Properties checked beyond "no crash, no sanitizer report":
 *  - whatever decodes re-encodes (one line, no breaks) to exactly the input without its
 *    CR/LF/SP/TAB: the decoder accepts one spelling per byte string (RFC 4648 §3.5 zero bits,
 *    exact padding), so encode(decode(x)) == strip_blanks(x);
 *  - encode(decode(x)) decodes again to the same bytes;
 *  - the data as raw bytes also round-trips: decode(encode(data)) == data. */
#include "base64.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_encode_roundtrip(const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t text_len = 0;
    if (base64_encode(data, size, &text, &text_len, NULL) != 0)
        abort();
    if (strlen(text) != text_len || text_len != (size + 2) / 3 * 4)
        abort();
    unsigned char *back = NULL;
    size_t back_len = 0;
    int rc = base64_decode(text, text_len, &back, &back_len, NULL);
    /* Empty input encodes to "" which the decoder refuses by contract. */
    if (size == 0) {
        if (rc == 0)
            abort();
    } else if (rc != 0 || back_len != size || memcmp(back, data, size) != 0) {
        abort();
    }
    OPENSSL_free(back);
    OPENSSL_free(text);
}

static int is_blank(uint8_t c)
{
    return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

static void check_decode_roundtrip(const uint8_t *data, size_t size)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (base64_decode((const char *)data, size, &raw, &raw_len, NULL) != 0) {
        if (raw != NULL || raw_len != 0)
            abort(); /* failure leaves the outputs empty */
        return;
    }
    if (raw == NULL || raw_len == 0 || raw_len > size / 4 * 3 + 3)
        abort();
    char *text = NULL;
    size_t text_len = 0;
    if (base64_encode(raw, raw_len, &text, &text_len, NULL) != 0)
        abort();
    /* Canonical: the encoding is the input minus its tolerated blanks. */
    size_t j = 0;
    for (size_t i = 0; i < size; i++) {
        if (is_blank(data[i]))
            continue;
        if (j >= text_len || (unsigned char)text[j] != data[i])
            abort();
        j++;
    }
    if (j != text_len)
        abort();
    unsigned char *again = NULL;
    size_t again_len = 0;
    if (base64_decode(text, text_len, &again, &again_len, NULL) != 0 || again_len != raw_len ||
        memcmp(again, raw, raw_len) != 0)
        abort();
    OPENSSL_free(again);
    OPENSSL_free(text);
    OPENSSL_free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes on the heap, so ASan sees any read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    check_decode_roundtrip(copy, size);
    check_encode_roundtrip(copy, size);
    free(copy);
    return 0;
}
