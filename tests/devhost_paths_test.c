/*
 * Every path between a VM and a device in a device host, over ipc:// and
 * over tcp:// with CURVE: the probe, a device actor of this test, runs in a
 * forked child with a runtime of its own and registers an MMIO range, an
 * IO-APIC line and a doorbell with the VM's partition (and, with the
 * Hyper-V interface, a host event port, a host message port and a guest
 * event port with its synic). Guests (tests/guests/probe*.c) then reach it
 * by MMIO, by its doorbell and by hypercalls, and it reaches them by its
 * IRQ line, its guest event port and messages. A slow probe (300 ms per
 * access) stalls only the VP that touches it: the other VP, the partition
 * and the synic go on answering. (Port exits and posted writes across the
 * boundary are devhost_test's, MSIs vmm_cli_test's, doorbells at speed
 * devhost_bench's.) The child is forked before the VM's threads exist and
 * waits for the partition's endpoint. Needs /dev/kvm (skips).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h> /* zmq_curve_keypair() */

#include "actors/devices/testdev_abi.h"
#include "runtime/testing/echo.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

#define S_TIMEOUT_MS 10000
#define S_ENDPOINT_MAX 256
#define S_SYNIC "vm0/synic"
#define S_MSI_ADDRESS 0xfee00000u /* fixed delivery to APIC id 0 */
/* A generous bound for an answer that must not wait behind the slow probe. */
#define S_PROMPT_MS 100.0

/* The probe and what the guests do with it (tests/guests/probe*.c have the
 * same numbers): 8 bytes of scratch at S_PROBE, read and written in any
 * width; a command register taking 4-byte writes; a doorbell. */
#define S_PROBE_ACTOR "vm0/dev/probe"
#define S_PROBE 0xd0002000ull
#define S_PROBE_LEN 0x1000
#define S_PROBE_SCRATCH_LEN 8
#define S_PROBE_COMMAND 0x8
#define S_PROBE_DOORBELL 0x100
#define S_CMD_IRQ 1     /* assert S_PROBE_IRQ */
#define S_CMD_EVENT 2   /* signal the guest event port */
#define S_CMD_MESSAGE 3 /* post the scratch bytes to VP 0's S_MESSAGE_SINT */
#define S_PROBE_IRQ 5
#define S_VECTOR_IRQ 0x45
#define S_VECTOR_MESSAGE 0x50
#define S_VECTOR_EVENT 0x51
#define S_EVENT_CONNECTION 7 /* the host ports the probe registers */
#define S_MESSAGE_CONNECTION 8
#define S_EVENT_SINT 3 /* its guest event port */
#define S_EVENT_FLAG 5
#define S_MESSAGE_SINT 2
#define S_MESSAGE_TYPE 0x123
/* tests/guests/probe_slow.c */
#define S_VECTOR_MSI 0x46
#define S_ROUNDS 20
#define S_SLOW_MS 300

/* ---- The probe: a device actor in the device host ----------------------------------- */

typedef struct {
    bool hyperv;  /* registers its synic ports */
    int delay_ms; /* each MMIO access takes this long: a slow device */
} s_probe_config_t;

typedef struct {
    s_probe_config_t cfg;
    uint8_t scratch[S_PROBE_SCRATCH_LEN];
    uint64_t guest_port; /* its guest event port's handle */
    /* What reached it, shown by Inspect. */
    uint64_t accesses, doorbells, doorbell_address, host_events, host_messages;
    uint32_t event_connection, event_flag;
    uint32_t message_connection, message_type, message_size, message_word;
} s_probe_t;

/* Sends env to `to` one-way when reply is NULL; else calls, taking an Error
 * reply as a failure (logged). Returns 0 or a negative errno. */
static int s_probe_send(rt_actor_t *self, const char *to, Vmm__Envelope *env, rt_msg_t *reply)
{
    if (!reply)
        return rt_send(self, to, env);
    int rc = rt_call(self, to, env, reply, S_TIMEOUT_MS);
    if (rc) {
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s: %s", to, strerror(-rc));
        return rc;
    }
    if (reply->env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s refused: %s", to,
               reply->env->error->text);
        rt_msg_release(reply);
        return -EPROTO;
    }
    return 0;
}

static int s_probe_partition(rt_actor_t *self, Vmm__Partition__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    return s_probe_send(self, VM_PARTITION, &env, reply);
}

