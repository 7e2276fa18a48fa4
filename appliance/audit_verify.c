/* Checking an audit log (audit.h): the chain line by line, and each checkpoint's signature. */
#include "audit.h"
#include "audit_internal.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_signature(json_t *line, unsigned long number, EVP_PKEY *key, estca_reason *why)
{
    const char *prev = json_string_value(json_object_get(line, "prev"));
    const char *encoded = json_string_value(json_object_get(line, "signature"));
    if (encoded == NULL || strlen(encoded) > 2048)
        return estca_fail(why, ESTCA_E_INVALID, "line %lu: a checkpoint without a signature",
                          number);
    unsigned char signature[1600];
    int len = EVP_DecodeBlock(signature, (const unsigned char *)encoded, (int)strlen(encoded));
    /* EVP_DecodeBlock counts the padding's zero bytes: DER signatures ignore them, but the
     * length must be exact for the verifier. */
    for (const char *p = encoded + strlen(encoded); len > 0 && p > encoded && p[-1] == '='; p--)
        len--;
    char message[128];
    audit_checkpoint_message(number, prev, message, sizeof message);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok =
        len > 0 && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestVerify(ctx, signature, (size_t)len, (unsigned char *)message, strlen(message)) ==
            1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return estca_fail_openssl(why, ESTCA_E_INVALID,
                                  "line %lu: the checkpoint's signature does not verify", number);
    return ESTCA_OK;
}

/* One line: valid JSON, the next sequence number, chained to the line before. */
static int check_line(const char *text, size_t len, unsigned long number, const char *prev,
                      EVP_PKEY *key, bool *checkpoint, estca_reason *why)
{
    json_error_t error;
    json_t *line = json_loadb(text, len, 0, &error);
    int rc = ESTCA_OK;
    if (!json_is_object(line))
        rc = estca_fail(why, ESTCA_E_INVALID, "line %lu is not a JSON object", number);
    json_int_t seq = json_integer_value(json_object_get(line, "seq"));
    const char *line_prev = json_string_value(json_object_get(line, "prev"));
    const char *event = json_string_value(json_object_get(line, "event"));
    if (rc == ESTCA_OK && (seq <= 0 || (unsigned long)seq != number))
        rc = estca_fail(why, ESTCA_E_INVALID,
                        "line %lu has seq %lld: a line before it was deleted or moved", number,
                        (long long)seq);
    if (rc == ESTCA_OK && (line_prev == NULL || strcmp(line_prev, prev) != 0))
        rc = estca_fail(why, ESTCA_E_INVALID,
                        "line %lu: prev does not match the line before it (which was altered, "
                        "deleted or moved)",
                        number);
    *checkpoint = rc == ESTCA_OK && event != NULL && strcmp(event, "checkpoint") == 0;
    if (*checkpoint && key != NULL)
        rc = check_signature(line, number, key, why);
    json_decref(line);
    return rc;
}

int audit_verify(const char *path, EVP_PKEY *public_key, struct audit_verification *out,
                 estca_reason *why)
{
    *out = (struct audit_verification){0};
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "cannot open %s", path);
    char prev[AUDIT_HASH_HEX];
    audit_genesis_hash(prev);
    char *text = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = ESTCA_OK;
    while (rc == ESTCA_OK && (n = getline(&text, &cap, file)) > 0) {
        out->lines++;
        if (text[n - 1] != '\n') {
            rc = estca_fail(why, ESTCA_E_INVALID, "line %lu is cut short", out->lines);
            break;
        }
        bool checkpoint = false;
        rc = check_line(text, (size_t)n - 1, out->lines, prev, public_key, &checkpoint, why);
        audit_line_hash(text, (size_t)n - 1, prev);
        if (checkpoint) {
            out->checkpoints++;
            out->unsigned_tail = 0;
        } else {
            out->unsigned_tail++;
        }
    }
    free(text);
    fclose(file);
    return rc;
}
