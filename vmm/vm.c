#include "vmm/vm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/console/console.h"
#include "actors/control/control.h"
#include "actors/gdb/gdb.h"
#include "vmm/snapshot.h"
#include "actors/devices/debug_exit.h"
#include "actors/devices/bochs_shutdown.h"
#include "actors/devices/device_actor.h"
#include "actors/devices/fw_cfg.h"
#include "actors/devices/hyperv_testdev.h"
#include "actors/devices/i8042.h"
#include "actors/devices/pc_testdev.h"
#include "actors/devices/power.h"
#include "actors/devices/rtc.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/testdev_abi.h"
#include "actors/partition/partition.h"
#include "actors/vp/vp.h"
#include "loader/loader.h"

#define S_CALL_TIMEOUT_MS 10000
#define S_CONSOLE "vm0/console/com1"
#define S_COM1 "vm0/dev/com1"
#define S_SYNIC "vm0/synic" /* the partition starts it with the Hyper-V interface */
/* The largest piece of guest memory one message writes (devices.proto). */
#define S_WRITE_PIECE 65536
/* Guest RAM ends below the 32-bit MMIO gap (IO-APIC, local APIC). */
#define S_MMIO_GAP_START (3ull << 30)
#define S_MMIO_GAP_END (4ull << 30)

struct vm_s {
    rt_t *rt;
    rt_executor_t *partition_ex, *devices_ex, *console_ex;
    rt_executor_t **vp_ex;
    uint32_t n_vps;
    rt_client_t *client;
    loader_image_t *image; /* kept to load again after a reset */
    bool debugger;         /* the VPs start when the debugger says */
    Vmm__Snapshot__Machine *machine; /* for snapshots; NULL: refused */
};

static int __attribute__((format(printf, 4, 5)))
s_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* A call from the VM's client; an Error reply becomes rc with its text. */
static int s_call(vm_t *vm, const char *to, Vmm__Envelope *env, rt_msg_t *reply, char *err,
                  size_t errlen)
{
    int rc = rt_call(rt_client_actor(vm->client), to, env, reply, S_CALL_TIMEOUT_MS);
    if (rc)
        return s_fail(err, errlen, rc, "%s did not answer: %s", to, strerror(-rc));
    if (reply->env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        snprintf(err, errlen, "%s", reply->env->error->text);
        rt_msg_release(reply);
        return -EIO;
    }
    return 0;
}

static int s_partition(vm_t *vm, Vmm__Partition__Request *req, rt_msg_t *reply, char *err,
                       size_t errlen)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    return s_call(vm, VM_PARTITION, &env, reply, err, errlen);
}

static void s_vp_name(uint32_t vp, char *buf, size_t size)
{
    snprintf(buf, size, "vm0/vp/%u", vp);
}

static int s_vp(vm_t *vm, uint32_t vp, Vmm__Vp__Request *req, char *err, size_t errlen)
{
    char name[32];
    s_vp_name(vp, name, sizeof name);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = req;
    rt_msg_t reply;
    int rc = s_call(vm, name, &env, &reply, err, errlen);
    if (!rc)
        rt_msg_release(&reply);
    return rc;
}

/* ---- Building ---------------------------------------------------------------- */

static int s_new_partition(vm_t *vm, bool hyperv, bool pc, char *err, size_t errlen)
{
    Vmm__Partition__IsAvailable avail = VMM__PARTITION__IS_AVAILABLE__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_IS_AVAILABLE;
    req.is_available = &avail;
    rt_msg_t reply;
    int rc = s_partition(vm, &req, &reply, err, errlen);
    if (rc)
        return rc;
    const Vmm__Partition__Availability *a = reply.env->partition_reply->availability;
    if (!a->available)
        rc = s_fail(err, errlen, -ENODEV, "KVM is not available: %s", a->missing);
    rt_msg_release(&reply);
    if (rc)
        return rc;

    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    topo.vp_count = vm->n_vps;
    Vmm__Partition__HvConfig hv = VMM__PARTITION__HV_CONFIG__INIT;
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    np.processor_topology = &topo;
    np.hv_config = hyperv ? &hv : NULL;
    np.bios_state = pc;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_PARTITION;
    req.new_partition = &np;
    rc = s_partition(vm, &req, &reply, err, errlen);
    if (!rc)
        rt_msg_release(&reply);
    return rc;
}

