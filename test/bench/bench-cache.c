/*
 * bench-cache: what the cache's store costs, measured on the pure functions
 * dnsfwd calls, in ns per call: cache_put of 100,000 distinct A answers
 * into a full default cache (-c 1000: every put evicts), and cache_get
 * hits on 100 of them.  Best of five rounds.  test/bench/bench.sh prints
 * the figures beside the paths' CPU per query.
 *
 *	cc -O2 -std=c11 -D_GNU_SOURCE -DDNSFWD_TEST -o test/bench/bench-cache \
 *	    test/bench/bench-cache.c dnsfwd.c
 *	test/bench/bench-cache
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../../dnsfwd.h"

#define NAMES	100000
#define HOT	100
#define ROUNDS	5

static uint8_t	 query[NAMES][48], answer[NAMES][64];
static size_t	 qlen[NAMES], alen[NAMES];
static struct dns_query	 dq[NAMES];
static struct dns_reply	 dr[NAMES];

static double
seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Query i: "q<i>.bench.test" A, as benchup is asked; its answer: one A. */
static void
make(int i)
{
	static const uint8_t rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0,
	    4, 192, 0, 2, 1 };
	uint8_t *q = query[i];
	size_t n = DNS_HDR;
	int k;

	memset(q, 0, DNS_HDR);
	q[0] = 0x12;
	q[2] = 1;
	q[5] = 1;
	k = snprintf((char *)q + n + 1, 16, "q%d", i);
	q[n] = (uint8_t)k;
	n += 1 + (size_t)k;
	memcpy(q + n, "\5bench\4test\0\0\1\0\1", 16);
	qlen[i] = n + 16;
	memcpy(answer[i], q, qlen[i]);
	answer[i][2] = 0x81;
	answer[i][3] = 0x80;
	answer[i][7] = 1;
	memcpy(answer[i] + qlen[i], rr, sizeof(rr));
	alen[i] = qlen[i] + sizeof(rr);
	if (dns_parse_query(q, qlen[i], &dq[i]) != 0 ||
	    dns_parse_reply(answer[i], alen[i], &dq[i], &dr[i]) !=
	    REPLY_POSITIVE) {
		fprintf(stderr, "bench-cache: query %d does not parse\n", i);
		exit(1);
	}
}

int
main(void)
{
	static const uint64_t key[2] = { 1, 2 };
	static uint8_t out[512];
	struct dns_reply r;
	struct cache c;
	double t, put = 1e9, get = 1e9;
	size_t served = 0;
	int i, k;

	for (i = 0; i < NAMES; i++)
		make(i);
	if (cache_init(&c, 1000, 0, key) != 0)
		return 1;
	for (k = 0; k < ROUNDS; k++) {
		t = seconds();
		for (i = 0; i < NAMES; i++)
			cache_put(&c, &dq[i], answer[i], alen[i], &dr[i], 1000);
		t = (seconds() - t) / NAMES;
		put = t < put ? t : put;
		for (i = 0; i < HOT; i++)
			cache_put(&c, &dq[i], answer[i], alen[i], &dr[i], 1000);
		t = seconds();
		for (i = 0; i < 200 * NAMES / HOT; i++)
			served += cache_get(&c, &dq[i % HOT], query[i % HOT], out,
			    sizeof(out), 2000, &r);
		t = (seconds() - t) / (200.0 * NAMES / HOT);
		get = t < get ? t : get;
	}
	if (served == 0)
		return 1;
	printf("put\t%.0f\nhit\t%.0f\n", put * 1e9, get * 1e9);
	cache_free(&c);
	return 0;
}
