/*
 * vmm ctl (ctl.h): each command is a few requests to the control endpoint,
 * addressed to the VM's actors by name; the endpoint passes them on.
 */
#include "vmm/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "vmm/keys.h"

#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_DEFAULT_TIMEOUT_S 10
#define S_SNAPSHOT_MS 300000
#define S_MAX_HEX 65536

typedef struct {
    rt_t *rt;
    rt_client_t *client;
    const char *endpoint;
    const char *server_key; /* for tcp://: server_z85, else NULL */
    char server_z85[KEYS_Z85_LEN + 1];
    char vm[32]; /* the VM's name: vmm run names its VM vm0 */
    int timeout_ms;  /* for each request */
} s_ctl_t;

typedef struct {
    const char *name, *args, *help;
    int (*fn)(s_ctl_t *c, int argc, char **argv);
} s_command_t;

static const s_command_t s_commands[];

static void s_usage(FILE *f)
{
    fprintf(f, "usage: vmm ctl [--key FILE --server-key FILE] [--timeout SECONDS] ENDPOINT COMMAND\n"
               "               [ARGS]\n"
               "\n"
               "Asks a running VM (vmm run --control ENDPOINT) through its control\n"
               "endpoint. Errors are one line and a non-zero status.\n"
               "\n"
               "  --key FILE         your secret key (vmm keygen; FILE.pub beside it),\n"
               "                     for a tcp:// endpoint\n"
               "  --server-key FILE  the VM's public key, for a tcp:// endpoint\n"
               "  --timeout SECONDS  how long to wait for each answer (default 10; a\n"
               "                     request passed on waits 5 s at most for its actor,\n"
               "                     pause and resume that long for each VP)\n"
               "\n"
               "commands (`vmm ctl ENDPOINT COMMAND --help` for one):\n");
    for (const s_command_t *cmd = s_commands; cmd->name; cmd++)
        fprintf(f, "  %-14s %s\n", cmd->name, cmd->args);
}

static void s_command_usage(FILE *f, const s_command_t *cmd)
{
    fprintf(f, "usage: vmm ctl ENDPOINT %s %s\n\n%s", cmd->name, cmd->args, cmd->help);
}

/* ---- Requests ------------------------------------------------------------- */

static const char *s_route(s_ctl_t *c, const char *name)
{
    int rc = rt_directory_set_key(c->rt, name, c->endpoint, c->server_key);
    if (rc)
        fprintf(stderr, "vmm ctl: cannot reach %s at %s: %s\n", name, c->endpoint,
                strerror(-rc));
    return rc ? NULL : name;
}

/* Calls `to`; an Error reply or a failed call is said in one line and
 * gives -1. The reply is the caller's to release. */
static int s_ask(s_ctl_t *c, const char *to, Vmm__Envelope *env, rt_msg_t *reply, int ms)
{
    if (!s_route(c, to))
        return -1;
    int rc = rt_call(rt_client_actor(c->client), to, env, reply, ms);
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "vmm ctl: %s: no answer from %s within %d s\n", to, c->endpoint,
                ms / 1000);
        return -1;
    }
    if (rc) {
        fprintf(stderr, "vmm ctl: %s: %s\n", to, strerror(-rc));
        return -1;
    }
    if (reply->env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        fprintf(stderr, "vmm ctl: %s: %s\n", to, reply->env->error->text);
        rt_msg_release(reply);
        return -1;
    }
    return 0;
}

/* A request whose answer is an Ack. */
static int s_ask_ack(s_ctl_t *c, const char *to, Vmm__Envelope *env, int ms)
{
    rt_msg_t reply;
    if (s_ask(c, to, env, &reply, ms))
        return -1;
    int rc = reply.env->body_case == VMM__ENVELOPE__BODY_ACK ? 0 : -1;
    if (rc)
        fprintf(stderr, "vmm ctl: %s answered with body kind %d\n", to, reply.env->body_case);
    rt_msg_release(&reply);
    return rc;
}

static int s_control(s_ctl_t *c, Vmm__Control__Request *req, rt_msg_t *reply)
{
    char to[64];
    snprintf(to, sizeof to, "%s/control", c->vm);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_CONTROL_REQUEST;
    env.control_request = req;
    if (reply)
        return s_ask(c, to, &env, reply, c->timeout_ms);
    return s_ask_ack(c, to, &env, c->timeout_ms);
}

/* ---- Arguments ------------------------------------------------------------- */

