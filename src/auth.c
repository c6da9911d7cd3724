/*
 * AUTH tokens: see auth.h.
 *
 * The comparison folds every byte difference into one accumulator over
 * the full AUTH_TOKEN_MAX bytes instead of stopping at the first
 * difference, which is what a memcmp() may do and what makes a byte-wise
 * timing attack possible.
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int auth_load(struct auth_token *t, const char *path, char *err, size_t errlen)
{
    char line[AUTH_TOKEN_MAX + 3];
    FILE *f = fopen(path, "r");

    memset(t, 0, sizeof(*t));
    if (!f) {
        int rc = -errno;
        snprintf(err, errlen, "cannot read the token file %s: %s", path,
                 strerror(errno));
        return rc;
    }
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t n = got ? strcspn(line, "\r\n") : 0;
    bool ok = n >= 1 && n <= AUTH_TOKEN_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = line[i] > ' ' && line[i] < 0x7f;
    if (!ok) {
        snprintf(err, errlen,
                 "the token file %s must start with a line of 1 to %d "
                 "printable characters without spaces",
                 path, AUTH_TOKEN_MAX);
        memset(line, 0, sizeof(line));
        return -EINVAL;
    }
    memcpy(t->bytes, line, n);
    t->len = n;
    memset(line, 0, sizeof(line));
    return 0;
}

bool auth_check(const struct auth_token *t, const char *guess, size_t len)
{
    if (len == 0 || len > AUTH_TOKEN_MAX)
        return false;
    unsigned diff = (unsigned)(len ^ t->len);
    for (size_t i = 0; i < AUTH_TOKEN_MAX; i++) {
        unsigned char g = i < len ? (unsigned char)guess[i] : 0;
        diff |= g ^ (unsigned char)t->bytes[i];
    }
    return diff == 0;
}
