/* What every device shares: registration with the partition, bad port
 * accesses refused, counted and survived, and guest memory access. */
#define _GNU_SOURCE /* memfd_create */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actors/devices/debug_exit.h"
#include "actors/devices/device.h"
#include "actors/devices/i8042.h"
#include "actors/devices/power.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/testing/fake_vm.h"

/* One device as the tests see it: how to start it and what it registers. */
typedef struct {
    const char *actor;
    const rt_actor_ops_t *ops;
    void *config;
    const char *name;
    uint32_t starts[2], lens[2]; /* its port ranges */
    size_t n_ranges;
    int irq;                     /* -1: none */
    bool posted_writes;
} s_device_t;

static dev_serial_config_t s_serial = {.partition = FAKE_VM_PARTITION, .out_fd = -1,
                                       .in_fd = -1};
static dev_debug_exit_config_t s_debug_exit = {.partition = FAKE_VM_PARTITION};
static dev_i8042_config_t s_i8042 = {.partition = FAKE_VM_PARTITION};
static dev_power_config_t s_power = {.partition = FAKE_VM_PARTITION};
static dev_testdev_config_t s_testdev = {.partition = FAKE_VM_PARTITION};

static const s_device_t s_devices[] = {
    {"vm0/dev/com1", &dev_serial_ops, &s_serial, "com1", {0x3f8}, {8}, 1, 4, true},
    {"vm0/dev/debug-exit", &dev_debug_exit_ops, &s_debug_exit, "debug-exit", {0xf4}, {1}, 1,
     -1, false},
    {"vm0/dev/i8042", &dev_i8042_ops, &s_i8042, "i8042", {0x60, 0x64}, {1, 1}, 2, -1, false},
    {"vm0/dev/pm1a", &dev_power_ops, &s_power, "pm1a", {0x604}, {2}, 1, -1, false},
    {"vm0/dev/testdev", &dev_testdev_ops, &s_testdev, "testdev", {TESTDEV_PORT_BASE},
     {TESTDEV_PORT_COUNT}, 1, -1, false},
};
#define N_DEVICES (sizeof s_devices / sizeof *s_devices)

static rt_actor_spec_t s_spec(const s_device_t *d)
{
    return (rt_actor_spec_t){.name = d->actor, .ops = d->ops, .arg = d->config};
}

/* ---- Registration ---------------------------------------------------------- */

Test(registration, each_device_asks_for_its_ports_and_lines)
{
    for (size_t i = 0; i < N_DEVICES; i++) {
        const s_device_t *d = &s_devices[i];
        fake_vm_t *vm = fake_vm_new();
        rt_actor_spec_t spec = s_spec(d);
        rt_msg_t reg;
        cr_assert_eq(fake_vm_start(vm, &spec, 0, &reg), 0, "%s", d->actor);
        cr_assert_not_null(reg.env, "%s registered", d->actor);
        cr_expect_str_eq(reg.env->sender, d->actor);
        cr_expect_neq(reg.env->request_id, 0, "a request");
        const Vmm__Devices__RegisterDevice *r = reg.env->device_request->register_device;
        cr_expect_str_eq(r->name, d->name);
        cr_assert_eq(r->n_ports, d->n_ranges, "%s", d->actor);
        for (size_t k = 0; k < d->n_ranges; k++) {
            cr_expect_eq(r->ports[k]->start, d->starts[k], "%s", d->actor);
            cr_expect_eq(r->ports[k]->len, d->lens[k], "%s", d->actor);
        }
        cr_expect_eq(r->n_irq_lines, d->irq < 0 ? 0 : 1, "%s", d->actor);
        if (d->irq >= 0 && r->n_irq_lines)
            cr_expect_eq(r->irq_lines[0], (uint32_t)d->irq);
        cr_expect(r->required, "%s", d->actor);
        cr_expect_eq(r->posted_writes, d->posted_writes, "%s", d->actor);
        cr_expect_eq(r->n_mmio, 0);
        rt_msg_release(&reg);
        cr_expect_eq(fake_vm_inspect(vm, d->actor, "handle"), 1, "the granted handle kept");
        fake_vm_destroy(&vm);
    }
}

