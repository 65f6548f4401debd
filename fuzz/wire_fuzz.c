/*
 * The envelope decoder against protobuf-c, differentially: both accept the
 * same bytes, and what they decode packs to the same bytes. The one
 * difference allowed is the decoder's: it refuses messages nested deeper
 * than protobuf-c's recursion can safely go (wire.c's S_MAX_DEPTH).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

#define S_MAX_DEPTH 32

/* How deep the message nests: 1 for one without message fields set. */
static int s_depth(const ProtobufCMessage *m)
{
    int deepest = 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *at = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)at;
            for (size_t k = 0; k < n; k++) {
                int sub = s_depth(items[k]);
                deepest = sub > deepest ? sub : deepest;
            }
        } else if (*(ProtobufCMessage *const *)at) {
            int sub = s_depth(*(ProtobufCMessage *const *)at);
            deepest = sub > deepest ? sub : deepest;
        }
    }
    return deepest + 1;
}

static void s_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "wire_fuzz: %s (%zu bytes)\n", what, size);
    (void)data;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_msg_t ours;
    int rc = rt_msg_unpack(&ours, data, size);
    Vmm__Envelope *theirs = vmm__envelope__unpack(NULL, size, data);
    if (rc == 0 && !theirs)
        s_fail("the decoder took what protobuf-c refuses", data, size);
    if (rc != 0 && theirs && s_depth(&theirs->base) <= S_MAX_DEPTH + 1)
        s_fail("the decoder refused what protobuf-c takes", data, size);
    if (rc == 0) {
        size_t a = vmm__envelope__get_packed_size(ours.env);
        size_t b = vmm__envelope__get_packed_size(theirs);
        uint8_t *pa = malloc(a ? a : 1), *pb = malloc(b ? b : 1);
        if (!pa || !pb)
            abort();
        vmm__envelope__pack(ours.env, pa);
        vmm__envelope__pack(theirs, pb);
        if (a != b || memcmp(pa, pb, a))
            s_fail("the two decoded envelopes pack differently", data, size);
        free(pa);
        free(pb);
        rt_msg_release(&ours);
    }
    if (theirs)
        vmm__envelope__free_unpacked(theirs, NULL);
    return 0;
}
