/*
 * vmm: the command-line front end.
 *
 *   vmm run [options]      run a guest (the built-in demo guest by default)
 *   vmm devhost [options]  host device actors for a VM elsewhere (devhost.c)
 *   vmm keygen [options]   make a CURVE key pair
 *   vmm trace ...          look at, export and replay traces (trace_tool.c)
 *   vmm ctl ENDPOINT ...   ask a running VM (ctl.c)
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_console.h"
#include "actors/devices/virtio_rng.h"
#include "actors/gdb/gdb.h"
#include "guest/demo_embedded.h"
#include "vmm/ctl.h"
#include "vmm/device_arg.h"
#include "vmm/devhost.h"
#include "vmm/files.h"
#include "vmm/keys.h"
#include "vmm/snapshot.h"
#include "vmm/trace_tool.h"
#include "vmm/vm.h"

/* Exit statuses of the front end itself; a guest's own come from its
 * power off. */
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_MAX_GUEST (256ull << 20)
#define S_MAX_INITRD (1ull << 30)
#define S_MEM_MAX_ELF (3ull << 30)
#define S_MAX_DEVICES 8
#define S_MAX_KEYS 16
/* The longest $TMPDIR the private folder goes in (else /tmp). */
#define S_MAX_TMPDIR 64
/* How many deaths in a row of a device host, each within S_HEALTHY_MS of
 * its start, vmm starts another after before it gives up. */
#define S_MAX_RESTARTS 10
/* A device host that lived this long before it died is started again
 * with its count of deaths in a row back at one. */
#define S_HEALTHY_MS 1000

static void s_usage(FILE *f)
{
    fprintf(f, "usage: vmm [--help] <command> [options]\n"
               "\n"
               "An actor-model VMM on Linux/KVM: partition, VPs and devices are actors\n"
               "that talk by protobuf messages over ZeroMQ.\n"
               "\n"
               "commands:\n"
               "  run      run a guest (the built-in demo guest when no --guest is given)\n"
               "  devhost  host device actors for a VM running in another process\n"
               "  keygen   make a CURVE key pair for tcp:// links to device hosts\n"
               "  trace    look at a trace a run recorded, export it, replay an actor\n"
               "           from it (dump, stats, export, replay)\n"
               "  ctl      ask a running VM through its control endpoint: inspect, pause,\n"
               "           resume, regs, mem, msi, post-message, reset, poweroff, stats\n"
               "\n"
               "`vmm COMMAND --help` lists a command's options.\n");
}

static void s_run_usage(FILE *f)
{
    fprintf(f,
            "usage: vmm run [--guest FILE | --kernel FILE [--append STRING] [--initrd FILE]]\n"
            "               [--mem SIZE] [--vps N] [--serial stdout|FILE]\n"
            "               [--devices with-vp0|apart] [--hyperv] [--log-level LEVEL]\n"
            "               [--verbose]\n"
            "               [--trace FILE [--trace-actor PREFIX]... [--trace-kind KIND]...]\n"
            "               [--device KIND[,SETTING...][,host=ipc|tcp|remote[,required]] ...]\n"
            "               [--listen tcp://ADDRESS:PORT --key FILE --allow-key FILE ...\n"
            "                [--wait-devices SECONDS]]\n"
            "               [--control ipc://PATH|tcp://ADDRESS:PORT|none\n"
            "                [--key FILE --control-key FILE ...]]\n"
            "               [--gdb tcp:HOST:PORT|unix:PATH] [--restore DIR]\n"
            "\n"
            "Runs a guest until it powers off; the exit status is the guest's (0 for a\n"
            "plain power off, 2v+1 after a write of v to the isa-debug-exit port 0xf4),\n"
            "1 when it halts otherwise (triple fault, emulation failure, a required\n"
            "device lost, ...), 2 for bad options.\n"
            "\n"
            "  --guest FILE     a static ELF64 x86-64 guest, started in 64-bit mode at\n"
            "                   its entry with RDI = the VP index (default: the demo)\n"
            "  --kernel FILE    boot a kernel on a PC instead: a multiboot v1 image\n"
            "                   (ELF32 or a.out kludge) or a Linux bzImage. VP 0\n"
            "                   boots, the others wait for INIT/SIPI; the PC has ACPI\n"
            "                   tables, an RTC, fw_cfg and QEMU's test devices, so that\n"
            "                   kernels written for QEMU run unchanged\n"
            "  --append STRING  the kernel's command line (multiboot: after the\n"
            "                   kernel's file name, as QEMU writes it)\n"
            "  --initrd FILE    an initrd (multiboot: module 0)\n"
            "  --mem SIZE       guest RAM, a multiple of 2M from 4M to 3G (a kernel: to\n"
            "                   1T, the part over 3G above 4G); a K, M or G suffix\n"
            "                   (default 64M)\n"
            "  --vps N          virtual processors, 1 to 256, 255 for a kernel (default\n"
            "                   1)\n"
            "  --serial DEST    where COM1's output goes: stdout or a file (default\n"
            "                   stdout); with stdout, COM1 also reads stdin (a terminal\n"
            "                   key by key, without echo; Ctrl-C ends vmm). A COM1 in a\n"
            "                   device host writes to the host's stdout instead\n"
            "  --devices WHERE  with-vp0: the devices share VP 0's thread (default,\n"
            "                   fastest for port I/O); apart: a thread of their own\n"
            "  --hyperv         present the Hyper-V interface to the guest: its CPUID\n"
            "                   leaves, synthetic MSRs, hypercall page and SynIC\n"
            "  --log-level L    error, warn (default), info, debug or trace; the\n"
            "                   VMM_LOG environment variable says the same\n"
            "  --verbose        say what was loaded where, and what the guest's CPUID\n"
            "                   hides of the host's (log level info at least)\n"
            TRACE_OPTS_HELP
            "                   A device host vmm starts records into FILE.devhostN,\n"
            "                   N counting its starts from 0\n"
            "\n"
            "Devices, in this process or in device hosts (vmm devhost), all of a VM's\n"
            "device hosts over one transport:\n"
            "  --device KIND[,SETTING...][,host=H[,required]]\n"
            "                   KIND is serial (COM1), testdev (the device that\n"
            "                   raises the demo's MSI), virtio-blk, virtio-console or\n"
            "                   virtio-rng (virtio-mmio version 2). Settings:\n"
            "                   file=PATH: virtio-blk's raw disk image (needed), or\n"
            "                   where virtio-console writes (default: stdout, and it\n"
            "                   reads stdin, which COM1 then does not); readonly\n"
            "                   (virtio-blk); name=NAME, base=ADDR and irq=N (default:\n"
            "                   virtio-blk0 ..., 0xd0000000 and on by 4 KiB, irqs 5,\n"
            "                   6, 7, 10, 11). A --kernel gets each virtio device as\n"
            "                   virtio_mmio.device=4K@ADDR:IRQ on its command line.\n"
            "                   Without host= a device runs in this process (serial\n"
            "                   and testdev always do). host=ipc: vmm starts a device\n"
            "                   host reached over ipc:// in a private folder (in\n"
            "                   $TMPDIR, else /tmp); host=tcp:\n"
            "                   the same over tcp:// on 127.0.0.1 with CURVE keys vmm\n"
            "                   makes; host=remote: a device host started elsewhere\n"
            "                   registers over tcp:// (the options below). required: a\n"
            "                   processor that touches the device once its host is\n"
            "                   lost halts the VM (else it reads all ones)\n"
            "  --listen tcp://ADDRESS:PORT\n"
            "                   where the VM takes device hosts' registrations\n"
            "  --key FILE       the VM's secret key (vmm keygen); its hosts need the\n"
            "                   .pub beside it\n"
            "  --allow-key FILE a device host's public key; only listed keys are\n"
            "                   admitted (up to 16)\n"
            "  --wait-devices S how long to wait for the hosts to register (default 60)\n"
            "\n"
            "The control endpoint, for `vmm ctl` and other clients (clients/python):\n"
            "  --control E      ipc://PATH: a socket in a folder only you may enter;\n"
            "                   tcp://ADDRESS:PORT: under CURVE, with the VM's --key and\n"
            "                   the operators' --control-key; none: no endpoint. Default:\n"
            "                   ipc:// in the run's private folder (--verbose prints it)\n"
            "  --control-key FILE\n"
            "                   an operator's public key (vmm keygen), for tcp:// (up\n"
            "                   to 16); operators may inspect, pause and resume, read and\n"
            "                   write registers and memory, raise MSIs, post messages,\n"
            "                   reset and power off, and nothing else\n"
            "\n"
            "  --gdb WHERE      wait for gdb (target remote) at tcp:HOST:PORT (PORT 0:\n"
            "                   any; --verbose prints it) or unix:PATH: the VPs start\n"
            "                   stopped, each a thread; the guest runs at gdb's first\n"
            "                   continue or step\n"
            "  --restore DIR    continue a VM from a snapshot (vmm ctl ENDPOINT snapshot\n"
            "                   DIR), its machine (guest or kernel, devices, device hosts)\n"
            "                   as the snapshot says; host=remote devices need --listen\n"
            "                   and --key again, and their hosts started again\n");
}