Test(registration, a_refusal_makes_start_fail)
{
    for (size_t i = 0; i < N_DEVICES; i++) {
        const s_device_t *d = &s_devices[i];
        fake_vm_t *vm = fake_vm_new();
        rt_actor_spec_t spec = s_spec(d);
        cr_expect_eq(fake_vm_start(vm, &spec, VMM__ERROR_CODE__BUSY, NULL), -EBUSY, "%s",
                     d->actor);
        cr_expect_eq(fake_vm_start(vm, &spec, VMM__ERROR_CODE__INVALID_ARGUMENT, NULL), -EINVAL,
                     "%s: the name was released", d->actor);
        cr_expect_eq(fake_vm_start(vm, &spec, 0, NULL), 0, "%s", d->actor);
        fake_vm_destroy(&vm);
    }
}

/* A partition that answers a registration with something else. */
static void *s_wrong_answer(void *arg)
{
    fake_vm_t *vm = arg;
    rt_msg_t msg;
    if (rt_client_recv(vm->partition, &msg, 5000))
        return NULL;
    rt_reply_ack(rt_client_actor(vm->partition), msg.env);
    rt_msg_release(&msg);
    return NULL;
}

Test(registration, an_answer_that_is_no_registration_makes_start_fail)
{
    fake_vm_t *vm = fake_vm_new();
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_wrong_answer, vm), 0);
    rt_actor_spec_t spec = s_spec(&s_devices[0]);
    cr_expect_eq(rt_actor_start(vm->ex, &spec), -EPROTO);
    pthread_join(thread, NULL);
    fake_vm_destroy(&vm);
}

Test(registration, a_partition_that_does_not_exist_makes_start_fail)
{
    fake_vm_t *vm = fake_vm_new();
    dev_i8042_config_t cfg = {.partition = "vm0/nobody"};
    rt_actor_spec_t spec = {.name = "vm0/dev/i8042", .ops = &dev_i8042_ops, .arg = &cfg};
    cr_expect_lt(rt_actor_start(vm->ex, &spec), 0);
    fake_vm_destroy(&vm);
}

Test(registration, without_a_partition_nothing_registers)
{
    fake_vm_t *vm = fake_vm_new();
    dev_power_config_t cfg = {0};
    rt_actor_spec_t spec = {.name = "vm0/dev/pm1a", .ops = &dev_power_ops, .arg = &cfg};
    rt_msg_t reg;
    cr_expect_eq(fake_vm_start(vm, &spec, 0, &reg), 0);
    cr_expect_null(reg.env);
    cr_expect_eq(fake_vm_inspect(vm, "vm0/dev/pm1a", "handle"), 0);
    fake_vm_destroy(&vm);
}

Test(registration, no_config_fails_start)
{
    fake_vm_t *vm = fake_vm_new();
    for (size_t i = 0; i < N_DEVICES; i++) {
        rt_actor_spec_t spec = {.name = s_devices[i].actor, .ops = s_devices[i].ops};
        cr_expect_eq(rt_actor_start(vm->ex, &spec), -EINVAL, "%s", s_devices[i].actor);
    }
    fake_vm_destroy(&vm);
}

/* ---- Bad input --------------------------------------------------------------- */

/* Requests refused so far. */
static long long s_refused;

/* Sends req as a request and expects an Error of code whose text names the
 * device. */
static void s_expect_refused(fake_vm_t *vm, const s_device_t *d, Vmm__Devices__Request *req,
                             Vmm__ErrorCode code, const char *what)
{
    int rc = fake_vm_request(vm, d->actor, req, NULL);
    s_refused++;
    cr_expect_eq(rc, (int)code, "%s, %s: %d", d->actor, what, rc);
    cr_expect_neq(strstr(vm->last_error, d->actor), NULL, "%s, %s: text \"%s\"", d->actor, what,
                  vm->last_error);
}

static void s_read_req(Vmm__Devices__Request *req, Vmm__Devices__ReadIo *read_io,
                       uint32_t port, uint32_t size)
{
    vmm__devices__read_io__init(read_io);
    read_io->port = port;
    read_io->size = size;
    vmm__devices__request__init(req);
    req->op_case = VMM__DEVICES__REQUEST__OP_READ_IO;
    req->read_io = read_io;
}

