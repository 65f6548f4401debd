/* Traces: what the writer records (envelopes on every path, actors,
 * clocks, timers, inputs), its filters, many writers at once, and the
 * reader's answers to files that are cut short, foreign or too new. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "runtime/testing/echo.h"
#include "runtime/trace.h"

static char s_path[64];
static pid_t s_writer; /* the process that wrote the trace, when not this one */

static void s_setup(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/trace-test-XXXXXX");
    int fd = mkstemp(s_path);
    cr_assert_geq(fd, 0);
    close(fd);
}

static void s_teardown(void)
{
    unlink(s_path);
}

static rt_t *s_traced(const char *const *actors, size_t n_actors, const char *const *kinds,
                      size_t n_kinds)
{
    rt_t *rt = rt_new(NULL);
    rt_trace_config_t cfg = {.path = s_path, .process = "trace_test", .actors = actors,
                             .n_actors = n_actors, .kinds = kinds, .n_kinds = n_kinds};
    char err[256] = "";
    cr_assert_eq(rt_trace_start(rt, &cfg, err, sizeof err), 0, "%s", err);
    return rt;
}

/* What a trace held, in counts. */
typedef struct {
    int actors, stopped, tx, rx, nested, clocks, timers, bytes;
    int pings_to_echo, pongs_from_echo;
    char last_bytes[32];
    bool seq_ordered;
} s_seen_t;

static void s_read_all(s_seen_t *s)
{
    memset(s, 0, sizeof *s);
    s->seq_ordered = true;
    char err[256] = "";
    rt_trace_reader_t *r = rt_trace_open(s_path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_expect_str_eq(rt_trace_header(r)->process, "trace_test");
    cr_expect_eq(rt_trace_header(r)->pid, s_writer ? (uint32_t)s_writer : (uint32_t)getpid());
    char last_ex[8][64] = {{0}};
    uint64_t last_seq[8] = {0};
    const Vmm__Trace__Record *rec;
    int rc;
    while ((rc = rt_trace_next(r, &rec, err, sizeof err)) == 1) {
        const char *ex = NULL;
        uint64_t seq = 0;
        switch (rec->record_case) {
        case VMM__TRACE__RECORD__RECORD_ACTOR:
            s->actors += !rec->actor->stopped;
            s->stopped += rec->actor->stopped;
            break;
        case VMM__TRACE__RECORD__RECORD_MESSAGE: {
            const Vmm__Trace__Message *m = rec->message;
            ex = m->executor, seq = m->seq;
            s->tx += m->dir == VMM__TRACE__DIR__TX;
            s->rx += m->dir == VMM__TRACE__DIR__RX;
            s->nested += m->dir == VMM__TRACE__DIR__NESTED;
            Vmm__Envelope *env = rt_trace_envelope(m);
            cr_assert_not_null(env, "every envelope here decodes");
            if (env->body_case == VMM__ENVELOPE__BODY_PING && !strcmp(env->receiver, "echo") &&
                m->dir != VMM__TRACE__DIR__RX)
                s->pings_to_echo++;
            if (env->body_case == VMM__ENVELOPE__BODY_PONG && !strcmp(env->sender, "echo") &&
                m->dir != VMM__TRACE__DIR__RX)
                s->pongs_from_echo++;
            vmm__envelope__free_unpacked(env, NULL);
            break;
        }
        case VMM__TRACE__RECORD__RECORD_INPUT:
            ex = rec->input->executor, seq = rec->input->seq;
            s->clocks += rec->input->input_case == VMM__TRACE__INPUT__INPUT_CLOCK_NS;
            s->timers += rec->input->input_case == VMM__TRACE__INPUT__INPUT_TIMER;
            if (rec->input->input_case == VMM__TRACE__INPUT__INPUT_BYTES) {
                s->bytes++;
                snprintf(s->last_bytes, sizeof s->last_bytes, "%.*s",
                         (int)rec->input->bytes->data.len, rec->input->bytes->data.data);
            }
            break;
        default:
            cr_assert_fail("a record of kind %d after the header", rec->record_case);
        }
        /* Each thread's records are in its order, one after another. */
        for (int i = 0; ex && i < 8; i++) {
            if (!last_ex[i][0])
                snprintf(last_ex[i], sizeof last_ex[i], "%s", ex);
            if (strcmp(last_ex[i], ex))
                continue;
            if (seq != last_seq[i] + 1)
                s->seq_ordered = false;
            last_seq[i] = seq;
            break;
        }
    }
    cr_expect_eq(rc, 0, "%s", err);
    rt_trace_close(&r);
}

/* ---- What is recorded ---------------------------------------------------------------- */

/* An actor that reads the clock, arms a timer and hands an input over, on
 * each Ping event. */
static void s_on_timer(rt_actor_t *self, uint64_t id)
{
    (void)id;
    char bytes[] = "from the mapping";
    rt_actor_input(self, 7, 0x1000, bytes, 16);
}

static int s_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    (void)msg;
    rt_timer_set(self, 3, rt_now_ns(self), s_on_timer);
    return 0;
}

