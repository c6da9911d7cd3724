/*
 * reply: the reply classifier; see reply.h. The common replies (PONG, OK,
 * MSG) are recognised by their first bytes before anything else, because
 * this runs once per reply in the bench's hot loop.
 */
#include "reply.h"

#include <errno.h>
#include <string.h>

bool reply_parse_u64(const char *s, size_t len, uint64_t *val)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *val = v;
    return true;
}

static bool is_word(const char *line, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len == n && memcmp(line, w, n) == 0;
}

static bool has_prefix(const char *line, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && memcmp(line, p, n) == 0;
}

static int parse_msg(const char *line, size_t len, struct reply *r)
{
    /* MSG <id> <attempt> <payload>; the payload may hold spaces. */
    const char *p = line + 4;
    const char *end = line + len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || !reply_parse_u64(p, (size_t)(sp - p), &r->id))
        return -EINVAL;
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || !reply_parse_u64(p, (size_t)(sp - p), &r->attempt))
        return -EINVAL;
    if (sp + 1 >= end)
        return -EINVAL;
    r->payload = sp + 1;
    r->payload_len = (size_t)(end - (sp + 1));
    r->has_id = true;
    r->kind = REPLY_MSG;
    return 0;
}

int reply_parse(const char *line, size_t len, struct reply *r)
{
    r->kind = REPLY_BAD;
    r->has_id = false;
    r->id = 0;
    r->attempt = 0;
    r->payload = NULL;
    r->payload_len = 0;

    if (is_word(line, len, "PONG") || is_word(line, len, "+PONG")) {
        r->kind = REPLY_PONG;
        return 0;
    }
    if (is_word(line, len, "OK")) {
        r->kind = REPLY_OK;
        return 0;
    }
    if (has_prefix(line, len, "OK ")) {
        if (!reply_parse_u64(line + 3, len - 3, &r->id))
            return -EINVAL;
        r->has_id = true;
        r->kind = REPLY_OK;
        return 0;
    }
    if (has_prefix(line, len, "MSG "))
        return parse_msg(line, len, r);
    if (is_word(line, len, "EMPTY")) {
        r->kind = REPLY_EMPTY;
        return 0;
    }
    if (has_prefix(line, len, "ERR rate limited")) {
        r->kind = REPLY_RATE_LIMITED;
        return 0;
    }
    if (has_prefix(line, len, "ERR ") && len > 4) {
        r->kind = REPLY_ERR;
        return 0;
    }
    if (is_word(line, len, "STATS") || has_prefix(line, len, "STATS ")) {
        r->kind = REPLY_STATS;
        return 0;
    }
    if (is_word(line, len, "BYE")) {
        r->kind = REPLY_BYE;
        return 0;
    }
    return -EINVAL;
}

bool reply_stats_get(const char *line, size_t len, const char *key,
                     uint64_t *val)
{
    size_t klen = strlen(key);
    const char *end = line + len;
    const char *p = line;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *w = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        size_t wlen = (size_t)(p - w);
        if (wlen > klen + 1 && memcmp(w, key, klen) == 0 && w[klen] == '=')
            return reply_parse_u64(w + klen + 1, wlen - klen - 1, val);
    }
    return false;
}
