/*
 * json_read: a small JSON reader for the bench's tests, which read back
 * the files the bench writes. It is not part of ratelimmq-bench itself.
 *
 * The whole document is parsed into a tree of nodes held in one array;
 * json_get() walks it by a dotted path ("latency_ms.corrected.max",
 * "series.0.p99"; array elements by index). Strings are kept as they were
 * written, without unescaping, which is all the tests need.
 */
#ifndef RLMQ_BENCH_JSON_READ_H
#define RLMQ_BENCH_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json_node {
    enum json_type type;
    const char *key; /* in an object: the member's name */
    size_t key_len;
    const char *str; /* JSON_STR: the raw text between the quotes */
    size_t str_len;
    double num;      /* JSON_NUM; JSON_BOOL: 0 or 1 */
    int first_child; /* -1 when none */
    int next;        /* next sibling, -1 when last */
};

struct json_doc {
    struct json_node *nodes;
    int n, cap;
};

/* Parses text[0..len). Returns 0 or -EINVAL (not JSON), -ENOMEM. */
int json_parse(struct json_doc *doc, const char *text, size_t len);
void json_free(struct json_doc *doc);

/* The node at a dotted path from the root, or NULL. */
const struct json_node *json_get(const struct json_doc *doc, const char *path);

/* The number of children of an array or object node. */
int json_len(const struct json_doc *doc, const struct json_node *node);

#endif
