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
 * The 18 fields we send are written directly into the frame buffer, in one pass: the
 * exact size is computed first (so the message's length prefix is known before its
 * fields), checked once against the buffer, then every field is written unchecked.
 * test_dnstap.c pins the bytes and t_dnstap.py has kdig (libprotobuf-c) decode the
 * output.
 */
#include "server/dnstap.h"

#include <netinet/in.h>
#include <string.h>

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The writers below do not check bounds: srv_dnstap_encode computes the exact size first
 * and checks it against the buffer once. */
static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Key and value of a field whose number and value are both under 128: two bytes. */
static uint8_t *put_small(uint8_t *p, unsigned field, unsigned v)
{
    p[0] = (uint8_t)(field << 3);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put_uint(uint8_t *p, unsigned field, uint64_t v)
{
    *p++ = (uint8_t)(field << 3);
    return put_varint(p, v);
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const uint8_t *data, size_t len)
{
    *p++ = (uint8_t)(field << 3 | 2);
    p = put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

static uint8_t *put_fixed32(uint8_t *p, unsigned field, uint32_t v)
{
    p[0] = (uint8_t)(field << 3 | 5);
    p[1] = (uint8_t)v;
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)(v >> 16);
    p[4] = (uint8_t)(v >> 24);
    return p + 5;
}

static size_t bytes_len(size_t len)
{
    return 1 + varint_len(len) + len;
}

/* The size of the inner Message (field 14's value). */
static size_t message_size(const srv_dnstap_msg_t *m)
{
    size_t alen = m->family == AF_INET6 ? 16 : 4;
    size_t n = 6; /* type, family, protocol */
    if (m->query_addr)
        n += 2 + alen;
    if (m->response_addr)
        n += 2 + alen;
    n += 1 + varint_len(m->query_port) + 1 + varint_len(m->response_port);
    n += 1 + varint_len((uint64_t)m->query_time.tv_sec) + 5;
    if (m->type != SRV_DNSTAP_AUTH_QUERY)
        n += 1 + varint_len((uint64_t)m->response_time.tv_sec) + 5;
    return n + bytes_len(m->message_len);
}

size_t srv_dnstap_measure(const srv_dnstap_msg_t *m, srv_dnstap_len_t *len)
{
    size_t inner = message_size(m), n = 2; /* 15: type MESSAGE */
    if (m->identity)
        n += bytes_len(m->identity_len);
    if (m->version)
        n += bytes_len(m->version_len);
    if (m->extra)
        n += bytes_len(m->extra_len);
    len->inner = inner;
    len->total = n + bytes_len(inner);
    return len->total;
}

size_t srv_dnstap_size(const srv_dnstap_msg_t *m)
{
    srv_dnstap_len_t len;
    return srv_dnstap_measure(m, &len);
}

void srv_dnstap_encode_measured(uint8_t *buf, const srv_dnstap_msg_t *m,
                                const srv_dnstap_len_t *len)
{
    uint8_t *p = buf;
    if (m->identity)
        p = put_bytes(p, 1, m->identity, m->identity_len);
    if (m->version)
        p = put_bytes(p, 2, m->version, m->version_len);
    if (m->extra)
        p = put_bytes(p, 3, m->extra, m->extra_len);
    *p++ = 14 << 3 | 2;
    p = put_varint(p, len->inner);
    size_t alen = m->family == AF_INET6 ? 16 : 4;
    p = put_small(p, 1, (unsigned)m->type);
    p = put_small(p, 2, m->family == AF_INET6 ? 2 : 1);
    p = put_small(p, 3, m->tcp ? 2 : 1);
    if (m->query_addr)
        p = put_bytes(p, 4, m->query_addr, alen);
    if (m->response_addr)
        p = put_bytes(p, 5, m->response_addr, alen);
    p = put_uint(p, 6, m->query_port);
    p = put_uint(p, 7, m->response_port);
    p = put_uint(p, 8, (uint64_t)m->query_time.tv_sec);
    p = put_fixed32(p, 9, (uint32_t)m->query_time.tv_nsec);
    if (m->type == SRV_DNSTAP_AUTH_QUERY) {
        p = put_bytes(p, 10, m->message, m->message_len);
    } else {
        p = put_uint(p, 12, (uint64_t)m->response_time.tv_sec);
        p = put_fixed32(p, 13, (uint32_t)m->response_time.tv_nsec);
        p = put_bytes(p, 14, m->message, m->message_len);
    }
    put_small(p, 15, 1); /* Dnstap.Type MESSAGE */
}

size_t srv_dnstap_encode(uint8_t *buf, size_t cap, const srv_dnstap_msg_t *m)
{
    srv_dnstap_len_t len;
    if (srv_dnstap_measure(m, &len) > cap)
        return 0;
    srv_dnstap_encode_measured(buf, m, &len);
    return len.total;
}
