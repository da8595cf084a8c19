/*
 * fuzz-cache: the cache's store, driven by a script of operations.
 *
 * Byte 0 sets the number of entries (1-16), byte 1 the arena (4-11 KiB),
 * byte 2 the stale window (0-255 s).  Then each 3 bytes are one operation
 * (op, name, argument) on 32 names "fNN.test", each answered by one NULL
 * record whose size the put chooses:
 *	op 0-2	cache_put of an answer of 5 * argument bytes of data, TTL
 *		1 + op / 8 seconds (too large ones must be refused)
 *	op 3-4	cache_get
 *	op 5	cache_get_stale
 *	op 6	the clock moves on by 100 * argument ms
 *	op 7	cache_flush (argument odd) or cache_expire
 *
 * Invariants: what is served is the answer last put for that name, with
 * its ID and spelling, its TTL aged by the whole seconds it was kept (or
 * capped at STALE_TTL when stale), and only while fresh unless asked as a
 * last resort; an answer just put is served at once; nothing flushed is
 * served, nothing expired is served fresh; the counts never pass the
 * bounds: entries <= -c, arena bytes in use <= the arena, whole blocks, at
 * least one per entry.
 */
#include <string.h>
#include <sys/socket.h>

#include "../../dnsfwd.h"
#include "fuzz.h"
#include "../wire.h"

#define NAMES	32

static const uint64_t fuzz_key[2] = { 0x0706050403020100ull,
	0x0f0e0d0c0b0a0908ull };

/* What the script last put for a name, as the invariants need it. */
static struct {
	bool		 put;		/* stored, not flushed since */
	uint64_t	 at;		/* ms */
	uint32_t	 ttl;
	size_t		 rdlen;
} model[NAMES];

/* The query for name k: id 0x1234, RD, A IN. */
static size_t
query(uint8_t *b, int k)
{
	static const uint8_t hdr[] = { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0,
	    0, 0 };
	size_t n = sizeof(hdr);

	memcpy(b, hdr, n);
	b[n++] = 3;
	b[n++] = 'f';
	b[n++] = (uint8_t)('0' + k / 10);
	b[n++] = (uint8_t)('0' + k % 10);
	memcpy(b + n, "\4test\0\0\1\0\1", 10);
	return n + 10;
}

/* The answer to it: one NULL record of rdlen bytes k, TTL ttl. */
static size_t
answer(uint8_t *b, int k, size_t rdlen, uint32_t ttl)
{
	size_t n = query(b, k);

	b[2] = 0x81;
	b[3] = 0x80;
	b[7] = 1;
	n += wire_rr(b + n, 10, ttl, rdlen);
	memset(b + n, k, rdlen);
	return n + rdlen;
}

/* A hit for k at now: the answer last put, aged, or stale-capped. */
static void
check_served(const uint8_t *out, size_t n, int k, uint64_t now, bool stale)
{
	static uint8_t want[2048];
	uint32_t ttl, age = (uint32_t)((now - model[k].at) / 1000);
	size_t len;

	check(model[k].put);
	ttl = stale ? (model[k].ttl < STALE_TTL ? model[k].ttl : STALE_TTL) :
	    model[k].ttl - age;
	len = answer(want, k, model[k].rdlen, ttl);
	check(n == len && memcmp(out, want, len) == 0);
}

/* Is k's answer fresh at now, the cache expired at expired? */
static bool
fresh(int k, uint64_t now, uint64_t expired)
{
	return model[k].put && model[k].at > expired &&
	    now < model[k].at + model[k].ttl * 1000ull;
}

static void
check_bounds(const struct cache *c)
{
	struct cache_stats s;

	cache_stats(c, &s);
	check(s.entries >= 0 && s.entries <= s.size);
	check(s.bytes <= s.arena && s.bytes % CACHE_BLOCK == 0);
	check(s.bytes >= (size_t)s.entries * CACHE_BLOCK);
	check(cache_longest_chain(c) <= s.entries);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t qb[64], ab[2048], out[2048];
	struct dns_query q;
	struct dns_reply r, sr;
	struct cache c;
	uint64_t now = 1000000, expired = 0;
	size_t i, n, len, rdlen;
	int k, op;

	if (size < 3)
		return 0;
	memset(model, 0, sizeof(model));
	check(cache_init(&c, 1 + data[0] % 16, 4096 + 1024u * (data[1] % 8),
	    fuzz_key) == 0);
	cache_stale(&c, data[2]);
	for (i = 3; i + 3 <= size; i += 3) {
		op = data[i] & 7;
		k = data[i + 1] % NAMES;
		n = query(qb, k);
		check(dns_parse_query(qb, n, &q) == 0);
		switch (op) {
		case 0: case 1: case 2:
			rdlen = 5u * data[i + 2];
			len = answer(ab, k, rdlen, 1u + data[i] / 8u);
			if (dns_parse_reply(ab, len, &q, &r) != REPLY_POSITIVE)
				check(0);
			if (!cache_put(&c, &q, ab, len, &r, now)) {
				check(len > CACHE_DATA);	/* the old stays */
				break;
			}
			model[k].put = true;
			model[k].at = now;
			model[k].ttl = 1u + data[i] / 8u;
			model[k].rdlen = rdlen;
			n = cache_get(&c, &q, qb, out, sizeof(out), now, &sr);
			check(n != 0 && now > expired);
			check_served(out, n, k, now, false);
			break;
		case 3: case 4:
			n = cache_get(&c, &q, qb, out, sizeof(out), now, &sr);
			if (n == 0)
				break;
			check(fresh(k, now, expired));
			check_served(out, n, k, now, false);
			break;
		case 5:
			n = cache_get_stale(&c, &q, qb, out, sizeof(out), now,
			    &sr, (const uint16_t[]){ 0 }, 1);
			if (n == 0)
				break;
			check(model[k].put && now < model[k].at +
			    model[k].ttl * 1000ull + data[2] * 1000ull);
			check_served(out, n, k, now, !fresh(k, now, expired));
			break;
		case 6:
			now += 100u * data[i + 2];
			break;
		case 7:
			if (data[i + 2] & 1) {
				cache_flush(&c);
				memset(model, 0, sizeof(model));
			} else {
				cache_expire(&c);
				expired = now;
				now++;	/* later puts are after the expiry */
			}
			break;
		}
		check_bounds(&c);
	}
	cache_free(&c);
	return 0;
}
