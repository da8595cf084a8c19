/*
 * test/wire.h: the DNS wire helpers the test programs share (test/dnsq,
 * test/fakeup, test/chaos, test/unit): big-endian 16-bit fields, a
 * monotonic clock in milliseconds, hex digits, a name in wire form and a
 * query with one question.  dnsfwd itself never uses these: its reader
 * and writer are the cursors of dnsfwd.c; the tests build messages
 * independently of the code they test.  Header-only (static inline), so
 * each test program stays one file plus this.
 */
#ifndef DNSFWD_TEST_WIRE_H
#define DNSFWD_TEST_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static inline void
wire_put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline unsigned
wire_get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static inline void
wire_put32(uint8_t *p, uint32_t v)
{
	wire_put16(p, v >> 16);
	wire_put16(p + 2, v & 0xffff);
}

/*
 * A record's fixed part at b: owner a pointer to the question's name
 * (0xc00c), type, class IN, TTL ttl, RDLENGTH rdlen; 12 bytes.
 */
static inline size_t
wire_rr(uint8_t *b, unsigned type, uint32_t ttl, size_t rdlen)
{
	wire_put16(b, 0xc00c);
	wire_put16(b + 2, type);
	wire_put16(b + 4, 1);
	wire_put32(b + 6, ttl);
	wire_put16(b + 10, (unsigned)rdlen);
	return 12;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t
wire_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The value of hex digit c, -1 if it is none. */
static inline int
wire_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * name ("www.example.test"; "" or "." for the root) in wire form at p,
 * which has room for 255 bytes; its length, or 0 when a label is empty
 * or longer than 63 bytes, or the name longer than 255.
 */
static inline size_t
wire_name(uint8_t *p, const char *name)
{
	const char *dot;
	size_t n = 0, l;

	if (strcmp(name, ".") == 0)
		name = "";
	while (*name != '\0') {
		dot = strchr(name, '.');
		l = dot != NULL ? (size_t)(dot - name) : strlen(name);
		if (l == 0 || l > 63 || n + l + 2 > 255)
			return 0;
		p[n++] = (uint8_t)l;
		memcpy(p + n, name, l);
		n += l;
		name += l + (dot != NULL ? 1 : 0);
	}
	p[n++] = 0;
	return n;
}

/*
 * A query at b (room for 12 + 255 + 4 bytes): ID id, the 16-bit flags
 * word, one question for name, type, class IN.  Its length, 0 for a bad
 * name.
 */
static inline size_t
wire_query(uint8_t *b, unsigned id, unsigned flags, const char *name,
    unsigned type)
{
	size_t n;

	memset(b, 0, 12);
	wire_put16(b, id);
	wire_put16(b + 2, flags);
	wire_put16(b + 4, 1);
	if ((n = wire_name(b + 12, name)) == 0)
		return 0;
	n += 12;
	wire_put16(b + n, type);
	wire_put16(b + n + 2, 1);
	return n + 4;
}

#endif
