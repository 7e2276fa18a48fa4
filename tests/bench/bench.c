/* estca-bench: in-process rates for tests/bench/run.sh.
 *   estca-bench sign  -c CONF --key URI --threads N --seconds S   raw token signatures
 *   estca-bench issue -c CONF --threads N --seconds S             CSR verify + build + sign
 *                                                                  + durable ledger commit
 * Prints one line: "mode=... threads=N ops=... seconds=... rate=...". */
#include "config.h"
#include "core.h"
#include "token.h"

#include <getopt.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
    const char *mode;
    EVP_PKEY *key;        /* sign */
    struct ca_core *core; /* issue */
    const struct core_label *label;
    unsigned char *csr_der; /* issue: parsed again for every request, as the server does */
    int csr_der_len;
    double seconds;
    atomic_long ops;
    atomic_int failed;
    atomic_bool stop;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sign_once(struct bench *b)
{
    static const unsigned char message[32] = "estca benchmark message 32 byte";
    unsigned char signature[1024];
    size_t signature_len = sizeof signature;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, b->key) == 1 &&
             EVP_DigestSign(ctx, signature, &signature_len, message, sizeof message) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int issue_once(struct bench *b)
{
    const unsigned char *p = b->csr_der;
    X509_REQ *csr = d2i_X509_REQ(NULL, &p, b->csr_der_len);
    X509 *cert = NULL;
    estca_reason why;
    int rc = csr ? core_enroll(b->core, b->label, csr, "bench", &cert, &why) : -1;
    if (rc != ESTCA_OK && csr != NULL)
        fprintf(stderr, "estca-bench: enroll failed: %s\n", why.text);
    X509_free(cert);
    X509_REQ_free(csr);
    return rc == ESTCA_OK ? 0 : -1;
}

static void *worker(void *arg)
{
    struct bench *b = arg;
    int issue = strcmp(b->mode, "issue") == 0;
    while (!atomic_load(&b->stop)) {
        if ((issue ? issue_once(b) : sign_once(b)) != 0) {
            atomic_store(&b->failed, 1);
            break;
        }
        atomic_fetch_add(&b->ops, 1);
    }
    return NULL;
}

static int make_csr(struct bench *b)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    int ok = key && req && name &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"bench-device", -1, -1, 0) &&
             X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, key) &&
             X509_REQ_sign(req, key, EVP_sha256()) > 0;
    if (ok) {
        b->csr_der = NULL;
        b->csr_der_len = i2d_X509_REQ(req, &b->csr_der);
        ok = b->csr_der_len > 0;
    }
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

static int run(struct bench *b, int threads)
{
    pthread_t ids[256];
    double start = now_seconds();
    for (int i = 0; i < threads; i++)
        pthread_create(&ids[i], NULL, worker, b);
    struct timespec pause = {(time_t)b->seconds,
                             (long)((b->seconds - (double)(time_t)b->seconds) * 1e9)};
    nanosleep(&pause, NULL);
    atomic_store(&b->stop, true);
    for (int i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
    double elapsed = now_seconds() - start;
    long ops = atomic_load(&b->ops);
    printf("mode=%s threads=%d ops=%ld seconds=%.2f rate=%.1f\n", b->mode, threads, ops, elapsed,
           (double)ops / elapsed);
    return atomic_load(&b->failed) ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {0, 0, 0, 0},
    };
    if (argc < 2 || (strcmp(argv[1], "sign") != 0 && strcmp(argv[1], "issue") != 0)) {
        fprintf(stderr, "usage: estca-bench sign|issue -c CONF [--key URI] [--threads N] "
                        "[--seconds S]\n");
        return 2;
    }
    struct bench b = {.mode = argv[1], .seconds = 3};
    const char *config_path = NULL, *key_uri = NULL;
    int threads = 1, opt;
    while ((opt = getopt_long(argc - 1, argv + 1, "c:k:t:s:", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            key_uri = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 's':
            b.seconds = atof(optarg);
            break;
        default:
            return 2;
        }
    }
    if (config_path == NULL || threads < 1 || threads > 256 || b.seconds <= 0 || b.seconds > 600 ||
        (strcmp(b.mode, "sign") == 0 && key_uri == NULL)) {
        fprintf(stderr, "estca-bench: need -c CONF, 1..256 threads, 0..600 seconds, and --key "
                        "for sign\n");
        return 2;
    }

    struct estca_config *config = NULL;
    struct hsm_token *token = NULL;
    estca_reason why = {{0}};
    int rc = config_load(config_path, &config, &why);
    if (rc == ESTCA_OK)
        rc = hsm_token_open(config->module_path, config->token_uri, config->pin_file, &token, &why);
    if (rc == ESTCA_OK && key_uri != NULL)
        rc = hsm_key_find(token, key_uri, &b.key, &why);
    if (rc == ESTCA_OK && strcmp(b.mode, "issue") == 0) {
        rc = core_open(config, token, &b.core, &why);
        if (rc == ESTCA_OK && (b.label = core_find_label(b.core, NULL)) == NULL)
            rc = estca_fail(&why, ESTCA_E_CONFIG, "no default label");
        if (rc == ESTCA_OK && make_csr(&b) != 0)
            rc = estca_fail(&why, ESTCA_E_CRYPTO, "cannot make a CSR");
    }
    int exit_code = 1;
    if (rc != ESTCA_OK)
        fprintf(stderr, "estca-bench: %s\n", why.text);
    else
        exit_code = run(&b, threads);
    OPENSSL_free(b.csr_der);
    core_free(b.core);
    EVP_PKEY_free(b.key);
    hsm_token_close(token);
    config_free(config);
    return exit_code;
}
