/*
 * Guest memory from a device host: a forked child hosts two device models
 * that register over ipc:// with the VM's partition and, on command, read
 * and write guest RAM through their environment: "mem" through the mapped
 * memory file, "memmsg" by message (guest_by_message). A command is a
 * few MMIO writes (where, how much, what), as a guest would program a DMA
 * engine; a read leaves a hash of what it read, a write a pattern the test
 * can make too. The child is forked before the VM exists (a process with
 * threads forks badly), so it cannot have inherited the memory file: it
 * opens it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/devices/device_actor.h"
#include "guest/demo_embedded.h"
#include "runtime/testing/echo.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

#define S_MEM (16u << 20)
#define S_TIMEOUT_MS 10000
#define S_MAX_IO 65536u /* the most one guest memory message carries */
#define S_OWNER "devhost"

static char s_dir[64], s_partition[128], s_endpoints[2][128];

/* ---- The device in the device host ---------------------------------------- */

/* Its registers, 8 bytes each from its MMIO base. */
enum {
    R_GPA = 0x00,   /* W */
    R_LEN = 0x08,   /* W */
    R_SEED = 0x10,  /* W: what a write command writes (s_fill()) */
    R_CMD = 0x18,   /* W: C_READ or C_WRITE */
    R_STATUS = 0x20, /* R: the last command's result, 0 or a negative errno */
    R_HASH = 0x28,  /* R: the hash of what the last read command read */
};
enum { C_READ = 1, C_WRITE = 2 };

typedef struct {
    const char *name;
    uint64_t base;
    bool by_message;
} s_mem_config_t;

typedef struct {
    device_t dev;
    uint64_t base, gpa, len, seed, hash;
    int64_t status;
    uint64_t reads, read_ns; /* served reads and the time the environment took */
} s_mem_t;

static void s_fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

/* FNV-1a. */
static uint64_t s_hash(const uint8_t *buf, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ buf[i]) * 1099511628211ull;
    return h;
}

static void s_mem_command(s_mem_t *m, uint64_t cmd)
{
    uint8_t *buf = malloc(m->len ? m->len : 1);
    if (!buf) {
        m->status = -ENOMEM;
        return;
    }
    if (cmd == C_WRITE) {
        s_fill(buf, m->len, (unsigned)m->seed);
        m->status = device_guest_write(&m->dev, m->gpa, buf, m->len);
    } else {
        uint64_t start = device_now_ns(&m->dev);
        m->status = device_guest_read(&m->dev, m->gpa, buf, m->len);
        if (!m->status) {
            m->read_ns += device_now_ns(&m->dev) - start;
            m->reads++;
            m->hash = s_hash(buf, m->len);
        }
    }
    free(buf);
}

static int s_mem_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    s_mem_t *m = (s_mem_t *)dev;
    uint64_t reg = io->address - m->base;
    if (reg == R_STATUS)
        *value = (uint64_t)m->status;
    else if (reg == R_HASH)
        *value = m->hash;
    else
        return -EINVAL;
    return 0;
}

static int s_mem_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    s_mem_t *m = (s_mem_t *)dev;
    switch (io->address - m->base) {
    case R_GPA:
        m->gpa = value;
        return 0;
    case R_LEN:
        m->len = value <= 1u << 20 ? value : 0;
        return value <= 1u << 20 ? 0 : -EINVAL;
    case R_SEED:
        m->seed = value;
        return 0;
    case R_CMD:
        s_mem_command(m, value);
        return 0;
    default:
        return -EINVAL;
    }
}

static void s_mem_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    s_mem_t *m = (s_mem_t *)dev;
    rt_inspect_add(node, "guest_reads", "%llu", (unsigned long long)m->reads);
    rt_inspect_add(node, "guest_read_ns", "%llu", (unsigned long long)m->read_ns);
}

static void s_mem_destroy(device_t *dev)
{
    free(dev);
}

static const device_ops_t s_mem_ops = {
    .kind = "guest-memory-test",
    .read = s_mem_read,
    .write = s_mem_write,
    .reset = device_reset_none,
    .inspect = s_mem_inspect,
    .save = device_save_none,
    .restore = device_restore_none,
    .destroy = s_mem_destroy,
};

static device_t *s_mem_new(const void *config, device_env_t *env)
{
    const s_mem_config_t *cfg = config;
    s_mem_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base = cfg->base;
    m->dev = (device_t){.ops = &s_mem_ops, .env = env};
    m->dev.spec = (device_spec_t){.name = cfg->name, .n_ranges = 1,
                                  .ranges = {{.mmio = true, .start = cfg->base, .len = 0x30}}};
    return &m->dev;
}