static int s_number(const char *what, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-' || v > max) {
        fprintf(stderr, "vmm ctl: %s '%s': a number from 0 to %" PRIu64 "\n", what, s, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_vp_arg(const char *s, uint32_t *vp)
{
    uint64_t v;
    if (s_number("VP", s, 1023, &v))
        return -1;
    *vp = (uint32_t)v;
    return 0;
}

/* Hex digits (spaces allowed between bytes) into *out, malloc'ed. */
static int s_hex(const char *s, ProtobufCBinaryData *out)
{
    size_t len = strlen(s);
    out->data = malloc(len / 2 + 1);
    out->len = 0;
    if (!out->data)
        return -1;
    for (const char *p = s; *p;) {
        if (*p == ' ' || *p == ':') {
            p++;
            continue;
        }
        unsigned byte;
        int used;
        if (sscanf(p, "%2x%n", &byte, &used) != 1 || used != 2) {
            fprintf(stderr, "vmm ctl: '%s': bytes as pairs of hex digits\n", s);
            free(out->data);
            return -1;
        }
        out->data[out->len++] = (uint8_t)byte;
        p += 2;
    }
    if (!out->len || out->len > S_MAX_HEX) {
        fprintf(stderr, "vmm ctl: '%s': 1 to %d bytes\n", s, S_MAX_HEX);
        free(out->data);
        return -1;
    }
    return 0;
}

/* The VP's name in the VM. */
static const char *s_vp_name(s_ctl_t *c, uint32_t vp, char *buf, size_t size)
{
    snprintf(buf, size, "%s/vp/%u", c->vm, vp);
    return buf;
}

static const char *s_partition(s_ctl_t *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s/partition", c->vm);
    return buf;
}

/* ---- inspect ---------------------------------------------------------------- */

static void s_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void s_print_json(const Vmm__Rt__InspectNode *n)
{
    printf("{\"name\": ");
    s_json_string(n->name);
    printf(", \"value\": ");
    s_json_string(n->value);
    if (n->n_children) {
        printf(", \"children\": [");
        for (size_t i = 0; i < n->n_children; i++) {
            if (i)
                printf(", ");
            s_print_json(n->children[i]);
        }
        putchar(']');
    }
    putchar('}');
}

static void s_print_tree(const Vmm__Rt__InspectNode *n, int depth)
{
    if (!depth)
        printf("%s (%s)\n", n->name, n->value);
    else if (*n->value)
        printf("%*s%s = %s\n", 2 * depth, "", n->name, n->value);
    else
        printf("%*s%s\n", 2 * depth, "", n->name);
    for (size_t i = 0; i < n->n_children; i++)
        s_print_tree(n->children[i], depth + 1);
}

/* Asks one actor for its tree; the reply is the caller's. */
static int s_inspect_one(s_ctl_t *c, const char *name, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    if (s_ask(c, name, &env, reply, c->timeout_ms))
        return -1;
    if (reply->env->body_case != VMM__ENVELOPE__BODY_INSPECT_REPLY) {
        fprintf(stderr, "vmm ctl: %s did not answer with its tree\n", name);
        rt_msg_release(reply);
        return -1;
    }
    return 0;
}

typedef struct {
    char **names;
    size_t n;
} s_names_t;

static void s_names_free(s_names_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

static int s_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every actor of the VM, sorted by name. */
static int s_list(s_ctl_t *c, s_names_t *out)
{
    Vmm__Control__Request req = VMM__CONTROL__REQUEST__INIT;
    Vmm__Control__ListActors list = VMM__CONTROL__LIST_ACTORS__INIT;
    req.op_case = VMM__CONTROL__REQUEST__OP_LIST_ACTORS;
    req.list_actors = &list;
    rt_msg_t reply;
    if (s_control(c, &req, &reply))
        return -1;
    const Vmm__Control__Reply *r = reply.env->control_reply;
    int rc = -1;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_CONTROL_REPLY &&
        r->result_case == VMM__CONTROL__REPLY__RESULT_ACTORS) {
        out->names = calloc(r->actors->n_actors + 1, sizeof *out->names);
        for (size_t i = 0; out->names && i < r->actors->n_actors; i++)
            if ((out->names[out->n] = strdup(r->actors->actors[i]->name)))
                out->n++;
        rc = out->names ? 0 : -1;
        if (out->names)
            qsort(out->names, out->n, sizeof *out->names, s_by_name);
    }
    if (rc)
        fprintf(stderr, "vmm ctl: the control endpoint did not list the actors\n");
    rt_msg_release(&reply);
    return rc;
}

static int s_cmd_inspect(s_ctl_t *c, int argc, char **argv)
{
    bool json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else {
            fprintf(stderr, "vmm ctl: inspect: unexpected '%s'\n", argv[i]);
            return S_EXIT_USAGE;
        }
    }
    s_names_t l = {0};
    char *one[1] = {(char *)path};
    if (path) {
        l.names = one;
        l.n = 1;
    } else if (s_list(c, &l)) {
        return S_EXIT_FAILED;
    }
    int status = 0;
    bool first = true;
    if (json)
        putchar('[');
    for (size_t i = 0; i < l.n; i++) {
        rt_msg_t reply;
        if (s_inspect_one(c, l.names[i], &reply)) {
            status = S_EXIT_FAILED;
            continue;
        }
        if (json) {
            printf(first ? "" : ",\n ");
            s_print_json(reply.env->inspect_reply);
        } else {
            s_print_tree(reply.env->inspect_reply, 0);
        }
        first = false;
        rt_msg_release(&reply);
    }
    if (json)
        printf("]\n");
    if (!path)
        s_names_free(&l);
    return status;
}

/* ---- pause, resume, reset, poweroff ------------------------------------------- */

static int s_pause_resume(s_ctl_t *c, int argc, char **argv, bool resume)
{
    if (argc > 2) {
        fprintf(stderr, "vmm ctl: %s: unexpected '%s'\n", argv[0], argv[2]);
        return S_EXIT_USAGE;
    }
    uint32_t vp = 0;
    if (argc == 2 && s_vp_arg(argv[1], &vp))
        return S_EXIT_USAGE;
    Vmm__Control__Request req = VMM__CONTROL__REQUEST__INIT;
    Vmm__Control__Pause pause = VMM__CONTROL__PAUSE__INIT;
    Vmm__Control__Resume res = VMM__CONTROL__RESUME__INIT;
    if (resume) {
        res.opt_vp_index_case = argc == 2 ? VMM__CONTROL__RESUME__OPT_VP_INDEX_VP_INDEX : 0;
        res.vp_index = vp;
        req.op_case = VMM__CONTROL__REQUEST__OP_RESUME;
        req.resume = &res;
    } else {
        pause.opt_vp_index_case = argc == 2 ? VMM__CONTROL__PAUSE__OPT_VP_INDEX_VP_INDEX : 0;
        pause.vp_index = vp;
        req.op_case = VMM__CONTROL__REQUEST__OP_PAUSE;
        req.pause = &pause;
    }
    return s_control(c, &req, NULL) ? S_EXIT_FAILED : 0;
}

static int s_cmd_pause(s_ctl_t *c, int argc, char **argv)
{
    return s_pause_resume(c, argc, argv, false);
}

static int s_cmd_resume(s_ctl_t *c, int argc, char **argv)
{
    return s_pause_resume(c, argc, argv, true);
}

static int s_cmd_reset(s_ctl_t *c, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "vmm ctl: reset: unexpected '%s'\n", argv[1]);
        return S_EXIT_USAGE;
    }
    Vmm__Control__Request req = VMM__CONTROL__REQUEST__INIT;
    Vmm__Control__Reset reset = VMM__CONTROL__RESET__INIT;
    req.op_case = VMM__CONTROL__REQUEST__OP_RESET;
    req.reset = &reset;
    return s_control(c, &req, NULL) ? S_EXIT_FAILED : 0;
}