static int s_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || v > (~0ull >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

static int s_parse_level(const char *s, rt_log_level_t *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (rt_log_level_t)i;
            return 0;
        }
    return -EINVAL;
}

/* A terminal on stdin goes to the guest key by key, without echo; it is
 * restored however vmm ends (signals that end it included). */
static struct termios s_saved_term;
static volatile sig_atomic_t s_term_changed;

static void s_restore_term(void)
{
    if (s_term_changed)
        tcsetattr(STDIN_FILENO, TCSANOW, &s_saved_term);
    s_term_changed = 0;
}

static void s_on_fatal_signal(int sig)
{
    s_restore_term();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void s_term_to_guest(void)
{
    if (tcgetattr(STDIN_FILENO, &s_saved_term) < 0)
        return;
    struct termios t = s_saved_term;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* ISIG stays: Ctrl-C ends vmm */
    t.c_iflag &= ~(tcflag_t)ICRNL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    s_term_changed = 1;
    signal(SIGINT, s_on_fatal_signal);
    signal(SIGTERM, s_on_fatal_signal);
    signal(SIGHUP, s_on_fatal_signal);
    atexit(s_restore_term);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
        s_term_changed = 0;
}

/* Where the VM's devices in device hosts are, and how they are reached. */
typedef struct {
    device_arg_t devices[S_MAX_DEVICES];
    size_t n_devices;
    device_arg_host_t host; /* DEVICE_ARG_IN_VM: no device host */
    const char *listen, *key, *allow[S_MAX_KEYS];
    size_t n_allow;
    int wait_s;
    /* The private folder (ipc:// endpoints, the keys of a tcp:// host vmm
     * starts) and the partition's endpoint. */
    char dir[S_MAX_TMPDIR + 16], endpoint[4200];
    char public_key[KEYS_Z85_LEN + 1], secret_key[KEYS_Z85_LEN + 1];
    /* The device host vmm started, and the thread that starts another
     * when it dies (guarded by lock; pid -1: none). */
    char partition[4200]; /* the endpoint it reaches the partition at */
    pthread_mutex_t lock;
    pid_t pid;
    bool stopping;
    int restarts;         /* deaths in a row, each soon after its start */
    int64_t started_ms;   /* when the current host started (monotonic) */
    pthread_t keeper;
    bool keeper_running;
    const trace_opts_t *trace; /* what the device host records, if anything */
    const char *args[S_MAX_DEVICES]; /* each --device as given */
    /* The control endpoint (--control; "" before s_control_prepare(): the
     * default) and the operators' keys. */
    const char *control, *control_keys[S_MAX_KEYS];
    size_t n_control_keys;
    char control_endpoint[4200];
    char operator_keys[S_MAX_KEYS][KEYS_Z85_LEN + 1];
    const char *operator_key_ptrs[S_MAX_KEYS];
} s_remote_t;

static int s_add_device(s_remote_t *r, const char *arg)
{
    device_arg_t d;
    char err[4200];
    if (device_arg_parse(arg, true, &d, err, sizeof err)) {
        fprintf(stderr, "vmm run: --device %s\n", err);
        return -EINVAL;
    }
    if (r->n_devices == S_MAX_DEVICES) {
        fprintf(stderr, "vmm run: --device %s: at most %d devices\n", arg, S_MAX_DEVICES);
        return -EINVAL;
    }
    if (d.host != DEVICE_ARG_IN_VM && r->host != DEVICE_ARG_IN_VM && d.host != r->host) {
        fprintf(stderr, "vmm run: --device %s: the device hosts of a VM share one transport\n",
                arg);
        return -EINVAL;
    }
    if (d.host != DEVICE_ARG_IN_VM)
        r->host = d.host;
    r->args[r->n_devices] = arg;
    r->devices[r->n_devices++] = d;
    return 0;
}

/* Makes the run's private folder, once: endpoints and keys go in a folder
 * only this user can enter, in $TMPDIR when its path leaves room for the
 * sockets' names (a unix socket's path is short), else in /tmp. Returns 0,
 * or -1 after saying why. */
static int s_private_dir(s_remote_t *r)
{
    if (r->dir[0])
        return 0;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > S_MAX_TMPDIR)
        tmp = "/tmp";
    snprintf(r->dir, sizeof r->dir, "%s/vmm-XXXXXX", tmp);
    if (!mkdtemp(r->dir)) {
        fprintf(stderr, "vmm run: a private folder in %s: %s\n", tmp, strerror(errno));
        r->dir[0] = 0;
        return -1;
    }
    return 0;
}