static const rt_handler_t s_inputs_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_on_ping}};
static const rt_actor_ops_t s_inputs_ops = {.kind = "inputs", .handlers = s_inputs_handlers,
                                            .n_handlers = 1};

static void s_ping(rt_client_t *c, const char *to, bool one_way)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "hi", 2);
    if (one_way) {
        cr_assert_eq(rt_send(rt_client_actor(c), to, &env), 0);
        return;
    }
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), to, &env, &reply, 5000), 0);
    rt_msg_release(&reply);
}

Test(trace, records_envelopes_actors_clocks_timers_and_inputs, .init = s_setup,
     .fini = s_teardown)
{
    rt_t *rt = s_traced(NULL, 0, NULL, 0);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t inputs = {.name = "inputs", .ops = &s_inputs_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    cr_assert_eq(rt_actor_start(ex, &inputs), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 0; i < 3; i++)
        s_ping(c, "echo", false);
    s_ping(c, "inputs", true);
    for (int i = 0; i < 2000 && echo_inspect_number(rt_client_actor(c), "inputs", "rx") < 1;
         i++)
        usleep(1000);
    usleep(20000); /* the timer it armed fires */
    uint64_t records, dropped;
    rt_trace_stats(rt, &records, &dropped);
    cr_expect_gt(records, 10);
    cr_expect_eq(dropped, 0);
    rt_destroy(&rt);

    s_seen_t s;
    s_read_all(&s);
    cr_expect_geq(s.actors, 3, "echo, inputs and the client");
    cr_expect_eq(s.stopped, s.actors, "each stopped as the runtime ended");
    cr_expect_eq(s.pings_to_echo, 3);
    cr_expect_eq(s.pongs_from_echo, 3);
    cr_expect_geq(s.tx, 6, "each ping and pong left its sender");
    cr_expect_geq(s.rx, 6, "and reached its receiver, on another thread");
    cr_expect_geq(s.clocks, 1);
    cr_expect_eq(s.timers, 1);
    cr_expect_eq(s.bytes, 1);
    cr_expect_str_eq(s.last_bytes, "from the mapping");
    cr_expect(s.seq_ordered);
}

/* A relay on the echo's executor: a call to it is nested, one record. */
static int s_relay_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "nested", 6);
    rt_msg_t reply;
    int rc = rt_call(self, "echo", &env, &reply, 5000);
    if (rc)
        return rc;
    rt_msg_release(&reply);
    return rt_reply_ack(self, msg);
}

Test(trace, a_nested_call_is_one_record_each_way, .init = s_setup, .fini = s_teardown)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_relay_ping}};
    static const rt_actor_ops_t relay_ops = {.kind = "relay", .handlers = handlers,
                                             .n_handlers = 1};
    rt_t *rt = s_traced(NULL, 0, NULL, 0);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t relay = {.name = "relay", .ops = &relay_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    cr_assert_eq(rt_actor_start(ex, &relay), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    s_ping(c, "relay", false);
    rt_destroy(&rt);
    s_seen_t s;
    s_read_all(&s);
    cr_expect_eq(s.nested, 2, "the relay's call and the echo's reply");
    cr_expect_eq(s.pings_to_echo, 1);
    cr_expect_eq(s.pongs_from_echo, 1);
}

Test(trace, filters_keep_only_the_actors_and_kinds_asked_for, .init = s_setup,
     .fini = s_teardown)
{
    const char *actors[] = {"ech"};
    const char *kinds[] = {"pong"};
    rt_t *rt = s_traced(actors, 1, kinds, 1);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 0; i < 4; i++)
        s_ping(c, "echo", false);
    rt_destroy(&rt);
    s_seen_t s;
    s_read_all(&s);
    cr_expect_eq(s.actors, 1, "the echo, not the client");
    cr_expect_eq(s.pings_to_echo, 0, "no pings");
    cr_expect_eq(s.pongs_from_echo, 4, "the echo's pongs");
    cr_expect_eq(s.rx, 0, "the pongs' arrival is the client's");

    rt = rt_new(NULL);
    const char *bad[] = {"device_requests"};
    rt_trace_config_t cfg = {.path = s_path, .kinds = bad, .n_kinds = 1};
    char err[256] = "";
    cr_expect_eq(rt_trace_start(rt, &cfg, err, sizeof err), -EINVAL);
    cr_expect_neq(strstr(err, "device_requests"), NULL, "%s", err);
    cfg.path = "/nonexistent/dir/trace";
    cfg.n_kinds = 0;
    cr_expect_eq(rt_trace_start(rt, &cfg, err, sizeof err), -ENOENT);
    cr_expect_neq(strstr(err, "/nonexistent/dir/trace"), NULL, "%s", err);
    rt_destroy(&rt);
}

