/*
 * Unit tests of the AUTH token: loading it from its file (first line,
 * line ending dropped, bad content refused without echoing it) and the
 * comparison (equal only for the exact token, whatever the lengths).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth.h"

static char path[] = "/tmp/rlmq-auth-XXXXXX";

static void write_file(const char *content, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
}

static int setup(void **state)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static void test_load_first_line(void **state)
{
    struct auth_token t;
    char err[512];

    write_file("s3cret\nsecond line\n", 19);
    assert_int_equal(auth_load(&t, path, err, sizeof(err)), 0);
    assert_int_equal(t.len, 6);
    assert_memory_equal(t.bytes, "s3cret", 6);
    assert_int_equal(t.bytes[6], 0);

    write_file("crlf-token\r\n", 12);
    assert_int_equal(auth_load(&t, path, err, sizeof(err)), 0);
    assert_int_equal(t.len, 10);

    write_file("no-newline", 10);
    assert_int_equal(auth_load(&t, path, err, sizeof(err)), 0);
    assert_int_equal(t.len, 10);
}

static void test_load_refuses_bad_content(void **state)
{
    static const char *const bad[] = {"", "\n", "two words\n", "tab\there\n",
                                      "ctl\x01\n"};
    struct auth_token t;
    char err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(bad[i], strlen(bad[i]));
        assert_int_equal(auth_load(&t, path, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, path));
        assert_int_equal(t.len, 0);
    }
    /* The longest token is accepted, one byte more is not. */
    char big[AUTH_TOKEN_MAX + 2];
    memset(big, 'k', sizeof(big));
    big[AUTH_TOKEN_MAX] = '\n';
    write_file(big, AUTH_TOKEN_MAX + 1);
    assert_int_equal(auth_load(&t, path, err, sizeof(err)), 0);
    assert_int_equal(t.len, AUTH_TOKEN_MAX);
    big[AUTH_TOKEN_MAX] = 'k';
    big[AUTH_TOKEN_MAX + 1] = '\n';
    write_file(big, AUTH_TOKEN_MAX + 2);
    assert_int_equal(auth_load(&t, path, err, sizeof(err)), -EINVAL);
    /* The error never quotes the file's content. */
    assert_null(strstr(err, "kkkk"));

    assert_int_equal(auth_load(&t, "/nonexistent/token", err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/token"));
}

static void test_check(void **state)
{
    struct auth_token t;
    char err[512];

    write_file("abc123\n", 7);
    assert_int_equal(auth_load(&t, path, err, sizeof(err)), 0);
    assert_true(auth_check(&t, "abc123", 6));
    assert_false(auth_check(&t, "abc12", 5));
    assert_false(auth_check(&t, "abc1234", 7));
    assert_false(auth_check(&t, "abc124", 6));
    assert_false(auth_check(&t, "Abc123", 6));
    assert_false(auth_check(&t, "", 0));
    /* A guess that is the token followed by zero bytes is still wrong. */
    assert_false(auth_check(&t, "abc123\0", 7));

    char big[AUTH_TOKEN_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_false(auth_check(&t, big, sizeof(big)));
    /* Every single-byte change of the token is refused. */
    char guess[6];
    for (size_t i = 0; i < 6; i++) {
        for (int b = 0; b < 256; b++) {
            memcpy(guess, "abc123", 6);
            if ((unsigned char)guess[i] == b)
                continue;
            guess[i] = (char)b;
            assert_false(auth_check(&t, guess, 6));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_first_line),
        cmocka_unit_test(test_load_refuses_bad_content),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
