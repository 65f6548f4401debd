/*
 * A trip to real mode and back (rm_call), for tests/kernels/realmode.c.
 * The blob from rm_blob to rm_blob_end runs at RM_BASE (segment
 * RM_BASE >> 4): the C side copies it there first. In real mode, with the
 * BIOS's vector table, it takes two PIC interrupts raised by pc-testdev:
 * IRQ 6 through the BIOS's own vector (its IRET at F000:FF53), seen in
 * the PIC's in-service register, then IRQ 5 through a vector of its own
 * that counts it. Everything is bounded: no loop waits forever.
 */
#define RM_BASE 0x1000
#define RM_SEG (RM_BASE >> 4)
#define OFF(x) ((x) - rm_blob)
#define TRIES 20000

    .text
    .code32
    .globl rm_call
rm_call:
    pushal
    mov %esp, rm_saved_esp
    sidt rm_saved_idt
    ljmp $0x18, $(RM_BASE + OFF(rm_pm16)) /* 16-bit code, base 0 */

rm_back32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov rm_saved_esp, %esp
    lidt rm_saved_idt
    popal
    ret

    .data
    .balign 4
rm_saved_esp:
    .long 0
rm_saved_idt:
    .word 0
    .long 0

    .text
    .code16
    .globl rm_blob, rm_blob_end, rm_hits, rm_isr6, rm_tries
rm_blob:
rm_pm16:
    mov $0x20, %ax /* 16-bit data */
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr0, %eax
    and $~1, %eax
    mov %eax, %cr0
    ljmp $RM_SEG, $OFF(rm_real)

rm_real:
    mov $RM_SEG, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0xff0, %sp
    lidt OFF(rm_ivt)

    /* IRQ 6 through the BIOS's vector 0x0e. */
    in $0x21, %al
    mov %al, OFF(rm_imr)
    and $~0x40, %al
    out %al, $0x21
    mov $0x2006, %dx
    mov $1, %al
    out %al, %dx
    mov $TRIES, %cx
1:  sti
    nop
    nop
    cli
    mov $0x0b, %al /* OCW3: read the in-service register */
    out %al, $0x20
    in $0x20, %al
    test $0x40, %al
    jnz 2f
    loop 1b
2:  mov %al, OFF(rm_isr6)
    mov $0x20, %al /* EOI */
    out %al, $0x20
    mov $0x2006, %dx
    xor %al, %al
    out %al, %dx

    /* IRQ 5 through a vector of our own, 0x0d. */
    xor %ax, %ax
    mov %ax, %es
    movw $OFF(rm_handler), %es:(0x0d * 4)
    movw $RM_SEG, %es:(0x0d * 4 + 2)
    mov OFF(rm_imr), %al
    and $~0x20, %al
    out %al, $0x21
    mov $0x2005, %dx
    mov $1, %al
    out %al, %dx
    mov $TRIES, %cx
3:  sti
    nop
    nop
    cli
    cmpw $0, OFF(rm_hits)
    jnz 4f
    loop 3b
4:  mov %cx, OFF(rm_tries)
    mov $0x2005, %dx
    xor %al, %al
    out %al, %dx
    mov OFF(rm_imr), %al
    out %al, $0x21

    /* Back to 32-bit protected mode, into the kernel. */
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $rm_back32

rm_handler:
    push %ax
    push %ds
    mov $RM_SEG, %ax
    mov %ax, %ds
    incw OFF(rm_hits)
    mov $0x20, %al
    out %al, $0x20
    pop %ds
    pop %ax
    iret

    .balign 4
rm_ivt:
    .word 0x3ff
    .long 0
rm_hits:
    .word 0
rm_tries:
    .word 0
rm_isr6:
    .byte 0
rm_imr:
    .byte 0
rm_blob_end:

    .section .note.GNU-stack, "", @progbits
