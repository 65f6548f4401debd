/* An x86-64 VP as gdb sees it (gdb_x86.h). */
#include "actors/gdb/gdb_x86.h"

#include <errno.h>
#include <string.h>

/* Field names and groups as gdb's own amd64 features name them, so that
 * gdb numbers them as its amd64 registers. */
const char gdb_x86_target_xml[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<target version=\"1.0\">\n"
    "<architecture>i386:x86-64</architecture>\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "<flags id=\"i386_eflags\" size=\"4\">\n"
    "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"PF\" start=\"2\" end=\"2\"/>\n"
    "<field name=\"AF\" start=\"4\" end=\"4\"/><field name=\"ZF\" start=\"6\" end=\"6\"/>\n"
    "<field name=\"SF\" start=\"7\" end=\"7\"/><field name=\"TF\" start=\"8\" end=\"8\"/>\n"
    "<field name=\"IF\" start=\"9\" end=\"9\"/><field name=\"DF\" start=\"10\" end=\"10\"/>\n"
    "<field name=\"OF\" start=\"11\" end=\"11\"/><field name=\"RF\" start=\"16\" end=\"16\"/>\n"
    "<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>\n"
    "<field name=\"ID\" start=\"21\" end=\"21\"/>\n"
    "</flags>\n"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>\n"
    "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.sse\">\n"
    "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
    "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
    "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
    "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
    "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
    "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
    "<union id=\"vec128\">\n"
    "<field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>\n"
    "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>\n"
    "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>\n"
    "<field name=\"uint128\" type=\"uint128\"/>\n"
    "</union>\n"
    "<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>\n"
    "</feature>\n"
    "</target>\n";

/* gdb's order of the general registers, as fields of GeneralRegisters. */
static const size_t s_gpr[17] = {
    offsetof(Vmm__Vp__GeneralRegisters, rax), offsetof(Vmm__Vp__GeneralRegisters, rbx),
    offsetof(Vmm__Vp__GeneralRegisters, rcx), offsetof(Vmm__Vp__GeneralRegisters, rdx),
    offsetof(Vmm__Vp__GeneralRegisters, rsi), offsetof(Vmm__Vp__GeneralRegisters, rdi),
    offsetof(Vmm__Vp__GeneralRegisters, rbp), offsetof(Vmm__Vp__GeneralRegisters, rsp),
    offsetof(Vmm__Vp__GeneralRegisters, r8),  offsetof(Vmm__Vp__GeneralRegisters, r9),
    offsetof(Vmm__Vp__GeneralRegisters, r10), offsetof(Vmm__Vp__GeneralRegisters, r11),
    offsetof(Vmm__Vp__GeneralRegisters, r12), offsetof(Vmm__Vp__GeneralRegisters, r13),
    offsetof(Vmm__Vp__GeneralRegisters, r14), offsetof(Vmm__Vp__GeneralRegisters, r15),
    offsetof(Vmm__Vp__GeneralRegisters, rip),
};

/* Where the registers begin in the 'g' bytes. */
enum {
    S_EFLAGS = 17 * 8,          /* 136 */
    S_SEGS = S_EFLAGS + 4,      /* cs ss ds es fs gs, 4 bytes each */
    S_ST = S_SEGS + 6 * 4,      /* st0-7, 10 bytes each */
    S_FPCTL = S_ST + 8 * 10,    /* fctrl ... fop, 4 bytes each */
    S_XMM = S_FPCTL + 8 * 4,    /* xmm0-15, 16 bytes each */
    S_MXCSR = S_XMM + 16 * 16,  /* 4 bytes */
    S_END = S_MXCSR + 4,
};
_Static_assert(S_END == GDB_X86_REGS_BYTES, "the 'g' layout");

int gdb_x86_reg(unsigned n, size_t *offset, size_t *size)
{
    if (n <= 16)
        *offset = 8 * n, *size = 8;
    else if (n <= 23)
        *offset = S_EFLAGS + 4 * (n - 17), *size = 4;
    else if (n <= 31)
        *offset = S_ST + 10 * (n - 24), *size = 10;
    else if (n <= 39)
        *offset = S_FPCTL + 4 * (n - 32), *size = 4;
    else if (n <= 55)
        *offset = S_XMM + 16 * (n - 40), *size = 16;
    else if (n == 56)
        *offset = S_MXCSR, *size = 4;
    else
        return -1;
    return 0;
}

static void s_put(uint8_t *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get(const uint8_t *in, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | in[i];
    return v;
}

/* The FXSAVE layout at the start of the XSAVE area. */
static void s_pack_fpu(const uint8_t *x, uint8_t *out)
{
    uint8_t *ctl = out + S_FPCTL;
    s_put(ctl + 0, s_get(x + 0, 2), 4);  /* fctrl: FCW */
    s_put(ctl + 4, s_get(x + 2, 2), 4);  /* fstat: FSW */
    /* ftag: the abridged tag (a bit per register, 1 = in use) widened to
     * two bits each, 11 = empty (valid, zero and special not told apart). */
    uint32_t tag = 0;
    for (int i = 0; i < 8; i++)
        tag |= (x[4] >> i & 1 ? 0u : 3u) << (2 * i);
    s_put(ctl + 8, tag, 4);
    s_put(ctl + 12, 0, 4);                /* fiseg: none in 64-bit FXSAVE */
    s_put(ctl + 16, s_get(x + 8, 4), 4);  /* fioff: FIP */
    s_put(ctl + 20, 0, 4);                /* foseg */
    s_put(ctl + 24, s_get(x + 16, 4), 4); /* fooff: FDP */
    s_put(ctl + 28, s_get(x + 6, 2), 4);  /* fop */
    for (int i = 0; i < 8; i++)
        memcpy(out + S_ST + 10 * i, x + 32 + 16 * i, 10);
    memcpy(out + S_XMM, x + 160, 16 * 16);
    memcpy(out + S_MXCSR, x + 24, 4);
}

void gdb_x86_pack(const Vmm__Vp__VpState *st, uint8_t *out)
{
    memset(out, 0, GDB_X86_REGS_BYTES);
    const Vmm__Vp__GeneralRegisters *g = st->general_registers;
    for (int i = 0; g && i < 17; i++)
        s_put(out + 8 * i, *(const uint64_t *)((const char *)g + s_gpr[i]), 8);
    if (g)
        s_put(out + S_EFLAGS, g->rflags, 4);
    const Vmm__Vp__Segments *s = st->segments;
    const Vmm__Vp__SegmentRegister *segs[6] = {s ? s->cs : NULL, s ? s->ss : NULL,
                                               s ? s->ds : NULL, s ? s->es : NULL,
                                               s ? s->fs : NULL, s ? s->gs : NULL};
    for (int i = 0; i < 6; i++)
        if (segs[i])
            s_put(out + S_SEGS + 4 * i, segs[i]->selector, 4);
    if (st->xsave && st->xsave->data.len >= 416)
        s_pack_fpu(st->xsave->data.data, out);
}

int gdb_x86_set(Vmm__Vp__GeneralRegisters *regs, unsigned n, const uint8_t *value, size_t len)
{
    if (n > GDB_X86_REG_EFLAGS)
        return -ENOTSUP;
    if (len != (n == GDB_X86_REG_EFLAGS ? 4u : 8u))
        return -EINVAL;
    if (n == GDB_X86_REG_EFLAGS)
        regs->rflags = (regs->rflags & ~0xffffffffull) | s_get(value, 4);
    else
        *(uint64_t *)((char *)regs + s_gpr[n]) = s_get(value, 8);
    return 0;
}

/* ---- Translation ------------------------------------------------------------ */

#define S_CR0_PG (1ull << 31)
#define S_CR4_PSE (1ull << 4)
#define S_CR4_PAE (1ull << 5)
#define S_CR4_LA57 (1ull << 12)
#define S_EFER_LMA (1ull << 10)
#define S_PRESENT 1ull
#define S_LARGE (1ull << 7)
#define S_ADDR_MASK 0x000ffffffffff000ull

int gdb_x86_translate(const Vmm__Vp__ControlRegisters *cr, uint64_t gva, gdb_read_fn read,
                      void *arg, uint64_t *gpa, uint64_t *left)
{
    if (!(cr->cr0 & S_CR0_PG)) {
        *gpa = gva;
        *left = 4096 - (gva & 4095);
        return 0;
    }
    if (!(cr->cr4 & S_CR4_PAE)) { /* 32-bit: two levels of 4-byte entries */
        uint32_t pde, pte;
        uint32_t va = (uint32_t)gva;
        int rc = read(arg, (cr->cr3 & 0xfffff000u) + 4 * (va >> 22), &pde, 4);
        if (rc)
            return rc;
        if (!(pde & S_PRESENT))
            return -EFAULT;
        if ((pde & S_LARGE) && (cr->cr4 & S_CR4_PSE)) {
            *gpa = (pde & 0xffc00000u) + (va & 0x3fffff);
            *left = 0x400000 - (va & 0x3fffff);
            return 0;
        }
        if ((rc = read(arg, (pde & 0xfffff000u) + 4 * ((va >> 12) & 1023), &pte, 4)))
            return rc;
        if (!(pte & S_PRESENT))
            return -EFAULT;
        *gpa = (pte & 0xfffff000u) + (va & 4095);
        *left = 4096 - (va & 4095);
        return 0;
    }
    int levels, shift;
    uint64_t table;
    if (cr->efer & S_EFER_LMA) {
        levels = cr->cr4 & S_CR4_LA57 ? 5 : 4;
        int bits = 12 + 9 * levels;
        uint64_t high = gva >> (bits - 1); /* all ones or all zeros: canonical */
        if (high && high != (~0ull >> (bits - 1)))
            return -EFAULT;
        table = cr->cr3 & S_ADDR_MASK;
        shift = 12 + 9 * (levels - 1);
    } else { /* PAE: four PDPT entries at CR3, then two levels */
        uint64_t pdpte;
        int rc = read(arg, (cr->cr3 & 0xffffffe0u) + 8 * ((gva >> 30) & 3), &pdpte, 8);
        if (rc)
            return rc;
        if (!(pdpte & S_PRESENT))
            return -EFAULT;
        table = pdpte & S_ADDR_MASK;
        levels = 2;
        shift = 21;
    }
    for (int level = levels; level > 0; level--, shift -= 9) {
        uint64_t entry;
        int rc = read(arg, table + 8 * ((gva >> shift) & 511), &entry, 8);
        if (rc)
            return rc;
        if (!(entry & S_PRESENT))
            return -EFAULT;
        /* A large page: 1 GiB or 2 MiB (the last level has no PS bit). */
        if (level > 1 && (entry & S_LARGE) && shift <= 30) {
            uint64_t size = 1ull << shift;
            *gpa = (entry & S_ADDR_MASK & ~(size - 1)) + (gva & (size - 1));
            *left = size - (gva & (size - 1));
            return 0;
        }
        table = entry & S_ADDR_MASK;
    }
    *gpa = table + (gva & 4095);
    *left = 4096 - (gva & 4095);
    return 0;
}