static int s_cmd_snapshot(s_ctl_t *c, int argc, char **argv)
{
    bool paused = argc == 3 && !strcmp(argv[2], "--paused");
    if (argc < 2 || argc > 3 || (argc == 3 && !paused) || argv[1][0] == '-') {
        fprintf(stderr, "vmm ctl: snapshot DIR [--paused]\n");
        return S_EXIT_USAGE;
    }
    char dir[4096];
    /* The VMM writes it: a path relative to here means nothing there. */
    if (argv[1][0] != '/' && !realpath(".", dir)) {
        fprintf(stderr, "vmm ctl: snapshot: %s\n", strerror(errno));
        return S_EXIT_FAILED;
    }
    if (argv[1][0] != '/') {
        size_t n = strlen(dir);
        snprintf(dir + n, sizeof dir - n, "/%s", argv[1]);
    } else {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    }
    Vmm__Control__Request req = VMM__CONTROL__REQUEST__INIT;
    Vmm__Control__Snapshot op = VMM__CONTROL__SNAPSHOT__INIT;
    op.dir = dir;
    op.stay_paused = paused;
    req.op_case = VMM__CONTROL__REQUEST__OP_SNAPSHOT;
    req.snapshot = &op;
    /* Guest RAM takes a while to write: as long as the endpoint allows. */
    if (c->timeout_ms < S_SNAPSHOT_MS)
        c->timeout_ms = S_SNAPSHOT_MS;
    return s_control(c, &req, NULL) ? S_EXIT_FAILED : 0;
}

