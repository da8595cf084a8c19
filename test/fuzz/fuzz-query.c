/*
 * fuzz-query: the client query path of query_from_client(), without I/O.
 *
 * The input is one query as a client sends it (a UDP payload, or a TCP
 * message without its length).  It is checked by dns_parse_query(); an
 * RCODE is answered with dns_build_error(); a good query is looked up in a
 * fixed hosts table and a fixed table of -s and -a rules, answered with
 * dns_build_answer() when one of them knows it, and otherwise copied for
 * forwarding with its EDNS size clamped.  Every reply built must be one
 * that dns_parse_reply() takes as the answer to that same query, and must
 * still be one after dns_truncate() to the client's size.
 */
#include <stdbool.h>
#include <string.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

#define OUT_MAX		(2 + DNS_MAX_TCP)	/* dnsfwd's st->scratch */

static const char *const rules_s[] = {
	"/corp.example/192.0.2.53",
	"/corp.example/192.0.2.54#5353",
	"/def.corp.example/#",
	"/quiet.example/",
	"/b.test/c.test/::1#5353",
	"/2.0.192.in-addr.arpa/[2001:db8::53]#53",
};
static const char *const rules_a[] = {
	"/ads.example/0.0.0.0",
	"/ads.example/::",
	"/v6.test/2001:db8::1",
	"/blocked.test/",
	"/v4.blocked.test/192.0.2.7",
	"/quiet.example/",
};
static const char hosts_text[] =
    "127.0.0.1\tlocalhost\n"
    "::1 localhost ip6-localhost ip6-loopback\n"
    "192.0.2.10 host.lan Alias.LAN   # a comment\n"
    "192.0.2.11 host.lan\n"
    "2001:db8::10 host.lan\n"
    "192.0.2.20 many.lan\n192.0.2.21 many.lan\n192.0.2.22 many.lan\n"
    "192.0.2.23 many.lan\n192.0.2.24 many.lan\n192.0.2.25 many.lan\n"
    "192.0.2.26 many.lan\n192.0.2.27 many.lan\n192.0.2.28 many.lan\n"
    "192.0.2.29 many.lan\n"
    "bogus line here\n"
    "192.0.2.30 ads.example\n";

static struct routes routes;
static struct hosts hosts;
static uint8_t out[OUT_MAX];

static void
setup(void)
{
	static bool done;
	char err[256];
	size_t i;

	if (done)
		return;
	done = true;
	for (i = 0; i < sizeof(rules_s) / sizeof(rules_s[0]); i++)
		check(route_add(&routes, rules_s[i], false, err,
		    sizeof(err)) == 0);
	for (i = 0; i < sizeof(rules_a) / sizeof(rules_a[0]); i++)
		check(route_add(&routes, rules_a[i], true, err,
		    sizeof(err)) == 0);
	check(hosts_parse(hosts_text, sizeof(hosts_text) - 1, &hosts) > 0);
}

/* What the -v log line does with the query. */
static void
log_names(const struct dns_query *q)
{
	char text[DNS_MAX_NAME * 4 + 1], tb[16];
	size_t len;

	for (len = 1; len < 24; len += 5) {
		memset(text, 'x', sizeof(text));
		dns_name_text(q->qname, text, len);
		check(memchr(text, '\0', len) != NULL);
	}
	dns_name_text(q->qname, text, sizeof(text));
	check(strlen(text) < sizeof(text));
	check(dns_type_name(q->qtype, tb, sizeof(tb)) != NULL);
}

/*
 * buf (n bytes) was built by dnsfwd as the answer to query (len bytes,
 * checked into q) with rcode and an answers; it must be taken as such.
 */