static void s_write_req(Vmm__Devices__Request *req, Vmm__Devices__WriteIo *write_io,
                        uint32_t port, uint8_t *data, size_t len)
{
    vmm__devices__write_io__init(write_io);
    write_io->port = port;
    write_io->data.data = data;
    write_io->data.len = len;
    vmm__devices__request__init(req);
    req->op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO;
    req->write_io = write_io;
}

Test(bad_input, is_refused_with_invalid_argument_and_counted)
{
    for (size_t i = 0; i < N_DEVICES; i++) {
        const s_device_t *d = &s_devices[i];
        fake_vm_t *vm = fake_vm_new();
        rt_actor_spec_t spec = s_spec(d);
        cr_assert_eq(fake_vm_start(vm, &spec, 0, NULL), 0);
        uint32_t first = d->starts[0], end = d->starts[d->n_ranges - 1] + d->lens[d->n_ranges - 1];
        Vmm__Devices__Request req;
        Vmm__Devices__ReadIo read_io;
        Vmm__Devices__WriteIo write_io;
        uint8_t data[8] = {0};
        s_refused = 0;
        const Vmm__ErrorCode invalid = VMM__ERROR_CODE__INVALID_ARGUMENT;

        s_read_req(&req, &read_io, first - 1, 1);
        s_expect_refused(vm, d, &req, invalid, "below the ports");
        s_read_req(&req, &read_io, end, 1);
        s_expect_refused(vm, d, &req, invalid, "past the ports");
        s_read_req(&req, &read_io, end - 1, 2);
        s_expect_refused(vm, d, &req, invalid, "straddling the end");
        s_read_req(&req, &read_io, first + 0x10000, 1);
        s_expect_refused(vm, d, &req, invalid, "a port over 16 bits");
        uint32_t sizes[] = {0, 3, 8, 0xffffffff};
        for (size_t k = 0; k < 4; k++) {
            s_read_req(&req, &read_io, first, sizes[k]);
            s_expect_refused(vm, d, &req, invalid, "a read size not 1, 2, 4");
        }
        size_t lens[] = {0, 3, 8};
        for (size_t k = 0; k < 3; k++) {
            s_write_req(&req, &write_io, first, data, lens[k]);
            s_expect_refused(vm, d, &req, invalid, "a write length not 1, 2, 4");
        }
        s_write_req(&req, &write_io, end, data, 1);
        s_expect_refused(vm, d, &req, invalid, "a write past the ports");
        vmm__devices__request__init(&req);
        s_expect_refused(vm, d, &req, invalid, "no op");

        Vmm__Devices__ReadMmio read_mmio = VMM__DEVICES__READ_MMIO__INIT;
        read_mmio.address = first;
        read_mmio.size = 1;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_MMIO;
        req.read_mmio = &read_mmio;
        s_expect_refused(vm, d, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "an MMIO read");

        /* One-way: nothing can be answered, but all is counted. */
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
        env.device_request = &req;
        s_write_req(&req, &write_io, end, data, 1);
        write_io.posted = true;
        cr_assert_eq(rt_send(rt_client_actor(vm->vp), d->actor, &env), 0);
        s_read_req(&req, &read_io, first, 1);
        cr_assert_eq(rt_send(rt_client_actor(vm->vp), d->actor, &env), 0);
        s_refused += 2;

        cr_expect_eq(fake_vm_inspect(vm, d->actor, "bad_requests"), s_refused, "%s", d->actor);
        cr_expect_eq(fake_vm_inspect(vm, d->actor, "reads"), 0, "%s", d->actor);
        cr_expect_eq(fake_vm_inspect(vm, d->actor, "writes"), 0, "%s", d->actor);
        fake_vm_expect_quiet(vm, vm->vp, 20);
        uint32_t value;
        cr_expect_eq(fake_vm_read(vm, d->actor, first, 1, &value), 0, "%s still serves",
                     d->actor);
        fake_vm_expect_quiet(vm, vm->partition, 20);
        fake_vm_destroy(&vm);
    }
}

/* ---- Guest memory -------------------------------------------------------------- */

#define S_KIB 1024u

/* A memory file of size bytes as the partition makes one (sealed, its
 * name its own), or not sealed. */
