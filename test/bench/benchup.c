/*
 * benchup: a fake upstream for test/bench/bench.sh, fast enough never to be the
 * bottleneck.  UDP only, one thread, recvmmsg/sendmmsg in batches of 64.
 *
 * Every well-formed query gets NOERROR with its ID, opcode, RD bit and
 * question echoed.  A query of type A or ANY gets one answer, 192.0.2.1
 * with TTL 300, whose owner is a compression pointer to the question; a
 * query of type TXT gets one TXT record of 1,000 bytes of text, TTL 300
 * (test/bench/measure-footprint.sh fills caches with it); any other type
 * gets NODATA.  If the query carried an OPT record the reply
 * carries one too.  A query whose question cannot be read gets FORMERR;
 * anything shorter than a header, or a response, is dropped.
 *
 *	cc -O2 -o test/bench/benchup test/bench/benchup.c
 *	test/bench/benchup [-l ADDR:PORT]	(default 127.0.0.1:0; [::1]:PORT for v6)
 *
 * SIGUSR1 prints the number of queries answered so far on stderr.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchaddr.h"

#define BATCH		64	/* datagrams per recvmmsg/sendmmsg call */
#define MAX_MSG		1232	/* largest query kept; RFC 9715 size */
#define HDR_LEN		12
#define ANSWER_LEN	16	/* pointer, type, class, ttl, rdlen, rdata */
#define OPT_LEN		11	/* root, type, size, ext rcode, flags, rdlen */
#define TXT_TEXT	1000	/* bytes of text: 4 strings of 249 */
#define TXT_LEN		(12 + TXT_TEXT)
#define SOCK_BUF	(4 << 20)	/* bytes; capped by net.core.*mem_max */

#define TYPE_A		1
#define TYPE_TXT	16
#define TYPE_OPT	41
#define TYPE_ANY	255
#define RCODE_FORMERR	1

static volatile sig_atomic_t got_usr1;

/* One slot of a batch: the query is read into, and answered from, buf. */
struct slot {
	uint8_t			 buf[MAX_MSG + TXT_LEN + OPT_LEN];
	struct sockaddr_storage	 from;
	struct iovec		 iov;
};

/* ==== Messages ============================================================ */

