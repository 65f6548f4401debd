/*
 * A multiboot v1 kernel's header and entry. The loader (ours, QEMU's,
 * GRUB's) enters _start in 32-bit protected mode with paging off, EAX =
 * 0x2BADB002 and EBX = the information structure; ESP is undefined, so
 * the kernel takes a stack of its own first.
 *
 * Built with MB_AOUT, the header also carries the a.out kludge's
 * addresses (flag bit 16): such a kernel loads as a flat binary.
 */
#define MB_MAGIC 0x1badb002
#ifdef MB_AOUT
#define MB_FLAGS 0x00010003 /* page-aligned modules, memory info, a.out kludge */
#else
#define MB_FLAGS 0x00000003
#endif

    .section .multiboot, "a"
    .balign 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
#ifdef MB_AOUT
    .long mb_header   /* header_addr */
    .long mb_image_start /* load_addr */
    .long mb_data_end /* load_end_addr */
    .long mb_bss_end  /* bss_end_addr */
    .long _start      /* entry_addr */
#endif

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    mov $mb_stack_top, %esp
    xor %ebp, %ebp
    push %ebx
    push %eax
    call mb_start /* mb_start(magic, info): never returns */
1:  hlt
    jmp 1b

    .bss
    .balign 16
    .globl mb_stack
mb_stack:
    .skip 16384
mb_stack_top:

    .section .note.GNU-stack, "", @progbits
