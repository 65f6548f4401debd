/* gdb's remote serial protocol, the byte level (rsp.h). */
#include "actors/gdb/rsp.h"

#include <string.h>

enum { S_IDLE, S_DATA, S_CHECK1, S_CHECK2 };

void rsp_reader_init(rsp_reader_t *r)
{
    memset(r, 0, sizeof *r);
}

static int s_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

rsp_event_t rsp_feed(rsp_reader_t *r, uint8_t byte)
{
    switch (r->state) {
    case S_IDLE:
        if (byte == '$') {
            r->state = S_DATA;
            r->len = 0;
            r->sum = 0;
            r->overflow = false;
        }
        return byte == 0x03 ? RSP_INTERRUPT : byte == '+' ? RSP_ACK : byte == '-' ? RSP_NACK
                                                                                : RSP_MORE;
    case S_DATA:
        if (byte == '#') {
            r->state = S_CHECK1;
            return RSP_MORE;
        }
        r->sum = (uint8_t)(r->sum + byte);
        if (r->len < RSP_MAX_PACKET)
            r->data[r->len++] = (char)byte;
        else
            r->overflow = true;
        return RSP_MORE;
    case S_CHECK1:
        r->check[0] = (char)byte;
        r->state = S_CHECK2;
        return RSP_MORE;
    default: {
        r->state = S_IDLE;
        int hi = s_digit(r->check[0]), lo = s_digit(byte);
        r->data[r->len] = '\0';
        if (hi < 0 || lo < 0 || (uint8_t)(hi << 4 | lo) != r->sum || r->overflow)
            return RSP_BAD_PACKET;
        return RSP_PACKET;
    }
    }
}

size_t rsp_frame(const char *payload, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    uint8_t sum = 0;
    if (size < 4)
        return 0;
    out[n++] = '$';
    for (size_t i = 0; i < len; i++) {
        char c = payload[i];
        bool escape = c == '#' || c == '$' || c == '}' || c == '*';
        if (n + (escape ? 2 : 1) + 3 > size)
            return 0;
        if (escape) {
            out[n++] = '}';
            sum = (uint8_t)(sum + '}');
            c ^= 0x20;
        }
        out[n++] = c;
        sum = (uint8_t)(sum + (uint8_t)c);
    }
    out[n++] = '#';
    out[n++] = hex[sum >> 4];
    out[n++] = hex[sum & 15];
    return n;
}

size_t rsp_unescape(char *data, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '}' && i + 1 < len)
            data[out++] = (char)(data[++i] ^ 0x20);
        else
            data[out++] = data[i];
    }
    return out;
}

void rsp_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

int rsp_unhex(const char *hex, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = s_digit(hex[2 * i]), lo = hi < 0 ? -1 : s_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int rsp_hex_number(const char *s, uint64_t *value, const char **end)
{
    uint64_t v = 0;
    int digits = 0, d;
    while ((d = s_digit(*s)) >= 0) {
        if (++digits > 16)
            return -1;
        v = v << 4 | (uint64_t)d;
        s++;
    }
    *end = s;
    *value = v;
    return digits ? 0 : -1;
}
