#include "pem_file.h"

#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

int pem_read_certificates(const char *path, STACK_OF(X509) **out, estca_reason *why)
{
    *out = NULL;
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "cannot open %s: %s", path, strerror(errno));
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *cert = NULL;
    while (certs != NULL && (cert = PEM_read_X509(file, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, cert)) {
            X509_free(cert);
            sk_X509_pop_free(certs, X509_free);
            certs = NULL;
        }
    }
    fclose(file);
    ERR_clear_error(); /* the read loop ends on "no start line" */
    if (certs == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        return estca_fail(why, ESTCA_E_CONFIG, "no PEM certificate in %s", path);
    }
    *out = certs;
    return ESTCA_OK;
}

/* A PEM private key file is a secret file like a PIN file: the token layer's reader refuses
 * one that group or others may read, and the copy in memory is wiped after parsing. */
#define PEM_KEY_MAX 16384

static int pem_read_private_key(const char *path, EVP_PKEY **out, estca_reason *why)
{
    char *pem = OPENSSL_malloc(PEM_KEY_MAX);
    if (pem == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    int rc = hsm_read_secret_file(path, pem, PEM_KEY_MAX, why);
    BIO *bio = rc == ESTCA_OK ? BIO_new_mem_buf(pem, -1) : NULL;
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_clear_free(pem, PEM_KEY_MAX);
    if (rc != ESTCA_OK)
        return rc;
    if (key == NULL)
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "no PEM private key in %s", path);
    *out = key;
    return ESTCA_OK;
}

int pem_load_private_key(struct hsm_token *token, const char *ref, EVP_PKEY **out,
                         estca_reason *why)
{
    *out = NULL;
    if (strncmp(ref, "pkcs11:", 7) == 0)
        return hsm_key_find(token, ref, out, why);
    return pem_read_private_key(ref, out, why);
}

int file_write_atomically(const char *path, const void *data, size_t len, estca_reason *why)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return estca_fail(why, ESTCA_E_INVALID, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return estca_fail(why, ESTCA_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int rc = estca_fail(why, ESTCA_E_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return ESTCA_OK;
}
