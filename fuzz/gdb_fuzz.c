/*
 * What a debugger and a guest give the gdb actor: the remote protocol's
 * bytes (packets, escapes, checksums, acks, interrupts), each packet framed
 * again and read back to itself; and the page walk over page tables the
 * guest wrote, for any paging mode and address. The input's first 40
 * bytes are the control registers and address, all of it guest memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gdb/gdb_x86.h"
#include "actors/gdb/rsp.h"

typedef struct {
    const uint8_t *mem;
    size_t len;
} s_mem_t;

static int s_read(void *arg, uint64_t gpa, void *buf, size_t len)
{
    const s_mem_t *m = arg;
    if (gpa > m->len || len > m->len - gpa)
        return -EFAULT;
    memcpy(buf, m->mem + gpa, len);
    return 0;
}

static uint64_t s_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static rsp_reader_t s_r, s_again;
static char s_framed[2 * RSP_MAX_PACKET + 8], s_copy[RSP_MAX_PACKET + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rsp_reader_init(&s_r);
    for (size_t i = 0; i < size; i++) {
        if (rsp_feed(&s_r, data[i]) != RSP_PACKET)
            continue;
        memcpy(s_copy, s_r.data, s_r.len + 1);
        size_t len = s_r.len;
        /* Framed again and read back: the same bytes. */
        size_t n = rsp_frame(s_copy, len, s_framed, sizeof s_framed);
        if (!n)
            abort(); /* room for twice the packet was given */
        rsp_reader_init(&s_again);
        rsp_event_t ev = RSP_MORE;
        for (size_t k = 0; k < n && ev == RSP_MORE; k++)
            ev = rsp_feed(&s_again, (uint8_t)s_framed[k]);
        if (ev != RSP_PACKET)
            abort();
        size_t back = rsp_unescape(s_again.data, s_again.len);
        if (back != len || memcmp(s_again.data, s_copy, len))
            abort();
        uint64_t value;
        const char *end;
        rsp_hex_number(s_copy, &value, &end);
        uint8_t bytes[64];
        rsp_unhex(s_copy, len / 2 < sizeof bytes ? len / 2 : sizeof bytes, bytes);
    }
    if (size >= 40) {
        Vmm__Vp__ControlRegisters cr = VMM__VP__CONTROL_REGISTERS__INIT;
        cr.cr0 = s_u64(data);
        cr.cr3 = s_u64(data + 8);
        cr.cr4 = s_u64(data + 16);
        cr.efer = s_u64(data + 24);
        s_mem_t m = {data, size};
        uint64_t gpa, left;
        if (!gdb_x86_translate(&cr, s_u64(data + 32), s_read, &m, &gpa, &left) &&
            (!left || left > (1ull << 30)))
            abort(); /* a page is at most 1 GiB (2 MiB, 4 MiB) */
    }
    return 0;
}
