/*
 * vmm: the command-line front end.
 *
 *   vmm run [options]    run a guest (the built-in demo guest by default)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "actors/devices/serial.h"
#include "guest/demo_embedded.h"
#include "vmm/keys.h"
#include "vmm/vm.h"

/* Exit statuses of the front end itself; a guest's own come from its
 * power off. */
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_MAX_GUEST (256u << 20)

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
               "\n"
               "`vmm COMMAND --help` lists a command's options.\n");
}

static void s_run_usage(FILE *f)
{
    fprintf(f,
            "usage: vmm run [--guest FILE] [--mem SIZE] [--vps N] [--serial stdout|FILE]\n"
            "               [--devices with-vp0|apart] [--device serial,host=ipc] [--hyperv]\n"
            "               [--log-level LEVEL]\n"
            "\n"
            "Runs a guest until it powers off; the exit status is the guest's (0 for a\n"
            "plain power off, 2v+1 after a write of v to the isa-debug-exit port 0xf4),\n"
            "1 when it halts otherwise (triple fault, emulation failure, ...), 2 for\n"
            "bad options.\n"
            "\n"
            "  --guest FILE     a static ELF64 x86-64 guest, started in 64-bit mode at\n"
            "                   its entry with RDI = the VP index (default: the demo)\n"
            "  --mem SIZE       guest RAM, a multiple of 2M from 4M to 3G; a K, M or G\n"
            "                   suffix (default 64M)\n"
            "  --vps N          virtual processors, 1 to 256 (default 1)\n"
            "  --serial DEST    where COM1's output goes: stdout or a file (default\n"
            "                   stdout); with stdout, COM1 also reads stdin (a terminal\n"
            "                   key by key, without echo; Ctrl-C ends vmm)\n"
            "  --devices WHERE  with-vp0: the devices share VP 0's thread (default,\n"
            "                   fastest for port I/O); apart: a thread of their own\n"
            "  --device serial,host=ipc\n"
            "                   COM1 in a device host: another process (vmm devhost)\n"
            "                   that vmm starts, reached over ipc:// in a private folder\n"
            "  --hyperv         present the Hyper-V interface to the guest: its CPUID\n"
            "                   leaves, synthetic MSRs, hypercall page and SynIC\n"
            "  --log-level L    error, warn (default), info, debug or trace; the\n"
            "                   VMM_LOG environment variable says the same\n");
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

/* Reads a whole guest file; NULL with a one-line reason. */
static uint8_t *s_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > S_MAX_GUEST) {
        snprintf(err, errlen, "%s: not a regular file of 1 byte to %u MiB", path,
                 S_MAX_GUEST >> 20);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "file shrank");
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)n;
    }
    *len = got;
out:
    close(fd);
    return buf;
}

/* Starts this program as `vmm devhost` for COM1, its endpoints in dir. */
static pid_t s_start_devhost(const char *vm_endpoint, const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "vmm", "devhost", "--vm", vm_endpoint, "--dir", dir, "--device",
              "serial", (char *)NULL);
        fprintf(stderr, "vmm run: cannot start the device host: %s\n", strerror(errno));
        _exit(S_EXIT_FAILED);
    }
    return pid;
}

