/*
 * The demo guest (//guest:demo) built into the host program, so that it can
 * run with no file around: its ELF bytes, to hand to loader_image_new().
 */
#ifndef VMM_GUEST_DEMO_EMBEDDED_H
#define VMM_GUEST_DEMO_EMBEDDED_H

extern const unsigned char guest_demo_elf[];
extern const unsigned long guest_demo_elf_len;

#endif
