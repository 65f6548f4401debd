/*
 * A device environment for model tests: it records every effect a model
 * has (line levels and their rising edges, MSIs, power requests, log
 * lines, guest calls, console output and what input it asked for,
 * deferred accesses and their completions), serves guest RAM from a
 * buffer, and keeps a clock and a wall clock that only fake_env_advance()
 * (or the test) moves, firing the model's timers on the way. No runtime,
 * no sockets: a test builds the model on it and calls it, as Firecracker
 * tests its i8042 by bus_write.
 */
#ifndef VMM_FAKE_ENV_H
#define VMM_FAKE_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device.h"

#define FAKE_ENV_LINES 24
#define FAKE_ENV_TIMERS 16
#define FAKE_ENV_MAX 64 /* MSIs, guest calls, tokens kept */

typedef struct {
    uint64_t address;
    uint32_t data;
} fake_env_msi_t;

typedef struct {
    uint32_t vp, kind;
    uint32_t args[8];
    size_t n_args;
} fake_env_call_t;

/* A deferred access: made by device_defer(), completed at most once. */
struct device_deferred_s {
    bool completed;
    int status;
    uint64_t value;
};

/* What a model asked of the SynIC. */
typedef enum {
    FAKE_SYNIC_CONNECT,
    FAKE_SYNIC_DISCONNECT,
    FAKE_SYNIC_POST,
    FAKE_SYNIC_SIGNAL,
    FAKE_SYNIC_ASSERT,
} fake_synic_op_t;

typedef struct {
    fake_synic_op_t op;
    bool message;           /* CONNECT, DISCONNECT */
    uint32_t connection_id; /* CONNECT, DISCONNECT */
    uint32_t vp, sint;      /* POST, SIGNAL, ASSERT */
    uint32_t type, flag;    /* POST's type, SIGNAL's flag */
    uint8_t payload[240];
    size_t len;
} fake_synic_call_t;

typedef struct {
    device_env_t env;
    device_t *dev; /* the model on it, for its timers (fake_env_advance) */

    bool irq[FAKE_ENV_LINES];
    unsigned irq_rises[FAKE_ENV_LINES];
    fake_env_msi_t msis[FAKE_ENV_MAX];
    size_t n_msis;
    unsigned power_requests;
    int power_action, power_exit_code;
    unsigned logs;
    char last_log[400];
    fake_env_call_t calls[FAKE_ENV_MAX];
    size_t n_calls;

    uint8_t *ram; /* guest RAM from gpa 0, ram_size bytes */
    size_t ram_size;

    uint64_t now_ns;
    /* The host's wall clock: FAKE_ENV_WALL_NS at start, moved with now_ns
     * by fake_env_advance(); a test may set it (a date it wants, a host
     * clock that steps). wall_reads counts the model's readings. */
    uint64_t wall_ns;
    unsigned wall_reads;
    /* Bytes the model took as entropy: 0, 1, 2, ... counting on. */
    uint64_t entropy_taken;
    /* The backing store (device_storage_open() and the rest): disk_size
     * bytes at disk, the test's to allocate (NULL: open fails -ENOENT).
     * Writes after the last flush are counted in unflushed; storage_error,
     * when not 0, is what the next read, write or flush returns. */
    uint8_t *disk;
    size_t disk_size;
    char disk_path[256];
    bool disk_open, disk_readonly;
    unsigned disk_reads, disk_writes, disk_flushes, unflushed;
    int storage_error;
    bool timer_armed[FAKE_ENV_TIMERS];
    uint64_t timer_deadline[FAKE_ENV_TIMERS];

    struct device_deferred_s tokens[FAKE_ENV_MAX];
    size_t n_tokens;
    unsigned bad_completions; /* of a token completed twice */

    uint8_t console_out[8192];
    size_t console_len;
    size_t console_room; /* what console_write takes; FAKE_ENV_ROOM at start */
    size_t console_want; /* the input room the model asked for last */

    /* SynIC calls, in order; each returns synic_result (0 at start). */
    fake_synic_call_t synic[FAKE_ENV_MAX];
    size_t n_synic;
    int synic_result;
} fake_env_t;

#define FAKE_ENV_ROOM 65536
/* 2024-01-01 00:00:00 UTC, a Monday. */
#define FAKE_ENV_WALL_NS (1704067200ull * 1000000000ull)

/* An environment with ram_size bytes of guest RAM (zeroed). */
fake_env_t *fake_env_new(size_t ram_size);
/* Destroys the model on it too, when there is one. */
void fake_env_destroy(fake_env_t **env);

/* Moves the clock (and the wall clock with it) by ns, firing each due
 * timer at its deadline, in order. */
void fake_env_advance(fake_env_t *env, uint64_t ns);

/* An access to the model as a VP would make it (vp 0): the model's return
 * value; a read's result in *value. */
int fake_env_read(fake_env_t *env, bool mmio, uint64_t address, uint32_t size,
                  uint64_t *value);
int fake_env_write(fake_env_t *env, bool mmio, uint64_t address, uint32_t size,
                   uint64_t value);

/* The value of `name` in the model's introspection tree, parsed as a
 * number (decimal or 0x hex), or -1 when absent. */
long long fake_env_inspect(fake_env_t *env, const char *name);

/* A save, then a restore of those bytes into other (a model of the same
 * kind): restore's result. */
int fake_env_save_restore(device_t *from, device_t *to);

#endif