static void
check_reply(uint8_t *buf, size_t n, const uint8_t *query,
    const struct dns_query *q, int rcode, int an)
{
	struct dns_reply r, t;
	enum reply_class c;
	size_t limit, cut;

	check(n >= DNS_HDR);
	c = dns_parse_reply(buf, n, q, &r);
	check(r.id == q->id);
	check(r.rcode == rcode);
	check((r.flags & (DNS_QR | DNS_RA)) == (DNS_QR | DNS_RA));
	check((r.flags & (DNS_RD | DNS_CD)) == (q->flags & (DNS_RD | DNS_CD)));
	check(r.ancount == an);
	if (q->qend != 0) {
		check(c != REPLY_FOREIGN);
		check(r.qend == q->qend);
		check(memcmp(buf + DNS_HDR, query + DNS_HDR,
		    q->qend - DNS_HDR) == 0);
		check((r.opt != 0) == (q->opt != 0 && n > q->qend &&
		    buf[11] == 1));
	}
	if (rcode == RCODE_NOERROR && an > 0)
		check(c == REPLY_POSITIVE);
	else if (rcode == RCODE_NOERROR || rcode == RCODE_NXDOMAIN)
		check(c == REPLY_NEGATIVE || q->qend == 0);
	else
		check(c == REPLY_FAILURE);

	/* client_send(): cut to what the client takes */
	limit = q->udp_size > DNS_MAX_UDP ? DNS_MAX_UDP : q->udp_size;
	memset(&r, 0, sizeof(r));
	r.qend = q->qend;
	cut = dns_truncate(buf, n, limit, &r);
	check(cut <= limit || cut == n);
	if (cut == n)
		return;
	check(cut == (q->qend != 0 ? q->qend : DNS_HDR));
	check(buf[2] & (DNS_TC >> 8));
	c = dns_parse_reply(buf, cut, q, &t);
	check(t.ancount == 0 && t.id == q->id);
	if (q->qend != 0)
		check(c == (rcode == RCODE_NOERROR || rcode == RCODE_NXDOMAIN ?
		    REPLY_POSITIVE : REPLY_FAILURE));
}

/* Build a into out (size bytes) as query_local() does, and check it. */
static void
answer(const uint8_t *query, const struct dns_query *q,
    const struct local_answer *a, size_t size)
{
	size_t need, n;
	int i, rcode = a->rcode;

	need = q->qend + (q->opt != 0 ? 11 : 0);
	for (i = 0; i < a->n; i++)
		need += 12u + a->rr[i].len;
	n = dns_build_answer(out, size, query, q, a, 3600);
	check(n <= size);
	check(n == (need <= size ? need : 0));
	if (n == 0) {
		n = dns_build_error(out, size, query, q,
		    rcode = RCODE_SERVFAIL, -1);
		check(n <= size);
		if (n == 0) {
			check(size < q->qend);
			return;
		}
		check_reply(out, n, query, q, rcode, 0);
		return;
	}
	check(out[2] & (DNS_AA >> 8));
	check_reply(out, n, query, q, rcode, a->n);
}

/* A local answer with every record as large as it can be. */
static void
answer_large(const uint8_t *query, const struct dns_query *q, size_t size)
{
	static struct local_answer a;
	int i;

	a.rcode = RCODE_NOERROR;
	a.n = LOCAL_MAX_RR;
	for (i = 0; i < a.n; i++) {
		a.rr[i].type = TYPE_PTR;
		a.rr[i].len = q->qname_len;
		memcpy(a.rr[i].data, q->qname, q->qname_len);
	}
	answer(query, q, &a, size);
}

/*
 * query_from_client(): the query rebuilt for upstream.  It parses as the
 * same question, with the client's DO bit and size (clamped), and carries
 * nothing else: no answer, authority or client option.
 */
