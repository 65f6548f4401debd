/*
 * The gdb actor's plain parts, alone: packets in and out (rsp.h), the
 * registers in gdb's order and the page walk (gdb_x86.h) over a fake
 * physical memory. The actor against a real gdb and VM is tests/gdb_test.sh.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "actors/gdb/gdb_x86.h"
#include "actors/gdb/rsp.h"

/* ---- Packets ------------------------------------------------------------------- */

static rsp_event_t s_feed(rsp_reader_t *r, const char *bytes, size_t n)
{
    rsp_event_t last = RSP_MORE;
    for (size_t i = 0; i < n; i++) {
        rsp_event_t e = rsp_feed(r, (uint8_t)bytes[i]);
        if (e != RSP_MORE)
            last = e;
    }
    return last;
}

Test(rsp, a_framed_packet_reads_back)
{
    char out[64];
    size_t n = rsp_frame("qSupported:xmlRegisters=i386", 28, out, sizeof out);
    cr_assert_gt(n, 0);
    cr_expect_eq(out[0], '$');
    cr_expect_eq(out[n - 3], '#');
    rsp_reader_t r;
    rsp_reader_init(&r);
    cr_assert_eq(s_feed(&r, out, n), RSP_PACKET);
    cr_expect_str_eq(r.data, "qSupported:xmlRegisters=i386");
    /* gdb's own "$?#3f". */
    cr_expect_eq(s_feed(&r, "$?#3f", 5), RSP_PACKET);
    cr_expect_str_eq(r.data, "?");
}

Test(rsp, a_bad_checksum_acks_and_interrupts_are_told_apart)
{
    rsp_reader_t r;
    rsp_reader_init(&r);
    cr_expect_eq(s_feed(&r, "$?#00", 5), RSP_BAD_PACKET);
    cr_expect_eq(s_feed(&r, "$?#zz", 5), RSP_BAD_PACKET);
    cr_expect_eq(rsp_feed(&r, '+'), RSP_ACK);
    cr_expect_eq(rsp_feed(&r, '-'), RSP_NACK);
    cr_expect_eq(rsp_feed(&r, 0x03), RSP_INTERRUPT);
    cr_expect_eq(rsp_feed(&r, 'x'), RSP_MORE, "noise between packets");
    cr_expect_eq(s_feed(&r, "$g#67", 5), RSP_PACKET);
}

Test(rsp, an_oversized_packet_is_refused_not_overrun)
{
    rsp_reader_t r;
    rsp_reader_init(&r);
    cr_assert_eq(rsp_feed(&r, '$'), RSP_MORE);
    uint8_t sum = 0;
    for (int i = 0; i < RSP_MAX_PACKET + 100; i++) {
        rsp_feed(&r, 'a');
        sum = (uint8_t)(sum + 'a');
    }
    char tail[4];
    snprintf(tail, sizeof tail, "#%02x", sum);
    cr_expect_eq(s_feed(&r, tail, 3), RSP_BAD_PACKET);
    cr_expect_eq(r.len, RSP_MAX_PACKET);
}

Test(rsp, binary_escapes_round_trip)
{
    const char raw[] = {'a', '#', '$', '}', '*', 0, 'z'};
    char out[64];
    size_t n = rsp_frame(raw, sizeof raw, out, sizeof out);
    rsp_reader_t r;
    rsp_reader_init(&r);
    cr_assert_eq(s_feed(&r, out, n), RSP_PACKET);
    size_t len = rsp_unescape(r.data, r.len);
    cr_assert_eq(len, sizeof raw);
    cr_expect_eq(memcmp(r.data, raw, len), 0);
    cr_expect_eq(rsp_frame(raw, sizeof raw, out, 8), 0, "too small is refused");
}

Test(rsp, hex_both_ways)
{
    uint8_t b[3] = {0x00, 0xab, 0xff}, back[3];
    char hex[7];
    rsp_hex(b, 3, hex);
    cr_expect_str_eq(hex, "00abff");
    cr_expect_eq(rsp_unhex("00ABff", 3, back), 0);
    cr_expect_eq(memcmp(b, back, 3), 0);
    cr_expect_eq(rsp_unhex("0g", 1, back), -1);
    uint64_t v;
    const char *end;
    cr_expect_eq(rsp_hex_number("1fA,8", &v, &end), 0);
    cr_expect_eq(v, 0x1fa);
    cr_expect_eq(*end, ',');
    cr_expect_eq(rsp_hex_number(",8", &v, &end), -1);
    cr_expect_eq(rsp_hex_number("11112222333344445", &v, &end), -1, "over 64 bits");
}

/* ---- Registers --------------------------------------------------------------------- */

static uint64_t s_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

