/*
 * fuzz-reply: the upstream reply path of upstream_reply() and
 * query_answer(), without I/O.
 *
 * Input layout:
 *	byte 0	 < 0x80: the query is fixed query (byte 0 % NQ), and the
 *		 reply is bytes 2...;
 *		 >= 0x80: bytes 2-3 are a length L, bytes 4..4+L-1 the query
 *		 (as sent upstream) and the rest the reply.  Captured pairs
 *		 are stored this way.
 *	byte 1	 how long the answer then stays in the cache: 0xff its
 *		 whole TTL, 0xfe 1 ms less, otherwise byte 1 * 997 ms.
 *
 * The reply is classified by dns_parse_reply() against the query, stored
 * in a cache of 4 entries, cut by dns_truncate() to 512 bytes and to the
 * client's size, and served from the cache after the time given.  The
 * invariants: what is cut fits and still parses as the answer to the
 * query, with TC; the cache keeps exactly the cacheable answers, gives
 * them back byte for byte but the ID, the case of the name and the TTLs,
 * and keeps the most recently used: four, or as many as its bytes hold.
 */
#include <stdbool.h>
#include <string.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

#define T0		1000000000ull	/* ms; any start will do */

struct fixed {
	const char	*name;		/* text, case kept */
	uint16_t	 type;
	uint16_t	 flags;
	int		 edns;		/* UDP size; 0 without OPT */
	bool		 do_bit;
};

static const struct fixed fixed[] = {
	{ "example.test", TYPE_A, DNS_RD, 0, false },
	{ "example.test", TYPE_A, DNS_RD, 1232, false },
	{ "a.test", TYPE_A, DNS_RD, 4096, true },
	{ "Big.Test", TYPE_A, DNS_RD | DNS_CD, 1232, false },
	{ "nx.test", TYPE_A, DNS_RD, 512, false },
	{ "tc.test", TYPE_A, DNS_RD, 0, false },
	{ "c.test", TYPE_AAAA, DNS_RD, 65535, true },
	{ "", TYPE_NS, 0, 1232, false },
	{ "4.3.2.1.in-addr.arpa", TYPE_PTR, DNS_RD, 0, false },
	{ "nd.test", TYPE_SOA, DNS_RD, 1400, false },
};
#define NQ	(sizeof(fixed) / sizeof(fixed[0]))

static uint8_t fq[NQ][DNS_HDR + DNS_MAX_NAME + 4 + 11];
static size_t fqlen[NQ];
static uint8_t out[2 + DNS_MAX_TCP];

static size_t
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

/* Write a fixed query as a client would. */
static size_t
fixed_build(const struct fixed *f, uint8_t *p)
{
	const char *s = f->name, *dot;
	size_t n = 0, l;

	n += put16(p + n, 0x1234);
	n += put16(p + n, f->flags);
	n += put16(p + n, 1);
	n += put16(p + n, 0);
	n += put16(p + n, 0);
	n += put16(p + n, f->edns != 0);
	while (*s != '\0') {
		dot = strchr(s, '.');
		l = dot != NULL ? (size_t)(dot - s) : strlen(s);
		p[n++] = (uint8_t)l;
		memcpy(p + n, s, l);
		n += l;
		s += l + (dot != NULL);
	}
	p[n++] = 0;
	n += put16(p + n, f->type);
	n += put16(p + n, CLASS_IN);
	if (f->edns != 0) {
		p[n++] = 0;
		n += put16(p + n, TYPE_OPT);
		n += put16(p + n, (uint16_t)f->edns);
		n += put16(p + n, 0);
		n += put16(p + n, f->do_bit ? 0x8000 : 0);
		n += put16(p + n, 0);
	}
	return n;
}

