/*
 * `vmm devhost`: device actors for a VM in another process or on another
 * host. Each device registers with the VM's partition, naming the
 * endpoint where its mailbox listens, and then serves the VM's VPs there.
 */
#include "vmm/devhost.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/console/console.h"
#include "actors/devices/device_actor.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_console.h"
#include "actors/devices/virtio_rng.h"
#include "vmm/device_arg.h"
#include "vmm/keys.h"
#include "vmm/trace_tool.h"
#include "vmm/vm.h"

#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_MAX_DEVICES 8
/* The client that starts the devices and hears how their registration
 * went. */
#define S_OWNER "devhost"
#define S_REGISTER_WAIT_MS 10000

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: vmm devhost --vm ENDPOINT --device KIND[,SETTING...][,required]\n"
            "                   [--device ...]\n"
            "                   (--dir DIR | --listen ADDRESS --key FILE --vm-key FILE)\n"
            "                   [--state DIR] [--by-message]\n"
            "                   [--trace FILE [--trace-actor PREFIX]...\n"
            "                   [--trace-kind KIND]...]\n"
            "\n"
            "Hosts device actors for a VM in another process or on another host: each\n"
            "registers with the VM's partition at ENDPOINT and then serves the VM's\n"
            "processors. Runs until SIGTERM or SIGINT.\n"
            "\n"
            "  --vm ENDPOINT    the VM's partition: ipc:///tmp/vmm-x/partition on this\n"
            "                   machine, or tcp://ADDRESS:PORT (vmm run --listen)\n"
            "  --device KIND    serial (a 16550A UART at COM1, its output on stdout),\n"
            "                   testdev (the test device), virtio-blk, virtio-console\n"
            "                   or virtio-rng, with the settings `vmm run --help`\n"
            "                   lists (file=, readonly, name=, base=, irq=; a\n"
            "                   virtio-console without file= writes stdout and reads\n"
            "                   stdin); ',required': the VM halts a processor that\n"
            "                   touches it once this host is lost\n"
            "  --dir DIR        with ipc://: where the devices' endpoints go, a folder\n"
            "                   only this user can enter\n"
            "  --listen ADDRESS with tcp://: the address of this host the VM reaches the\n"
            "                   devices at (each device takes a free port)\n"
            "  --key FILE       with tcp://: this host's secret key (vmm keygen)\n"
            "  --vm-key FILE    with tcp://: the VM's public key; only the VM holding\n"
            "                   it may talk to these devices\n"
            "  --state DIR      a folder only this user can enter where each device\n"
            "                   records what it took from the VM, and keeps its state,\n"
            "                   so that a device host started again after a crash\n"
            "                   neither repeats nor misses what the VM sent, and its\n"
            "                   devices carry on where they were (a virtio queue from\n"
            "                   its used index; default: the --dir folder; none over\n"
            "                   tcp://, then a restart may repeat what was in flight)\n"
            "  --by-message     guest memory, doorbells and interrupts by message, as\n"
            "                   from another machine, even where the VM's memory file\n"
            "                   and descriptors could be taken (for measurements)\n"
            TRACE_OPTS_HELP);
}

typedef struct {
    const char *vm, *dir, *listen, *key, *vm_key, *state;
    bool by_message;
    device_arg_t devices[S_MAX_DEVICES];
    size_t n_devices;
    trace_opts_t trace;
} s_args_t;

