/*
 * dnsq: a tiny raw DNS client for the dnsfwd tests that need to send what
 * dig will not: short packets, QR set, bad label lengths, compression
 * loops, several queries on one TCP connection.
 *
 *	cc -std=c11 -D_GNU_SOURCE -o test/dnsq test/dnsq.c
 *	test/dnsq [-t [-r]] [-w MS] [-n N] [-b ADDR] HOST PORT HEX [HEX...]
 *	test/dnsq -m ID NAME [TYPE [FLAGS]]
 *
 * Each HEX argument is one message (white space, ':' and '.' between the
 * digits are ignored; "" is an empty message).  Over UDP each is one
 * datagram from the same socket; with -t all are written on one TCP
 * connection, each behind its 2-byte length (-r: as given, no length).
 * Then dnsq waits until N replies (default: one per HEX argument that is not
 * empty) have arrived or -w MS (default 1000) have passed since the send,
 * and prints one line per reply, in the order they arrived:
 *
 *	rcode=NAME id=N flags=0xNNNN an=N len=N
 *
 * ("short len=N" for a reply of less than 12 bytes), then "timeout" if
 * fewer replies came, or "closed" if the server closed the TCP connection
 * first.  With nothing to wait for (-n 0; over TCP also a lone "", which
 * sends nothing) it prints what arrives during the whole -w and, over TCP,
 * "open" if the connection was still open at the end: that holds an idle
 * TCP connection.  A UDP "" is one empty datagram.
 *
 * -m prints the HEX of a query: ID (decimal or 0x), NAME ("." for the
 * root), TYPE (a number or A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, ANY;
 * default A), FLAGS (the 16-bit flags word; default 0x0100, RD).
 *
 * -b ADDR sends from ADDR (any port): a client of another source address,
 * 127.0.0.2 say, on loopback.
 *
 * Exit status: 0 when every awaited reply came, 1 on timeout, 2 when the
 * TCP connection was closed or refused first, 3 on a usage or system error.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define MAX_MSGS	64	/* messages on one command line */
#define MAX_MSG		65535	/* RFC 1035 4.2.2: the TCP length prefix */

struct msg {
	uint8_t	*buf;
	size_t	 len;
};

static uint64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static _Noreturn void
usage(void)
{
	fprintf(stderr,
	    "usage: dnsq [-t [-r]] [-w MS] [-n N] [-b ADDR] HOST PORT HEX [HEX...]\n"
	    "       dnsq -m ID NAME [TYPE [FLAGS]]\n");
	exit(3);
}

/* A whole-string number in [0, max]; -1 if it is not one. */
static long
parse_num(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		return -1;
	return v;
}


/* Decode s into m (allocated); 0, or -1 on a bad digit or odd count. */
static int
parse_hex(const char *s, struct msg *m)
{
	int hi = -1, v;

	m->buf = malloc(strlen(s) / 2 + 1);
	if (m->buf == NULL)
		return -1;
	m->len = 0;
	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == ':' ||
		    *s == '.')
			continue;
		if ((v = wire_hexval((unsigned char)*s)) < 0)
			return -1;
		if (hi < 0) {
			hi = v;
		} else {
			m->buf[m->len++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0 || m->len > MAX_MSG)
		return -1;
	return 0;
}

static int
type_of(const char *s)
{
	static const struct {
		const char	*name;
		int		 type;
	} types[] = {
		{ "A", 1 }, { "NS", 2 }, { "CNAME", 5 }, { "SOA", 6 },
		{ "PTR", 12 }, { "MX", 15 }, { "TXT", 16 }, { "AAAA", 28 },
		{ "ANY", 255 },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(s, types[i].name) == 0)
			return types[i].type;
	return (int)parse_num(s, 65535);
}

/* -m: print the HEX of a query with one question, class IN. */
static int
make_query(int argc, char **argv)
{
	uint8_t q[512];
	const char *name;
	size_t n;
	long id, flags = 0x0100;
	int type = 1, i;

	if (argc < 2 || argc > 4)
		usage();
	if ((id = parse_num(argv[0], 65535)) < 0)
		usage();
	name = argv[1];
	if (argc > 2 && (type = type_of(argv[2])) < 0)
		usage();
	if (argc > 3 && (flags = parse_num(argv[3], 65535)) < 0)
		usage();
	if ((n = wire_query(q, (unsigned)id, (unsigned)flags, name,
	    (unsigned)type)) == 0) {
		fprintf(stderr, "dnsq: bad name\n");
		return 3;
	}
	for (i = 0; i < (int)n; i++)
		printf("%02x", q[i]);
	printf("\n");
	return 0;
}

static const char *
rcode_name(int rcode, char *buf, size_t size)
{
	static const char *const names[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		"REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
		"NOTZONE",
	};

	if (rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])))
		return names[rcode];
	snprintf(buf, size, "RCODE%d", rcode);
	return buf;
}

static void
print_reply(const uint8_t *b, size_t len)
{
	char rb[16];

	if (len < 12) {
		printf("short len=%zu\n", len);
	} else {
		printf("rcode=%s id=%u flags=0x%04x an=%u len=%zu\n",
		    rcode_name(b[3] & 0x0f, rb, sizeof(rb)),
		    (unsigned)(b[0] << 8 | b[1]), (unsigned)(b[2] << 8 | b[3]),
		    (unsigned)(b[6] << 8 | b[7]), len);
	}
	fflush(stdout);
}

