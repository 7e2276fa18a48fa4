#include "auth_throttle.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096      /* about 200 KiB, whatever the traffic */
#define FREE_FAILURES 3 /* typos cost nothing */
#define MAX_BACKOFF_SECONDS 300
#define KEY_DIGEST_LEN 16

struct slot {
    unsigned char digest[KEY_DIGEST_LEN]; /* which key owns the slot */
    unsigned failures;
    time_t blocked_until;
};

struct auth_throttle {
    pthread_mutex_t lock;
    unsigned char secret[32]; /* so nobody can aim keys at one slot */
    struct slot slots[SLOTS];
};

struct auth_throttle *auth_throttle_new(void)
{
    struct auth_throttle *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    if (RAND_bytes(t->secret, sizeof t->secret) != 1 || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->lock);
    OPENSSL_cleanse(t->secret, sizeof t->secret);
    free(t);
}

/* A keyed digest of key: its first bytes choose the slot, the whole identifies the owner. */
static struct slot *slot_for(struct auth_throttle *t, const char *key,
                             unsigned char digest[KEY_DIGEST_LEN])
{
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, t->secret, sizeof t->secret) != 1 ||
        EVP_DigestUpdate(ctx, key, strlen(key)) != 1 || EVP_DigestFinal_ex(ctx, full, &len) != 1)
        len = 0;
    EVP_MD_CTX_free(ctx);
    if (len < KEY_DIGEST_LEN)
        return NULL;
    memcpy(digest, full, KEY_DIGEST_LEN);
    unsigned index = ((unsigned)full[KEY_DIGEST_LEN] << 8 | full[KEY_DIGEST_LEN + 1]) % SLOTS;
    return &t->slots[index];
}

bool auth_throttle_allows(struct auth_throttle *t, const char *key, time_t now, int *retry_after)
{
    unsigned char digest[KEY_DIGEST_LEN];
    struct slot *slot = slot_for(t, key, digest);
    if (slot == NULL)
        return true;
    pthread_mutex_lock(&t->lock);
    bool blocked = memcmp(slot->digest, digest, sizeof digest) == 0 && slot->blocked_until > now;
    if (blocked)
        *retry_after = (int)(slot->blocked_until - now);
    pthread_mutex_unlock(&t->lock);
    return !blocked;
}

void auth_throttle_failed(struct auth_throttle *t, const char *key, time_t now)
{
    unsigned char digest[KEY_DIGEST_LEN];
    struct slot *slot = slot_for(t, key, digest);
    if (slot == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    if (memcmp(slot->digest, digest, sizeof digest) != 0) {
        memcpy(slot->digest, digest, sizeof digest); /* the slot changes owner */
        slot->failures = 0;
        slot->blocked_until = 0;
    }
    slot->failures++;
    if (slot->failures > FREE_FAILURES) {
        unsigned shift = slot->failures - FREE_FAILURES - 1;
        time_t backoff = shift >= 9 ? MAX_BACKOFF_SECONDS : (time_t)1 << shift;
        /* Whole seconds: + 1 makes the block last at least backoff seconds, however late in
         * the current second the failure came. */
        slot->blocked_until =
            now + (backoff < MAX_BACKOFF_SECONDS ? backoff : MAX_BACKOFF_SECONDS) + 1;
    }
    pthread_mutex_unlock(&t->lock);
}

void auth_throttle_succeeded(struct auth_throttle *t, const char *key)
{
    unsigned char digest[KEY_DIGEST_LEN];
    struct slot *slot = slot_for(t, key, digest);
    if (slot == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    if (memcmp(slot->digest, digest, sizeof digest) == 0) {
        slot->failures = 0;
        slot->blocked_until = 0;
    }
    pthread_mutex_unlock(&t->lock);
}

unsigned long auth_throttle_backing_off(struct auth_throttle *t, time_t now)
{
    unsigned long n = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < SLOTS; i++)
        n += t->slots[i].blocked_until > now;
    pthread_mutex_unlock(&t->lock);
    return n;
}