static int s_memfd(size_t size, bool sealed)
{
    static unsigned made;
    char name[32];
    snprintf(name, sizeof name, "device-test-ram-%u", made++);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    if (sealed)
        cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
    return fd;
}

/* A GuestMemoryMap as the partition gives one, for fd of this process. */
typedef struct {
    Vmm__Devices__GuestRamRange ranges[2];
    Vmm__Devices__GuestRamRange *range_ptrs[2];
    Vmm__Devices__GuestMemoryMap map;
    char path[64], link[256];
} s_map_t;

/* Describes fd with n of the ranges {gpa, size, offset} given. */
static void s_describe(s_map_t *m, int fd, size_t n, const uint64_t (*ranges)[3])
{
    vmm__devices__guest_memory_map__init(&m->map);
    for (size_t i = 0; i < n; i++) {
        vmm__devices__guest_ram_range__init(&m->ranges[i]);
        m->ranges[i].gpa = ranges[i][0];
        m->ranges[i].size = ranges[i][1];
        m->ranges[i].offset = ranges[i][2];
        m->range_ptrs[i] = &m->ranges[i];
    }
    m->map.n_ranges = n;
    m->map.ranges = m->range_ptrs;
    snprintf(m->path, sizeof m->path, "/proc/%d/fd/%d", (int)getpid(), fd);
    ssize_t len = readlink(m->path, m->link, sizeof m->link - 1);
    cr_assert_gt(len, 0);
    m->link[len] = 0;
    m->map.path = m->path;
    m->map.link = m->link;
}

/* Two RAM ranges with a gap: [0, 64K) at offset 64K, [1M, 1M + 64K) at 0. */
static const uint64_t s_two_ranges[2][3] = {{0, 64 * S_KIB, 64 * S_KIB},
                                            {1024 * S_KIB, 64 * S_KIB, 0}};

/* Accesses outside s_two_ranges: -EFAULT both ways. */
static void s_expect_outside_refused(device_t *dev, rt_actor_t *self)
{
    static const struct {
        uint64_t gpa;
        size_t len;
    } outside[] = {
        {64 * S_KIB, 1},        /* in the gap */
        {64 * S_KIB - 2, 4},    /* off the end of a range */
        {1024 * S_KIB - 1, 2},  /* into a range from the gap */
        {1088 * S_KIB - 1, 2},  /* off the end of RAM */
        {UINT64_MAX - 1, 4},    /* wrapping around */
    };
    uint8_t buf[4] = {0};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
        cr_expect_eq(device_guest_read(dev, self, outside[i].gpa, buf, outside[i].len), -EFAULT,
                     "a read at 0x%llx", (unsigned long long)outside[i].gpa);
        cr_expect_eq(device_guest_write(dev, self, outside[i].gpa, buf, outside[i].len),
                     -EFAULT, "a write at 0x%llx", (unsigned long long)outside[i].gpa);
    }
}

static const device_range_t s_port = {0x500, 1};
static const device_spec_t s_mem_spec = {.name = "mem", .ranges = &s_port, .n_ranges = 1};

Test(guest_memory, the_vms_file_is_mapped_and_accesses_are_range_checked)
{
    fake_vm_t *vm = fake_vm_new();
    rt_actor_t *self = rt_client_actor(vm->vp);
    device_t dev;
    cr_assert_eq(device_init(&dev, self, NULL, &s_mem_spec), 0);
    int fd = s_memfd(128 * S_KIB, true);
    s_map_t m;
    s_describe(&m, fd, 2, s_two_ranges);
    cr_assert_eq(device_guest_map(&dev, &m.map), 0);
    cr_assert_not_null(dev.ram_map);

    const char hello[] = "hello, guest";
    uint8_t buf[sizeof hello];
    cr_assert_eq(pwrite(fd, hello, sizeof hello, 64 * S_KIB + 100), (ssize_t)sizeof hello);
    cr_expect_eq(device_guest_read(&dev, self, 100, buf, sizeof buf), 0);
    cr_expect_arr_eq(buf, hello, sizeof hello, "gpa 100 is 64K + 100 in the file");
    cr_expect_eq(device_guest_write(&dev, self, 1024 * S_KIB + 10, hello, sizeof hello), 0);
    cr_assert_eq(pread(fd, buf, sizeof buf, 10), (ssize_t)sizeof buf);
    cr_expect_arr_eq(buf, hello, sizeof hello, "gpa 1M + 10 is 10 in the file");
    cr_expect_eq(device_guest_read(&dev, self, 1088 * S_KIB - sizeof buf, buf, sizeof buf), 0,
                 "the last bytes of RAM");
    s_expect_outside_refused(&dev, self);

    device_fini(&dev);
    cr_expect_null(dev.ram_map);
    cr_expect_null(dev.ram);
    close(fd);
    fake_vm_destroy(&vm);
}