static const char *const s_actors[] = {"vm0/dev/mem", "vm0/dev/memmsg"};
static const s_mem_config_t s_configs[] = {{"mem", 0xe0000000, false},
                                           {"memmsg", 0xe0001000, true}};

/* The device host: waits for the go, starts both devices, then lives until
 * killed (or until its parent dies). */
static void s_host_main(int go)
{
    char byte;
    if (read(go, &byte, 1) != 1)
        _exit(2);
    rt_t *rt = rt_new(NULL);
    rt_directory_set(rt, VM_PARTITION, s_partition);
    rt_executor_t *ex = rt_executor_new(rt, "devhost");
    rt_client_t *owner = rt_client_new(rt, S_OWNER);
    for (size_t i = 0; i < 2; i++) {
        device_actor_config_t cfg = {.new_model = s_mem_new, .model_config = &s_configs[i],
                                     .partition = VM_PARTITION, .owner = S_OWNER,
                                     .guest_by_message = s_configs[i].by_message};
        rt_actor_spec_t spec = {.name = s_actors[i], .ops = &device_actor_ops, .arg = &cfg,
                                .endpoint = s_endpoints[i]};
        if (rt_actor_start(ex, &spec))
            _exit(3);
    }
    char why[256];
    if (device_actor_wait_registered(owner, 2, S_TIMEOUT_MS, why, sizeof why))
        _exit(4);
    for (;;)
        pause();
}

/* ---- The VM side ------------------------------------------------------------ */

typedef struct {
    vm_t *vm;
    pid_t host;
} s_fixture_t;

/* Forks the device host, builds the VM and waits for both devices. */
static void s_open(s_fixture_t *f)
{
    vm_harness_need_kvm();
    strcpy(s_dir, "/tmp/vmm-devmem-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_partition, sizeof s_partition, "ipc://%s/partition", s_dir);
    for (size_t i = 0; i < 2; i++)
        snprintf(s_endpoints[i], sizeof s_endpoints[i], "ipc://%s/%s", s_dir,
                 s_configs[i].name);

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t parent = getpid();
    f->host = fork();
    cr_assert_geq(f->host, 0);
    if (f->host == 0) {
        close(fds[1]);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(1);
        s_host_main(fds[0]);
    }
    close(fds[0]);

    vm_config_t cfg = {.elf = guest_demo_elf, .elf_len = guest_demo_elf_len,
                       .mem_size = S_MEM, .serial_out = -1, .serial_in = -1,
                       .partition_endpoint = s_partition};
    char err[256] = "";
    f->vm = vm_new(&cfg, err, sizeof err);
    cr_assert_not_null(f->vm, "%s", err);
    cr_assert_eq(write(fds[1], "g", 1), 1);
    close(fds[1]);
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(vm_wait_device(f->vm, s_configs[i].name, S_TIMEOUT_MS), 0,
                     "%s did not register", s_configs[i].name);
}

static void s_close(s_fixture_t *f)
{
    kill(f->host, SIGKILL);
    waitpid(f->host, NULL, 0);
    vm_destroy(&f->vm);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_expect_eq(system(cmd), 0);
}

static long long s_partition_number(s_fixture_t *f, const char *key)
{
    return echo_inspect_number(vm_client(f->vm), VM_PARTITION, key);
}

/* A guest memory request from `from` to `to`: the partition, or a device
 * as a command. Returns the call's result; the reply is left in *reply. */
static int s_memory_call(rt_actor_t *from, const char *to, uint64_t gpa, const void *data,
                         size_t len, rt_msg_t *reply)
{
    Vmm__Devices__ReadGuestMemory r = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    Vmm__Devices__WriteGuestMemory w = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    if (data) {
        w.gpa = gpa;
        w.data = (ProtobufCBinaryData){len, (uint8_t *)data};
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
        req.write_guest_memory = &w;
    } else {
        r.gpa = gpa;
        r.length = (uint32_t)len;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
        req.read_guest_memory = &r;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    return rt_call(from, to, &env, reply, S_TIMEOUT_MS);
}

/* Reads len bytes at gpa through `to` into buf; returns 0 or the Error's
 * code, its text in why. */
static int s_read(rt_actor_t *from, const char *to, uint64_t gpa, void *buf, size_t len,
                  char *why, size_t whylen)
{
    rt_msg_t reply;
    cr_assert_eq(s_memory_call(from, to, gpa, NULL, len, &reply), 0, "%s: no reply", to);
    int rc = 0;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rc = reply.env->error->code;
        snprintf(why, whylen, "%s", reply.env->error->text);
    } else {
        const ProtobufCBinaryData *d = &reply.env->device_reply->read_guest_memory->data;
        cr_assert_eq(d->len, len, "%s", to);
        memcpy(buf, d->data, len);
    }
    rt_msg_release(&reply);
    return rc;
}

/* Writes len bytes of data at gpa through `to`; returns 0 or the Error's
 * code, its text in why. */
static int s_write(rt_actor_t *from, const char *to, uint64_t gpa, const void *data, size_t len,
                   char *why, size_t whylen)
{
    rt_msg_t reply;
    cr_assert_eq(s_memory_call(from, to, gpa, data, len, &reply), 0, "%s: no reply", to);
    int rc = 0;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rc = reply.env->error->code;
        snprintf(why, whylen, "%s", reply.env->error->text);
    } else {
        cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK, "%s", to);
    }
    rt_msg_release(&reply);
    return rc;
}