/* Builds the partition with the RAM the image was made for. */
static int s_build(vm_t *vm, char *err, size_t errlen)
{
    size_t n_ram;
    const loader_range_t *ranges = loader_image_ram(vm->image, &n_ram);
    Vmm__MemoryRange ram_range[LOADER_MAX_RAM];
    Vmm__Partition__RamRange ram[LOADER_MAX_RAM];
    Vmm__Partition__RamRange *rams[LOADER_MAX_RAM];
    for (size_t i = 0; i < n_ram; i++) {
        vmm__memory_range__init(&ram_range[i]);
        ram_range[i].start = ranges[i].start;
        ram_range[i].end = ranges[i].end;
        vmm__partition__ram_range__init(&ram[i]);
        ram[i].range = &ram_range[i];
        rams[i] = &ram[i];
    }
    Vmm__MemoryRange gap = VMM__MEMORY_RANGE__INIT;
    gap.start = S_MMIO_GAP_START;
    gap.end = S_MMIO_GAP_END;
    Vmm__MemoryRange *gaps[] = {&gap};
    Vmm__Partition__MemoryLayout layout = VMM__PARTITION__MEMORY_LAYOUT__INIT;
    layout.n_ram = n_ram;
    layout.ram = rams;
    layout.n_mmio = 1;
    layout.mmio = gaps;
    Vmm__Partition__Build build = VMM__PARTITION__BUILD__INIT;
    build.mem_layout = &layout;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_BUILD;
    req.build = &build;
    rt_msg_t reply;
    int rc = s_partition(vm, &req, &reply, err, errlen);
    if (!rc)
        rt_msg_release(&reply);
    return rc;
}

/* Whether the chipset device `actor` ("vm0/dev/<name>") is served by a
 * device host. */
static bool s_elsewhere(const vm_config_t *cfg, const char *actor)
{
    const char *name = actor + strlen("vm0/dev/");
    for (size_t i = 0; i < cfg->n_elsewhere; i++)
        if (!strcmp(cfg->elsewhere[i], name))
            return true;
    return false;
}

/* A device's console, on the consoles' executor (made by the first). */
static int s_start_console(vm_t *vm, const char *name, const char *device, int out_fd,
                           int in_fd, char *err, size_t errlen)
{
    if (!vm->console_ex && !(vm->console_ex = rt_executor_new(vm->rt, "vm0/console")))
        return s_fail(err, errlen, -ENOMEM, "cannot start %s", name);
    console_config_t console = {.device = device, .out_fd = out_fd, .in_fd = in_fd};
    rt_actor_spec_t spec = {.name = name, .ops = &console_ops, .arg = &console};
    int rc = rt_actor_start(vm->console_ex, &spec);
    return rc ? s_fail(err, errlen, rc, "cannot start %s: %s", name, strerror(-rc)) : 0;
}

/* Starts a device actor around a model; it registers with the partition
 * and tells the client how that went. */
static int s_start_device(rt_executor_t *ex, const vm_device_t *d, const char *console,
                          const char *synic, char *err, size_t errlen)
{
    device_actor_config_t cfg = {.new_model = d->new_model, .model_config = d->model_config,
                                 .model_args = d->model_args,
                                 .partition = VM_PARTITION, .owner = VM_CLIENT,
                                 .guest_calls = d->guest_calls, .console = console,
                                 .synic = synic, .doorbell_fds = true};
    rt_actor_spec_t spec = {.name = d->name, .ops = &device_actor_ops, .arg = &cfg};
    int rc = rt_actor_start(ex, &spec);
    return rc ? s_fail(err, errlen, rc, "cannot start %s: %s", d->name, strerror(-rc)) : 0;
}

/* Where the devices and the caller's actors go. */
static rt_executor_t *s_devices_ex(vm_t *vm)
{
    return vm->devices_ex ? vm->devices_ex : vm->vp_ex[0];
}

/* The chipset and the caller's devices: returns once every device has
 * registered. Before Build, when the partition answers a registration at
 * once; after, it would first have each VP take the new routes. */