Test(guest_memory, a_file_that_is_not_the_vms_is_not_mapped)
{
    fake_vm_t *vm = fake_vm_new();
    rt_actor_t *self = rt_client_actor(vm->vp);
    device_t dev;
    cr_assert_eq(device_init(&dev, self, NULL, &s_mem_spec), 0);
    int fd = s_memfd(128 * S_KIB, true), other = s_memfd(128 * S_KIB, true);
    s_map_t m;
    s_describe(&m, fd, 2, s_two_ranges);
    uint8_t buf[4];

    /* On another host the VMM's process is not there, or is another. */
    snprintf(m.path, sizeof m.path, "/proc/999999999/fd/%d", fd);
    cr_expect_eq(device_guest_map(&dev, &m.map), -EXDEV, "no such process");
    cr_expect_null(dev.ram_map);
    cr_expect_eq(dev.n_ram, 2, "the ranges are kept");
    s_expect_outside_refused(&dev, self);
    cr_expect_eq(device_guest_read(&dev, self, 0, buf, sizeof buf), -ENOTCONN,
                 "by message, but there is no partition");
    snprintf(m.path, sizeof m.path, "/proc/%d/fd/%d", (int)getpid(), other);
    cr_expect_eq(device_guest_map(&dev, &m.map), -EXDEV, "the path names another file");
    m.map.link = "";
    cr_expect_eq(device_guest_map(&dev, &m.map), -EXDEV, "no link to check");
    cr_expect_null(dev.ram_map);

    /* A file that could shrink under the mapping, or holds too little. */
    int unsealed = s_memfd(128 * S_KIB, false), small = s_memfd(64 * S_KIB, true);
    s_describe(&m, unsealed, 2, s_two_ranges);
    cr_expect_eq(device_guest_map(&dev, &m.map), -EPERM, "not sealed");
    s_describe(&m, small, 2, s_two_ranges);
    cr_expect_eq(device_guest_map(&dev, &m.map), -ERANGE, "too small");
    cr_expect_null(dev.ram_map);

    /* Descriptions that make no sense keep nothing. */
    const uint64_t empty[1][3] = {{0, 0, 0}}, wraps[1][3] = {{UINT64_MAX - 4095, 8192, 0}};
    s_describe(&m, fd, 0, NULL);
    cr_expect_eq(device_guest_map(&dev, &m.map), -EINVAL, "no ranges");
    s_describe(&m, fd, 1, empty);
    cr_expect_eq(device_guest_map(&dev, &m.map), -EINVAL, "an empty range");
    s_describe(&m, fd, 1, wraps);
    cr_expect_eq(device_guest_map(&dev, &m.map), -EINVAL, "a range that wraps");
    cr_expect_null(dev.ram);

    device_fini(&dev);
    close(small);
    close(unsealed);
    close(other);
    close(fd);
    fake_vm_destroy(&vm);
}

/* A partition on a thread: grants the registration, describes guest RAM
 * as map, and serves reads and writes from bytes (guest RAM from gpa 0),
 * counting the messages and the largest; a Ping ends it. */
typedef struct {
    fake_vm_t *vm;
    Vmm__Devices__GuestMemoryMap *map;
    uint8_t *bytes;
    size_t messages, largest;
} s_partition_t;

static void s_served(s_partition_t *sp, size_t len)
{
    sp->messages++;
    if (len > sp->largest)
        sp->largest = len;
}