/* The VM's own side of guest RAM: the partition, in pieces it takes. */
static void s_vm_io(s_fixture_t *f, uint64_t gpa, uint8_t *to, const uint8_t *from, size_t len)
{
    char why[256] = "";
    for (size_t done = 0; done < len; done += S_MAX_IO) {
        size_t n = len - done < S_MAX_IO ? len - done : S_MAX_IO;
        int rc = to ? s_read(vm_client(f->vm), VM_PARTITION, gpa + done, to + done, n, why,
                             sizeof why)
                    : s_write(vm_client(f->vm), VM_PARTITION, gpa + done, from + done, n,
                              why, sizeof why);
        cr_assert_eq(rc, 0, "the partition: %s", why);
    }
}

/* An MMIO access to device i's register reg, as a VP makes it. */
static uint64_t s_reg(s_fixture_t *f, size_t i, uint64_t reg, bool write, uint64_t value)
{
    uint8_t bytes[8];
    for (int b = 0; b < 8; b++)
        bytes[b] = (uint8_t)(value >> (8 * b));
    Vmm__Devices__ReadMmio rd = VMM__DEVICES__READ_MMIO__INIT;
    Vmm__Devices__WriteMmio wr = VMM__DEVICES__WRITE_MMIO__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    if (write) {
        wr.address = s_configs[i].base + reg;
        wr.data = (ProtobufCBinaryData){8, bytes};
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_MMIO;
        req.write_mmio = &wr;
    } else {
        rd.address = s_configs[i].base + reg;
        rd.size = 8;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_MMIO;
        req.read_mmio = &rd;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(vm_client(f->vm), s_actors[i], &env, &reply, S_TIMEOUT_MS), 0);
    uint64_t got = 0;
    if (write) {
        cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK, "%s", s_actors[i]);
    } else {
        cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY, "%s", s_actors[i]);
        const ProtobufCBinaryData *d = &reply.env->device_reply->read_mmio->data;
        cr_assert_eq(d->len, 8);
        for (int b = 0; b < 8; b++)
            got |= (uint64_t)d->data[b] << (8 * b);
    }
    rt_msg_release(&reply);
    return got;
}

/* Device i reads len bytes at gpa (cmd C_READ) or writes the pattern of
 * seed there (C_WRITE); returns its status, 0 or a negative errno. */
static int s_command(s_fixture_t *f, size_t i, uint64_t cmd, uint64_t gpa, size_t len,
                     unsigned seed)
{
    s_reg(f, i, R_GPA, true, gpa);
    s_reg(f, i, R_LEN, true, len);
    s_reg(f, i, R_SEED, true, seed);
    s_reg(f, i, R_CMD, true, cmd);
    return (int)(int64_t)s_reg(f, i, R_STATUS, false, 0);
}

/* Accesses outside RAM through device i: refused with EFAULT, and nothing
 * written. */
