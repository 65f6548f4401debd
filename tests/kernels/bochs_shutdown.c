/* The Bochs shutdown port: "Shutdown" written to 0x8900 powers the VM off
 * (the VMM exits 0); a broken word before it does not. The VM stops
 * within the VPs' stop: a kernel that keeps running a while after the
 * word reports the failure. */
#include "guest/mb/mb.h"

static void s_say(const char *s)
{
    for (; *s; s++)
        outb(0x8900, (uint8_t)*s);
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    s_say("Shut");
    s_say("xdown");
    mb_printf("still running after a broken word\n");
    s_say("Shutdown");
    for (volatile uint32_t spin = 0; spin < 20000; spin++)
        ;
    mb_printf("FAIL: still running after Shutdown\n");
}
