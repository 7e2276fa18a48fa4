/* The token's fault state: the guard every token operation takes, and the supervisor thread
 * that notices a lost token and re-opens it. See token_guard.h for the design. */
#include "token_guard.h"

#include "token.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

struct token_supervisor {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a fault report or the stop request */
    bool stop, probe_now;
    unsigned probe_interval_ms, retry_interval_ms;
    hsm_token_event_fn *on_event;
    void *arg;
};

int token_guard_init(struct hsm_token *t, estca_reason *why)
{
    atomic_init(&t->state, TOKEN_UP);
    if (pthread_rwlock_init(&t->guard, NULL) != 0)
        return estca_fail(why, ESTCA_E_NOMEM, "cannot create the token's lock");
    if (pthread_mutex_init(&t->keys_lock, NULL) != 0) {
        pthread_rwlock_destroy(&t->guard);
        return estca_fail(why, ESTCA_E_NOMEM, "cannot create the token's lock");
    }
    if (sem_init(&t->sessions, 0, HSM_MAX_SESSIONS) != 0) {
        pthread_mutex_destroy(&t->keys_lock);
        pthread_rwlock_destroy(&t->guard);
        return estca_fail(why, ESTCA_E_NOMEM, "cannot create the token's session count");
    }
    return ESTCA_OK;
}

int hsm_token_limit_sessions(struct hsm_token *token, unsigned sessions, estca_reason *why)
{
    if (token == NULL || sessions < 1 || sessions > HSM_MAX_SESSIONS)
        return estca_fail(why, ESTCA_E_INVALID, "token sessions must be 1 to %d", HSM_MAX_SESSIONS);
    /* At start-up, before any other thread: take away the slots above the limit. */
    for (unsigned i = sessions; i < HSM_MAX_SESSIONS; i++)
        sem_wait(&token->sessions);
    return ESTCA_OK;
}

