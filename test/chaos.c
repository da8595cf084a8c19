/*
 * chaos: a randomized stress driver for dnsfwd's event loop and query
 * state machine.
 *
 *	test/chaos [-s SECONDS] [-r SEED] [-v] COMMAND [ARG...]
 *
 * chaos runs COMMAND (dnsfwd, normally the ASan+UBSan build, with any
 * ARGs, or a wrapper such as qemu-user and dnsfwd) with its own options
 * appended: -R, -l 127.0.0.1:0, -t 300 and two -s upstreams, 127.0.0.1:0 with
 * two upstreams that chaos itself plays, on loopback, and then runs rounds
 * until SECONDS (default 30) have passed.  In each round, for about a
 * second, it throws a random mix of client behaviour at dnsfwd: UDP
 * queries (repeated names, so that questions are shared, EDNS with
 * options, garbage, short packets, QR set) and TCP clients that pipeline,
 * half-close, reset, trickle one byte at a time, send oversized or empty
 * frames, disconnect mid-answer, or sit idle.  Its upstreams answer each
 * query one random way: at once, late, twice, never, SERVFAIL, NXDOMAIN,
 * NODATA, garbage, TC, a wrong ID, a wrong question, a datagram over 4096
 * bytes, junk after the last record, a spoofing flood (several replies
 * with wrong IDs, then maybe the right one), a forged ICMP "port
 * unreachable" at the attempt's port (one or two; from a raw socket, when
 * chaos may open one); over TCP also closing or resetting mid-answer.  Its clients ask with RD and CD at random, and every UDP
 * answer they get is checked (check_answer()): no byte past its counted
 * records, nothing fetched with another client's RD or CD.
 *
 * After each round chaos goes quiet and checks what a user would see:
 * dnsfwd still runs, it uses next to no CPU while nothing happens (no
 * spinning), and ordinary queries over UDP and TCP get their right answer.
 * It prints "ok - ..." or "not ok - ..." lines (test/run.sh counts them)
 * and exits 1 on any failure.  Every loop is bounded in count and time;
 * dnsfwd is stopped by its PID.
 */

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define MAX_TCP		48	/* chaos's TCP clients at once */
#define MAX_UPCONN	64	/* dnsfwd's TCP connections to our upstreams */
#define MAX_PEND	512	/* delayed upstream replies */
#define MAX_MSG		65535
#define NAMES		24	/* distinct names: repeats are shared */
#define ROUND_MS	1000	/* activity per round */
#define QUIET_MS	1200	/* then: late replies and timeouts drain */
#define IDLE_MS		500	/* CPU measured over this, quiet */
#define IDLE_TICKS	5	/* at most this many clock ticks in IDLE_MS */
#define TIMEOUT_MS	300	/* dnsfwd -t */
#define SPOOF_MARK	66	/* 192.0.66.x: data only wrong-ID replies carry */

static uint64_t	 seed, seed0;
static bool	 verbose;
static int	 failures;
static unsigned long n_udp, n_tcp, n_up, n_upconn, n_rounds;

/* ---- small utilities ----------------------------------------------------- */


/* xorshift64*: reproducible from -r SEED */
static uint32_t
rnd(void)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return (uint32_t)((seed * 2685821657736338717ull) >> 32);
}

static uint32_t
below(uint32_t n)
{
	return n == 0 ? 0 : rnd() % n;
}



static void
nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void
fail(const char *what, const char *detail)
{
	printf("not ok - chaos: %s%s%s (seed %llu)\n", what,
	    detail ? ": " : "", detail ? detail : "",
	    (unsigned long long)seed0);
	failures++;
}

/* ---- DNS messages -------------------------------------------------------- */


/* A query; edns 0 none, 1 plain, 2 with a COOKIE and a Client Subnet. */
static size_t
make_query(uint8_t *b, unsigned id, const char *name, unsigned type,
    int edns)
{
	size_t n = wire_query(b, id, 0x0100, name, type);

	if (edns == 0)
		return n;
	wire_put16(b + 10, 1);
	b[n] = 0;
	wire_put16(b + n + 1, 41);
	wire_put16(b + n + 3, 1232);
	memset(b + n + 5, 0, 4);
	if (edns == 1) {
		wire_put16(b + n + 9, 0);
		return n + 11;
	}
	wire_put16(b + n + 9, 12 + 11);
	n += 11;
	wire_put16(b + n, 10);		/* COOKIE, client part */
	wire_put16(b + n + 2, 8);
	memset(b + n + 4, 0xcc, 8);
	n += 12;
	wire_put16(b + n, 8);		/* Client Subnet 192.0.2.0/24 */
	wire_put16(b + n + 2, 7);
	wire_put16(b + n + 4, 1);
	b[n + 6] = 24;
	b[n + 7] = 0;
	b[n + 8] = 192;
	b[n + 9] = 0;
	b[n + 10] = 2;
	return n + 11;
}