static void
setup(void)
{
	static bool done;
	struct dns_query q;
	size_t i;

	if (done)
		return;
	done = true;
	for (i = 0; i < NQ; i++) {
		fqlen[i] = fixed_build(&fixed[i], fq[i]);
		check(dns_parse_query(fq[i], fqlen[i], &q) == 0);
	}
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * dns_truncate() a copy of reply (len bytes, described by r) to limit,
 * and check what is left.
 */
static void
cut(const uint8_t *reply, size_t len, const struct dns_query *q,
    const struct dns_reply *r, size_t limit)
{
	struct dns_reply t;
	enum reply_class c;
	size_t n, end, optlen = 0;
	uint8_t *buf;

	if ((buf = malloc(len)) == NULL)
		return;
	memcpy(buf, reply, len);
	n = dns_truncate(buf, len, limit, r);
	if (len <= limit) {
		check(n == len && memcmp(buf, reply, len) == 0);
		free(buf);
		return;
	}
	end = r->qend != 0 ? r->qend : DNS_HDR;
	if (r->opt != 0)
		optlen = 11u + get16(reply + r->opt + 9);
	check(n <= limit);
	check(n == end || (r->opt != 0 && n == end + optlen));
	check(buf[2] & (DNS_TC >> 8));
	check(memcmp(buf, reply, 2) == 0);
	check(get16(buf + 6) == 0 && get16(buf + 8) == 0);
	check(get16(buf + 10) == (n > end));
	if (n > end)
		check(memcmp(buf + end, reply + r->opt, optlen) == 0);
	c = dns_parse_reply(buf, n, q, &t);
	check(t.ancount == 0 && t.qend == r->qend && t.rcode == r->rcode);
	check(t.opt == (n > end ? end : 0));
	if (r->qend != 0 && (r->rcode == RCODE_NOERROR ||
	    r->rcode == RCODE_NXDOMAIN))
		check(c == REPLY_POSITIVE);
	else
		check(c == REPLY_FAILURE);
	free(buf);
}

static const uint64_t fuzz_key[2] = { 1, 2 };

/*
 * dns_finish() of an answer without OPT (reply, len, described by r) for
 * q at a few limits: it fits, it parses as an answer to q, and it carries
 * exactly one OPT, ours, when q had EDNS.
 */
static void
finish(const uint8_t *reply, size_t len, const struct dns_query *q,
    const struct dns_reply *r)
{
	static const size_t limits[] = { 512, 1232, DNS_MAX_UDP, DNS_MAX_TCP };
	struct dns_reply t;
	uint8_t *buf;
	size_t i, n, size = len + r->ede_len + 64;

	if (r->class == REPLY_FAILURE || (r->flags & DNS_TC))
		return;		/* never sent, or cut anyway: see cut() */
	if ((buf = malloc(size)) == NULL)
		return;
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		memcpy(buf, reply, len + r->ede_len);
		n = dns_finish(buf, len, size, r, q, limits[i],
		    i == 1 ? 3 : -1);
		check(n <= limits[i] && n >= r->qend);
		if (n < len + (q->opt != 0 ? 11 : 0))
			check(buf[2] & (DNS_TC >> 8));
		dns_parse_reply(buf, n, q, &t);
		check(t.qend == r->qend);
		check((t.opt != 0) == (q->opt != 0));
		/* no answer carries a byte past its counted records */
		check(t.end == n || t.class == REPLY_FAILURE);
		/* the asker's RD and CD; AD only to an AD or DO asker */
		check((t.flags & (DNS_RD | DNS_CD)) ==
		    (q->flags & (DNS_RD | DNS_CD)));
		check(!(t.flags & DNS_AD) || q->do_bit || (q->flags & DNS_AD));
		if (t.opt != 0)
			check(get16(buf + t.opt + 3) == 1232 &&
			    (buf[t.opt + 7] & 0x80) == (q->do_bit ? 0x80 : 0));
	}
	free(buf);
}

/* dns_get_name() must read and skip the name at pos alike. */
static void
names(const uint8_t *reply, size_t len, size_t pos)
{
	uint8_t name[DNS_MAX_NAME];
	struct dns_cursor a, b;
	int n;

	dns_cursor_init(&a, reply, len);
	dns_cursor_init(&b, reply, len);
	a.pos = b.pos = pos;
	n = dns_get_name(&a, name);
	check(dns_get_name(&b, NULL) == n);
	check(a.pos == b.pos && (a.err == NULL) == (b.err == NULL));
	check(n == -1 || (n >= 1 && n <= DNS_MAX_NAME && name[n - 1] == 0));
	check(n != -1 || a.err != NULL);
	check(a.pos <= len);
}