static int s_start_devices(vm_t *vm, const vm_config_t *cfg, char *err, size_t errlen)
{
    rt_executor_t *ex = s_devices_ex(vm);
    /* A kernel written for QEMU writes its status with outl, as to QEMU's
     * isa-debug-exit,iobase=0xf4,iosize=4. */
    static const dev_debug_exit_config_t debug_exit_pc = {.port = 0xf4, .size = 4};
    const vm_device_t base[] = {
        {.name = S_COM1, .new_model = dev_serial_new},
        {.name = "vm0/dev/debug-exit", .new_model = dev_debug_exit_new,
         .model_config = cfg->kernel ? &debug_exit_pc : NULL},
        {.name = "vm0/dev/i8042", .new_model = dev_i8042_new},
        {.name = "vm0/dev/pm1a", .new_model = dev_power_new},
        {.name = "vm0/dev/testdev", .new_model = dev_testdev_new},
    };
    /* A PC's for a kernel: what QEMU's pc machine gives one. */
    const loader_pc_t *pc = loader_image_pc(vm->image);
    uint8_t e820[20 * LOADER_MAX_E820];
    dev_fw_cfg_file_t files[] = {
        {.name = "etc/e820", .bytes = e820,
         .len = pc ? loader_pc_e820_file(pc, e820, sizeof e820) : 0},
    };
    dev_fw_cfg_config_t fw_cfg = {.n_cpus = (uint16_t)vm->n_vps,
                                  .ram_size = pc ? pc->mem_size : 0,
                                  .files = files,
                                  .n_files = sizeof files / sizeof *files};
    dev_rtc_config_t rtc = {.ram_below_4g = pc ? pc->below_4g : 0,
                            .ram_above_4g = pc ? pc->above_4g : 0,
                            .n_cpus = vm->n_vps};
    const vm_device_t pc_devices[] = {
        {.name = "vm0/dev/rtc", .new_model = dev_rtc_new, .model_config = &rtc},
        {.name = "vm0/dev/fw-cfg", .new_model = dev_fw_cfg_new, .model_config = &fw_cfg},
        {.name = "vm0/dev/bochs-shutdown", .new_model = dev_bochs_shutdown_new},
        {.name = "vm0/dev/pc-testdev", .new_model = dev_pc_testdev_new},
        {.name = "vm0/dev/hyperv-testdev", .new_model = dev_hyperv_testdev_new},
    };
    vm_device_t chipset[sizeof base / sizeof *base + sizeof pc_devices / sizeof *pc_devices];
    size_t n_chipset = 0;
    for (size_t i = 0; i < sizeof base / sizeof *base; i++)
        chipset[n_chipset++] = base[i];
    for (size_t i = 0; pc && i < sizeof pc_devices / sizeof *pc_devices; i++)
        chipset[n_chipset++] = pc_devices[i];
    size_t started = 0;
    int rc = 0;
    bool com1 = !s_elsewhere(cfg, S_COM1);
    const char *console = com1 && (cfg->serial_out >= 0 || cfg->serial_in >= 0) ? S_CONSOLE
                                                                                : NULL;
    if (console)
        rc = s_start_console(vm, S_CONSOLE, S_COM1, cfg->serial_out, cfg->serial_in, err,
                             errlen);
    for (size_t i = 0; !rc && i < n_chipset + cfg->n_devices; i++) {
        const vm_device_t *d = i < n_chipset ? &chipset[i] : &cfg->devices[i - n_chipset];
        if (i < n_chipset && s_elsewhere(cfg, d->name))
            continue;
        char own[256];
        const char *its = d->new_model == dev_serial_new ? console : NULL;
        if (d->console) {
            snprintf(own, sizeof own, "%s/console", d->name);
            rc = s_start_console(vm, own, d->name, d->console->out_fd, d->console->in_fd, err,
                                 errlen);
            its = own;
        }
        if (!rc)
            rc = s_start_device(ex, d, its, cfg->hyperv ? S_SYNIC : NULL, err, errlen);
        started += !rc;
    }
    /* Those started register even when a later one failed: wait for them
     * all the same, so that nothing of theirs is left in the client. */
    char why[256];
    int wait_rc = device_actor_wait_registered(vm->client, started, S_CALL_TIMEOUT_MS, why,
                                               sizeof why);
    if (!rc && wait_rc)
        rc = s_fail(err, errlen, wait_rc, "%s", why);
    return rc;
}

static int s_write_memory(vm_t *vm, uint64_t gpa, const uint8_t *bytes, size_t len, char *err,
                          size_t errlen)
{
    for (size_t done = 0; done < len;) {
        size_t n = len - done < S_WRITE_PIECE ? len - done : S_WRITE_PIECE;
        Vmm__Devices__WriteGuestMemory w = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
        w.gpa = gpa + done;
        w.data = (ProtobufCBinaryData){n, (uint8_t *)bytes + done};
        Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
        req.write_guest_memory = &w;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
        env.device_request = &req;
        rt_msg_t reply;
        int rc = s_call(vm, VM_PARTITION, &env, &reply, err, errlen);
        if (rc)
            return rc;
        rt_msg_release(&reply);
        done += n;
    }
    return 0;
}