static int s_parse(int argc, char **argv, s_args_t *a)
{
    static const struct option opts[] = {
        {"vm", required_argument, NULL, 'm'},     {"dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'}, {"key", required_argument, NULL, 'k'},
        {"vm-key", required_argument, NULL, 'K'}, {"device", required_argument, NULL, 'D'},
        {"state", required_argument, NULL, 's'},  {"help", no_argument, NULL, 'h'},
        {"by-message", no_argument, NULL, 'b'},
        TRACE_OPTS_LONG,                          {NULL, 0, NULL, 0},
    };
    char err[4200];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            a->vm = optarg;
            break;
        case 'd':
            a->dir = optarg;
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'k':
            a->key = optarg;
            break;
        case 'K':
            a->vm_key = optarg;
            break;
        case 's':
            a->state = optarg;
            break;
        case 'b':
            a->by_message = true;
            break;
        case TRACE_OPT_FILE:
        case TRACE_OPT_ACTOR:
        case TRACE_OPT_KIND:
            if (trace_opts_take(&a->trace, c, optarg, "vmm devhost"))
                return S_EXIT_USAGE;
            break;
        case 'D': {
            if (a->n_devices == S_MAX_DEVICES) {
                fprintf(stderr, "vmm devhost: --device %s: at most %d devices\n", optarg,
                        S_MAX_DEVICES);
                return S_EXIT_USAGE;
            }
            if (device_arg_parse(optarg, false, &a->devices[a->n_devices], err, sizeof err)) {
                fprintf(stderr, "vmm devhost: --device %s\n", err);
                return S_EXIT_USAGE;
            }
            a->n_devices++;
            break;
        }
        case 'h':
            s_usage(stdout);
            return -1;
        default:
            fprintf(stderr, "vmm devhost: %s '%s'; see `vmm devhost --help`\n",
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return S_EXIT_USAGE;
        }
    }
    if (device_arg_place(a->devices, a->n_devices, err, sizeof err)) {
        fprintf(stderr, "vmm devhost: --device: %s\n", err);
        return S_EXIT_USAGE;
    }
    bool ipc = a->vm && !strncmp(a->vm, "ipc://", 6);
    bool tcp = a->vm && !strncmp(a->vm, "tcp://", 6);
    const char *why = optind < argc         ? "unexpected arguments"
                      : !a->vm || !a->n_devices ? "--vm and --device are needed"
                      : !a->trace.path && (a->trace.n_actors || a->trace.n_kinds)
                          ? "--trace-actor and --trace-kind need --trace FILE"
                      : !ipc && !tcp             ? "--vm: an ipc:// or tcp:// endpoint"
                      : ipc && (!a->dir || a->listen || a->key || a->vm_key)
                          ? "ipc:// takes --dir (and no --listen, --key or --vm-key)"
                      : tcp && (a->dir || !a->listen || !a->key || !a->vm_key)
                          ? "tcp:// takes --listen, --key and --vm-key (and no --dir)"
                          : NULL;
    if (why) {
        fprintf(stderr, "vmm devhost: %s; see `vmm devhost --help`\n", why);
        return S_EXIT_USAGE;
    }
    return 0;
}

/* Whether path is a folder only this user can enter; else says so. */
static bool s_private_dir(const char *option, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077)) {
        fprintf(stderr, "vmm devhost: %s %s: not a folder only this user can enter\n", option,
                path);
        return false;
    }
    return true;
}

/* The runtime: over tcp:// with this host's keys, admitting the VM's. */
static rt_t *s_runtime(const s_args_t *a)
{
    char err[4200], pub[KEYS_Z85_LEN + 1], secret[KEYS_Z85_LEN + 1], vm_pub[KEYS_Z85_LEN + 1];
    if (a->state && !s_private_dir("--state", a->state))
        return NULL;
    if (a->dir) {
        if (!s_private_dir("--dir", a->dir))
            return NULL;
        rt_t *rt = rt_new(NULL);
        if (rt && rt_directory_set(rt, VM_PARTITION, a->vm)) {
            fprintf(stderr, "vmm devhost: --vm %s: not a usable endpoint\n", a->vm);
            rt_destroy(&rt);
        }
        return rt;
    }
    if (keys_read_pair(a->key, pub, secret, err, sizeof err) ||
        keys_read(a->vm_key, false, vm_pub, err, sizeof err)) {
        fprintf(stderr, "vmm devhost: %s\n", err);
        return NULL;
    }
    rt_config_t cfg = {.curve_public_key = pub, .curve_secret_key = secret};
    rt_t *rt = rt_new(&cfg);
    int rc = rt ? rt_peer_allow(rt, vm_pub, "vm0/") : -ENOMEM;
    if (!rc && (rc = rt_directory_set_key(rt, VM_PARTITION, a->vm, vm_pub)))
        fprintf(stderr, "vmm devhost: --vm %s: not a usable endpoint\n", a->vm);
    else if (rc)
        fprintf(stderr, "vmm devhost: cannot set up CURVE: %s\n", strerror(-rc));
    if (rc)
        rt_destroy(&rt);
    return rt;
}

/* A device's console: COM1's writes the host's stdout, on COM1's own
 * executor (beside), so that a line leaves in the turn that took the
 * writes making it: a host killed after its delivery record took them
 * has written them too (a console on a thread of its own lost a line in
 * about one kill of three). A virtio-console's, on a thread of its own,
 * writes its file=, else stdout, reading stdin. The file is opened here
 * and closed at exit. */
static int s_start_console(rt_t *rt, rt_executor_t *beside, const device_arg_t *d,
                           const char *name)
{
    int out = STDOUT_FILENO, in = -1;
    if (d->kind == DEVICE_ARG_VIRTIO_CONSOLE && d->file[0]) {
        out = open(d->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0) {
            fprintf(stderr, "vmm devhost: %s: %s: %s\n", d->name, d->file, strerror(errno));
            return -errno;
        }
    } else if (d->kind == DEVICE_ARG_VIRTIO_CONSOLE) {
        in = STDIN_FILENO;
    }
    rt_executor_t *ex = beside ? beside : rt_executor_new(rt, name);
    console_config_t console = {.device = d->actor, .out_fd = out, .in_fd = in};
    rt_actor_spec_t spec = {.name = name, .ops = &console_ops, .arg = &console};
    int rc = ex ? rt_actor_start(ex, &spec) : -ENOMEM;
    if (rc)
        fprintf(stderr, "vmm devhost: cannot start %s: %s\n", name, strerror(-rc));
    return rc;
}

