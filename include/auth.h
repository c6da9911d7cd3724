/*
 * The shared-secret token clients send with AUTH: loading it from its file
 * and comparing a guess with it.
 *
 * The comparison takes the same time whatever the guess and the token hold
 * in common, so a client cannot find the token a byte at a time by timing
 * replies. Nothing here logs the token or a guess.
 */
#ifndef RLMQ_AUTH_H
#define RLMQ_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MAX 256

struct auth_token {
    size_t len;                 /* 0: no token, AUTH is not required */
    char bytes[AUTH_TOKEN_MAX]; /* zero past len */
};

/*
 * Reads the token from the file at path: its first line, without the line
 * ending. The token is 1 to AUTH_TOKEN_MAX bytes of printable ASCII with
 * no spaces (it is one word of a request). 0, or a negative errno with a
 * one-line reason in err that names the file but not its content.
 */
int auth_load(struct auth_token *t, const char *path, char *err, size_t errlen);

/* True when guess[0..len) is the token. Time depends only on
 * AUTH_TOKEN_MAX, never on where the two differ. */
bool auth_check(const struct auth_token *t, const char *guess, size_t len);

#endif
