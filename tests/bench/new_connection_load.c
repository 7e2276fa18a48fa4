/* estca-load: enrollments with a full TLS handshake each, from N client threads for S seconds.
 * The benchmark's (d). wrk cannot measure this fairly: during a handshake it polls its socket
 * for writability, which is always true, and re-calls SSL_connect until the server answers —
 * about a quarter of the two cores went to that loop, taken from estcad. ab waits properly but
 * takes the Basic credentials only in argv. Each client here blocks in the kernel while it
 * waits, sends one fixed HTTP/1.1 POST with "Connection: close", reads to the end and keeps the
 * status code and the latency.
 *   estca-load --port P --path /.well-known/est/simpleenroll --csr FILE --auth-file FILE
 *              [--clients N] [--seconds S]
 * FILE for --csr: the base64 body; for --auth-file: base64 of "user:password" (no newline
 * needed). Prints one line: "load: requests=... not200=... socket_errors=... rate=... p50_ms=...
 * p99_ms=... cpu_ms=..."; cpu_ms is this process's own CPU time per request. Exit 0 when at
 * least one request completed. The server's certificate is not verified (as wrk and ab): the
 * load is on the server's handshake, not the client's. */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE, EVP_PKEY_meth_find: see claim_ec_key_decoding */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1024
#define MAX_SAMPLES_PER_CLIENT 20000 /* latencies beyond this are counted, not kept */

struct client {
    pthread_t thread;
    SSL_CTX *ctx;
    struct sockaddr_in server;
    const char *request;
    size_t request_len;
    double deadline;
    double *latencies_ms;
    long samples, requests, not200, socket_errors;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            char *grown = realloc(buf, cap = cap * 2 + 4096);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* These clients share the machine's cores with estcad, so every cycle they spend is taken from
 * the server under test. OpenSSL 3.0's d2i_X509 decodes the certificate's public key through a
 * decoder context it builds afresh for each call (about 85 µs, a fifth of this client's CPU per
 * connection) unless an ENGINE claims the key type; then OpenSSL's legacy EC decoder runs
 * (about 5 µs). This engine claims EC and hands back OpenSSL's own built-in EC method, so the
 * handshake is unchanged except for what reading the server's certificate costs. */
static int builtin_ec_method(ENGINE *engine, EVP_PKEY_METHOD **method, const int **nids, int nid)
{
    static const int claimed[] = {EVP_PKEY_EC};
    (void)engine;
    if (method == NULL) {
        *nids = claimed;
        return 1;
    }
    *method = nid == EVP_PKEY_EC ? (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(nid) : NULL;
    return *method != NULL;
}

static int claim_ec_key_decoding(void)
{
    ENGINE *engine = ENGINE_new();
    int ok =
        engine != NULL && ENGINE_set_id(engine, "estca-load-builtin-ec") &&
        ENGINE_set_name(engine, "OpenSSL's built-in EC method, for cheap certificate decoding") &&
        ENGINE_set_pkey_meths(engine, builtin_ec_method) && ENGINE_add(engine) &&
        ENGINE_register_pkey_meths(engine);
    ENGINE_free(engine); /* the engine list holds it until OpenSSL's clean-up at exit */
    return ok;
}

/* One enrollment on a new connection: the HTTP status, or -1 for a socket or TLS failure. */
static int enroll_once(struct client *c)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval timeout = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int status = -1;
    SSL *ssl = NULL;
    if (connect(fd, (struct sockaddr *)&c->server, sizeof c->server) != 0)
        goto done;
    ssl = SSL_new(c->ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1)
        goto done;
    size_t written = 0;
    if (SSL_write_ex(ssl, c->request, c->request_len, &written) != 1 || written != c->request_len)
        goto done;
    char head[64];
    size_t head_len = 0;
    char buf[16384];
    size_t got = 0;
    while (SSL_read_ex(ssl, buf, sizeof buf, &got) == 1) {
        size_t keep = sizeof head - 1 - head_len;
        if (keep > got)
            keep = got;
        memcpy(head + head_len, buf, keep);
        head_len += keep;
    }
    /* The server closes after its answer: a clean close_notify or EOF ends the loop. */
    head[head_len] = '\0';
    int code = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &code) == 1)
        status = code;
    SSL_shutdown(ssl);
done:
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
    return status;
}

static void *run_client(void *arg)
{
    struct client *c = arg;
    while (now_seconds() < c->deadline) {
        double start = now_seconds();
        int status = enroll_once(c);
        double took_ms = (now_seconds() - start) * 1000.0;
        c->requests++;
        if (status < 0)
            c->socket_errors++;
        else if (status != 200)
            c->not200++;
        if (c->samples < MAX_SAMPLES_PER_CLIENT)
            c->latencies_ms[c->samples++] = took_ms;
    }
    return NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: estca-load --port P --path PATH --csr FILE --auth-file FILE "
                    "[--clients N] [--seconds S]\n");
}

