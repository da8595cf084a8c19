/*
 * fuzz-options: the parsers of option values, as main() calls them.
 *
 * Byte 0 % 8 picks the parser; the rest is the value, NUL-terminated (an
 * embedded NUL ends it early, as in argv):
 *	0	cfg_parse_listen (-l)
 *	1, 2	cfg_parse_addr with '#' (-s, -f) and ':' (one -l item)
 *	3	cfg_parse_uint; byte 0 / 8 picks the range of one of main()'s
 *		callers, or [0, ULONG_MAX]; and cfg_parse_size (--cache-bytes)
 *		on the same text, and on it with a k, M or g after
 *	4	cfg_parse_domain, on exactly the value's bytes (no NUL after)
 *	5, 6, 7	route_add: each line of the value one -s (5), -a (6), or
 *		alternately -s and -a (7) into one table; routes_free after
 *
 * Invariants: an address parsed is printed by addr_text() and read back
 * the same; a number is accepted exactly when it is all digits and in
 * range, and as a size (any range) exactly when it is that number, or
 * that number and one suffix whose multiple does not overflow; a domain is a lower-case wire name two bytes longer than its
 * text (one with a final dot); after route_add() each of its domains is
 * matched by route_match() to the rule of that very name.
 */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

/* addr_text() then cfg_parse_addr() gives a back. */
static void
round_trip(const struct addr *a, char sep)
{
	struct addr back;
	char text[128], err[256];

	check(a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6);
	check(a->len == (a->ss.ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)));
	addr_text(a, sep, text, sizeof(text));
	check(cfg_parse_addr(text, sep, 1, &back, err, sizeof(err)) == 0);
	check(back.len == a->len && memcmp(&back.ss, &a->ss, a->len) == 0);
}

static void
check_err(const char *err, size_t size)
{
	check(memchr(err, '\0', size) != NULL && err[0] != '\0');
}

static void
do_listen(const char *s)
{
	struct listen_chain ch;
	char err[256];
	int i;

	err[0] = '\0';
	if (cfg_parse_listen(s, &ch, err, sizeof(err)) == -1) {
		check_err(err, sizeof(err));
		return;
	}
	check(ch.n >= 1 && ch.n <= LISTEN_MAX_CHAIN);
	for (i = 0; i < ch.n; i++)
		round_trip(&ch.a[i], ':');
}

static void
do_addr(const char *s, char sep)
{
	struct addr a;
	char err[16];		/* small: messages are cut, not overrun */

	err[0] = '\0';
	if (cfg_parse_addr(s, sep, 53, &a, err, sizeof(err)) == -1) {
		check_err(err, sizeof(err));
		return;
	}
	round_trip(&a, sep);
	round_trip(&a, sep == '#' ? ':' : '#');
}

