/* estcad: the EST daemon's main. The only file that wires the EST front (web/) to the CA core
 * (appliance/) and the token (hsm/): start-up, signals, shutdown. */
#include "config.h"
#include "core.h"
#include "crl_http.h"
#include "est_server.h"
#include "metrics_http.h"
#include "pem_file.h"
#include "token.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/estca/estca.conf"

/* How often the token is checked while it works (a failed operation checks it at once), and
 * how often a lost token is re-opened: a returning token serves again within a second. */
#define TOKEN_PROBE_INTERVAL_MS 2000
#define TOKEN_REOPEN_INTERVAL_MS 500

/* How long SIGTERM waits for the requests in flight (an RSA-4096 serverkeygen takes seconds). */
#define DRAIN_TIMEOUT_MS 30000

struct daemon_state {
    struct estca_config *config;
    struct hsm_token *token;
    struct ca_core *core;
    STACK_OF(X509) *tls_chain; /* leaf first */
    EVP_PKEY *tls_key;
    struct est_server *server;
    struct crl_http *crl_server;         /* NULL: no [server] crl_listen */
    struct metrics_http *metrics_server; /* NULL: no [server] metrics_listen */
    /* The core as the token supervisor's thread may audit with it: NULL once stopping. */
    pthread_mutex_t audit_lock;
    struct ca_core *audit_core;
};

static void audit_note(struct daemon_state *state, const char *event, const char *detail)
{
    pthread_mutex_lock(&state->audit_lock);
    core_audit_note(state->audit_core, event, detail);
    pthread_mutex_unlock(&state->audit_lock);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: estcad [-c FILE]\n\n"
                 "The estca EST (RFC 7030) server. Runs in the foreground; logs to stderr.\n\n"
                 "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
                 "  -h, --help          this text\n"
                 "  -V, --version       the version\n");
}

/* Runs on the token supervisor's thread, once per change of the token's state. */
static void log_token_event(void *arg, enum hsm_token_event event, const char *detail)
{
    static const char *const names[] = {
        [HSM_TOKEN_LOST] = "token-unavailable",
        [HSM_TOKEN_REOPEN_FAILED] = "token-reopen-failed",
        [HSM_TOKEN_RECOVERED] = "token-recovered",
    };
    fprintf(stderr, "event=%s detail=\"%s\"%s\n", names[event], detail,
            event == HSM_TOKEN_LOST ? " effect=\"issuing answers 503\"" : "");
    audit_note(arg, names[event], detail);
}

/* Runs on the CRL publisher's thread. */
static void log_crl_event(void *arg, const char *ca_name, bool signed_ok, const char *detail)
{
    (void)arg;
    fprintf(stderr, "event=%s ca=%s detail=\"%s\"\n", signed_ok ? "crl-signed" : "crl-failed",
            ca_name, detail);
}

static int start_crl_publication(struct daemon_state *state, estca_reason *why)
{
    int rc = core_start_crl_publisher(state->core, log_crl_event, NULL, why);
    if (rc != ESTCA_OK || state->config->crl_listen == NULL)
        return rc;
    rc = crl_http_start(state->config->crl_listen, state->core, &state->crl_server, why);
    if (rc == ESTCA_OK)
        fprintf(stderr, "event=crl-listening listen=%s port=%d\n", state->config->crl_listen,
                crl_http_port(state->crl_server));
    return rc;
}

