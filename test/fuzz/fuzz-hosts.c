/*
 * fuzz-hosts: hosts_parse() on any text, then hosts_lookup() of every
 * name and address it found, then hosts_free().  Built with LeakSanitizer
 * (libFuzzer and ASan turn it on), so the tables must all be freed.
 *
 * Invariants: no more names than words; each name and reverse name a
 * well-formed lower-case wire name; a query for a name finds it, with
 * one A (AAAA) record per IPv4 (IPv6) line of that name in file order,
 * at most LOCAL_MAX_RR; a PTR query for an address gives the first name
 * written for it; every answer builds into a reply that
 * dns_parse_reply() takes as the answer to the query.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

#define CHECK_MAX	256	/* records checked one by one (O(n^2)) */

static bool
is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* A wire name of exactly len bytes, labels 1..63, lower case. */
static void
check_name(const uint8_t *p, size_t len)
{
	size_t i = 0, k;

	check(len >= 1 && len <= DNS_MAX_NAME);
	while (p[i] != 0) {
		check(p[i] <= 63);
		for (k = 1; k <= p[i]; k++)
			check(!(p[i + k] >= 'A' && p[i + k] <= 'Z'));
		i += 1u + p[i];
		check(i < len);
	}
	check(i + 1 == len);
}

/* A query for name as a client sends it, checked into q. */
static size_t
make_query(uint8_t *buf, const uint8_t *name, size_t len, uint16_t type,
    struct dns_query *q)
{
	static const uint8_t hdr[DNS_HDR] = { 0xbe, 0xef, 1, 0, 0, 1 };
	size_t n = DNS_HDR;

	memcpy(buf, hdr, DNS_HDR);
	memcpy(buf + n, name, len);
	n += len;
	buf[n++] = (uint8_t)(type >> 8);
	buf[n++] = (uint8_t)type;
	buf[n++] = 0;
	buf[n++] = CLASS_IN;
	check(dns_parse_query(buf, n, q) == 0);
	return n;
}

/* Answer q from h as query_local() does; the reply must parse. */
static void
reply(const struct hosts *h, const uint8_t *query,
    const struct dns_query *q, struct local_answer *a)
{
	static uint8_t out[2 + DNS_MAX_TCP];
	struct dns_reply r;
	enum reply_class c;
	size_t n;

	check(hosts_lookup(h, q, a));
	check(a->rcode == RCODE_NOERROR && a->n >= 0 &&
	    a->n <= LOCAL_MAX_RR);
	n = dns_build_answer(out, sizeof(out), query, q, a, 0);
	check(n != 0);
	c = dns_parse_reply(out, n, q, &r);
	check(c == (a->n > 0 ? REPLY_POSITIVE : REPLY_NEGATIVE));
	check(r.ancount == a->n);
}

static bool
same(const struct hosts *h, const struct hosts_rec *x,
    const struct hosts_rec *y, bool rev)
{
	if (rev)
		return x->rname_len == y->rname_len && memcmp(h->names +
		    x->rname, h->names + y->rname, x->rname_len) == 0;
	return x->name_len == y->name_len && memcmp(h->names + x->name,
	    h->names + y->name, x->name_len) == 0;
}

static void
check_rec(const struct hosts *h, int k)
{
	uint8_t query[DNS_HDR + DNS_MAX_NAME + 4];
	const struct hosts_rec *r = &h->rec[k], *o;
	struct local_answer a;
	struct dns_query q;
	int j, n4 = 0, n6 = 0, first = -1, i;

	check(r->family == AF_INET || r->family == AF_INET6);
	check_name(h->names + r->name, r->name_len);
	check_name(h->names + r->rname, r->rname_len);
	if (r->family == AF_INET)	/* 4 labels of 1-3 digits */
		check(r->rname_len >= 22 && r->rname_len <= 30);
	else				/* 32 nibbles */
		check(r->rname_len == 74);
	for (j = 0; j < h->n; j++) {
		o = &h->rec[j];
		if (same(h, o, r, false)) {
			n4 += o->family == AF_INET;
			n6 += o->family == AF_INET6;
		}
		if (first == -1 && same(h, o, r, true))
			first = j;
	}
	make_query(query, h->names + r->name, r->name_len, TYPE_A, &q);
	reply(h, query, &q, &a);
	check(a.n == (n4 < LOCAL_MAX_RR ? n4 : LOCAL_MAX_RR));
	for (i = 0; i < a.n; i++)
		check(a.rr[i].type == TYPE_A && a.rr[i].len == 4);
	make_query(query, h->names + r->name, r->name_len, TYPE_AAAA, &q);
	reply(h, query, &q, &a);
	check(a.n == (n6 < LOCAL_MAX_RR ? n6 : LOCAL_MAX_RR));
	for (i = 0; i < a.n; i++)
		check(a.rr[i].type == TYPE_AAAA && a.rr[i].len == 16);
	make_query(query, h->names + r->name, r->name_len, 15, &q);
	reply(h, query, &q, &a);
	check(a.n == 0);

	make_query(query, h->names + r->rname, r->rname_len, TYPE_PTR, &q);
	reply(h, query, &q, &a);
	check(a.n == 1 && a.rr[0].type == TYPE_PTR);
	o = &h->rec[first];
	check(a.rr[0].len == o->name_len &&
	    memcmp(a.rr[0].data, h->names + o->name, o->name_len) == 0);
}

/* A name the file may not have is found exactly when it is there. */
static void
absent(const struct hosts *h)
{
	static const uint8_t name[] = "\7missing\4test";
	uint8_t query[DNS_HDR + DNS_MAX_NAME + 4];
	struct local_answer a;
	struct dns_query q;
	bool there = false;
	int k;

	for (k = 0; k < h->n; k++)
		there |= h->rec[k].name_len == sizeof(name) &&
		    memcmp(h->names + h->rec[k].name, name, sizeof(name)) == 0;
	make_query(query, name, sizeof(name), TYPE_A, &q);
	check(hosts_lookup(h, &q, &a) == there);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hosts h;
	size_t i, words = 0;
	int n, k;

	if (size > RESOLV_MAX_FILE)
		return 0;	/* the caller refuses larger files */
	n = hosts_parse((const char *)data, size, &h);
	if (n < 0)
		return 0;	/* out of memory */
	check(n == h.n);
	for (i = 0; i < size; i++)
		if (!is_space(data[i]) && data[i] != '\n' &&
		    (i == 0 || is_space(data[i - 1]) || data[i - 1] == '\n'))
			words++;
	check((size_t)n <= words);
	check(h.bad >= 0);
	for (k = 0; k < h.n && k < CHECK_MAX; k++)
		check_rec(&h, k);
	absent(&h);
	hosts_free(&h);
	check(h.rec == NULL && h.names == NULL && h.n == 0);
	return 0;
}
