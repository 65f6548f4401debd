/*
 * The 32-bit interrupt entries, and the real-mode trampoline that starts
 * the other VPs. Each vector's entry pushes it and joins mb_isr_common,
 * which calls mb_interrupt(vector) with the general registers saved; the
 * entries' addresses make mb_isr_table, which mb.c turns into the IDT.
 */
    .text
    .code32

    .macro ISR vec
1:
    /* #DF, #TS, #NP, #SS, #GP, #PF, #AC push an error code: drop it. */
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17)
    add $4, %esp
    .endif
    push $\vec
    jmp mb_isr_common
    .pushsection .rodata
    .long 1b
    .popsection
    .endm

    .pushsection .rodata
    .balign 4
    .globl mb_isr_table
mb_isr_table:
    .popsection

    .altmacro
    .set vec, 0
    .rept 256
    ISR %vec
    .set vec, vec + 1
    .endr
    .noaltmacro

/*
 * The return is an IRET done by hand: the instruction emulator that runs
 * CPL 0 code on some hosts (platform.md) has a 32-bit IRET only in real
 * mode. At the same privilege level IRET pops EIP, CS and EFLAGS; so the
 * frame becomes EFLAGS, EIP for a POPF and a RET.
 */
mb_isr_common:
    pusha
    cld
    push 32(%esp) /* the vector, above the eight registers */
    call mb_interrupt
    add $4, %esp
    popa
    add $4, %esp /* the vector: EIP, CS, EFLAGS remain */
    push %eax
    mov 12(%esp), %eax
    mov %eax, 8(%esp) /* EFLAGS over CS */
    mov 4(%esp), %eax
    mov %eax, 12(%esp) /* EIP over EFLAGS */
    pop %eax
    add $4, %esp
    popf
    ret

/*
 * The AP trampoline, copied to a page below 1 MiB and entered by SIPI in
 * real mode with CS = that page's segment, IP = 0. It loads the GDT the
 * BSP wrote into mb_tramp_gdtr, enters protected mode and jumps to
 * mb_ap_entry through mb_tramp_target (both patched in the copy).
 */
    .code16
    .globl mb_trampoline, mb_trampoline_end, mb_tramp_gdtr, mb_tramp_target
mb_trampoline:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl mb_tramp_gdtr - mb_trampoline
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *(mb_tramp_target - mb_trampoline)
    .balign 4
mb_tramp_gdtr:
    .word 0
    .long 0
    .balign 4
mb_tramp_target:
    .long 0
    .word 0
mb_trampoline_end:

    .code32
    .globl mb_ap_entry
mb_ap_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $1, %eax
    lock xadd %eax, mb_ap_next /* this AP's number, from 0 */
    cmp $15, %eax /* MB_MAX_APS: the rest have no stack */
    jae 1f
    inc %eax
    shl $12, %eax
    lea mb_ap_stacks(%eax), %esp /* the top of its 4 KiB stack */
    call mb_ap_main
1:  cli
    hlt
    jmp 1b

    .section .note.GNU-stack, "", @progbits
