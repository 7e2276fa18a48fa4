/* estca-slow-clients: many slow or idle TCP clients of one TLS server, for robustness tests.
 * It opens --count connections from each source address of --source (one address, or a range
 * such as 127.0.0.2-127.0.0.101: all of 127/8 is loopback on Linux) to 127.0.0.1:--port, and
 * on each, for --seconds:
 *   idle   sends nothing;
 *   hello  sends a real TLS ClientHello one byte per --interval-ms;
 *   head   completes a real TLS handshake, then sends an HTTP request head one byte per
 *          --interval-ms (the head never ends: the byte stream repeats a header line);
 *   body   the same, but the head is whole at once (a POST of Content-Length 60000, under
 *          estcad's default max_body) and its body comes one byte per --interval-ms; with
 *          --credentials FILE (user:password, read from a file to keep it out of argv) the
 *          head carries HTTP Basic, so the server gets as far as reading the body.
 * Connections are opened at --open-rate a second (default 1000: a burst faster than the
 * server's listen backlog takes would leave connections the server never saw). A connection
 * the server closes is counted, with how long it lived, and reopened --interval-ms later (an
 * attacker would), unless --no-reconnect. One thread, non-blocking sockets, poll.
 *
 * Prints one line of key=value on standard output when done:
 *   opened (connections opened), refused (connect failed), closed_by_server, handshakes (head
 *   mode: completed), bytes_sent, open_at_end, lived_ms_min / _median / _max (of the
 *   connections the server closed), answered (connections on which the server sent
 *   application data, e.g. an HTTP error).
 * Exit status 0 when the run completed, 2 on bad arguments, 1 on a local failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 5000
#define MAX_SECONDS 600

enum mode { MODE_IDLE, MODE_HELLO, MODE_HEAD, MODE_BODY };

enum state {
    STATE_WAITING,     /* closed; reopened at retry_at_ms */
    STATE_CONNECTING,  /* TCP connect in progress */
    STATE_HANDSHAKING, /* head mode: TLS handshake in progress */
    STATE_TRICKLING,   /* sending its bytes slowly (or nothing, idle mode) */
};

struct slot {
    struct in_addr source;
    int fd;
    enum state state;
    SSL *ssl;
    size_t sent;       /* bytes of the stream sent */
    int64_t opened_ms; /* when connect was called */
    int64_t next_ms;   /* when to send the next byte / reopen */
    bool answered;     /* the server sent application data */
};

struct options {
    int port;
    struct in_addr first, last;
    int count;
    enum mode mode;
    int seconds;
    int interval_ms;
    int open_rate;
    bool reconnect;
    char authorization[512]; /* "Authorization: Basic ...\r\n" or empty */
};

struct totals {
    long opened, refused, closed_by_server, handshakes, bytes_sent, answered;
    int64_t *lived_ms; /* one per connection the server closed */
    size_t n_lived, cap_lived;
};

static const char head_start[] = "POST /.well-known/est/simpleenroll HTTP/1.1\r\n"
                                 "Host: 127.0.0.1\r\n"
                                 "Content-Type: application/pkcs10\r\n";
static const char head_repeat[] = "X-Slow: a\r\n";
static const char body_head_end[] = "Content-Length: 60000\r\n\r\n";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: estca-slow-clients --port PORT --source ADDR[-ADDR] --count N\n"
                 "         --mode idle|hello|head|body --seconds T [--interval-ms MS]"
                 " [--open-rate N] [--credentials FILE] [--no-reconnect]\n");
}

static bool parse_int(const char *text, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return false;
    *out = (int)value;
    return true;
}

static bool parse_sources(const char *text, struct options *opt)
{
    char first[64];
    const char *dash = strchr(text, '-');
    size_t len = dash != NULL ? (size_t)(dash - text) : strlen(text);
    if (len >= sizeof first)
        return false;
    memcpy(first, text, len);
    first[len] = '\0';
    if (inet_pton(AF_INET, first, &opt->first) != 1)
        return false;
    if (dash == NULL) {
        opt->last = opt->first;
        return true;
    }
    return inet_pton(AF_INET, dash + 1, &opt->last) == 1 &&
           ntohl(opt->last.s_addr) >= ntohl(opt->first.s_addr);
}

