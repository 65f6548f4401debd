/*
 * `vmm devhost`: device actors for a VM in another process or on another
 * host. Each device registers with the VM's partition, naming the
 * endpoint where its mailbox listens, and then serves the VM's VPs there.
 */
#include "vmm/devhost.h"

#include <errno.h>
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
#include "vmm/device_arg.h"
#include "vmm/keys.h"
#include "vmm/trace_tool.h"
#include "vmm/vm.h"

#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_MAX_DEVICES 2
/* The client that starts the devices and hears how their registration
 * went. */
#define S_OWNER "devhost"
#define S_CONSOLE "devhost/console"
#define S_REGISTER_WAIT_MS 10000

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: vmm devhost --vm ENDPOINT --device KIND[,required] [--device ...]\n"
            "                   (--dir DIR | --listen ADDRESS --key FILE --vm-key FILE)\n"
            "                   [--state DIR] [--trace FILE [--trace-actor PREFIX]...\n"
            "                   [--trace-kind KIND]...]\n"
            "\n"
            "Hosts device actors for a VM in another process or on another host: each\n"
            "registers with the VM's partition at ENDPOINT and then serves the VM's\n"
            "processors. Runs until SIGTERM or SIGINT.\n"
            "\n"
            "  --vm ENDPOINT    the VM's partition: ipc:///tmp/vmm-x/partition on this\n"
            "                   machine, or tcp://ADDRESS:PORT (vmm run --listen)\n"
            "  --device KIND    serial (a 16550A UART at COM1, its output on stdout) or\n"
            "                   testdev (the test device); ',required': the VM halts a\n"
            "                   processor that touches it once this host is lost\n"
            "  --dir DIR        with ipc://: where the devices' endpoints go, a folder\n"
            "                   only this user can enter\n"
            "  --listen ADDRESS with tcp://: the address of this host the VM reaches the\n"
            "                   devices at (each device takes a free port)\n"
            "  --key FILE       with tcp://: this host's secret key (vmm keygen)\n"
            "  --vm-key FILE    with tcp://: the VM's public key; only the VM holding\n"
            "                   it may talk to these devices\n"
            "  --state DIR      a folder only this user can enter where each device\n"
            "                   records what it took from the VM, so that a device host\n"
            "                   started again after a crash neither repeats nor misses\n"
            "                   what the VM sent (default: the --dir folder; none over\n"
            "                   tcp://, then a restart may repeat what was in flight)\n"
            TRACE_OPTS_HELP);
}

typedef struct {
    const char *vm, *dir, *listen, *key, *vm_key, *state;
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
        TRACE_OPTS_LONG,                          {NULL, 0, NULL, 0},
    };
    char err[160];
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
        case TRACE_OPT_FILE:
        case TRACE_OPT_ACTOR:
        case TRACE_OPT_KIND:
            if (trace_opts_take(&a->trace, c, optarg, "vmm devhost"))
                return S_EXIT_USAGE;
            break;
        case 'D': {
            device_arg_t d;
            if (device_arg_parse(optarg, false, &d, err, sizeof err)) {
                fprintf(stderr, "vmm devhost: --device %s\n", err);
                return S_EXIT_USAGE;
            }
            for (size_t i = 0; i < a->n_devices; i++)
                if (a->devices[i].kind == d.kind) {
                    fprintf(stderr, "vmm devhost: --device %s: named twice\n", optarg);
                    return S_EXIT_USAGE;
                }
            a->devices[a->n_devices++] = d; /* one per kind: never more than the array */
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

/* COM1's console: the host's stdout, on a thread of its own. */
static int s_start_console(rt_t *rt, const device_arg_t *serial)
{
    rt_executor_t *ex = rt_executor_new(rt, "console");
    console_config_t console = {.device = device_arg_actor(serial->kind),
                                .out_fd = STDOUT_FILENO, .in_fd = -1};
    rt_actor_spec_t spec = {.name = S_CONSOLE, .ops = &console_ops, .arg = &console};
    int rc = ex ? rt_actor_start(ex, &spec) : -ENOMEM;
    if (rc)
        fprintf(stderr, "vmm devhost: cannot start the console: %s\n", strerror(-rc));
    return rc;
}

static int s_start(rt_executor_t *ex, const s_args_t *a, const device_arg_t *d)
{
    char endpoint[4200], record[4200];
    const char *state = a->state ? a->state : a->dir;
    if (state)
        snprintf(record, sizeof record, "%s/%s.record", state, device_arg_name(d->kind));
    if (a->dir)
        snprintf(endpoint, sizeof endpoint, "ipc://%s/%s", a->dir, device_arg_name(d->kind));
    else
        snprintf(endpoint, sizeof endpoint, "tcp://%s:*", a->listen);
    bool serial = d->kind == DEVICE_ARG_SERIAL;
    device_actor_config_t cfg = {.new_model = serial ? dev_serial_new : dev_testdev_new,
                                 .partition = VM_PARTITION, .owner = S_OWNER,
                                 .console = serial ? S_CONSOLE : NULL,
                                 .halt_if_lost = d->required, .msi_irqfd = true};
    rt_actor_spec_t spec = {.name = device_arg_actor(d->kind), .ops = &device_actor_ops,
                            .arg = &cfg, .endpoint = endpoint,
                            .delivery_record = state ? record : NULL};
    int rc = rt_actor_start(ex, &spec);
    if (rc)
        fprintf(stderr, "vmm devhost: cannot start %s: %s\n", device_arg_name(d->kind),
                strerror(-rc));
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
        rt_executor_t *ex = rt_executor_new(rt, device_arg_name(d->kind));
        if (d->kind == DEVICE_ARG_SERIAL && s_start_console(rt, d))
            status = S_EXIT_FAILED;
        else if (!ex || s_start(ex, &a, d))
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