/* The address the upstreams give name: 192.0.2.(sum of its bytes). */
static uint8_t
addr_of(const uint8_t *wire, size_t n)
{
	unsigned s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += wire[i] | 0x20;
	return (uint8_t)(s % 250 + 1);
}

/* The question of a query: end offset, or 0 when unreadable. */
static size_t
question_end(const uint8_t *q, size_t len)
{
	size_t p = 12;

	if (len < 12 || wire_get16(q + 4) != 1)
		return 0;
	while (p < len && q[p] != 0) {
		if (q[p] > 63)
			return 0;
		p += 1u + q[p];
	}
	return p + 5 <= len ? p + 5 : 0;
}

enum up_act {
	UP_ANSWER, UP_DELAY, UP_DROP, UP_SERVFAIL, UP_NXDOMAIN, UP_NODATA,
	UP_GARBAGE, UP_TWICE, UP_LATE, UP_TC, UP_BADID, UP_BADQ, UP_HUGE,
	UP_JUNK, UP_FLOOD, UP_ICMP, UP_COUNT
};

/*
 * The third octet of every address the upstreams give says how the query
 * that fetched it was asked: 2, plus 1 for RD clear, plus 2 for CD set.
 * A client's answer echoes its own RD and CD, so check_answer() can tell
 * that no client ever got an answer fetched with other flags than its own.
 */
static uint8_t
fetched_mark(const uint8_t *q)
{
	return (uint8_t)(2 + ((q[2] & 0x01) ? 0 : 1) + ((q[3] & 0x10) ? 2 : 0));
}

/* The reply to query q (len bytes) for act into r; its length, 0: none. */
static size_t
make_reply(const uint8_t *q, size_t len, int act, uint8_t *r)
{
	size_t qe = question_end(q, len), n;
	unsigned flags = 0x8180, an = 1, i;

	if (qe == 0)
		return 0;
	if (act == UP_GARBAGE) {
		n = 2 + below(200);
		for (i = 0; i < n; i++)
			r[i] = (uint8_t)rnd();
		if (below(2))
			memcpy(r, q, 2);	/* even with the right ID */
		return n;
	}
	memcpy(r, q, qe);
	if (act == UP_SERVFAIL || act == UP_NXDOMAIN || act == UP_NODATA) {
		flags |= act == UP_SERVFAIL ? 2 : act == UP_NXDOMAIN ? 3 : 0;
		an = 0;
	}
	if (act == UP_TC) {
		flags |= 0x0200;
		an = 0;
	}
	if (act == UP_BADID)
		wire_put16(r, wire_get16(q) ^ 0x5a5a);
	if (act == UP_BADQ)
		r[13] ^= 0x01;		/* another first letter */
	if (act == UP_HUGE)
		an = 320;		/* 5,000 bytes and more */
	if (!(q[2] & 0x01))		/* RD and CD as asked */
		flags &= ~0x0100u;
	flags |= q[3] & 0x10u;
	wire_put16(r + 2, flags);
	wire_put16(r + 6, an);
	wire_put16(r + 8, 0);
	wire_put16(r + 10, 0);
	n = qe;
	for (i = 0; i < an; i++) {
		wire_put16(r + n, 0xc00c);
		wire_put16(r + n + 2, 1);
		wire_put16(r + n + 4, 1);
		wire_put16(r + n + 6, 0);
		wire_put16(r + n + 8, below(30));
		wire_put16(r + n + 10, 4);
		r[n + 12] = 192;
		r[n + 13] = 0;
		r[n + 14] = fetched_mark(q);
		r[n + 15] = act == UP_HUGE ? (uint8_t)i :
		    addr_of(q + 12, qe - 16);
		n += 16;
	}
	if (act == UP_JUNK)	/* bytes past the last counted record */
		for (i = 0, an = 1 + below(40); i < an; i++)
			r[n++] = (uint8_t)rnd();
	return n;
}

/* ---- the upstreams ------------------------------------------------------- */

struct pend {
	uint64_t	 due;
	int		 udp;		/* socket, or -1 for a TCP conn */
	int		 conn;		/* upconn index */
	unsigned	 conngen;
	struct sockaddr_in to;
	size_t		 len;
	uint8_t		 buf[MAX_MSG];
};

struct upconn {
	int		 fd;
	unsigned	 gen;
	size_t		 inlen;
	uint8_t		 in[2 + 4096];
};

static int		 up_udp[2], up_tcp[2];
static uint16_t		 up_port[2];
static struct pend	*pend;
static int		 npend;
static struct upconn	 upc[MAX_UPCONN];
static bool		 tame;	/* checking: answer everything at once */
static int		 icmp_fd = -1;	/* raw ICMP, when allowed; else -1 */