/* The TTL cache_put() gives reply r; 0 when it must not be kept. */
static uint32_t
cache_ttl(const struct dns_query *q, size_t len, const struct dns_reply *r)
{
	if (len > CACHE_DATA || (r->flags & DNS_TC) ||
	    r->qend != DNS_HDR + q->qname_len + 4 || r->scoped)
		return 0;
	if (r->class == REPLY_POSITIVE)
		return r->min_ttl < CACHE_MAX_TTL ? r->min_ttl : CACHE_MAX_TTL;
	if (r->class == REPLY_NEGATIVE && r->neg_ttl >= 0)
		return r->neg_ttl < CACHE_MAX_NEG ? (uint32_t)r->neg_ttl :
		    CACHE_MAX_NEG;
	return 0;
}

/*
 * What cache_get() must serve for reply (of class cls) after age_s
 * seconds: the query's ID and case, and every TTL but the OPT's taken
 * to 0 from over INT32_MAX (RFC 2181 8), capped at CACHE_MAX_TTL
 * (CACHE_MAX_NEG for a negative answer), then lowered by age_s.  The TTL
 * fields are found on the reply as received, since a name may point into
 * one of them.
 */
static void
expect_aged(uint8_t *exp, const uint8_t *reply, size_t len,
    const uint8_t *query, const struct dns_query *q, enum reply_class cls,
    uint32_t age_s)
{
	struct dns_cursor c;
	unsigned n;
	uint32_t ttl, cap;
	uint16_t type, rdlen;
	size_t at;

	cap = cls == REPLY_POSITIVE ? CACHE_MAX_TTL : CACHE_MAX_NEG;
	memcpy(exp, reply, len);
	memcpy(exp, query, 2);
	memcpy(exp + DNS_HDR, query + DNS_HDR, q->qname_len);
	dns_cursor_init(&c, reply, len);
	c.pos = 6;
	n = dns_get_u16(&c);
	n += dns_get_u16(&c);
	n += dns_get_u16(&c);
	dns_get_name(&c, NULL);
	dns_get_u32(&c);
	while (n-- > 0) {
		dns_get_name(&c, NULL);
		type = dns_get_u16(&c);
		dns_get_u16(&c);
		at = c.pos;
		ttl = dns_get_u32(&c);
		rdlen = dns_get_u16(&c);
		check(c.err == NULL && c.len - c.pos >= rdlen);
		c.pos += rdlen;
		if (type == TYPE_OPT)
			continue;
		ttl = ttl > INT32_MAX ? 0 : ttl;
		ttl = ttl > cap ? cap : ttl;
		ttl = ttl > age_s ? ttl - age_s : 0;
		exp[at] = (uint8_t)(ttl >> 24);
		exp[at + 1] = (uint8_t)(ttl >> 16);
		exp[at + 2] = (uint8_t)(ttl >> 8);
		exp[at + 3] = (uint8_t)ttl;
	}
}

/* The entries in c, as SIGUSR1 reports them. */
static int
entries(const struct cache *c)
{
	struct cache_stats st;

	cache_stats(c, &st);
	return st.entries;
}

/*
 * Serve q from c at now; the answer must be reply (len bytes, described
 * by r) aged by age_s, and what cache_get() says of it must be enough for
 * dns_truncate().
 */
static void
served(struct cache *c, const struct dns_query *q, const uint8_t *query,
    const uint8_t *reply, size_t len, const struct dns_reply *r,
    uint64_t now, uint32_t age_s, bool hit)
{
	static uint8_t exp[CACHE_DATA];
	struct dns_reply g;
	size_t n, limit;

	memset(out, 0xa5, len + r->ede_len + 1);
	n = cache_get(c, q, query, out, sizeof(out), now, &g);
	if (!hit) {
		check(n == 0);
		return;
	}
	check(n == len && len <= CACHE_DATA);
	/* its EDEs come back with it, just past it, and nothing more */
	check(g.ede_len == r->ede_len && out[len + g.ede_len] == 0xa5);
	check(memcmp(out + len, reply + len, g.ede_len) == 0);
	expect_aged(exp, reply, len, query, q, r->class, age_s);
	check(memcmp(out, exp, len) == 0);
	check(g.qend == r->qend && g.opt == 0 && g.rcode == r->rcode);
	check(g.flags == r->flags);
	limit = q->udp_size > DNS_MAX_UDP ? DNS_MAX_UDP : q->udp_size;
	cut(out, n, q, &g, limit);
	cut(out, n, q, &g, 512);
}