/* Whether only this user may enter the folder an ipc:// socket is in. */
static int s_check_ipc_folder(const char *endpoint)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", endpoint + strlen("ipc://"));
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) < 0) {
        fprintf(stderr, "vmm run: --control %s: %s: %s\n", endpoint, dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
        fprintf(stderr,
                "vmm run: --control %s: %s may be entered by others (owner %u, mode %04o): "
                "give a folder only you may enter (mode 0700)\n",
                endpoint, dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* The control endpoint, before the VM exists: the default in the private
 * folder, an ipc:// one in a private folder, or tcp:// under CURVE with
 * the VM's key pair and the operators' keys. Returns 0, or -1 after
 * saying why. */
static int s_control_prepare(s_remote_t *r, rt_config_t *rcfg, vm_config_t *cfg)
{
    char err[4200];
    const char *c = r->control;
    bool tcp = c && !strncmp(c, "tcp://", 6);
    if (r->n_control_keys && !tcp) {
        fprintf(stderr, "vmm run: --control-key is for a tcp:// --control\n");
        return -1;
    }
    if (c && !strcmp(c, "none"))
        return 0;
    if (!c) {
        if (s_private_dir(r))
            return -1;
        snprintf(r->control_endpoint, sizeof r->control_endpoint, "ipc://%s/control", r->dir);
    } else if (!strncmp(c, "ipc://", 6) && c[6]) {
        if (s_check_ipc_folder(c))
            return -1;
        snprintf(r->control_endpoint, sizeof r->control_endpoint, "%s", c);
    } else if (tcp) {
        if (!r->key || !r->n_control_keys) {
            fprintf(stderr, "vmm run: --control %s needs the VM's --key and at least one "
                            "--control-key\n", c);
            return -1;
        }
        if (r->host == DEVICE_ARG_TCP) {
            fprintf(stderr, "vmm run: --control %s: host=tcp makes its own keys; use "
                            "host=ipc or host=remote with a tcp:// control endpoint\n", c);
            return -1;
        }
        if (!rcfg->curve_public_key) {
            if (keys_read_pair(r->key, r->public_key, r->secret_key, err, sizeof err)) {
                fprintf(stderr, "vmm run: --key %s\n", err);
                return -1;
            }
            rcfg->curve_public_key = r->public_key;
            rcfg->curve_secret_key = r->secret_key;
        }
        for (size_t i = 0; i < r->n_control_keys; i++) {
            if (keys_read(r->control_keys[i], false, r->operator_keys[i], err, sizeof err)) {
                fprintf(stderr, "vmm run: --control-key %s\n", err);
                return -1;
            }
            r->operator_key_ptrs[i] = r->operator_keys[i];
        }
        cfg->operator_keys = r->operator_key_ptrs;
        cfg->n_operator_keys = r->n_control_keys;
        snprintf(r->control_endpoint, sizeof r->control_endpoint, "%s", c);
    } else {
        fprintf(stderr, "vmm run: --control %s: ipc://PATH, tcp://ADDRESS:PORT or none\n", c);
        return -1;
    }
    cfg->control_endpoint = r->control_endpoint;
    return 0;
}

/* Gets ready for device hosts before the VM exists: the private folder,
 * the keys, the partition's endpoint. Returns 0, or -1 after saying why. */
static int s_remote_prepare(s_remote_t *r, rt_config_t *rcfg, vm_config_t *cfg)
{
    char err[4200];
    bool control_tcp = r->control && !strncmp(r->control, "tcp://", 6);
    if (r->host == DEVICE_ARG_IN_VM) {
        if (r->listen || (r->key && !control_tcp) || r->n_allow) {
            fprintf(stderr, "vmm run: --listen, --key and --allow-key are for devices with "
                            "host=remote\n");
            return -1;
        }
        return 0;
    }
    if (r->host == DEVICE_ARG_REMOTE) {
        if (!r->listen || strncmp(r->listen, "tcp://", 6) || !r->key || !r->n_allow) {
            fprintf(stderr, "vmm run: host=remote needs --listen tcp://ADDRESS:PORT, --key "
                            "and at least one --allow-key\n");
            return -1;
        }
        if (keys_read_pair(r->key, r->public_key, r->secret_key, err, sizeof err)) {
            fprintf(stderr, "vmm run: --key %s\n", err);
            return -1;
        }
        snprintf(r->endpoint, sizeof r->endpoint, "%s", r->listen);
    } else if (r->listen || (r->key && !control_tcp) || r->n_allow) {
        fprintf(stderr, "vmm run: --listen, --key and --allow-key are for host=remote; vmm "
                        "makes its own for host=%s\n",
                r->host == DEVICE_ARG_IPC ? "ipc" : "tcp");
        return -1;
    }
    if (r->host != DEVICE_ARG_REMOTE && s_private_dir(r))
        return -1;
    if (r->host == DEVICE_ARG_IPC)
        snprintf(r->endpoint, sizeof r->endpoint, "ipc://%s/partition", r->dir);
    if (r->host == DEVICE_ARG_TCP) {
        char prefix[sizeof r->dir + 16], devhost_pub[KEYS_Z85_LEN + 1];
        snprintf(prefix, sizeof prefix, "%s/vm", r->dir);
        int rc = keys_generate(prefix, false, r->public_key, err, sizeof err);
        snprintf(prefix, sizeof prefix, "%s/devhost", r->dir);
        if (!rc)
            rc = keys_generate(prefix, false, devhost_pub, err, sizeof err);
        snprintf(prefix, sizeof prefix, "%s/vm.key", r->dir);
        if (!rc)
            rc = keys_read(prefix, true, r->secret_key, err, sizeof err);
        if (rc) {
            fprintf(stderr, "vmm run: %s\n", err);
            return -1;
        }
        snprintf(r->endpoint, sizeof r->endpoint, "tcp://127.0.0.1:*");
    }
    if (r->host != DEVICE_ARG_IPC) {
        rcfg->curve_public_key = r->public_key;
        rcfg->curve_secret_key = r->secret_key;
    }
    cfg->partition_endpoint = r->endpoint;
    return 0;
}

/* Admits the device hosts' keys: those listed, or the one vmm made. */
static int s_remote_admit(s_remote_t *r, vm_t *vm, char *err, size_t errlen)
{
    char key[KEYS_Z85_LEN + 1], path[sizeof r->dir + 16];
    if (r->host == DEVICE_ARG_TCP) {
        snprintf(path, sizeof path, "%s/devhost.pub", r->dir);
        r->allow[0] = path;
        r->n_allow = 1;
    }
    for (size_t i = 0; r->host != DEVICE_ARG_IPC && i < r->n_allow; i++) {
        int rc = keys_read(r->allow[i], false, key, err, errlen);
        if (!rc && (rc = rt_peer_allow(vm_rt(vm), key, "vm0/")))
            snprintf(err, errlen, "cannot admit %s: %s", r->allow[i], strerror(-rc));
        if (rc)
            return rc;
    }
    if (r->host == DEVICE_ARG_TCP)
        r->n_allow = 0; /* path was this function's */
    return 0;
}

/* Starts this program as `vmm devhost` for the devices of r, reaching the
 * partition at endpoint; their delivery records are kept in r's folder. */
static pid_t s_start_devhost(const s_remote_t *r, const char *endpoint)
{
    static char dev_args[S_MAX_DEVICES][4400];
    char key[sizeof r->dir + 16], vm_key[sizeof r->dir + 16];
    char trace[4200];
    /* vmm devhost --vm E, eight of tcp:// (or two of ipc://), the
     * devices, the trace and its filters, the NULL. */
    const char *argv[4 + 8 + 2 * S_MAX_DEVICES + 2 + 4 * TRACE_OPTS_MAX + 1];
    size_t n = 0;
    argv[n++] = "vmm";
    argv[n++] = "devhost";
    argv[n++] = "--vm";
    argv[n++] = endpoint;
    if (r->host == DEVICE_ARG_IPC) {
        argv[n++] = "--dir";
        argv[n++] = r->dir;
    } else {
        snprintf(key, sizeof key, "%s/devhost.key", r->dir);
        snprintf(vm_key, sizeof vm_key, "%s/vm.pub", r->dir);
        const char *tcp[] = {"--listen", "127.0.0.1", "--key",   key,
                             "--vm-key", vm_key,      "--state", r->dir};
        for (size_t i = 0; i < 8; i++)
            argv[n++] = tcp[i];
    }
    for (size_t i = 0; i < r->n_devices; i++) {
        if (r->devices[i].host == DEVICE_ARG_IN_VM)
            continue;
        device_arg_format(&r->devices[i], dev_args[i], sizeof dev_args[i]);
        argv[n++] = "--device";
        argv[n++] = dev_args[i];
    }
    const trace_opts_t *t = r->trace;
    if (t && t->path) {
        snprintf(trace, sizeof trace, "%s.devhost%d", t->path, r->restarts);
        argv[n++] = "--trace";
        argv[n++] = trace;
        for (size_t i = 0; i < t->n_actors; i++) {
            argv[n++] = "--trace-actor";
            argv[n++] = t->actors[i];
        }
        for (size_t i = 0; i < t->n_kinds; i++) {
            argv[n++] = "--trace-kind";
            argv[n++] = t->kinds[i];
        }
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) { /* a threaded process forked: nothing but exec */
        execv("/proc/self/exe", (char *const *)argv);
        static const char msg[] = "vmm run: cannot start the device host\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
            _exit(S_EXIT_FAILED);
        _exit(S_EXIT_FAILED);
    }
    return pid;
}

/* Describes how a child ended. */
static void s_describe_status(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
}

static bool s_stopping(s_remote_t *r)
{
    pthread_mutex_lock(&r->lock);
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return stopping;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts the device host, noting when (r->pid, r->started_ms); returns
 * its pid, or -1 with errno. */
static pid_t s_launch(s_remote_t *r)
{
    r->started_ms = s_now_ms();
    return r->pid = s_start_devhost(r, r->partition);
}

/* Starts the device host again whenever it dies, until vmm stops it: it
 * registers its devices again, and its delivery records (in the private
 * folder) let it go on where its predecessor stopped. */
static void *s_keeper_main(void *arg)
{
    s_remote_t *r = arg;
    pthread_mutex_lock(&r->lock);
    while (r->pid > 0) {
        pid_t pid = r->pid;
        pthread_mutex_unlock(&r->lock);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&r->lock);
        if (r->stopping)
            break;
        char how[64];
        s_describe_status(status, how, sizeof how);
        /* A host that dies at once must not be started in a tight loop;
         * one that lived a while died of something else (a kill, a
         * crash): the count starts again. */
        if (s_now_ms() - r->started_ms >= S_HEALTHY_MS)
            r->restarts = 0;
        int restarts = ++r->restarts;
        pthread_mutex_unlock(&r->lock);
        int pause_ms = 100 << (restarts < 5 ? restarts - 1 : 4);
        for (int ms = 0; ms < pause_ms && !s_stopping(r); ms += 10)
            usleep(10 * 1000);
        pthread_mutex_lock(&r->lock);
        if (r->stopping)
            break;
        if (restarts > S_MAX_RESTARTS) {
            fprintf(stderr, "vmm run: the device host died (%s); it died %d times, vmm gives "
                            "up on it\n",
                    how, S_MAX_RESTARTS);
            r->pid = -1;
            break;
        }
        s_launch(r);
        fprintf(stderr, "vmm run: the device host died (%s); started another, pid %d\n", how,
                (int)r->pid);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* How long a device host has to stop on SIGTERM before it is killed. */
#define S_DEVHOST_STOP_S 5

/* Stops the device host vmm started, and its keeper: with SIGTERM, then
 * SIGKILL if it has not ended within S_DEVHOST_STOP_S (stuck, or stopped). */
static void s_remote_stop(s_remote_t *r)
{
    if (!r->keeper_running)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    if (r->pid > 0)
        kill(r->pid, SIGTERM);
    pthread_mutex_unlock(&r->lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += S_DEVHOST_STOP_S;
    int rc;
    while ((rc = pthread_timedjoin_np(r->keeper, NULL, &until)) == EINTR)
        ;
    if (rc) {
        pthread_mutex_lock(&r->lock);
        fprintf(stderr, "vmm run: the device host (pid %d) did not stop within %d s: killed\n",
                (int)r->pid, S_DEVHOST_STOP_S);
        if (r->pid > 0)
            kill(r->pid, SIGKILL);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->keeper, NULL);
    }
    r->keeper_running = false;
}

/* Once the VM exists: admits the hosts' keys, starts the host vmm runs
 * itself, and waits until every device has registered. */
static int s_remote_start(s_remote_t *r, vm_t *vm, char *err, size_t errlen)
{
    int rc = s_remote_admit(r, vm, err, errlen);
    if (rc || r->host == DEVICE_ARG_IN_VM)
        return rc;
    if (rt_endpoint_of(vm_rt(vm), VM_PARTITION, r->partition, sizeof r->partition)) {
        snprintf(err, errlen, "the partition has no endpoint");
        return -ENOENT;
    }
    int wait_ms = 10000;
    if (r->host == DEVICE_ARG_REMOTE) {
        fprintf(stderr, "vmm run: waiting up to %d s for device hosts to register at %s\n",
                r->wait_s, r->partition);
        for (size_t i = 0; i < r->n_devices; i++) {
            char arg[4400];
            if (r->devices[i].host == DEVICE_ARG_IN_VM)
                continue;
            device_arg_format(&r->devices[i], arg, sizeof arg);
            fprintf(stderr, "vmm run:   --device %s\n", arg);
        }
        wait_ms = r->wait_s * 1000;
    } else {
        if (s_launch(r) < 0) {
            snprintf(err, errlen, "cannot start the device host: %s", strerror(errno));
            return -errno;
        }
        if ((rc = -pthread_create(&r->keeper, NULL, s_keeper_main, r))) {
            kill(r->pid, SIGTERM);
            waitpid(r->pid, NULL, 0);
            snprintf(err, errlen, "cannot watch the device host: %s", strerror(-rc));
            return rc;
        }
        r->keeper_running = true;
    }
    for (size_t i = 0; i < r->n_devices; i++) {
        if (r->devices[i].host == DEVICE_ARG_IN_VM)
            continue;
        const char *name = r->devices[i].name;
        if (vm_wait_device(vm, name, wait_ms)) {
            snprintf(err, errlen, "%s did not register from its device host", name);
            return -ETIMEDOUT;
        }
    }
    return 0;
}

/* The virtio devices of `vmm run`: those in this process as the VM's
 * devices, and the command line a kernel gets. */
typedef struct {
    vm_device_t devices[S_MAX_DEVICES];
    char args[S_MAX_DEVICES][4400];
    vm_console_t console;
    bool has_console;
    int con_out;        /* a virtio-console's file=, opened here; -1: none */
    bool stdin_taken;   /* a virtio-console reads stdin: COM1 does not */
    char *append;       /* the kernel's command line with the devices */
} s_virtio_t;

/* Fills cfg's devices and the kernel's command line from the devices of
 * the command line. Returns 0, or -1 after saying why. */
static int s_virtio_prepare(s_virtio_t *v, const s_remote_t *r, loader_kernel_config_t *kernel,
                            vm_config_t *cfg)
{
    size_t len = kernel->append ? strlen(kernel->append) : 0;
    for (size_t i = 0; i < r->n_devices; i++) {
        const device_arg_t *d = &r->devices[i];
        if (!device_arg_virtio(d))
            continue;
        if (d->kind == DEVICE_ARG_VIRTIO_BLK &&
            access(d->file, d->readonly ? R_OK : R_OK | W_OK) < 0) {
            fprintf(stderr, "vmm run: --device %s: %s: %s\n", d->name, d->file,
                    strerror(errno));
            return -1;
        }
        if (d->kind == DEVICE_ARG_VIRTIO_CONSOLE && !d->file[0])
            v->stdin_taken = true;
        len += 64;
        if (d->host != DEVICE_ARG_IN_VM)
            continue;
        vm_device_t *dev = &v->devices[cfg->n_devices++];
        device_arg_model_args(d, v->args[i], sizeof v->args[i]);
        static const device_new_fn models[] = {
            [DEVICE_ARG_VIRTIO_BLK] = dev_virtio_blk_new,
            [DEVICE_ARG_VIRTIO_CONSOLE] = dev_virtio_console_new,
            [DEVICE_ARG_VIRTIO_RNG] = dev_virtio_rng_new,
        };
        *dev = (vm_device_t){.name = d->actor, .new_model = models[d->kind],
                             .model_args = v->args[i]};
        if (d->kind != DEVICE_ARG_VIRTIO_CONSOLE)
            continue;
        if (v->has_console) {
            fprintf(stderr, "vmm run: --device %s: one virtio-console in this process\n",
                    d->name);
            return -1;
        }
        v->has_console = true;
        v->console = (vm_console_t){.out_fd = STDOUT_FILENO, .in_fd = STDIN_FILENO};
        if (d->file[0]) {
            v->con_out = open(d->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (v->con_out < 0) {
                fprintf(stderr, "vmm run: --device %s: %s: %s\n", d->name, d->file,
                        strerror(errno));
                return -1;
            }
            v->console = (vm_console_t){.out_fd = v->con_out, .in_fd = -1};
        }
        dev->console = &v->console;
    }
    cfg->devices = v->devices;
    if (!kernel->kernel_name || len == (kernel->append ? strlen(kernel->append) : 0))
        return 0;
    if (!(v->append = malloc(len + 1)))
        return -1;
    size_t n = (size_t)snprintf(v->append, len + 1, "%s", kernel->append ? kernel->append : "");
    for (size_t i = 0; i < r->n_devices; i++) {
        char one[64];
        if (!device_arg_virtio(&r->devices[i]))
            continue;
        device_arg_linux(&r->devices[i], one, sizeof one);
        n += (size_t)snprintf(v->append + n, len + 1 - n, "%s%s", n ? " " : "", one);
    }
    kernel->append = v->append;
    return 0;
}

static void s_virtio_release(s_virtio_t *v)
{
    if (v->con_out >= 0)
        close(v->con_out);
    free(v->append);
    v->append = NULL;
}

/* The choices of guest and machine that go together: --guest or --kernel,
 * --append and --initrd with --kernel only, --mem and --vps in the range
 * of the guest's kind. Fills cfg's mem_size. */
static int s_check_machine(const char *guest, const loader_kernel_config_t *kernel,
                           const char *mem_arg, vm_config_t *cfg)
{
    if (guest && kernel->kernel_name) {
        fprintf(stderr, "vmm run: --guest and --kernel: give one\n");
        return -EINVAL;
    }
    if (!kernel->kernel_name && (kernel->append || kernel->initrd_name)) {
        fprintf(stderr, "vmm run: --append and --initrd need --kernel FILE\n");
        return -EINVAL;
    }
    uint64_t max = kernel->kernel_name ? LOADER_PC_MEM_MAX : S_MEM_MAX_ELF;
    const char *range = kernel->kernel_name ? "4M to 1T for a kernel" : "4M to 3G";
    if (mem_arg && (s_parse_size(mem_arg, &cfg->mem_size) || cfg->mem_size % (2u << 20) ||
                    cfg->mem_size < (4u << 20) || cfg->mem_size > max)) {
        fprintf(stderr, "vmm run: --mem %s: a multiple of 2M from %s\n", mem_arg, range);
        return -EINVAL;
    }
    if (kernel->kernel_name && cfg->n_vps > LOADER_PC_MAX_VPS) {
        fprintf(stderr, "vmm run: --vps %u: a kernel takes 1 to %d (xAPIC IDs)\n", cfg->n_vps,
                LOADER_PC_MAX_VPS);
        return -EINVAL;
    }
    return 0;
}

static void s_drop_snapshot(Vmm__Snapshot__Snapshot **snap)
{
    if (*snap)
        vmm__snapshot__snapshot__free_unpacked(*snap, NULL);
    *snap = NULL;
}

/* VMM_TEST_DROP="FROM>TO[,FROM>TO...]": one-way envelopes from actor FROM
 * to TO fail as if their route had broken (rt_fault_drop()), for tests of
 * what is lost. */
static int s_inject_faults(rt_t *rt, char *err, size_t errlen)
{
    const char *spec = getenv("VMM_TEST_DROP");
    if (!spec || !*spec)
        return 0;
    char *copy = strdup(spec), *save = NULL;
    if (!copy) {
        snprintf(err, errlen, "VMM_TEST_DROP: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    int rc = 0;
    for (char *pair = strtok_r(copy, ",", &save); pair && !rc;
         pair = strtok_r(NULL, ",", &save)) {
        char *to = strchr(pair, '>');
        if (!to || to == pair || !to[1]) {
            snprintf(err, errlen, "VMM_TEST_DROP '%s': FROM>TO pairs, comma-separated", spec);
            rc = -EINVAL;
            break;
        }
        *to++ = '\0';
        if ((rc = rt_fault_drop(rt, pair, to)))
            snprintf(err, errlen, "VMM_TEST_DROP: %s", strerror(-rc));
    }
    free(copy);
    return rc;
}

static int s_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"guest", required_argument, NULL, 'g'},
        {"kernel", required_argument, NULL, 'K'},
        {"append", required_argument, NULL, 'A'},
        {"initrd", required_argument, NULL, 'I'},
        {"verbose", no_argument, NULL, 'V'},
        {"mem", required_argument, NULL, 'm'},
        {"vps", required_argument, NULL, 'p'},
        {"serial", required_argument, NULL, 's'},
        {"devices", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'l'},
        {"hyperv", no_argument, NULL, 'v'},
        {"device", required_argument, NULL, 'D'},
        {"listen", required_argument, NULL, 'L'},
        {"key", required_argument, NULL, 'k'},
        {"allow-key", required_argument, NULL, 'a'},
        {"wait-devices", required_argument, NULL, 'w'},
        {"control", required_argument, NULL, 'c'},
        {"control-key", required_argument, NULL, 'C'},
        {"gdb", required_argument, NULL, 'G'},
        {"restore", required_argument, NULL, 'R'},
        TRACE_OPTS_LONG,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *guest = NULL, *serial = "stdout", *mem_arg = NULL, *gdb = NULL;
    const char *restore = NULL;
    Vmm__Snapshot__Snapshot *snap = NULL;
    loader_kernel_config_t kernel = {0};
    bool verbose = false;
    trace_opts_t topts = {0};
    rt_trace_config_t tcfg;
    vm_config_t cfg = {.serial_out = STDOUT_FILENO, .serial_in = -1};
    rt_config_t rcfg = {0};
    s_remote_t remote = {.wait_s = 60, .lock = PTHREAD_MUTEX_INITIALIZER, .pid = -1};
    char *end;
    int c;
    optind = 1;
    opterr = 0; /* one line of our own instead of getopt's */
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            guest = optarg;
            break;
        case 'K':
            kernel.kernel_name = optarg;
            break;
        case 'A':
            kernel.append = optarg;
            break;
        case 'I':
            kernel.initrd_name = optarg;
            break;
        case 'V':
            verbose = true;
            break;
        case 'm':
            mem_arg = optarg;
            break;
        case 'p': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !*optarg || v < 1 || v > 256) {
                fprintf(stderr, "vmm run: --vps %s: a number from 1 to 256\n", optarg);
                return S_EXIT_USAGE;
            }
            cfg.n_vps = (uint32_t)v;
            break;
        }
        case 's':
            serial = optarg;
            break;
        case 'd':
            if (!strcmp(optarg, "with-vp0"))
                cfg.placement = VM_DEVICES_WITH_VP0;
            else if (!strcmp(optarg, "apart"))
                cfg.placement = VM_DEVICES_APART;
            else {
                fprintf(stderr, "vmm run: --devices %s: with-vp0 or apart\n", optarg);
                return S_EXIT_USAGE;
            }
            break;
        case 'l':
            if (s_parse_level(optarg, &rcfg.log_level)) {
                fprintf(stderr, "vmm run: --log-level %s: error, warn, info, debug or trace\n",
                        optarg);
                return S_EXIT_USAGE;
            }
            rcfg.log_level_set = true;
            break;
        case 'v':
            cfg.hyperv = true;
            break;
        case 'D':
            if (s_add_device(&remote, optarg))
                return S_EXIT_USAGE;
            break;
        case 'L':
            remote.listen = optarg;
            break;
        case 'k':
            remote.key = optarg;
            break;
        case 'a':
            if (remote.n_allow == S_MAX_KEYS) {
                fprintf(stderr, "vmm run: --allow-key: at most %d keys\n", S_MAX_KEYS);
                return S_EXIT_USAGE;
            }
            remote.allow[remote.n_allow++] = optarg;
            break;
        case 'w': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !*optarg || v < 1 || v > 3600) {
                fprintf(stderr, "vmm run: --wait-devices %s: seconds, 1 to 3600\n", optarg);
                return S_EXIT_USAGE;
            }
            remote.wait_s = (int)v;
            break;
        }
        case 'c':
            remote.control = optarg;
            break;
        case 'G':
            gdb = optarg;
            break;
        case 'R':
            restore = optarg;
            break;
        case 'C':
            if (remote.n_control_keys == S_MAX_KEYS) {
                fprintf(stderr, "vmm run: --control-key: at most %d keys\n", S_MAX_KEYS);
                return S_EXIT_USAGE;
            }
            remote.control_keys[remote.n_control_keys++] = optarg;
            break;
        case TRACE_OPT_FILE:
        case TRACE_OPT_ACTOR:
        case TRACE_OPT_KIND:
            if (trace_opts_take(&topts, c, optarg, "vmm run"))
                return S_EXIT_USAGE;
            break;
        case 'h':
            s_run_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vmm run: %s '%s'; see `vmm run --help`\n",
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return S_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmm run: unexpected argument '%s'; see `vmm run --help`\n",
                argv[optind]);
        return S_EXIT_USAGE;
    }
    if (restore && (guest || kernel.kernel_name || mem_arg || cfg.n_vps || cfg.hyperv ||
                    remote.n_devices)) {
        fprintf(stderr, "vmm run: --restore takes the machine from the snapshot: leave out "
                        "--guest, --kernel, --mem, --vps, --hyperv and --device\n");
        return S_EXIT_USAGE;
    }
    if (s_check_machine(guest, &kernel, mem_arg, &cfg))
        return S_EXIT_USAGE;
    char err[4200] = "";
    if (restore) {
        if (snapshot_read(restore, &snap, err, sizeof err)) {
            fprintf(stderr, "vmm run: --restore %s\n", err);
            return S_EXIT_FAILED;
        }
        const Vmm__Snapshot__Machine *m = snap->machine;
        cfg.mem_size = m->mem_size;
        cfg.n_vps = m->n_vps;
        cfg.hyperv = m->hyperv;
        if (m->kernel) {
            kernel.kernel_name = m->kernel->name;
            kernel.append = *m->kernel->append ? m->kernel->append : NULL;
            kernel.initrd_name = *m->kernel->initrd_name ? m->kernel->initrd_name : NULL;
        }
        for (size_t i = 0; i < m->n_devices; i++)
            if (s_add_device(&remote, m->devices[i])) {
                s_drop_snapshot(&snap);
                return S_EXIT_FAILED;
            }
        cfg.restore = snap;
        cfg.restore_dir = restore;
    }
    if (verbose && (!rcfg.log_level_set || rcfg.log_level < RT_LOG_INFO)) {
        rcfg.log_level = RT_LOG_INFO;
        rcfg.log_level_set = true;
    }
    if (device_arg_place(remote.devices, remote.n_devices, err, sizeof err)) {
        fprintf(stderr, "vmm run: --device: %s\n", err);
        s_drop_snapshot(&snap);
        return S_EXIT_USAGE;
    }
    const char *user_append = kernel.append; /* before the virtio devices join it */
    const char *elsewhere[S_MAX_DEVICES];
    for (size_t i = 0; i < remote.n_devices; i++)
        if (remote.devices[i].host != DEVICE_ARG_IN_VM)
            elsewhere[cfg.n_elsewhere++] = remote.devices[i].name;
    cfg.elsewhere = elsewhere;
    /* The virtio devices in this process, and what a kernel is told of
     * every virtio device. */
    s_virtio_t virtio = {.con_out = -1};
    if (s_virtio_prepare(&virtio, &remote, &kernel, &cfg)) {
        s_virtio_release(&virtio);
        s_drop_snapshot(&snap);
        return S_EXIT_FAILED;
    }
    if (!topts.path && (topts.n_actors || topts.n_kinds)) {
        fprintf(stderr, "vmm run: --trace-actor and --trace-kind need --trace FILE\n");
        s_virtio_release(&virtio);
        s_drop_snapshot(&snap);
        return S_EXIT_USAGE;
    }
    cfg.trace = trace_opts_config(&topts, "vmm run", &tcfg);
    remote.trace = &topts;

    uint8_t *file = NULL, *initrd = NULL;
    if (snap && snap->machine->kernel) {
        const Vmm__Snapshot__Kernel *k = snap->machine->kernel;
        kernel.kernel = k->image.data;
        kernel.kernel_len = k->image.len;
        kernel.initrd = kernel.initrd_name ? k->initrd.data : NULL;
        kernel.initrd_len = kernel.initrd_name ? k->initrd.len : 0;
        cfg.kernel = &kernel;
    } else if (kernel.kernel_name) {
        file = files_read(kernel.kernel_name, S_MAX_GUEST, &kernel.kernel_len, err, sizeof err);
        if (file && kernel.initrd_name)
            initrd = files_read(kernel.initrd_name, S_MAX_INITRD, &kernel.initrd_len, err,
                                 sizeof err);
        if (!file || (kernel.initrd_name && !initrd)) {
            fprintf(stderr, "vmm run: %s\n", err);
            free(file);
            return S_EXIT_FAILED;
        }
        kernel.kernel = file;
        kernel.initrd = initrd;
        cfg.kernel = &kernel;
    } else if (guest) {
        file = files_read(guest, S_MAX_GUEST, &cfg.elf_len, err, sizeof err);
        if (!file) {
            fprintf(stderr, "vmm run: %s\n", err);
            return S_EXIT_FAILED;
        }
        cfg.elf = file;
    } else if (snap) {
        cfg.elf = snap->machine->guest.data;
        cfg.elf_len = snap->machine->guest.len;
    } else {
        cfg.elf = guest_demo_elf;
        cfg.elf_len = guest_demo_elf_len;
    }
    /* What a snapshot keeps to build this VM again. */
    const char *machine_devices[S_MAX_DEVICES];
    Vmm__Snapshot__Machine machine = VMM__SNAPSHOT__MACHINE__INIT;
    Vmm__Snapshot__Kernel machine_kernel = VMM__SNAPSHOT__KERNEL__INIT;
    machine.mem_size = cfg.mem_size ? cfg.mem_size : VM_DEFAULT_MEM;
    machine.n_vps = cfg.n_vps ? cfg.n_vps : 1;
    machine.hyperv = cfg.hyperv;
    for (size_t i = 0; i < remote.n_devices; i++)
        machine_devices[machine.n_devices++] = remote.args[i];
    machine.devices = (char **)machine_devices;
    if (cfg.kernel) {
        machine_kernel.image = (ProtobufCBinaryData){kernel.kernel_len, (uint8_t *)kernel.kernel};
        machine_kernel.name = (char *)kernel.kernel_name;
        machine_kernel.append = (char *)(user_append ? user_append : "");
        machine_kernel.initrd =
            (ProtobufCBinaryData){kernel.initrd_len, (uint8_t *)kernel.initrd};
        machine_kernel.initrd_name = (char *)(kernel.initrd_name ? kernel.initrd_name : "");
        machine.kernel = &machine_kernel;
    } else {
        machine.guest = (ProtobufCBinaryData){cfg.elf_len, (uint8_t *)cfg.elf};
    }
    cfg.machine = &machine;
    int out_fd = -1, status = S_EXIT_FAILED;
    vm_t *vm = NULL;
    if (strcmp(serial, "stdout")) {
        out_fd = open(serial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            fprintf(stderr, "vmm run: --serial %s: %s\n", serial, strerror(errno));
            goto out;
        }
        cfg.serial_out = out_fd;
    } else if (!virtio.stdin_taken) {
        cfg.serial_in = STDIN_FILENO;
        if (isatty(STDIN_FILENO))
            s_term_to_guest();
    }
    cfg.rt = &rcfg;
    if (s_remote_prepare(&remote, &rcfg, &cfg) || s_control_prepare(&remote, &rcfg, &cfg))
        goto out;
    char gdb_where[4200];
    if (gdb) {
        cfg.gdb = true;
        cfg.gdb_listen_fd = gdb_listen(gdb, gdb_where, sizeof gdb_where, err, sizeof err);
        if (cfg.gdb_listen_fd < 0) {
            fprintf(stderr, "vmm run: --gdb %s\n", err);
            goto out;
        }
    }
    vm = vm_new(&cfg, err, sizeof err);
    if (gdb)
        close(cfg.gdb_listen_fd); /* the VM listens on its own */
    if (vm && gdb && verbose)
        fprintf(stderr, "vmm run: waiting for gdb at %s\n", gdb_where);
    free(file); /* the guest is in guest RAM now */
    free(initrd);
    file = initrd = NULL;
    if (vm && verbose)
        fprintf(stderr, "vmm run: %s", vm_describe(vm));
    if (vm && verbose && cfg.control_endpoint) {
        char where[4200];
        if (!rt_endpoint_of(vm_rt(vm), VM_CONTROL, where, sizeof where))
            fprintf(stderr, "vmm run: control endpoint %s\n", where);
    }
    if (vm && (s_remote_start(&remote, vm, err, sizeof err) ||
               (snap && snapshot_restore_devices(vm_client(vm), snap, cfg.elsewhere,
                                                 cfg.n_elsewhere, true, err, sizeof err))))
        vm_destroy(&vm);
    if (vm && s_inject_faults(vm_rt(vm), err, sizeof err))
        vm_destroy(&vm);
    if (!vm) {
        fprintf(stderr, "vmm run: %s\n", err);
        goto out;
    }
    status = vm_run(vm, err, sizeof err);
    vm_destroy(&vm); /* flushes COM1 */
    if (status)
        fprintf(stderr, "vmm run: %s\n", err);
out:
    free(file);
    s_drop_snapshot(&snap);
    s_remote_stop(&remote);
    s_virtio_release(&virtio);
    if (remote.dir[0])
        files_remove_dir(remote.dir); /* sockets, keys */
    if (out_fd >= 0)
        close(out_fd);
    s_restore_term();
    return status;
}

