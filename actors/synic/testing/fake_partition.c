#define _GNU_SOURCE /* memfd_create */
#include "actors/synic/testing/fake_partition.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* MSIs kept until taken; more are counted and dropped. */
#define S_MSI_RING 4096
#define S_RECV_MS 10
#define S_MAX_IO 65536u

struct fake_partition_s {
    rt_t *rt;
    char *name;
    pthread_t thread;
    bool started;
    atomic_bool stop;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    bool ready;
    int start_rc;
    uint8_t *ram; /* the memory file, mapped */
    size_t ram_size;
    int ram_fd;
    fake_msi_t msis[S_MSI_RING];
    uint64_t msi_head, msi_tail; /* taken, asked for */
    uint64_t served, refused;
};

static bool s_inside(const fake_partition_t *fp, uint64_t gpa, size_t len)
{
    return gpa <= fp->ram_size && len <= fp->ram_size - gpa;
}

static void s_memory(fake_partition_t *fp, rt_actor_t *self, const Vmm__Envelope *msg,
                     uint64_t gpa, size_t len, const uint8_t *data)
{
    pthread_mutex_lock(&fp->lock);
    bool ok = len <= S_MAX_IO && s_inside(fp, gpa, len);
    if (!ok) {
        fp->refused++;
        pthread_mutex_unlock(&fp->lock);
        rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                       "0x%llx+%zu is not guest RAM", (unsigned long long)gpa, len);
        return;
    }
    fp->served++;
    if (data) {
        memcpy(fp->ram + gpa, data, len);
        pthread_mutex_unlock(&fp->lock);
        rt_reply_ack(self, msg);
        return;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy)
        memcpy(copy, fp->ram + gpa, len);
    pthread_mutex_unlock(&fp->lock);
    if (!copy) {
        rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "no memory");
        return;
    }
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data.data = copy;
    res.data.len = len;
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY;
    reply.read_guest_memory = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    rt_reply(self, msg, &env);
    free(copy);
}

/* UpdateGuestMemory, atomic against the fake's other accesses (its lock). */
static void s_update(fake_partition_t *fp, rt_actor_t *self, const Vmm__Envelope *msg,
                     const Vmm__Devices__UpdateGuestMemory *op)
{
    pthread_mutex_lock(&fp->lock);
    bool ok = (op->size == 1 || op->size == 2 || op->size == 4 || op->size == 8) &&
              !(op->gpa % op->size) && s_inside(fp, op->gpa, op->size);
    uint8_t old[8];
    if (ok) {
        fp->served++;
        memcpy(old, fp->ram + op->gpa, op->size);
        for (uint32_t i = 0; i < op->size; i++)
            fp->ram[op->gpa + i] = (uint8_t)((old[i] & (op->and_mask >> (8 * i))) |
                                             (op->or_mask >> (8 * i)));
    } else {
        fp->refused++;
    }
    pthread_mutex_unlock(&fp->lock);
    if (!ok) {
        rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                       "no aligned update of %u bytes at 0x%llx", op->size,
                       (unsigned long long)op->gpa);
        return;
    }
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){op->size, old};
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_UPDATE_GUEST_MEMORY;
    reply.update_guest_memory = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    rt_reply(self, msg, &env);
}

static void s_msi(fake_partition_t *fp, rt_actor_t *self, const Vmm__Envelope *msg,
                  const Vmm__Partition__RequestMsi *op)
{
    pthread_mutex_lock(&fp->lock);
    if (op->request && fp->msi_tail - fp->msi_head < S_MSI_RING) {
        fp->msis[fp->msi_tail % S_MSI_RING] =
            (fake_msi_t){.address = op->request->address, .data = op->request->data};
        fp->msi_tail++;
        pthread_cond_broadcast(&fp->cond);
    }
    pthread_mutex_unlock(&fp->lock);
    if (msg->request_id)
        rt_reply_ack(self, msg);
}

/* MapGuestMemory, as the partition answers it: the synic maps the file. */
static void s_map(fake_partition_t *fp, rt_actor_t *self, const Vmm__Envelope *msg)
{
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getpid(), fp->ram_fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) {
        rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "%s: %s", path, strerror(errno));
        return;
    }
    link[n] = 0;
    Vmm__Devices__GuestRamRange range = VMM__DEVICES__GUEST_RAM_RANGE__INIT;
    range.size = fp->ram_size;
    Vmm__Devices__GuestRamRange *ranges[] = {&range};
    Vmm__Devices__GuestMemoryMap map = VMM__DEVICES__GUEST_MEMORY_MAP__INIT;
    map.n_ranges = 1;
    map.ranges = ranges;
    map.path = path;
    map.link = link;
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP;
    reply.guest_memory_map = &map;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    rt_reply(self, msg, &env);
}