static int start(struct daemon_state *state, const char *config_path, estca_reason *why)
{
    int rc = config_load(config_path, &state->config, why);
    if (rc != ESTCA_OK)
        return rc;
    const struct estca_config *config = state->config;
    rc = hsm_token_open(config->module_path, config->token_uri, config->pin_file, &state->token,
                        why);
    if (rc != ESTCA_OK)
        return rc;
    rc = hsm_token_limit_sessions(state->token, (unsigned)config->token_sessions, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = core_open(config, state->token, &state->core, why);
    if (rc != ESTCA_OK)
        return rc;
    state->audit_core = state->core;
    char detail[600];
    snprintf(detail, sizeof detail, "estcad %s, configuration %s", ESTCA_VERSION, config->path);
    audit_note(state, "start", detail);
    rc = pem_read_certificates(config->tls_certificate_file, &state->tls_chain, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = start_crl_publication(state, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = pem_load_private_key(state->token, config->tls_key, &state->tls_key, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = hsm_token_supervise(state->token, TOKEN_PROBE_INTERVAL_MS, TOKEN_REOPEN_INTERVAL_MS,
                             log_token_event, state, why);
    if (rc != ESTCA_OK)
        return rc;
    X509 *leaf = sk_X509_shift(state->tls_chain);
    struct est_server_options options;
    est_server_options_from_config(config, &options);
    options.tls_certificate = leaf;
    options.tls_chain = state->tls_chain;
    options.tls_key = state->tls_key;
    rc = est_server_start(&options, state->core, &state->server, why);
    sk_X509_unshift(state->tls_chain, leaf);
    if (rc != ESTCA_OK || config->metrics_listen == NULL)
        return rc;
    rc = metrics_http_start(config->metrics_listen, state->server, &state->metrics_server, why);
    if (rc == ESTCA_OK)
        fprintf(stderr, "event=metrics-listening listen=%s port=%d\n", config->metrics_listen,
                metrics_http_port(state->metrics_server));
    return rc;
}

static void stop(struct daemon_state *state)
{
    if (!est_server_drain(state->server, DRAIN_TIMEOUT_MS))
        fprintf(stderr, "event=drain-timeout after_ms=%d\n", DRAIN_TIMEOUT_MS);
    metrics_http_stop(state->metrics_server);
    est_server_stop(state->server);
    crl_http_stop(state->crl_server);
    EVP_PKEY_free(state->tls_key);
    sk_X509_pop_free(state->tls_chain, X509_free);
    audit_note(state, "stop", "");
    pthread_mutex_lock(&state->audit_lock);
    state->audit_core = NULL;
    pthread_mutex_unlock(&state->audit_lock);
    core_free(state->core);
    hsm_token_close(state->token);
    config_free(state->config);
}

static bool same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* What a reload cannot change: the token the keys are on, the listeners and their workers, the
 * ledger and the audit log (a second file would split the record). */
static int check_restart_only(const struct estca_config *running, const struct estca_config *next,
                              estca_reason *why)
{
    const struct {
        const char *setting;
        bool changed;
    } fixed[] = {
        {"[token] module", !same_text(running->module_path, next->module_path)},
        {"[token] uri", !same_text(running->token_uri, next->token_uri)},
        {"[token] pin_file", !same_text(running->pin_file, next->pin_file)},
        {"[token] sessions", running->token_sessions != next->token_sessions},
        {"[server] listen", !same_text(running->listen, next->listen)},
        {"[server] threads", running->threads != next->threads},
        {"[server] max_body", running->max_body != next->max_body},
        {"[server] request_timeout_ms", running->request_timeout_ms != next->request_timeout_ms},
        {"[server] max_connections_per_address",
         running->max_connections_per_address != next->max_connections_per_address},
        {"[server] crl_listen", !same_text(running->crl_listen, next->crl_listen)},
        {"[server] metrics_listen", !same_text(running->metrics_listen, next->metrics_listen)},
        {"[ledger] path", !same_text(running->ledger_path, next->ledger_path)},
        {"[audit] path", !same_text(running->audit_path, next->audit_path)},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (fixed[i].changed)
            return estca_fail(why, ESTCA_E_CONFIG, "%s changed: that takes a restart",
                              fixed[i].setting);
    }
    return ESTCA_OK;
}

/* What a reload builds before anything in service changes. */
struct reloaded {
    struct estca_config *config;
    struct ca_core *core;
    STACK_OF(X509) *tls_chain;
    EVP_PKEY *tls_key;
};

static void reloaded_free(struct reloaded *next)
{
    core_free(next->core);
    EVP_PKEY_free(next->tls_key);
    sk_X509_pop_free(next->tls_chain, X509_free);
    config_free(next->config);
}

static int prepare_reload(struct daemon_state *state, struct reloaded *next, estca_reason *why)
{
    int rc = config_load(state->config->path, &next->config, why);
    if (rc == ESTCA_OK)
        rc = check_restart_only(state->config, next->config, why);
    if (rc == ESTCA_OK)
        rc = core_open(next->config, state->token, &next->core, why);
    if (rc == ESTCA_OK)
        rc = pem_read_certificates(next->config->tls_certificate_file, &next->tls_chain, why);
    if (rc == ESTCA_OK)
        rc = pem_load_private_key(state->token, next->config->tls_key, &next->tls_key, why);
    if (rc == ESTCA_OK &&
        (sk_X509_num(next->tls_chain) < 1 ||
         X509_check_private_key(sk_X509_value(next->tls_chain, 0), next->tls_key) != 1))
        rc = estca_fail_openssl(why, ESTCA_E_CONFIG, "the TLS key does not match %s",
                                next->config->tls_certificate_file);
    if (rc == ESTCA_OK)
        rc = core_start_crl_publisher(next->core, log_crl_event, NULL, why);
    return rc;
}

static int serve_tls_credentials(struct daemon_state *state, STACK_OF(X509) *chain, EVP_PKEY *key,
                                 estca_reason *why)
{
    X509 *leaf = sk_X509_shift(chain);
    int rc = est_server_replace_tls(state->server, leaf, chain, key, why);
    sk_X509_unshift(chain, leaf);
    return rc;
}

/* Puts next in service: first the listener's credentials, then the core, which waits for the
 * requests that began before; a failure before the core's swap puts the credentials back. */
static int commit_reload(struct daemon_state *state, struct reloaded *next, estca_reason *why)
{
    int rc = serve_tls_credentials(state, next->tls_chain, next->tls_key, why);
    if (rc != ESTCA_OK)
        return rc;
    crl_http_replace_core(state->crl_server, next->core);
    struct ca_core *old = NULL;
    rc = est_server_replace_core(state->server, next->core, DRAIN_TIMEOUT_MS, &old, why);
    if (rc == ESTCA_E_UNAVAILABLE)
        fprintf(stderr, "event=reload-previous-busy reason=\"%s\"\n", why->text);
    else if (rc != ESTCA_OK) {
        crl_http_replace_core(state->crl_server, state->core);
        estca_reason ignored = {{0}};
        serve_tls_credentials(state, state->tls_chain, state->tls_key, &ignored);
        return rc;
    }
    pthread_mutex_lock(&state->audit_lock);
    state->audit_core = next->core;
    pthread_mutex_unlock(&state->audit_lock);
    core_free(old); /* NULL when a request still holds it: then it is never freed */
    state->core = next->core;
    EVP_PKEY_free(state->tls_key);
    state->tls_key = next->tls_key;
    sk_X509_pop_free(state->tls_chain, X509_free);
    state->tls_chain = next->tls_chain;
    config_free(state->config);
    state->config = next->config;
    *next = (struct reloaded){0};
    return ESTCA_OK;
}

/* SIGHUP: the whole configuration again (labels, CAs, profiles, policies, users, the
 * listener's certificate and key), while requests keep being served: those that began before
 * finish with what they began with. A configuration that does not load, or that changes what
 * only a restart can, leaves everything as it was. */
static void reload(struct daemon_state *state)
{
    estca_reason why = {{0}};
    struct reloaded next = {0};
    int rc = prepare_reload(state, &next, &why);
    if (rc == ESTCA_OK)
        rc = commit_reload(state, &next, &why);
    reloaded_free(&next);
    if (rc == ESTCA_OK)
        fprintf(stderr, "event=reloaded what=configuration path=%s\n", state->config->path);
    else
        fprintf(stderr, "event=reload-failed what=configuration status=%s reason=\"%s\"\n",
                estca_status_name(rc), why.text);
    audit_note(state, rc == ESTCA_OK ? "configuration-reloaded" : "configuration-reload-failed",
               rc == ESTCA_OK ? state->config->path : why.text);
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0, 0, 0, 0},
    };
    const char *config_path = DEFAULT_CONFIG;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("estcad %s\n", ESTCA_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Block the signals before any worker thread exists, so only sigwait below sees them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct daemon_state state = {0};
    pthread_mutex_init(&state.audit_lock, NULL);
    estca_reason why = {{0}};
    int rc = start(&state, config_path, &why);
    if (rc != ESTCA_OK) {
        fprintf(stderr, "event=start-failed status=%s reason=\"%s\"\n", estca_status_name(rc),
                why.text);
        stop(&state);
        return 1;
    }
    fprintf(stderr, "event=listening version=%s listen=%s port=%d threads=%d token_sessions=%d\n",
            ESTCA_VERSION, state.config->listen, est_server_port(state.server),
            state.config->threads, state.config->token_sessions);

    int received = 0;
    while (sigwait(&signals, &received) == 0 && received == SIGHUP)
        reload(&state);
    fprintf(stderr, "event=stopping signal=%s\n", received == SIGINT ? "SIGINT" : "SIGTERM");
    stop(&state);
    fprintf(stderr, "event=stopped\n");
    return 0;
}
