/*
 * An intrusive doubly linked list: the node lives inside the element, so
 * linking and unlinking never allocate and take O(1). A node that is not
 * on any list points to itself, which makes "is it linked?" a cheap test
 * and unlinking twice harmless.
 */
#ifndef RLMQ_LIST_H
#define RLMQ_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
    struct list *prev;
    struct list *next;
};

#define LIST_ENTRY(node, type, member)                                         \
    ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline void list_init(struct list *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool list_empty(const struct list *l)
{
    return l->next == l;
}

static inline bool list_linked(const struct list *n)
{
    return n->next != n;
}

static inline void list_push_back(struct list *head, struct list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_unlink(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

static inline struct list *list_pop_front(struct list *head)
{
    if (list_empty(head))
        return NULL;
    struct list *n = head->next;
    list_unlink(n);
    return n;
}

/* Moves every node of src, in order, to the back of head; src ends empty. */
static inline void list_splice_back(struct list *head, struct list *src)
{
    if (list_empty(src))
        return;
    src->next->prev = head->prev;
    head->prev->next = src->next;
    src->prev->next = head;
    head->prev = src->prev;
    list_init(src);
}

#endif