/* The hvdef attribute layout of vp.proto's SegmentRegister. */
static void s_segment(const loader_segment_t *in, Vmm__Vp__SegmentRegister *out)
{
    vmm__vp__segment_register__init(out);
    out->base_address = in->base;
    out->limit = in->limit;
    out->selector = in->selector;
    bool present = in->present && !in->unusable;
    out->attributes = (in->type & 0xfu) | (uint32_t)(in->s & 1) << 4 |
                      (uint32_t)(in->dpl & 3) << 5 | (uint32_t)present << 7 |
                      (uint32_t)(in->avl & 1) << 12 | (uint32_t)(in->l & 1) << 13 |
                      (uint32_t)(in->db & 1) << 14 | (uint32_t)(in->g & 1) << 15;
}

static int s_set_boot_state(vm_t *vm, uint32_t vp, const loader_vp_state_t *st, char *err,
                            size_t errlen)
{
    Vmm__Vp__GeneralRegisters gr = VMM__VP__GENERAL_REGISTERS__INIT;
    gr.rip = st->rip, gr.rsp = st->rsp, gr.rflags = st->rflags;
    gr.rax = st->rax, gr.rbx = st->rbx, gr.rsi = st->rsi, gr.rdi = st->rdi;
    Vmm__Vp__SegmentRegister seg[8];
    const loader_segment_t *in[8] = {&st->cs, &st->ds, &st->es, &st->fs,
                                     &st->gs, &st->ss, &st->tr, &st->ldt};
    for (int i = 0; i < 8; i++)
        s_segment(in[i], &seg[i]);
    Vmm__Vp__TableRegister gdt = VMM__VP__TABLE_REGISTER__INIT, idt = VMM__VP__TABLE_REGISTER__INIT;
    gdt.base_address = st->gdt.base, gdt.limit = st->gdt.limit;
    idt.base_address = st->idt.base, idt.limit = st->idt.limit;
    Vmm__Vp__Segments segs = VMM__VP__SEGMENTS__INIT;
    segs.cs = &seg[0], segs.ds = &seg[1], segs.es = &seg[2], segs.fs = &seg[3];
    segs.gs = &seg[4], segs.ss = &seg[5], segs.tr = &seg[6], segs.ldtr = &seg[7];
    segs.gdtr = &gdt, segs.idtr = &idt;
    Vmm__Vp__ControlRegisters cr = VMM__VP__CONTROL_REGISTERS__INIT;
    cr.cr0 = st->cr0, cr.cr3 = st->cr3, cr.cr4 = st->cr4, cr.efer = st->efer;
    Vmm__Vp__VpState state = VMM__VP__VP_STATE__INIT;
    state.general_registers = &gr;
    state.segments = &segs;
    state.control_registers = &cr;
    Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
    set.state = &state;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    req.set_state = &set;
    return s_vp(vm, vp, &req, err, errlen);
}

/* Copies the guest image into RAM and sets the start state of every VP
 * that starts at once (a kernel's others wait for INIT/SIPI). */
static int s_load(vm_t *vm, char *err, size_t errlen)
{
    size_t n;
    const loader_chunk_t *chunks = loader_image_chunks(vm->image, &n);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = s_write_memory(vm, chunks[i].gpa, chunks[i].bytes, chunks[i].len, err, errlen);
    for (uint32_t vp = 0; !rc && vp < vm->n_vps; vp++) {
        const loader_vp_state_t *st = loader_image_vp(vm->image, vp);
        if (st)
            rc = s_set_boot_state(vm, vp, st, err, errlen);
    }
    return rc;
}

/* The guest image: cfg's kernel on a PC, else its ELF. */
static loader_image_t *s_image(const vm_config_t *cfg, uint64_t mem_size, uint32_t n_vps,
                               char *err, size_t errlen)
{
    char why[240] = "";
    loader_image_t *image;
    if (cfg->kernel) {
        loader_kernel_config_t k = *cfg->kernel;
        k.mem_size = mem_size;
        k.n_vps = n_vps;
        image = loader_kernel_new(&k, why, sizeof why);
    } else {
        image = loader_image_new(cfg->elf, cfg->elf_len, mem_size, n_vps, why, sizeof why);
    }
    if (!image) {
        int code = errno;
        s_fail(err, errlen, -code, "the %s cannot be loaded: %s",
               cfg->kernel ? "kernel" : "guest", why);
        errno = code;
    }
    return image;
}

