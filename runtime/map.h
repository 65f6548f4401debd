/* A small string-keyed hash map (open addressing), private to the runtime. */
#ifndef VMM_RT_MAP_H
#define VMM_RT_MAP_H

#include <stddef.h>

typedef struct rt_map_s rt_map_t;

rt_map_t *rt_map_new(void);
/* Frees the map and its key copies; values stay the caller's. */
void rt_map_destroy(rt_map_t **map);
/* Adds or replaces; the key is copied. Returns 0 or -ENOMEM. */
int rt_map_put(rt_map_t *map, const char *key, void *value);
void *rt_map_get(const rt_map_t *map, const char *key);
/* Returns the removed value, or NULL. */
void *rt_map_remove(rt_map_t *map, const char *key);
size_t rt_map_size(const rt_map_t *map);
/* Calls fn for each entry; fn must not change the map. */
void rt_map_each(const rt_map_t *map, void (*fn)(void *arg, const char *key, void *value),
                 void *arg);

#endif