static void
die(const char *what)
{
	fprintf(stderr, "benchup: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr, "usage: benchup [-l ADDR:PORT]\n");
	exit(1);
}

static void
on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

/* ==== Answers ============================================================= */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * Return the offset just past the uncompressed name starting at pos, or 0
 * if it runs past len or uses anything but plain labels.
 */
static size_t
skip_name(const uint8_t *buf, size_t len, size_t pos)
{
	size_t start = pos;

	while (pos < len) {
		if (buf[pos] == 0)
			return pos + 1;
		if ((buf[pos] & 0xc0) != 0 || pos - start + buf[pos] > 254)
			return 0;
		pos += 1 + (size_t)buf[pos];
	}
	return 0;
}

/*
 * Turn the query of qlen bytes in buf (room for MAX_MSG + ANSWER_LEN +
 * OPT_LEN) into its reply in place.  Return the reply length, or 0 to drop.
 */
static size_t
answer(uint8_t *buf, size_t qlen)
{
	static const uint8_t a_rr[ANSWER_LEN] = {
		0xc0, HDR_LEN, 0, TYPE_A, 0, 1, 0, 0, 0x01, 0x2c, 0, 4,
		192, 0, 2, 1
	};
	size_t qend, n;
	uint16_t qtype, arcount;
	bool opt;
	int i;

	if (qlen < HDR_LEN || (buf[2] & 0x80) != 0)
		return 0;
	arcount = get16(buf + 10);
	qend = get16(buf + 4) == 1 ? skip_name(buf, qlen, HDR_LEN) : 0;
	if (qend == 0 || qlen - qend < 4) {
		buf[2] = (uint8_t)(0x80 | (buf[2] & 0x79));
		buf[3] = 0x80 | RCODE_FORMERR;
		memset(buf + 4, 0, 8);
		return HDR_LEN;
	}
	qtype = get16(buf + qend);
	qend += 4;
	/* An OPT in a query is a root name, then TYPE 41. */
	opt = arcount > 0 && qlen - qend >= OPT_LEN && buf[qend] == 0 &&
	    get16(buf + qend + 1) == TYPE_OPT;

	buf[2] = (uint8_t)(0x80 | (buf[2] & 0x79));	/* QR, opcode, RD */
	buf[3] = 0x80;					/* RA, NOERROR */
	put16(buf + 4, 1);
	put16(buf + 8, 0);
	put16(buf + 10, opt ? 1 : 0);
	n = qend;
	if (qtype == TYPE_A || qtype == TYPE_ANY) {
		memcpy(buf + n, a_rr, sizeof(a_rr));
		n += sizeof(a_rr);
		put16(buf + 6, 1);
	} else if (qtype == TYPE_TXT) {
		memcpy(buf + n, a_rr, 10);	/* pointer, class, TTL */
		put16(buf + n + 2, TYPE_TXT);
		put16(buf + n + 10, TXT_TEXT);
		for (i = 0; i < 4; i++) {
			buf[n + 12 + 250 * i] = 249;
			memset(buf + n + 13 + 250 * i, 'a' + i, 249);
		}
		n += TXT_LEN;
		put16(buf + 6, 1);
	} else
		put16(buf + 6, 0);
	if (opt) {
		memset(buf + n, 0, OPT_LEN);
		put16(buf + n + 1, TYPE_OPT);
		put16(buf + n + 3, MAX_MSG);
		n += OPT_LEN;
	}
	return n;
}

/* ==== Main loop =========================================================== */

static void
serve(int fd)
{
	static struct slot slot[BATCH];
	static struct mmsghdr in[BATCH], out[BATCH];
	unsigned long long answered = 0;
	sigset_t none;
	struct pollfd pfd;
	int i, n, nout, sent, r;
	size_t len;

	sigemptyset(&none);
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (got_usr1) {
			got_usr1 = 0;
			fprintf(stderr, "benchup: %llu queries answered\n",
			    answered);
		}
		for (i = 0; i < BATCH; i++) {
			slot[i].iov.iov_base = slot[i].buf;
			slot[i].iov.iov_len = MAX_MSG;
			memset(&in[i], 0, sizeof(in[i]));
			in[i].msg_hdr.msg_name = &slot[i].from;
			in[i].msg_hdr.msg_namelen = sizeof(slot[i].from);
			in[i].msg_hdr.msg_iov = &slot[i].iov;
			in[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				die("recvmmsg");
			/* SIGUSR1 is unblocked only while waiting here. */
			if (ppoll(&pfd, 1, NULL, &none) == -1 && errno != EINTR)
				die("ppoll");
			continue;
		}
		nout = 0;
		for (i = 0; i < n; i++) {
			if (in[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;
			len = answer(slot[i].buf, in[i].msg_len);
			if (len == 0)
				continue;
			slot[i].iov.iov_len = len;
			out[nout] = in[i];
			out[nout].msg_len = 0;
			nout++;
		}
		answered += (unsigned long long)nout;
		/* UDP: what the socket will not take now is dropped. */
		for (sent = 0; sent < nout; sent += r) {
			r = sendmmsg(fd, out + sent, (unsigned)(nout - sent),
			    0);
			if (r == -1) {
				if (errno == EINTR)
					r = 0;
				else
					r = 1;
			}
		}
	}
}

int
main(int argc, char *argv[])
{
	struct sockaddr_storage ss;
	struct sigaction sa;
	socklen_t sslen;
	sigset_t usr1;
	int ch, fd, size;
	const char *listen_on = "127.0.0.1:0";

	while ((ch = getopt(argc, argv, "l:")) != -1) {
		switch (ch) {
		case 'l':
			listen_on = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (parse_addr(listen_on, &ss, &sslen) == -1) {
		fprintf(stderr, "benchup: -l: \"%s\" is not ADDR:PORT\n",
		    listen_on);
		exit(1);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) == -1)
		die("sigaction");
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &usr1, NULL) == -1)
		die("sigprocmask");

	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket");
	size = SOCK_BUF;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1) {
		fprintf(stderr, "benchup: cannot listen on %s: %s\n",
		    listen_on, strerror(errno));
		exit(2);
	}
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
		die("getsockname");
	print_listening("benchup", &ss);
	serve(fd);
	return 0;
}