static void
forward(const uint8_t *query, const struct dns_query *q)
{
	static uint8_t fwd[DNS_HDR + DNS_MAX_NAME + 4 + 11];
	struct dns_query f;
	size_t n;

	n = dns_build_query(fwd, sizeof(fwd), query, q);
	check(n == q->qend + (q->opt != 0 ? 11u : 0));
	check(dns_parse_query(fwd, n, &f) == 0);
	check(f.qname_len == q->qname_len &&
	    memcmp(f.qname, q->qname, q->qname_len) == 0);
	check(memcmp(fwd + DNS_HDR, query + DNS_HDR, q->qname_len) == 0);
	check(f.qtype == q->qtype && f.qclass == q->qclass);
	check((f.opt != 0) == (q->opt != 0) && f.do_bit == q->do_bit);
	check(f.udp_size == (q->udp_size > DNS_MAX_UDP ? DNS_MAX_UDP :
	    q->udp_size));
	check(f.opt == 0 || (fwd[f.opt + 9] == 0 && fwd[f.opt + 10] == 0));
	check(fwd[6] == 0 && fwd[7] == 0 && fwd[8] == 0 && fwd[9] == 0);
	check(memcmp(fwd, query, 2) == 0);
	check(dns_build_query(fwd, n - 1, query, q) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 0, 11, 12, 40, 300, 512, OUT_MAX };
	struct local_answer a;
	struct dns_query q, q2;
	size_t i, n;
	int rc, k;

	setup();
	rc = dns_parse_query(data, size, &q);
	check(dns_parse_query(data, size, &q2) == rc);
	if (rc == -1) {
		check(size < DNS_HDR || (data[2] & 0x80));
		return 0;
	}
	check(q.qend <= size);
	check(dns_rcode_name(rc) != NULL);
	if (q.qend != 0) {
		check(q.qname_len >= 1 && q.qname_len <= DNS_MAX_NAME);
		check(q.qend == DNS_HDR + q.qname_len + 4);
		check(q.qname[q.qname_len - 1] == 0);
		log_names(&q);
	}
	if (rc != 0) {
		if (rc == RCODE_BADVERS) {
			/* RFC 6891 6.1.3: the whole query read, an OPT */
			check(q.qend != 0 && q.opt != 0);
			n = dns_build_error(out, OUT_MAX, data, &q, rc, -1);
			check(n == q.qend + 11u && out[n - 6] == 1 &&
			    (out[3] & 0x0f) == 0);
			return 0;
		}
		/* malformed: FORMERR or NOTIMP, echoing what was readable */
		check(rc == RCODE_FORMERR || rc == RCODE_NOTIMP);
		/* NOTIMP: exactly the queries of another opcode */
		check((rc == RCODE_NOTIMP) == ((data[2] & 0x78) != 0));
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			n = dns_build_error(out, sizes[i], data, &q, rc, -1);
			check(n <= sizes[i]);
			if (n != 0)
				check_reply(out, n, data, &q, rc, 0);
			else
				check(sizes[i] < (q.qend ? q.qend : DNS_HDR));
		}
		return 0;
	}
	check(q.qend != 0 && q.udp_size >= 512);
	check(q.opt == 0 || (q.opt >= q.qend && q.opt + 11u <= size &&
	    data[q.opt] == 0));
	check(q.opt != 0 || (q.udp_size == 512 && !q.do_bit));

	/* query_local(): a hosts file first, then a local rule */
	if (hosts_lookup(&hosts, &q, &a)) {
		check(a.n >= 0 && a.n <= LOCAL_MAX_RR);
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			answer(data, &q, &a, sizes[i]);
	}
	k = route_match(&routes, q.qname);
	check(k >= -1 && k < routes.n);
	if (k >= 0) {
		check(routes.r[k].name_len <= q.qname_len);
		check(memcmp(routes.r[k].name, q.qname + q.qname_len -
		    routes.r[k].name_len, routes.r[k].name_len) == 0);
	}
	if (k >= 0 && routes.r[k].kind == RULE_LOCAL) {
		route_local(&routes.r[k], &q, &a);
		check(a.n <= 1);
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			answer(data, &q, &a, sizes[i]);
	}
	answer_large(data, &q, OUT_MAX);
	answer_large(data, &q, 512);

	/* the failure paths: SERVFAIL (no upstream, table full), REFUSED */
	n = dns_build_error(out, OUT_MAX, data, &q, RCODE_SERVFAIL, -1);
	check_reply(out, n, data, &q, RCODE_SERVFAIL, 0);
	n = dns_build_error(out, q.qend, data, &q, RCODE_REFUSED, -1);
	check(n == q.qend);
	check_reply(out, n, data, &q, RCODE_REFUSED, 0);

	forward(data, &q);
	return 0;
}