static int s_cmd_poweroff(s_ctl_t *c, int argc, char **argv)
{
    uint64_t status = 0;
    if (argc > 2) {
        fprintf(stderr, "vmm ctl: poweroff: unexpected '%s'\n", argv[2]);
        return S_EXIT_USAGE;
    }
    if (argc == 2 && s_number("STATUS", argv[1], 255, &status))
        return S_EXIT_USAGE;
    Vmm__Control__Request req = VMM__CONTROL__REQUEST__INIT;
    Vmm__Control__PowerOff off = VMM__CONTROL__POWER_OFF__INIT;
    off.exit_code = (uint32_t)status;
    req.op_case = VMM__CONTROL__REQUEST__OP_POWER_OFF;
    req.power_off = &off;
    return s_control(c, &req, NULL) ? S_EXIT_FAILED : 0;
}

/* ---- regs ---------------------------------------------------------------------- */

#define S_GPR(r) {#r, offsetof(Vmm__Vp__GeneralRegisters, r), false}
#define S_CR(r) {#r, offsetof(Vmm__Vp__ControlRegisters, r), true}
static const struct {
    const char *name;
    size_t offset;
    bool control;
} s_regs[] = {
    S_GPR(rax), S_GPR(rbx), S_GPR(rcx), S_GPR(rdx), S_GPR(rsi), S_GPR(rdi), S_GPR(rbp),
    S_GPR(rsp), S_GPR(r8),  S_GPR(r9),  S_GPR(r10), S_GPR(r11), S_GPR(r12), S_GPR(r13),
    S_GPR(r14), S_GPR(r15), S_GPR(rip), S_GPR(rflags), S_CR(cr0), S_CR(cr2), S_CR(cr3),
    S_CR(cr4),  S_CR(cr8),  S_CR(efer),
};
#define S_N_REGS (sizeof s_regs / sizeof s_regs[0])

static uint64_t *s_reg(Vmm__Vp__VpState *st, size_t i)
{
    void *base = s_regs[i].control ? (void *)st->control_registers
                                   : (void *)st->general_registers;
    return base ? (uint64_t *)((char *)base + s_regs[i].offset) : NULL;
}

static int s_cmd_regs(s_ctl_t *c, int argc, char **argv)
{
    uint32_t vp;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "vmm ctl: regs VP [NAME=VALUE]; see `vmm ctl ENDPOINT regs --help`\n");
        return S_EXIT_USAGE;
    }
    if (s_vp_arg(argv[1], &vp))
        return S_EXIT_USAGE;
    size_t which = S_N_REGS;
    uint64_t value = 0;
    if (argc == 3) {
        const char *eq = strchr(argv[2], '=');
        for (size_t i = 0; eq && i < S_N_REGS; i++)
            if (strlen(s_regs[i].name) == (size_t)(eq - argv[2]) &&
                !strncmp(argv[2], s_regs[i].name, (size_t)(eq - argv[2])))
                which = i;
        if (which == S_N_REGS) {
            fprintf(stderr, "vmm ctl: regs: '%s': NAME=VALUE, NAME one of rax ... r15, rip, "
                            "rflags, cr0, cr2, cr3, cr4, cr8, efer\n", argv[2]);
            return S_EXIT_USAGE;
        }
        if (s_number(s_regs[which].name, eq + 1, UINT64_MAX, &value))
            return S_EXIT_USAGE;
    }
    char name[64];
    s_vp_name(c, vp, name, sizeof name);
    Vmm__Vp__StateKind kinds[] = {VMM__VP__STATE_KIND__GENERAL_REGISTERS,
                                  VMM__VP__STATE_KIND__CONTROL_REGISTERS};
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    get.kinds = kinds;
    get.n_kinds = 2;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    req.get_state = &get;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    rt_msg_t reply;
    if (s_ask(c, name, &env, &reply, c->timeout_ms))
        return S_EXIT_FAILED;
    Vmm__Vp__VpState *st = reply.env->body_case == VMM__ENVELOPE__BODY_VP_REPLY &&
                                   reply.env->vp_reply->result_case ==
                                       VMM__VP__REPLY__RESULT_STATE
                               ? reply.env->vp_reply->state
                               : NULL;
    int status = 0;
    if (!st || !st->general_registers || !st->control_registers) {
        fprintf(stderr, "vmm ctl: %s did not answer with its registers\n", name);
        status = S_EXIT_FAILED;
    } else if (which < S_N_REGS) {
        /* Only the element that holds the register goes back. */
        *s_reg(st, which) = value;
        Vmm__Vp__VpState set_state = VMM__VP__VP_STATE__INIT;
        if (s_regs[which].control)
            set_state.control_registers = st->control_registers;
        else
            set_state.general_registers = st->general_registers;
        Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
        set.state = &set_state;
        req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
        req.set_state = &set;
        if (s_ask_ack(c, name, &env, c->timeout_ms))
            status = S_EXIT_FAILED;
    } else {
        for (size_t i = 0; i < S_N_REGS; i++)
            printf("%-6s 0x%016" PRIx64 "%s", s_regs[i].name, *s_reg(st, i),
                   i % 3 == 2 || i + 1 == S_N_REGS ? "\n" : "   ");
    }
    rt_msg_release(&reply);
    return status;
}

