/*
 * relay: the barest UDP DNS relay, the ceiling a forwarder can approach in
 * test/bench/bench.sh.  Each query goes to the one upstream with only its ID
 * rewritten to a random one; the reply is matched by that ID alone, given
 * back its client's ID and sent to the client.  No parsing, no retries, no
 * timeouts: an ID reused before its reply came loses the older query.
 *
 *	cc -O2 -o test/bench/relay test/bench/relay.c
 *	test/bench/relay -l 127.0.0.1:0 -u 127.0.0.1:PORT
 *
 * One thread, poll(), recvmmsg/sendmmsg in batches of 64, one unconnected
 * upstream socket.
 *
 * With -a instead of -u it asks no upstream: each query is answered at once
 * with one A record (192.0.2.1, TTL 300) appended, the barest cache path:
 *
 *	test/bench/relay -l 127.0.0.1:0 -a
 *
 * With -p each query leaves from a fresh random port instead (RFC 5452):
 * a socket from a pool is connected to the upstream, which draws the port,
 * its reply read alone from it (epoll), and the socket disconnected, which
 * releases the port.  That is what port randomisation costs at least, the
 * floor of a forwarder that defends against spoofing:
 *
 *	test/bench/relay -l 127.0.0.1:0 -u 127.0.0.1:PORT -p
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchaddr.h"

#define BATCH		64	/* datagrams per recvmmsg/sendmmsg call */
#define MAX_MSG		65535	/* any UDP payload */
#define HDR_LEN		12
#define ID_PROBES	4	/* random draws before taking a busy ID */
#define POOL		1024	/* -p: sockets, one per query in flight */

/* A client address, kept small: the ID table has 65536 of them. */
union client_addr {
	struct sockaddr		 sa;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
};

/* What a wire ID stands for while its query is in flight. */
struct pending {
	union client_addr	 client;
	socklen_t		 clientlen;	/* 0 while the ID is free */
	uint16_t		 client_id;
};

/* Buffers for one batch in one direction. */
struct batch {
	uint8_t			 buf[BATCH][MAX_MSG];
	struct sockaddr_storage	 from[BATCH];
	struct iovec		 iov[BATCH];
	struct mmsghdr		 in[BATCH];
	struct mmsghdr		 out[BATCH];
	int			 nout;
};

/* -p: one pool socket; connected while its query is in flight. */
struct psock {
	int			 fd;		/* -1 until first used */
	bool			 busy;
	uint16_t		 wire_id;
	struct pending		 p;
};

struct state {
	int			 lfd;		/* listener */
	int			 ep;		/* -p: epoll set of the pool; else -1 */
	struct psock		 pool[POOL];
	int			 freep[POOL];	/* free pool slots */
	int			 nfreep;
	int			 ufd;		/* upstream, unconnected; -1 with -a */
	struct sockaddr_storage	 up;
	socklen_t		 uplen;
	uint64_t		 rng;		/* xorshift64 state, never 0 */
	struct pending		 id[65536];	/* indexed by wire ID */
	struct batch		 b;
};

/* ==== Messages and addresses ============================================== */

static void
die(const char *what)
{
	fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr, "usage: relay -l ADDR:PORT -u ADDR:PORT [-p] | -a\n");
	exit(1);
}

/* Same family, address and port. */
static bool
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a6->sin6_port == b6->sin6_port &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

/* ==== Relaying ============================================================ */

static uint16_t
random_id(struct state *st)
{
	uint64_t x = st->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	st->rng = x;
	return (uint16_t)(x >> 32);
}

/* A free wire ID if one of a few draws finds it, else a busy one. */
static uint16_t
pick_id(struct state *st)
{
	uint16_t id = 0;
	int i;

	for (i = 0; i < ID_PROBES; i++) {
		id = random_id(st);
		if (st->id[id].clientlen == 0)
			break;
	}
	return id;
}