static void *s_partition_main(void *arg)
{
    s_partition_t *sp = arg;
    rt_actor_t *self = rt_client_actor(sp->vm->partition);
    rt_msg_t msg;
    while (!rt_client_recv(sp->vm->partition, &msg, 5000)) {
        if (msg.env->body_case != VMM__ENVELOPE__BODY_DEVICE_REQUEST) {
            rt_msg_release(&msg);
            break;
        }
        const Vmm__Devices__Request *req = msg.env->device_request;
        Vmm__Devices__DeviceRegistration reg = VMM__DEVICES__DEVICE_REGISTRATION__INIT;
        Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
        Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = &r;
        switch (req->op_case) {
        case VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE:
            reg.handle = 1;
            reg.n_ports = req->register_device->n_ports;
            reg.ports = req->register_device->ports;
            r.result_case = VMM__DEVICES__REPLY__RESULT_REGISTRATION;
            r.registration = &reg;
            rt_reply(self, msg.env, &env);
            break;
        case VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY:
            r.result_case = VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP;
            r.guest_memory_map = sp->map;
            rt_reply(self, msg.env, &env);
            break;
        case VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY:
            s_served(sp, req->read_guest_memory->length);
            res.data = (ProtobufCBinaryData){req->read_guest_memory->length,
                                             sp->bytes + req->read_guest_memory->gpa};
            r.result_case = VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY;
            r.read_guest_memory = &res;
            rt_reply(self, msg.env, &env);
            break;
        case VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY:
            s_served(sp, req->write_guest_memory->data.len);
            memcpy(sp->bytes + req->write_guest_memory->gpa, req->write_guest_memory->data.data,
                   req->write_guest_memory->data.len);
            rt_reply_ack(self, msg.env);
            break;
        default:
            rt_reply_error(self, msg.env, VMM__ERROR_CODE__NOT_SUPPORTED, "not in this test");
        }
        rt_msg_release(&msg);
    }
    return NULL;
}

static void s_fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

Test(guest_memory, by_message_in_pieces_of_64k_when_asked_to)
{
    fake_vm_t *vm = fake_vm_new();
    rt_actor_t *self = rt_client_actor(vm->vp);
    enum { RAM = 256 * 1024, LEN = 150000 };
    int fd = s_memfd(RAM, true);
    const uint64_t one_range[1][3] = {{0, RAM, 0}};
    s_map_t m;
    s_describe(&m, fd, 1, one_range);
    s_partition_t sp = {.vm = vm, .map = &m.map};
    sp.bytes = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(sp.bytes, MAP_FAILED);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_partition_main, &sp), 0);
    device_t dev;
    cr_assert_eq(device_init(&dev, self, FAKE_VM_PARTITION, &s_mem_spec), 0);
    dev.guest_by_message = true;

    static uint8_t mine[LEN], theirs[LEN];
    s_fill(sp.bytes + 1000, LEN, 1);
    cr_expect_eq(device_guest_read(&dev, self, 1000, theirs, LEN), 0);
    cr_expect_arr_eq(theirs, sp.bytes + 1000, LEN);
    cr_expect_eq(sp.messages, 3, "64 KiB, 64 KiB and the rest");
    cr_expect_eq(sp.largest, 65536);
    cr_expect_not_null(dev.ram_map, "mapped all the same");
    s_fill(mine, LEN, 2);
    cr_expect_eq(device_guest_write(&dev, self, 5, mine, LEN), 0);
    cr_expect_arr_eq(sp.bytes + 5, mine, LEN);
    cr_expect_eq(sp.messages, 6);
    cr_expect_eq(device_guest_read(&dev, self, RAM - 1, theirs, 2), -EFAULT);
    cr_expect_eq(sp.messages, 6, "refused before any message");

    dev.guest_by_message = false;
    s_fill(sp.bytes, LEN, 3);
    cr_expect_eq(device_guest_read(&dev, self, 0, theirs, LEN), 0);
    cr_expect_arr_eq(theirs, sp.bytes, LEN);
    cr_expect_eq(sp.messages, 6, "through the mapping");

    Vmm__Envelope stop = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    stop.body_case = VMM__ENVELOPE__BODY_PING;
    stop.ping = &ping;
    cr_assert_eq(rt_send(self, FAKE_VM_PARTITION, &stop), 0);
    pthread_join(thread, NULL);
    device_fini(&dev);
    munmap(sp.bytes, RAM);
    close(fd);
    fake_vm_destroy(&vm);
}
