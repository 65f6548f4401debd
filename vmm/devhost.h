/*
 * `vmm devhost`: hosts device actors for a VM in another process (over
 * ipc://) or on another host (over tcp:// with CURVE); `vmm devhost --help`
 * says how.
 */
#ifndef VMM_DEVHOST_H
#define VMM_DEVHOST_H

/* Runs the command with its own argv (argv[0] is "devhost"); returns the
 * process's exit status. */
int devhost_main(int argc, char **argv);

#endif