static void
get16(const uint8_t *p, uint16_t *v)
{
	*v = (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Receive up to BATCH datagrams on fd into st->b; return how many. */
static int
batch_recv(struct state *st, int fd)
{
	struct batch *b = &st->b;
	int i, n;

	for (i = 0; i < BATCH; i++) {
		b->iov[i].iov_base = b->buf[i];
		b->iov[i].iov_len = MAX_MSG;
		memset(&b->in[i], 0, sizeof(b->in[i]));
		b->in[i].msg_hdr.msg_name = &b->from[i];
		b->in[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
		b->in[i].msg_hdr.msg_iov = &b->iov[i];
		b->in[i].msg_hdr.msg_iovlen = 1;
	}
	b->nout = 0;
	n = recvmmsg(fd, b->in, BATCH, MSG_DONTWAIT, NULL);
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNREFUSED)
			die("recvmmsg");
		return 0;
	}
	return n;
}

/* Queue datagram i of st->b for sending to (to, tolen). */
static void
batch_queue(struct state *st, int i, struct sockaddr_storage *to,
    socklen_t tolen)
{
	struct batch *b = &st->b;
	struct mmsghdr *m = &b->out[b->nout++];

	memset(m, 0, sizeof(*m));
	b->iov[i].iov_len = b->in[i].msg_len;
	m->msg_hdr.msg_name = to;
	m->msg_hdr.msg_namelen = tolen;
	m->msg_hdr.msg_iov = &b->iov[i];
	m->msg_hdr.msg_iovlen = 1;
}

/* Send what was queued; UDP, so what the socket will not take is dropped. */
static void
batch_flush(struct state *st, int fd)
{
	struct batch *b = &st->b;
	int sent, r;

	for (sent = 0; sent < b->nout; sent += r) {
		r = sendmmsg(fd, b->out + sent, (unsigned)(b->nout - sent), 0);
		if (r == -1)
			r = errno == EINTR ? 0 : 1;
	}
}

/* Queries from clients: rewrite the ID, send upstream.  Return how many. */
static int
relay_queries(struct state *st)
{
	struct batch *b = &st->b;
	struct pending *p;
	uint16_t wire;
	int i, n;

	n = batch_recv(st, st->lfd);
	for (i = 0; i < n; i++) {
		if (b->in[i].msg_len < HDR_LEN ||
		    (b->in[i].msg_hdr.msg_flags & MSG_TRUNC) ||
		    b->in[i].msg_hdr.msg_namelen > sizeof(union client_addr))
			continue;
		wire = pick_id(st);
		p = &st->id[wire];
		memcpy(&p->client, &b->from[i], b->in[i].msg_hdr.msg_namelen);
		p->clientlen = b->in[i].msg_hdr.msg_namelen;
		get16(b->buf[i], &p->client_id);
		put16(b->buf[i], wire);
		batch_queue(st, i, &st->up, st->uplen);
	}
	batch_flush(st, st->ufd);
	return n;
}

/* Replies from upstream: restore the ID, send to the client. */
static int
relay_replies(struct state *st)
{
	struct batch *b = &st->b;
	struct pending *p;
	uint16_t wire;
	int i, n;

	n = batch_recv(st, st->ufd);
	for (i = 0; i < n; i++) {
		if (b->in[i].msg_len < HDR_LEN || !same_addr(&b->from[i],
		    &st->up))
			continue;
		get16(b->buf[i], &wire);
		p = &st->id[wire];
		if (p->clientlen == 0)
			continue;
		put16(b->buf[i], p->client_id);
		/* b->from[i] is free now; it carries the client address. */
		memcpy(&b->from[i], &p->client, p->clientlen);
		batch_queue(st, i, &b->from[i], p->clientlen);
		p->clientlen = 0;
	}
	batch_flush(st, st->lfd);
	return n;
}

/* With -a: answer every query in place, one A record, no upstream. */
static int
answer_queries(struct state *st)
{
	static const uint8_t rr[16] = {
		0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1
	};
	struct batch *b = &st->b;
	uint8_t *m;
	unsigned len, at;
	int i, n;

	n = batch_recv(st, st->lfd);
	for (i = 0; i < n; i++) {
		m = b->buf[i];
		len = b->in[i].msg_len;
		/* a query (QR clear) with one question; what follows it goes */
		if (len < HDR_LEN + 5 || (m[2] & 0x80) || m[4] != 0 || m[5] != 1)
			continue;
		for (at = HDR_LEN; at < len && m[at] != 0 && m[at] < 64;
		    at += 1u + m[at])
			;
		if (at + 5 > len || m[at] != 0)
			continue;
		len = at + 5;
		m[2] = (uint8_t)(0x80 | (m[2] & 0x79));	/* QR, opcode, RD */
		m[3] = 0x80;				/* RA, NOERROR */
		memset(m + 6, 0, 6);
		m[7] = 1;				/* ANCOUNT */
		memcpy(m + len, rr, sizeof(rr));
		b->in[i].msg_len = len + (unsigned)sizeof(rr);
		batch_queue(st, i, &b->from[i], b->in[i].msg_hdr.msg_namelen);
	}
	batch_flush(st, st->lfd);
	return n;
}

/* ==== Fresh ports (-p) ==================================================== */

/*
 * Pool socket k's query is over: disconnect it, which releases its port.
 * A query whose reply never comes keeps its socket: this relay has no
 * timeouts, and the bench loses no replies on loopback.
 */
static void
fresh_done(struct state *st, int k)
{
	struct sockaddr unspec;

	memset(&unspec, 0, sizeof(unspec));
	unspec.sa_family = AF_UNSPEC;
	st->pool[k].busy = false;
	connect(st->pool[k].fd, &unspec, sizeof(unspec));
	st->freep[st->nfreep++] = k;
}

/* A query to the upstream from a pool socket connected for it alone. */
static void
fresh_query(struct state *st, int i)
{
	struct batch *b = &st->b;
	struct epoll_event ev;
	struct psock *s;
	int k;

	if (st->nfreep == 0)
		return;			/* all in flight: drop, like a full table */
	k = st->freep[--st->nfreep];
	s = &st->pool[k];
	if (s->fd == -1) {
		s->fd = socket(st->up.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (s->fd == -1)
			die("socket");
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)k;
		if (epoll_ctl(st->ep, EPOLL_CTL_ADD, s->fd, &ev) == -1)
			die("epoll_ctl");
	}
	if (connect(s->fd, (struct sockaddr *)&st->up, st->uplen) == -1) {
		st->freep[st->nfreep++] = k;
		return;
	}
	memcpy(&s->p.client, &b->from[i], b->in[i].msg_hdr.msg_namelen);
	s->p.clientlen = b->in[i].msg_hdr.msg_namelen;
	get16(b->buf[i], &s->p.client_id);
	s->wire_id = random_id(st);
	put16(b->buf[i], s->wire_id);
	s->busy = true;
	if (send(s->fd, b->buf[i], b->in[i].msg_len, 0) == -1)
		fresh_done(st, k);
}

static int
fresh_queries(struct state *st)
{
	struct batch *b = &st->b;
	int i, n;

	n = batch_recv(st, st->lfd);
	for (i = 0; i < n; i++)
		if (b->in[i].msg_len >= HDR_LEN &&
		    !(b->in[i].msg_hdr.msg_flags & MSG_TRUNC) &&
		    b->in[i].msg_hdr.msg_namelen <= sizeof(union client_addr))
			fresh_query(st, i);
	return n;
}

/* Replies on the pool: one recv each, disconnect, batch to the clients. */
static int
fresh_replies(struct state *st)
{
	struct epoll_event ev[BATCH];
	struct batch *b = &st->b;
	struct psock *s;
	ssize_t len;
	uint16_t id;
	int i, n;

	b->nout = 0;
	n = epoll_wait(st->ep, ev, BATCH, 0);
	for (i = 0; i < n; i++) {
		s = &st->pool[ev[i].data.u32];
		len = recv(s->fd, b->buf[b->nout], MAX_MSG, MSG_DONTWAIT);
		if (len < HDR_LEN || !s->busy)
			continue;
		get16(b->buf[b->nout], &id);
		if (id != s->wire_id)
			continue;
		put16(b->buf[b->nout], s->p.client_id);
		memcpy(&b->from[b->nout], &s->p.client, s->p.clientlen);
		b->iov[b->nout].iov_base = b->buf[b->nout];
		b->in[b->nout].msg_len = (unsigned)len;
		batch_queue(st, b->nout, &b->from[b->nout], s->p.clientlen);
		fresh_done(st, (int)ev[i].data.u32);
	}
	batch_flush(st, st->lfd);
	return n;
}


static void
relay_loop(struct state *st)
{
	struct pollfd pfd[2];
	int more;

	/* -a: -1, poll() skips it; -p: the pool's epoll set */
	pfd[0].fd = st->ep >= 0 ? st->ep : st->ufd;
	pfd[0].events = POLLIN;
	pfd[1].fd = st->lfd;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		/* Drain replies before taking new queries. */
		do {
			if (st->ep >= 0) {
				more = fresh_replies(st) == BATCH;
				more |= fresh_queries(st) == BATCH;
			} else if (st->ufd == -1) {
				more = answer_queries(st) == BATCH;
			} else {
				more = relay_replies(st) == BATCH;
				more |= relay_queries(st) == BATCH;
			}
		} while (more);
	}
}