static int s_probe_synic(rt_actor_t *self, Vmm__Synic__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    return s_probe_send(self, S_SYNIC, &env, reply);
}

/* The probe's MMIO range and IRQ line, reached at its own endpoint. */
static int s_probe_register(rt_actor_t *self)
{
    Vmm__MemoryRange range = VMM__MEMORY_RANGE__INIT;
    range.start = S_PROBE;
    range.end = S_PROBE + S_PROBE_LEN;
    Vmm__MemoryRange *ranges[] = {&range};
    uint32_t irq = S_PROBE_IRQ;
    char endpoint[S_ENDPOINT_MAX], key[41] = "";
    int rc = rt_endpoint_of(rt_actor_rt(self), rt_actor_name(self), endpoint, sizeof endpoint);
    if (rc)
        return rc;
    /* Over tcp:// the VM checks it reaches this host by its CURVE key. */
    if (!strncmp(endpoint, "tcp://", 6) &&
        (rc = rt_curve_public_key(rt_actor_rt(self), key, sizeof key)))
        return rc;
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.name = "probe";
    reg.n_mmio = 1;
    reg.mmio = ranges;
    reg.n_irq_lines = 1;
    reg.irq_lines = &irq;
    reg.required = true;
    reg.endpoint = endpoint;
    reg.server_key = key;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    rt_msg_t reply;
    if ((rc = s_probe_send(self, VM_PARTITION, &env, &reply)))
        return rc;
    rt_msg_release(&reply);

    Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    db.guest_address = S_PROBE + S_PROBE_DOORBELL;
    db.owner = "";
    Vmm__Partition__Request preq = VMM__PARTITION__REQUEST__INIT;
    preq.op_case = VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL;
    preq.register_doorbell = &db;
    if ((rc = s_probe_partition(self, &preq, &reply)))
        return rc;
    rt_msg_release(&reply);
    return 0;
}

/* The host event and message ports, targeting the probe, and a guest event
 * port it signals on command. */
static int s_probe_synic_ports(rt_actor_t *self, s_probe_t *p)
{
    Vmm__Synic__RegisterHostEventPort ev = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    ev.connection_id = S_EVENT_CONNECTION;
    ev.target = (char *)rt_actor_name(self);
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT;
    req.register_host_event_port = &ev;
    rt_msg_t reply;
    int rc = s_probe_synic(self, &req, &reply);
    if (rc)
        return rc;
    rt_msg_release(&reply);

    Vmm__Synic__RegisterHostMessagePort mp = VMM__SYNIC__REGISTER_HOST_MESSAGE_PORT__INIT;
    mp.connection_id = S_MESSAGE_CONNECTION;
    mp.target = (char *)rt_actor_name(self);
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT;
    req.register_host_message_port = &mp;
    if ((rc = s_probe_synic(self, &req, &reply)))
        return rc;
    rt_msg_release(&reply);

    Vmm__Synic__NewGuestEventPort gp = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    gp.sint = S_EVENT_SINT;
    gp.flag = S_EVENT_FLAG;
    req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
    req.new_guest_event_port = &gp;
    if ((rc = s_probe_synic(self, &req, &reply)))
        return rc;
    const Vmm__Synic__Reply *r = reply.env->synic_reply;
    rc = r && r->result_case == VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT ? 0 : -EPROTO;
    if (!rc)
        p->guest_port = r->guest_event_port->handle;
    rt_msg_release(&reply);
    return rc;
}

/* Runs a command, one-way; its message leaves before the write's Ack, so
 * that the guest waits for what it caused. */
