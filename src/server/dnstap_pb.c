/*
 * A protobuf encoder for the dnstap messages we send. Field numbers and wire types follow
 * the published dnstap schema (dnstap.proto):
 *
 *   Dnstap:  identity 1 (bytes), version 2 (bytes), extra 3 (bytes),
 *            message 14 (Message), type 15 (enum; MESSAGE = 1)
 *   Message: type 1 (enum), socket_family 2 (enum: INET 1, INET6 2),
 *            socket_protocol 3 (enum: UDP 1, TCP 2), query_address 4 (bytes),
 *            response_address 5 (bytes), query_port 6 (uint32), response_port 7 (uint32),
 *            query_time_sec 8 (uint64), query_time_nsec 9 (fixed32),
 *            query_message 10 (bytes), response_time_sec 12 (uint64),
 *            response_time_nsec 13 (fixed32), response_message 14 (bytes)
 *
 * Wire format: each field is a varint key (number << 3 | wire type) and a value: wire
 * type 0 a varint, 2 a varint length and bytes, 5 four little-endian bytes.
 *
 * Why not protoc-c: Debian's golang-github-dnstap-golang-dnstap-dev ships dnstap.proto,
 * which protoc-c could compile at build time, but then the build needs protobuf-c-compiler
 * and libprotobuf-c, and packing goes through descriptors and a size pass per message.
 * The 18 fields we send are written directly into the frame buffer; test_dnstap.c
 * pins the bytes and t_dnstap.py has kdig (libprotobuf-c) decode the output.
 */
#include "server/dnstap.h"

#include <netinet/in.h>
#include <string.h>

typedef struct {
    uint8_t *p, *end;
    bool overflow;
} pb_t;

static void put_varint(pb_t *b, uint64_t v)
{
    do {
        if (b->p == b->end) {
            b->overflow = true;
            return;
        }
        uint8_t byte = v & 0x7f;
        v >>= 7;
        *b->p++ = byte | (v ? 0x80 : 0);
    } while (v);
}

static void put_uint(pb_t *b, unsigned field, uint64_t v)
{
    put_varint(b, (uint64_t)field << 3 | 0);
    put_varint(b, v);
}

static void put_bytes(pb_t *b, unsigned field, const uint8_t *data, size_t len)
{
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, len);
    if (b->overflow || (size_t)(b->end - b->p) < len) {
        b->overflow = true;
        return;
    }
    memcpy(b->p, data, len);
    b->p += len;
}

static void put_fixed32(pb_t *b, unsigned field, uint32_t v)
{
    put_varint(b, (uint64_t)field << 3 | 5);
    if (b->overflow || b->end - b->p < 4) {
        b->overflow = true;
        return;
    }
    for (int i = 0; i < 4; i++)
        *b->p++ = (uint8_t)(v >> (8 * i));
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

size_t srv_dnstap_size(const srv_dnstap_msg_t *m)
{
    /* Keys and small values: generous fixed allowance; then the byte fields. */
    size_t inner = 96 + m->message_len + varint_len(m->message_len);
    size_t n = 32 + inner + varint_len(inner);
    if (m->identity)
        n += m->identity_len + 12;
    if (m->version)
        n += m->version_len + 12;
    if (m->extra)
        n += m->extra_len + 12;
    return n;
}

static void put_message(pb_t *b, const srv_dnstap_msg_t *m)
{
    size_t alen = m->family == AF_INET6 ? 16 : 4;
    put_uint(b, 1, (uint64_t)m->type);
    put_uint(b, 2, m->family == AF_INET6 ? 2 : 1);
    put_uint(b, 3, m->tcp ? 2 : 1);
    if (m->query_addr)
        put_bytes(b, 4, m->query_addr, alen);
    if (m->response_addr)
        put_bytes(b, 5, m->response_addr, alen);
    put_uint(b, 6, m->query_port);
    put_uint(b, 7, m->response_port);
    put_uint(b, 8, (uint64_t)m->query_time.tv_sec);
    put_fixed32(b, 9, (uint32_t)m->query_time.tv_nsec);
    if (m->type == SRV_DNSTAP_AUTH_QUERY) {
        put_bytes(b, 10, m->message, m->message_len);
    } else {
        put_uint(b, 12, (uint64_t)m->response_time.tv_sec);
        put_fixed32(b, 13, (uint32_t)m->response_time.tv_nsec);
        put_bytes(b, 14, m->message, m->message_len);
    }
}

size_t srv_dnstap_encode(uint8_t *buf, size_t cap, const srv_dnstap_msg_t *m)
{
    pb_t b = { buf, buf + cap, false };
    if (m->identity)
        put_bytes(&b, 1, m->identity, m->identity_len);
    if (m->version)
        put_bytes(&b, 2, m->version, m->version_len);
    if (m->extra)
        put_bytes(&b, 3, m->extra, m->extra_len);
    /* Field 14: reserve a 3-byte length (messages stay under 2 MiB), encode the inner
     * message after it, then close the gap if the length needs fewer bytes. */
    put_varint(&b, 14 << 3 | 2);
    if (b.overflow || b.end - b.p < 3)
        return 0;
    uint8_t *lenp = b.p;
    b.p += 3;
    uint8_t *start = b.p;
    put_message(&b, m);
    if (b.overflow)
        return 0;
    size_t inner = (size_t)(b.p - start);
    if (inner >= 1u << 21)
        return 0;
    pb_t l = { lenp, lenp + 3, false };
    put_varint(&l, inner);
    size_t used = (size_t)(l.p - lenp);
    if (used < 3) {
        memmove(lenp + used, start, inner);
        b.p -= 3 - used;
    }
    put_uint(&b, 15, 1); /* Dnstap.Type MESSAGE */
    return b.overflow ? 0 : (size_t)(b.p - buf);
}