/* The EDE options kept past an answer: whole EDE options, nothing else. */
static void
eded(const uint8_t *p, size_t n)
{
	size_t at = 0;

	check(n <= DNS_EDE_MAX);
	while (at < n) {
		check(n - at >= 6 && get16(p + at) == 15);
		check(get16(p + at + 2) >= 2 && get16(p + at + 2) <= n - at - 4);
		at += 4 + get16(p + at + 2);
	}
}

/*
 * Whether capping the TTLs of reply changes what it says (a name points
 * into a TTL field): then cache_put() may refuse it.
 */
static bool
mangled(const uint8_t *reply, size_t len, const uint8_t *query,
    const struct dns_query *q, const struct dns_reply *r)
{
	static uint8_t exp[CACHE_DATA];
	struct dns_reply m;

	if (len > CACHE_DATA)
		return false;
	expect_aged(exp, reply, len, query, q, r->class, 0);
	return dns_parse_reply(exp, len, q, &m) != r->class ||
	    m.ancount != r->ancount;
}

/*
 * Fill a cache of 4 with eight variants of q's key: the most recent ones
 * stay, as many as both bounds allow: 4 entries, and the arena's bytes
 * (an answer near 1 KB takes 1,152 of the 4 KiB, so only 3 fit).
 * stored: whether cache_put() keeps this answer.
 */
