/*
 * bench-acl: what "who may ask" costs per datagram, measured on the pure
 * functions dnsfwd calls (acl_is_loopback, then acl_match), in ns per
 * check.  Three cases: a loopback client (decided by the first test), a
 * client in the first of the namespace's networks, and the worst: a
 * stranger checked against a full set (ACL_MAX networks, none matching).
 * test/bench/bench.sh prints the figures beside the forward path's CPU per query.
 *
 *	cc -O2 -DDNSFWD_TEST -o test/bench/bench-acl test/bench/bench-acl.c dnsfwd.c
 *	test/bench/bench-acl [ITERATIONS]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../dnsfwd.h"

static volatile int sink;

static double
ns_per_check(const struct acl *set, const char *client, long n)
{
	struct sockaddr_in sin;
	struct timespec t0, t1;
	long i;
	int hits = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, client, &sin.sin_addr);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		/* as client_allowed(): loopback first, then the set */
		hits += acl_is_loopback((struct sockaddr *)&sin) ||
		    acl_match(set, (struct sockaddr *)&sin);
		__asm__ volatile("" : : "r"(&sin) : "memory");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sink = hits;
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	    (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
}

int
main(int argc, char **argv)
{
	static struct acl set;
	struct prefix p;
	char text[32], err[128];
	long n = argc > 1 ? atol(argv[1]) : 20000000;
	int i;

	for (i = 0; i < ACL_MAX; i++) {
		snprintf(text, sizeof(text), "10.%d.%d.0/24", i / 8, i % 8);
		if (cfg_parse_prefix(text, &p, err, sizeof(err)) == -1 ||
		    !acl_add(&set, &p)) {
			fprintf(stderr, "bench-acl: %s\n", err);
			return 1;
		}
	}
	printf("loopback %.1f\n", ns_per_check(&set, "127.0.0.1", n));
	printf("first %.1f\n", ns_per_check(&set, "10.0.0.7", n));
	printf("worst %.1f\n", ns_per_check(&set, "192.0.2.7", n));
	return 0;
}