/* ---- mem, msi, post-message ------------------------------------------------------ */

static void s_hexdump(uint64_t gpa, const uint8_t *p, size_t len)
{
    for (size_t off = 0; off < len; off += 16) {
        printf("%016" PRIx64 ":", gpa + off);
        for (size_t i = off; i < off + 16; i++)
            i < len ? printf(" %02x", p[i]) : printf("   ");
        printf("  |");
        for (size_t i = off; i < off + 16 && i < len; i++)
            putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
        printf("|\n");
    }
}

static int s_cmd_mem(s_ctl_t *c, int argc, char **argv)
{
    bool read = argc >= 3 && !strcmp(argv[1], "read");
    bool write = argc == 4 && !strcmp(argv[1], "write");
    uint64_t gpa, len = 64;
    if ((!read && !write) || (read && argc > 4)) {
        fprintf(stderr, "vmm ctl: mem read GPA [LENGTH] | mem write GPA HEX\n");
        return S_EXIT_USAGE;
    }
    if (s_number("GPA", argv[2], UINT64_MAX, &gpa) ||
        (read && argc == 4 && s_number("LENGTH", argv[3], S_MAX_HEX, &len)))
        return S_EXIT_USAGE;
    char to[64];
    s_partition(c, to, sizeof to);
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    Vmm__Devices__ReadGuestMemory r = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    Vmm__Devices__WriteGuestMemory w = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    if (write) {
        if (s_hex(argv[3], &w.data))
            return S_EXIT_USAGE;
        w.gpa = gpa;
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
        req.write_guest_memory = &w;
        int rc = s_ask_ack(c, to, &env, c->timeout_ms);
        free(w.data.data);
        return rc ? S_EXIT_FAILED : 0;
    }
    if (!len) {
        fprintf(stderr, "vmm ctl: mem read: a LENGTH of 1 to %d\n", S_MAX_HEX);
        return S_EXIT_USAGE;
    }
    r.gpa = gpa;
    r.length = (uint32_t)len;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    req.read_guest_memory = &r;
    rt_msg_t reply;
    if (s_ask(c, to, &env, &reply, c->timeout_ms))
        return S_EXIT_FAILED;
    int status = 0;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_DEVICE_REPLY &&
        reply.env->device_reply->result_case == VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY)
        s_hexdump(gpa, reply.env->device_reply->read_guest_memory->data.data,
                  reply.env->device_reply->read_guest_memory->data.len);
    else {
        fprintf(stderr, "vmm ctl: %s did not answer with the bytes\n", to);
        status = S_EXIT_FAILED;
    }
    rt_msg_release(&reply);
    return status;
}

static int s_cmd_msi(s_ctl_t *c, int argc, char **argv)
{
    uint64_t address, data;
    if (argc != 3) {
        fprintf(stderr, "vmm ctl: msi ADDRESS DATA\n");
        return S_EXIT_USAGE;
    }
    if (s_number("ADDRESS", argv[1], UINT64_MAX, &address) ||
        s_number("DATA", argv[2], UINT32_MAX, &data))
        return S_EXIT_USAGE;
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = address;
    msi.data = (uint32_t)data;
    Vmm__Partition__RequestMsi op = VMM__PARTITION__REQUEST_MSI__INIT;
    op.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    req.request_msi = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    char to[64];
    return s_ask_ack(c, s_partition(c, to, sizeof to), &env, c->timeout_ms) ? S_EXIT_FAILED : 0;
}

static int s_cmd_post(s_ctl_t *c, int argc, char **argv)
{
    uint64_t sint, type;
    uint32_t vp;
    if (argc != 5) {
        fprintf(stderr, "vmm ctl: post-message VP SINT TYPE HEX\n");
        return S_EXIT_USAGE;
    }
    Vmm__Synic__PostMessage post = VMM__SYNIC__POST_MESSAGE__INIT;
    if (s_vp_arg(argv[1], &vp) || s_number("SINT", argv[2], 15, &sint) ||
        s_number("TYPE", argv[3], UINT32_MAX, &type) || s_hex(argv[4], &post.payload))
        return S_EXIT_USAGE;
    post.vp = vp;
    post.sint = (uint32_t)sint;
    post.message_type = (uint32_t)type;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &post;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = &req;
    char to[64];
    snprintf(to, sizeof to, "%s/synic", c->vm);
    int rc = s_ask_ack(c, to, &env, c->timeout_ms);
    free(post.payload.data);
    return rc ? S_EXIT_FAILED : 0;
}