static int s_probe_command(rt_actor_t *self, const Vmm__Envelope *msg, uint32_t command)
{
    s_probe_t *p = rt_actor_state(self);
    Vmm__Partition__AssertIrq irq = VMM__PARTITION__ASSERT_IRQ__INIT;
    Vmm__Partition__Request preq = VMM__PARTITION__REQUEST__INIT;
    Vmm__Synic__SignalGuestEventPort sig = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    Vmm__Synic__PostMessage post = VMM__SYNIC__POST_MESSAGE__INIT;
    Vmm__Synic__Request sreq = VMM__SYNIC__REQUEST__INIT;
    int rc;
    switch (command) {
    case S_CMD_IRQ:
        irq.irq = S_PROBE_IRQ;
        preq.op_case = VMM__PARTITION__REQUEST__OP_ASSERT_IRQ;
        preq.assert_irq = &irq;
        rc = s_probe_partition(self, &preq, NULL);
        break;
    case S_CMD_EVENT:
        sig.handle = p->guest_port;
        sreq.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
        sreq.signal_guest_event_port = &sig;
        rc = s_probe_synic(self, &sreq, NULL);
        break;
    case S_CMD_MESSAGE:
        post.sint = S_MESSAGE_SINT;
        post.message_type = S_MESSAGE_TYPE;
        post.payload = (ProtobufCBinaryData){sizeof p->scratch, p->scratch};
        sreq.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
        sreq.post_message = &post;
        rc = s_probe_synic(self, &sreq, NULL);
        break;
    default:
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "no probe command %u", command);
    }
    if (rc)
        return rt_reply_error(self, msg, rt_error_code(rc), "probe command %u: %s", command,
                              strerror(-rc));
    rt_flush(self);
    return rt_reply_ack(self, msg);
}

static int s_probe_on_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_probe_t *p = rt_actor_state(self);
    const Vmm__Devices__Request *req = msg->device_request;
    bool write = req->op_case == VMM__DEVICES__REQUEST__OP_WRITE_MMIO;
    if (!write && req->op_case != VMM__DEVICES__REQUEST__OP_READ_MMIO)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                              "the probe serves MMIO only");
    p->accesses++;
    if (p->cfg.delay_ms) {
        struct timespec delay = {p->cfg.delay_ms / 1000, p->cfg.delay_ms % 1000 * 1000000L};
        nanosleep(&delay, NULL);
    }
    uint64_t offset = (write ? req->write_mmio->address : req->read_mmio->address) - S_PROBE;
    size_t size = write ? req->write_mmio->data.len : req->read_mmio->size;
    const uint8_t *data = write ? req->write_mmio->data.data : NULL;
    if (write && offset == S_PROBE_COMMAND && size == 4)
        return s_probe_command(self, msg, (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                                              (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24);
    if (!size || offset >= S_PROBE_SCRATCH_LEN || size > S_PROBE_SCRATCH_LEN - offset)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "no %zu-byte %s register at offset 0x%llx", size,
                              write ? "writable" : "readable", (unsigned long long)offset);
    if (write) {
        memcpy(p->scratch + offset, data, size);
        return rt_reply_ack(self, msg);
    }
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){size, p->scratch + offset};
    Vmm__Devices__Reply rep = VMM__DEVICES__REPLY__INIT;
    rep.result_case = VMM__DEVICES__REPLY__RESULT_READ_MMIO;
    rep.read_mmio = &res;
    Vmm__Envelope out = VMM__ENVELOPE__INIT;
    out.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    out.device_reply = &rep;
    return rt_reply(self, msg, &out);
}

static int s_probe_on_partition_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_probe_t *p = rt_actor_state(self);
    const Vmm__Partition__Event *ev = msg->partition_event;
    if (ev->event_case == VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED) {
        p->doorbells++;
        p->doorbell_address = ev->doorbell_signalled->guest_address;
    }
    return 0;
}

static int s_probe_on_synic_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_probe_t *p = rt_actor_state(self);
    const Vmm__Synic__Event *ev = msg->synic_event;
    if (ev->event_case == VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED) {
        p->host_events++;
        p->event_connection = ev->host_event_signalled->connection_id;
        p->event_flag = ev->host_event_signalled->flag;
    } else if (ev->event_case == VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE) {
        const Vmm__Synic__HostMessage *m = ev->host_message;
        p->host_messages++;
        p->message_connection = m->connection_id;
        p->message_type = m->message_type;
        p->message_size = (uint32_t)m->payload.len;
        p->message_word = 0;
        memcpy(&p->message_word, m->payload.data,
               m->payload.len < sizeof p->message_word ? m->payload.len : sizeof p->message_word);
    }
    return 0;
}