static int
resolve(const char *host, const char *port, int type,
    struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = type;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "dnsq: %s port %s: %s\n", host, port,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ms left until deadline, at least 0. */
static int
left_ms(uint64_t deadline)
{
	uint64_t now = clock_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Whether fd becomes readable before deadline. */
static bool
readable(int fd, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, left_ms(deadline)) > 0;
}

static int
run_udp(int fd, const struct msg *m, int nm, int want, uint64_t deadline)
{
	static uint8_t buf[MAX_MSG];
	ssize_t n;
	int i, got = 0;

	for (i = 0; i < nm; i++) {
		if (send(fd, m[i].buf, m[i].len, 0) == -1 &&
		    errno != ECONNREFUSED) {
			fprintf(stderr, "dnsq: send: %s\n", strerror(errno));
			return 3;
		}
	}
	while ((want == 0 || got < want) && readable(fd, deadline)) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == -1)
			continue;	/* ICMP unreachable: keep waiting */
		print_reply(buf, (size_t)n);
		got++;
	}
	if (want == 0 || got >= want)
		return 0;
	printf("timeout\n");
	return 1;
}

/* Write all of buf, waiting for room until deadline; 0 or -1. */
static int
write_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EAGAIN) {
			if (poll(&p, 1, left_ms(deadline)) <= 0)
				return -1;
			continue;
		}
		if (n == -1)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
run_tcp(int fd, const struct msg *m, int nm, bool raw, int want,
    uint64_t deadline)
{
	static uint8_t buf[2 + MAX_MSG];
	uint8_t pre[2];
	size_t have = 0, need;
	ssize_t n;
	int i, got = 0;

	for (i = 0; i < nm; i++) {
		wire_put16(pre, (unsigned)m[i].len);
		if ((!raw && write_all(fd, pre, 2, deadline) == -1) ||
		    write_all(fd, m[i].buf, m[i].len, deadline) == -1) {
			printf("closed\n");
			return 2;
		}
	}
	while ((want == 0 || got < want) && readable(fd, deadline)) {
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n == -1 && errno == EAGAIN)
			continue;
		if (n <= 0) {
			printf("closed\n");
			return 2;
		}
		have += (size_t)n;
		while (have >= 2 && have >= 2 + (need = (size_t)(buf[0] << 8 |
		    buf[1]))) {
			print_reply(buf + 2, need);
			got++;
			memmove(buf, buf + 2 + need, have - 2 - need);
			have -= 2 + need;
		}
	}
	if (want == 0) {
		printf("open\n");
		return 0;
	}
	if (got >= want)
		return 0;
	printf("timeout\n");
	return 1;
}

static int
tcp_connect(int fd, const struct sockaddr_storage *ss, socklen_t len,
    uint64_t deadline)
{
	struct pollfd p;
	socklen_t el = sizeof(int);
	int err = 0;

	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, left_ms(deadline)) <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static struct msg m[MAX_MSGS];
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint64_t deadline;
	struct sockaddr_storage bs;
	socklen_t bslen = 0;
	const char *bind_to = NULL;
	bool tcp = false, raw = false;
	long wait_ms = 1000, want = -1;
	int c, fd, i, nm;

	while ((c = getopt(argc, argv, "+mtrw:n:b:")) != -1) {
		switch (c) {
		case 'm':
			return make_query(argc - optind, argv + optind);
		case 't':
			tcp = true;
			break;
		case 'r':
			raw = true;
			break;
		case 'w':
			if ((wait_ms = parse_num(optarg, 600000)) < 0)
				usage();
			break;
		case 'b':
			bind_to = optarg;
			break;
		case 'n':
			if ((want = parse_num(optarg, MAX_MSGS * 16)) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 3 || argc - 2 > MAX_MSGS || (raw && !tcp))
		usage();
	nm = argc - 2;
	for (i = 0; i < nm; i++) {
		if (parse_hex(argv[2 + i], &m[i]) == -1) {
			fprintf(stderr, "dnsq: bad hex \"%s\"\n", argv[2 + i]);
			return 3;
		}
	}
	/* an empty message over TCP means "send nothing" */
	if (tcp && nm == 1 && m[0].len == 0)
		nm = 0;
	if (want < 0)
		want = nm;
	if (resolve(argv[0], argv[1], tcp ? SOCK_STREAM : SOCK_DGRAM, &ss,
	    &sslen) == -1)
		return 3;
	fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		fprintf(stderr, "dnsq: socket: %s\n", strerror(errno));
		return 3;
	}
	if (bind_to != NULL && (resolve(bind_to, "0", tcp ? SOCK_STREAM :
	    SOCK_DGRAM, &bs, &bslen) == -1 ||
	    bind(fd, (const struct sockaddr *)&bs, bslen) == -1)) {
		fprintf(stderr, "dnsq: -b %s: %s\n", bind_to, strerror(errno));
		return 3;
	}
	deadline = clock_ms() + (uint64_t)wait_ms;
	if (tcp) {
		if (tcp_connect(fd, &ss, sslen, deadline) == -1) {
			printf("closed\n");
			fprintf(stderr, "dnsq: connect: %s\n", strerror(errno));
			return 2;
		}
		c = run_tcp(fd, m, nm, raw, (int)want, deadline);
	} else {
		if (connect(fd, (const struct sockaddr *)&ss, sslen) == -1) {
			fprintf(stderr, "dnsq: connect: %s\n",
			    strerror(errno));
			return 3;
		}
		c = run_udp(fd, m, nm, (int)want, deadline);
	}
	close(fd);
	return c;
}