static void s_expect_outside_refused(s_fixture_t *f, size_t i)
{
    static const struct {
        uint64_t gpa;
        size_t len;
        const char *what;
    } outside[] = {
        {S_MEM, 1, "just past RAM"},
        {S_MEM - 2, 4, "crossing the end of RAM"},
        {1ull << 40, 16, "far beyond RAM"},
        {UINT64_MAX - 1, 4, "wrapping around"},
    };
    uint8_t edge[2] = {0x5a, 0xa5}, now[2];
    s_vm_io(f, S_MEM - 2, NULL, edge, 2);
    for (size_t k = 0; k < sizeof outside / sizeof *outside; k++) {
        cr_expect_eq(s_command(f, i, C_READ, outside[k].gpa, outside[k].len, 0), -EFAULT,
                     "%s: a read %s", s_actors[i], outside[k].what);
        cr_expect_eq(s_command(f, i, C_WRITE, outside[k].gpa, outside[k].len, 0), -EFAULT,
                     "%s: a write %s", s_actors[i], outside[k].what);
    }
    s_vm_io(f, S_MEM - 2, now, NULL, 2);
    cr_expect_arr_eq(now, edge, 2, "%s: the last bytes of RAM are untouched", s_actors[i]);
}

Test(devhost_memory, bytes_round_trip_through_the_mapping_and_by_message)
{
    s_fixture_t f;
    s_open(&f);
    /* More than one message holds, so that the message path takes pieces. */
    enum { LEN = 96 * 1024 };
    static uint8_t mine[LEN], theirs[LEN];
    char why[256] = "";
    for (size_t i = 0; i < 2; i++) {
        const char *dev = s_actors[i];
        uint64_t gpa = (8u << 20) + i * (1u << 20);
        /* What the VM writes, the device reads. */
        long long reads = s_partition_number(&f, "guest_reads");
        s_fill(mine, LEN, 3 + (unsigned)i);
        s_vm_io(&f, gpa, NULL, mine, LEN);
        cr_assert_eq(s_command(&f, i, C_READ, gpa, LEN, 0), 0, "%s", dev);
        cr_expect_eq(s_reg(&f, i, R_HASH, false, 0), s_hash(mine, LEN),
                     "%s read what the VM wrote", dev);
        cr_expect_eq(s_partition_number(&f, "guest_reads") - reads, s_configs[i].by_message ? 2 : 0,
                     "%s: %s", dev, s_configs[i].by_message ? "two messages" : "no message");

        /* What the device writes, the VM reads. */
        long long writes = s_partition_number(&f, "guest_writes");
        cr_assert_eq(s_command(&f, i, C_WRITE, gpa + 4096, LEN, 101 + (unsigned)i), 0, "%s",
                     dev);
        s_fill(mine, LEN, 101 + (unsigned)i);
        s_vm_io(&f, gpa + 4096, theirs, NULL, LEN);
        cr_expect_arr_eq(theirs, mine, LEN, "the VM read what %s wrote", dev);
        cr_expect_eq(s_partition_number(&f, "guest_writes") - writes,
                     s_configs[i].by_message ? 2 : 0, "%s", dev);

        s_expect_outside_refused(&f, i);
    }
    /* The partition refuses the same on its own, for any sender. */
    uint8_t data[4];
    cr_expect_eq(s_read(vm_client(f.vm), VM_PARTITION, S_MEM - 2, data, 4, why, sizeof why),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "%s", why);
    cr_expect_eq(s_write(vm_client(f.vm), VM_PARTITION, S_MEM, data, 1, why, sizeof why),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "%s", why);
    s_close(&f);
}

Test(devhost_memory, a_reset_clears_guest_ram_for_the_mapping_too)
{
    s_fixture_t f;
    s_open(&f);
    uint8_t mine[4096], theirs[4096], zeroes[4096] = {0};
    char why[256] = "";
    cr_assert_eq(s_command(&f, 0, C_WRITE, 8u << 20, sizeof mine, 9), 0);
    s_fill(mine, sizeof mine, 9);
    s_vm_io(&f, 8u << 20, theirs, NULL, sizeof theirs);
    cr_expect_arr_eq(theirs, mine, sizeof mine);

    cr_assert_eq(vm_reset(f.vm, why, sizeof why), 0, "%s", why);
    s_vm_io(&f, 8u << 20, theirs, NULL, sizeof theirs);
    cr_expect_arr_eq(theirs, zeroes, sizeof zeroes, "the VM reads zeroes");
    cr_assert_eq(s_command(&f, 0, C_READ, 8u << 20, sizeof theirs, 0), 0);
    cr_expect_eq(s_reg(&f, 0, R_HASH, false, 0), s_hash(zeroes, sizeof zeroes),
                 "so does the device through its mapping");
    s_close(&f);
}