/* ---- stats ---------------------------------------------------------------------- */

/* What stats shows, from each actor's tree: the runtime's counters for
 * every actor; a VP's exits by reason (exit_reasons) and its kicks out of
 * KVM_RUN. */
static const char *const s_counters[] = {"rx", "tx", "refused"};
#define S_N_COUNTERS 3
#define S_MAX_REASONS 16

typedef struct {
    char name[128], kind[32];
    uint64_t counts[S_N_COUNTERS];
    char reasons[S_MAX_REASONS][24];
    uint64_t exits[S_MAX_REASONS];
    size_t n_reasons;
} s_row_t;

static const Vmm__Rt__InspectNode *s_child(const Vmm__Rt__InspectNode *n, const char *name)
{
    for (size_t i = 0; i < n->n_children; i++)
        if (!strcmp(n->children[i]->name, name))
            return n->children[i];
    return NULL;
}

static uint64_t s_child_number(const Vmm__Rt__InspectNode *n, const char *name)
{
    const Vmm__Rt__InspectNode *child = s_child(n, name);
    return child ? strtoull(child->value, NULL, 0) : 0;
}

static void s_row_exit(s_row_t *row, const char *name, uint64_t count)
{
    if (row->n_reasons == S_MAX_REASONS)
        return;
    snprintf(row->reasons[row->n_reasons], sizeof row->reasons[0], "%s", name);
    row->exits[row->n_reasons++] = count;
}

static int s_stats_sample(s_ctl_t *c, const s_names_t *l, s_row_t *rows)
{
    int rc = 0;
    for (size_t i = 0; i < l->n; i++) {
        rt_msg_t reply;
        s_row_t *row = &rows[i];
        memset(row, 0, sizeof *row);
        snprintf(row->name, sizeof row->name, "%s", l->names[i]);
        if (s_inspect_one(c, l->names[i], &reply)) {
            rc = -1;
            snprintf(row->kind, sizeof row->kind, "?");
            continue;
        }
        const Vmm__Rt__InspectNode *root = reply.env->inspect_reply;
        snprintf(row->kind, sizeof row->kind, "%s", root->value);
        for (int k = 0; k < S_N_COUNTERS; k++)
            row->counts[k] = s_child_number(root, s_counters[k]);
        const Vmm__Rt__InspectNode *reasons = s_child(root, "exit_reasons");
        if (reasons) {
            for (size_t r = 0; r < reasons->n_children; r++)
                s_row_exit(row, reasons->children[r]->name,
                           strtoull(reasons->children[r]->value, NULL, 0));
            s_row_exit(row, "kicks", s_child_number(root, "kicks"));
        }
        rt_msg_release(&reply);
    }
    return rc;
}

/* The same counter in the previous sample (a reason may be new). */
static uint64_t s_prev_exits(const s_row_t *prev, const s_row_t *row, size_t r)
{
    for (size_t i = 0; prev && i < prev->n_reasons; i++)
        if (!strcmp(prev->reasons[i], row->reasons[r]))
            return prev->exits[i];
    return 0;
}