static int s_start(rt_executor_t *ex, const s_args_t *a, const device_arg_t *d,
                   const char *console)
{
    static const device_new_fn models[] = {
        [DEVICE_ARG_SERIAL] = dev_serial_new,
        [DEVICE_ARG_TESTDEV] = dev_testdev_new,
        [DEVICE_ARG_VIRTIO_BLK] = dev_virtio_blk_new,
        [DEVICE_ARG_VIRTIO_CONSOLE] = dev_virtio_console_new,
        [DEVICE_ARG_VIRTIO_RNG] = dev_virtio_rng_new,
    };
    char endpoint[4200], record[4200], kept[4200], args[4400];
    const char *state = a->state ? a->state : a->dir;
    if (state) {
        snprintf(record, sizeof record, "%s/%s.record", state, d->name);
        snprintf(kept, sizeof kept, "%s/%s.state", state, d->name);
    }
    if (a->dir)
        snprintf(endpoint, sizeof endpoint, "ipc://%s/%s", a->dir, d->name);
    else
        snprintf(endpoint, sizeof endpoint, "tcp://%s:*", a->listen);
    device_arg_model_args(d, args, sizeof args);
    device_actor_config_t cfg = {.new_model = models[d->kind],
                                 .model_args = device_arg_virtio(d) ? args : NULL,
                                 .partition = VM_PARTITION, .owner = S_OWNER,
                                 .manager = VM_CLIENT,
                                 .console = console,
                                 .console_unbuffered = d->kind == DEVICE_ARG_SERIAL,
                                 .halt_if_lost = d->required,
                                 .guest_by_message = a->by_message,
                                 .msi_irqfd = !a->by_message,
                                 .state_file = state ? kept : NULL};
    rt_actor_spec_t spec = {.name = d->actor, .ops = &device_actor_ops, .arg = &cfg,
                            .endpoint = endpoint, .delivery_record = state ? record : NULL};
    int rc = rt_actor_start(ex, &spec);
    if (rc)
        fprintf(stderr, "vmm devhost: cannot start %s: %s\n", d->name, strerror(-rc));
    return rc;
}

int devhost_main(int argc, char **argv)
{
    s_args_t a = {0};
    int status = s_parse(argc, argv, &a);
    if (status)
        return status < 0 ? 0 : status;
    /* The signals that end it are taken by sigwait() only, on this thread:
     * blocked before any thread starts. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    rt_t *rt = s_runtime(&a);
    if (!rt)
        return S_EXIT_FAILED;
    rt_trace_config_t tcfg;
    const rt_trace_config_t *trace = trace_opts_config(&a.trace, "vmm devhost", &tcfg);
    char why[4400];
    if (trace && rt_trace_start(rt, trace, why, sizeof why)) {
        fprintf(stderr, "vmm devhost: --trace %s\n", why);
        rt_destroy(&rt);
        return S_EXIT_FAILED;
    }
    rt_client_t *owner = rt_client_new(rt, S_OWNER);
    if (!owner)
        status = S_EXIT_FAILED;
    /* Each device on a thread of its own: a slow one holds up no other. */
    size_t started = 0;
    for (size_t i = 0; !status && i < a.n_devices; i++) {
        const device_arg_t *d = &a.devices[i];
        char console[64];
        bool has_console = d->kind == DEVICE_ARG_SERIAL || d->kind == DEVICE_ARG_VIRTIO_CONSOLE;
        snprintf(console, sizeof console, "devhost/console/%s", d->name);
        rt_executor_t *ex = rt_executor_new(rt, d->name);
        rt_executor_t *beside = d->kind == DEVICE_ARG_SERIAL ? ex : NULL;
        if (has_console && s_start_console(rt, beside, d, console))
            status = S_EXIT_FAILED;
        else if (!ex || s_start(ex, &a, d, has_console ? console : NULL))
            status = S_EXIT_FAILED;
        else
            started++;
    }
    if (!status && device_actor_wait_registered(owner, started, S_REGISTER_WAIT_MS, why,
                                                sizeof why)) {
        fprintf(stderr, "vmm devhost: %s: %s\n", a.vm, why);
        status = S_EXIT_FAILED;
    }
    if (!status) {
        int sig;
        sigwait(&stop, &sig);
    }
    rt_destroy(&rt); /* the devices take what reached them; COM1 flushes */
    return status;
}
