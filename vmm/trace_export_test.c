/*
 * `vmm trace export` on the recorded trace of a VM and its device host
 * (tests/traces/devhost.trace and .devhost0), decoded with the project's
 * own copy of the Perfetto fields it uses (proto/perfetto.proto): the
 * tracks by host, process and actor, balanced slices in time order, and
 * the flows from a VP's exit to the device's handling in the other process
 * and back, and from the test device's MSI to the partition.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/perfetto.pb-c.h"
#include "vmm/trace_export.h"

static Vmm__Perfetto__Trace *s_trace;
static char s_out[64];

static void s_export(void)
{
    snprintf(s_out, sizeof s_out, "/tmp/export-test-XXXXXX");
    int fd = mkstemp(s_out);
    cr_assert_geq(fd, 0);
    close(fd);
    const char *files[] = {"tests/traces/devhost.trace", "tests/traces/devhost.trace.devhost0"};
    trace_export_stats_t st;
    char err[512] = "";
    cr_assert_eq(trace_export(files, 2, s_out, &st, err, sizeof err), 0, "%s", err);
    cr_expect_gt(st.slices, 10);
    cr_expect_gt(st.flows, 10);
    FILE *f = fopen(s_out, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)len);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    s_trace = vmm__perfetto__trace__unpack(NULL, (size_t)len, buf);
    free(buf);
    cr_assert_not_null(s_trace, "the export decodes as a Perfetto Trace");
}

static void s_free(void)
{
    if (s_trace)
        vmm__perfetto__trace__free_unpacked(s_trace, NULL);
    unlink(s_out);
}

static const Vmm__Perfetto__TrackDescriptor *s_track_named(const char *name, uint64_t parent)
{
    for (size_t i = 0; i < s_trace->n_packet; i++) {
        const Vmm__Perfetto__TrackDescriptor *d = s_trace->packet[i]->track_descriptor;
        if (d && d->name && !strcmp(d->name, name) && (!parent || d->parent_uuid == parent))
            return d;
    }
    return NULL;
}

static const Vmm__Perfetto__TrackDescriptor *s_track(uint64_t uuid)
{
    for (size_t i = 0; i < s_trace->n_packet; i++) {
        const Vmm__Perfetto__TrackDescriptor *d = s_trace->packet[i]->track_descriptor;
        if (d && d->uuid == uuid)
            return d;
    }
    return NULL;
}

/* The first event on track with this flow (ending: among its terminating
 * flows) of type and whose name starts with prefix. */
static const Vmm__Perfetto__TrackEvent *s_find(uint64_t track, int type, const char *prefix,
                                               uint64_t flow, bool ending)
{
    for (size_t i = 0; i < s_trace->n_packet; i++) {
        const Vmm__Perfetto__TrackEvent *e = s_trace->packet[i]->track_event;
        if (!e || e->track_uuid != track || (int)e->type != type)
            continue;
        if (prefix && (!e->name || strncmp(e->name, prefix, strlen(prefix))))
            continue;
        size_t n = ending ? e->n_terminating_flow_ids : e->n_flow_ids;
        const uint64_t *ids = ending ? e->terminating_flow_ids : e->flow_ids;
        for (size_t k = 0; k < n; k++)
            if (!flow || ids[k] == flow)
                return e;
    }
    return NULL;
}

