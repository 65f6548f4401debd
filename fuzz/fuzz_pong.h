/*
 * What the fuzz targets that drive an actor through its endpoint ask of it
 * after their inputs: that it still answers.
 */
#ifndef VMM_FUZZ_PONG_H
#define VMM_FUZZ_PONG_H

/* Sends a Ping from `sender` to `receiver` on `peer` (a ZeroMQ DEALER
 * connected to the receiver's endpoint) and returns once its answer came
 * back, dropping whatever else came first. Aborts when none came within
 * 15 s: the actor is stuck or gone. The wait goes on through signals:
 * libFuzzer's timer interrupts it every second. */
void fuzz_expect_pong(void *peer, const char *sender, const char *receiver);

#endif