/* The control endpoint, on an executor of its own: an operator's request
 * that waits for a VP holds up nobody else. */
static int s_start_control(vm_t *vm, const vm_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->control_endpoint)
        return 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < cfg->n_operator_keys; i++)
        rc = rt_peer_allow(vm->rt, cfg->operator_keys[i], VM_CONTROL);
    if (rc)
        return s_fail(err, errlen, rc, "cannot admit the operators' keys: %s", strerror(-rc));
    rt_executor_t *ex = rt_executor_new(vm->rt, VM_CONTROL);
    if (!ex)
        return s_fail(err, errlen, -ENOMEM, "cannot start the control endpoint's thread");
    control_config_t cc = {.vm = "vm0", .owner = VM_CLIENT, .n_vps = vm->n_vps,
                           .operator_keys = cfg->operator_keys,
                           .n_operator_keys = cfg->n_operator_keys};
    rt_actor_spec_t spec = {.name = VM_CONTROL, .ops = &control_ops, .arg = &cc,
                            .endpoint = cfg->control_endpoint};
    if ((rc = rt_actor_start(ex, &spec)))
        return s_fail(err, errlen, rc, "the control endpoint cannot listen on %s: %s",
                      cfg->control_endpoint, strerror(-rc));
    return 0;
}

/* A copy of m, as the VM keeps it for its snapshots. */
static Vmm__Snapshot__Machine *s_machine_copy(const Vmm__Snapshot__Machine *m)
{
    size_t len = vmm__snapshot__machine__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    vmm__snapshot__machine__pack(m, buf);
    Vmm__Snapshot__Machine *copy = vmm__snapshot__machine__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

/* The debugger, on an executor of its own. */
static int s_start_gdb(vm_t *vm, const vm_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->gdb)
        return 0;
    rt_executor_t *ex = rt_executor_new(vm->rt, VM_GDB);
    if (!ex)
        return s_fail(err, errlen, -ENOMEM, "cannot start the debugger's thread");
    gdb_config_t gc = {.vm = "vm0", .owner = VM_CLIENT, .n_vps = vm->n_vps,
                       .listen_fd = cfg->gdb_listen_fd};
    rt_actor_spec_t spec = {.name = VM_GDB, .ops = &gdb_ops, .arg = &gc};
    int rc = rt_actor_start(ex, &spec);
    if (rc)
        return s_fail(err, errlen, rc, "cannot start the debugger: %s", strerror(-rc));
    vm->debugger = true;
    return 0;
}