static void s_keygen_usage(FILE *f)
{
    fprintf(f, "usage: vmm keygen [--out PREFIX] [--force]\n"
               "\n"
               "Makes a CURVE key pair (ZeroMQ's, for tcp:// links between a VM and its\n"
               "device hosts): PREFIX.key holds the secret key (mode 0600), PREFIX.pub\n"
               "the public key, each as 40 Z85 characters and a newline. Prints the\n"
               "public key.\n"
               "\n"
               "  --out PREFIX   where to write them (default: vmm, in this folder)\n"
               "  --force        replace files that exist (else refused)\n");
}

static int s_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prefix = "vmm";
    bool force = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            prefix = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            s_keygen_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vmm keygen: %s '%s'; see `vmm keygen --help`\n",
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return S_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmm keygen: unexpected argument '%s'; see `vmm keygen --help`\n",
                argv[optind]);
        return S_EXIT_USAGE;
    }
    char public_key[KEYS_Z85_LEN + 1], err[4200];
    if (keys_generate(prefix, force, public_key, err, sizeof err)) {
        fprintf(stderr, "vmm keygen: %s\n", err);
        return S_EXIT_FAILED;
    }
    printf("%s\n", public_key);
    return 0;
}

/* Many VPs take many sockets, each a descriptor: the soft open-file limit
 * goes up to the hard one (often 1024 against 524288), as servers do. */
static void s_raise_open_files(void)
{
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    s_raise_open_files();
    /* A reader of COM1's output that goes away must not kill the VMM: the
     * UART counts what it could not write. */
    signal(SIGPIPE, SIG_IGN);
    /* Under `bazel run`, paths on the command line are the user's: relative
     * to where bazel was run, not to the runfiles. */
    const char *wd = getenv("BUILD_WORKING_DIRECTORY");
    if (wd && chdir(wd) < 0) {
        fprintf(stderr, "vmm: %s: %s\n", wd, strerror(errno));
        return S_EXIT_FAILED;
    }
    if (argc < 2) {
        s_usage(stderr);
        return S_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "run"))
        return s_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "keygen"))
        return s_keygen(argc - 1, argv + 1);
    if (!strcmp(argv[1], "trace"))
        return trace_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "devhost"))
        return devhost_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ctl"))
        return ctl_main(argc - 1, argv + 1);
    fprintf(stderr, "vmm: unknown command '%s'; see `vmm --help`\n", argv[1]);
    return S_EXIT_USAGE;
}