/* Asks for the map as `from`; returns the Error's code (0 for a map). */
static int s_ask_map(rt_actor_t *from, char *why, size_t whylen)
{
    Vmm__Devices__MapGuestMemory op = VMM__DEVICES__MAP_GUEST_MEMORY__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY;
    req.map_guest_memory = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(from, VM_PARTITION, &env, &reply, S_TIMEOUT_MS), 0);
    int rc = 0;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rc = reply.env->error->code;
        snprintf(why, whylen, "%s", reply.env->error->text);
    } else {
        cr_assert_eq(reply.env->device_reply->result_case,
                     VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP);
        const Vmm__Devices__GuestMemoryMap *map = reply.env->device_reply->guest_memory_map;
        cr_assert_eq(map->n_ranges, 1);
        cr_expect_eq(map->ranges[0]->gpa, 0);
        cr_expect_eq(map->ranges[0]->size, S_MEM);
        cr_expect_eq(map->ranges[0]->offset, 0);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "/proc/%d/fd/", (int)getpid());
        cr_expect_eq(strncmp(map->path, prefix, strlen(prefix)), 0, "%s", map->path);
        cr_expect(strstr(map->link, "vmm-ram-"), "%s", map->link);
    }
    rt_msg_release(&reply);
    return rc;
}

Test(devhost_memory, only_a_registered_device_of_the_vm_gets_the_map)
{
    s_fixture_t f;
    s_open(&f);
    char why[256] = "";
    long long denied = s_partition_number(&f, "denied");
    rt_client_t *other_vm = rt_client_new(vm_rt(f.vm), "vm1/dev/mem");
    rt_client_t *stranger = rt_client_new(vm_rt(f.vm), "vm0/dev/stranger");
    cr_expect_eq(s_ask_map(rt_client_actor(other_vm), why, sizeof why),
                 VMM__ERROR_CODE__PERMISSION_DENIED, "an actor of another VM: %s", why);
    cr_expect_eq(s_ask_map(rt_client_actor(stranger), why, sizeof why),
                 VMM__ERROR_CODE__PERMISSION_DENIED, "an unregistered actor: %s", why);
    cr_expect_eq(s_ask_map(vm_client(f.vm), why, sizeof why),
                 VMM__ERROR_CODE__PERMISSION_DENIED, "the VMM, no device: %s", why);
    cr_expect_eq(s_partition_number(&f, "denied") - denied, 3);

    /* Registered, the stranger is told. */
    rt_msg_t reply;
    cr_assert_eq(vm_harness_register(rt_client_actor(stranger), "stranger", false, 0x680, 1,
                                     false, &reply),
                 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY);
    rt_msg_release(&reply);
    cr_expect_eq(s_ask_map(rt_client_actor(stranger), why, sizeof why), 0, "%s", why);
    cr_expect_eq(s_partition_number(&f, "denied") - denied, 3);
    rt_client_destroy(&other_vm);
    rt_client_destroy(&stranger);
    s_close(&f);
}

/* The environment's time per 4 KiB read of device i, in µs, over n reads. */
static double s_read_us(s_fixture_t *f, size_t i, int n)
{
    const char *dev = s_actors[i];
    long long reads = echo_inspect_number(vm_client(f->vm), dev, "guest_reads");
    long long ns = echo_inspect_number(vm_client(f->vm), dev, "guest_read_ns");
    for (int k = 0; k < n; k++)
        cr_assert_eq(s_command(f, i, C_READ, (8u << 20) + (uint64_t)(k % 256) * 4096, 4096, 0),
                     0, "%s", dev);
    cr_assert_eq(echo_inspect_number(vm_client(f->vm), dev, "guest_reads") - reads, n);
    return (double)(echo_inspect_number(vm_client(f->vm), dev, "guest_read_ns") - ns) / n / 1e3;
}

Test(devhost_memory, a_4k_read_through_the_mapping_against_messages)
{
    s_fixture_t f;
    s_open(&f);
    /* First the map asked for and every page touched. */
    s_read_us(&f, 0, 256);
    s_read_us(&f, 1, 256);
    double mapped = s_read_us(&f, 0, 1000);
    double messages = s_read_us(&f, 1, 1000);
    /* A figure, not a target. */
    printf("a 4 KiB guest read in a device host over ipc://: %.2f µs through the mapping, "
           "%.2f µs by message (%.0fx)\n",
           mapped, messages, messages / mapped);
    s_close(&f);
}