int main(int argc, char **argv)
{
    int port = 0, clients = 32;
    double seconds = 10;
    const char *path = NULL, *csr_file = NULL, *auth_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--path") == 0)
            path = argv[i + 1];
        else if (strcmp(argv[i], "--csr") == 0)
            csr_file = argv[i + 1];
        else if (strcmp(argv[i], "--auth-file") == 0)
            auth_file = argv[i + 1];
        else if (strcmp(argv[i], "--clients") == 0)
            clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else {
            usage();
            return 2;
        }
    }
    if (argc % 2 != 1 || port <= 0 || port > 65535 || path == NULL || csr_file == NULL ||
        auth_file == NULL || clients < 1 || clients > MAX_CLIENTS || seconds <= 0 ||
        seconds > 3600) {
        usage();
        return 2;
    }
    size_t csr_len = 0, auth_len = 0;
    char *csr = read_file(csr_file, &csr_len);
    char *auth = read_file(auth_file, &auth_len);
    if (csr == NULL || auth == NULL) {
        fprintf(stderr, "estca-load: cannot read %s\n", csr == NULL ? csr_file : auth_file);
        return 1;
    }
    size_t cap = csr_len + auth_len + strlen(path) + 256;
    char *request = malloc(cap);
    int request_len = request == NULL ? -1
                                      : snprintf(request, cap,
                                                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                                 "Authorization: Basic %s\r\n"
                                                 "Content-Type: application/pkcs10\r\n"
                                                 "Content-Length: %zu\r\nConnection: close\r\n\r\n"
                                                 "%s",
                                                 path, port, auth, csr_len, csr);
    OPENSSL_cleanse(auth, auth_len);
    free(auth);
    free(csr);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (request_len < 0 || (size_t)request_len >= cap || ctx == NULL || !claim_ec_key_decoding() ||
        !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        fprintf(stderr, "estca-load: set-up failed\n");
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

    struct client *all = calloc((size_t)clients, sizeof *all);
    double *samples = calloc((size_t)clients * MAX_SAMPLES_PER_CLIENT, sizeof *samples);
    if (all == NULL || samples == NULL) {
        fprintf(stderr, "estca-load: out of memory\n");
        return 1;
    }
    double start = now_seconds();
    for (int i = 0; i < clients; i++) {
        all[i] = (struct client){.ctx = ctx,
                                 .request = request,
                                 .request_len = (size_t)request_len,
                                 .deadline = start + seconds,
                                 .latencies_ms = samples + (size_t)i * MAX_SAMPLES_PER_CLIENT};
        all[i].server.sin_family = AF_INET;
        all[i].server.sin_port = htons((unsigned short)port);
        all[i].server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (pthread_create(&all[i].thread, NULL, run_client, &all[i]) != 0) {
            fprintf(stderr, "estca-load: cannot start client %d\n", i);
            return 1;
        }
    }
    long requests = 0, not200 = 0, socket_errors = 0, n = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(all[i].thread, NULL);
        requests += all[i].requests;
        not200 += all[i].not200;
        socket_errors += all[i].socket_errors;
    }
    double elapsed = now_seconds() - start;
    /* Gather the samples into one sorted run for the percentiles. */
    for (int i = 0; i < clients; i++) {
        memmove(samples + n, all[i].latencies_ms, (size_t)all[i].samples * sizeof *samples);
        n += all[i].samples;
    }
    qsort(samples, (size_t)n, sizeof *samples, compare_doubles);
    double p50 = n > 0 ? samples[(n - 1) * 50 / 100] : 0;
    double p99 = n > 0 ? samples[(n - 1) * 99 / 100] : 0;
    struct rusage used;
    getrusage(RUSAGE_SELF, &used);
    double cpu_ms = (double)(used.ru_utime.tv_sec + used.ru_stime.tv_sec) * 1e3 +
                    (double)(used.ru_utime.tv_usec + used.ru_stime.tv_usec) / 1e3;
    printf("load: requests=%ld not200=%ld socket_errors=%ld rate=%.2f p50_ms=%.2f p99_ms=%.2f "
           "cpu_ms=%.3f\n",
           requests, not200, socket_errors, (double)(requests - socket_errors) / elapsed, p50, p99,
           requests > 0 ? cpu_ms / (double)requests : 0);
    free(samples);
    free(all);
    OPENSSL_cleanse(request, (size_t)request_len); /* it holds the credentials */
    free(request);
    SSL_CTX_free(ctx);
    return requests > 0 ? 0 : 1;
}