/* Totals, or with prev and a period, rates per second. */
static void s_stats_print(const s_names_t *l, const s_row_t *rows, const s_row_t *prev,
                          double seconds)
{
    const char *unit = prev ? "/s" : "";
    int wide = 12 + (int)strlen(unit);
    printf("%-28s %-10s %*s%s %*s%s %*s%s\n", "actor", "kind", wide - (int)strlen(unit), "rx",
           unit, wide - (int)strlen(unit), "tx", unit, wide - (int)strlen(unit), "refused", unit);
    for (size_t i = 0; i < l->n; i++) {
        printf("%-28s %-10s", rows[i].name, rows[i].kind);
        for (int k = 0; k < S_N_COUNTERS; k++) {
            double v = (double)rows[i].counts[k];
            if (prev)
                v = (v - (double)prev[i].counts[k]) / seconds;
            printf(" %*.*f", wide, prev ? 1 : 0, v);
        }
        putchar('\n');
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!rows[i].n_reasons)
            continue;
        printf("%s exits%s:", rows[i].name, unit);
        for (size_t r = 0; r < rows[i].n_reasons; r++) {
            double v = (double)rows[i].exits[r];
            if (prev)
                v = (v - (double)s_prev_exits(&prev[i], &rows[i], r)) / seconds;
            printf(" %s=%.*f", rows[i].reasons[r], prev ? 1 : 0, v);
        }
        putchar('\n');
    }
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_cmd_stats(s_ctl_t *c, int argc, char **argv)
{
    double period = 0;
    uint64_t count = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--watch") && i + 1 < argc) {
            period = strtod(argv[++i], &end);
            if (*end || period < 0.1 || period > 3600) {
                fprintf(stderr, "vmm ctl: stats --watch %s: seconds, 0.1 to 3600\n", argv[i]);
                return S_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--watch")) {
            period = 1;
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            if (s_number("--count", argv[++i], 1000000, &count))
                return S_EXIT_USAGE;
        } else {
            fprintf(stderr, "vmm ctl: stats: unexpected '%s'\n", argv[i]);
            return S_EXIT_USAGE;
        }
    }
    s_names_t l = {0};
    if (s_list(c, &l))
        return S_EXIT_FAILED;
    s_row_t *rows = calloc(l.n + 1, sizeof *rows), *prev = calloc(l.n + 1, sizeof *prev);
    int status = 0;
    if (!rows || !prev) {
        fprintf(stderr, "vmm ctl: out of memory\n");
        status = S_EXIT_FAILED;
        goto out;
    }
    if (s_stats_sample(c, &l, rows))
        status = S_EXIT_FAILED;
    if (!period) {
        s_stats_print(&l, rows, NULL, 0);
        goto out;
    }
    /* Like kvm_stat: rates over each period, the screen redrawn on a
     * terminal; until Ctrl-C, or --count periods. */
    bool tty = isatty(STDOUT_FILENO);
    for (uint64_t n = 0; !count || n < count; n++) {
        double start = s_now();
        memcpy(prev, rows, l.n * sizeof *rows);
        struct timespec pause = {(time_t)period, (long)((period - (double)(time_t)period) * 1e9)};
        nanosleep(&pause, NULL);
        if (s_stats_sample(c, &l, rows)) {
            status = S_EXIT_FAILED;
            break;
        }
        if (tty)
            printf("\033[H\033[2J");
        s_stats_print(&l, rows, prev, s_now() - start);
        if (!tty)
            putchar('\n');
        fflush(stdout);
    }
out:
    free(rows);
    free(prev);
    s_names_free(&l);
    return status;
}

/* ---- The commands ---------------------------------------------------------------- */

static const s_command_t s_commands[] = {
    {"inspect", "[ACTOR] [--json]",
     "Prints the state tree of every actor of the VM (those in device hosts\n"
     "too), or of one (vm0/vp/0, vm0/partition, vm0/dev/com1, ...); --json\n"
     "prints a list of trees, each {\"name\", \"value\", \"children\"}.\n",
     s_cmd_inspect},
    {"pause", "[VP]",
     "Stops every VP, or one, and returns once they have stopped: their\n"
     "registers can then be read and written.\n",
     s_cmd_pause},
    {"resume", "[VP]", "Runs again the VPs pause stopped, or one.\n", s_cmd_resume},
    {"regs", "VP [NAME=VALUE]",
     "Prints a paused VP's general and control registers, or sets one\n"
     "(rax ... r15, rip, rflags, cr0, cr2, cr3, cr4, cr8, efer; the value in\n"
     "decimal or 0x hex).\n",
     s_cmd_regs},
    {"mem", "read GPA [LENGTH] | write GPA HEX",
     "Reads guest memory at a guest physical address (LENGTH bytes, default\n"
     "64, at most 65536) as a hex dump, or writes bytes given as hex digits.\n",
     s_cmd_mem},
    {"msi", "ADDRESS DATA", "Raises an MSI with that address and data.\n", s_cmd_msi},
    {"post-message", "VP SINT TYPE HEX",
     "Posts a SynIC message of TYPE with the payload HEX (at most 240 bytes)\n"
     "to a VP's SINT (a VM run with --hyperv).\n",
     s_cmd_post},
    {"reset", "", "Resets the VM, as the guest's own reset would.\n", s_cmd_reset},
    {"snapshot", "DIR [--paused]",
     "Writes a snapshot of the VM into DIR, a new folder (vmm run --restore DIR\n"
     "continues it): the VPs are paused, every actor's state and guest RAM\n"
     "(sparse) are saved, and the VM runs on unless --paused.\n",
     s_cmd_snapshot},
    {"poweroff", "[STATUS]",
     "Powers the VM off; vmm run exits with STATUS (default 0).\n", s_cmd_poweroff},
    {"stats", "[--watch [SECONDS]] [--count N]",
     "Per actor, messages in and out and refusals; per VP, exits by reason.\n"
     "--watch: rates per second, every SECONDS (default 1), until Ctrl-C or\n"
     "N periods.\n",
     s_cmd_stats},
    {NULL, NULL, NULL, NULL},
};