/* ---- Many writers ------------------------------------------------------------------- */

typedef struct {
    rt_client_t *c;
    int n;
} s_pinger_t;

static void *s_pinger(void *arg)
{
    s_pinger_t *p = arg;
    for (int i = 0; i < p->n; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, "load", 4);
        rt_msg_t reply;
        if (rt_call(rt_client_actor(p->c), "echo", &env, &reply, 5000) == 0)
            rt_msg_release(&reply);
    }
    return NULL;
}

Test(trace, many_threads_write_at_once_and_every_record_reads, .init = s_setup,
     .fini = s_teardown)
{
    rt_t *rt = s_traced(NULL, 0, NULL, 0);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    enum { THREADS = 4, N = 2000 };
    s_pinger_t p[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        p[i] = (s_pinger_t){.c = rt_client_new(rt, name), .n = N};
        cr_assert_eq(pthread_create(&th[i], NULL, s_pinger, &p[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    uint64_t records, dropped;
    rt_trace_stats(rt, &records, &dropped);
    rt_destroy(&rt);
    s_seen_t s;
    s_read_all(&s);
    cr_expect_eq(s.pings_to_echo, THREADS * N);
    cr_expect_eq(s.pongs_from_echo, THREADS * N);
    cr_expect_eq(dropped, 0);
    cr_expect(s.seq_ordered);
}

/* ---- Reading while it is written; a crash; memory ------------------------------------ */

/* Pings and pongs of the echo a file holds so far, read to its end. */
static int s_echo_records(void)
{
    s_seen_t s;
    s_read_all(&s);
    return s.pings_to_echo + s.pongs_from_echo;
}

static rt_client_t *s_echo_setup(rt_t *rt)
{
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    return rt_client_new(rt, "test");
}

Test(trace_live, a_trace_reads_while_it_is_written, .init = s_setup, .fini = s_teardown)
{
    rt_t *rt = s_traced(NULL, 0, NULL, 0);
    rt_client_t *c = s_echo_setup(rt);
    for (int i = 0; i < 100; i++)
        s_ping(c, "echo", false);
    int first = s_echo_records();
    cr_expect_eq(first, 200, "every ping and pong so far, and no error at the unwritten tail");
    for (int i = 0; i < 100; i++)
        s_ping(c, "echo", false);
    cr_expect_eq(s_echo_records(), 400, "and what came since, read again");
    rt_destroy(&rt);
}

Test(trace_live, a_crash_loses_no_record_that_was_written, .init = s_setup,
     .fini = s_teardown)
{
    enum { N = 500 };
    int done[2];
    cr_assert_eq(pipe(done), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        rt_t *rt = s_traced(NULL, 0, NULL, 0);
        rt_client_t *c = s_echo_setup(rt);
        for (int i = 0; i < N; i++)
            s_ping(c, "echo", false);
        char byte = 1;
        if (write(done[1], &byte, 1) != 1)
            _exit(1);
        raise(SIGKILL); /* no rt_destroy(): the file is as a crash leaves it */
        _exit(1);
    }
    close(done[1]);
    char byte = 0;
    cr_assert_eq(read(done[0], &byte, 1), 1, "the child made its calls");
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(done[0]);
    s_writer = pid;
    cr_expect_eq(s_echo_records(), 2 * N, "every call's ping and pong, whole");
}

/* Rss of the trace file's mapping in this process, in KiB. */
static long s_mapped_kib(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[512];
    bool ours = false;
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strchr(line, '-') && strstr(line, s_path))
            ours = true;
        else if (ours && sscanf(line, "Rss: %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    return kib;
}

Test(trace_live, memory_stays_bounded_on_a_long_trace, .init = s_setup, .fini = s_teardown)
{
    rt_t *rt = s_traced(NULL, 0, NULL, 0);
    rt_client_t *c = s_echo_setup(rt);
    static uint8_t payload[64 * 1024];
    /* Four records of 64 KiB a call: 400 calls write 100 MiB. */
    long most = 0;
    for (int i = 0; i < 400; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, payload, sizeof payload);
        rt_msg_t reply;
        cr_assert_eq(rt_call(rt_client_actor(c), "echo", &env, &reply, 5000), 0);
        rt_msg_release(&reply);
        if (i % 50 == 49) {
            long kib = s_mapped_kib();
            cr_assert_geq(kib, 0, "the trace's mapping is in smaps");
            most = kib > most ? kib : most;
        }
    }
    uint64_t records, dropped;
    rt_trace_stats(rt, &records, &dropped);
    cr_expect_eq(dropped, 0);
    rt_destroy(&rt);
    printf("the trace's mapping held at most %ld KiB while 100 MiB were written\n", most);
    /* Pages go at each growth: at most 20 MiB ahead (16 and a 4 MiB grow
     * step), 32 behind, and the up to 8 MiB written since the last growth
     * (from the grower's mark) when the grower runs late, as under ASan. */
    cr_expect_leq(most, 64 * 1024, "20 MiB ahead, at most 32 behind and 8 since the last "
                                   "growth: %ld KiB", most);
}

/* ---- Files that are not whole traces -------------------------------------------------- */

static void s_write_file(const char *path, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, bytes, len), (ssize_t)len);
    close(fd);
}

/* A short real trace, its bytes in *buf (malloc'ed). */
static size_t s_sample(uint8_t **buf)
{
    rt_t *rt = s_traced(NULL, 0, NULL, 0);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    s_ping(c, "echo", false);
    rt_destroy(&rt);
    FILE *f = fopen(s_path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    *buf = malloc((size_t)len);
    cr_assert_eq(fread(*buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return (size_t)len;
}

/* Reads a file to its end or first error: the number of records, and
 * whether an error came (its text in err). */
static int s_count(const char *path, char *err, size_t errlen, bool *failed)
{
    rt_trace_reader_t *r = rt_trace_open(path, err, errlen);
    *failed = !r;
    if (!r)
        return 0;
    int n = 0, rc;
    const Vmm__Trace__Record *rec;
    while ((rc = rt_trace_next(r, &rec, err, errlen)) == 1)
        n++;
    *failed = rc < 0;
    rt_trace_close(&r);
    return n;
}

/* Appends one record, length-prefixed as the trace format has it. */
static size_t s_put_record(uint8_t *out, const Vmm__Trace__Record *rec)
{
    size_t len = vmm__trace__record__get_packed_size(rec);
    out[0] = 0x80 | (len & 0x7f);
    out[1] = 0x80 | ((len >> 7) & 0x7f);
    out[2] = 0x80 | ((len >> 14) & 0x7f);
    out[3] = (uint8_t)(len >> 21);
    vmm__trace__record__pack(rec, out + 4);
    return 4 + len;
}

Test(trace_files, cut_short_foreign_or_newer_files_say_why, .init = s_setup,
     .fini = s_teardown)
{
    uint8_t *buf;
    size_t len = s_sample(&buf);
    char err[256];
    bool failed;
    int whole = s_count(s_path, err, sizeof err, &failed);
    cr_assert_not(failed, "%s", err);
    cr_assert_gt(whole, 4);

    /* Cut anywhere inside the last record: the others read, then an error. */
    s_write_file(s_path, buf, len - 3);
    int n = s_count(s_path, err, sizeof err, &failed);
    cr_expect(failed, "a record cut short is an error");
    cr_expect_eq(n, whole - 1);
    cr_expect_neq(strstr(err, "cut short"), NULL, "%s", err);

    /* What a crash leaves: zeroes after the last whole record. */
    uint8_t *crashed = calloc(1, len + 4096);
    memcpy(crashed, buf, len);
    s_write_file(s_path, crashed, len + 4096);
    cr_expect_eq(s_count(s_path, err, sizeof err, &failed), whole);
    cr_expect_not(failed, "the unwritten tail is the end: %s", err);

    /* A record whose bytes do not decode: the second's first field key
     * made one of wire type 7, which protobuf has not. */
    memcpy(crashed, buf, len);
    size_t header = (size_t)(buf[0] & 0x7f) | (size_t)(buf[1] & 0x7f) << 7 |
                    (size_t)(buf[2] & 0x7f) << 14 | (size_t)buf[3] << 21;
    crashed[4 + header + 4] = 0xff;
    s_write_file(s_path, crashed, len);
    err[0] = 0;
    cr_expect_eq(s_count(s_path, err, sizeof err, &failed), 0);
    cr_expect(failed);
    cr_expect_neq(strstr(err, "does not decode"), NULL, "%s", err);
    free(crashed);

    const char *foreign = "#!/bin/sh\necho not a trace\n";
    s_write_file(s_path, foreign, strlen(foreign));
    cr_expect_null(rt_trace_open(s_path, err, sizeof err));
    cr_expect_neq(strstr(err, "not a vmm trace"), NULL, "%s", err);
    s_write_file(s_path, "", 0);
    cr_expect_null(rt_trace_open(s_path, err, sizeof err));
    cr_expect_neq(strstr(err, "not a vmm trace"), NULL, "%s", err);
    cr_expect_null(rt_trace_open("/nonexistent/trace", err, sizeof err));
    cr_expect_neq(strstr(err, "No such file"), NULL, "%s", err);

    /* A header of a version after this reader's. */
    Vmm__Trace__Header h = VMM__TRACE__HEADER__INIT;
    h.magic = "vmm-trace";
    h.version = 99;
    Vmm__Trace__Record r = VMM__TRACE__RECORD__INIT;
    r.record_case = VMM__TRACE__RECORD__RECORD_HEADER;
    r.header = &h;
    uint8_t future[64];
    s_write_file(s_path, future, s_put_record(future, &r));
    cr_expect_null(rt_trace_open(s_path, err, sizeof err));
    cr_expect_neq(strstr(err, "version 99"), NULL, "%s", err);
    free(buf);
}

/* Writes the varint v just before p; returns where it starts. */
static uint8_t *s_prepend_varint(uint8_t *p, size_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    p -= n;
    memcpy(p, b, n);
    return p;
}

/* A trace is a file anyone may hand the tools: an envelope in it nested
 * 100 000 deep (an InspectNode in an InspectNode) must not take the stack
 * of the reader, which decodes envelopes with protobuf-c. */
Test(trace_files, an_envelope_nested_too_deep_does_not_decode, .init = s_setup,
     .fini = s_teardown)
{
    enum { DEPTH = 100000 };
    size_t cap = DEPTH * 6 + 64;
    uint8_t *nest = malloc(cap), *end = nest + cap, *p = end;
    for (int i = 0; i < DEPTH; i++) {
        p = s_prepend_varint(p, (size_t)(end - p));
        *--p = 0x1a; /* InspectNode.children: field 3, bytes */
    }
    p = s_prepend_varint(p, (size_t)(end - p));
    *--p = 0x01; /* Envelope.inspect_reply: field 16, bytes */
    *--p = 0x82;

    Vmm__Trace__Header h = VMM__TRACE__HEADER__INIT;
    h.magic = "vmm-trace";
    h.version = 1;
    Vmm__Trace__Record hr = VMM__TRACE__RECORD__INIT;
    hr.record_case = VMM__TRACE__RECORD__RECORD_HEADER;
    hr.header = &h;
    Vmm__Trace__Message m = VMM__TRACE__MESSAGE__INIT;
    m.actor = "echo";
    m.executor = "ex0";
    m.envelope = (ProtobufCBinaryData){(size_t)(end - p), p};
    Vmm__Trace__Record mr = VMM__TRACE__RECORD__INIT;
    mr.record_case = VMM__TRACE__RECORD__RECORD_MESSAGE;
    mr.message = &m;
    uint8_t *file = malloc(cap + 256);
    size_t at = s_put_record(file, &hr);
    at += s_put_record(file + at, &mr);
    s_write_file(s_path, file, at);

    char err[256];
    rt_trace_reader_t *r = rt_trace_open(s_path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    const Vmm__Trace__Record *rec;
    cr_assert_eq(rt_trace_next(r, &rec, err, sizeof err), 1, "%s", err);
    cr_assert_eq(rec->record_case, VMM__TRACE__RECORD__RECORD_MESSAGE);
    cr_expect_null(rt_trace_envelope(rec->message), "refused, not decoded");
    char text[512];
    rt_trace_describe(rt_trace_header(r), rec, text, sizeof text);
    cr_expect_neq(text[0], 0, "described all the same");
    rt_trace_close(&r);
    free(file);
    free(nest);
}
