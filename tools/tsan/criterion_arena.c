/*
 * Preloaded into tests under ThreadSanitizer (--config=tsan, through
 * run.sh): lets Criterion's runner start there. Its sandbox (BoxFort,
 * inside libcriterion) maps a shared arena with MAP_FIXED at an address it
 * picks with rand_r() between 0x2000_0000_0000 and 0x6000_0000_0000, tries
 * three and gives up ("Could not initialize inheritable arena",
 * Snaipe/Criterion#274); TSan refuses a fixed mapping outside the ranges
 * it keeps for a program, and most of those addresses are outside. Here
 * rand_r() answers libcriterion with numbers that put the arena in TSan's
 * range for PIE programs (0x5500_0000_0000 to 0x5680_0000_0000; BoxFort
 * itself skips what is mapped already); every other caller gets libc's.
 */
#define _GNU_SOURCE /* dladdr, RTLD_NEXT */
#include <dlfcn.h>
#include <string.h>

/* BoxFort's address is 0x2000_0000_0000 + r * 16 MiB: r from 0x358000 to
 * 0x360000 puts it at 0x5580_0000_0000 to 0x5600_0000_0000. */
#define S_FIRST 0x358000u
#define S_SPAN 0x8000u

int rand_r(unsigned *seed)
{
    static unsigned next;
    Dl_info info;
    if (dladdr(__builtin_return_address(0), &info) && info.dli_fname &&
        strstr(info.dli_fname, "libcriterion")) {
        unsigned k = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        return (int)(S_FIRST + k * 0x13u % S_SPAN);
    }
    int (*libc_rand_r)(unsigned *) = (int (*)(unsigned *))dlsym(RTLD_NEXT, "rand_r");
    return libc_rand_r(seed);
}