static void s_probe_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    const s_probe_t *p = rt_actor_state(self);
    const struct {
        const char *name;
        unsigned long long value;
    } numbers[] = {
        {"accesses", p->accesses},
        {"doorbells", p->doorbells},
        {"doorbell_address", p->doorbell_address},
        {"host_events", p->host_events},
        {"event_connection", p->event_connection},
        {"event_flag", p->event_flag},
        {"host_messages", p->host_messages},
        {"message_connection", p->message_connection},
        {"message_type", p->message_type},
        {"message_size", p->message_size},
        {"message_word", p->message_word},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++)
        rt_inspect_add(node, numbers[i].name, "%llu", numbers[i].value);
}

/* Its synic ports first: a failure there leaves nothing registered with the
 * partition. */
static int s_probe_init(rt_actor_t *self, void *arg)
{
    s_probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->cfg = *(const s_probe_config_t *)arg;
    int rc = p->cfg.hyperv ? s_probe_synic_ports(self, p) : 0;
    if (!rc)
        rc = s_probe_register(self);
    if (rc) {
        free(p);
        return rc;
    }
    rt_actor_set_state(self, p);
    return 0;
}

static void s_probe_fini(rt_actor_t *self)
{
    free(rt_actor_state(self));
    rt_actor_set_state(self, NULL);
}

static const rt_handler_t s_probe_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_probe_on_request},
    {VMM__ENVELOPE__BODY_PARTITION_EVENT, s_probe_on_partition_event},
    {VMM__ENVELOPE__BODY_SYNIC_EVENT, s_probe_on_synic_event},
};

static const rt_actor_ops_t s_probe_ops = {
    .kind = "probe",
    .init = s_probe_init,
    .fini = s_probe_fini,
    .handlers = s_probe_handlers,
    .n_handlers = sizeof s_probe_handlers / sizeof *s_probe_handlers,
    .inspect = s_probe_inspect,
};

/* ---- The device host ------------------------------------------------------------- */

typedef enum { S_IPC, S_TCP } s_link_t;

typedef struct {
    s_link_t link;
    s_probe_config_t probe;
    char dir[64]; /* a private folder for the ipc:// endpoints */
    /* With tcp://, CURVE key pairs, made before the fork. */
    char vm_pub[41], vm_sec[41], host_pub[41], host_sec[41];
    pid_t pid;
    int go, ack; /* the partition's endpoint to the host; init's result back */
} s_host_t;

/* Where `name` listens on the host's link: a socket file in the private
 * folder, or a port the kernel picks. */
static void s_endpoint(const s_host_t *h, const char *name, char *buf, size_t size)
{
    if (h->link == S_TCP)
        snprintf(buf, size, "tcp://127.0.0.1:*");
    else
        snprintf(buf, size, "ipc://%s/%s", h->dir, name);
}

/* The runtime's config on either side of the link. */
static rt_config_t s_rt_config(const s_host_t *h, bool vm)
{
    rt_config_t cfg = {0};
    if (h->link == S_TCP) {
        cfg.curve_public_key = vm ? h->vm_pub : h->host_pub;
        cfg.curve_secret_key = vm ? h->vm_sec : h->host_sec;
    }
    return cfg;
}

/* Waits for the partition's endpoint, starts the probe in a runtime of its
 * own and answers with init's result; then lives until killed. */
static void __attribute__((noreturn)) s_host_main(const s_host_t *h)
{
    char partition[S_ENDPOINT_MAX];
    if (read(h->go, partition, sizeof partition) != sizeof partition)
        _exit(1);
    rt_config_t cfg = s_rt_config(h, false);
    rt_t *rt = rt_new(&cfg);
    const char *vm_key = h->link == S_TCP ? h->vm_pub : NULL;
    int rc = rt ? 0 : -ENOMEM;
    if (!rc && vm_key)
        rc = rt_peer_allow(rt, vm_key, "vm0/");
    if (!rc)
        rc = rt_directory_set_key(rt, VM_PARTITION, partition, vm_key);
    /* A device host knows the VM by its partition's endpoint alone (vmm
     * devhost --vm): it asks the synic there too. */
    if (!rc && h->probe.hyperv)
        rc = rt_directory_set_key(rt, S_SYNIC, partition, vm_key);
    rt_executor_t *ex = rc ? NULL : rt_executor_new(rt, "devhost");
    if (!rc && !ex)
        rc = -ENOMEM;
    if (!rc) {
        char endpoint[S_ENDPOINT_MAX];
        s_endpoint(h, "probe", endpoint, sizeof endpoint);
        s_probe_config_t probe = h->probe;
        rt_actor_spec_t spec = {.name = S_PROBE_ACTOR, .ops = &s_probe_ops, .arg = &probe,
                                .endpoint = endpoint};
        rc = rt_actor_start(ex, &spec);
    }
    if (write(h->ack, &rc, sizeof rc) != sizeof rc)
        _exit(1);
    for (;;)
        pause();
}

