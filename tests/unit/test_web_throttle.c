/* The login back-off: free failures, then exponential blocking, cleared by success, separate
 * per key, capped, and bounded in memory whatever the number of keys. */
#include "auth_throttle.h"

#include <criterion/criterion.h>
#include <stdio.h>

static struct auth_throttle *throttle;

static void setup(void)
{
    throttle = auth_throttle_new();
    cr_assert_not_null(throttle);
}

static void teardown(void)
{
    auth_throttle_free(throttle);
}

TestSuite(throttle, .init = setup, .fini = teardown);

static bool allows(const char *key, time_t now, int *wait)
{
    int ignored;
    return auth_throttle_allows(throttle, key, now, wait != NULL ? wait : &ignored);
}

Test(throttle, three_failures_are_free_then_it_backs_off_exponentially)
{
    const time_t t0 = 1000000;
    for (int i = 0; i < 3; i++) {
        auth_throttle_failed(throttle, "user:alice", t0);
        cr_expect(allows("user:alice", t0, NULL), "failure %d should still be free", i + 1);
    }
    int expected[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        auth_throttle_failed(throttle, "user:alice", t0);
        int wait = 0;
        cr_expect_not(allows("user:alice", t0, &wait));
        cr_expect_eq(wait, expected[i] + 1, "at least %d whole seconds", expected[i]);
        cr_expect_not(allows("user:alice", t0 + expected[i], NULL));
        cr_expect(allows("user:alice", t0 + expected[i] + 1, NULL), "blocked past its back-off");
    }
    cr_expect(allows("user:bob", t0, NULL), "other keys are not affected");
}

Test(throttle, back_off_is_capped_and_success_clears_it)
{
    const time_t t0 = 2000000;
    for (int i = 0; i < 40; i++)
        auth_throttle_failed(throttle, "addr:192.0.2.1", t0);
    int wait = 0;
    cr_expect_not(allows("addr:192.0.2.1", t0, &wait));
    cr_expect_eq(wait, 301);
    auth_throttle_succeeded(throttle, "addr:192.0.2.1");
    cr_expect(allows("addr:192.0.2.1", t0, NULL));
    auth_throttle_failed(throttle, "addr:192.0.2.1", t0);
    cr_expect(allows("addr:192.0.2.1", t0, NULL), "counting starts again after a success");
}

Test(throttle, a_flood_of_keys_neither_grows_memory_nor_unblocks_by_accident)
{
    const time_t t0 = 3000000;
    for (int i = 0; i < 5; i++)
        auth_throttle_failed(throttle, "user:target", t0);
    cr_expect_not(allows("user:target", t0, NULL));
    /* Many other keys fail once each: they may take slots (the table is fixed), but a key
     * never inherits another's back-off. */
    char key[64];
    int blocked_strangers = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "user:stranger%d", i);
        auth_throttle_failed(throttle, key, t0);
        if (!allows(key, t0, NULL))
            blocked_strangers++;
    }
    cr_expect_eq(blocked_strangers, 0);
}