Test(export, tracks_by_host_process_and_actor, .init = s_export, .fini = s_free)
{
    const Vmm__Perfetto__TracePacket *first = s_trace->packet[0];
    cr_assert_not_null(first->clock_snapshot, "a clock snapshot first");
    cr_expect_eq(first->clock_snapshot->primary_trace_clock, 3, "CLOCK_MONOTONIC");

    const Vmm__Perfetto__TrackDescriptor *vp = s_track_named("vm0/vp/0", 0);
    cr_assert_not_null(vp);
    const Vmm__Perfetto__TrackDescriptor *vm = s_track(vp->parent_uuid);
    cr_assert_not_null(vm, "the VP's process");
    cr_expect_eq(strncmp(vm->name, "vmm run (pid ", 13), 0, "%s", vm->name);
    const Vmm__Perfetto__TrackDescriptor *host = s_track(vm->parent_uuid);
    cr_assert_not_null(host, "its host");
    cr_expect_not(host->has_parent_uuid, "hosts are at the top");

    /* COM1 ran in the device host: a track under the other process. */
    const Vmm__Perfetto__TrackDescriptor *devhost = NULL, *com1 = NULL;
    for (size_t i = 0; i < s_trace->n_packet && !com1; i++) {
        const Vmm__Perfetto__TrackDescriptor *d = s_trace->packet[i]->track_descriptor;
        if (d && d->name && !strcmp(d->name, "vm0/dev/com1") && d->parent_uuid != vm->uuid)
            com1 = d;
    }
    cr_assert_not_null(com1, "COM1's track in the device host's process");
    devhost = s_track(com1->parent_uuid);
    cr_assert_not_null(devhost);
    cr_expect_eq(strncmp(devhost->name, "vmm devhost (pid ", 17), 0, "%s", devhost->name);
    cr_expect_eq(devhost->parent_uuid, host->uuid, "one host: both processes under it");
}

Test(export, slices_balance_and_time_runs_forward, .init = s_export, .fini = s_free)
{
    uint64_t last = 0;
    size_t begins = 0, ends = 0;
    for (size_t i = 0; i < s_trace->n_packet; i++) {
        const Vmm__Perfetto__TracePacket *p = s_trace->packet[i];
        if (!p->track_event)
            continue;
        cr_assert(p->has_timestamp);
        cr_assert_geq(p->timestamp, last, "packet %zu goes back in time", i);
        last = p->timestamp;
        cr_assert(s_track(p->track_event->track_uuid) != NULL, "an event on no track");
        begins += p->track_event->type == VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN;
        ends += p->track_event->type == VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_END;
    }
    cr_expect_gt(begins, 100);
    cr_expect_eq(begins, ends, "every slice ends");
}

Test(export, flows_lead_from_an_exit_to_its_device_and_back, .init = s_export,
     .fini = s_free)
{
    const Vmm__Perfetto__TrackDescriptor *vp = s_track_named("vm0/vp/0", 0);
    const Vmm__Perfetto__TrackEvent *exit_ =
        s_find(vp->uuid, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_INSTANT,
               "to vm0/dev/com1: device_request.read_io", 0, false);
    cr_assert_not_null(exit_, "the VP's read of COM1");
    uint64_t flow = exit_->flow_ids[0];

    /* Its handling, in the device host's process. */
    const Vmm__Perfetto__TrackEvent *handled = NULL;
    for (size_t i = 0; i < s_trace->n_packet && !handled; i++) {
        const Vmm__Perfetto__TrackDescriptor *d = s_trace->packet[i]->track_descriptor;
        if (d && d->name && !strcmp(d->name, "vm0/dev/com1") && d->parent_uuid != vp->parent_uuid)
            handled = s_find(d->uuid, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN,
                             "device_request.read_io", flow, false);
    }
    cr_assert_not_null(handled, "the request's flow reaches COM1's handling across processes");
    cr_assert_eq(handled->n_debug_annotations, 2);
    cr_expect_str_eq(handled->debug_annotations[0]->string_value, "vm0/vp/0");
    cr_expect_not_null(s_find(vp->uuid, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_INSTANT,
                              "reply from vm0/dev/com1", flow, true),
                       "and ends at the reply's arrival on the VP");

    /* The test device's MSI, to the partition. */
    const Vmm__Perfetto__TrackDescriptor *testdev = s_track_named("vm0/dev/testdev", 0);
    const Vmm__Perfetto__TrackDescriptor *partition = s_track_named("vm0/partition", 0);
    cr_assert(testdev && partition);
    const Vmm__Perfetto__TrackEvent *msi =
        s_find(testdev->uuid, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_INSTANT,
               "to vm0/partition: partition_request.request_msi", 0, false);
    cr_assert_not_null(msi);
    const Vmm__Perfetto__TrackEvent *taken =
        s_find(partition->uuid, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN,
               "partition_request.request_msi", msi->flow_ids[0], false);
    const Vmm__Perfetto__TrackEvent *taken_end =
        s_find(partition->uuid, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN,
               "partition_request.request_msi", msi->flow_ids[0], true);
    cr_expect(taken || taken_end, "the MSI's flow reaches the partition's handling");
}