/* The test's device host and VM, ended by the suite's fini, also after a
 * failed assertion. */
static s_host_t s_host;
static vm_t *s_vm;

/* Forks the device host for the probe over the link; it dies with the
 * test. */
static void s_host_fork(s_link_t link, s_probe_config_t probe)
{
    vm_harness_need_kvm();
    s_host_t *h = &s_host;
    *h = (s_host_t){.link = link, .probe = probe};
    strcpy(h->dir, "/tmp/vmm-paths-XXXXXX");
    cr_assert_not_null(mkdtemp(h->dir));
    if (link == S_TCP) {
        cr_assert_eq(zmq_curve_keypair(h->vm_pub, h->vm_sec), 0);
        cr_assert_eq(zmq_curve_keypair(h->host_pub, h->host_sec), 0);
    }
    int go[2], ack[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(ack), 0);
    pid_t parent = getpid();
    h->pid = fork();
    cr_assert_geq(h->pid, 0);
    if (h->pid == 0) {
        close(go[1]);
        close(ack[0]);
        h->go = go[0];
        h->ack = ack[1];
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(1);
        s_host_main(h);
    }
    close(go[0]);
    close(ack[1]);
    h->go = go[1];
    h->ack = ack[0];
}

/* Ends the VM, kills the device host and removes its folder. */
static void s_teardown(void)
{
    vm_destroy(&s_vm);
    if (s_host.pid <= 0)
        return; /* skipped, or failed before the fork */
    kill(s_host.pid, SIGKILL);
    waitpid(s_host.pid, NULL, 0);
    close(s_host.go);
    close(s_host.ack);
    static const char *const files[] = {"partition", "probe"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", s_host.dir, files[i]);
        unlink(path);
    }
    rmdir(s_host.dir);
}

TestSuite(paths, .fini = s_teardown);

/* The VM, running the guest at path, its partition listening on the
 * host's link, with the probe registered from the device host. The chipset
 * devices (the test device among them) are on an executor of their own:
 * on VP 0's, the default, a VP's guest calls would wait while VP 0 waits
 * for the probe. */
static vm_t *s_vm_new(const char *path, uint32_t n_vps, bool hyperv)
{
    const s_host_t *h = &s_host;
    vm_harness_file_t file = vm_harness_read(path);
    char endpoint[S_ENDPOINT_MAX] = "";
    s_endpoint(h, "partition", endpoint, sizeof endpoint);
    rt_config_t rt = s_rt_config(h, true);
    vm_config_t cfg = {.elf = file.elf, .elf_len = file.len, .mem_size = 16u << 20,
                       .n_vps = n_vps, .serial_out = -1, .serial_in = -1,
                       .placement = VM_DEVICES_APART, .hyperv = hyperv,
                       .partition_endpoint = endpoint, .rt = &rt};
    char err[256] = "";
    vm_t *vm = s_vm = vm_new(&cfg, err, sizeof err);
    free(file.elf);
    cr_assert_not_null(vm, "vm_new: %s", err);
    if (h->link == S_TCP)
        cr_assert_eq(rt_peer_allow(vm_rt(vm), h->host_pub, "vm0/"), 0);
    cr_assert_eq(rt_endpoint_of(vm_rt(vm), VM_PARTITION, endpoint, sizeof endpoint), 0);
    cr_assert_eq(write(h->go, endpoint, sizeof endpoint), (ssize_t)sizeof endpoint);
    int rc;
    cr_assert_eq(read(h->ack, &rc, sizeof rc), (ssize_t)sizeof rc, "the device host died");
    cr_assert_eq(rc, 0, "the probe did not start in the device host: %s (its log says why)",
                 strerror(-rc));
    return vm;
}

/* ---- Helpers ---------------------------------------------------------------------- */

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Takes the next event, which must be sync point `point` with n more
 * arguments; returns the VP that made it. */
