#include "runtime/map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key; /* NULL: empty; s_tombstone: removed */
    void *value;
    uint32_t hash;
} s_slot_t;

struct rt_map_s {
    s_slot_t *slots;
    size_t cap;  /* a power of two */
    size_t used; /* live entries plus tombstones */
    size_t live;
};

static char s_tombstone_key;
#define s_tombstone (&s_tombstone_key)

static uint32_t s_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h;
}

rt_map_t *rt_map_new(void)
{
    rt_map_t *map = calloc(1, sizeof *map);
    if (!map)
        return NULL;
    map->cap = 16;
    map->slots = calloc(map->cap, sizeof *map->slots);
    if (!map->slots) {
        free(map);
        return NULL;
    }
    return map;
}

void rt_map_destroy(rt_map_t **map)
{
    if (!map || !*map)
        return;
    for (size_t i = 0; i < (*map)->cap; i++)
        if ((*map)->slots[i].key && (*map)->slots[i].key != s_tombstone)
            free((*map)->slots[i].key);
    free((*map)->slots);
    free(*map);
    *map = NULL;
}

/* The slot holding key, or NULL. */
static s_slot_t *s_find(const rt_map_t *map, const char *key, uint32_t hash)
{
    for (size_t i = hash & (map->cap - 1);; i = (i + 1) & (map->cap - 1)) {
        s_slot_t *slot = &map->slots[i];
        if (!slot->key)
            return NULL;
        if (slot->key != s_tombstone && slot->hash == hash && strcmp(slot->key, key) == 0)
            return slot;
    }
}

static int s_grow(rt_map_t *map)
{
    size_t cap = map->live * 4 > map->cap ? map->cap * 2 : map->cap;
    s_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < map->cap; i++) {
        s_slot_t *old = &map->slots[i];
        if (!old->key || old->key == s_tombstone)
            continue;
        size_t j = old->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *old;
    }
    free(map->slots);
    map->slots = slots;
    map->cap = cap;
    map->used = map->live;
    return 0;
}

int rt_map_put(rt_map_t *map, const char *key, void *value)
{
    uint32_t hash = s_hash(key);
    s_slot_t *slot = s_find(map, key, hash);
    if (slot) {
        slot->value = value;
        return 0;
    }
    if ((map->used + 1) * 4 > map->cap * 3) {
        int rc = s_grow(map);
        if (rc)
            return rc;
    }
    size_t i = hash & (map->cap - 1);
    while (map->slots[i].key && map->slots[i].key != s_tombstone)
        i = (i + 1) & (map->cap - 1);
    char *copy = strdup(key);
    if (!copy)
        return -ENOMEM;
    if (!map->slots[i].key)
        map->used++;
    map->slots[i] = (s_slot_t){.key = copy, .value = value, .hash = hash};
    map->live++;
    return 0;
}

void *rt_map_get(const rt_map_t *map, const char *key)
{
    s_slot_t *slot = s_find(map, key, s_hash(key));
    return slot ? slot->value : NULL;
}

void *rt_map_remove(rt_map_t *map, const char *key)
{
    s_slot_t *slot = s_find(map, key, s_hash(key));
    if (!slot)
        return NULL;
    void *value = slot->value;
    free(slot->key);
    slot->key = s_tombstone;
    slot->value = NULL;
    map->live--;
    return value;
}

size_t rt_map_size(const rt_map_t *map)
{
    return map->live;
}

void rt_map_each(const rt_map_t *map, void (*fn)(void *arg, const char *key, void *value),
                 void *arg)
{
    for (size_t i = 0; i < map->cap; i++)
        if (map->slots[i].key && map->slots[i].key != s_tombstone)
            fn(arg, map->slots[i].key, map->slots[i].value);
}
