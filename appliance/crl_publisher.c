/* Keeps every CA's CRL fresh while estcad runs (core.h: core_start_crl_publisher). One thread
 * checks the ledger's revocation count per CA every CHECK_SECONDS and re-signs on the token
 * when it grew, when half the CRL's validity has passed, or when the last attempt failed
 * (the token was down, say; the previous CRL is served meanwhile). */
#include "core_internal.h"
#include "crl.h"
#include "pem_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_SECONDS 2
#define RETRY_SECONDS 5

struct crl_state {
    pthread_mutex_t lock; /* der, len: read by request threads */
    unsigned char *der;
    size_t len;
    long revoked_seen; /* -1: never signed */
    time_t refresh_at;
};

struct crl_publisher {
    struct ca_core *core;
    core_crl_event_fn *on_event;
    void *arg;
    struct crl_state *states; /* one per core->cas[i] */
    size_t n;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, stop;
};

static int sign_crl(struct crl_publisher *p, const struct ca_instance *ca, struct crl_state *state,
                    long revoked, estca_reason *why)
{
    X509_CRL *crl = NULL;
    int rc = crl_build(p->core->ledger, ca->name, ca->certificate, ca->key, ca->crl_validity_hours,
                       &crl, why);
    unsigned char *der = NULL;
    int len = rc == ESTCA_OK ? i2d_X509_CRL(crl, &der) : 0;
    X509_CRL_free(crl);
    if (rc == ESTCA_OK && len <= 0)
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot encode the CRL");
    if (rc == ESTCA_OK && ca->crl_file != NULL)
        rc = file_write_atomically(ca->crl_file, der, (size_t)len, why);
    if (rc != ESTCA_OK) {
        OPENSSL_free(der);
        return rc;
    }
    pthread_mutex_lock(&state->lock);
    OPENSSL_free(state->der);
    state->der = der;
    state->len = (size_t)len;
    pthread_mutex_unlock(&state->lock);
    state->revoked_seen = revoked;
    /* Half the validity: relying parties that cache until nextUpdate never run dry. */
    state->refresh_at = time(NULL) + (time_t)ca->crl_validity_hours * 3600 / 2;
    return ESTCA_OK;
}

static void refresh(struct crl_publisher *p, size_t i)
{
    const struct ca_instance *ca = &p->core->cas[i];
    struct crl_state *state = &p->states[i];
    estca_reason why = {{0}};
    long revoked = 0;
    if (ledger_count_revoked(p->core->ledger, ca->name, &revoked, &why) != ESTCA_OK) {
        p->on_event(p->arg, ca->name, false, why.text);
        return;
    }
    if (revoked == state->revoked_seen && time(NULL) < state->refresh_at)
        return;
    if (sign_crl(p, ca, state, revoked, &why) != ESTCA_OK) {
        state->refresh_at = time(NULL) + RETRY_SECONDS;
        state->revoked_seen = -1; /* try again even if nothing else changes */
        p->on_event(p->arg, ca->name, false, why.text);
        return;
    }
    char detail[96];
    snprintf(detail, sizeof detail, "revoked=%ld valid_hours=%d", revoked, ca->crl_validity_hours);
    p->on_event(p->arg, ca->name, true, detail);
}

static void *run(void *arg)
{
    struct crl_publisher *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < p->n; i++)
            refresh(p, i);
        pthread_mutex_lock(&p->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += CHECK_SECONDS;
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void ignore_event(void *arg, const char *ca_name, bool signed_ok, const char *detail)
{
    (void)arg, (void)ca_name, (void)signed_ok, (void)detail;
}

int core_start_crl_publisher(struct ca_core *core, core_crl_event_fn *on_event, void *arg,
                             estca_reason *why)
{
    if (core == NULL || core->crl_publisher != NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_start_crl_publisher: bad arguments");
    struct crl_publisher *p = calloc(1, sizeof *p);
    struct crl_state *states = calloc(core->n_cas > 0 ? core->n_cas : 1, sizeof *states);
    if (p == NULL || states == NULL) {
        free(p);
        free(states);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    *p = (struct crl_publisher){.core = core,
                                .on_event = on_event != NULL ? on_event : ignore_event,
                                .arg = arg,
                                .states = states,
                                .n = core->n_cas};
    for (size_t i = 0; i < p->n; i++) {
        pthread_mutex_init(&states[i].lock, NULL);
        states[i].revoked_seen = -1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    core->crl_publisher = p;
    int err = pthread_create(&p->thread, NULL, run, p);
    p->started = err == 0;
    if (err != 0) {
        core->crl_publisher = NULL;
        crl_publisher_free(p);
        return estca_fail(why, ESTCA_E_NOMEM, "CRL publisher thread: %s", strerror(err));
    }
    return ESTCA_OK;
}

void crl_publisher_free(struct crl_publisher *p)
{
    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n; i++) {
        OPENSSL_free(p->states[i].der);
        pthread_mutex_destroy(&p->states[i].lock);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->states);
    free(p);
}

int core_crl_der(struct ca_core *core, const char *ca_name, unsigned char **der, size_t *len,
                 estca_reason *why)
{
    *der = NULL;
    *len = 0;
    const struct ca_instance *ca =
        core != NULL && ca_name != NULL ? core_find_ca(core, ca_name) : NULL;
    if (ca == NULL)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "no CA %s", ca_name != NULL ? ca_name : "");
    struct crl_state *state =
        core->crl_publisher != NULL ? &core->crl_publisher->states[ca - core->cas] : NULL;
    if (state != NULL) {
        pthread_mutex_lock(&state->lock);
        if (state->der != NULL && (*der = OPENSSL_memdup(state->der, state->len)) != NULL)
            *len = state->len;
        pthread_mutex_unlock(&state->lock);
    }
    if (*der == NULL)
        return estca_fail(why, ESTCA_E_UNAVAILABLE, "no CRL of CA %s signed yet", ca_name);
    return ESTCA_OK;
}