static uint32_t s_expect_sync(vm_t *vm, uint32_t point, uint32_t *args, size_t n)
{
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, S_TIMEOUT_MS), 0, "no sync point %u", point);
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead of sync point %u: %s", point,
                 ev.text);
    cr_assert_eq(ev.call, TESTDEV_CALL_SYNC, "guest call %u instead of sync point %u", ev.call,
                 point);
    cr_assert_eq(ev.n_args, n + 1);
    cr_assert_eq(ev.args[0], point, "sync point %u instead of %u", ev.args[0], point);
    if (n)
        memcpy(args, ev.args + 1, n * sizeof *args);
    return ev.vp;
}

/* A partition request from the VM's client; asserts an Ack. */
static void s_partition_ack(vm_t *vm, Vmm__Partition__Request *req)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(vm_client(vm), VM_PARTITION, &env, &reply, S_TIMEOUT_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK, "%s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "not an Ack");
    rt_msg_release(&reply);
}

/* The probe's introspection number `key`, once it is want (the probe takes
 * events when its loop comes to them), or its value after S_TIMEOUT_MS. */
static long long s_probe_number(vm_t *vm, const char *key, long long want)
{
    long long value = -1;
    for (int ms = 0; ms < S_TIMEOUT_MS; ms += 5) {
        if ((value = echo_inspect_number(vm_client(vm), S_PROBE_ACTOR, key)) == want)
            break;
        struct timespec pause = {0, 5 * 1000000};
        nanosleep(&pause, NULL);
    }
    return value;
}

/* ---- MMIO, a doorbell, an IRQ line -------------------------------------------------- */

/* tests/guests/probe: what it reported and what the probe and VP 0 saw. */
typedef struct {
    uint32_t mmio[4]; /* the scratch read whole (low, high), its high half, byte 1 */
    uint32_t vector;
    long long doorbells, doorbell_address, accesses, mmio_exits;
} s_probe_run_t;

static void s_run_probe(s_link_t link, s_probe_run_t *r)
{
    s_host_fork(link, (s_probe_config_t){0});
    vm_t *vm = s_vm_new("tests/guests/probe", 1, false);
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = S_MSI_ADDRESS;
    msi.data = S_VECTOR_IRQ;
    Vmm__Partition__SetIrqRoute route = VMM__PARTITION__SET_IRQ_ROUTE__INIT;
    route.irq = S_PROBE_IRQ;
    route.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_IRQ_ROUTE;
    req.set_irq_route = &route;
    s_partition_ack(vm, &req);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, 1, r->mmio, 4);
    s_expect_sync(vm, 2, NULL, 0);
    r->doorbells = s_probe_number(vm, "doorbells", 1);
    r->doorbell_address = echo_inspect_number(vm_client(vm), S_PROBE_ACTOR, "doorbell_address");
    s_expect_sync(vm, 3, &r->vector, 1);
    r->accesses = echo_inspect_number(vm_client(vm), S_PROBE_ACTOR, "accesses");
    r->mmio_exits = echo_inspect_number(vm_client(vm), "vm0/vp/0", "mmio_exits");
}

static void s_mmio(s_link_t link)
{
    s_probe_run_t r;
    s_run_probe(link, &r);
    cr_expect_eq(r.mmio[0], 0x55667788, "the scratch's low half, read whole");
    cr_expect_eq(r.mmio[1], 0x11223344, "its high half, read whole");
    cr_expect_eq(r.mmio[2], 0x11223344, "its high half, read alone");
    cr_expect_eq(r.mmio[3], 0x77, "its byte 1");
    cr_expect_eq(r.accesses, 5, "a write, three reads and the command reached the probe");
}

Test(paths, mmio_reaches_a_device_in_a_device_host_over_ipc)
{
    s_mmio(S_IPC);
}

Test(paths, mmio_reaches_a_device_in_a_device_host_over_tcp)
{
    s_mmio(S_TCP);
}

static void s_doorbell(s_link_t link)
{
    s_probe_run_t r;
    s_run_probe(link, &r);
    cr_expect_eq(r.doorbells, 1, "the probe heard its doorbell once");
    cr_expect_eq(r.doorbell_address, S_PROBE + S_PROBE_DOORBELL);
    cr_expect_eq(r.mmio_exits, 5, "the doorbell's write did not leave the kernel");
}

