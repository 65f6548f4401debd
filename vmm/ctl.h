/*
 * `vmm ctl ENDPOINT COMMAND`: an operator's client of a running VM's
 * control endpoint (actors/control/control.h): inspect, pause and resume,
 * registers, guest memory, MSIs, SynIC messages, reset, power off and
 * per-actor statistics. Errors are one line on stderr and a non-zero
 * status.
 */
#ifndef VMM_CTL_H
#define VMM_CTL_H

/* argv[0] is "ctl". Returns the process's exit status. */
int ctl_main(int argc, char **argv);

#endif