static void s_serve(fake_partition_t *fp, rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (msg->body_case == VMM__ENVELOPE__BODY_DEVICE_REQUEST && msg->device_request) {
        const Vmm__Devices__Request *req = msg->device_request;
        if (req->op_case == VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY)
            return s_memory(fp, self, msg, req->read_guest_memory->gpa,
                            req->read_guest_memory->length, NULL);
        if (req->op_case == VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY)
            return s_memory(fp, self, msg, req->write_guest_memory->gpa,
                            req->write_guest_memory->data.len,
                            req->write_guest_memory->data.data);
        if (req->op_case == VMM__DEVICES__REQUEST__OP_UPDATE_GUEST_MEMORY)
            return s_update(fp, self, msg, req->update_guest_memory);
        if (req->op_case == VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY)
            return s_map(fp, self, msg);
    }
    if (msg->body_case == VMM__ENVELOPE__BODY_PARTITION_REQUEST && msg->partition_request &&
        msg->partition_request->op_case == VMM__PARTITION__REQUEST__OP_REQUEST_MSI)
        return s_msi(fp, self, msg, msg->partition_request->request_msi);
    if (msg->request_id)
        rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                       "the fake partition serves guest memory and MSIs only");
}

static void *s_main(void *arg)
{
    fake_partition_t *fp = arg;
    rt_client_t *client = rt_client_new(fp->rt, fp->name);
    pthread_mutex_lock(&fp->lock);
    fp->ready = true;
    fp->start_rc = client ? 0 : -ENOMEM;
    pthread_cond_broadcast(&fp->cond);
    pthread_mutex_unlock(&fp->lock);
    if (!client)
        return NULL;
    while (!atomic_load(&fp->stop)) {
        rt_msg_t msg;
        if (rt_client_recv(client, &msg, S_RECV_MS))
            continue;
        s_serve(fp, rt_client_actor(client), msg.env);
        rt_msg_release(&msg);
    }
    rt_client_destroy(&client);
    return NULL;
}

fake_partition_t *fake_partition_new(rt_t *rt, const char *name, size_t ram_size)
{
    fake_partition_t *fp = calloc(1, sizeof *fp);
    if (!fp)
        return NULL;
    fp->ram_fd = -1;
    fp->rt = rt;
    fp->name = strdup(name);
    fp->ram_size = ram_size;
    pthread_mutex_init(&fp->lock, NULL);
    pthread_cond_init(&fp->cond, NULL);
    /* Sealed, as the partition's: a mapper checks it cannot shrink. */
    fp->ram_fd = memfd_create("fake-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fp->ram_fd < 0 || ftruncate(fp->ram_fd, (off_t)ram_size) ||
        fcntl(fp->ram_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
        goto fail;
    fp->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, fp->ram_fd, 0);
    if (fp->ram == MAP_FAILED)
        fp->ram = NULL;
    if (!fp->name || !fp->ram || pthread_create(&fp->thread, NULL, s_main, fp))
        goto fail;
    fp->started = true;
    pthread_mutex_lock(&fp->lock);
    while (!fp->ready)
        pthread_cond_wait(&fp->cond, &fp->lock);
    int rc = fp->start_rc;
    pthread_mutex_unlock(&fp->lock);
    if (rc)
        goto fail;
    return fp;

fail:
    fake_partition_destroy(&fp);
    return NULL;
}

void fake_partition_destroy(fake_partition_t **fpp)
{
    if (!fpp || !*fpp)
        return;
    fake_partition_t *fp = *fpp;
    if (fp->started) {
        atomic_store(&fp->stop, true);
        pthread_join(fp->thread, NULL);
    }
    pthread_cond_destroy(&fp->cond);
    pthread_mutex_destroy(&fp->lock);
    if (fp->ram)
        munmap(fp->ram, fp->ram_size);
    if (fp->ram_fd >= 0)
        close(fp->ram_fd);
    free(fp->name);
    free(fp);
    *fpp = NULL;
}

int fake_partition_read(fake_partition_t *fp, uint64_t gpa, void *buf, size_t len)
{
    pthread_mutex_lock(&fp->lock);
    bool ok = s_inside(fp, gpa, len);
    if (ok)
        memcpy(buf, fp->ram + gpa, len);
    pthread_mutex_unlock(&fp->lock);
    return ok ? 0 : -EINVAL;
}

int fake_partition_write(fake_partition_t *fp, uint64_t gpa, const void *buf, size_t len)
{
    pthread_mutex_lock(&fp->lock);
    bool ok = s_inside(fp, gpa, len);
    if (ok)
        memcpy(fp->ram + gpa, buf, len);
    pthread_mutex_unlock(&fp->lock);
    return ok ? 0 : -EINVAL;
}

int fake_partition_next_msi(fake_partition_t *fp, int timeout_ms, fake_msi_t *msi)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&fp->lock);
    while (fp->msi_head == fp->msi_tail && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&fp->cond, &fp->lock, &deadline);
    bool got = fp->msi_head != fp->msi_tail;
    if (got)
        *msi = fp->msis[fp->msi_head++ % S_MSI_RING];
    pthread_mutex_unlock(&fp->lock);
    return got ? 0 : -ETIMEDOUT;
}

static uint64_t s_locked_read(fake_partition_t *fp, const uint64_t *field)
{
    pthread_mutex_lock(&fp->lock);
    uint64_t v = *field;
    pthread_mutex_unlock(&fp->lock);
    return v;
}

uint64_t fake_partition_msis(fake_partition_t *fp)
{
    return s_locked_read(fp, &fp->msi_tail);
}

uint64_t fake_partition_memory_served(fake_partition_t *fp)
{
    return s_locked_read(fp, &fp->served);
}

uint64_t fake_partition_memory_refused(fake_partition_t *fp)
{
    return s_locked_read(fp, &fp->refused);
}