Test(paths, a_doorbell_signals_a_device_in_a_device_host_over_ipc)
{
    s_doorbell(S_IPC);
}

Test(paths, a_doorbell_signals_a_device_in_a_device_host_over_tcp)
{
    s_doorbell(S_TCP);
}

static void s_irq(s_link_t link)
{
    s_probe_run_t r;
    s_run_probe(link, &r);
    cr_expect_eq(r.vector, S_VECTOR_IRQ, "the guest took vector 0x%x", r.vector);
}

Test(paths, an_irq_line_a_device_host_asserts_interrupts_the_guest_over_ipc)
{
    s_irq(S_IPC);
}

Test(paths, an_irq_line_a_device_host_asserts_interrupts_the_guest_over_tcp)
{
    s_irq(S_TCP);
}

/* ---- The synic's ports, both ways ----------------------------------------------------- */

/* tests/guests/probe_hv: what it reported and what the probe heard. */
typedef struct {
    uint32_t status[2];  /* HvSignalEvent's, HvPostMessage's */
    uint32_t event[2];   /* the event's vector, the SINT's event flags */
    uint32_t message[4]; /* vector, type, payload size, first payload word */
    long long host_events, event_connection, event_flag;
    long long host_messages, message_connection, message_type, message_size, message_word;
} s_hv_run_t;

static void s_run_hv(s_link_t link, s_hv_run_t *r)
{
    s_host_fork(link, (s_probe_config_t){.hyperv = true});
    vm_t *vm = s_vm_new("tests/guests/probe_hv", 1, true);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, 1, r->status, 2);
    r->host_events = s_probe_number(vm, "host_events", 1);
    r->host_messages = s_probe_number(vm, "host_messages", 1);
    const struct {
        const char *key;
        long long *value;
    } numbers[] = {
        {"event_connection", &r->event_connection},
        {"event_flag", &r->event_flag},
        {"message_connection", &r->message_connection},
        {"message_type", &r->message_type},
        {"message_size", &r->message_size},
        {"message_word", &r->message_word},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++)
        *numbers[i].value = echo_inspect_number(vm_client(vm), S_PROBE_ACTOR, numbers[i].key);
    s_expect_sync(vm, 2, r->event, 2);
    s_expect_sync(vm, 3, r->message, 4);
}

static void s_guest_to_host(s_link_t link)
{
    s_hv_run_t r;
    s_run_hv(link, &r);
    cr_expect_eq(r.status[0], 0, "HvSignalEvent's status");
    cr_expect_eq(r.status[1], 0, "HvPostMessage's status");
    cr_expect_eq(r.host_events, 1, "the probe heard the event once");
    cr_expect_eq(r.event_connection, S_EVENT_CONNECTION);
    cr_expect_eq(r.event_flag, 3);
    cr_expect_eq(r.host_messages, 1, "the probe got the message once");
    cr_expect_eq(r.message_connection, S_MESSAGE_CONNECTION);
    cr_expect_eq(r.message_type, 1);
    cr_expect_eq(r.message_size, 4);
    cr_expect_eq(r.message_word, 'p' | 'i' << 8 | 'n' << 16 | 'g' << 24, "\"ping\"");
}

Test(paths, hv_signal_event_and_post_message_reach_a_device_host_over_ipc)
{
    s_guest_to_host(S_IPC);
}

Test(paths, hv_signal_event_and_post_message_reach_a_device_host_over_tcp)
{
    s_guest_to_host(S_TCP);
}

static void s_host_to_guest(s_link_t link)
{
    s_hv_run_t r;
    s_run_hv(link, &r);
    cr_expect_eq(r.event[0], S_VECTOR_EVENT, "the event port's SINT");
    cr_expect_eq(r.event[1], 1u << S_EVENT_FLAG, "its flag set in the SIEFP page");
    cr_expect_eq(r.message[0], S_VECTOR_MESSAGE, "the message's SINT");
    cr_expect_eq(r.message[1], S_MESSAGE_TYPE);
    cr_expect_eq(r.message[2], S_PROBE_SCRATCH_LEN, "the scratch bytes as payload");
    cr_expect_eq(r.message[3], 0xfeedface);
}

Test(paths, a_device_host_signals_a_guest_event_port_and_posts_a_message_over_ipc)
{
    s_host_to_guest(S_IPC);
}