vm_t *vm_new(const vm_config_t *cfg, char *err, size_t errlen)
{
    uint64_t mem_size = cfg->mem_size ? cfg->mem_size : VM_DEFAULT_MEM;
    vm_t *vm = calloc(1, sizeof *vm);
    if (!vm) {
        s_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    vm->n_vps = cfg->n_vps ? cfg->n_vps : 1;
    int rc = -ENOMEM;
    vm->rt = rt_new(cfg->rt);
    vm->vp_ex = calloc(vm->n_vps, sizeof *vm->vp_ex);
    if (!vm->rt || !vm->vp_ex)
        goto fail;
    /* Before any actor: the trace sees each start. */
    if (cfg->trace && (rc = rt_trace_start(vm->rt, cfg->trace, err, errlen)))
        goto fail;
    vm->partition_ex = rt_executor_new(vm->rt, "vm0/partition");
    for (uint32_t i = 0; vm->partition_ex && i < vm->n_vps; i++) {
        char name[32];
        s_vp_name(i, name, sizeof name);
        if (!(vm->vp_ex[i] = rt_executor_new(vm->rt, name)))
            goto fail;
    }
    if (cfg->placement == VM_DEVICES_APART)
        vm->devices_ex = rt_executor_new(vm->rt, "vm0/devices");
    vm->client = rt_client_new(vm->rt, VM_CLIENT);
    if (!vm->partition_ex || (cfg->placement == VM_DEVICES_APART && !vm->devices_ex) ||
        !vm->client)
        goto fail;

    partition_config_t pcfg = {.vm = "vm0", .vp_executors = vm->vp_ex, .n_vp_executors = vm->n_vps};
    rt_actor_spec_t spec = {.name = VM_PARTITION, .ops = &partition_ops, .arg = &pcfg,
                            .endpoint = cfg->partition_endpoint};
    rc = rt_actor_start(vm->partition_ex, &spec);
    if (rc) {
        s_fail(err, errlen, rc, "cannot start the partition: %s", strerror(-rc));
        goto fail;
    }
    if (!(vm->image = s_image(cfg, mem_size, vm->n_vps, err, errlen))) {
        rc = -errno;
        goto fail;
    }
    if ((rc = s_new_partition(vm, cfg->hyperv, cfg->kernel != NULL, err, errlen)) ||
        (rc = s_start_devices(vm, cfg, err, errlen)) || (rc = s_build(vm, err, errlen)))
        goto fail;
    /* The caller's actors, once the VM (and its synic) exists. */
    for (size_t i = 0; i < cfg->n_actors; i++)
        if ((rc = rt_actor_start(s_devices_ex(vm), &cfg->actors[i]))) {
            s_fail(err, errlen, rc, "cannot start %s: %s", cfg->actors[i].name, strerror(-rc));
            goto fail;
        }
    if (!cfg->restore)
        rc = s_load(vm, err, errlen);
    else if (!(rc = snapshot_restore(vm_client(vm), VM_PARTITION, "vm0", cfg->restore,
                                     cfg->restore_dir, cfg->restore_copy, err, errlen)))
        rc = snapshot_restore_devices(vm_client(vm), cfg->restore, cfg->elsewhere,
                                      cfg->n_elsewhere, false, err, errlen);
    if (!rc && cfg->machine && !(vm->machine = s_machine_copy(cfg->machine)))
        rc = -ENOMEM;
    if (rc || (rc = s_start_control(vm, cfg, err, errlen)) ||
        (rc = s_start_gdb(vm, cfg, err, errlen)))
        goto fail;
    return vm;

fail:
    if (rc == -ENOMEM && !*err)
        s_fail(err, errlen, rc, "out of memory");
    vm_destroy(&vm);
    return NULL;
}

void vm_destroy(vm_t **vmp)
{
    vm_t *vm = *vmp;
    if (!vm)
        return;
    /* The VPs first: the partition unmaps guest RAM when it goes. VP 0's
     * last, since the devices may share its executor: no VP is left
     * waiting for a device that has gone. */
    for (uint32_t i = vm->n_vps; vm->vp_ex && i-- > 0;)
        rt_executor_destroy(&vm->vp_ex[i]);
    rt_executor_destroy(&vm->devices_ex);
    rt_destroy(&vm->rt);
    loader_image_destroy(&vm->image);
    if (vm->machine)
        vmm__snapshot__machine__free_unpacked(vm->machine, NULL);
    free(vm->vp_ex);
    free(vm);
    *vmp = NULL;
}

/* ---- Running ---------------------------------------------------------------- */

int vm_start(vm_t *vm)
{
    char err[160];
    for (uint32_t vp = 0; vp < vm->n_vps; vp++) {
        Vmm__Vp__Run run = VMM__VP__RUN__INIT;
        Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
        req.op_case = VMM__VP__REQUEST__OP_RUN;
        req.run = &run;
        int rc = s_vp(vm, vp, &req, err, sizeof err);
        if (rc)
            return rc;
    }
    return 0;
}

int vm_stop(vm_t *vm)
{
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_STOP;
    req.stop = &stop;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    int rc = 0;
    for (uint32_t vp = 0; vp < vm->n_vps && !rc; vp++) {
        char name[32];
        s_vp_name(vp, name, sizeof name);
        rc = rt_send(vm_client(vm), name, &env);
    }
    rt_flush(vm_client(vm));
    return rc;
}

int vm_reset(vm_t *vm, char *err, size_t errlen)
{
    Vmm__Partition__Reset op = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &op;
    rt_msg_t reply;
    int rc = s_partition(vm, &req, &reply, err, errlen);
    if (rc)
        return rc;
    rt_msg_release(&reply);
    return s_load(vm, err, errlen);
}

rt_actor_t *vm_client(vm_t *vm)
{
    return rt_client_actor(vm->client);
}

const char *vm_describe(vm_t *vm)
{
    return loader_image_describe(vm->image);
}

rt_t *vm_rt(vm_t *vm)
{
    return vm->rt;
}

rt_executor_t *vm_devices_executor(vm_t *vm)
{
    return s_devices_ex(vm);
}

/* Whether the partition's Inspect tree lists a device named name. */
static bool s_has_device(vm_t *vm, const char *name)
{
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    if (rt_call(vm_client(vm), VM_PARTITION, &env, &reply, S_CALL_TIMEOUT_MS))
        return false;
    bool found = false;
    const Vmm__Rt__InspectNode *root = reply.env->inspect_reply;
    for (size_t i = 0; root && i < root->n_children; i++) {
        const Vmm__Rt__InspectNode *devices = root->children[i];
        if (strcmp(devices->name, "devices"))
            continue;
        for (size_t d = 0; d < devices->n_children; d++)
            found |= !strcmp(devices->children[d]->name, name);
    }
    rt_msg_release(&reply);
    return found;
}

int vm_wait_device(vm_t *vm, const char *name, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (s_has_device(vm, name))
            return 0;
        struct timespec pause = {0, 10 * 1000000};
        nanosleep(&pause, NULL);
    }
    return s_has_device(vm, name) ? 0 : -ETIMEDOUT;
}