/* FILE holds user:password; the header is built here and the file's bytes wiped. */
static bool read_credentials(const char *path, struct options *opt)
{
    unsigned char cred[192];
    unsigned char encoded[sizeof cred * 4 / 3 + 4];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t len = fread(cred, 1, sizeof cred - 1, f);
    fclose(f);
    while (len > 0 && (cred[len - 1] == '\n' || cred[len - 1] == '\r'))
        len--;
    int n = EVP_EncodeBlock(encoded, cred, (int)len);
    OPENSSL_cleanse(cred, sizeof cred);
    bool ok = len > 0 && n > 0 &&
              snprintf(opt->authorization, sizeof opt->authorization, "Authorization: Basic %s\r\n",
                       (const char *)encoded) < (int)sizeof opt->authorization;
    OPENSSL_cleanse(encoded, sizeof encoded);
    return ok;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longs[] = {
        {"port", required_argument, NULL, 'p'},
        {"source", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"mode", required_argument, NULL, 'm'},
        {"seconds", required_argument, NULL, 't'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"no-reconnect", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {"open-rate", required_argument, NULL, 'r'},
        {"credentials", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    *opt = (struct options){.interval_ms = 1000, .open_rate = 1000, .reconnect = true};
    bool have_mode = false;
    bool have_source = false;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'p':
            ok = parse_int(optarg, 1, 65535, &opt->port);
            break;
        case 's':
            ok = have_source = parse_sources(optarg, opt);
            break;
        case 'n':
            ok = parse_int(optarg, 1, MAX_CONNECTIONS, &opt->count);
            break;
        case 't':
            ok = parse_int(optarg, 1, MAX_SECONDS, &opt->seconds);
            break;
        case 'i':
            ok = parse_int(optarg, 10, 60000, &opt->interval_ms);
            break;
        case 'R':
            opt->reconnect = false;
            break;
        case 'r':
            ok = parse_int(optarg, 1, 100000, &opt->open_rate);
            break;
        case 'c':
            ok = read_credentials(optarg, opt);
            break;
        case 'm':
            have_mode = true;
            if (strcmp(optarg, "idle") == 0)
                opt->mode = MODE_IDLE;
            else if (strcmp(optarg, "hello") == 0)
                opt->mode = MODE_HELLO;
            else if (strcmp(optarg, "head") == 0)
                opt->mode = MODE_HEAD;
            else if (strcmp(optarg, "body") == 0)
                opt->mode = MODE_BODY;
            else
                ok = false;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "estca-slow-clients: bad option or value%s%s\n",
                    optarg != NULL ? ": " : "", optarg != NULL ? optarg : "");
            return 2;
        }
    }
    long addresses = (long)ntohl(opt->last.s_addr) - (long)ntohl(opt->first.s_addr) + 1;
    if (opt->port == 0 || !have_source || opt->count == 0 || !have_mode || opt->seconds == 0 ||
        optind != argc) {
        usage(stderr);
        return 2;
    }
    if (addresses * opt->count > MAX_CONNECTIONS) {
        fprintf(stderr, "estca-slow-clients: at most %d connections in all\n", MAX_CONNECTIONS);
        return 2;
    }
    return 0;
}

/* A real ClientHello, as OpenSSL's client writes it, captured from a memory BIO. */
static int capture_client_hello(SSL_CTX *ctx, unsigned char **hello, size_t *len)
{
    SSL *ssl = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (ssl == NULL || in == NULL || out == NULL) {
        SSL_free(ssl);
        BIO_free(in);
        BIO_free(out);
        return -1;
    }
    SSL_set_bio(ssl, in, out); /* ssl owns both now */
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
    (void)SSL_do_handshake(ssl); /* wants to read the ServerHello: the hello is in out */
    char *data;
    long n = BIO_get_mem_data(out, &data);
    int rc = -1;
    if (n > 0 && (*hello = malloc((size_t)n)) != NULL) {
        memcpy(*hello, data, (size_t)n);
        *len = (size_t)n;
        rc = 0;
    }
    SSL_free(ssl);
    return rc;
}

static void record_lifetime(struct totals *totals, int64_t lived)
{
    if (totals->n_lived == totals->cap_lived) {
        size_t cap = totals->cap_lived ? totals->cap_lived * 2 : 1024;
        int64_t *grown = realloc(totals->lived_ms, cap * sizeof *grown);
        if (grown == NULL)
            return;
        totals->lived_ms = grown;
        totals->cap_lived = cap;
    }
    totals->lived_ms[totals->n_lived++] = lived;
}

static void close_slot(struct slot *slot, const struct options *opt, int64_t now)
{
    SSL_free(slot->ssl);
    slot->ssl = NULL;
    if (slot->fd >= 0)
        close(slot->fd);
    slot->fd = -1;
    slot->state = STATE_WAITING;
    slot->next_ms = opt->reconnect ? now + opt->interval_ms : INT64_MAX;
}

static void server_closed(struct slot *slot, const struct options *opt, struct totals *totals,
                          int64_t now)
{
    totals->closed_by_server++;
    record_lifetime(totals, now - slot->opened_ms);
    close_slot(slot, opt, now);
}