Test(paths, a_device_host_signals_a_guest_event_port_and_posts_a_message_over_tcp)
{
    s_host_to_guest(S_TCP);
}

/* ---- A slow device ----------------------------------------------------------------------- */

/* The ms an actor takes to answer an Inspect. */
static double s_inspect_ms(vm_t *vm, const char *actor, const char *key)
{
    double t0 = s_now_ms();
    cr_assert_geq(echo_inspect_number(vm_client(vm), actor, key), 0, "%s has no %s", actor, key);
    return s_now_ms() - t0;
}

/* tests/guests/probe_slow, its probe taking S_SLOW_MS per access: while
 * VP 0 reads it, the partition and the synic answer the test and VP 1
 * takes an MSI and goes round through the synic and the test device, each
 * step well within one of VP 0's accesses. */
static void s_slow(s_link_t link)
{
    s_host_fork(link, (s_probe_config_t){.delay_ms = S_SLOW_MS});
    vm_t *vm = s_vm_new("tests/guests/probe_slow", 2, true);
    /* The client's first request to the synic sets up its route: not what
     * is timed below. */
    s_inspect_ms(vm, S_SYNIC, "msis");
    cr_assert_eq(vm_start(vm), 0);
    /* VP 0 reports before its reads, VP 1 once VP 0 has begun them. */
    cr_assert_eq(s_expect_sync(vm, 1, NULL, 0), 0);
    double reading = s_now_ms();
    cr_assert_eq(s_expect_sync(vm, 1, NULL, 0), 1);

    double partition_ms = s_inspect_ms(vm, VM_PARTITION, "devices");
    double synic_ms = s_inspect_ms(vm, S_SYNIC, "msis");
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = S_MSI_ADDRESS | 1u << 12; /* APIC id 1 */
    msi.data = S_VECTOR_MSI;
    Vmm__Partition__RequestMsi rm = VMM__PARTITION__REQUEST_MSI__INIT;
    rm.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    req.request_msi = &rm;
    double last = s_now_ms();
    s_partition_ack(vm, &req);
    double msi_ms = s_now_ms() - last;
    cr_expect_lt(partition_ms, S_PROMPT_MS, "the partition's Inspect took %.1f ms", partition_ms);
    cr_expect_lt(synic_ms, S_PROMPT_MS, "the synic's Inspect took %.1f ms", synic_ms);
    cr_expect_lt(msi_ms, S_PROMPT_MS, "RequestMsi took %.1f ms", msi_ms);

    /* Each of VP 1's rounds: an MSR and a hypercall (the synic), five port
     * writes (the test device); the first waited for the MSI too. */
    double longest = 0;
    for (uint32_t round = 1; round <= S_ROUNDS; round++) {
        uint32_t a[4];
        cr_assert_eq(s_expect_sync(vm, 2, a, 4), 1);
        double now = s_now_ms();
        longest = now - last > longest ? now - last : longest;
        last = now;
        cr_expect_eq(a[0], round);
        cr_expect_eq(a[1], 1, "VP_INDEX");
        cr_expect_eq(a[2], 0x12, "HvSignalEvent to nobody's connection: INVALID_CONNECTION_ID");
        cr_expect_eq(a[3], 1, "the MSI, once");
    }
    cr_expect_lt(longest, S_PROMPT_MS, "a round of VP 1 took %.1f ms", longest);

    uint32_t reads;
    cr_assert_eq(s_expect_sync(vm, 3, &reads, 1), 0);
    double stuck = s_now_ms() - reading;
    cr_expect_geq(reads, 1);
    cr_expect_geq(stuck, reads * S_SLOW_MS * 0.9, "VP 0's %u reads took %.0f ms", reads, stuck);
    /* Figures, not targets. */
    printf("%s: while VP 0 made %u reads of %d ms: partition %.1f ms, synic %.1f ms, "
           "RequestMsi %.1f ms, VP 1's longest round %.1f ms\n",
           link == S_TCP ? "tcp" : "ipc", reads, S_SLOW_MS, partition_ms, synic_ms, msi_ms,
           longest);
}

Test(paths, a_slow_device_stalls_only_the_vp_that_touches_it_over_ipc)
{
    s_slow(S_IPC);
}

Test(paths, a_slow_device_stalls_only_the_vp_that_touches_it_over_tcp)
{
    s_slow(S_TCP);
}