static void
evict(struct cache *c, const struct dns_query *q, const uint8_t *query,
    const uint8_t *reply, size_t len, const struct dns_reply *r,
    bool stored)
{
	struct cache_stats cs;
	struct dns_query v[8];
	size_t each;
	int i, kept;

	for (i = 0; i < 8; i++) {
		v[i] = *q;
		v[i].opt = (i & 1) ? (q->opt != 0 ? q->opt : 1) : 0;
		v[i].do_bit = (i & 2) != 0;
		v[i].flags = (uint16_t)((q->flags & ~DNS_CD) |
		    ((i & 4) ? DNS_CD : 0));
		check(cache_put(c, &v[i], reply, len, r, T0 + 1 + i) ==
		    stored);
		check(entries(c) <= 4);
	}
	if (!stored)
		return;
	cache_stats(c, &cs);
	kept = cs.entries;
	each = cs.bytes / (size_t)kept;		/* every variant costs the same */
	check(kept >= 1 && cs.bytes == each * (size_t)kept);
	check((size_t)kept == (cs.arena / each < 4 ? cs.arena / each : 4));
	for (i = 7; i >= 0; i--)
		served(c, &v[i], query, reply, len, r, T0 + 9, 0,
		    i >= 8 - kept);
	cache_flush(c);
	check(entries(c) == 0);
	for (i = 0; i < 8; i++)
		served(c, &v[i], query, reply, len, r, T0 + 9, 0, false);
	/*
	 * The asker's RD and CD key the entry: an RD=1 client never gets an
	 * answer fetched with RD=0, a CD=0 client never one fetched with
	 * CD=1 (nor the other way round).
	 */
	check(cache_put(c, q, reply, len, r, T0));
	v[0] = *q;
	v[0].flags ^= DNS_RD;
	served(c, &v[0], query, reply, len, r, T0 + 9, 0, false);
	v[0] = *q;
	v[0].flags ^= DNS_CD;
	served(c, &v[0], query, reply, len, r, T0 + 9, 0, false);
	cache_flush(c);
	/* an answer that does not fit the caller's buffer is dropped */
	check(cache_put(c, q, reply, len, r, T0));
	check(cache_get(c, q, query, out, len - 1, T0, &(struct dns_reply){0})
	    == 0);
	check(entries(c) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *query;
	struct dns_reply r, r2;
	struct dns_query q;
	struct cache c;
	enum reply_class cls;
	uint8_t *reply;
	size_t qlen, len, at;
	uint32_t ttl, age_s;
	uint64_t age_ms;
	bool stored, hit;

	setup();
	if (size < 2)
		return 0;
	if (data[0] < 0x80) {
		query = fq[data[0] % NQ];
		qlen = fqlen[data[0] % NQ];
		at = 2;
	} else {
		if (size < 4 || (size_t)get16(data + 2) > size - 4)
			return 0;
		query = data + 4;
		qlen = get16(data + 2);
		at = 4 + qlen;
	}
	if (dns_parse_query(query, qlen, &q) != 0)
		return 0;
	len = size - at;
	if (len > DNS_MAX_TCP)
		return 0;	/* no message is longer */
	if ((reply = malloc(len ? len : 1)) == NULL)
		return 0;
	memcpy(reply, data + at, len);

	cls = dns_parse_reply(reply, len, &q, &r);
	check(dns_parse_reply(reply, len, &q, &r2) == cls);
	check(memcmp(&r, &r2, sizeof(r)) == 0);
	check(memcmp(reply, data + at, len) == 0);
	check(r.class == cls);
	if (cls == REPLY_FOREIGN)
		goto out;	/* not an answer to q: ignored */
	check(r.qend == 0 || r.qend == DNS_HDR + q.qname_len + 4);
	check(r.qend != 0 || cls == REPLY_FAILURE);
	check(r.qend <= len);
	if (r.opt != 0) {
		check(r.opt >= r.qend && r.opt + 11u <= len);
		check(reply[r.opt] == 0);
		check(get16(reply + r.opt + 1) == TYPE_OPT);
		check(r.opt + 11u + get16(reply + r.opt + 9) <= len);
	}
	if (cls != REPLY_FAILURE)
		check(r.rcode == RCODE_NOERROR || r.rcode == RCODE_NXDOMAIN);
	/* UINT32_MAX is left when the records were not all read */
	check(r.min_ttl <= INT32_MAX || (r.min_ttl == UINT32_MAX &&
	    (cls == REPLY_FAILURE || (r.flags & DNS_TC))));
	names(reply, len, DNS_HDR);
	if (r.qend != 0)
		names(reply, len, r.qend);
	check(r.neg_ttl >= -1 && r.neg_ttl <= INT32_MAX);
	check(dns_rcode_name(r.rcode) != NULL);

	check(r.end <= len && (r.end == 0 || r.end >= r.qend));
	check(r.end != 0 || cls == REPLY_FAILURE || (r.flags & DNS_TC));
	check(r.ede == -1 || r.opt != 0);
	check(!r.verdict || ede_verdict(r.ede) || r.opt != 0);
	cut(reply, len, &q, &r, 512);
	cut(reply, len, &q, &r, q.udp_size > DNS_MAX_UDP ? DNS_MAX_UDP :
	    q.udp_size);

	/*
	 * upstream_reply(): bytes past the last counted record go, never
	 * passed on; the upstream's OPT goes but for its EDEs; the cache
	 */
	if (r.end != 0 && len > r.end)
		len = r.end;
	len = dns_keep_ede(reply, len, &r);
	check(r.opt == 0 && len >= r.qend && len <= size - at);
	eded(reply + len, r.ede_len);
	/* it reads the same without its OPT: no name runs into it */
	check(dns_parse_reply(reply, len, &q, &r2) == r.class &&
	    r2.ancount == r.ancount);
	finish(reply, len, &q, &r);
	ttl = cache_ttl(&q, len, &r);
	check(cache_init(&c, 4, 0, fuzz_key) == 0);
	stored = cache_put(&c, &q, reply, len, &r, T0);
	check(stored == (ttl != 0) ||
	    (!stored && mangled(reply, len, query, &q, &r)));

	/* cache_get() some time later */
	if (data[1] == 0xff)
		age_ms = (uint64_t)ttl * 1000;
	else if (data[1] == 0xfe)
		age_ms = ttl != 0 ? (uint64_t)ttl * 1000 - 1 : 0;
	else
		age_ms = (uint64_t)data[1] * 997;
	age_s = (uint32_t)(age_ms / 1000);
	hit = stored && age_ms < (uint64_t)ttl * 1000;
	served(&c, &q, query, reply, len, &r, T0 + age_ms, age_s, hit);
	check(entries(&c) == hit);	/* a miss that found it expired dropped it */
	evict(&c, &q, query, reply, len, &r, stored);
	cache_free(&c);
out:
	free(reply);
	return 0;
}