/* A runtime of our own (with a CURVE key pair for tcp://) and a client. */
static int s_connect(s_ctl_t *c, const char *key_file, const char *server_key_file)
{
    rt_config_t cfg = {.log_level = RT_LOG_ERROR, .log_level_set = true};
    char pub[KEYS_Z85_LEN + 1], sec[KEYS_Z85_LEN + 1], err[4200];
    bool tcp = !strncmp(c->endpoint, "tcp://", 6);
    if (strncmp(c->endpoint, "ipc://", 6) && !tcp) {
        fprintf(stderr, "vmm ctl: %s: an ipc:// or tcp:// endpoint\n", c->endpoint);
        return -1;
    }
    if (tcp != (key_file && server_key_file) || (!tcp && (key_file || server_key_file))) {
        fprintf(stderr, "vmm ctl: %s\n", tcp ? "a tcp:// endpoint needs --key and --server-key"
                                             : "--key and --server-key are for tcp://");
        return -1;
    }
    /* Nothing listens there: say so now rather than wait for an answer. */
    struct stat st;
    if (!tcp && stat(c->endpoint + 6, &st) < 0) {
        fprintf(stderr, "vmm ctl: no VM listens at %s: %s\n", c->endpoint, strerror(errno));
        return -1;
    }
    if (!tcp && !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "vmm ctl: no VM listens at %s: not a socket\n", c->endpoint);
        return -1;
    }
    if (tcp) {
        if (keys_read_pair(key_file, pub, sec, err, sizeof err)) {
            fprintf(stderr, "vmm ctl: --key %s\n", err);
            return -1;
        }
        if (keys_read(server_key_file, false, c->server_z85, err, sizeof err)) {
            fprintf(stderr, "vmm ctl: --server-key %s\n", err);
            return -1;
        }
        cfg.curve_public_key = pub;
        cfg.curve_secret_key = sec;
        c->server_key = c->server_z85;
    }
    snprintf(c->vm, sizeof c->vm, "vm0");
    c->rt = rt_new(&cfg);
    c->client = c->rt ? rt_client_new(c->rt, "operator") : NULL;
    if (!c->client) {
        fprintf(stderr, "vmm ctl: cannot start a client\n");
        return -1;
    }
    return 0;
}

int ctl_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"server-key", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    s_ctl_t c = {.timeout_ms = S_DEFAULT_TIMEOUT_S * 1000};
    uint64_t seconds;
    char *end;
    const char *key_file = NULL, *server_key_file = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    /* "+": options end at ENDPOINT; the command's own follow it. */
    while ((ch = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        switch (ch) {
        case 'k':
            key_file = optarg;
            break;
        case 's':
            server_key_file = optarg;
            break;
        case 't':
            seconds = strtoull(optarg, &end, 10);
            if (*end || !*optarg || !seconds || seconds > 3600) {
                fprintf(stderr, "vmm ctl: --timeout %s: seconds, 1 to 3600\n", optarg);
                return S_EXIT_USAGE;
            }
            c.timeout_ms = (int)seconds * 1000;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vmm ctl: %s '%s'; see `vmm ctl --help`\n",
                    ch == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return S_EXIT_USAGE;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr, "vmm ctl: ENDPOINT COMMAND needed; see `vmm ctl --help`\n");
        return S_EXIT_USAGE;
    }
    c.endpoint = argv[optind];
    const s_command_t *cmd = s_commands;
    while (cmd->name && strcmp(cmd->name, argv[optind + 1]))
        cmd++;
    if (!cmd->name) {
        fprintf(stderr, "vmm ctl: unknown command '%s'; see `vmm ctl --help`\n",
                argv[optind + 1]);
        return S_EXIT_USAGE;
    }
    int cargc = argc - optind - 1;
    char **cargv = argv + optind + 1;
    for (int i = 1; i < cargc; i++)
        if (!strcmp(cargv[i], "--help") || !strcmp(cargv[i], "-h")) {
            s_command_usage(stdout, cmd);
            return 0;
        }
    if (s_connect(&c, key_file, server_key_file)) {
        rt_destroy(&c.rt);
        return S_EXIT_FAILED;
    }
    int status = cmd->fn(&c, cargc, cargv);
    rt_destroy(&c.rt);
    return status;
}
