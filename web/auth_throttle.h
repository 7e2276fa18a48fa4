/* Slows down password guessing (issue: brute force): after a few failures for one user name
 * or one source address, further attempts for it are refused unchecked for an exponentially
 * growing time (1 s, 2 s, 4 s ... at most 5 min). Memory is bounded: a fixed table of
 * counters, hashed by key with a per-process secret, where a new key may take the slot of an
 * old one (an attacker can then only forget counters, never grow memory). Thread-safe. */
#ifndef ESTCA_AUTH_THROTTLE_H
#define ESTCA_AUTH_THROTTLE_H

#include <stdbool.h>
#include <time.h>

struct auth_throttle;

struct auth_throttle *auth_throttle_new(void);
void auth_throttle_free(struct auth_throttle *throttle);

/* Whether an attempt for key ("user:alice", "addr:192.0.2.1") may be checked now; if not,
 * *retry_after is the whole seconds to wait. */
bool auth_throttle_allows(struct auth_throttle *throttle, const char *key, time_t now,
                          int *retry_after);

/* Records the outcome of a checked attempt: a failure lengthens the key's back-off, a
 * success clears it. */
void auth_throttle_failed(struct auth_throttle *throttle, const char *key, time_t now);
void auth_throttle_succeeded(struct auth_throttle *throttle, const char *key);

/* For the metrics: the keys backing off now (at most the table's size). */
unsigned long auth_throttle_backing_off(struct auth_throttle *throttle, time_t now);

#endif