Test(x86, registers_go_in_gdbs_amd64_order)
{
    Vmm__Vp__GeneralRegisters g = VMM__VP__GENERAL_REGISTERS__INIT;
    g.rax = 1, g.rbx = 2, g.rcx = 3, g.rdx = 4, g.rsi = 5, g.rdi = 6, g.rbp = 7, g.rsp = 8;
    g.r8 = 9, g.r15 = 16, g.rip = 0x100123, g.rflags = 0x202;
    Vmm__Vp__SegmentRegister cs = VMM__VP__SEGMENT_REGISTER__INIT;
    cs.selector = 0x10;
    Vmm__Vp__Segments segs = VMM__VP__SEGMENTS__INIT;
    segs.cs = &cs;
    uint8_t xsave[512] = {0};
    xsave[0] = 0x7f, xsave[1] = 0x03; /* FCW 0x37f */
    xsave[4] = 0x01;                  /* st0 in use */
    xsave[24] = 0x80, xsave[25] = 0x1f; /* MXCSR 0x1f80 */
    xsave[32] = 0xaa;                 /* st0's low byte */
    xsave[160 + 16] = 0x55;           /* xmm1's low byte */
    Vmm__Vp__Xsave x = VMM__VP__XSAVE__INIT;
    x.data.data = xsave;
    x.data.len = sizeof xsave;
    Vmm__Vp__VpState st = VMM__VP__VP_STATE__INIT;
    st.general_registers = &g;
    st.segments = &segs;
    st.xsave = &x;
    uint8_t out[GDB_X86_REGS_BYTES];
    gdb_x86_pack(&st, out);
    size_t off, size;
    const uint64_t want[17] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 0, 0, 16, 0x100123};
    for (unsigned r = 0; r < 17; r++) {
        cr_assert_eq(gdb_x86_reg(r, &off, &size), 0);
        cr_expect_eq(s_le(out + off, size), want[r], "register %u", r);
    }
    gdb_x86_reg(GDB_X86_REG_EFLAGS, &off, &size);
    cr_expect_eq(size, 4);
    cr_expect_eq(s_le(out + off, size), 0x202);
    gdb_x86_reg(18, &off, &size);
    cr_expect_eq(s_le(out + off, size), 0x10, "cs");
    gdb_x86_reg(24, &off, &size);
    cr_expect_eq(size, 10);
    cr_expect_eq(out[off], 0xaa, "st0");
    gdb_x86_reg(32, &off, &size);
    cr_expect_eq(s_le(out + off, size), 0x37f, "fctrl");
    gdb_x86_reg(34, &off, &size);
    cr_expect_eq(s_le(out + off, size), 0xfffc, "ftag: st0 in use, the others empty");
    gdb_x86_reg(41, &off, &size);
    cr_expect_eq(out[off], 0x55, "xmm1");
    gdb_x86_reg(56, &off, &size);
    cr_expect_eq(s_le(out + off, size), 0x1f80, "mxcsr");
    cr_expect_eq(off + size, GDB_X86_REGS_BYTES);
    cr_expect_eq(gdb_x86_reg(GDB_X86_NUM_REGS, &off, &size), -1);
    cr_expect(strstr(gdb_x86_target_xml, "<reg name=\"mxcsr\""));
}

Test(x86, only_general_registers_rip_and_eflags_can_be_set)
{
    Vmm__Vp__GeneralRegisters g = VMM__VP__GENERAL_REGISTERS__INIT;
    g.rflags = 0xffffffff00000002ull;
    const uint8_t v8[8] = {0x34, 0x12, 0, 0, 0, 0, 0, 0}, v4[4] = {0x46, 0x02, 0, 0};
    cr_expect_eq(gdb_x86_set(&g, 15, v8, 8), 0);
    cr_expect_eq(g.r15, 0x1234);
    cr_expect_eq(gdb_x86_set(&g, GDB_X86_REG_RIP, v8, 8), 0);
    cr_expect_eq(g.rip, 0x1234);
    cr_expect_eq(gdb_x86_set(&g, GDB_X86_REG_EFLAGS, v4, 4), 0);
    cr_expect_eq(g.rflags, 0xffffffff00000246ull, "the upper half stays");
    cr_expect_eq(gdb_x86_set(&g, 0, v4, 4), -EINVAL);
    cr_expect_eq(gdb_x86_set(&g, 18, v4, 4), -ENOTSUP, "cs");
}

/* ---- Translation ------------------------------------------------------------------- */

static uint8_t s_mem[1 << 20];

static int s_read(void *arg, uint64_t gpa, void *buf, size_t len)
{
    (void)arg;
    if (gpa + len > sizeof s_mem)
        return -EFAULT;
    memcpy(buf, s_mem + gpa, len);
    return 0;
}

