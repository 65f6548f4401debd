/* Guest memory for the device actor: the VM's memory file mapped and every
 * access range-checked, or accesses by message in pieces of 64 KiB. */
#define _GNU_SOURCE /* memfd_create */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actors/devices/device_guest.h"
#include "actors/devices/testing/fake_vm.h"

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
static void s_expect_outside_refused(device_guest_t *g, rt_actor_t *self)
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
        cr_expect_eq(device_guest_io(g, self, NULL, outside[i].gpa, buf, NULL, outside[i].len),
                     -EFAULT, "a read at 0x%llx", (unsigned long long)outside[i].gpa);
        cr_expect_eq(device_guest_io(g, self, NULL, outside[i].gpa, NULL, buf, outside[i].len),
                     -EFAULT, "a write at 0x%llx", (unsigned long long)outside[i].gpa);
    }
}

Test(guest_memory, the_vms_file_is_mapped_and_accesses_are_range_checked)
{
    fake_vm_t *vm = fake_vm_new();
    rt_actor_t *self = rt_client_actor(vm->vp);
    device_guest_t g = {0};
    int fd = s_memfd(128 * S_KIB, true);
    s_map_t m;
    s_describe(&m, fd, 2, s_two_ranges);
    cr_assert_eq(device_guest_map(&g, &m.map), 0);
    cr_assert_not_null(g.map);

    const char hello[] = "hello, guest";
    uint8_t buf[sizeof hello];
    cr_assert_eq(pwrite(fd, hello, sizeof hello, 64 * S_KIB + 100), (ssize_t)sizeof hello);
    cr_expect_eq(device_guest_io(&g, self, NULL, 100, buf, NULL, sizeof buf), 0);
    cr_expect_arr_eq(buf, hello, sizeof hello, "gpa 100 is 64K + 100 in the file");
    cr_expect_eq(device_guest_io(&g, self, NULL, 1024 * S_KIB + 10, NULL, hello, sizeof hello), 0);
    cr_assert_eq(pread(fd, buf, sizeof buf, 10), (ssize_t)sizeof buf);
    cr_expect_arr_eq(buf, hello, sizeof hello, "gpa 1M + 10 is 10 in the file");
    cr_expect_eq(device_guest_io(&g, self, NULL, 1088 * S_KIB - sizeof buf, buf, NULL, sizeof buf),
                 0, "the last bytes of RAM");
    s_expect_outside_refused(&g, self);

    device_guest_fini(&g);
    cr_expect_null(g.map);
    cr_expect_null(g.ram);
    close(fd);
    fake_vm_destroy(&vm);
}

Test(guest_memory, a_file_that_is_not_the_vms_is_not_mapped)
{
    fake_vm_t *vm = fake_vm_new();
    rt_actor_t *self = rt_client_actor(vm->vp);
    device_guest_t g = {0};
    int fd = s_memfd(128 * S_KIB, true), other = s_memfd(128 * S_KIB, true);
    s_map_t m;
    s_describe(&m, fd, 2, s_two_ranges);
    uint8_t buf[4];

    /* On another host the VMM's process is not there, or is another. */
    snprintf(m.path, sizeof m.path, "/proc/999999999/fd/%d", fd);
    cr_expect_eq(device_guest_map(&g, &m.map), -EXDEV, "no such process");
    cr_expect_null(g.map);
    cr_expect_eq(g.n_ram, 2, "the ranges are kept");
    s_expect_outside_refused(&g, self);
    cr_expect_eq(device_guest_io(&g, self, NULL, 0, buf, NULL, sizeof buf), -ENOTCONN,
                 "by message, but there is no partition");
    snprintf(m.path, sizeof m.path, "/proc/%d/fd/%d", (int)getpid(), other);
    cr_expect_eq(device_guest_map(&g, &m.map), -EXDEV, "the path names another file");
    m.map.link = "";
    cr_expect_eq(device_guest_map(&g, &m.map), -EXDEV, "no link to check");
    cr_expect_null(g.map);

    /* A file that could shrink under the mapping, or holds too little. */
    int unsealed = s_memfd(128 * S_KIB, false), small = s_memfd(64 * S_KIB, true);
    s_describe(&m, unsealed, 2, s_two_ranges);
    cr_expect_eq(device_guest_map(&g, &m.map), -EPERM, "not sealed");
    s_describe(&m, small, 2, s_two_ranges);
    cr_expect_eq(device_guest_map(&g, &m.map), -ERANGE, "too small");
    cr_expect_null(g.map);

    /* Descriptions that make no sense keep nothing. */
    const uint64_t empty[1][3] = {{0, 0, 0}}, wraps[1][3] = {{UINT64_MAX - 4095, 8192, 0}};
    s_describe(&m, fd, 0, NULL);
    cr_expect_eq(device_guest_map(&g, &m.map), -EINVAL, "no ranges");
    s_describe(&m, fd, 1, empty);
    cr_expect_eq(device_guest_map(&g, &m.map), -EINVAL, "an empty range");
    s_describe(&m, fd, 1, wraps);
    cr_expect_eq(device_guest_map(&g, &m.map), -EINVAL, "a range that wraps");
    cr_expect_null(g.ram);

    device_guest_fini(&g);
    close(small);
    close(unsealed);
    close(other);
    close(fd);
    fake_vm_destroy(&vm);
}

/* A partition on a thread: describes guest RAM
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
        Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
        Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = &r;
        switch (req->op_case) {
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
    device_guest_t g = {.by_message = true};

    static uint8_t mine[LEN], theirs[LEN];
    s_fill(sp.bytes + 1000, LEN, 1);
    cr_expect_eq(device_guest_io(&g, self, FAKE_VM_PARTITION, 1000, theirs, NULL, LEN), 0);
    cr_expect_arr_eq(theirs, sp.bytes + 1000, LEN);
    cr_expect_eq(sp.messages, 3, "64 KiB, 64 KiB and the rest");
    cr_expect_eq(sp.largest, 65536);
    cr_expect_not_null(g.map, "mapped all the same");
    s_fill(mine, LEN, 2);
    cr_expect_eq(device_guest_io(&g, self, FAKE_VM_PARTITION, 5, NULL, mine, LEN), 0);
    cr_expect_arr_eq(sp.bytes + 5, mine, LEN);
    cr_expect_eq(sp.messages, 6);
    cr_expect_eq(device_guest_io(&g, self, FAKE_VM_PARTITION, RAM - 1, theirs, NULL, 2), -EFAULT);
    cr_expect_eq(sp.messages, 6, "refused before any message");

    g.by_message = false;
    s_fill(sp.bytes, LEN, 3);
    cr_expect_eq(device_guest_io(&g, self, FAKE_VM_PARTITION, 0, theirs, NULL, LEN), 0);
    cr_expect_arr_eq(theirs, sp.bytes, LEN);
    cr_expect_eq(sp.messages, 6, "through the mapping");

    Vmm__Envelope stop = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    stop.body_case = VMM__ENVELOPE__BODY_PING;
    stop.ping = &ping;
    cr_assert_eq(rt_send(self, FAKE_VM_PARTITION, &stop), 0);
    pthread_join(thread, NULL);
    device_guest_fini(&g);
    munmap(sp.bytes, RAM);
    close(fd);
    fake_vm_destroy(&vm);
}
