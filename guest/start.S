/*
 * The guest's entry, its interrupt entries and the CPL 3 round trip.
 * Every VP starts at _start in 64-bit mode at CPL 0 with RDI = its index,
 * RSI = the number of VPs,
 * RSP = its own stack top (16-byte aligned), interrupts off.
 */
#include "loader/layout.h"

    .text
    .globl _start
_start:
    cld
    xor %ebp, %ebp /* the end of the frame-pointer chain */
    call guest_start /* guest_start(vp, n_vps): never returns */
1:  cli
    hlt
    jmp 1b

/*
 * One entry per vector: each pushes a 0 where the CPU pushes no error code,
 * then its vector, and joins guest_interrupt_entry. Their addresses make
 * the table guest_interrupt_entries, which guest.c turns into the IDT.
 */
    .macro STUB vec
1:
    /* #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX push an error code */
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21)
    .elseif (\vec == 29) || (\vec == 30)
    .else
    pushq $0
    .endif
    pushq $\vec
    jmp guest_interrupt_entry
    .pushsection .rodata
    .quad 1b
    .popsection
    .endm

    .pushsection .rodata
    .balign 8
    .globl guest_interrupt_entries
guest_interrupt_entries:
    .popsection

    .altmacro
    .set vec, 0
    .rept 256
    STUB %vec
    .set vec, vec + 1
    .endr
    .noaltmacro

/*
 * Saves the general registers as struct guest_frame, calls
 * guest_interrupt(frame), restores them and returns. RSP is 16-byte aligned
 * at the call: the CPU aligns it before its 5-word frame, then come the error
 * code, the vector and 15 registers.
 */
guest_interrupt_entry:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call guest_interrupt
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp /* the vector and the error code */
    iretq

/* void guest_run_user(void (*fn)(void *arg), void *arg, void *stack_top) */
    .globl guest_run_user
guest_run_user:
    pushfq
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    /* RSP is 16-byte aligned now (8 below on entry, 7 pushes). Make it this
     * VP's RSP0: VP i's TSS selector is LOADER_SEL_TSS0 + 16 i. */
    str %ax
    movzwl %ax, %eax
    sub $LOADER_SEL_TSS0, %eax
    imul $(LOADER_TSS_STRIDE / 16), %eax, %eax
    mov %rsp, LOADER_TSS_GPA + LOADER_TSS_RSP0(%rax)
    /* fn starts as if called from the trampoline: return address on top. */
    and $-16, %rdx
    sub $8, %rdx
    movq $guest_user_return, (%rdx)
    pushq $LOADER_SEL_USER_DATA
    push %rdx
    pushq $0x202 /* IF: hosts that run CPL 3 natively force it anyway */
    pushq $LOADER_SEL_USER_CODE
    push %rdi
    mov %rsi, %rdi
    iretq

/* At CPL 3: fn returned here. The #UD this raises is the way back. */
guest_user_return:
    ud2

/*
 * The #UD gate. From guest_user_return at CPL 3 it ends guest_run_user: the
 * CPU switched to RSP0, where guest_run_user left the caller's registers
 * just above the CPU's 5-word frame, so dropping that frame resumes the
 * caller. Any other #UD is an ordinary exception.
 */
    .globl guest_ud_entry
guest_ud_entry:
    cmpq $guest_user_return, (%rsp)
    jne 1f
    cmpq $LOADER_SEL_USER_CODE, 8(%rsp)
    jne 1f
    add $40, %rsp
    mov $LOADER_SEL_KERNEL_DATA, %eax /* the CPU left SS null */
    mov %eax, %ss
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    popfq
    ret
1:  pushq $0
    pushq $6
    jmp guest_interrupt_entry

    .section .note.GNU-stack, "", @progbits