static void open_slot(struct slot *slot, const struct options *opt, struct totals *totals,
                      int64_t now)
{
    slot->sent = 0;
    slot->answered = false;
    slot->opened_ms = now;
    slot->next_ms = now + opt->interval_ms;
    slot->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr = slot->source};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt->port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (slot->fd < 0 || setsockopt(slot->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        bind(slot->fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        (connect(slot->fd, (struct sockaddr *)&to, sizeof to) != 0 && errno != EINPROGRESS)) {
        totals->refused++;
        close_slot(slot, opt, now);
        return;
    }
    totals->opened++;
    slot->state = STATE_CONNECTING;
}

/* The connect finished (writable): on to the handshake or the trickle. */
static void connected(struct slot *slot, SSL_CTX *ctx, const struct options *opt,
                      struct totals *totals, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(slot->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        totals->refused++;
        totals->opened--;
        close_slot(slot, opt, now);
        return;
    }
    if (opt->mode != MODE_HEAD && opt->mode != MODE_BODY) {
        slot->state = STATE_TRICKLING;
        return;
    }
    slot->ssl = SSL_new(ctx);
    if (slot->ssl == NULL || SSL_set_fd(slot->ssl, slot->fd) != 1) {
        close_slot(slot, opt, now);
        return;
    }
    SSL_set_connect_state(slot->ssl);
    slot->state = STATE_HANDSHAKING;
}

static void send_body_head(struct slot *slot, const struct options *opt, struct totals *totals,
                           int64_t now);

static void handshake_step(struct slot *slot, const struct options *opt, struct totals *totals,
                           int64_t now)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(slot->ssl);
    if (rc == 1) {
        totals->handshakes++;
        slot->state = STATE_TRICKLING;
        slot->next_ms = now; /* the first byte at once */
        if (opt->mode == MODE_BODY)
            send_body_head(slot, opt, totals, now);
        return;
    }
    int err = SSL_get_error(slot->ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        server_closed(slot, opt, totals, now);
}

/* Something to read on a trickling connection: the server's answer or its close. */
static void readable(struct slot *slot, const struct options *opt, struct totals *totals,
                     int64_t now)
{
    char buf[4096];
    if (slot->ssl == NULL) {
        ssize_t n = recv(slot->fd, buf, sizeof buf, 0);
        if (n > 0)
            return; /* a ServerHello to a finished hello: not expected at this pace */
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        server_closed(slot, opt, totals, now);
        return;
    }
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(slot->ssl, buf, sizeof buf);
        if (n > 0) {
            if (!slot->answered)
                totals->answered++;
            slot->answered = true;
            continue;
        }
        int err = SSL_get_error(slot->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return;
        server_closed(slot, opt, totals, now);
        return;
    }
}

/* The stream's byte number i: the ClientHello, a request head that never ends, or a body. */
static unsigned char stream_byte(const struct options *opt, const unsigned char *hello,
                                 size_t hello_len, size_t i, bool *done)
{
    *done = false;
    if (opt->mode == MODE_HELLO) {
        *done = i + 1 >= hello_len;
        return hello[i < hello_len ? i : hello_len - 1];
    }
    size_t start = sizeof head_start - 1, repeat = sizeof head_repeat - 1;
    if (opt->mode == MODE_BODY)
        return 'A'; /* after the head, sent whole in send_body_head */
    if (i < start)
        return (unsigned char)head_start[i];
    return (unsigned char)head_repeat[(i - start) % repeat];
}

static void send_next_byte(struct slot *slot, const struct options *opt, const unsigned char *hello,
                           size_t hello_len, struct totals *totals, int64_t now)
{
    if (opt->mode == MODE_IDLE)
        return;
    bool done;
    if (opt->mode == MODE_HELLO && slot->sent >= hello_len)
        return; /* the whole hello went: now it only waits */
    unsigned char byte = stream_byte(opt, hello, hello_len, slot->sent, &done);
    int n;
    if (slot->ssl != NULL) {
        ERR_clear_error();
        n = SSL_write(slot->ssl, &byte, 1);
        if (n <= 0) {
            int err = SSL_get_error(slot->ssl, n);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                return;
            server_closed(slot, opt, totals, now);
            return;
        }
    } else {
        n = (int)send(slot->fd, &byte, 1, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            server_closed(slot, opt, totals, now);
            return;
        }
    }
    slot->sent++;
    totals->bytes_sent++;
    slot->next_ms = now + opt->interval_ms;
}

/* Body mode: the whole request head in one write, once the handshake is done. */
static void send_body_head(struct slot *slot, const struct options *opt, struct totals *totals,
                           int64_t now)
{
    char head[sizeof head_start + sizeof body_head_end + sizeof opt->authorization];
    int len = snprintf(head, sizeof head, "%s%s%s", head_start, opt->authorization, body_head_end);
    ERR_clear_error();
    int n = SSL_write(slot->ssl, head, len);
    OPENSSL_cleanse(head, sizeof head);
    if (n != len) {
        server_closed(slot, opt, totals, now);
        return;
    }
    totals->bytes_sent += n;
}

static int compare_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void run(struct slot *slots, size_t n, SSL_CTX *ctx, const struct options *opt,
                const unsigned char *hello, size_t hello_len, struct totals *totals)
{
    struct pollfd *pfd = calloc(n, sizeof *pfd);
    size_t *which = calloc(n, sizeof *which);
    if (pfd == NULL || which == NULL) {
        free(pfd);
        free(which);
        return;
    }
    int64_t start = now_ms(), end = start + (int64_t)opt->seconds * 1000;
    for (size_t i = 0; i < n; i++)
        slots[i].next_ms = start + (int64_t)i * 1000 / opt->open_rate; /* STATE_WAITING */
    for (int64_t now = start; now < end; now = now_ms()) {
        int64_t wake = end;
        nfds_t used = 0;
        for (size_t i = 0; i < n; i++) {
            struct slot *slot = &slots[i];
            if (slot->state == STATE_WAITING) {
                if (slot->next_ms <= now)
                    open_slot(slot, opt, totals, now);
                else if (slot->next_ms < wake)
                    wake = slot->next_ms;
                if (slot->state == STATE_WAITING)
                    continue;
            }
            if (slot->state == STATE_TRICKLING && slot->next_ms <= now)
                send_next_byte(slot, opt, hello, hello_len, totals, now);
            if (slot->state == STATE_WAITING)
                continue;
            if (slot->state == STATE_TRICKLING && opt->mode != MODE_IDLE && slot->next_ms < wake)
                wake = slot->next_ms;
            short events = POLLIN;
            if (slot->state == STATE_CONNECTING)
                events = POLLOUT;
            else if (slot->state == STATE_HANDSHAKING && SSL_want_write(slot->ssl))
                events = POLLOUT;
            pfd[used] = (struct pollfd){.fd = slot->fd, .events = events};
            which[used++] = i;
        }
        int timeout = (int)(wake > now ? wake - now : 0);
        int ready = poll(pfd, used, timeout);
        if (ready <= 0)
            continue;
        now = now_ms();
        for (nfds_t k = 0; k < used; k++) {
            if (pfd[k].revents == 0)
                continue;
            struct slot *slot = &slots[which[k]];
            if (slot->state == STATE_CONNECTING)
                connected(slot, ctx, opt, totals, now);
            if (slot->state == STATE_HANDSHAKING)
                handshake_step(slot, opt, totals, now);
            else if (slot->state == STATE_TRICKLING)
                readable(slot, opt, totals, now);
        }
    }
    free(pfd);
    free(which);
}

int main(int argc, char **argv)
{
    struct options opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc != 0)
        return rc;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* An attacker checks nothing: the server's certificate is not verified. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    unsigned char *hello = NULL;
    size_t hello_len = 0;
    if (capture_client_hello(ctx, &hello, &hello_len) != 0) {
        fprintf(stderr, "estca-slow-clients: cannot build a ClientHello\n");
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return 1;
    }
    uint32_t first = ntohl(opt.first.s_addr), last = ntohl(opt.last.s_addr);
    size_t n = (size_t)(last - first + 1) * (size_t)opt.count;
    struct slot *slots = calloc(n, sizeof *slots);
    struct totals totals = {0};
    if (slots == NULL) {
        free(hello);
        SSL_CTX_free(ctx);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        slots[i].fd = -1;
        slots[i].source.s_addr = htonl(first + (uint32_t)(i / (size_t)opt.count));
    }
    run(slots, n, ctx, &opt, hello, hello_len, &totals);

    long open_at_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (slots[i].state != STATE_WAITING)
            open_at_end++;
        close_slot(&slots[i], &opt, 0);
    }
    qsort(totals.lived_ms, totals.n_lived, sizeof *totals.lived_ms, compare_ms);
    int64_t lmin = totals.n_lived ? totals.lived_ms[0] : -1;
    int64_t lmed = totals.n_lived ? totals.lived_ms[totals.n_lived / 2] : -1;
    int64_t lmax = totals.n_lived ? totals.lived_ms[totals.n_lived - 1] : -1;
    printf("opened=%ld refused=%ld closed_by_server=%ld handshakes=%ld bytes_sent=%ld "
           "answered=%ld open_at_end=%ld lived_ms_min=%lld lived_ms_median=%lld "
           "lived_ms_max=%lld hello_bytes=%zu\n",
           totals.opened, totals.refused, totals.closed_by_server, totals.handshakes,
           totals.bytes_sent, totals.answered, open_at_end, (long long)lmin, (long long)lmed,
           (long long)lmax, hello_len);
    free(totals.lived_ms);
    free(slots);
    free(hello);
    SSL_CTX_free(ctx);
    return 0;
}
