/*
 * gdb's remote serial protocol, the byte level: packets "$data#xx" (xx the
 * sum of data's bytes mod 256, in hex), acknowledgements '+' and '-', and
 * the interrupt byte 0x03 (Ctrl-C). Binary data ('X' packets) escapes '#',
 * '$', '}' and '*' as '}' then the byte xor 0x20. Plain functions, no I/O:
 * the gdb actor feeds what it reads and writes what these make.
 */
#ifndef VMM_GDB_RSP_H
#define VMM_GDB_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest packet taken (qSupported's PacketSize says so to gdb). */
#define RSP_MAX_PACKET 16384

typedef enum {
    RSP_MORE = 0,   /* nothing whole yet */
    RSP_PACKET,     /* a packet with a good checksum is in data, len */
    RSP_BAD_PACKET, /* a packet with a bad checksum, or too long: send '-' */
    RSP_INTERRUPT,  /* Ctrl-C */
    RSP_ACK,        /* '+' */
    RSP_NACK,       /* '-': send the last packet again */
} rsp_event_t;

typedef struct {
    char data[RSP_MAX_PACKET + 1]; /* NUL-terminated; may hold NULs ('X') */
    size_t len;
    /* private */
    int state;
    uint8_t sum;
    bool overflow;
    char check[2];
} rsp_reader_t;

void rsp_reader_init(rsp_reader_t *r);

/* Takes one byte. Bytes outside a packet other than '+', '-' and 0x03 are
 * ignored (gdb may send noise at connection). */
rsp_event_t rsp_feed(rsp_reader_t *r, uint8_t byte);

/* Frames payload as "$payload#xx", escaping what must be. Returns the
 * framed length, or 0 when out (size bytes) is too small. */
size_t rsp_frame(const char *payload, size_t len, char *out, size_t size);

/* Undoes binary escapes in place; returns the new length. */
size_t rsp_unescape(char *data, size_t len);

/* Hex digits for n bytes into out (2n characters and a NUL). */
void rsp_hex(const uint8_t *bytes, size_t n, char *out);

/* 2n hex digits into n bytes. Returns 0, or -1 for a non-hex digit. */
int rsp_unhex(const char *hex, size_t n, uint8_t *out);

/* A hex number up to the first character not a hex digit; *end is set to
 * it. Returns 0, or -1 for no digits or more than 16. */
int rsp_hex_number(const char *s, uint64_t *value, const char **end);

#endif