/* The size s means, as a reader would take it: digits, one suffix. */
static bool
size_of(const char *s, unsigned long long *v)
{
	unsigned long long n = 0;
	const char *p;
	int shift = 0;

	for (p = s; isdigit((unsigned char)*p); p++) {
		if (n > (ULLONG_MAX - (unsigned)(*p - '0')) / 10)
			return false;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (p == s)
		return false;
	if (*p != '\0' && strchr("kKmMgG", *p) != NULL) {
		shift = *p == 'k' || *p == 'K' ? 10 : *p == 'm' || *p == 'M' ?
		    20 : 30;
		p++;
	}
	if (*p != '\0' || n > ULLONG_MAX >> shift)
		return false;
	*v = n << shift;
	return true;
}

static void
do_uint(const char *s, uint8_t pick)
{
	static const unsigned long range[][2] = {
		{ 0, 65535 }, { 1, UINT32_MAX }, { 0, UINT32_MAX - 1 },
		{ 0, 1000000 }, { 1, 3600 }, { 1, 60000 }, { 1, 65535 },
		{ 1, 4096 }, { 0, ULONG_MAX },
	};
	const unsigned long *r = range[pick % 9];
	unsigned long long want = 0, d, z = 0, w;
	unsigned long v = 0;
	char suffixed[64];
	const char *p;
	bool ok = *s != '\0';
	int shift;

	for (p = s; *p != '\0' && ok; p++) {
		d = (unsigned long long)(*p - '0');
		if (!isdigit((unsigned char)*p) || want > (ULLONG_MAX - d) / 10)
			ok = false;	/* not a number, or past ULLONG_MAX */
		else
			want = want * 10 + d;
	}
	check((cfg_parse_size(s, 0, ULLONG_MAX, &z) == 0) == size_of(s, &w));
	check(!size_of(s, &w) || z == w);
	if (ok && strlen(s) < sizeof(suffixed) - 1) {
		snprintf(suffixed, sizeof(suffixed), "%s%c", s, "kMg"[pick % 3]);
		shift = 10 * (pick % 3 + 1);
		check((cfg_parse_size(suffixed, 0, ULLONG_MAX, &z) == 0) ==
		    (want <= ULLONG_MAX >> shift));
		check(want > ULLONG_MAX >> shift || z == want << shift);
		check(want == 0 || want > ULLONG_MAX >> shift ||
		    cfg_parse_size(suffixed, 0, (want << shift) - 1, &z) == -1);
	}
	ok = ok && want <= ULONG_MAX && want >= r[0] && want <= r[1];
	check((cfg_parse_uint(s, r[0], r[1], &v) == 0) == ok);
	check(!ok || v == want);
}

static void
do_domain(const uint8_t *s, size_t len)
{
	uint8_t out[DNS_MAX_NAME];
	char *text;
	size_t i;
	int n;

	if ((text = malloc(len ? len : 1)) == NULL)
		return;
	memcpy(text, s, len);	/* no NUL: the length is the end */
	n = cfg_parse_domain(text, len, out);
	if (n < 0)
		goto out;
	check(n >= 1 && n <= DNS_MAX_NAME);
	if (len == 1 && text[0] == '#')
		check(n == 1);
	else if (len == 0 || (len == 1 && text[0] == '.'))
		check(n == 1);
	else
		check((size_t)n == len + (text[len - 1] == '.' ? 1 : 2));
	for (i = 0; out[i] != 0; i += 1u + out[i]) {
		check(out[i] >= 1 && out[i] <= 63);
		check(i + 1 + out[i] < (size_t)n);
		check(memchr(out + i + 1, '.', out[i]) == NULL);
	}
	check(i + 1 == (size_t)n);
	for (i = 0; i < (size_t)n; i++)
		check(!(out[i] >= 'A' && out[i] <= 'Z'));
out:
	free(text);
}

/* Each domain of spec must be found as a rule of its own name. */
static void
check_routes(const struct routes *t, const char *spec, bool local)
{
	uint8_t name[DNS_MAX_NAME];
	const char *p, *end = strrchr(spec, '/'), *slash;
	const struct rule *r;
	int wl, k;

	for (p = spec + 1; p < end; p = slash + 1) {
		slash = strchr(p, '/');
		wl = cfg_parse_domain(p, (size_t)(slash - p), name);
		check(wl > 0);
		k = route_match(t, name);
		check(k >= 0 && k < t->n);
		r = &t->r[k];
		check(r->name_len == wl && memcmp(r->name, name, wl) == 0);
		check(r->kind <= RULE_LOCAL);
		check(r->nsrv >= 0 && r->nsrv <= MAX_UPSTREAMS);
		check(r->nsrv == 0 || r->srv != NULL);
		if (local)
			check(r->kind == RULE_LOCAL);
		if (r->has4 || r->has6)
			check(r->kind == RULE_LOCAL);
	}
}

static void
do_routes(char *s, int mode)
{
	struct routes t;
	char err[256], *line, *nl;
	bool local;
	int i;

	memset(&t, 0, sizeof(t));
	for (line = s, i = 0; line != NULL; line = nl, i++) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		local = mode == 6 || (mode == 7 && (i & 1));
		err[0] = '\0';
		if (route_add(&t, line, local, err, sizeof(err)) == 0)
			check_routes(&t, line, local);
		else
			check_err(err, sizeof(err));
		check(t.n <= t.cap && (t.n == 0 || 2u * (uint32_t)t.n <=
		    t.mask + 1));
	}
	routes_free(&t);
	check(t.n == 0 && t.r == NULL && t.slot == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	int op;

	if (size < 1)
		return 0;
	op = data[0] % 8;
	if (op == 4) {
		do_domain(data + 1, size - 1);
		return 0;
	}
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (op) {
	case 0:
		do_listen(s);
		break;
	case 1:
	case 2:
		do_addr(s, op == 1 ? '#' : ':');
		break;
	case 3:
		do_uint(s, data[0] / 8);
		break;
	default:
		do_routes(s, op);
		break;
	}
	free(s);
	return 0;
}