static uint16_t
csum(const uint8_t *b, size_t n)
{
	uint32_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/*
 * A forged ICMP "port unreachable" for a datagram from dnsfwd's port
 * sport to our port dport, both on 127.0.0.1: what anyone who guesses the
 * port can send (no ID in it).
 */
static void
icmp_forge(uint16_t sport, uint16_t dport)
{
	uint8_t m[8 + 20 + 8];
	struct sockaddr_in to;

	if (icmp_fd < 0)
		return;
	memset(m, 0, sizeof(m));
	m[0] = 3;			/* destination unreachable */
	m[1] = 3;			/* port unreachable */
	m[8] = 0x45;			/* the datagram it is about */
	wire_put16(m + 10, 20 + 8 + 40);
	m[16] = 64;
	m[17] = 17;
	m[20] = m[24] = 127;
	m[23] = m[27] = 1;
	wire_put16(m + 28, sport);
	wire_put16(m + 30, dport);
	wire_put16(m + 32, 8 + 40);
	wire_put16(m + 2, csum(m, sizeof(m)));
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sendto(icmp_fd, m, sizeof(m), 0, (struct sockaddr *)&to, sizeof(to));
}

static void
pend_add(uint64_t due, int udp, int conn, const struct sockaddr_in *to,
    const uint8_t *buf, size_t len)
{
	struct pend *p;

	if (npend == MAX_PEND || len > MAX_MSG)
		return;
	p = &pend[npend++];
	p->due = due;
	p->udp = udp;
	p->conn = conn;
	p->conngen = conn >= 0 ? upc[conn].gen : 0;
	if (to != NULL)
		p->to = *to;
	p->len = len;
	memcpy(p->buf, buf, len);
}

static void
upconn_close(int i, bool reset)
{
	struct linger lg = { 1, 0 };

	if (upc[i].fd < 0)
		return;
	if (reset)
		setsockopt(upc[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(upc[i].fd);
	upc[i].fd = -1;
	upc[i].gen++;
}

static void
upconn_send(int i, const uint8_t *buf, size_t len)
{
	uint8_t frame[2 + MAX_MSG];

	if (upc[i].fd < 0 || len > MAX_MSG)
		return;
	wire_put16(frame, (unsigned)len);
	memcpy(frame + 2, buf, len);
	(void)!write(upc[i].fd, frame, len + 2);
}

static void
pend_run(uint64_t now)
{
	struct pend *p;
	int i = 0;

	while (i < npend) {
		p = &pend[i];
		if (p->due > now) {
			i++;
			continue;
		}
		if (p->udp >= 0)
			sendto(p->udp, p->buf, p->len, 0,
			    (struct sockaddr *)&p->to, sizeof(p->to));
		else if (upc[p->conn].gen == p->conngen)
			upconn_send(p->conn, p->buf, p->len);
		*p = pend[--npend];
	}
}

/* One query at an upstream: answer it one random way. */
static void
up_query(int udp, int conn, const struct sockaddr_in *from,
    const uint8_t *q, size_t len, uint64_t now)
{
	static uint8_t r[MAX_MSG];
	int act = tame ? UP_ANSWER : (int)below(UP_COUNT), k;
	size_t n;
	uint64_t due = now;

	n_up++;
	if (len > 18 && q[12] >= 5 && memcmp(q + 13, "probe", 5) == 0)
		act = UP_ANSWER;
	if (len > 18 && q[12] >= 4 && memcmp(q + 13, "hold", 4) == 0)
		act = UP_DROP;
	if (act == UP_DROP)
		return;
	if (udp < 0 && (act == UP_HUGE || act == UP_FLOOD || act == UP_ICMP))
		act = UP_ANSWER;
	if (act == UP_ICMP && icmp_fd >= 0) {
		for (k = 0; k < 2 && from != NULL; k++)
			if (udp == up_udp[k])
				break;
		icmp_forge(ntohs(from->sin_port), up_port[k & 1]);
		if (below(3) == 0)	/* a second one: now a failure */
			icmp_forge(ntohs(from->sin_port), up_port[k & 1]);
		return;
	}
	if (act == UP_ICMP)
		act = UP_ANSWER;
	if (act == UP_FLOOD) {	/* wrong IDs, then maybe the right one */
		n = make_reply(q, len, UP_ANSWER, r);
		if (n == 0)
			return;
		r[question_end(q, len) + 14] = SPOOF_MARK;
		for (k = 0; k < 3 + (int)below(4); k++) {
			wire_put16(r, wire_get16(q) ^ (0x1111u * (unsigned)(k + 1)));
			pend_add(now + below(20), udp, conn, from, r, n);
		}
		if (below(2))
			return;
		n = make_reply(q, len, UP_ANSWER, r);
		due = now + 20 + below(50);
		pend_add(due, udp, conn, from, r, n);
		return;
	}
	if (udp < 0 && act != UP_ANSWER && below(3) == 0) {
		/* TCP: close or reset, maybe mid-answer */
		n = make_reply(q, len, UP_ANSWER, r);
		if (below(2) && n > 4)
			(void)!write(upc[conn].fd, (uint8_t[]){ 0, (uint8_t)n },
			    2);
		upconn_close(conn, below(2));
		return;
	}
	if ((n = make_reply(q, len, act, r)) == 0)
		return;
	if (act == UP_DELAY)
		due = now + below(TIMEOUT_MS + 100);
	if (act == UP_LATE)
		due = now + TIMEOUT_MS + 50 + below(400);
	pend_add(due, udp, conn, from, r, n);
	if (act == UP_TWICE)
		pend_add(now + below(50), udp, conn, from, r, n);
}

static void
up_udp_read(int s, uint64_t now)
{
	uint8_t q[4096];
	struct sockaddr_in from;
	socklen_t fl;
	ssize_t n;
	int i;

	for (i = 0; i < 64; i++) {
		fl = sizeof(from);
		n = recvfrom(s, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			return;
		up_query(s, -1, &from, q, (size_t)n, now);
	}
}

static void
up_accept(int s)
{
	int fd, i;

	while ((fd = accept(s, NULL, NULL)) >= 0) {
		nonblock(fd);
		n_upconn++;
		for (i = 0; i < MAX_UPCONN && upc[i].fd >= 0; i++)
			;
		if (i == MAX_UPCONN) {
			close(fd);
			continue;
		}
		upc[i].fd = fd;
		upc[i].inlen = 0;
	}
}

static void
upconn_read(int i, uint64_t now)
{
	struct upconn *c = &upc[i];
	size_t need;
	ssize_t n;

	for (;;) {
		need = c->inlen < 2 ? 2 : 2 + wire_get16(c->in);
		if (need > sizeof(c->in)) {
			upconn_close(i, true);
			return;
		}
		n = read(c->fd, c->in + c->inlen, need - c->inlen);
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			upconn_close(i, false);
			return;
		}
		c->inlen += (size_t)n;
		if (c->inlen < 2 || c->inlen < 2 + wire_get16(c->in))
			continue;
		c->inlen = 0;
		up_query(-1, i, NULL, c->in + 2, wire_get16(c->in), now);
		if (c->fd < 0)
			return;
	}
}

/* ---- the clients --------------------------------------------------------- */

enum cli_mode {
	C_NORMAL, C_HALFCLOSE, C_RESET, C_TRICKLE, C_HUGEFRAME, C_EMPTYFRAME,
	C_MIDANSWER, C_IDLE, C_GARBAGE, C_COUNT
};

struct tcpcli {
	int		 fd;
	int		 mode;
	uint64_t	 deadline;
	uint64_t	 next_byte;
	size_t		 outlen, sent;
	bool		 connected;
	uint8_t		 out[8 * 600];
};

static struct tcpcli	 cli[MAX_TCP];
static int		 udpcli[4];
static struct sockaddr_in fwd;		/* dnsfwd's listener */

static void
random_name(char *buf, size_t size)
{
	static const char *const tails[] = {
		"chaos.test", "Chaos.TEST", "x.chaos.test",
	};

	snprintf(buf, size, "n%u.%s", below(NAMES), tails[below(3)]);
}

static size_t
random_query(uint8_t *b)
{
	static const unsigned types[] = { 1, 28, 16, 15, 1, 1 };
	char name[64];
	size_t n, i;

	switch (below(12)) {
	case 0:		/* garbage */
		n = below(80);
		for (i = 0; i < n; i++)
			b[i] = (uint8_t)rnd();
		return n;
	case 1:		/* a header only, or less */
		n = below(13);
		memset(b, 0, n);
		return n;
	case 2:		/* QR set: must never be answered */
		random_name(name, sizeof(name));
		n = make_query(b, rnd(), name, 1, 0);
		b[2] |= 0x80;
		return n;
	case 3:		/* EDNS version 1 */
		random_name(name, sizeof(name));
		n = make_query(b, rnd(), name, 1, 1);
		b[n - 6] = 1;
		return n;
	default:
		random_name(name, sizeof(name));
		n = make_query(b, rnd(), name, types[below(6)],
		    (int)below(3));
		if (below(4) == 0)
			b[2] &= (uint8_t)~0x01;	/* RD clear */
		if (below(4) == 0)
			b[3] |= 0x10;		/* CD set */
		return n;
	}
}

/* Skip a name in r (len bytes) at p; the offset past it, 0 if bad. */
static size_t
skip_name(const uint8_t *r, size_t len, size_t p)
{
	while (p < len) {
		if ((r[p] & 0xc0) == 0xc0)
			return p + 2 <= len ? p + 2 : 0;
		if (r[p] == 0)
			return p + 1;
		p += 1u + r[p];
	}
	return 0;
}

/*
 * What every answer a client gets must hold: not a byte past its counted
 * records, and every address in it fetched with the client's own RD and CD
 * (fetched_mark()): an RD=1 client never gets what an RD=0 one fetched,
 * a CD=0 client never what a CD=1 one did.
 */
static void
check_answer(const uint8_t *r, size_t len)
{
	char detail[96];
	unsigned cnt, type, rdlen;
	size_t p;

	if (len < 12 || !(r[2] & 0x80))
		return;		/* not an answer: nothing to hold it to */
	if ((p = question_end(r, len)) == 0) {
		if (wire_get16(r + 4) != 0)
			fail("an answer's question reads", NULL);
		return;
	}
	cnt = wire_get16(r + 6) + wire_get16(r + 8) + wire_get16(r + 10);
	for (; cnt > 0 && p != 0; cnt--) {
		if ((p = skip_name(r, len, p)) == 0 || len - p < 10)
			break;
		type = wire_get16(r + p);
		rdlen = wire_get16(r + p + 8);
		if (len - p - 10 < rdlen)
			break;
		if (type == 1 && rdlen == 4 && r[p + 10] == 192 &&
		    r[p + 12] == SPOOF_MARK) {
			fail("no spoofed reply (a wrong ID) reaches a client",
			    NULL);
		} else if (type == 1 && rdlen == 4 && r[p + 10] == 192 &&
		    r[p + 12] != fetched_mark(r)) {
			snprintf(detail, sizeof(detail), "flags %02x%02x, "
			    "fetched as 192.0.%u", r[2], r[3], r[p + 12]);
			fail("an answer fetched with the client's RD and CD",
			    detail);
		}
		p += 10 + rdlen;
	}
	if (cnt != 0 || p != len) {
		snprintf(detail, sizeof(detail), "%zu bytes, records end at "
		    "%zu", len, p);
		fail("an answer has no bytes past its counted records", detail);
	}
}

static void
udp_burst(void)
{
	uint8_t b[600], junk[4096];
	ssize_t r;
	size_t n;
	int k, s;

	for (k = 0; k < (int)below(12); k++) {
		n = random_query(b);
		s = udpcli[below(4)];
		sendto(s, b, n, 0, (struct sockaddr *)&fwd, sizeof(fwd));
		n_udp++;
	}
	for (k = 0; k < 4; k++)
		while ((r = recv(udpcli[k], junk, sizeof(junk), 0)) > 0)
			check_answer(junk, (size_t)r);
}

static void
cli_close(struct tcpcli *c, bool reset)
{
	struct linger lg = { 1, 0 };

	if (reset)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

static void
cli_start(uint64_t now)
{
	struct tcpcli *c = NULL;
	size_t n;
	int i, k;

	for (i = 0; i < MAX_TCP; i++)
		if (cli[i].fd < 0) {
			c = &cli[i];
			break;
		}
	if (c == NULL)
		return;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return;
	connect(c->fd, (struct sockaddr *)&fwd, sizeof(fwd));
	n_tcp++;
	c->mode = (int)below(C_COUNT);
	c->deadline = now + 100 + below(1500);
	c->next_byte = now;
	c->sent = c->outlen = 0;
	c->connected = false;
	switch (c->mode) {
	case C_HUGEFRAME:
		wire_put16(c->out, 0xffff);
		memset(c->out + 2, 0, 100);
		c->outlen = 102;
		break;
	case C_EMPTYFRAME:
		wire_put16(c->out, 0);
		c->outlen = 2;
		break;
	case C_GARBAGE:
		c->outlen = 1 + below(300);
		for (n = 0; n < c->outlen; n++)
			c->out[n] = (uint8_t)rnd();
		break;
	case C_IDLE:
		break;
	default:
		for (k = 0; k < 1 + (int)below(8); k++) {
			n = random_query(c->out + c->outlen + 2);
			wire_put16(c->out + c->outlen, (unsigned)n);
			c->outlen += 2 + n;
		}
	}
}

static void
cli_step(struct tcpcli *c, uint64_t now)
{
	uint8_t junk[4096];
	size_t chunk;
	ssize_t n;

	if (now >= c->deadline) {
		cli_close(c, below(3) == 0);
		return;
	}
	if (c->sent < c->outlen) {
		if (c->mode == C_TRICKLE && now < c->next_byte)
			return;
		chunk = c->mode == C_TRICKLE ? 1 : c->outlen - c->sent;
		n = write(c->fd, c->out + c->sent, chunk);
		if (n > 0) {
			c->sent += (size_t)n;
			c->next_byte = now + 40;
		} else if (n == -1 && errno != EAGAIN && errno != ENOTCONN) {
			cli_close(c, false);
			return;
		}
		if (c->sent < c->outlen)
			return;
		if (c->mode == C_HALFCLOSE)
			shutdown(c->fd, SHUT_WR);
		if (c->mode == C_RESET) {
			cli_close(c, true);
			return;
		}
	}
	n = read(c->fd, junk, c->mode == C_MIDANSWER ? 1 : sizeof(junk));
	if (n > 0 && c->mode == C_MIDANSWER) {
		cli_close(c, below(2));
		return;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != ENOTCONN))
		cli_close(c, false);
}

/* ---- dnsfwd -------------------------------------------------------------- */

static pid_t	 pid = -1;
static char	 errpath[] = "/tmp/chaos-dnsfwd.XXXXXX";

static void
start_dnsfwd(int argc, char **argv)
{
	char s1[40], s2[40], line[512];
	char *args[64];	/* 40 given, 22 ours */
	static char o0[] = "-R", o1[] = "-l", o2[] = "127.0.0.1:0";
	static char o3[] = "-s", o4[] = "-t", o5[] = "300", o6[] = "-c";
	static char o7[] = "64", o8[] = "--max-tcp", o9[] = "24";
	static char o10[] = "--max-queries", o11[] = "256";
	/* 64 blocks: large answers push small ones out, many at a time */
	static char o12[] = "--cache-bytes", o13[] = "4k";
	int i, n = 0, fd;
	FILE *f;
	uint64_t end;

	if ((fd = mkstemp(errpath)) < 0) {
		perror("mkstemp");
		exit(2);
	}
	snprintf(s1, sizeof(s1), "127.0.0.1#%u", up_port[0]);
	snprintf(s2, sizeof(s2), "127.0.0.1#%u", up_port[1]);
	for (i = 0; i < argc && n < 40; i++)	/* the command, as given */
		args[n++] = argv[i];
	args[n++] = o0;
	args[n++] = o1;
	args[n++] = o2;
	args[n++] = o3;
	args[n++] = s1;
	args[n++] = o3;
	args[n++] = s2;
	args[n++] = o4;
	args[n++] = o5;
	args[n++] = o6;
	args[n++] = o7;
	args[n++] = o8;
	args[n++] = o9;
	args[n++] = o10;
	args[n++] = o11;
	args[n++] = o12;
	args[n++] = o13;
	args[n] = NULL;
	if ((pid = fork()) == 0) {
		dup2(fd, 2);
		execvp(args[0], args);
		_exit(127);
	}
	close(fd);
	end = wire_now_ms() + 5000;
	while (wire_now_ms() < end) {
		if ((f = fopen(errpath, "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL) {
				unsigned a, b, c, d, p;
				if (sscanf(line, "dnsfwd: listening on "
				    "%u.%u.%u.%u:%u", &a, &b, &c, &d, &p) == 5) {
					fclose(f);
					fwd.sin_family = AF_INET;
					fwd.sin_port = htons((uint16_t)p);
					fwd.sin_addr.s_addr =
					    htonl(INADDR_LOOPBACK);
					return;
				}
			}
			fclose(f);
		}
		usleep(50000);
	}
	fail("dnsfwd started", "no listening line in 5 s");
	exit(1);
}

static bool
alive(void)
{
	int status;

	return waitpid(pid, &status, WNOHANG) == 0;
}

static void
show_stderr(void)
{
	char line[512];
	FILE *f;
	int n = 0;

	if (alive()) {
		kill(pid, SIGUSR1);
		usleep(200000);
	}
	if ((f = fopen(errpath, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL && n++ < 60)
		printf("#   %s", line);
	fclose(f);
}

/*
 * Counters NAMES[0..n) from dnsfwd's SIGUSR1 report into v (-1 when not
 * found): waits up to 5 s for its "end of counters" line.
 */
static void
counters(const char *const *names, long *v, int n)
{
	char line[4096], *p;
	uint64_t end = wire_now_ms() + 5000;
	int ends = 0, seen, k;
	FILE *f;

	if ((f = fopen(errpath, "r")) != NULL) {	/* reports so far */
		while (fgets(line, sizeof(line), f) != NULL)
			ends += strstr(line, "end of counters") != NULL;
		fclose(f);
	}
	for (k = 0; k < n; k++)
		v[k] = -1;
	kill(pid, SIGUSR1);
	while (wire_now_ms() < end) {
		if ((f = fopen(errpath, "r")) == NULL)
			return;
		seen = 0;
		while (fgets(line, sizeof(line), f) != NULL) {
			for (k = 0; k < n; k++)
				if ((p = strstr(line, names[k])) != NULL &&
				    strstr(line, "counters:") != NULL)
					v[k] = strtol(p + strlen(names[k]),
					    NULL, 10);
			seen += strstr(line, "end of counters") != NULL;
		}
		fclose(f);
		if (seen > ends)
			return;
		usleep(20000);
	}
}

/* Clock ticks dnsfwd has used so far (utime + stime). */
static long
cpu_ticks(void)
{
	char path[64], buf[1024], *p;
	long ut = 0, stt = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	for (i = 0; i < 12 && p != NULL; i++)	/* fields 3 .. 13 */
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %ld %ld", &ut, &stt) != 2)
		return -1;
	return ut + stt;
}

/* ---- the loop ------------------------------------------------------------ */

/* Serve our upstreams and step the clients until end. */
static void
pump(uint64_t end, bool active)
{
	struct pollfd p[4 + MAX_UPCONN];
	int map[4 + MAX_UPCONN], n, i, k;
	uint64_t now;

	while ((now = wire_now_ms()) < end) {
		if (active && below(3) == 0)
			udp_burst();
		if (active && below(4) == 0)
			cli_start(now);
		for (i = 0; i < MAX_TCP; i++)
			if (cli[i].fd >= 0)
				cli_step(&cli[i], now);
		pend_run(now);
		n = 0;
		for (k = 0; k < 2; k++) {
			p[n].fd = up_udp[k];
			p[n].events = POLLIN;
			map[n++] = -1;
			p[n].fd = up_tcp[k];
			p[n].events = POLLIN;
			map[n++] = -2;
		}
		for (i = 0; i < MAX_UPCONN; i++)
			if (upc[i].fd >= 0) {
				p[n].fd = upc[i].fd;
				p[n].events = POLLIN;
				map[n++] = i;
			}
		if (poll(p, (nfds_t)n, 5) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (p[i].revents == 0)
				continue;
			if (map[i] == -1)
				up_udp_read(p[i].fd, now);
			else if (map[i] == -2)
				up_accept(p[i].fd);
			else if (upc[map[i]].fd == p[i].fd)
				upconn_read(map[i], now);
		}
	}
}

/* An ordinary query over UDP or TCP must get its right answer. */
static bool
probe(bool tcp, unsigned k)
{
	uint8_t q[300], r[4096];
	char name[64];
	size_t n, qe;
	ssize_t got = -1, m;
	uint64_t end;
	struct timeval tv = { 2, 0 };
	struct pollfd pf;
	int s;

	snprintf(name, sizeof(name), "probe%u.chaos.test", k);
	n = make_query(q + 2, 0x4242 + k, name, 1, (int)(k % 2));
	s = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)) < 0 ||
	    connect(s, (struct sockaddr *)&fwd, sizeof(fwd)) < 0)
		goto out;
	wire_put16(q, (unsigned)n);
	if (send(s, tcp ? q : q + 2, tcp ? n + 2 : n, 0) < 0)
		goto out;
	end = wire_now_ms() + 3000;
	pf.fd = s;
	pf.events = POLLIN;
	while (got < 0 && wire_now_ms() < end) {
		/* our upstreams must keep answering while we wait */
		pump(wire_now_ms() + 20, false);
		if (poll(&pf, 1, 0) != 1)
			continue;
		if (tcp) {
			if (recv(s, r, 2, MSG_WAITALL) != 2 ||
			    (m = recv(s, r, wire_get16(r), MSG_WAITALL)) < 12)
				break;
			got = m;
		} else {
			got = recv(s, r, sizeof(r), 0);
		}
	}
out:
	if (s >= 0)
		close(s);
	qe = question_end(q + 2, n);
	return got >= (ssize_t)(qe + 16) && wire_get16(r) == 0x4242 + k &&
	    (wire_get16(r + 2) & 0x800f) == 0x8000 && wire_get16(r + 6) == 1 &&
	    r[qe + 15] == addr_of(q + 2 + 12, qe - 16);
}

/*
 * A TCP client that asks a name the upstreams never answer and half-closes
 * at once: its query stays in flight while the idle CPU is measured.
 */
static int
hold_start(unsigned k)
{
	uint8_t q[600];
	char name[64];
	size_t n, m;
	int s;

	/* one answered at once, then one that is not */
	snprintf(name, sizeof(name), "probe-h%u.chaos.test", k);
	n = make_query(q + 2, k, name, 1, 0);
	wire_put16(q, (unsigned)n);
	snprintf(name, sizeof(name), "hold%u.chaos.test", k);
	m = make_query(q + 4 + n, k, name, 1, 0);
	wire_put16(q + 2 + n, (unsigned)m);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&fwd, sizeof(fwd)) < 0 ||
	    send(s, q, n + m + 4, 0) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	shutdown(s, SHUT_WR);
	return s;
}

static void
round_check(void)
{
	char detail[128];
	long t0, t1;
	unsigned k;
	int hold;

	if (!alive()) {
		fail("dnsfwd alive after round", NULL);
		show_stderr();
		exit(1);
	}
	tame = true;
	hold = hold_start((unsigned)n_rounds);
	t0 = cpu_ticks();
	pump(wire_now_ms() + IDLE_MS, false);	/* answers the first at once */
	t1 = cpu_ticks();
	if (hold >= 0)
		close(hold);
	if (t0 < 0 || t1 < 0 || t1 - t0 > IDLE_TICKS) {
		snprintf(detail, sizeof(detail), "%ld clock ticks in %d ms "
		    "with nothing to do", t1 - t0, IDLE_MS);
		fail("dnsfwd idle after round", detail);
		show_stderr();
	}
	tame = true;
	for (k = 0; k < 4; k++)
		if (!probe(k >= 2, (unsigned)n_rounds * 4 + k)) {
			snprintf(detail, sizeof(detail), "round %lu, %s",
			    n_rounds, k >= 2 ? "tcp" : "udp");
			fail("an ordinary query answered after round", detail);
			show_stderr();
			break;
		}
	tame = false;
}

static void
setup_upstreams(void)
{
	struct sockaddr_in a;
	socklen_t al;
	int k, tries, on = 1;

	for (k = 0; k < 2; k++) {
		/* the port UDP is given may be taken for TCP: try another */
		for (tries = 0; tries < 32; tries++) {
			memset(&a, 0, sizeof(a));
			a.sin_family = AF_INET;
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			up_udp[k] = socket(AF_INET, SOCK_DGRAM, 0);
			if (up_udp[k] < 0 || bind(up_udp[k],
			    (struct sockaddr *)&a, sizeof(a)) < 0)
				exit(2);
			al = sizeof(a);
			getsockname(up_udp[k], (struct sockaddr *)&a, &al);
			up_port[k] = ntohs(a.sin_port);
			up_tcp[k] = socket(AF_INET, SOCK_STREAM, 0);
			setsockopt(up_tcp[k], SOL_SOCKET, SO_REUSEADDR, &on,
			    sizeof(on));
			if (up_tcp[k] >= 0 && bind(up_tcp[k],
			    (struct sockaddr *)&a, sizeof(a)) == 0 &&
			    listen(up_tcp[k], 64) == 0)
				break;
			close(up_udp[k]);
			if (up_tcp[k] >= 0)
				close(up_tcp[k]);
		}
		if (tries == 32) {
			fprintf(stderr, "chaos: no port free for UDP and TCP\n");
			exit(2);
		}
		nonblock(up_udp[k]);
		nonblock(up_tcp[k]);
	}
	for (k = 0; k < 4; k++) {
		udpcli[k] = socket(AF_INET, SOCK_DGRAM, 0);
		nonblock(udpcli[k]);
	}
	icmp_fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);	/* root only */
	for (k = 0; k < MAX_UPCONN; k++)
		upc[k].fd = -1;
	for (k = 0; k < MAX_TCP; k++)
		cli[k].fd = -1;
}

int
main(int argc, char **argv)
{
	static const char *const attack[2] = {
		"spoofing floods ", "asked again after a network error ",
	};
	unsigned long secs = 30;
	uint64_t start, end;
	long seen[2] = { -1, -1 };
	int ch, i;

	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	while ((ch = getopt(argc, argv, "+s:r:v")) != -1) {
		switch (ch) {
		case 's':
			secs = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			fprintf(stderr, "usage: chaos [-s SECONDS] [-r SEED] "
			    "[-v] DNSFWD [ARG...]\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "chaos: no dnsfwd binary given\n");
		return 2;
	}
	if (seed == 0)
		seed = 1;
	seed0 = seed;
	printf("# chaos: seed %llu, %lu s\n", (unsigned long long)seed, secs);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if ((pend = calloc(MAX_PEND, sizeof(*pend))) == NULL)
		return 2;
	setup_upstreams();
	start_dnsfwd(argc - optind, argv + optind);
	start = wire_now_ms();
	end = start + secs * 1000;
	while (wire_now_ms() < end && failures == 0) {
		pump(wire_now_ms() + ROUND_MS, true);
		for (i = 0; i < MAX_TCP; i++)
			if (cli[i].fd >= 0)
				cli_close(&cli[i], below(2));
		pump(wire_now_ms() + QUIET_MS, false);
		npend = 0;
		round_check();
		n_rounds++;
		if (verbose)
			fprintf(stderr, "chaos: round %lu: %lu udp, %lu tcp, "
			    "%lu upstream queries\n", n_rounds, n_udp, n_tcp,
			    n_up);
	}
	/* the attacks it was built to make were made, and seen */
	if (failures == 0) {
		counters(attack, seen, 2);
		if (seen[0] < 1)
			fail("spoofing floods seen (dnsfwd's counter)", NULL);
		if (icmp_fd >= 0 && seen[1] < 1)
			fail("forged ICMP errors seen (asked again)", NULL);
	}
	kill(pid, SIGTERM);
	for (i = 0; i < 50 && alive(); i++)
		usleep(100000);
	if (alive()) {
		kill(pid, SIGKILL);
		fail("dnsfwd exits on SIGTERM", NULL);
	}
	printf("# chaos: exit\n");
	if (failures == 0)
		printf("ok - chaos: %lu rounds in %llu s: %lu UDP queries, %lu "
		    "TCP clients, %lu upstream queries, %lu upstream TCP "
		    "connections, %ld spoofing floods, %ld asked again after "
		    "a (forged) ICMP error%s; alive, idle and answering after "
		    "each\n", n_rounds, (unsigned long long)(wire_now_ms() - start) /
		    1000, n_udp, n_tcp, n_up, n_upconn, seen[0], seen[1],
		    icmp_fd < 0 ? " (no raw socket: not root)" : "");
	if (failures == 0)
		unlink(errpath);
	else
		printf("# dnsfwd stderr kept in %s\n", errpath);
	return failures == 0 ? 0 : 1;
}