/* Removes the private folder and the socket files in it. */
static void s_remove_dir(const char *dir)
{
    static const char *const names[] = {"partition", "com1"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int s_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"guest", required_argument, NULL, 'g'},  {"mem", required_argument, NULL, 'm'},
        {"vps", required_argument, NULL, 'p'},    {"serial", required_argument, NULL, 's'},
        {"devices", required_argument, NULL, 'd'}, {"log-level", required_argument, NULL, 'l'},
        {"hyperv", no_argument, NULL, 'v'},       {"device", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *guest = NULL, *serial = "stdout";
    vm_config_t cfg = {.serial_out = STDOUT_FILENO, .serial_in = -1};
    rt_config_t rcfg = {0};
    char *end;
    int c;
    optind = 1;
    opterr = 0; /* one line of our own instead of getopt's */
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            guest = optarg;
            break;
        case 'm':
            if (s_parse_size(optarg, &cfg.mem_size) || cfg.mem_size % (2u << 20) ||
                cfg.mem_size < (4u << 20) || cfg.mem_size > (3ull << 30)) {
                fprintf(stderr, "vmm run: --mem %s: a multiple of 2M from 4M to 3G\n", optarg);
                return S_EXIT_USAGE;
            }
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
            if (strcmp(optarg, "serial,host=ipc")) {
                fprintf(stderr, "vmm run: --device %s: only serial,host=ipc for now\n", optarg);
                return S_EXIT_USAGE;
            }
            cfg.com1_elsewhere = true;
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

    char err[256] = "";
    uint8_t *file = NULL;
    if (guest) {
        file = s_read_file(guest, &cfg.elf_len, err, sizeof err);
        if (!file) {
            fprintf(stderr, "vmm run: %s\n", err);
            return S_EXIT_FAILED;
        }
        cfg.elf = file;
    } else {
        cfg.elf = guest_demo_elf;
        cfg.elf_len = guest_demo_elf_len;
    }
    int out_fd = -1;
    if (strcmp(serial, "stdout")) {
        out_fd = open(serial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            fprintf(stderr, "vmm run: --serial %s: %s\n", serial, strerror(errno));
            free(file);
            return S_EXIT_FAILED;
        }
        cfg.serial_out = out_fd;
    } else {
        cfg.serial_in = STDIN_FILENO;
        if (isatty(STDIN_FILENO))
            s_term_to_guest();
    }
    cfg.rt = &rcfg;

    /* Device hosts reach the partition through a folder only this user
     * can enter. */
    char dir[] = "/tmp/vmm-XXXXXX", endpoint[64] = "";
    if (cfg.com1_elsewhere) {
        if (!mkdtemp(dir)) {
            fprintf(stderr, "vmm run: a private folder: %s\n", strerror(errno));
            free(file);
            return S_EXIT_FAILED;
        }
        snprintf(endpoint, sizeof endpoint, "ipc://%s/partition", dir);
        cfg.partition_endpoint = endpoint;
    }
    int status = S_EXIT_FAILED;
    pid_t host = -1;
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(file); /* the guest is in guest RAM now */
    if (vm && cfg.com1_elsewhere) {
        host = s_start_devhost(endpoint, dir);
        if (host < 0 || vm_wait_device(vm, "com1", 10000)) {
            snprintf(err, sizeof err, "the device host did not register COM1");
            vm_destroy(&vm);
        }
    }
    if (!vm) {
        fprintf(stderr, "vmm run: %s\n", err);
    } else {
        status = vm_run(vm, err, sizeof err);
        vm_destroy(&vm); /* flushes COM1 */
        if (status)
            fprintf(stderr, "vmm run: %s\n", err);
    }
    if (host > 0) {
        kill(host, SIGTERM);
        waitpid(host, NULL, 0);
    }
    if (cfg.com1_elsewhere)
        s_remove_dir(dir);
    if (out_fd >= 0)
        close(out_fd);
    s_restore_term();
    return status;
}

static void s_devhost_usage(FILE *f)
{
    fprintf(f, "usage: vmm devhost --vm ENDPOINT --dir DIR --device serial\n"
               "\n"
               "Hosts device actors for a VM in another process: each registers its ports\n"
               "with the VM's partition at ENDPOINT (its ipc:// address) and listens in DIR,\n"
               "a folder only this user can enter. Runs until SIGTERM or SIGINT.\n"
               "\n"
               "  --vm ENDPOINT    the VM's partition, e.g. ipc:///tmp/vmm-x/partition\n"
               "  --dir DIR        where the devices' ipc:// endpoints go\n"
               "  --device serial  a 16550A UART at COM1, its output on stdout\n");
}

static int s_devhost(int argc, char **argv)
{
    static const struct option opts[] = {
        {"vm", required_argument, NULL, 'm'},
        {"dir", required_argument, NULL, 'd'},
        {"device", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *vm = NULL, *dir = NULL;
    bool serial = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            vm = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'D':
            if (strcmp(optarg, "serial")) {
                fprintf(stderr, "vmm devhost: --device %s: only serial for now\n", optarg);
                return S_EXIT_USAGE;
            }
            serial = true;
            break;
        case 'h':
            s_devhost_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vmm devhost: %s '%s'; see `vmm devhost --help`\n",
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return S_EXIT_USAGE;
        }
    }
    if (!vm || !dir || !serial || optind < argc) {
        fprintf(stderr, "vmm devhost: --vm, --dir and --device are needed; see `vmm devhost "
                        "--help`\n");
        return S_EXIT_USAGE;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077)) {
        fprintf(stderr, "vmm devhost: --dir %s: not a folder only this user can enter\n", dir);
        return S_EXIT_FAILED;
    }
    /* The signals that end it are taken by sigwait() only, on this thread:
     * blocked before any thread starts. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    rt_t *rt = rt_new(NULL);
    char endpoint[4200];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/com1", dir);
    int status = S_EXIT_FAILED;
    if (rt && !rt_directory_set(rt, "vm0/partition", vm)) {
        rt_executor_t *ex = rt_executor_new(rt, "devhost");
        dev_serial_config_t cfg = {.partition = "vm0/partition",
                                   .out_fd = STDOUT_FILENO,
                                   .in_fd = -1};
        rt_actor_spec_t spec = {.name = "vm0/dev/com1", .ops = &dev_serial_ops, .arg = &cfg,
                                .endpoint = endpoint};
        int rc = ex ? rt_actor_start(ex, &spec) : -ENOMEM;
        if (rc) {
            fprintf(stderr, "vmm devhost: COM1 did not register with %s: %s\n", vm,
                    strerror(-rc));
        } else {
            int sig;
            sigwait(&stop, &sig);
            status = 0;
        }
    } else {
        fprintf(stderr, "vmm devhost: --vm %s: not a usable endpoint\n", vm);
    }
    rt_destroy(&rt); /* COM1 takes what reached it and flushes its output */
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

int main(int argc, char **argv)
{
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
    if (!strcmp(argv[1], "devhost"))
        return s_devhost(argc - 1, argv + 1);
    fprintf(stderr, "vmm: unknown command '%s'; see `vmm --help`\n", argv[1]);
    return S_EXIT_USAGE;
}