int
main(int argc, char *argv[])
{
	static struct state st;
	struct sockaddr_storage ls, any;
	socklen_t lslen;
	const char *l = "127.0.0.1:0", *u = NULL;
	bool answer = false, fresh = false;
	int ch, i;

	while ((ch = getopt(argc, argv, "al:pu:")) != -1) {
		switch (ch) {
		case 'a':
			answer = true;
			break;
		case 'p':
			fresh = true;
			break;
		case 'l':
			l = optarg;
			break;
		case 'u':
			u = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (u == NULL) == !answer || (fresh && answer))
		usage();
	if (parse_addr(l, &ls, &lslen) == -1) {
		fprintf(stderr, "relay: -l: \"%s\" is not ADDR:PORT\n", l);
		exit(1);
	}
	if (!answer && parse_addr(u, &st.up, &st.uplen) == -1) {
		fprintf(stderr, "relay: -u: \"%s\" is not ADDR:PORT\n", u);
		exit(1);
	}
	if (getrandom(&st.rng, sizeof(st.rng), 0) != sizeof(st.rng))
		die("getrandom");
	st.rng |= 1;

	st.lfd = socket(ls.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (st.lfd == -1)
		die("socket");
	if (bind(st.lfd, (struct sockaddr *)&ls, lslen) == -1) {
		fprintf(stderr, "relay: cannot listen on %s: %s\n", l,
		    strerror(errno));
		exit(2);
	}
	st.ufd = -1;
	if (!answer) {
		st.ufd = socket(st.up.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (st.ufd == -1)
			die("socket");
		memset(&any, 0, sizeof(any));
		any.ss_family = st.up.ss_family;
		if (bind(st.ufd, (struct sockaddr *)&any, st.uplen) == -1)
			die("bind upstream socket");
	}
	lslen = sizeof(ls);
	if (getsockname(st.lfd, (struct sockaddr *)&ls, &lslen) == -1)
		die("getsockname");
	print_listening("relay", &ls);
	st.ep = -1;
	if (fresh) {
		if ((st.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
			die("epoll_create1");
		for (i = 0; i < POOL; i++) {
			st.pool[i].fd = -1;
			st.freep[st.nfreep++] = POOL - 1 - i;
		}
	}
	relay_loop(&st);
	return 0;
}