static void s_put64(uint64_t gpa, uint64_t v)
{
    memcpy(s_mem + gpa, &v, 8);
}

static void s_put32(uint64_t gpa, uint32_t v)
{
    memcpy(s_mem + gpa, &v, 4);
}

Test(x86, paging_off_is_the_identity)
{
    Vmm__Vp__ControlRegisters cr = VMM__VP__CONTROL_REGISTERS__INIT;
    uint64_t gpa, left;
    cr_expect_eq(gdb_x86_translate(&cr, 0x12345, s_read, NULL, &gpa, &left), 0);
    cr_expect_eq(gpa, 0x12345);
    cr_expect_eq(left, 0x1000 - 0x345);
}

Test(x86, four_levels_with_small_and_large_pages)
{
    memset(s_mem, 0, sizeof s_mem);
    Vmm__Vp__ControlRegisters cr = VMM__VP__CONTROL_REGISTERS__INIT;
    cr.cr0 = 1ull << 31;
    cr.cr4 = 1ull << 5;
    cr.efer = 1ull << 10;
    cr.cr3 = 0x1000;
    /* 0xffff800000201000 -> 0x50000 (4 KiB); 0x400000 -> 0x600000 (2 MiB). */
    uint64_t va = 0xffff800000201000ull;
    s_put64(0x1000 + 8 * ((va >> 39) & 511), 0x2000 | 1);
    s_put64(0x2000 + 8 * ((va >> 30) & 511), 0x3000 | 1);
    s_put64(0x3000 + 8 * ((va >> 21) & 511), 0x4000 | 1);
    s_put64(0x4000 + 8 * ((va >> 12) & 511), 0x50000 | 1);
    s_put64(0x1000, 0x5000 | 1);
    s_put64(0x5000, 0x6000 | 1);
    s_put64(0x6000 + 8 * 2, 0x600000 | 0x80 | 1);
    uint64_t gpa, left;
    cr_expect_eq(gdb_x86_translate(&cr, va + 0x10, s_read, NULL, &gpa, &left), 0);
    cr_expect_eq(gpa, 0x50010);
    cr_expect_eq(left, 0xff0);
    cr_expect_eq(gdb_x86_translate(&cr, 0x4abcde, s_read, NULL, &gpa, &left), 0);
    cr_expect_eq(gpa, 0x6abcde);
    cr_expect_eq(left, 0x200000 - 0xabcde);
    cr_expect_eq(gdb_x86_translate(&cr, 0x40000000, s_read, NULL, &gpa, &left), -EFAULT,
                 "not present");
    cr_expect_eq(gdb_x86_translate(&cr, 0x0000800000000000ull, s_read, NULL, &gpa, &left),
                 -EFAULT, "not canonical");
}

Test(x86, thirty_two_bit_paging_with_4_mib_pages_and_pae)
{
    memset(s_mem, 0, sizeof s_mem);
    Vmm__Vp__ControlRegisters cr = VMM__VP__CONTROL_REGISTERS__INIT;
    cr.cr0 = 1ull << 31;
    cr.cr4 = 1ull << 4; /* PSE */
    cr.cr3 = 0x1000;
    s_put32(0x1000 + 4 * 1, 0x00800000 | 0x80 | 1);    /* 4 MiB at 0x400000 */
    s_put32(0x1000 + 4 * 2, 0x2000 | 1);               /* a table for 0x800000 */
    s_put32(0x2000 + 4 * 3, 0x70000 | 1);
    uint64_t gpa, left;
    cr_expect_eq(gdb_x86_translate(&cr, 0x401234, s_read, NULL, &gpa, &left), 0);
    cr_expect_eq(gpa, 0x801234);
    cr_expect_eq(gdb_x86_translate(&cr, 0x803456, s_read, NULL, &gpa, &left), 0);
    cr_expect_eq(gpa, 0x70456);

    memset(s_mem, 0, sizeof s_mem);
    cr.cr4 = 1ull << 5; /* PAE without long mode */
    cr.cr3 = 0x1000;
    s_put64(0x1000 + 8 * 1, 0x2000 | 1);              /* 0x40000000.. */
    s_put64(0x2000 + 8 * 0, 0x3000 | 1);
    s_put64(0x3000 + 8 * 5, 0x90000 | 1);
    cr_expect_eq(gdb_x86_translate(&cr, 0x40005678, s_read, NULL, &gpa, &left), 0);
    cr_expect_eq(gpa, 0x90678);
    cr_expect_eq(gdb_x86_translate(&cr, 0x80000000, s_read, NULL, &gpa, &left), -EFAULT);
}
