/*
 * json_read: a recursive-descent JSON parser; see json_read.h. Strict
 * enough to catch what a writer could get wrong (a missing comma, a
 * trailing comma, an unquoted key, junk after the document).
 */
#include "json_read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct parser {
    struct json_doc *doc;
    const char *p;
    const char *end;
    int depth;
};

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' ||
                               *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int new_node(struct parser *ps, enum json_type t)
{
    struct json_doc *d = ps->doc;

    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        struct json_node *nn = realloc(d->nodes, (size_t)cap * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        d->nodes = nn;
        d->cap = cap;
    }
    d->nodes[d->n] =
        (struct json_node){.type = t, .first_child = -1, .next = -1};
    return d->n++;
}

static bool lit(struct parser *ps, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
        return false;
    ps->p += n;
    return true;
}

/* A string's raw text; ps->p is at the opening quote. */
static int string(struct parser *ps, const char **s, size_t *len)
{
    const char *q = ++ps->p;

    while (ps->p < ps->end && *ps->p != '"') {
        if ((unsigned char)*ps->p < 0x20)
            return -EINVAL;
        if (*ps->p == '\\' && ++ps->p == ps->end)
            return -EINVAL;
        ps->p++;
    }
    if (ps->p == ps->end)
        return -EINVAL;
    *s = q;
    *len = (size_t)(ps->p - q);
    ps->p++;
    return 0;
}

static int value(struct parser *ps);

/* Members or elements up to `close`; links them under node `parent`. */
static int children(struct parser *ps, int parent, char close, bool keyed)
{
    int prev = -1;

    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        skip_ws(ps);
        if (keyed) {
            if (ps->p == ps->end || *ps->p != '"' ||
                string(ps, &key, &klen) < 0)
                return -EINVAL;
            skip_ws(ps);
            if (ps->p == ps->end || *ps->p++ != ':')
                return -EINVAL;
        }
        int child = value(ps);
        if (child < 0)
            return child;
        ps->doc->nodes[child].key = key;
        ps->doc->nodes[child].key_len = klen;
        if (prev < 0)
            ps->doc->nodes[parent].first_child = child;
        else
            ps->doc->nodes[prev].next = child;
        prev = child;
        skip_ws(ps);
        if (ps->p == ps->end)
            return -EINVAL;
        if (*ps->p == close) {
            ps->p++;
            return 0;
        }
        if (*ps->p++ != ',')
            return -EINVAL;
    }
}

static int number(struct parser *ps)
{
    char *end;
    double x = strtod(ps->p, &end);

    if (end == ps->p || end > ps->end)
        return -EINVAL;
    ps->p = end;
    int i = new_node(ps, JSON_NUM);
    if (i >= 0)
        ps->doc->nodes[i].num = x;
    return i;
}

static int value(struct parser *ps)
{
    int i, rc;

    skip_ws(ps);
    if (ps->p == ps->end || ++ps->depth > MAX_DEPTH)
        return -EINVAL;
    switch (*ps->p) {
    case '{':
    case '[':
        i = new_node(ps, *ps->p == '{' ? JSON_OBJ : JSON_ARR);
        if (i < 0)
            return i;
        rc = children(ps, i, *ps->p == '{' ? '}' : ']', *ps->p == '{');
        if (rc < 0)
            return rc;
        break;
    case '"':
        i = new_node(ps, JSON_STR);
        if (i < 0)
            return i;
        rc = string(ps, &ps->doc->nodes[i].str, &ps->doc->nodes[i].str_len);
        if (rc < 0)
            return rc;
        break;
    default:
        if (lit(ps, "null")) {
            i = new_node(ps, JSON_NULL);
        } else if (lit(ps, "true")) {
            i = new_node(ps, JSON_BOOL);
            if (i >= 0)
                ps->doc->nodes[i].num = 1;
        } else if (lit(ps, "false")) {
            i = new_node(ps, JSON_BOOL);
        } else if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            i = number(ps);
        } else {
            return -EINVAL;
        }
    }
    ps->depth--;
    return i;
}

int json_parse(struct json_doc *doc, const char *text, size_t len)
{
    struct parser ps = {.doc = doc, .p = text, .end = text + len};

    memset(doc, 0, sizeof(*doc));
    int root = value(&ps);
    if (root < 0)
        return root;
    skip_ws(&ps);
    return ps.p == ps.end ? 0 : -EINVAL;
}

void json_free(struct json_doc *doc)
{
    free(doc->nodes);
    memset(doc, 0, sizeof(*doc));
}

static const struct json_node *child(const struct json_doc *doc,
                                     const struct json_node *node,
                                     const char *name, size_t len)
{
    int idx = 0;
    bool by_index = node->type == JSON_ARR;

    if (by_index)
        idx = atoi(name);
    for (int c = node->first_child, k = 0; c >= 0;
         c = doc->nodes[c].next, k++) {
        const struct json_node *n = &doc->nodes[c];
        if (by_index ? k == idx
                     : n->key_len == len && memcmp(n->key, name, len) == 0)
            return n;
    }
    return NULL;
}

const struct json_node *json_get(const struct json_doc *doc, const char *path)
{
    if (doc->n == 0)
        return NULL;
    const struct json_node *node = &doc->nodes[0];
    while (node && *path) {
        /* Keys may hold dots ("99.9"), so try the longest match first. */
        const struct json_node *found = NULL;
        size_t plen =
            node->type == JSON_ARR ? strcspn(path, ".") : strlen(path);
        for (size_t n = plen; n > 0 && !found; n--) {
            if (n < plen && path[n] != '.')
                continue;
            found = child(doc, node, path, n);
            if (found) {
                path += n;
                path += *path == '.';
                break;
            }
        }
        node = found;
    }
    return node;
}

int json_len(const struct json_doc *doc, const struct json_node *node)
{
    int n = 0;

    for (int c = node->first_child; c >= 0; c = doc->nodes[c].next)
        n++;
    return n;
}