static void supervisor_stop(struct token_supervisor *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void token_guard_destroy(struct hsm_token *t)
{
    if (t->supervisor != NULL)
        supervisor_stop(t->supervisor);
    t->supervisor = NULL;
    sem_destroy(&t->sessions);
    pthread_mutex_destroy(&t->keys_lock);
    pthread_rwlock_destroy(&t->guard);
}

bool hsm_token_available(const struct hsm_token *token)
{
    return token != NULL && atomic_load(&token->state) == TOKEN_UP;
}

int token_guard_enter(struct hsm_token *t, estca_reason *why)
{
    /* tryrdlock: while the supervisor holds (or waits for) the write lock the token is being
     * re-opened, and a request is better answered 503 now than after the re-open. */
    if (atomic_load(&t->state) == TOKEN_UP && pthread_rwlock_tryrdlock(&t->guard) == 0) {
        if (atomic_load(&t->state) == TOKEN_UP) {
            /* Waiting here, not in libp11's pool, keeps its session count at our limit. */
            while (sem_wait(&t->sessions) != 0 && errno == EINTR)
                ;
            return ESTCA_OK;
        }
        pthread_rwlock_unlock(&t->guard);
    }
    return estca_fail(why, ESTCA_E_UNAVAILABLE, "the token is unavailable (being re-opened)");
}

void token_guard_leave(struct hsm_token *t, int rc)
{
    sem_post(&t->sessions);
    pthread_rwlock_unlock(&t->guard);
    struct token_supervisor *s = t->supervisor;
    /* Any token failure asks for a probe: a PKCS#11 error code does not always tell a lost
     * token from a refused operation (SoftHSM2 answers CKR_GENERAL_ERROR for both). */
    if (rc == ESTCA_OK || s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->probe_now = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

static double monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Waits up to ms or until woken; false when asked to stop. */
static bool supervisor_wait(struct token_supervisor *s, unsigned ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->stop && !s->probe_now) {
        if (pthread_cond_timedwait(&s->wake, &s->lock, &deadline) == ETIMEDOUT)
            break;
    }
    s->probe_now = false;
    bool go_on = !s->stop;
    pthread_mutex_unlock(&s->lock);
    return go_on;
}

/* Under the write lock: drop every libp11 key and the module, then connect and bind again.
 * On failure the token stays down, with whatever was connected, for the next attempt. */
static int reopen(struct hsm_token *t, estca_reason *why)
{
    pthread_rwlock_wrlock(&t->guard);
    for (size_t i = 0; i < t->n_keys; i++) {
        EVP_PKEY_free(t->keys[i]->current);
        t->keys[i]->current = NULL;
    }
    token_disconnect(t);
    int rc = token_connect(t, why);
    for (size_t i = 0; rc == ESTCA_OK && i < t->n_keys; i++)
        rc = token_bind_key(t, t->keys[i], why);
    if (rc == ESTCA_OK)
        atomic_store(&t->state, TOKEN_UP);
    pthread_rwlock_unlock(&t->guard);
    return rc;
}

static void report(struct token_supervisor *s, enum hsm_token_event event, const char *detail)
{
    if (s->on_event != NULL)
        s->on_event(s->arg, event, detail);
}

static void *supervise(void *arg)
{
    struct hsm_token *t = arg;
    struct token_supervisor *s = t->supervisor;
    double lost_at = 0;
    char last_failure[sizeof(estca_reason)] = "";
    for (;;) {
        bool down = atomic_load(&t->state) == TOKEN_DOWN;
        if (!supervisor_wait(s, down ? s->retry_interval_ms : s->probe_interval_ms))
            break;
        estca_reason why = {{0}};
        ERR_clear_error(); /* what earlier calls on this thread left must not show as reasons */
        if (!down) {
            if (token_probe(t, &why) == ESTCA_OK)
                continue;
            atomic_store(&t->state, TOKEN_DOWN);
            lost_at = monotonic_seconds();
            report(s, HSM_TOKEN_LOST, why.text);
            last_failure[0] = '\0';
        }
        if (reopen(t, &why) == ESTCA_OK) {
            char detail[64];
            snprintf(detail, sizeof detail, "after %.1f s", monotonic_seconds() - lost_at);
            report(s, HSM_TOKEN_RECOVERED, detail);
        } else if (strcmp(why.text, last_failure) != 0) {
            /* Once per distinct reason, not once per attempt. */
            report(s, HSM_TOKEN_REOPEN_FAILED, why.text);
            snprintf(last_failure, sizeof last_failure, "%s", why.text);
        }
    }
    return NULL;
}

int hsm_token_supervise(struct hsm_token *token, unsigned probe_interval_ms,
                        unsigned retry_interval_ms, hsm_token_event_fn *on_event, void *arg,
                        estca_reason *why)
{
    if (token == NULL || token->supervisor != NULL || probe_interval_ms == 0 ||
        retry_interval_ms == 0)
        return estca_fail(why, ESTCA_E_INVALID, "hsm_token_supervise: bad arguments");
    struct token_supervisor *s = calloc(1, sizeof *s);
    if (s == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    *s = (struct token_supervisor){.probe_interval_ms = probe_interval_ms,
                                   .retry_interval_ms = retry_interval_ms,
                                   .on_event = on_event,
                                   .arg = arg};
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err == 0)
        err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (err == 0)
        err = pthread_cond_init(&s->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (err == 0 && (err = pthread_mutex_init(&s->lock, NULL)) != 0)
        pthread_cond_destroy(&s->wake);
    if (err != 0) {
        free(s);
        return estca_fail(why, ESTCA_E_NOMEM, "token supervisor: %s", strerror(err));
    }
    token->supervisor = s;
    err = pthread_create(&s->thread, NULL, supervise, token);
    if (err != 0) {
        token->supervisor = NULL;
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return estca_fail(why, ESTCA_E_NOMEM, "token supervisor thread: %s", strerror(err));
    }
    return ESTCA_OK;
}