static void s_describe_halt(const Vmm__Vp__Halted *h, vm_event_t *ev)
{
    ev->exit_code = 1;
    char *t = ev->text;
    size_t n = sizeof ev->text;
    switch (h->reason_case) {
    case VMM__VP__HALTED__REASON_POWER_OFF:
        ev->exit_code = h->power_off->opt_exit_code_case ? (int)h->power_off->exit_code : 0;
        snprintf(t, n, "vp %u: the guest powered off (exit status %d)", h->vp_index,
                 ev->exit_code);
        break;
    case VMM__VP__HALTED__REASON_RESET:
        snprintf(t, n, "vp %u: the guest reset the VM", h->vp_index);
        break;
    case VMM__VP__HALTED__REASON_STOP:
        snprintf(t, n, "vp %u: stopped", h->vp_index);
        break;
    case VMM__VP__HALTED__REASON_CANCEL:
        snprintf(t, n, "vp %u: cancelled", h->vp_index);
        break;
    case VMM__VP__HALTED__REASON_TRIPLE_FAULT:
        snprintf(t, n, "vp %u: triple fault", h->vp_index);
        break;
    case VMM__VP__HALTED__REASON_INVALID_VM_STATE:
        snprintf(t, n, "vp %u: invalid VM state: %s", h->vp_index, h->invalid_vm_state->text);
        break;
    case VMM__VP__HALTED__REASON_EMULATION_FAILURE: {
        const Vmm__Vp__EmulationFailure *f = h->emulation_failure;
        int k = snprintf(t, n, "vp %u: %s; bytes", h->vp_index, f->text);
        for (size_t i = 0; i < f->instruction.len && k > 0 && (size_t)k < n; i++)
            k += snprintf(t + k, n - (size_t)k, " %02x", f->instruction.data[i]);
        break;
    }
    case VMM__VP__HALTED__REASON_HYPERVISOR:
        snprintf(t, n, "vp %u: KVM failed: %s", h->vp_index, h->hypervisor->text);
        break;
    case VMM__VP__HALTED__REASON_SINGLE_STEP:
        snprintf(t, n, "vp %u: single step", h->vp_index);
        break;
    case VMM__VP__HALTED__REASON_HW_BREAK:
        snprintf(t, n, "vp %u: hardware breakpoint at 0x%llx", h->vp_index,
                 (unsigned long long)(h->hw_break->breakpoint ? h->hw_break->breakpoint->address
                                                              : 0));
        break;
    default:
        snprintf(t, n, "vp %u: halted for an unknown reason %d", h->vp_index, h->reason_case);
    }
}

/* The control endpoint's Snapshot, its VPs paused: the owner writes it. */
static void s_serve_snapshot(vm_t *vm, const Vmm__Envelope *req)
{
    char err[4400];
    const char *dir = req->control_request->snapshot->dir;
    int rc = vm->machine ? snapshot_write(vm_client(vm), VM_PARTITION, "vm0", vm->n_vps,
                                          vm->machine, dir, err, sizeof err)
                         : -ENOTSUP;
    if (rc == -ENOTSUP && !vm->machine)
        snprintf(err, sizeof err, "this VM's maker keeps no machine to build it again from");
    if (rc) {
        rt_log(vm->rt, NULL, RT_LOG_WARN, "snapshot %s: %s", dir, err);
        rt_reply_error(vm_client(vm), req, rt_error_code(rc), "%s", err);
    } else {
        rt_log(vm->rt, NULL, RT_LOG_INFO, "snapshot written to %s", dir);
        rt_reply_ack(vm_client(vm), req);
    }
}

int vm_next_event(vm_t *vm, vm_event_t *ev, int timeout_ms)
{
    for (;;) {
        rt_msg_t msg;
        int rc = rt_client_recv(vm->client, &msg, timeout_ms);
        if (rc)
            return rc;
        const Vmm__Envelope *env = msg.env;
        bool taken = true;
        memset(ev, 0, sizeof *ev);
        if (env->body_case == VMM__ENVELOPE__BODY_VP_EVENT &&
            env->vp_event->event_case == VMM__VP__EVENT__EVENT_HALTED) {
            ev->kind = VM_EVENT_HALT;
            ev->vp = env->vp_event->halted->vp_index;
            ev->reason = env->vp_event->halted->reason_case;
            s_describe_halt(env->vp_event->halted, ev);
        } else if (env->body_case == VMM__ENVELOPE__BODY_DEVICE_EVENT &&
                   env->device_event->event_case == VMM__DEVICES__EVENT__EVENT_GUEST_CALL) {
            const Vmm__Devices__GuestCall *c = env->device_event->guest_call;
            ev->kind = VM_EVENT_GUEST_CALL;
            ev->vp = c->vp_index;
            ev->call = c->kind;
            ev->n_args = c->n_args < 8 ? c->n_args : 8;
            if (ev->n_args)
                memcpy(ev->args, c->args, ev->n_args * sizeof *ev->args);
        } else if (env->request_id && env->body_case == VMM__ENVELOPE__BODY_CONTROL_REQUEST &&
                   env->control_request->op_case == VMM__CONTROL__REQUEST__OP_SNAPSHOT &&
                   !strcmp(env->sender, VM_CONTROL)) {
            s_serve_snapshot(vm, env);
            taken = false;
        } else {
            taken = false; /* nothing the VM's owner waits for */
        }
        rt_msg_release(&msg);
        if (taken)
            return 0;
    }
}

/* How often vm_run() looks for events lost on their way to it. */
#define S_LOST_CHECK_MS 1000

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vm_run(vm_t *vm, char *why, size_t whylen)
{
    int rc = vm->debugger ? 0 : vm_start(vm);
    if (rc) {
        snprintf(why, whylen, "the VPs did not start: %s", strerror(-rc));
        return 1;
    }
    int64_t lost_at = 0;
    for (uint32_t resets = 0;;) {
        vm_event_t ev;
        rc = vm_next_event(vm, &ev, S_LOST_CHECK_MS);
        /* A halt that could not reach us would leave us waiting for ever:
         * a loss ends the run once nothing came for a while, or a while
         * after it was seen, unless what came meanwhile ended it. */
        uint64_t lost = rt_client_lost(vm->client);
        if (lost && !lost_at)
            lost_at = s_now_ms();
        if (lost && (rc || s_now_ms() - lost_at >= S_LOST_CHECK_MS)) {
            snprintf(why, whylen,
                     "%llu event%s to %s could not be delivered (see the log): what the VPs do "
                     "is no longer known",
                     (unsigned long long)lost, lost == 1 ? "" : "s", VM_CLIENT);
            return 1;
        }
        if (rc)
            continue;
        if (ev.kind == VM_EVENT_GUEST_CALL) {
            if (ev.call == TESTDEV_CALL_ASSERT) {
                snprintf(why, whylen, "vp %u: a guest assertion failed at line %u", ev.vp,
                         ev.n_args ? ev.args[0] : 0);
                return 1;
            }
            continue; /* sync points and done are for tests */
        }
        if (ev.reason == VMM__VP__HALTED__REASON_STOP) {
            /* An operator paused it (control.proto Pause); Resume runs it
             * again, its halts still reported here. */
            rt_log(vm->rt, NULL, RT_LOG_INFO, "%s", ev.text);
            continue;
        }
        if (ev.reason != VMM__VP__HALTED__REASON_RESET) {
            snprintf(why, whylen, "%s", ev.text);
            return ev.reason == VMM__VP__HALTED__REASON_POWER_OFF ? ev.exit_code : 1;
        }
        /* A reboot: once every VP has stopped for it, start afresh. */
        if (++resets < vm->n_vps)
            continue;
        resets = 0;
        rt_log(vm->rt, NULL, RT_LOG_INFO, "the guest reset the VM: starting it again");
        rc = vm_reset(vm, why, whylen);
        if (!rc && (rc = vm_start(vm)))
            snprintf(why, whylen, "restarting after a reset: %s", strerror(-rc));
        if (rc)
            return 1;
    }
}
