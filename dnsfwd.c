/*
 * dnsfwd - a DNS forwarder that follows the host's resolv.conf live.
 *
 * One poll() loop, no library beyond libc.  It listens on UDP and TCP,
 * forwards every query to the upstreams of its list in order, returns the
 * first positive answer and falls back to the last negative one.  The list
 * comes from -s options and from a resolv.conf that is followed with
 * inotify, so a VPN coming up is seen within milliseconds.
 *
 * Build: `make` (static, musl-gcc when present; else the system cc) or
 * `make dynamic` (the system cc).  Tests compile this file with
 * -DDNSFWD_TEST, which removes parts 2-5, and call dnsfwd.h.  A longer
 * map of the parts, with what each owns: test/DESIGN.md, "Reading the
 * code".
 *
 * Five parts, each opened by a comment on what it owns, what it may call
 * and what it promises; calls go one way, to earlier parts; what goes back
 * goes through data (the done list, the deadline table).  Sections ([h]:
 * exported through dnsfwd.h, unit-tested without sockets):
 *  Part 1. Pure
 *    1. Includes
 *    2. Limits and tunables
 *    3. Logging
 *    4. Utilities
 *    5. Command-line values [h]
 *    6. DNS wire format: the cursor and names [h]
 *    7. DNS messages parsed [h]
 *    8. DNS messages built [h]
 *    9. resolv.conf, hosts, special-use names [h]
 *   10. Timing rules [h]
 *   11. Upstream policy [h]
 *   12. Who may ask: prefixes and netlink [h]
 *   13. Fair share and routing rules [h]
 *   14. Cache: the store [h]
 *   15. Cache: put and get [h]
 *  Part 2. Engine
 *   16. Runtime state: queries, clients, listeners
 *   17. Runtime state: upstream sockets, files, the state
 *   18. Sources and event tokens
 *   19. Query table: queues, stale list, health
 *   20. Query slots: allocation, in-flight, upstream sockets
 *   21. Upstream sockets, attempts and probes
 *   22. Answers and the course of a query
 *  Part 3. Clients
 *   23. Client output
 *   24. Intake: a client's query
 *   25. Intake: who may ask, UDP and TCP clients
 *  Part 4. Surroundings
 *   26. Namespaces and their addresses
 *   27. Listeners: capabilities and binding
 *   28. Views: listeners in namespaces
 *   29. File following
 *   30. Readiness and the files applied
 *  Part 5. Loop and start-up
 *   31. Signals and counters
 *   32. The event loop
 *   33. Options: their values and messages
 *   34. Start-up: privileges and memory
 *   35. Start-up: listeners, files, the order
 *   36. The option table and main()
 */

/*
 * ######## Part 1. Pure ###################################################
 * Owns: the wire format (a read cursor and a write cursor every byte goes
 * through), messages parsed and built, resolv.conf and hosts files, the
 * timing rules, the upstream policy, who may ask, the fair share, the
 * routing rules and the cache.  Calls: libc's string and memory functions
 * and nothing else; no system call (logging, section 3, is compiled out
 * of the test builds with the rest of the I/O).  Promises: every function
 * decides from its arguments alone, `now` included, so test/unit proves it
 * with a fake clock and the fuzz targets run it on any input.
 */

/* ==== 1. Includes ======================================================== */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "dnsfwd.h"

/* ==== 2. Limits and tunables ============================================= */

#define VERSION		"0.1.0"
#define TIMEOUT_MS	1500	/* -t: one upstream's wait */
#define STALE_S		86400	/* --stale: answers kept past expiry */
#define EDE_STALE	3	/* RFC 8914 4.4: Stale Answer */
#define EDE_NOT_READY	14	/* 4.15: no upstream known yet (held) */
#define EDE_PROHIBITED	18	/* 4.19: a stranger, refused */
#define EDE_NO_REACH	22	/* 4.23: every upstream failed */
#define EDE_NET_ERROR	23	/* 4.24: ... one with a network error */
#define QUERY_MAX	4096	/* queries in flight (--max-queries) */
#define TCP_MAX		64	/* TCP client connections (--max-tcp) */
#define TCP_PIPELINE	32	/* queries in flight per TCP client */
#define TCP_WBUF	(2 * (2 + DNS_MAX_TCP))	/* answers awaiting write */
#define BATCH		32	/* datagrams per recvmmsg/sendmmsg */
#define EPOLL_BATCH	64	/* events taken per loop pass */
#define NEG_MAX		4096	/* a kept negative answer; larger is cut */
#define STALE_BUF	(CACHE_DATA + DNS_EDE_MAX)	/* a stale answer */
#define RELOAD_MS	2	/* coalesce a burst of file events */
#define POLL_MS		2000	/* file polling when inotify is unavailable */
#define NS_RETRY_MS	10	/* a namespace file not mounted yet: again */
#define NS_TRIES	200	/* ... this many times (2 s) after a change */
#define NSFS_MAGIC	0x6e736673	/* statfs(2) of a namespace file */
#define MAX_SELF	128	/* listening address:port pairs, expanded */
#define ACCEPT_PAUSE_MS	100	/* out of fds: wait before accepting again */
#define FD_SLACK	8	/* descriptors kept free for reloads and logs */
#define RETRY_MS	1000	/* out of fds: read a followed file again */
#define MAX_WATCH	32	/* inotify watches: parents and link targets */
/*
 * Replies that fail the checks (a wrong ID or question at the port of an
 * attempt: only the kernel's check of the upstream's address and port was
 * passed) before the query is asked again over TCP, where an off-path
 * attacker cannot inject.  One is explained by a late reply to an earlier
 * attempt that had the same port; three to one query are a flood.  An
 * attacker who knows the port gets at most 3 of 65,536 IDs a try.
 */
#define SPOOF_REPLIES	3
#define SRC_KEY		17	/* a source: kind byte, address or /64 */
#define STRANGER_SLOTS	64	/* sources whose refusal was logged lately */
#define STRANGER_LINES	16	/* refusals said a minute, all sources */
#define NL_DUMP_TRIES	4	/* dumps redone while addresses change */
#define MAX_PROBES	32	/* probes of down upstreams at once */
#define MAX_TAGS	64	/* upstreams named in the cache (then flushed) */
#define MAX_HOSTS	4	/* -H files */
#define MAX_SERVERS_FILES 8	/* --servers-file files */
#define EDNS_SIZE	1232	/* advertised in our own answers (flag day) */
#define EDNS_ECS	8	/* RFC 7871 Client Subnet option code */
#define EDNS_EDE	15	/* RFC 8914 Extended DNS Error option code */
#define LOCAL_TTL	0	/* local answers, as dnsmasq's --local-ttl */
#define CACHE_SIZE	1000	/* -c: answers kept */
#define CACHE_BYTES_MAX	(1ull << 30)	/* --cache-bytes, at most */
#define LISTEN_RCVBUF	(1 << 20)	/* a UDP listener's receive queue:
					 * ~1,300 queries, 130 ms at 10,000
					 * qps of being descheduled (the
					 * kernel's default holds 1/4) */

#ifndef DNSFWD_TEST	/* the pure sections neither log nor read clocks */

/* ==== 3. Logging ========================================================= */
/*
 * Every message is one line: "dnsfwd: " + subject + ": " + reason.  Level
 * 0 is an error (always shown), 1 information (not with -q), 2 the
 * per-query log (-v).
 */

static int log_level = 1;
static bool log_time;	/* -v lines start with the time: see log_init() */

/*
 * --syslog: each line one datagram to the syslog socket, "<PRI>dnsfwd[PID]:
 * line" (RFC 3164 without a timestamp: the receiver stamps it, in its own
 * zone), facility daemon, severity by level.  A socket that is missing or
 * refuses (syslogd restarted) is said once on stderr, where the lines go
 * meanwhile, and connected again at most once a second; a send never
 * blocks (a full socket drops the line to stderr).
 */
#define LOG_STDERR	0x100	/* or'ed into a level: stderr as well */
#define LOG_NOTE	0x200	/* level 0 (shown with -q), not an error */
#define LOG_RETRY_MS	1000
static struct {
	const char	*path;		/* --syslog; NULL: stderr */
	int		 fd;		/* connected; -1 */
	bool		 down;		/* its failure said, not yet back */
	bool		 no_reconnect;	/* the namespace helper: stderr then */
	uint64_t	 retry;		/* ms: the next connect may be tried */
} sys_log = { NULL, -1, false, false, 0 };

static void vlogmsg(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void logmsg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static uint64_t
log_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The syslog socket failed (why): said on stderr, once until it is back. */
static void
syslog_down(const char *why)
{
	char msg[PATH_MAX + 128];
	int n;

	if (sys_log.down)
		return;
	n = snprintf(msg, sizeof(msg), "dnsfwd: --syslog %s: %s; logging to "
	    "stderr until it answers\n", sys_log.path, why);
	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n :
		    sizeof(msg) - 1);
	sys_log.down = true;
}

/* Connect to the syslog socket; said on stderr when it fails. */
static int
syslog_connect(void)
{
	struct sockaddr_un sun;
	uint64_t now = log_clock_ms();
	int fd;

	if (sys_log.no_reconnect || (sys_log.retry != 0 &&
	    (int64_t)(now - sys_log.retry) < 0))
		return -1;
	sys_log.retry = now + LOG_RETRY_MS;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sys_log.path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd != -1 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		sys_log.fd = fd;
		return 0;
	}
	syslog_down(strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* Send line (n bytes) at level to syslog: 0, or -1 (stderr then). */
static int
syslog_send(int level, const char *line, int n)
{
	char dg[1100];
	int k, sev = level == 0 ? 3 : level == 1 ? 5 : 6;  /* err notice info */

	if (sys_log.fd < 0 && syslog_connect() == -1)
		return -1;
	k = snprintf(dg, sizeof(dg), "<%d>dnsfwd[%ld]: %.*s", 3 * 8 + sev,
	    (long)getpid(), n, line);
	if (k > (int)sizeof(dg) - 1)
		k = (int)sizeof(dg) - 1;
	if (send(sys_log.fd, dg, (size_t)k, MSG_DONTWAIT | MSG_NOSIGNAL) == k) {
		if (sys_log.down) {
			sys_log.down = false;
			k = snprintf(dg, sizeof(dg), "<%d>dnsfwd[%ld]: --syslog "
			    "%s: answering again", 3 * 8 + 5, (long)getpid(),
			    sys_log.path);
			(void)send(sys_log.fd, dg, (size_t)k, MSG_DONTWAIT |
			    MSG_NOSIGNAL);
		}
		return 0;
	}
	if (errno != EAGAIN && errno != ENOBUFS) {	/* gone: connect again */
		syslog_down(strerror(errno));
		close(sys_log.fd);
		sys_log.fd = -1;
	}
	return -1;
}

static void
vlogmsg(int level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (sys_log.path != NULL && syslog_send(level & LOG_NOTE ? 1 :
	    level & 0xff, line, n) == 0 && !(level & LOG_STDERR))
		return;
	line[n++] = '\n';
	(void)!write(2, "dnsfwd: ", 8);
	(void)!write(2, line, (size_t)n);
}

static void
logmsg(int level, const char *fmt, ...)
{
	va_list ap;

	if ((level & 0xff) > log_level)
		return;
	va_start(ap, fmt);
	vlogmsg(level, fmt, ap);
	va_end(ap);
}

/*
 * The per-query lines (-v) carry the time of day when nothing else will:
 * when stderr is neither a terminal (someone is watching) nor the journal
 * (systemd's JOURNAL_STREAM names stderr's device and inode, and the
 * journal stamps every line), or always with --log-time.
 */
static void
log_init(bool force)
{
	const char *js = getenv("JOURNAL_STREAM");
	char want[48];
	struct stat sb;

	log_time = force;
	if (force || isatty(2) || fstat(2, &sb) == -1)
		return;
	snprintf(want, sizeof(want), "%llu:%llu", (unsigned long long)
	    sb.st_dev, (unsigned long long)sb.st_ino);
	log_time = js == NULL || strcmp(js, want) != 0;
}

static void
die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogmsg(0, fmt, ap);
	va_end(ap);
	exit(status);
}

/* ==== 4. Utilities ======================================================= */

static uint64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif /* !DNSFWD_TEST */

static void
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

const char *
addr_text(const struct addr *a, char sep, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
	size_t hl;

	if (a->ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s%c%u", host, sep, ntohs(sin->sin_port));
		return buf;
	}
	inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
	hl = strlen(host);
	if (a->ifname[0] != '\0')
		snprintf(host + hl, sizeof(host) - hl, "%%%s", a->ifname);
	else if (sin6->sin6_scope_id != 0)
		snprintf(host + hl, sizeof(host) - hl, "%%%u",
		    (unsigned)sin6->sin6_scope_id);
	if (sep == ':')
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	else
		snprintf(buf, len, "%s#%u", host, ntohs(sin6->sin6_port));
	return buf;
}

static bool
addr_equal(const struct addr *a, const struct sockaddr *sa)
{
	const struct sockaddr_in *x, *y;
	const struct sockaddr_in6 *x6, *y6;

	if (a->ss.ss_family != sa->sa_family)
		return false;
	if (sa->sa_family == AF_INET) {
		x = (const struct sockaddr_in *)&a->ss;
		y = (const struct sockaddr_in *)(const void *)sa;
		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	x6 = (const struct sockaddr_in6 *)&a->ss;
	y6 = (const struct sockaddr_in6 *)(const void *)sa;
	return x6->sin6_port == y6->sin6_port &&
	    memcmp(&x6->sin6_addr, &y6->sin6_addr, 16) == 0 &&
	    (x6->sin6_scope_id == y6->sin6_scope_id ||
	    y6->sin6_scope_id == 0 || x6->sin6_scope_id == 0);
}

static uint16_t
addr_port(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/*
 * FNV-1a over a wire name: the hosts and rule tables probe with it.  Their
 * names come from files and options, not from clients, so a client's name
 * can only probe a chain, never lengthen one.  Tables that clients fill
 * use dns_question_hash().
 */
uint32_t
name_hash(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n-- > 0)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static uint64_t
rotl64(uint64_t x, int b)
{
	return x << b | x >> (64 - b);
}

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13) ^ v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17) ^ v[2];
	v[2] = rotl64(v[2], 32);
}

/* SipHash-1-3 (Aumasson and Bernstein): one round per word, three final. */
static uint64_t
siphash13(const uint64_t key[2], const uint8_t *p, size_t n)
{
	uint64_t v[4], m, last = (uint64_t)n << 56;
	size_t i;

	v[0] = key[0] ^ 0x736f6d6570736575ull;
	v[1] = key[1] ^ 0x646f72616e646f6dull;
	v[2] = key[0] ^ 0x6c7967656e657261ull;
	v[3] = key[1] ^ 0x7465646279746573ull;
	for (; n >= 8; n -= 8, p += 8) {
		for (m = 0, i = 0; i < 8; i++)
			m |= (uint64_t)p[i] << (8 * i);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (i = 0; i < n; i++)
		last |= (uint64_t)p[i] << (8 * i);
	v[3] ^= last;
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

#ifndef DNSFWD_TEST

/*
 * Query IDs (RFC 5452 9.2): SipHash-1-3 of a counter, under a key read from
 * getrandom() once at start, 16 bits at a time.  Nothing here can fail
 * after start-up, and no system call is made per ID.
 */
struct rnd {
	uint64_t	 key[2];	/* secret, from getrandom() at start */
	uint64_t	 ctr, out;
	int		 left;		/* 16-bit draws left in out */
};

static uint16_t
rnd16(struct rnd *r)
{
	uint8_t c[8];
	int i;

	if (r->left == 0) {
		for (i = 0; i < 8; i++)
			c[i] = (uint8_t)(r->ctr >> (8 * i));
		r->ctr++;
		r->out = siphash13(r->key, c, sizeof(c));
		r->left = 4;
	}
	return (uint16_t)(r->out >> (16 * --r->left));
}

#endif /* !DNSFWD_TEST */

/*
 * The one list primitive (struct link and struct list, dnsfwd.h, say
 * what holds): every doubly linked list in the file goes through these.
 * struct links finds a slot's link: the table, its element size, and
 * where the link sits in an element (LINKS()).
 */
struct links {
	void		*base;
	size_t		 size, off;
};

#define LINKS(tab, type, member) \
	((struct links){ (tab), sizeof(type), offsetof(type, member) })
#define LIST_EMPTY	((struct list){ -1, -1 })
#define LINK_NONE	((struct link){ -1, -1 })

static struct link *
link_at(struct links t, int32_t i)
{
	return (struct link *)(void *)((char *)t.base + (size_t)i * t.size +
	    t.off);
}

/* Slot i, on no list, at the tail of l (front: at its head). */
static void
list_add(struct list *l, struct links t, int32_t i, bool front)
{
	struct link *k = link_at(t, i);
	int32_t *end = front ? &l->head : &l->tail;

	k->prev = front ? -1 : l->tail;
	k->next = front ? l->head : -1;
	if (*end < 0)
		l->head = l->tail = i;	/* empty: both ends */
	else if (front)
		link_at(t, *end)->prev = i;
	else
		link_at(t, *end)->next = i;
	*end = i;
}

/* Slot i, on l, off it. */
static void
list_unlink(struct list *l, struct links t, int32_t i)
{
	struct link *k = link_at(t, i);

	if (k->prev >= 0)
		link_at(t, k->prev)->next = k->next;
	else
		l->head = k->next;
	if (k->next >= 0)
		link_at(t, k->next)->prev = k->prev;
	else
		l->tail = k->prev;
	*k = LINK_NONE;
}


/* ==== 5. Command-line values ============================================= */
/*
 * Pure parsers for option values.  They fill err with the reason and leave
 * the option's name to the caller.
 */

int
cfg_parse_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	unsigned long v = 0, d;
	const char *p;

	if (s == NULL || *s == '\0')
		return -1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		d = (unsigned long)(*p - '0');
		if (v > (ULONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
cfg_parse_size(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v = 0, d;
	const char *p;
	int shift = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		d = (unsigned long long)(*p - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	switch (*p) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	}
	if (shift != 0)
		p++;
	if (*p != '\0' || v > ULLONG_MAX >> shift)
		return -1;
	v <<= shift;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parse a bare IPv4 or IPv6 (with optional %scope) host into out. */
static int
cfg_parse_host(const char *h, uint16_t port, struct addr *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	char *pct;
	unsigned long scope;

	memset(out, 0, sizeof(*out));
	if (strlen(h) >= sizeof(buf))
		return -1;
	if (inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		out->len = sizeof(*sin);
		return 0;
	}
	strcpy(buf, h);
	if ((pct = strchr(buf, '%')) != NULL)
		*pct++ = '\0';
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
		return -1;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	out->len = sizeof(*sin6);
	if (pct == NULL)
		return 0;
	if (*pct >= '0' && *pct <= '9') {	/* "%2": an index */
		if (cfg_parse_uint(pct, 1, UINT32_MAX, &scope) == -1)
			return -1;
		sin6->sin6_scope_id = (uint32_t)scope;
	} else if (*pct != '\0' && strlen(pct) < sizeof(out->ifname) &&
	    strpbrk(pct, " \t/:#%[],") == NULL) {
		/* a name as Linux allows one, that our text form round-trips */
		strcpy(out->ifname, pct);	/* addr_scope() resolves it */
	} else {
		return -1;
	}
	return 0;
}

/* Whether the n bytes at s are an address of family, in text. */
static bool
text_is_addr(const char *s, size_t n, int family)
{
	char t[INET6_ADDRSTRLEN + 1];
	uint8_t a[16];

	if (n >= sizeof(t))
		return false;
	memcpy(t, s, n);
	t[n] = '\0';
	return inet_pton(family, t, a) == 1;
}

int
cfg_parse_addr(const char *s, char sep, uint16_t defport, struct addr *out,
    char *err, size_t errlen)
{
	char host[128];
	const char *p, *port = NULL;
	size_t hl;
	unsigned long pv;

	if (s[0] == '[') {
		if ((p = strchr(s, ']')) == NULL)
			goto bad;
		hl = (size_t)(p - s - 1);
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (p[1] == sep)
			port = p + 2;
		else if (p[1] != '\0')
			goto bad;
	} else {
		p = strrchr(s, sep);
		/* "::1" has colons but no port when sep is ':' */
		if (p != NULL && sep == ':' && strchr(s, ':') != p)
			p = NULL;
		hl = p != NULL ? (size_t)(p - s) : strlen(s);
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (p != NULL)
			port = p + 1;
	}
	if (port != NULL) {
		if (cfg_parse_uint(port, 0, 65535, &pv) == -1) {
			snprintf(err, errlen, "\"%s\" is not a port", port);
			return -1;
		}
		defport = (uint16_t)pv;
	}
	if (cfg_parse_host(host, defport, out) == -1)
		goto bad;
	/* "::1:5353" is an address, but more likely a slip for [::1]:5353 */
	if (sep == ':' && s[0] != '[' && (p = strrchr(s, ':')) != NULL &&
	    p[1] != '\0' && strspn(p + 1, "0123456789") == strlen(p + 1) &&
	    text_is_addr(s, (size_t)(p - s), AF_INET6)) {
		snprintf(err, errlen, "\"%s\" is ambiguous: write [%.*s]:%s "
		    "for port %s, or [%s] for that address", s, (int)(p - s), s,
		    p + 1, p + 1, s);
		return -1;
	}
	return 0;
bad:
	/* "127.0.0.1:5353" given to -s: servers take ADDR#PORT */
	if (sep == '#' && (p = strrchr(s, ':')) != NULL && strchr(s, ':') == p &&
	    text_is_addr(s, (size_t)(p - s), AF_INET)) {
		snprintf(err, errlen, "\"%s\" is not an address; a server's "
		    "port follows a '#': %.*s#%s", s, (int)(p - s), s, p + 1);
		return -1;
	}
	snprintf(err, errlen, "\"%s\" is not an address", s);
	return -1;
}

/*
 * Whether name matches the glob(7) pattern p: '*', '?', "[a-z]" and
 * "[!...]" sets, '\\' quoting; a leading '.' only by a '.' (FNM_PERIOD).
 * Small and without libc's fnmatch(), which brings wide-character tables
 * into the static binary for classes no namespace name needs.
 */
static bool
glob_match(const char *p, const char *name, bool first)
{
	const char *q;
	bool in, neg;

	if (first && *name == '.' && *p != '.')
		return false;
	for (; *p != '\0'; p++, name++) {
		switch (*p) {
		case '*':
			while (p[1] == '*')
				p++;
			for (q = name; ; q++) {
				if (glob_match(p + 1, q, false))
					return true;
				if (*q == '\0')
					return false;
			}
		case '?':
			if (*name == '\0')
				return false;
			break;
		case '[':
			if (*name == '\0' || (q = strchr(p + 2, ']')) == NULL)
				goto literal;
			neg = p[1] == '!';
			for (in = false, p += 1 + neg; p < q; p++)
				if (p + 2 < q && p[1] == '-') {
					in |= *name >= p[0] && *name <= p[2];
					p += 2;
				} else {
					in |= *name == *p;
				}
			if (in == neg)
				return false;
			break;
		case '\\':
			if (p[1] != '\0')
				p++;
			goto literal;
		default:
		literal:
			if (*name != *p)
				return false;
		}
	}
	return *name == '\0';
}

bool
cfg_glob_match(const char *pattern, const char *name)
{
	return glob_match(pattern, name, true);
}

bool
cfg_netns_path_ok(const char *path, const char *dir, const char *glob,
    const char *want)
{
	size_t dl;
	const char *name;

	if (glob == NULL)
		return strcmp(want, path) == 0;
	dl = strlen(dir);
	if (strncmp(want, dir, dl) != 0 || want[dl] != '/')
		return false;
	name = want + dl + 1;
	return *name != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, ".") != 0 &&
	    strcmp(name, "..") != 0 && cfg_glob_match(glob, name);
}

int
cfg_parse_listen(const char *s, struct listen_chain *out, char *err,
    size_t errlen)
{
	char item[160];
	const char *p, *comma;
	size_t n;

	out->n = 0;
	for (p = s;; p = comma + 1) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n >= sizeof(item)) {
			snprintf(err, errlen, "\"%s\" is not an address list", s);
			return -1;
		}
		if (out->n == LISTEN_MAX_CHAIN) {
			snprintf(err, errlen, "more than %d addresses",
			    LISTEN_MAX_CHAIN);
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (cfg_parse_addr(item, ':', 53, &out->a[out->n], err,
		    errlen) == -1)
			return -1;
		out->n++;
		if (comma == NULL)
			return 0;
	}
}

int
cfg_parse_domain(const char *s, size_t len, uint8_t *out)
{
	size_t i, n = 0, l;
	const char *dot;

	if (len == 1 && (s[0] == '#' || s[0] == '.')) {
		out[0] = 0;
		return 1;
	}
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || s[len - 1] == '.')
		return -1;	/* "", "a.." */
	for (i = 0; i < len; i += l + 1) {
		dot = memchr(s + i, '.', len - i);
		l = dot != NULL ? (size_t)(dot - (s + i)) : len - i;
		if (l == 0 || l > 63 || n + l + 2 > DNS_MAX_NAME)
			return -1;
		out[n++] = (uint8_t)l;
		memcpy(out + n, s + i, l);
		n += l;
	}
	out[n++] = 0;
	dns_name_lower(out, n);
	return (int)n;
}

/* ==== 6. DNS wire format: the cursor and names =========================== */
/*
 * Readers take a struct dns_cursor and never look past c->len; the first
 * error sticks, so a run of reads is checked once.  Writers (section 8)
 * have the mirror cursor, struct dns_writer.
 */

static void
dns_fail(struct dns_cursor *c, const char *why)
{
	if (c->err == NULL)
		c->err = why;
}

void
dns_cursor_init(struct dns_cursor *c, const uint8_t *buf, size_t len)
{
	c->buf = buf;
	c->len = len;
	c->pos = 0;
	c->err = NULL;
}

static uint8_t
dns_get_u8(struct dns_cursor *c)
{
	if (c->err != NULL)
		return 0;
	if (c->len - c->pos < 1) {
		dns_fail(c, "truncated");
		return 0;
	}
	return c->buf[c->pos++];
}

uint16_t
dns_get_u16(struct dns_cursor *c)
{
	uint16_t v;

	if (c->err != NULL)
		return 0;
	if (c->len - c->pos < 2) {
		dns_fail(c, "truncated");
		return 0;
	}
	v = get_u16(c->buf + c->pos);
	c->pos += 2;
	return v;
}

uint32_t
dns_get_u32(struct dns_cursor *c)
{
	uint32_t v;

	if (c->err != NULL)
		return 0;
	if (c->len - c->pos < 4) {
		dns_fail(c, "truncated");
		return 0;
	}
	v = (uint32_t)c->buf[c->pos] << 24 | (uint32_t)c->buf[c->pos + 1] << 16 |
	    (uint32_t)c->buf[c->pos + 2] << 8 | c->buf[c->pos + 3];
	c->pos += 4;
	return v;
}

static void
dns_skip(struct dns_cursor *c, size_t n)
{
	if (c->err != NULL)
		return;
	if (c->len - c->pos < n) {
		dns_fail(c, "truncated");
		return;
	}
	c->pos += n;
}

/* The 16-bit field at pos of a message already parsed (0 past its end). */
static uint16_t
dns_u16_at(const uint8_t *buf, size_t len, size_t pos)
{
	struct dns_cursor c;

	dns_cursor_init(&c, buf, len);
	dns_skip(&c, pos);
	return dns_get_u16(&c);
}

int
dns_get_name(struct dns_cursor *c, uint8_t *out)
{
	size_t pos, run, end = 0, n = 0, to;
	uint8_t l;

	if (c->err != NULL)
		return -1;
	pos = run = c->pos;
	for (;;) {
		/* after a pointer, the rest lies wholly before it (RFC 1035
		 * 4.1.4: a prior occurrence), never in what follows, so a name
		 * reads the same whatever comes after it (an OPT replaced) */
		if (end != 0 && pos >= end - 2) {
			dns_fail(c, "compression runs past its pointer");
			return -1;
		}
		if (pos >= c->len)
			goto truncated;
		l = c->buf[pos];
		if ((l & 0xc0) == 0xc0) {
			if (c->len - pos < 2)
				goto truncated;
			to = (size_t)(l & 0x3f) << 8 | c->buf[pos + 1];
			/* asr: only strictly backwards, so no loops */
			if (to >= run || to < DNS_HDR) {
				dns_fail(c, "bad compression pointer");
				return -1;
			}
			if (end == 0)
				end = pos + 2;
			pos = run = to;
			continue;
		}
		if (l & 0xc0) {
			dns_fail(c, "bad label type");
			return -1;
		}
		if (l == 0)
			break;
		if (n + l + 2 > DNS_MAX_NAME) {
			dns_fail(c, "name too long");
			return -1;
		}
		if (c->len - pos - 1 < l)
			goto truncated;
		if (end != 0 && pos + 1 + l > end - 2) {
			dns_fail(c, "compression runs past its pointer");
			return -1;
		}
		if (out != NULL) {
			out[n] = l;
			memcpy(out + n + 1, c->buf + pos + 1, l);
		}
		n += 1 + (size_t)l;
		pos += 1 + (size_t)l;
	}
	if (out != NULL)
		out[n] = 0;
	n++;
	c->pos = end != 0 ? end : pos + 1;
	return (int)n;
truncated:
	dns_fail(c, "truncated name");
	return -1;
}

void
dns_name_lower(uint8_t *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			name[i] = (uint8_t)(name[i] + 32);
}

void
dns_name_text(const uint8_t *name, char *out, size_t outlen)
{
	size_t o = 0, i;
	uint8_t l;

	if (outlen == 0)
		return;
	if (name[0] == 0) {
		snprintf(out, outlen, ".");
		return;
	}
	while ((l = *name++) != 0) {
		if (o != 0 && o + 1 < outlen)
			out[o++] = '.';
		for (i = 0; i < l; i++, name++) {
			if (o + 5 >= outlen) {
				out[o] = '\0';
				return;
			}
			if (*name > 32 && *name < 127 && *name != '.' &&
			    *name != '\\')
				out[o++] = (char)*name;
			else
				o += (size_t)snprintf(out + o, outlen - o,
				    "\\%03u", *name);
		}
	}
	out[o] = '\0';
}

const char *
dns_type_name(uint16_t type, char *buf, size_t buflen)
{
	static const struct {
		uint16_t	 type;
		const char	*name;
	} t[] = {
		{ 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" },
		{ 12, "PTR" }, { 15, "MX" }, { 16, "TXT" }, { 28, "AAAA" },
		{ 33, "SRV" }, { 41, "OPT" }, { 43, "DS" }, { 46, "RRSIG" },
		{ 48, "DNSKEY" }, { 64, "SVCB" }, { 65, "HTTPS" },
		{ 255, "ANY" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].type == type)
			return t[i].name;
	snprintf(buf, buflen, "TYPE%u", type);
	return buf;
}

const char *
dns_rcode_name(int rcode)
{
	static const char *const n[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		"REFUSED",
	};

	if (rcode >= 0 && rcode < 6)
		return n[rcode];
	return "RCODE?";
}

/* ==== 7. DNS messages parsed ============================================= */

/* Skip one resource record; returns its TYPE (0 on error). */
static uint16_t
dns_skip_rr(struct dns_cursor *c, uint32_t *ttl, uint16_t *rdlen)
{
	uint16_t type;

	dns_get_name(c, NULL);
	type = dns_get_u16(c);
	dns_get_u16(c);
	*ttl = dns_get_u32(c);
	*rdlen = dns_get_u16(c);
	dns_skip(c, *rdlen);
	return c->err != NULL ? 0 : type;
}

int
dns_parse_query(const uint8_t *buf, size_t len, struct dns_query *q)
{
	struct dns_cursor c;
	uint16_t qd, i, type, rdlen;
	uint8_t version = 0;
	unsigned rest;
	uint32_t ttl;
	size_t at;
	int n, bad;

	memset(q, 0, offsetof(struct dns_query, qname));
	q->qname[0] = 0;	/* the root until a name is read whole */
	q->udp_size = 512;
	if (len < DNS_HDR)
		return -1;
	dns_cursor_init(&c, buf, len);
	q->id = dns_get_u16(&c);
	q->flags = dns_get_u16(&c);
	if (q->flags & DNS_QR)
		return -1;	/* never answer an answer: no reflection */
	qd = dns_get_u16(&c);
	rest = dns_get_u16(&c);
	rest += dns_get_u16(&c);
	i = dns_get_u16(&c);
	/*
	 * An opcode other than QUERY (NOTIFY, UPDATE, IQUERY, unassigned) is
	 * NOTIMP, with or without a question, with an OPT for an EDNS query:
	 * as much of it is read as reads well, for the answer to echo.
	 */
	bad = ((q->flags >> 11) & 0xf) != 0 ? RCODE_NOTIMP : RCODE_FORMERR;
	if (qd > 1 || (qd == 0 && bad == RCODE_FORMERR))
		return bad;
	if (qd == 1) {
		n = dns_get_name(&c, q->qname);
		q->qtype = dns_get_u16(&c);
		q->qclass = dns_get_u16(&c);
		if (c.err != NULL) {
			q->qname[0] = 0;
			q->qtype = q->qclass = 0;
			return bad;
		}
		q->qname_len = (uint8_t)n;
		dns_name_lower(q->qname, (size_t)n);
		q->qend = (uint16_t)c.pos;
	}
	/* answer and authority are not expected, but must be well formed */
	while (rest-- > 0)
		if (dns_skip_rr(&c, &ttl, &rdlen) == 0)
			return bad;
	for (; i > 0; i--) {
		at = c.pos;
		type = dns_skip_rr(&c, &ttl, &rdlen);
		if (type == 0)
			return bad;
		if (type != TYPE_OPT)
			continue;
		/* RFC 6891 6.1.1: one OPT, owned by the root */
		if (q->opt != 0 || buf[at] != 0)
			return bad;
		q->opt = (uint16_t)at;
		q->udp_size = dns_u16_at(buf, len, at + 3);	/* CLASS */
		if (q->udp_size < 512)
			q->udp_size = 512;
		q->do_bit = (ttl & 0x8000) != 0;
		version = (uint8_t)(ttl >> 16);
	}
	if (bad == RCODE_NOTIMP)
		return bad;
	/* RFC 6891 6.1.3: we speak version 0 only */
	return version != 0 ? RCODE_BADVERS : 0;
}

uint32_t
dns_question_hash(const uint64_t key[2], const struct dns_query *q)
{
	uint8_t b[DNS_MAX_NAME + 5];

	memcpy(b, q->qname, q->qname_len);
	put_u16(b + q->qname_len, q->qtype);
	put_u16(b + q->qname_len + 2, q->qclass);
	b[q->qname_len + 4] = (uint8_t)((q->opt != 0 ? 1 : 0) |
	    (q->do_bit ? 2 : 0) | ((q->flags & DNS_CD) ? 4 : 0));
	return (uint32_t)siphash13(key, b, q->qname_len + 5u);
}

/* RFC 2308 5: a negative answer lives min(SOA TTL, SOA MINIMUM). */
static int64_t
dns_soa_ttl(struct dns_cursor *c, uint32_t ttl, uint16_t rdlen)
{
	size_t end = c->pos + rdlen;
	uint32_t min;

	dns_get_name(c, NULL);
	dns_get_name(c, NULL);
	dns_skip(c, 16);
	min = dns_get_u32(c);
	if (c->err == NULL && c->pos != end)
		dns_fail(c, "bad SOA length");
	if (c->err != NULL)
		return -1;
	return min < ttl ? min : ttl;
}

bool
ede_verdict(int code)
{
	return code == 1 || code == 2 || (code >= 5 && code <= 12) ||
	    (code >= 15 && code <= 17);
}

/*
 * Walk the options of an OPT's rdata (rdlen bytes at the cursor): a Client
 * Subnet (RFC 7871 7.2.2) with a non-zero scope makes the answer one
 * network's only (r->scoped); Extended DNS Errors (RFC 8914) set r->ede
 * (the first INFO-CODE) and r->verdict.
 */
static void
dns_opt_scan(struct dns_cursor *c, uint16_t rdlen, struct dns_reply *r)
{
	size_t end = c->pos + rdlen;
	uint16_t code, olen, info;

	while (c->err == NULL && c->pos < end) {
		if (end - c->pos < 4) {		/* not into what follows */
			dns_fail(c, "option header past its OPT");
			break;
		}
		code = dns_get_u16(c);
		olen = dns_get_u16(c);
		if (c->err == NULL && end - c->pos < olen)
			dns_fail(c, "option past its OPT");
		if (code == EDNS_ECS && olen >= 4) {
			dns_skip(c, 3);
			r->scoped |= dns_get_u8(c) != 0;
			olen -= 4;
		} else if (code == EDNS_EDE && olen >= 2) {
			info = dns_get_u16(c);
			if (r->ede < 0)
				r->ede = info;
			r->verdict |= ede_verdict(info);
			olen -= 2;
		}
		dns_skip(c, olen);
	}
}

/*
 * The records of a reply, cnt[] of each section, from c (after the
 * question): the smallest TTL, the negative TTL of an authority SOA, the
 * OPT record (root owner, in the additional section, one) and its options.
 * False when a record cannot be read: the reply is malformed.
 */
static bool
dns_reply_records(struct dns_cursor *c, uint16_t cnt[3], struct dns_reply *r)
{
	uint16_t type, rdlen;
	uint32_t ttl;
	size_t at;
	int s;

	for (s = 0; s < 3; s++) {
		while (cnt[s]-- > 0) {
			at = c->pos;
			dns_get_name(c, NULL);
			type = dns_get_u16(c);
			dns_get_u16(c);
			ttl = dns_get_u32(c);
			rdlen = dns_get_u16(c);
			if (c->err != NULL || c->len - c->pos < rdlen)
				return false;
			if (ttl > INT32_MAX)
				ttl = 0;	/* RFC 2181 8 */
			if (type == TYPE_OPT) {
				/* owned by the root: one byte, no pointer */
				if (s != 2 || r->opt != 0 ||
				    c->pos - at != 1 + 10)
					return false;
				r->opt = (uint16_t)at;
				dns_opt_scan(c, rdlen, r);
				continue;
			}
			if (s == 2 && r->opt == 0)
				r->ar_opt++;
			if (ttl < r->min_ttl)
				r->min_ttl = ttl;
			if (s == 1 && type == TYPE_SOA)
				r->neg_ttl = dns_soa_ttl(c, ttl, rdlen);
			else
				dns_skip(c, rdlen);
		}
	}
	return c->err == NULL;
}

/* The class of a reply whose records all read, by its RCODE and TC. */
static enum reply_class
dns_reply_class(const struct dns_reply *r)
{
	if (r->rcode == RCODE_NOERROR)
		return r->ancount > 0 || (r->flags & DNS_TC) ?
		    REPLY_POSITIVE : REPLY_NEGATIVE;
	if (r->rcode == RCODE_NXDOMAIN)
		return (r->flags & DNS_TC) ? REPLY_POSITIVE : REPLY_NEGATIVE;
	return REPLY_FAILURE;
}

bool
dns_peek_header(const uint8_t *buf, size_t len, uint16_t *id,
    uint16_t *flags)
{
	struct dns_cursor c;

	dns_cursor_init(&c, buf, len);
	*id = dns_get_u16(&c);
	*flags = dns_get_u16(&c);
	dns_skip(&c, DNS_HDR - 4);
	return c.err == NULL;
}

enum reply_class
dns_parse_reply(const uint8_t *buf, size_t len, const struct dns_query *q,
    struct dns_reply *r)
{
	uint8_t name[DNS_MAX_NAME];
	struct dns_cursor c;
	uint16_t qd, cnt[3], type;
	int n;

	memset(r, 0, sizeof(*r));
	r->neg_ttl = -1;
	r->ede = -1;
	r->min_ttl = UINT32_MAX;
	r->class = REPLY_FOREIGN;
	if (len < DNS_HDR)
		return r->class;
	dns_cursor_init(&c, buf, len);
	r->id = dns_get_u16(&c);
	r->flags = dns_get_u16(&c);
	r->rcode = r->flags & 0xf;
	qd = dns_get_u16(&c);
	cnt[0] = r->ancount = dns_get_u16(&c);
	cnt[1] = dns_get_u16(&c);
	cnt[2] = dns_get_u16(&c);
	if (!(r->flags & DNS_QR))
		return r->class;
	if (qd == 0) {
		/* some servers drop the question from an error */
		if (r->rcode == RCODE_NOERROR || r->rcode == RCODE_NXDOMAIN)
			return r->class;
		return r->class = REPLY_FAILURE;
	}
	/*
	 * RFC 5452 9.1: the question must be ours, name in any case.  A
	 * question that cannot be read (from the address, port and ID we
	 * used) is a malformed reply: a failure, not a stranger's answer.
	 */
	n = dns_get_name(&c, name);
	type = dns_get_u16(&c);
	if (qd != 1 || c.err != NULL || dns_get_u16(&c) != q->qclass ||
	    c.err != NULL)
		return r->class = qd != 1 || c.err != NULL ? REPLY_FAILURE :
		    REPLY_FOREIGN;
	dns_name_lower(name, (size_t)n);
	if (n != q->qname_len || memcmp(name, q->qname, (size_t)n) != 0 ||
	    type != q->qtype)
		return r->class;
	r->qend = (uint16_t)c.pos;
	if (!dns_reply_records(&c, cnt, r)) {
		/* a server that cut its own answer mid-record still said TC */
		r->opt = 0;
		r->ede = -1;		/* an OPT read in part says nothing */
		r->verdict = false;
		if ((r->flags & DNS_TC) && (r->rcode == RCODE_NOERROR ||
		    r->rcode == RCODE_NXDOMAIN))
			return r->class = REPLY_POSITIVE;
		return r->class = REPLY_FAILURE;
	}
	r->end = (uint16_t)c.pos;	/* what follows is junk: never passed on */
	if (r->min_ttl == UINT32_MAX)
		r->min_ttl = 0;
	return r->class = dns_reply_class(r);
}

/* ==== 8. DNS messages built ============================================== */
/*
 * Builders append through a write cursor, the mirror of the reader in
 * section 6: nothing is written at or past w->size, and once a write does
 * not fit w->full sticks and later writes are dropped, so a builder checks
 * once, at the end.  The header's fixed fields are set in place by name.
 */

#define HDR_ID		0	/* offsets of the header's 16-bit fields */
#define HDR_FLAGS	2
#define HDR_QDCOUNT	4
#define HDR_ANCOUNT	6
#define HDR_ARCOUNT	10

struct dns_writer {
	uint8_t	*buf;
	size_t	 size;		/* bytes buf holds */
	size_t	 len;		/* bytes written; len <= size always */
	bool	 full;		/* a write did not fit; sticky */
};

static void
dns_writer_init(struct dns_writer *w, uint8_t *buf, size_t size, size_t len)
{
	w->buf = buf;
	w->size = size;
	w->len = len <= size ? len : size;
	w->full = len > size;
}

/* Is there room for n more bytes?  If not, the writer is full. */
static bool
dns_room(struct dns_writer *w, size_t n)
{
	if (!w->full && w->size - w->len >= n)
		return true;
	w->full = true;
	return false;
}

static void
dns_put_u16(struct dns_writer *w, uint16_t v)
{
	if (dns_room(w, 2)) {
		put_u16(w->buf + w->len, v);
		w->len += 2;
	}
}

static void
dns_put_u32(struct dns_writer *w, uint32_t v)
{
	dns_put_u16(w, (uint16_t)(v >> 16));
	dns_put_u16(w, (uint16_t)v);
}

static void
dns_put_bytes(struct dns_writer *w, const void *p, size_t n)
{
	if (dns_room(w, n)) {
		if (n != 0)
			memcpy(w->buf + w->len, p, n);
		w->len += n;
	}
}

/* Header fields of a message of at least DNS_HDR bytes. */
static void
dns_hdr_set(uint8_t *buf, size_t field, uint16_t v)
{
	put_u16(buf + field, v);
}

static uint16_t
dns_hdr_get(const uint8_t *buf, size_t field)
{
	return get_u16(buf + field);
}

size_t
dns_truncate(uint8_t *buf, size_t len, size_t limit,
    const struct dns_reply *r)
{
	size_t end, optlen;

	if (len <= limit)
		return len;
	end = r->qend != 0 ? r->qend : DNS_HDR;
	buf[HDR_FLAGS] |= DNS_TC >> 8;
	memset(buf + HDR_ANCOUNT, 0, DNS_HDR - HDR_ANCOUNT);
	if (r->opt != 0) {	/* the OPT moves down to follow the question */
		optlen = 11 + (size_t)dns_u16_at(buf, len, r->opt + 9);
		if (end + optlen <= limit) {
			memmove(buf + end, buf + r->opt, optlen);
			end += optlen;
			dns_hdr_set(buf, HDR_ARCOUNT, 1);
		}
	}
	return end;
}

size_t
dns_keep_ede(uint8_t *buf, size_t len, struct dns_reply *r)
{
	uint8_t ede[DNS_EDE_MAX];
	struct dns_cursor c;
	uint16_t code, olen, keep;
	size_t end, room, n = 0;

	if (r->opt == 0)	/* none, or already past the answer */
		return len;
	r->ede_len = 0;
	dns_cursor_init(&c, buf, len);
	dns_skip(&c, (size_t)r->opt + 9);	/* name, type, class, ttl */
	end = dns_get_u16(&c);
	end += c.pos;
	/* dns_parse_reply() saw no EDE (r->ede): no walk, the OPT goes */
	while (r->ede >= 0 && c.err == NULL && c.pos + 4 <= end) {
		code = dns_get_u16(&c);
		olen = dns_get_u16(&c);
		if (c.err != NULL || olen > end - c.pos)
			break;
		/* what room is left, for a header and at least the code */
		room = n + 4 + 2 <= sizeof(ede) ? sizeof(ede) - n - 4 : 0;
		keep = olen <= room ? olen : (uint16_t)room;	/* text cut */
		if (code == EDNS_EDE && olen >= 2 && keep >= 2) {
			put_u16(ede + n, EDNS_EDE);
			put_u16(ede + n + 2, keep);
			memcpy(ede + n + 4, c.buf + c.pos, keep);
			n += 4 + (size_t)keep;
		}
		dns_skip(&c, olen);
	}
	dns_hdr_set(buf, HDR_ARCOUNT, r->ar_opt);
	len = r->opt;
	r->opt = 0;
	memcpy(buf + len, ede, n);	/* where the OPT was: it is longer */
	r->ede_len = (uint8_t)n;
	return len;
}

uint16_t
dns_answer_flags(uint16_t flags, const struct dns_query *q)
{
	uint16_t ad = (q->flags & DNS_AD) || q->do_bit ? flags & DNS_AD : 0;

	return (uint16_t)((flags & ~(DNS_RD | DNS_CD | DNS_AD)) |
	    (q->flags & (DNS_RD | DNS_CD)) | ad);
}

/* The bytes of an OPT RR with olen bytes of options and EDE ede (or -1). */
static size_t
dns_opt_len(size_t olen, int ede)
{
	return 11 + olen + (ede >= 0 ? 6 : 0);
}

/*
 * Append an OPT RR (RFC 6891 6.1.2) advertising udp_size, with the
 * extended RCODE bits of rcode, the DO bit, the options opts (olen bytes,
 * an answer's EDEs) and Extended DNS Error ede (RFC 8914) unless it is -1.
 * All of it or, when it does not fit, none of it (and the writer is full).
 */
static void
dns_put_opt(struct dns_writer *w, uint16_t udp_size, int rcode, bool do_bit,
    const uint8_t *opts, size_t olen, int ede)
{
	if (!dns_room(w, dns_opt_len(olen, ede)))
		return;
	dns_put_bytes(w, "", 1);			/* the root name */
	dns_put_u16(w, TYPE_OPT);
	dns_put_u16(w, udp_size);			/* CLASS: UDP size */
	dns_put_u16(w, (uint16_t)((rcode >> 4) << 8));	/* ext. RCODE, version */
	dns_put_u16(w, do_bit ? 0x8000 : 0);		/* DO, Z */
	dns_put_u16(w, (uint16_t)(dns_opt_len(olen, ede) - 11));	/* RDLEN */
	dns_put_bytes(w, opts, olen);
	if (ede < 0)
		return;
	dns_put_u16(w, EDNS_EDE);
	dns_put_u16(w, 2);
	dns_put_u16(w, (uint16_t)ede);
}

size_t
dns_finish(uint8_t *buf, size_t len, size_t size, const struct dns_reply *r,
    const struct dns_query *q, size_t limit, int ede)
{
	uint8_t opts[DNS_EDE_MAX];
	size_t olen = len + r->ede_len <= size ? r->ede_len : 0;
	size_t optlen = q->opt == 0 ? 0 : dns_opt_len(olen, ede);
	struct dns_reply cut = *r;
	struct dns_writer w;

	memcpy(opts, buf + len, olen);	/* before the answer is cut or grows */
	if (len >= DNS_HDR)
		dns_hdr_set(buf, HDR_FLAGS,
		    dns_answer_flags(dns_hdr_get(buf, HDR_FLAGS), q));
	cut.opt = 0;
	if (limit > size)
		limit = size;
	if (optlen != 0 && limit < optlen + (r->qend != 0 ? r->qend :
	    DNS_HDR)) {		/* no room for the answer's EDEs: ours alone */
		olen = 0;
		optlen = dns_opt_len(0, ede);
	}
	if (limit < optlen + DNS_HDR)
		optlen = 0;
	len = dns_truncate(buf, len, limit - optlen, &cut);
	if (optlen == 0)
		return len;
	dns_writer_init(&w, buf, size, len);
	dns_put_opt(&w, EDNS_SIZE, 0, q->do_bit, opts, olen, ede);
	if (!w.full)
		dns_hdr_set(buf, HDR_ARCOUNT,
		    (uint16_t)(dns_hdr_get(buf, HDR_ARCOUNT) + 1));
	return w.len;
}

size_t
dns_build_query(uint8_t *out, size_t size, const uint8_t *query,
    const struct dns_query *q)
{
	struct dns_writer w;

	dns_writer_init(&w, out, size, 0);
	dns_put_bytes(&w, query, q->qend);
	if (w.full)
		return 0;
	/* RFC 6840 5.7: ask for AD, so that what is kept keeps the verdict */
	dns_hdr_set(out, HDR_FLAGS,
	    (uint16_t)((q->flags & (DNS_RD | DNS_CD)) | DNS_AD));
	dns_hdr_set(out, HDR_QDCOUNT, 1);
	memset(out + HDR_ANCOUNT, 0, DNS_HDR - HDR_ANCOUNT);
	if (q->opt != 0) {
		dns_put_opt(&w, q->udp_size < DNS_MAX_UDP ? q->udp_size :
		    DNS_MAX_UDP, 0, q->do_bit, NULL, 0, -1);
		dns_hdr_set(out, HDR_ARCOUNT, 1);
	}
	return w.full ? 0 : w.len;
}

size_t
dns_build_error(uint8_t *out, size_t size, const uint8_t *query,
    const struct dns_query *q, int rcode, int ede)
{
	struct dns_writer w;

	dns_writer_init(&w, out, size, 0);
	dns_put_bytes(&w, query, q->qend != 0 ? q->qend : DNS_HDR);
	if (w.full)
		return 0;
	dns_hdr_set(out, HDR_FLAGS, (uint16_t)(DNS_QR | DNS_RA | (rcode & 0xf) |
	    (q->flags & (0x7800 | DNS_RD | DNS_CD))));
	dns_hdr_set(out, HDR_QDCOUNT, q->qend != 0 ? 1 : 0);
	memset(out + HDR_ANCOUNT, 0, DNS_HDR - HDR_ANCOUNT);
	if (q->opt == 0)
		return w.len;
	dns_put_opt(&w, EDNS_SIZE, rcode, q->do_bit, NULL, 0, ede);
	if (w.full)		/* no room for the OPT: answer without it */
		return w.len;
	dns_hdr_set(out, HDR_ARCOUNT, 1);
	return w.len;
}

size_t
dns_build_answer(uint8_t *out, size_t size, const uint8_t *query,
    const struct dns_query *q, const struct local_answer *a, uint32_t ttl)
{
	struct dns_writer w;
	int i;

	if (dns_build_error(out, size, query, q, a->rcode, -1) == 0)
		return 0;
	dns_writer_init(&w, out, size, q->qend);	/* records before OPT */
	out[HDR_FLAGS] |= DNS_AA >> 8;
	for (i = 0; i < a->n; i++) {
		dns_put_u16(&w, 0xc000 | DNS_HDR);	/* the question name */
		dns_put_u16(&w, a->rr[i].type);
		dns_put_u16(&w, CLASS_IN);
		dns_put_u32(&w, ttl);
		dns_put_u16(&w, a->rr[i].len);
		dns_put_bytes(&w, a->rr[i].data, a->rr[i].len);
	}
	dns_hdr_set(out, HDR_ANCOUNT, (uint16_t)a->n);
	dns_hdr_set(out, HDR_ARCOUNT, 0);
	if (q->opt != 0) {
		dns_put_opt(&w, EDNS_SIZE, 0, q->do_bit, NULL, 0, -1);
		dns_hdr_set(out, HDR_ARCOUNT, 1);
	}
	return w.full ? 0 : w.len;
}

/*
 * The SvcParams of an HTTPS or SVCB record (p, n bytes: after priority and
 * target) to w, without ipv6hint (key 6) and without 6 in mandatory (key
 * 0).  Whether it dropped anything.
 */
static bool
svc_params_filter(struct dns_writer *w, const uint8_t *p, size_t n)
{
	size_t i = 0, k;
	uint16_t key, len, v;
	bool dropped = false;

	while (i + 4 <= n) {
		key = (uint16_t)(p[i] << 8 | p[i + 1]);
		len = (uint16_t)(p[i + 2] << 8 | p[i + 3]);
		if (i + 4 + len > n)
			break;
		if (key == 6) {
			dropped = true;
		} else if (key == 0) {
			for (k = 0, v = 0; k + 1 < len; k += 2)
				v += (p[i + 4 + k] << 8 | p[i + 5 + k]) == 6;
			dns_put_u16(w, 0);
			dns_put_u16(w, (uint16_t)(len - 2 * v));
			for (k = 0; k + 1 < len; k += 2)
				if ((p[i + 4 + k] << 8 | p[i + 5 + k]) != 6)
					dns_put_bytes(w, p + i + 4 + k, 2);
			dropped |= v > 0;
		} else {
			dns_put_bytes(w, p + i, 4u + len);
		}
		i += 4u + len;
	}
	dns_put_bytes(w, p + i, n - i);	/* a malformed tail, as it was */
	return dropped;
}

/* Copy one name from c to w in full; -1 on a bad name. */
static int
name_copy(struct dns_cursor *c, struct dns_writer *w)
{
	uint8_t name[DNS_MAX_NAME];
	int n = dns_get_name(c, name);

	if (n < 0)
		return -1;
	dns_put_bytes(w, name, (size_t)n);
	return 0;
}

/*
 * The RDATA of a record of type (rdlen bytes at c) to w, names in full;
 * true when HTTPS/SVCB lost an ipv6hint.
 */
static bool
rdata_copy(struct dns_cursor *c, struct dns_writer *w, uint16_t type,
    uint16_t rdlen)
{
	size_t end = c->pos + rdlen, start = w->len;
	bool dropped = false;

	dns_put_u16(w, 0);		/* RDLENGTH, set below */
	if (type == TYPE_CNAME || type == TYPE_NS || type == TYPE_PTR) {
		name_copy(c, w);
	} else if (type == 15) {	/* MX */
		dns_put_u16(w, dns_get_u16(c));
		name_copy(c, w);
	} else if (type == TYPE_SOA) {
		name_copy(c, w);
		name_copy(c, w);
		dns_put_bytes(w, c->buf + c->pos, end > c->pos ? end - c->pos :
		    0);
		c->pos = end;
	} else if ((type == TYPE_HTTPS || type == TYPE_SVCB) && rdlen >= 3) {
		dns_put_u16(w, dns_get_u16(c));		/* SvcPriority */
		name_copy(c, w);			/* TargetName */
		if (c->err == NULL && c->pos <= end)
			dropped = svc_params_filter(w, c->buf + c->pos,
			    end - c->pos);
	} else {
		dns_put_bytes(w, c->buf + c->pos, rdlen);
	}
	if (c->err == NULL && c->pos > end)
		c->err = "rdata";
	c->pos = end;
	if (!w->full)
		put_u16(w->buf + start, (uint16_t)(w->len - start - 2));
	return dropped;
}

size_t
dns_filter_aaaa(const uint8_t *in, size_t len, uint8_t *out, size_t size)
{
	uint8_t name[DNS_MAX_NAME], qname[DNS_MAX_NAME];
	uint16_t count[3], type, rdlen, kept[3] = { 0, 0, 0 };
	struct dns_cursor c;
	struct dns_writer w;
	bool dropped = false;
	size_t qend;
	int s, i, n, qn;

	dns_cursor_init(&c, in, len);
	dns_skip(&c, 6);
	for (s = 0; s < 3; s++)
		count[s] = dns_get_u16(&c);
	qn = dns_get_name(&c, qname);
	dns_skip(&c, 4);
	if (c.err != NULL || qn < 0 || c.pos > size)
		return 0;
	qend = c.pos;
	dns_writer_init(&w, out, size, 0);
	dns_put_bytes(&w, in, qend);	/* header and question as they are */
	for (s = 0; s < 3; s++) {
		for (i = 0; i < count[s] && c.err == NULL; i++) {
			n = dns_get_name(&c, name);
			type = dns_get_u16(&c);
			if (n < 0 || c.err != NULL || c.len - c.pos < 8)
				return 0;
			rdlen = (uint16_t)(c.buf[c.pos + 6] << 8 |
			    c.buf[c.pos + 7]);
			if (type == TYPE_AAAA || (type == 46 && rdlen >= 2 &&
			    c.len - c.pos >= 10 && (c.buf[c.pos + 8] << 8 |
			    c.buf[c.pos + 9]) == TYPE_AAAA)) {
				dns_skip(&c, 8u + rdlen);	/* AAAA, RRSIG */
				dropped = true;
				continue;
			}
			if (n == qn && memcmp(name, qname, (size_t)n) == 0)
				dns_put_u16(&w, 0xc000 | DNS_HDR);
			else
				dns_put_bytes(&w, name, (size_t)n);
			dns_put_u16(&w, type);
			dns_put_bytes(&w, c.buf + c.pos, 6);	/* class, TTL */
			dns_skip(&c, 8);
			if (c.len - c.pos < rdlen)
				return 0;
			dropped |= rdata_copy(&c, &w, type, rdlen);
			kept[s]++;
		}
	}
	if (c.err != NULL || w.full || !dropped)
		return 0;
	put_u16(out + 6, kept[0]);
	put_u16(out + 8, kept[1]);
	put_u16(out + 10, kept[2]);
	return w.len;
}

int
chaos_name(const struct dns_query *q)
{
	static const char *const names[CH_COUNT] = { "\011cachesize\004bind",
	    "\012insertions\004bind", "\011evictions\004bind",
	    "\006misses\004bind", "\004hits\004bind", "\004auth\004bind",
	    "\007servers\004bind", "\007version\004bind" };
	int i;

	if (q->qclass != CLASS_CH || q->qtype != TYPE_TXT)
		return -1;
	for (i = 0; i < CH_COUNT; i++)	/* qname is lower case, wire */
		if (q->qname_len == strlen(names[i]) + 1 &&
		    memcmp(q->qname, names[i], q->qname_len) == 0)
			return i;
	return -1;
}

size_t
dns_build_txt(uint8_t *out, size_t size, const uint8_t *query,
    const struct dns_query *q, const char *const *s, int n)
{
	struct dns_writer w;
	size_t len, rd = 0;
	int i;

	if (dns_build_error(out, size, query, q, RCODE_NOERROR, -1) == 0)
		return 0;
	dns_writer_init(&w, out, size, q->qend);	/* records before OPT */
	out[HDR_FLAGS] |= DNS_AA >> 8;
	for (i = 0; i < n; i++)
		rd += 1 + (strlen(s[i]) < 255 ? strlen(s[i]) : 255);
	if (n > 0) {
		dns_put_u16(&w, 0xc000 | DNS_HDR);	/* the question name */
		dns_put_u16(&w, TYPE_TXT);
		dns_put_u16(&w, CLASS_CH);
		dns_put_u32(&w, 0);
		dns_put_u16(&w, (uint16_t)(rd < 65535 ? rd : 65535));
		for (i = 0; i < n; i++) {
			len = strlen(s[i]) < 255 ? strlen(s[i]) : 255;
			dns_put_bytes(&w, &(uint8_t){ (uint8_t)len }, 1);
			dns_put_bytes(&w, s[i], len);
		}
	}
	dns_hdr_set(out, HDR_ANCOUNT, n > 0 ? 1 : 0);
	dns_hdr_set(out, HDR_ARCOUNT, 0);
	if (q->opt != 0) {
		dns_put_opt(&w, EDNS_SIZE, 0, q->do_bit, NULL, 0, -1);
		dns_hdr_set(out, HDR_ARCOUNT, 1);
	}
	return w.full || rd > 65535 ? 0 : w.len;
}

/* Add one record of type and its data (len bytes) to the local answer a. */
static void
local_rr(struct local_answer *a, uint16_t type, const void *data, size_t len)
{
	a->rr[a->n].type = type;
	a->rr[a->n].len = (uint8_t)len;
	memcpy(a->rr[a->n].data, data, len);
	a->n++;
}

/* The byte positions of the IPv4 address for a prefix length (RFC 6052). */
static const uint8_t *
dns64_layout(int plen)
{
	static const uint8_t l32[] = { 4, 5, 6, 7 }, l40[] = { 5, 6, 7, 9 },
	    l48[] = { 6, 7, 9, 10 }, l56[] = { 7, 9, 10, 11 },
	    l64[] = { 9, 10, 11, 12 }, l96[] = { 12, 13, 14, 15 };

	return plen == 32 ? l32 : plen == 40 ? l40 : plen == 48 ? l48 :
	    plen == 56 ? l56 : plen == 64 ? l64 : l96;
}

void
dns64_addr(const uint8_t *prefix, int plen, const uint8_t *v4, uint8_t *out)
{
	const uint8_t *at = dns64_layout(plen);
	int i;

	memset(out, 0, 16);
	memcpy(out, prefix, (size_t)plen / 8);
	for (i = 0; i < 4; i++)
		out[at[i]] = v4[i];
}

bool
dns64_v4(const uint8_t *a6, const uint8_t *prefix, int plen, uint8_t *v4)
{
	const uint8_t *at = dns64_layout(plen);
	int i;

	if (memcmp(a6, prefix, (size_t)plen / 8) != 0 || (plen < 96 &&
	    a6[8] != 0))
		return false;
	for (i = 0; i < 4; i++)
		v4[i] = a6[at[i]];
	return true;
}

/* Each record of the answer section of ans (len bytes): fn(arg, ...). */
static int
answer_walk(const uint8_t *ans, size_t len, void (*fn)(void *,
    struct dns_cursor *, uint16_t, uint32_t, uint16_t), void *arg)
{
	struct dns_cursor c;
	uint16_t an, type, rdlen;
	uint32_t ttl;
	size_t end;

	dns_cursor_init(&c, ans, len);
	dns_skip(&c, 6);
	an = dns_get_u16(&c);
	dns_skip(&c, 4);
	dns_get_name(&c, NULL);
	dns_skip(&c, 4);
	while (an-- > 0 && c.err == NULL) {
		fn(arg, &c, 0, 0, 0);	/* at the owner name */
		dns_get_name(&c, NULL);
		type = dns_get_u16(&c);
		dns_skip(&c, 2);
		ttl = dns_get_u32(&c);
		rdlen = dns_get_u16(&c);
		if (c.err != NULL || c.len - c.pos < rdlen)
			return -1;
		end = c.pos + rdlen;
		fn(arg, &c, type, ttl, rdlen);
		c.pos = end;
	}
	return c.err != NULL ? -1 : 0;
}

struct usable {
	bool		 ok;
};

static void
usable_one(void *arg, struct dns_cursor *c, uint16_t type, uint32_t ttl,
    uint16_t rdlen)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	struct usable *u = arg;

	(void)ttl;
	if (type == TYPE_AAAA && rdlen == 16 &&
	    memcmp(c->buf + c->pos, mapped, 12) != 0)
		u->ok = true;
}

bool
dns64_usable(const uint8_t *ans, size_t len)
{
	struct usable u = { false };

	return answer_walk(ans, len, usable_one, &u) == 0 && u.ok;
}

struct synth {
	struct dns_writer w;
	const uint8_t	*prefix;
	int		 plen;
	uint32_t	 cap;
	uint16_t	 n, na;
	uint8_t		 owner[DNS_MAX_NAME];
	int		 olen;
};

static void
synth_one(void *arg, struct dns_cursor *c, uint16_t type, uint32_t ttl,
    uint16_t rdlen)
{
	struct synth *s = arg;
	struct dns_cursor t = *c;
	uint8_t a6[16];

	if (type == 0 && rdlen == 0 && ttl == 0) {	/* an owner: keep it */
		s->olen = dns_get_name(&t, s->owner);
		return;
	}
	if (s->olen < 0 || (type != TYPE_CNAME && !(type == TYPE_A &&
	    rdlen == 4)))
		return;		/* RRSIGs and the rest: not ours to keep */
	dns_put_bytes(&s->w, s->owner, (size_t)s->olen);
	dns_put_u16(&s->w, type == TYPE_A ? TYPE_AAAA : TYPE_CNAME);
	dns_put_u16(&s->w, CLASS_IN);
	dns_put_u32(&s->w, ttl < s->cap ? ttl : s->cap);
	if (type == TYPE_A) {
		dns64_addr(s->prefix, s->plen, c->buf + c->pos, a6);
		dns_put_u16(&s->w, 16);
		dns_put_bytes(&s->w, a6, 16);
		s->na++;
	} else {
		rdata_copy(&t, &s->w, TYPE_CNAME, rdlen);
	}
	s->n++;
}

size_t
dns64_synth(const uint8_t *aans, size_t alen, const uint8_t *q6,
    size_t len6, const uint8_t *prefix, int plen, uint32_t ttlcap,
    uint8_t *out, size_t size)
{
	struct synth s;
	struct dns_cursor c;

	dns_cursor_init(&c, q6, len6);
	dns_skip(&c, DNS_HDR);
	dns_get_name(&c, NULL);
	dns_skip(&c, 4);
	if (c.err != NULL || alen < DNS_HDR)
		return 0;
	memset(&s, 0, sizeof(s));
	s.prefix = prefix;
	s.plen = plen;
	s.cap = ttlcap;
	s.olen = -1;
	dns_writer_init(&s.w, out, size, 0);
	dns_put_bytes(&s.w, q6, c.pos);		/* header and question */
	if (s.w.full || answer_walk(aans, alen, synth_one, &s) == -1 ||
	    s.w.full || s.na == 0)
		return 0;
	out[2] = (uint8_t)(aans[2] | 0x80);	/* QR, the A answer's flags */
	out[3] = (uint8_t)(aans[3] & ~0x2f);	/* no AD, NOERROR */
	put_u16(out + 6, s.n);
	put_u16(out + 8, 0);
	put_u16(out + 10, 0);
	return s.w.len;
}

bool
dns64_ptr(const struct dns_query *q, const uint8_t *prefix, int plen,
    struct local_answer *a)
{
	static const uint8_t arpa6[] = "\003ip6\004arpa";
	uint8_t a6[16], v4[4], name[DNS_MAX_NAME];
	const uint8_t *p = q->qname;
	int i, nib, n;

	if (q->qtype != TYPE_PTR || q->qname_len != 64 + sizeof(arpa6) ||
	    memcmp(q->qname + 64, arpa6, sizeof(arpa6)) != 0)
		return false;
	memset(a6, 0, sizeof(a6));
	for (i = 0; i < 32; i++, p += 2) {	/* least significant first */
		if (p[0] != 1)
			return false;
		nib = p[1] >= '0' && p[1] <= '9' ? p[1] - '0' :
		    p[1] >= 'a' && p[1] <= 'f' ? p[1] - 'a' + 10 : -1;
		if (nib < 0)
			return false;
		a6[15 - i / 2] |= (uint8_t)(i % 2 == 0 ? nib : nib << 4);
	}
	if (!dns64_v4(a6, prefix, plen, v4))
		return false;
	n = snprintf((char *)name + 1, sizeof(name) - 1,
	    "%u.%u.%u.%u.in-addr.arpa", v4[3], v4[2], v4[1], v4[0]);
	if (cfg_parse_domain((const char *)name + 1, (size_t)n, name) < 0)
		return false;
	a->rcode = RCODE_NOERROR;
	a->n = 0;
	for (n = 0; name[n] != 0; n += name[n] + 1)
		;
	local_rr(a, TYPE_CNAME, name, (size_t)n + 1);
	return true;
}

/* ==== 9. resolv.conf, hosts, special-use names =========================== */
/*
 * Read like musl and glibc do: the keyword starts the line and is followed
 * by white space; the value ends at white space; lines longer than 255
 * bytes are skipped whole.
 */

static bool
is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	    ch == '\v';
}

static void
resolv_line(const char *line, size_t n, struct resolv_conf *out)
{
	struct ns_entry e;
	char val[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	size_t i = 10, v = 0;

	if (n < 11 || memcmp(line, "nameserver", 10) != 0 ||
	    !is_space(line[10]))
		return;
	while (i < n && is_space(line[i]))
		i++;
	while (i < n && !is_space(line[i]) && line[i] != '#' &&
	    line[i] != ';') {
		if (v + 1 >= sizeof(val)) {
			out->bad++;
			return;
		}
		val[v++] = line[i++];
	}
	val[v] = '\0';
	if (cfg_parse_host(val, 53, &e.addr) == -1) {
		out->bad++;
		return;
	}
	if (out->n == RESOLV_MAX_NS) {
		out->ignored++;
		return;
	}
	out->ns[out->n++] = e;
}

int
resolv_parse(const char *text, size_t len, struct resolv_conf *out)
{
	size_t i = 0, n;
	const char *nl;

	memset(out, 0, sizeof(*out));
	while (i < len) {
		nl = memchr(text + i, '\n', len - i);
		n = nl != NULL ? (size_t)(nl - (text + i)) : len - i;
		if (n <= 255)
			resolv_line(text + i, n, out);
		i += n + 1;
	}
	return out->n;
}

/* The reverse-lookup name of an address (RFC 1035 3.5, RFC 3596 2.5). */
static size_t
hosts_reverse(int family, const uint8_t *addr, uint8_t *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	int i;

	if (family == AF_INET) {
		for (i = 3; i >= 0; i--) {
			n++;
			out[n - 1] = (uint8_t)snprintf((char *)out + n, 4, "%u",
			    addr[i]);
			n += out[n - 1];
		}
		memcpy(out + n, "\7in-addr\4arpa", 14);
		return n + 14;
	}
	for (i = 15; i >= 0; i--) {
		out[n++] = 1;
		out[n++] = (uint8_t)hex[addr[i] & 0xf];
		out[n++] = 1;
		out[n++] = (uint8_t)hex[addr[i] >> 4];
	}
	memcpy(out + n, "\3ip6\4arpa", 10);
	return n + 10;
}

static int
hash_find(const uint32_t *slot, uint32_t mask, const uint8_t *names,
    const struct hosts_rec *rec, bool rev, const uint8_t *key, size_t len)
{
	uint32_t i = name_hash(key, len) & mask;
	const struct hosts_rec *r;

	for (; slot[i] != 0; i = (i + 1) & mask) {
		r = &rec[slot[i] - 1];
		if ((rev ? r->rname_len : r->name_len) == len &&
		    memcmp(names + (rev ? r->rname : r->name), key, len) == 0)
			return (int)slot[i] - 1;
	}
	return -(int)i - 1;	/* the free slot, encoded */
}

/* Add one "ADDR NAME..." line. */
static void
hosts_line(const char *line, size_t n, struct hosts *h, size_t *used)
{
	char tok[256];
	struct addr a;
	struct hosts_rec *r;
	size_t i = 0, t;
	int k, first = h->n, wl;

	for (k = 0;; k++) {
		while (i < n && is_space(line[i]))
			i++;
		for (t = 0; i < n && !is_space(line[i]); i++)
			if (t + 1 < sizeof(tok))
				tok[t++] = line[i];
		tok[t] = '\0';
		if (t == 0)
			break;
		if (k == 0) {
			if (cfg_parse_host(tok, 0, &a) == -1) {
				h->bad++;
				return;
			}
			continue;
		}
		r = &h->rec[h->n];
		r->family = (uint8_t)a.ss.ss_family;
		if (r->family == AF_INET)
			memcpy(r->addr, &((struct sockaddr_in *)&a.ss)->sin_addr,
			    4);
		else
			memcpy(r->addr,
			    &((struct sockaddr_in6 *)&a.ss)->sin6_addr, 16);
		if ((wl = cfg_parse_domain(tok, t, h->names + *used)) < 0) {
			h->bad++;
			continue;
		}
		r->name = (uint32_t)*used;
		r->name_len = (uint8_t)wl;
		*used += (size_t)wl;
		r->rname = (uint32_t)*used;
		r->rname_len = (uint8_t)hosts_reverse(r->family, r->addr,
		    h->names + *used);
		*used += r->rname_len;
		r->next = -1;
		h->n++;
	}
	(void)first;
}

int
hosts_parse(const char *text, size_t len, struct hosts *h)
{
	size_t i, n, words = 0, used = 0;
	const char *nl, *hash;
	struct hosts_rec *r;
	uint32_t size = 16;
	int k, f;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < len; i++)	/* an upper bound on the names */
		if (!is_space(text[i]) && (i == 0 || is_space(text[i - 1]) ||
		    text[i - 1] == '\n'))
			words++;
	while (size < 2 * words)
		size *= 2;
	h->rec = calloc(words + 1, sizeof(*h->rec));
	h->names = malloc(len + 2 * words + 80 * words + 1);
	h->byname = calloc(size, sizeof(*h->byname));
	h->byaddr = calloc(size, sizeof(*h->byaddr));
	h->mask = size - 1;
	if (h->rec == NULL || h->names == NULL || h->byname == NULL ||
	    h->byaddr == NULL) {
		hosts_free(h);
		return -1;
	}
	for (i = 0; i < len; i += n + 1) {
		nl = memchr(text + i, '\n', len - i);
		n = nl != NULL ? (size_t)(nl - (text + i)) : len - i;
		hash = memchr(text + i, '#', n);
		hosts_line(text + i, hash != NULL ? (size_t)(hash - (text + i)) :
		    n, h, &used);
	}
	for (k = 0; k < h->n; k++) {
		r = &h->rec[k];
		f = hash_find(h->byname, h->mask, h->names, h->rec, false,
		    h->names + r->name, r->name_len);
		if (f >= 0) {	/* chain to the end: file order kept */
			while (h->rec[f].next >= 0)
				f = h->rec[f].next;
			h->rec[f].next = k;
		} else {
			h->byname[-f - 1] = (uint32_t)k + 1;
		}
		f = hash_find(h->byaddr, h->mask, h->names, h->rec, true,
		    h->names + r->rname, r->rname_len);
		if (f < 0)	/* the first name of an address is its PTR */
			h->byaddr[-f - 1] = (uint32_t)k + 1;
	}
	return h->n;
}

void
hosts_free(struct hosts *h)
{
	free(h->rec);
	free(h->names);
	free(h->byname);
	free(h->byaddr);
	memset(h, 0, sizeof(*h));
}

int
hosts_count(const struct hosts *h, int *bad)
{
	if (bad != NULL)
		*bad = h->bad;
	return h->n;
}

bool
hosts_lookup(const struct hosts *h, const struct dns_query *q,
    struct local_answer *a)
{
	const struct hosts_rec *r;
	int k;

	if (h->n == 0)
		return false;
	a->rcode = RCODE_NOERROR;
	a->n = 0;
	if (q->qtype == TYPE_PTR && (k = hash_find(h->byaddr, h->mask,
	    h->names, h->rec, true, q->qname, q->qname_len)) >= 0) {
		r = &h->rec[k];
		local_rr(a, TYPE_PTR, h->names + r->name, r->name_len);
		return true;
	}
	k = hash_find(h->byname, h->mask, h->names, h->rec, false, q->qname,
	    q->qname_len);
	if (k < 0)
		return false;
	for (; k >= 0 && a->n < LOCAL_MAX_RR; k = h->rec[k].next) {
		r = &h->rec[k];
		if ((q->qtype == TYPE_A && r->family == AF_INET) ||
		    (q->qtype == TYPE_AAAA && r->family == AF_INET6))
			local_rr(a, q->qtype, r->addr,
			    r->family == AF_INET ? 4 : 16);
	}
	return true;
}

/* ---- special-use names ---------------------------------------------- */

/*
 * Whether the wire name (len bytes) is suffix or a name under it (both
 * lower case).
 */
static bool
name_under(const uint8_t *name, size_t len, const uint8_t *suffix,
    size_t slen)
{
	size_t at = 0;

	while (len - at > slen)
		at += (size_t)name[at] + 1;
	return len - at == slen && memcmp(name + at, suffix, slen) == 0;
}

bool
bogus_priv_name(const uint8_t *qname)
{
	static const char *const v4[] = { "\002" "10", "\003" "127",
	    "\003" "254\003" "169", "\003" "168\003" "192" };
	static const uint8_t arpa4[] = "\007in-addr\004arpa";
	static const uint8_t arpa6[] = "\003ip6\004arpa";
	uint8_t zone[80];
	size_t n, qlen = 0;
	int i, k;

	while (qname[qlen] != 0)
		qlen += (size_t)qname[qlen] + 1;
	qlen++;
	for (i = 0; i < (int)(sizeof(v4) / sizeof(v4[0])); i++) {
		n = strlen(v4[i]);
		memcpy(zone, v4[i], n);
		memcpy(zone + n, arpa4, sizeof(arpa4));
		if (name_under(qname, qlen, zone, n + sizeof(arpa4)))
			return true;
	}
	/* 172.16/12 and 100.64/10: a range of second octets each */
	for (k = 0; k < 2; k++)
		for (i = k == 0 ? 16 : 64; i <= (k == 0 ? 31 : 127); i++) {
			n = (size_t)snprintf((char *)zone + 1, 4, "%d", i);
			zone[0] = (uint8_t)n;
			memcpy(zone + 1 + n, k == 0 ? "\003172" : "\003100", 4);
			memcpy(zone + 5 + n, arpa4, sizeof(arpa4));
			if (name_under(qname, qlen, zone, 5 + n +
			    sizeof(arpa4)))
				return true;
		}
	/* fc00::/7: c.f and d.f; fe80::/10: 8-b.e.f */
	for (i = 0; i < 6; i++) {
		n = 0;
		if (i >= 2) {
			zone[n++] = 1;
			zone[n++] = (uint8_t)"89ab"[i - 2];
		}
		zone[n++] = 1;
		zone[n++] = (uint8_t)(i < 2 ? "cd"[i] : 'e');
		zone[n++] = 1;
		zone[n++] = 'f';
		memcpy(zone + n, arpa6, sizeof(arpa6));
		if (name_under(qname, qlen, zone, n + sizeof(arpa6)))
			return true;
	}
	for (n = 0, i = 0; i < 32; i++) {	/* ::1, all 32 nibbles */
		zone[n++] = 1;
		zone[n++] = i == 0 ? '1' : '0';
	}
	memcpy(zone + n, arpa6, sizeof(arpa6));
	return name_under(qname, qlen, zone, n + sizeof(arpa6));
}

bool
domain_needed_name(const struct dns_query *q)
{
	return q->qname[0] != 0 && q->qname[q->qname[0] + 1] == 0 &&
	    q->qtype != TYPE_NS && q->qtype != TYPE_SOA && q->qtype != 43 &&
	    q->qtype != 48;		/* DS, DNSKEY */
}

bool
special_answer(const struct dns_query *q, struct local_answer *a)
{
	static const uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 };
	static const struct {
		const char	*wire;
		size_t		 len;
		int		 rcode;
	} names[] = {
		{ "\x09localhost", 11, RCODE_NOERROR },
		{ "\x07invalid", 9, RCODE_NXDOMAIN },
		{ "\x05onion", 7, RCODE_NXDOMAIN },
		{ "\x08resolver\x04" "arpa", 15, RCODE_NOERROR },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name_under(q->qname, q->qname_len,
		    (const uint8_t *)names[i].wire, names[i].len))
			break;
	if (i == sizeof(names) / sizeof(names[0]))
		return false;
	a->rcode = names[i].rcode;
	a->n = 0;
	if (i == 0 && q->qtype == TYPE_A)
		local_rr(a, TYPE_A, lo4, 4);
	else if (i == 0 && q->qtype == TYPE_AAAA)
		local_rr(a, TYPE_AAAA, lo6, 16);
	return true;
}

/* ==== 10. Timing rules =================================================== */
/*
 * Every rule of the contract that depends on time is decided here, with
 * now passed in (dnsfwd.h "Time"): the I/O half reads the clock once per
 * loop pass and only asks these.  test/unit drives them with a fake clock,
 * to the millisecond and across the wrap of the clock.
 */

bool
time_before(uint64_t now, uint64_t at)
{
	return (int64_t)(now - at) < 0;
}

bool
time_due(uint64_t now, uint64_t at)
{
	return at != TIME_NONE && !time_before(now, at);
}

uint64_t
time_after(uint64_t now, uint64_t ms)
{
	uint64_t at = now + ms;

	return at != TIME_NONE ? at : at + 1;
}

uint64_t
time_first(uint64_t now, uint64_t a, uint64_t b)
{
	if (a == TIME_NONE)
		return b;
	if (b == TIME_NONE)
		return a;
	return (int64_t)(a - now) <= (int64_t)(b - now) ? a : b;
}

int
time_wait(uint64_t now, uint64_t next)
{
	int64_t left;

	if (next == TIME_NONE)
		return -1;
	left = (int64_t)(next - now);
	if (left <= 0)
		return 0;
	return left >= 86400000 ? 86400000 : (int)left + 1;
}

bool
rate_say(struct rate *r, uint64_t now, uint64_t period, uint32_t max,
    uint32_t *quiet)
{
	if (r->at == TIME_NONE || time_due(now, time_after(r->at, period))) {
		r->at = time_after(now, 0);
		r->said = 0;
	}
	if (r->said >= max) {
		r->quiet++;
		return false;
	}
	r->said++;
	if (quiet != NULL)
		*quiet = r->quiet;
	r->quiet = 0;
	return true;
}

uint64_t
hold_deadline(uint64_t start)
{
	return time_after(start, HOLD_MS);
}

uint64_t
stale_deadline(uint64_t start)
{
	return time_after(start, STALE_WAIT_MS);
}

uint64_t
tcp_deadline(enum tcp_phase p, uint64_t now)
{
	return time_after(now, p == TCP_IDLE ? TCP_IDLE_MS : TCP_MSG_MS);
}

uint64_t
tcp_since(enum tcp_phase p, uint64_t d)
{
	return d - (p == TCP_IDLE ? TCP_IDLE_MS : TCP_MSG_MS);
}

enum tcp_verdict
tcp_expire(enum tcp_phase p, bool busy)
{
	if (p == TCP_MSG)
		return TCP_CLOSE_SLOW;
	return busy ? TCP_WAIT : TCP_CLOSE_IDLE;
}

/* ==== 11. Upstream policy ================================================ */
/*
 * The sequential policy (README "How an answer is chosen"), as pure decisions:
 * the caller reports each reply or failure, the policy says what to do.
 */

int
policy_order(const struct upstream *u, int n, uint8_t *order)
{
	int i, k = 0, first;

	for (i = 0; i < n; i++)
		if (u[i].backoff == 0 && !u[i].failover)
			order[k++] = (uint8_t)i;
	first = k;
	for (i = 0; i < n; i++)
		if (u[i].backoff == 0 && u[i].failover)
			order[k++] = (uint8_t)i;
	if (first == 0)
		first = k;
	for (i = 0; i < n; i++)
		if (u[i].backoff != 0)
			order[k++] = (uint8_t)i;
	return first;
}

void
policy_down(struct upstream *u, uint64_t now)
{
	if (u->backoff == 0)
		u->backoff = BACKOFF_MIN;
	else if (!time_due(now, time_after(u->down_at, u->backoff)))
		return;		/* this period's failure was counted */
	else
		u->backoff = u->backoff >= BACKOFF_MAX / 2 ? BACKOFF_MAX :
		    u->backoff * 2;
	u->down_at = now;
	u->probe_at = time_after(now, u->backoff);
}

void
policy_alive(struct upstream *u)
{
	u->backoff = 0;
	u->probe_at = TIME_NONE;
	u->down_at = TIME_NONE;
}

bool
policy_probe(struct upstream *u, uint64_t now)
{
	if (u->backoff == 0 || !time_due(now, u->probe_at))
		return false;
	u->probe_at = time_after(now, u->backoff);
	return true;
}

/* Bits first..last-1 of a pending mask. */
static uint32_t
policy_bits(int first, int last)
{
	uint32_t hi = last >= 32 ? UINT32_MAX : (1u << last) - 1;

	return hi & ~((1u << first) - 1);
}

enum policy_act
policy_start(struct policy *p, int n, int live, bool parallel)
{
	p->n = (uint8_t)n;
	p->live = (uint8_t)(live > 0 && live < n ? live : n);
	p->next = 0;
	p->neg = -1;
	p->negrank = 0;
	p->parallel = parallel;
	p->stop = parallel ? p->live : p->n;
	p->pending = 0;
	if (n <= 0)
		return ACT_SERVFAIL;
	if (parallel)
		p->pending = policy_bits(0, p->live);
	return ACT_NEXT;
}

int
policy_ask(struct policy *p)
{
	if (p->next >= p->stop)
		return -1;
	if (!p->parallel)
		p->pending |= 1u << p->next;
	return p->next++;
}

/*
 * The rank of a negative answer: NODATA over NXDOMAIN (the name exists at
 * some upstream), and within each a validated one (AD) over one that is
 * not: a validating upstream's authenticated denial keeps its AD.  Above
 * them all, RANK_FINAL: a final answer kept in parallel (policy_event()).
 */
#define RANK_FINAL	8

static uint8_t
policy_negrank(const struct dns_reply *r)
{
	return (uint8_t)((r->rcode == RCODE_NXDOMAIN ? 2 : 4) +
	    ((r->flags & DNS_AD) ? 1 : 0));
}

enum policy_act
policy_event(struct policy *p, int pos, const struct dns_reply *r,
    bool final, bool *keep)
{
	enum reply_class c = r != NULL ? r->class : REPLY_FAILURE;
	uint8_t rank;

	*keep = false;
	if (pos < 0 || pos >= p->n || !(p->pending & (1u << pos)))
		return ACT_WAIT;
	p->pending &= ~(1u << pos);
	/*
	 * A positive answer ends the walk, and so does an answer about the
	 * name: a validator's or a filter's verdict (rule 3a), or anything
	 * systemd-resolved's stub said (rule 3b: it has tried every server
	 * it routes the name to).  A reply with no question is no answer.
	 * In parallel such an answer waits while an upstream before it is
	 * still pending (the earliest is kept): the first one's verdict must
	 * not lose to a faster second one's forged answer.
	 */
	if (c == REPLY_POSITIVE ||
	    (r != NULL && r->qend != 0 && (r->verdict || final))) {
		if (!(p->pending & policy_bits(0, pos)))
			return ACT_ANSWER;
		if (p->negrank < RANK_FINAL || pos < p->neg) {
			p->neg = (int8_t)pos;
			p->negrank = RANK_FINAL;
			*keep = true;
		}
		return ACT_WAIT;
	}
	if (c == REPLY_NEGATIVE && ((rank = policy_negrank(r)) > p->negrank ||
	    (rank == p->negrank && pos > p->neg))) {
		p->neg = (int8_t)pos;
		p->negrank = rank;
		*keep = true;
	}
	if (p->parallel) {
		if (p->negrank == RANK_FINAL &&
		    !(p->pending & policy_bits(0, p->neg)))
			return ACT_NEGATIVE;	/* the answer kept: now */
		if (p->pending != 0)
			return ACT_WAIT;
		if (p->neg == -1 && p->stop < p->n) {	/* the down ones */
			p->pending = policy_bits(p->stop, p->n);
			p->stop = p->n;
			return ACT_NEXT;
		}
	} else if (p->next < p->live || (p->next < p->n && p->neg == -1))
		return ACT_NEXT;
	return p->neg != -1 ? ACT_NEGATIVE : ACT_SERVFAIL;
}

static bool
is_loopback(const struct addr *a)
{
	return acl_is_loopback((const struct sockaddr *)&a->ss);
}

static bool
is_wildcard(const struct addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return sin->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

bool
policy_is_stub(const struct addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	uint32_t v = ntohl(sin->sin_addr.s_addr);

	return a->ss.ss_family == AF_INET && addr_port(a) == 53 &&
	    (v == 0x7f000035 || v == 0x7f000036);
}

bool
policy_is_self(const struct addr *ns, const struct addr *self, int n)
{
	int i;

	if (is_wildcard(ns))	/* 0.0.0.0 and :: reach this host */
		return true;
	for (i = 0; i < n; i++) {
		if (addr_equal(&self[i], (const struct sockaddr *)&ns->ss))
			return true;
		if (self[i].ss.ss_family == ns->ss.ss_family &&
		    is_wildcard(&self[i]) && is_loopback(ns) &&
		    addr_port(&self[i]) == addr_port(ns))
			return true;
	}
	return false;
}

/* ==== 12. Who may ask: prefixes and netlink ============================== */

/*
 * Who may ask (struct acl).  Sets are small (ACL_MAX) and checked per
 * datagram, loopback first: a linear walk of whole-byte compares and one
 * masked byte, no allocation, a few nanoseconds per prefix.
 *
 * prefix_clear(): clear the host bits of p, those past its length.
 */
static void
prefix_clear(struct prefix *p)
{
	int i;

	for (i = p->len / 8; i < 16; i++)
		p->a[i] &= i == p->len / 8 ? (uint8_t)(0xff00 >> (p->len % 8)) :
		    0;
}

int
cfg_parse_prefix(const char *s, struct prefix *out, char *err,
    size_t errlen)
{
	char a[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len;
	int max;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(a))
		goto bad;
	memcpy(a, s, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, out->a) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, a, out->a) == 1) {
		out->v6 = 1;
		max = 128;
	} else
		goto bad;
	len = (unsigned long)max;
	if (slash != NULL && cfg_parse_uint(slash + 1, 0, (unsigned long)max,
	    &len) == -1) {
		snprintf(err, errlen, "\"%s\": the length after / must be "
		    "0 to %d", s, max);
		return -1;
	}
	out->len = (uint8_t)len;
	if (out->v6 && len >= 96 && memcmp(out->a, "\0\0\0\0\0\0\0\0\0\0"
	    "\377\377", 12) == 0) {	/* ::ffff:a.b.c.d/N: clients as IPv4 */
		memmove(out->a, out->a + 12, 4);
		memset(out->a + 4, 0, 12);
		out->v6 = 0;
		out->len = (uint8_t)(len - 96);
	}
	prefix_clear(out);	/* 10.1.2.3/8 is 10.0.0.0/8 */
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not an address or ADDR/LEN", s);
	return -1;
}

bool
acl_add(struct acl *set, const struct prefix *p)
{
	int i;

	for (i = 0; i < set->n; i++)
		if (set->p[i].v6 == p->v6 && set->p[i].len == p->len &&
		    memcmp(set->p[i].a, p->a, sizeof(p->a)) == 0)
			return true;
	if (set->n == ACL_MAX) {
		set->full = true;
		return false;
	}
	set->p[set->n++] = *p;
	return true;
}

/* sa as 4 or 16 bytes at *b, IPv4-mapped IPv6 as IPv4: 0, 1, or -1. */
static int
acl_key(const struct sockaddr *sa, const uint8_t **b)
{
	static const uint8_t mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
	const uint8_t *a6;

	if (sa->sa_family == AF_INET) {
		*b = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	a6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
		*b = a6 + 12;
		return 0;
	}
	*b = a6;
	return 1;
}

static bool
prefix_has(const struct prefix *p, const uint8_t *b)
{
	int whole = p->len / 8, rest = p->len % 8;

	if (memcmp(p->a, b, (size_t)whole) != 0)
		return false;
	return rest == 0 ||
	    ((b[whole] ^ p->a[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

bool
acl_is_loopback(const struct sockaddr *sa)
{
	static const uint8_t one[16] = { 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1 };
	const uint8_t *b;

	switch (acl_key(sa, &b)) {
	case 0:
		return b[0] == 127;
	case 1:
		return memcmp(b, one, sizeof(one)) == 0;
	}
	return false;
}

bool
acl_match(const struct acl *set, const struct sockaddr *sa)
{
	const uint8_t *b;
	int i, v6 = acl_key(sa, &b);

	for (i = 0; v6 >= 0 && i < set->n; i++)
		if (set->p[i].v6 == v6 && prefix_has(&set->p[i], b))
			return true;
	return false;
}

/*
 * The netlink ABI (linux/netlink.h, linux/rtnetlink.h, which musl does
 * not ship): host byte order, every header 4-byte aligned.
 */
#define NL_HDR		16	/* struct nlmsghdr: len, type, flags, seq, pid */
#define NL_IFA		8	/* struct ifaddrmsg: family, prefixlen, .. */
#define NL_RTA		4	/* struct rtattr: len, type */
#define NL_ALIGN(n)	(((n) + 3u) & ~(size_t)3)
#define NLMSG_ERR	2
#define NLMSG_END	3	/* NLMSG_DONE */
#define NL_NEWADDR	20	/* RTM_NEWADDR */
#define NL_GETADDR	22
#define NL_IFA_ADDRESS	1
#define NL_IFA_LOCAL	2
#define NL_GRP_IFADDR4	0x10	/* RTMGRP_IPV4_IFADDR */
#define NL_GRP_IFADDR6	0x100	/* RTMGRP_IPV6_IFADDR */

/* One address attribute of an RTM_NEWADDR as its network. */
static void
nl_add_attr(struct acl *out, int family, int plen, const uint8_t *v,
    size_t vlen)
{
	struct prefix p;

	memset(&p, 0, sizeof(p));
	if (family == AF_INET && vlen == 4 && plen <= 32)
		memcpy(p.a, v, 4);
	else if (family == AF_INET6 && vlen == 16 && plen <= 128) {
		memcpy(p.a, v, 16);
		p.v6 = 1;
	} else
		return;
	p.len = (uint8_t)plen;
	prefix_clear(&p);
	acl_add(out, &p);
}

int
nl_parse_addrs(const uint8_t *buf, size_t len, uint32_t seq,
    struct acl *out, int *other)
{
	uint32_t mlen, mseq;
	uint16_t type, alen, atype;
	size_t at, end, ap;

	for (at = 0; at + NL_HDR <= len; at += NL_ALIGN(mlen)) {
		memcpy(&mlen, buf + at, 4);
		memcpy(&type, buf + at + 4, 2);
		memcpy(&mseq, buf + at + 8, 4);
		if (mlen < NL_HDR || mlen > len - at)
			return -1;
		if (mseq != seq) {
			(*other)++;
			continue;
		}
		if (type == NLMSG_END)
			return 1;
		if (type == NLMSG_ERR)
			return -1;
		if (type != NL_NEWADDR || mlen < NL_HDR + NL_IFA)
			continue;
		end = at + mlen;
		for (ap = at + NL_HDR + NL_IFA; ap + NL_RTA <= end;
		    ap += NL_ALIGN(alen)) {
			memcpy(&alen, buf + ap, 2);
			memcpy(&atype, buf + ap + 2, 2);
			if (alen < NL_RTA || alen > end - ap)
				return -1;
			if (atype == NL_IFA_ADDRESS || atype == NL_IFA_LOCAL)
				nl_add_attr(out, buf[at + NL_HDR],
				    buf[at + NL_HDR + 1], buf + ap + NL_RTA,
				    alen - (size_t)NL_RTA);
		}
	}
	return 0;
}

/* ==== 13. Fair share and routing rules =================================== */

bool
policy_share_ok(int held, int used, int max, enum share_level lv)
{
	if (used < max / 2)
		return true;
	if (lv == SHARE_ADDR)
		return held == 0 || held < max - used;
	return held < 3 * (max - used);
}

int
policy_share_max(int max, enum share_level lv)
{
	int held = 0;

	while (held < max && policy_share_ok(held, held, max, lv))
		held++;
	return held;
}

/* Probe for name; the rule index, or -(free slot) - 1. */
static int
route_find(const struct routes *t, const uint8_t *name, size_t len)
{
	uint32_t i = name_hash(name, len) & t->mask;
	const struct rule *r;

	for (; t->slot[i] != 0; i = (i + 1) & t->mask) {
		r = &t->r[t->slot[i] - 1];
		if (r->name_len == len && memcmp(r->name, name, len) == 0)
			return (int)t->slot[i] - 1;
	}
	return -(int)i - 1;
}

/* Keep the hash at most half full: double it and re-insert. */
static int
route_grow(struct routes *t)
{
	uint32_t size = t->slot == NULL ? 64 : 2 * (t->mask + 1), *old;
	struct rule *r;
	int i;

	if (t->slot != NULL && (uint32_t)t->n * 2 < t->mask + 1)
		goto rules;
	old = t->slot;
	if ((t->slot = calloc(size, sizeof(*t->slot))) == NULL) {
		t->slot = old;
		return -1;
	}
	free(old);
	t->mask = size - 1;
	for (i = 0; i < t->n; i++)
		t->slot[-route_find(t, t->r[i].name, t->r[i].name_len) - 1] =
		    (uint32_t)i + 1;
rules:
	if (t->n < t->cap)
		return 0;
	r = realloc(t->r, (size_t)(t->cap ? 2 * t->cap : 64) * sizeof(*r));
	if (r == NULL)
		return -1;
	t->r = r;
	t->cap = t->cap ? 2 * t->cap : 64;
	return 0;
}

/* Whether r forwards to a already. */
static bool
route_has(const struct rule *r, const struct addr *a)
{
	int i;

	for (i = 0; i < r->nsrv; i++)
		if (addr_equal(&r->srv[i], (const struct sockaddr *)&a->ss) &&
		    strcmp(r->srv[i].ifname, a->ifname) == 0)
			return true;
	return false;
}

/* Apply VALUE to the rule r. */
static int
route_value(struct rule *r, const char *v, bool local, char *err,
    size_t errlen)
{
	struct addr a;
	struct addr *srv;

	if (*v == '\0') {
		if (r->kind != RULE_LOCAL)
			r->kind = RULE_LOCAL;
		return 0;
	}
	if (!local && strcmp(v, "#") == 0) {
		if (r->kind == RULE_FORWARD && r->nsrv == 0)
			r->kind = RULE_DEFAULT;
		return 0;
	}
	if (local) {
		if (cfg_parse_host(v, 0, &a) == -1) {
			snprintf(err, errlen, "\"%s\" is not an address", v);
			return -1;
		}
		r->kind = RULE_LOCAL;
		if (a.ss.ss_family == AF_INET) {
			memcpy(r->a4, &((struct sockaddr_in *)&a.ss)->sin_addr, 4);
			r->has4 = true;
		} else {
			memcpy(r->a6,
			    &((struct sockaddr_in6 *)&a.ss)->sin6_addr, 16);
			r->has6 = true;
		}
		return 0;
	}
	if (cfg_parse_addr(v, '#', 53, &a, err, errlen) == -1)
		return -1;
	if (route_has(r, &a))	/* named again: once is enough */
		return 0;
	if (r->nsrv == MAX_UPSTREAMS) {
		snprintf(err, errlen, "more than %d servers for one domain",
		    MAX_UPSTREAMS);
		return -1;
	}
	if ((srv = realloc(r->srv, (size_t)(r->nsrv + 1) * sizeof(*srv))) ==
	    NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	r->srv = srv;
	r->srv[r->nsrv++] = a;
	if (r->kind == RULE_DEFAULT)
		r->kind = RULE_FORWARD;
	return 0;
}

/*
 * Check spec whole (every domain, the value, room for one more server in
 * each rule) before anything is added: a spec refused adds nothing.
 */
static int
route_check(const struct routes *t, const char *spec, const char *end,
    bool local, char *err, size_t errlen)
{
	uint8_t name[DNS_MAX_NAME];
	const char *p, *slash, *v = end + 1;
	struct addr a;
	int wl, f;
	bool server = !local && *v != '\0' && strcmp(v, "#") != 0;

	if (local && *v != '\0' && cfg_parse_host(v, 0, &a) == -1) {
		snprintf(err, errlen, "\"%s\" is not an address", v);
		return -1;
	}
	if (server && cfg_parse_addr(v, '#', 53, &a, err, errlen) == -1)
		return -1;
	for (p = spec + 1; p < end; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p + 1));
		wl = cfg_parse_domain(p, (size_t)(slash - p), name);
		if (wl < 0) {
			snprintf(err, errlen, "\"%.*s\" is not a domain",
			    (int)(slash - p), p);
			return -1;
		}
		f = t->slot != NULL ? route_find(t, name, (size_t)wl) : -1;
		if (server && f >= 0 && t->r[f].nsrv == MAX_UPSTREAMS &&
		    !route_has(&t->r[f], &a)) {
			snprintf(err, errlen, "more than %d servers for one "
			    "domain", MAX_UPSTREAMS);
			return -1;
		}
	}
	return 0;
}

int
route_add(struct routes *t, const char *spec, bool local, char *err,
    size_t errlen)
{
	uint8_t name[DNS_MAX_NAME];
	const char *p, *end, *slash;
	struct rule *r;
	int wl, f;

	if (spec[0] != '/' || (end = strrchr(spec, '/')) == spec) {
		snprintf(err, errlen, "\"%s\" is not /DOMAIN/VALUE", spec);
		return -1;
	}
	if (route_check(t, spec, end, local, err, errlen) == -1)
		return -1;
	for (p = spec + 1; p < end; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p + 1));
		wl = cfg_parse_domain(p, (size_t)(slash - p), name);
		if (route_grow(t) == -1) {
			snprintf(err, errlen, "%s", strerror(errno));
			return -1;
		}
		if ((f = route_find(t, name, (size_t)wl)) < 0) {
			r = &t->r[t->n];
			memset(r, 0, sizeof(*r));
			if ((r->name = malloc((size_t)wl)) == NULL) {
				snprintf(err, errlen, "%s", strerror(errno));
				return -1;
			}
			memcpy(r->name, name, (size_t)wl);
			r->name_len = (uint8_t)wl;
			r->kind = RULE_FORWARD;
			t->slot[-f - 1] = (uint32_t)++t->n;
		} else {
			r = &t->r[f];
		}
		if (route_value(r, end + 1, local, err, errlen) == -1)
			return -1;	/* out of memory only */
	}
	return 0;
}

int
route_match(const struct routes *t, const uint8_t *qname)
{
	const uint8_t *p = qname;
	size_t len;
	int f;

	if (t->n == 0)
		return -1;
	for (len = 0; p[len] != 0; len += (size_t)p[len] + 1)
		;
	len++;
	for (;;) {	/* longest suffix first, one probe per label */
		if ((f = route_find(t, p, len)) >= 0)
			return f;
		if (*p == 0)
			return -1;
		len -= (size_t)*p + 1;
		p += *p + 1;
	}
}

void
route_local(const struct rule *r, const struct dns_query *q,
    struct local_answer *a)
{
	a->n = 0;
	a->rcode = r->has4 || r->has6 ? RCODE_NOERROR : RCODE_NXDOMAIN;
	if (q->qtype == TYPE_A && r->has4)
		local_rr(a, TYPE_A, r->a4, 4);
	else if (q->qtype == TYPE_AAAA && r->has6)
		local_rr(a, TYPE_AAAA, r->a6, 16);
}

void
routes_free(struct routes *t)
{
	int i;

	for (i = 0; i < t->n; i++) {
		free(t->r[i].name);
		free(t->r[i].srv);
	}
	free(t->r);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

int
routes_count(const struct routes *t)
{
	return t->n;
}

struct rule *
route_at(struct routes *t, int i)
{
	return &t->r[i];
}

/*
 * A servers file (--servers-file): dnsmasq's syntax for the lines that
 * openresolv's dnsmasq subscriber and NetworkManager write.  Each line is
 * checked whole (every domain, the value) before it adds anything, so a
 * bad line adds nothing.  Any other "key[=value]" line is a dnsmasq
 * option dnsfwd does not have: said, skipped.
 */
static int
servers_rule(const char *v, size_t n, bool local, struct routes *t,
    char *why, size_t wl)
{
	char spec[SERVERS_LINE_MAX + 1];
	const char *end, *p;
	struct addr a;

	if (n == 0 || v[0] != '/' || (end = memrchr(v, '/', n)) == v) {
		snprintf(why, wl, "\"%.*s\" is not /DOMAIN/[VALUE]", (int)n, v);
		return -1;
	}
	if (memmem(v, (size_t)(end - v) + 1, "//", 2) != NULL) {
		/* dnsmasq's unqualified names */
		snprintf(why, wl, "\"//\" (names with no dot) is not "
		    "supported; see --domain-needed");
		return -1;
	}
	memcpy(spec, v, n);
	spec[n] = '\0';
	p = spec + (end - v) + 1;
	/* the domains and the value: route_add() checks them whole */
	if (!local && *p != '\0' && strcmp(p, "#") != 0 &&
	    cfg_parse_addr(p, '#', 53, &a, why, wl) == 0 &&
	    addr_port(&a) == 0) {
		snprintf(why, wl, "port 0 is not a server's");
		return -1;
	}
	return route_add(t, spec, local, why, wl);
}

int
servers_line(const char *line, size_t n, struct routes *t, struct addr *srv,
    int *nsrv, int maxsrv, char *why, size_t wl)
{
	const char *eq;
	size_t k, i;

	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
	    line[n - 1] == '\r'))
		n--;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	if (n == 0 || *line == '#')
		return SL_NONE;
	if (n > SERVERS_LINE_MAX) {
		snprintf(why, wl, "longer than %d bytes", SERVERS_LINE_MAX);
		return SL_BAD;
	}
	if (memchr(line, '\0', n) != NULL) {
		snprintf(why, wl, "a NUL byte in it");
		return SL_BAD;
	}
	eq = memchr(line, '=', n);
	k = eq != NULL ? (size_t)(eq - line) : n;
	for (i = 0; i < k && ((line[i] >= 'a' && line[i] <= 'z') ||
	    (i > 0 && ((line[i] >= '0' && line[i] <= '9') || line[i] == '-')));
	    i++)
		;
	if (k == 0 || i < k) {
		snprintf(why, wl, "not a dnsmasq option line");
		return SL_BAD;
	}
	if (eq != NULL && k == 6 && memcmp(line, "server", 6) == 0 &&
	    (n == k + 1 || eq[1] != '/')) {
		char a[SERVERS_LINE_MAX + 1];

		memcpy(a, eq + 1, n - k - 1);
		a[n - k - 1] = '\0';
		if (*nsrv == maxsrv) {
			snprintf(why, wl, "more than %d servers", maxsrv);
			return SL_BAD;
		}
		if (strchr(a, '@') != NULL) {
			snprintf(why, wl, "\"@\" (a source address or "
			    "interface) is not supported");
			return SL_BAD;
		}
		if (cfg_parse_addr(a, '#', 53, &srv[*nsrv], why, wl) == -1)
			return SL_BAD;
		if (addr_port(&srv[*nsrv]) == 0) {
			snprintf(why, wl, "port 0 is not a server's");
			return SL_BAD;
		}
		(*nsrv)++;
		return SL_SERVER;
	}
	if (eq != NULL && ((k == 6 && memcmp(line, "server", 6) == 0) ||
	    (k == 5 && memcmp(line, "local", 5) == 0) ||
	    (k == 7 && memcmp(line, "address", 7) == 0))) {
		if (memchr(eq, '@', n - k) != NULL) {
			snprintf(why, wl, "\"@\" (a source address or "
			    "interface) is not supported");
			return SL_BAD;
		}
		if (k == 5 && eq[n - k - 1] != '/') {
			snprintf(why, wl, "local= takes /DOMAIN/ only");
			return SL_BAD;
		}
		return servers_rule(eq + 1, n - k - 1, k == 7, t, why, wl) ==
		    -1 ? SL_BAD : SL_RULE;
	}
	snprintf(why, wl, "\"%.*s\" is a dnsmasq option dnsfwd does not "
	    "have", (int)k, line);
	return SL_OTHER;
}

/* ==== 14. Cache: the store =============================================== */
/*
 * Answers of any size in one arena, allocated at start.
 *
 * An entry is a fixed header in e[] (the question, its times, its links)
 * and a chain of CACHE_BLOCK-byte blocks in the arena holding the answer
 * as received, then the offsets of its TTLs.  A chain is linked through
 * bnext[], so a block is all data.  Invariants:
 *
 *  - a chain has exactly cache_chain_len() blocks, enough for len + 2 *
 *    nttl + ede_len bytes (the answer, its TTL offsets, its EDEs): the
 *    waste is under one block per entry, and there is no other
 *    fragmentation, since any free block serves any entry;
 *  - every block below bhigh is in exactly one chain or on the free list
 *    (so bhigh - nbfree are in use); blocks from bhigh up were never written,
 *    so the arena's pages become resident only as the cache fills, and
 *    freed blocks are used again before new ones;
 *  - every entry in use is on its hash chain and in the use order; a
 *    lookup walks one hash chain, an insert evicts from the tail until an
 *    entry and its blocks are free: at most one eviction per block it
 *    needs, each freeing at least one, so O(1) amortized; nothing is
 *    allocated after cache_init().
 *
 * Serving an entry copies the chain out and lowers every TTL by the time
 * the answer spent here.
 */

#define CACHE_CHAIN_MAX \
	((CACHE_DATA + 2 * CACHE_TTLS + CACHE_BLOCK - 1) / CACHE_BLOCK)
_Static_assert(CACHE_ARENA_MIN >= 2 * CACHE_CHAIN_MAX * CACHE_BLOCK,
    "the smallest arena holds two of the largest answers");

int
cache_init(struct cache *c, int size, size_t bytes, const uint64_t key[2])
{
	uint32_t b = 16;
	int i;

	memset(c, 0, sizeof(*c));
	c->max_ttl = CACHE_MAX_TTL;
	c->use = LIST_EMPTY;
	c->free = -1;
	c->bfree = CACHE_NIL;
	c->key[0] = key[0];
	c->key[1] = key[1];
	if (size <= 0)
		return 0;
	if (bytes == 0)
		bytes = (size_t)size * CACHE_TYPICAL;
	if (bytes < CACHE_ARENA_MIN)
		bytes = CACHE_ARENA_MIN;
	if (bytes / CACHE_BLOCK >= CACHE_NIL)
		bytes = (size_t)(CACHE_NIL - 1) * CACHE_BLOCK;
	while (b < (uint32_t)size && b < (1u << 30))
		b *= 2;
	c->nb = (uint32_t)(bytes / CACHE_BLOCK);
	/* malloc, not calloc: nothing is read before it is written */
	c->e = malloc((size_t)size * sizeof(*c->e));
	c->bucket = malloc(b * sizeof(*c->bucket));
	c->arena = malloc((size_t)c->nb * CACHE_BLOCK);
	c->bnext = malloc((size_t)c->nb * sizeof(*c->bnext));
	if (c->e == NULL || c->bucket == NULL || c->arena == NULL ||
	    c->bnext == NULL) {
		cache_free(c);
		return -1;
	}
	c->size = size;
	c->mask = b - 1;
	for (i = 0; i <= (int)c->mask; i++)
		c->bucket[i] = -1;
	return 0;
}

void
cache_free(struct cache *c)
{
	free(c->e);
	free(c->bucket);
	free(c->arena);
	free(c->bnext);
	memset(c, 0, sizeof(*c));
	c->use = LIST_EMPTY;
	c->free = -1;
	c->bfree = CACHE_NIL;
}

void
cache_flush(struct cache *c)
{
	int i;

	if (c->size == 0)
		return;
	c->n = c->high = 0;
	c->use = LIST_EMPTY;
	c->free = -1;
	c->bhigh = c->nbfree = 0;	/* the same pages, from 0 */
	c->bfree = CACHE_NIL;
	for (i = 0; i <= (int)c->mask; i++)
		c->bucket[i] = -1;
}

void
cache_stale(struct cache *c, uint32_t seconds)
{
	c->stale_ms = (uint64_t)seconds * 1000;
}

void
cache_ttls(struct cache *c, uint32_t min, uint32_t max, bool no_neg)
{
	c->max_ttl = max < CACHE_MAX_TTL ? max : CACHE_MAX_TTL;
	c->min_ttl = min < c->max_ttl ? min : c->max_ttl;
	c->no_neg = no_neg;
}

void
cache_expire(struct cache *c)
{
	c->gen++;
}

bool
cache_stale_seen(const struct cache *c)
{
	return c->stale_seen;
}

void
cache_stats(const struct cache *c, struct cache_stats *s)
{
	s->entries = c->n;
	s->size = c->size;
	s->bytes = (size_t)(c->bhigh - c->nbfree) * CACHE_BLOCK;
	s->arena = (size_t)c->nb * CACHE_BLOCK;
	s->memory = c->size == 0 ? 0 : (size_t)c->size * sizeof(*c->e) +
	    ((size_t)c->mask + 1) * sizeof(*c->bucket) +
	    (size_t)c->nb * (CACHE_BLOCK + sizeof(*c->bnext));
	s->hits = c->hits;
	s->misses = c->misses;
	s->evictions = c->evictions;
	s->inserts = c->inserts;
	s->stale_hits = c->stale_hits;
}

static uint8_t
cache_key(const struct dns_query *q)
{
	return (uint8_t)((q->opt != 0 ? 1 : 0) | (q->do_bit ? 2 : 0) |
	    ((q->flags & DNS_CD) ? 4 : 0) | ((q->flags & DNS_RD) ? 8 : 0));
}

/* ---- the arena: block chains -------------------------------------------- */

/* The blocks of a chain: an answer of len bytes, nttl offsets, its EDEs. */
static unsigned
cache_chain_len(size_t len, unsigned nttl, unsigned ede_len)
{
	return (unsigned)((len + 2 * nttl + ede_len + CACHE_BLOCK - 1) /
	    CACHE_BLOCK);
}

/* A place in a chain: block b, byte off of it. */
struct cache_pos {
	uint32_t	 b;
	size_t		 off;
};

/* Blocks for n bytes: free ones first, then ones never used. */
static bool
cache_blocks_free(const struct cache *c, unsigned n)
{
	return c->nbfree + (c->nb - c->bhigh) >= n;
}

/* Link n blocks into a chain (cache_blocks_free(c, n) holds); its first. */
static uint32_t
cache_chain_take(struct cache *c, unsigned n)
{
	uint32_t first = CACHE_NIL, *link = &first, b;

	while (n-- > 0) {
		if (c->nbfree > 0) {
			b = c->bfree;
			c->bfree = c->bnext[b];
			c->nbfree--;
		} else {
			b = c->bhigh++;
		}
		*link = b;
		link = &c->bnext[b];
	}
	*link = CACHE_NIL;
	return first;
}

/* Give the n blocks of the chain from first back to the free list. */
static void
cache_chain_free(struct cache *c, uint32_t first, unsigned n)
{
	uint32_t last = first;
	unsigned k;

	for (k = 1; k < n; k++)
		last = c->bnext[last];
	c->bnext[last] = c->bfree;
	c->bfree = first;
	c->nbfree += n;
}

/*
 * The next run of the chain at p, at most n bytes within one block: its
 * offset in the arena, its length in *m; p moves past it.  A chain is
 * long enough for what it holds (the invariant above), so a read or write
 * of an entry's bytes never runs off its end.
 */
static size_t
cache_span(const struct cache *c, struct cache_pos *p, size_t n, size_t *m)
{
	size_t at;

	if (p->off == CACHE_BLOCK) {
		p->b = c->bnext[p->b];
		p->off = 0;
	}
	*m = CACHE_BLOCK - p->off < n ? CACHE_BLOCK - p->off : n;
	at = (size_t)p->b * CACHE_BLOCK + p->off;
	p->off += *m;
	return at;
}

static void
cache_write(struct cache *c, struct cache_pos *p, const void *buf, size_t n)
{
	const uint8_t *from = buf;
	size_t at, m;

	for (; n > 0; from += m, n -= m) {
		at = cache_span(c, p, n, &m);
		memcpy(c->arena + at, from, m);
	}
}

static void
cache_read(const struct cache *c, struct cache_pos *p, void *buf, size_t n)
{
	uint8_t *to = buf;
	size_t at, m;

	for (; n > 0; to += m, n -= m) {
		at = cache_span(c, p, n, &m);
		memcpy(to, c->arena + at, m);
	}
}

/* ---- entries: hash chains and the use order ----------------------------- */

#define CACHE_LINKS(c)	LINKS((c)->e, struct cache_entry, use)

/* Take entry i out of its hash chain and the use order; free it. */
static void
cache_drop(struct cache *c, int32_t i)
{
	int32_t *p = &c->bucket[c->e[i].hash & c->mask];

	while (*p != i)
		p = &c->e[*p].hnext;
	*p = c->e[i].hnext;
	list_unlink(&c->use, CACHE_LINKS(c), i);
	cache_chain_free(c, c->e[i].block, cache_chain_len(c->e[i].len,
	    c->e[i].nttl, c->e[i].ede_len));
	c->e[i].use.next = c->free;
	c->free = i;
	c->n--;
}

/* The entry for q, or -1.  The stored name is compared in any case. */
static int32_t
cache_find(const struct cache *c, const struct dns_query *q, uint32_t h)
{
	const struct cache_entry *e;
	struct cache_pos p;
	uint8_t name[DNS_MAX_NAME];
	const uint8_t *a;
	int32_t i;
	size_t k;

	for (i = c->bucket[h & c->mask]; i >= 0; i = e->hnext) {
		e = &c->e[i];
		if (e->hash != h || e->qtype != q->qtype ||
		    e->qclass != q->qclass || e->kr >> 4 != cache_key(q) ||
		    e->qname_len != q->qname_len)
			continue;
		a = c->arena + (size_t)e->block * CACHE_BLOCK + DNS_HDR;
		if (DNS_HDR + q->qname_len > CACHE_BLOCK) {	/* rare */
			p = (struct cache_pos){ e->block, DNS_HDR };
			cache_read(c, &p, name, q->qname_len);
			a = name;
		}
		for (k = 0; k < q->qname_len; k++)
			if ((a[k] >= 'A' && a[k] <= 'Z' ? a[k] + 32 : a[k]) !=
			    q->qname[k])
				break;
		if (k == q->qname_len)
			return i;
	}
	return -1;
}

/* ---- TTLs ---------------------------------------------------------------- */

/*
 * Write the TTL at from to to, lowered to cap, then by age seconds
 * (RFC 1035 7.3).
 */
static void
cache_age_one(uint8_t *to, const uint8_t *from, uint32_t age, uint32_t cap)
{
	uint32_t ttl = (uint32_t)get_u16(from) << 16 | get_u16(from + 2);

	ttl = ttl > INT32_MAX ? 0 : ttl;	/* RFC 2181 8 */
	ttl = ttl > cap ? cap : ttl;
	ttl = ttl > age ? ttl - age : 0;
	put_u16(to, (uint16_t)(ttl >> 16));
	put_u16(to + 2, (uint16_t)ttl);
}

/* Each TTL of the message buf (not the OPT's), its offset to fn, until
 * fn says stop. */
static void
ttl_each(const uint8_t *buf, size_t len, bool (*fn)(void *, size_t),
    void *arg)
{
	struct dns_cursor c;
	unsigned n;
	uint16_t type, rdlen;

	dns_cursor_init(&c, buf, len);
	dns_skip(&c, 6);	/* ID, flags, QDCOUNT */
	n = dns_get_u16(&c);
	n += dns_get_u16(&c);
	n += dns_get_u16(&c);
	dns_get_name(&c, NULL);
	dns_skip(&c, 4);
	while (n-- > 0 && c.err == NULL) {
		dns_get_name(&c, NULL);
		type = dns_get_u16(&c);
		dns_skip(&c, 2);
		if (type != TYPE_OPT && c.err == NULL && c.len - c.pos >= 4 &&
		    !fn(arg, c.pos))
			return;
		dns_skip(&c, 4);
		rdlen = dns_get_u16(&c);
		dns_skip(&c, rdlen);
	}
}

struct ttl_at {
	uint16_t	*at;
	unsigned	 k;
};

static bool
ttl_note(void *arg, size_t pos)
{
	struct ttl_at *t = arg;

	if (t->k == CACHE_TTLS) {
		t->k++;		/* more than fit */
		return false;
	}
	t->at[t->k++] = (uint16_t)pos;
	return true;
}

/*
 * Note where the TTLs of the answer in buf are (not the OPT's), so that
 * capping and ageing never walk names: a name may point anywhere, even
 * into a TTL.  Returns how many, CACHE_TTLS + 1 when there are more.
 */
static unsigned
cache_walk(const uint8_t *buf, size_t len, uint16_t *at)
{
	struct ttl_at t = { at, 0 };

	ttl_each(buf, len, ttl_note, &t);
	return t.k;
}

/* Raise, in place, the n TTLs at the offsets at of buf to at least floor. */
static void
cache_floor(uint8_t *buf, const uint16_t *at, unsigned n, uint32_t floor)
{
	uint32_t ttl;
	unsigned i;

	for (i = 0; i < n; i++) {
		ttl = (uint32_t)get_u16(buf + at[i]) << 16 |
		    get_u16(buf + at[i] + 2);
		if (ttl < floor) {
			put_u16(buf + at[i], (uint16_t)(floor >> 16));
			put_u16(buf + at[i] + 2, (uint16_t)floor);
		}
	}
}

struct ttl_cap {
	uint8_t		*buf;
	uint32_t	 cap;
};

static bool
ttl_lower(void *arg, size_t pos)
{
	struct ttl_cap *t = arg;

	cache_age_one(t->buf + pos, t->buf + pos, 0, t->cap);
	return true;
}

void
dns_cap_ttls(uint8_t *buf, size_t len, uint32_t cap)
{
	struct ttl_cap t = { buf, cap };

	ttl_each(buf, len, ttl_lower, &t);
}

/* Cap and age, in place, the n TTLs at the offsets at of the answer buf. */
static void
cache_age(uint8_t *buf, const uint16_t *at, unsigned n, uint32_t age,
    uint32_t cap)
{
	unsigned i;

	for (i = 0; i < n; i++)
		cache_age_one(buf + at[i], buf + at[i], age, cap);
}

/* ==== 15. Cache: put and get ============================================= */
/*
 * An answer in, an answer out: what is kept, for how long, and how it is
 * served again.
 */

/* Make room for an entry of nb blocks: evict from the end of the use order. */
static void
cache_room(struct cache *c, unsigned nb)
{
	while (c->use.tail >= 0 && ((c->free < 0 && c->high == c->size) ||
	    !cache_blocks_free(c, nb))) {
		cache_drop(c, c->use.tail);
		c->evictions++;
	}
}

bool
cache_put(struct cache *c, const struct dns_query *q, const uint8_t *ans,
    size_t len, const struct dns_reply *r, uint64_t now)
{
	uint8_t copy[CACHE_DATA + DNS_EDE_MAX];
	struct dns_reply k = *r;
	struct cache_entry *e;
	struct cache_pos p;
	uint16_t at[CACHE_TTLS];
	uint32_t h, ttl;
	unsigned nttl, nb;
	int32_t i;

	if (k.end != 0 && len > k.end)	/* junk past the records: never kept */
		len = k.end;
	if (c->size == 0 || len > CACHE_DATA || (k.flags & DNS_TC) ||
	    k.qend != DNS_HDR + q->qname_len + 4 || k.scoped)
		return false;
	if (k.class == REPLY_POSITIVE) {
		ttl = k.min_ttl < c->max_ttl ? k.min_ttl : c->max_ttl;
		ttl = ttl > c->min_ttl || ttl == 0 ? ttl : c->min_ttl;
	} else if (k.class == REPLY_NEGATIVE && k.neg_ttl >= 0 && !c->no_neg) {
		ttl = k.neg_ttl < CACHE_MAX_NEG ? (uint32_t)k.neg_ttl :
		    CACHE_MAX_NEG;
		ttl = ttl < c->max_ttl ? ttl : c->max_ttl;
	} else
		return false;
	if (ttl == 0)
		return false;
	/* an OPT is not ours to keep, its EDEs are: see dns_keep_ede() */
	memcpy(copy, ans, len + (k.opt == 0 ? k.ede_len : 0));
	len = dns_keep_ede(copy, len, &k);
	/* the counts of ans may name records past len: the walk stops there */
	if ((nttl = cache_walk(copy, len, at)) > CACHE_TTLS)
		return false;
	nb = cache_chain_len(len, nttl, k.ede_len);
	if (nb > c->nb)
		return false;
	h = dns_question_hash(c->key, q);
	if ((i = cache_find(c, q, h)) >= 0)
		cache_drop(c, i);
	cache_room(c, nb);
	if (c->free >= 0) {
		i = c->free;
		c->free = c->e[i].use.next;
	} else {
		i = c->high++;	/* never touched before: RSS grows with use */
	}
	e = &c->e[i];
	e->hash = h;
	e->stored = now;
	e->ttl = ttl;
	e->gen = c->gen;
	e->qtype = q->qtype;
	e->qclass = q->qclass;
	e->kr = (uint8_t)(cache_key(q) << 4 | (k.rcode & 0xf));
	e->qname_len = q->qname_len;
	e->len = (uint16_t)len;
	e->src = k.src;
	e->nttl = (uint8_t)nttl;
	e->ede_len = k.ede_len;
	/* no TTL served may outlive the entry: cap them as stored; raise
	 * a positive's to the clamp, so they count down from it */
	cache_age(copy, at, nttl, 0, k.class == REPLY_POSITIVE ?
	    c->max_ttl : (CACHE_MAX_NEG < c->max_ttl ? CACHE_MAX_NEG :
	    c->max_ttl));
	if (k.class == REPLY_POSITIVE && c->min_ttl > 0)
		cache_floor(copy, at, nttl, c->min_ttl);
	e->block = cache_chain_take(c, nb);
	p = (struct cache_pos){ e->block, 0 };
	cache_write(c, &p, copy, len);
	cache_write(c, &p, at, 2 * nttl);
	cache_write(c, &p, copy + len, k.ede_len);
	e->hnext = c->bucket[h & c->mask];
	c->bucket[h & c->mask] = i;
	list_add(&c->use, CACHE_LINKS(c), i, true);
	c->n++;
	c->inserts++;
	return true;
}

/*
 * Serve entry i for q to out: the query's ID and spelling, TTLs aged, or
 * for a stale answer capped at STALE_TTL.
 */
static size_t
cache_serve(struct cache *c, int32_t i, const struct dns_query *q,
    const uint8_t *query, uint8_t *out, uint64_t now, bool stale,
    struct dns_reply *r)
{
	struct cache_entry *e = &c->e[i];
	uint32_t age = (uint32_t)((now - e->stored) / 1000);
	struct cache_pos p = { e->block, 0 };
	uint16_t at[CACHE_TTLS];

	list_unlink(&c->use, CACHE_LINKS(c), i);
	list_add(&c->use, CACHE_LINKS(c), i, true);
	cache_read(c, &p, out, e->len);
	cache_read(c, &p, at, 2 * (size_t)e->nttl);
	cache_read(c, &p, out + e->len, e->ede_len);	/* just past it */
	memcpy(out, query, 2);			/* the client's ID */
	memcpy(out + DNS_HDR, query + DNS_HDR, q->qname_len);	/* 0x20 */
	if (stale)
		cache_age(out, at, e->nttl, 0, STALE_TTL);
	else if (age > 0)
		cache_age(out, at, e->nttl, age, UINT32_MAX);
	memset(r, 0, sizeof(*r));
	r->flags = get_u16(out + 2);
	r->rcode = e->kr & 0xf;
	r->qend = (uint16_t)(DNS_HDR + q->qname_len + 4);
	r->end = e->len;
	r->ede = -1;
	r->ede_len = e->ede_len;
	r->src = e->src;
	r->class = REPLY_POSITIVE;
	return e->len;
}

static uint64_t
cache_expires(const struct cache_entry *e)
{
	return e->stored + (uint64_t)e->ttl * 1000;
}

static bool
cache_fresh(const struct cache *c, const struct cache_entry *e, uint64_t now)
{
	return e->gen == c->gen && time_before(now, cache_expires(e));
}

static bool
cache_keeps(const struct cache *c, const struct cache_entry *e, uint64_t now)
{
	return time_before(now, cache_expires(e) + c->stale_ms);
}

size_t
cache_get(struct cache *c, const struct dns_query *q, const uint8_t *query,
    uint8_t *out, size_t size, uint64_t now, struct dns_reply *r)
{
	struct cache_entry *e;
	int32_t i;

	c->stale_seen = false;
	if (c->size == 0)
		return 0;
	if ((i = cache_find(c, q, dns_question_hash(c->key, q))) < 0) {
		c->misses++;
		return 0;
	}
	e = &c->e[i];
	if (!cache_fresh(c, e, now) || (size_t)e->len + e->ede_len > size) {
		c->misses++;
		if ((size_t)e->len + e->ede_len <= size &&
		    cache_keeps(c, e, now)) {
			c->stale_seen = true;
			/* evicted before fresh ones */
			list_unlink(&c->use, CACHE_LINKS(c), i);
			list_add(&c->use, CACHE_LINKS(c), i, false);
		} else {
			cache_drop(c, i);
		}
		return 0;
	}
	c->hits++;
	return cache_serve(c, i, q, query, out, now, false, r);
}

size_t
cache_get_stale(struct cache *c, const struct dns_query *q,
    const uint8_t *query, uint8_t *out, size_t size, uint64_t now,
    struct dns_reply *r, const uint16_t *srcs, int nsrc)
{
	struct cache_entry *e;
	int32_t i;
	int k;

	if (c->size == 0 ||
	    (i = cache_find(c, q, dns_question_hash(c->key, q))) < 0)
		return 0;
	e = &c->e[i];
	if ((size_t)e->len + e->ede_len > size)
		return 0;
	if (cache_fresh(c, e, now))
		return cache_serve(c, i, q, query, out, now, false, r);
	for (k = 0; k < nsrc && srcs[k] != e->src; k++)
		;
	if (k == nsrc || !cache_keeps(c, e, now))
		return 0;	/* another network's answer, or too old */
	c->stale_hits++;
	return cache_serve(c, i, q, query, out, now, true, r);
}

int
cache_longest_chain(const struct cache *c)
{
	int32_t i;
	uint32_t b;
	int n, most = 0;

	for (b = 0; c->size > 0 && b <= c->mask; b++) {
		for (n = 0, i = c->bucket[b]; i >= 0; i = c->e[i].hnext)
			n++;
		if (n > most)
			most = n;
	}
	return most;
}

/*
 * Sections 16 to 36 (Parts 2-5) do the I/O.  The unit tests and fuzz
 * targets build with -DDNSFWD_TEST and see only the pure code above.
 */
#ifndef DNSFWD_TEST

/*
 * ######## Part 2. Engine #################################################
 * Owns: the runtime state every I/O part shares (sections 16-17, declared
 * here), the queries in flight, the upstream walk, the sockets to the
 * upstreams, backoff and probes.  Calls: Part 1.  Promises: it never
 * calls client code; a finished query goes on the done list with what its
 * client is owed (done_push()), and Part 3 answers it.  Its deadlines are
 * queries_next() / queries_due() (Part 5's table).
 */

/* ==== 16. Runtime state: queries, clients, listeners ===================== */

/* calloc(), or exit: for start-up and for tables that must exist. */
static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		die(1, "out of memory");
	return p;
}

/*
 * The one I/O helper of parsed addresses: a scope given by name becomes the
 * interface's index, looked up now (interfaces come and go).  -1: no such
 * interface.
 */
static int
addr_scope(struct addr *a)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	if (a->ifname[0] == '\0')
		return 0;
	sin6->sin6_scope_id = if_nametoindex(a->ifname);
	return sin6->sin6_scope_id != 0 ? 0 : -1;
}

/*
 * The types of the I/O sections: queries in flight, upstream lists, TCP
 * clients, listeners, event tokens, the client send batch, followed files,
 * and the one struct state that holds them all, each table allocated at
 * start.
 */

enum query_state {
	Q_FREE,		/* on the free stack; nothing else valid */
	Q_HELD,		/* no upstream known yet; on held, deadline = give up */
	Q_UDP,		/* attempts in fd[] (bits in fds); on attempt */
	Q_TCP_WRITE,	/* fd[asking] connecting, writing; done bytes of out */
	Q_TCP_READ,	/* query written; done bytes of the reply in tbuf */
	Q_FOLLOW,	/* waits for the answer of its leader; no FIFO, no fd */
	Q_DONE,		/* finished, on the done list: owed, then freed */
};

/* What the client of a query on the done list is owed. */
enum owed {
	OWED_NONE,	/* nothing (it had a stale answer already): freed */
	OWED_ANSWER,	/* ans: an upstream's, a kept negative, a stale one */
	OWED_SERVFAIL,	/* every upstream failed, or none was known */
	OWED_STALE,	/* a leader that goes on: the stale answer, now */
};

static const char *const query_state_name[] = {
	"free", "held", "udp", "tcp-write", "tcp-read", "follow", "done",
};

/* An upstream list, shared by the queries that started on it. */
struct ulist {
	int		 refs;		/* queries + 1 while current */
	bool		 retired;	/* replaced: health goes to the new one */
	int		 n;		/* at most MAX_UPSTREAMS */
	struct upstream	 u[];		/* n of them: 10,000 one-server rules
					 * take 10,000 upstreams, not 160,000 */
};

union sockany {
	struct sockaddr		 sa;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr_storage	 ss;
};

/* Where an answer goes: a UDP client, or a TCP connection. */
struct client {
	bool		 tcp;
	int		 origin;	/* listener (UDP) or conn (TCP) index */
	uint32_t	 gen;		/* the conn's or listener's generation */
	union sockany	 addr;		/* UDP: the client's address */
	socklen_t	 addrlen;
};

/* The nodes of a client's source: its address, its /64 or -1. */
struct srcref {
	int32_t		 node[2];
};

/* The query sent upstream: header, question, our OPT (dns_build_query). */
#define UPQ_MAX		(DNS_HDR + DNS_MAX_NAME + 4 + 11)

/*
 * A query in flight.  Identical questions share one upstream exchange
 * (RFC 5452 9.3): the first is the leader, on the in-flight hash; the
 * others follow it (Q_FOLLOW) and are answered from its reply.  Each
 * attempt has its own socket, connected to its upstream, from a port the
 * kernel draws at random, and its own random ID; the port is released
 * when the attempt ends.
 */
struct query {
	enum query_state state;
	struct link	 fl;		/* on its FIFO; fl.next: free stack */
	int8_t		 fifo;		/* FIFO it is on, -1 none */
	uint32_t	 seq;		/* incarnation; event tokens carry it */
	uint32_t	 fds;		/* bit per position with a socket in fd */
	uint32_t	 reasked;	/* bit per position asked again after
					 * one network error (rule 3) */
	bool		 tcp;		/* forwarded over TCP: a TCP client's,
					 * or after a spoofing flood */
	uint8_t		 spoofs;	/* replies that failed the checks */
	int		 fd[MAX_UPSTREAMS];	/* attempt sockets, by position */
	int32_t		 us[MAX_UPSTREAMS];	/* UDP: pool slot of fd; TCP -1 */
	uint16_t	 wire_id[MAX_UPSTREAMS];	/* the ID each was sent */
	uint16_t	 sent_ms[MAX_UPSTREAMS];	/* ... when: ms after start */
	bool		 d64;		/* DNS64: asking A, the AAAA NODATA kept */
	uint32_t	 d64_ttl;	/* ... its SOA rule, or 600 (RFC 6147) */
	int		 asking;	/* sequential: position being asked */
	int		 route;		/* rule index, -1 for the default list,
					 * -2 none (rules changed) */
	int		 tbuf;		/* TCP reply buffer index, -1 */
	uint32_t	 done;		/* TCP bytes written or read */
	uint64_t	 start;		/* ms; arrival, for the -v log */
	uint64_t	 deadline;	/* ms; meaning depends on state */
	struct client	 cl;
	struct ulist	*list;		/* counted reference, NULL when held */
	uint8_t		 order[MAX_UPSTREAMS];	/* ask order, after backoff */
	struct policy	 pol;
	struct dns_query dq;		/* the client's query, as checked */
	uint32_t	 hash;		/* dns_question_hash() of dq */
	struct srcref	 src;		/* its source's nodes in st->src */
	bool		 hashed;	/* a leader on the in-flight hash */
	int32_t		 hnext;		/* in-flight hash chain; -1 ends */
	int32_t		 leader;	/* Q_FOLLOW: the leader's slot */
	int32_t		 follow;	/* leader: first follower; follower: next */
	struct link	 ql;		/* TCP: on its conn's list, or orphans */
	int8_t		 clist;		/* TCP: CL_CONN, CL_ORPHAN, or -1 */
	uint16_t	 len;		/* bytes of out after the prefix */
	uint16_t	 neglen;	/* kept negative answer, 0 none */
	uint8_t		 negede;	/* ... and its EDE bytes after it */
	bool		 failed;	/* an attempt failed: negatives uncached */
	bool		 neterr;	/* one failed with a network error */
	bool		 replied;	/* its client got a stale answer */
	struct link	 sl;		/* on the stale list */
	bool		 staling;	/* on it: a stale answer waits */
	/* the done list (done_push()): what its client is owed */
	struct link	 dl;		/* on st->done while ondone */
	bool		 ondone;
	bool		 release;	/* finished: freed once answered */
	int8_t		 owed;		/* OWED_* */
	int8_t		 owe_ede;	/* an EDE of ours with it, -1 none */
	const uint8_t	*ans;		/* OWED_ANSWER: anslen bytes, ansr */
	uint32_t	 anslen;
	struct dns_reply ansr;
	char		 how[80];	/* for the -v line (-v only) */
	uint64_t	 gen;		/* st->generation when it arrived */
	uint8_t		 out[2 + UPQ_MAX];	/* TCP length + upstream query */
};

enum { F_ATTEMPT, F_HELD, F_COUNT };

/*
 * The two deadlines of a TCP client, each a FIFO sorted by construction:
 * between whole messages it may be idle TCP_IDLE_MS; from the first byte
 * of a message, the message must be whole within TCP_MSG_MS.
 */
enum { C_IDLE = TCP_IDLE, C_MSG = TCP_MSG, C_COUNT };

/* The list a TCP query is on: its connection's, or the orphans'. */
enum { CL_CONN, CL_ORPHAN };

/*
 * A listener: a UDP and a TCP socket on one address in one namespace.
 * Slots are reused as namespaces come and go; gen changes with each use,
 * and event tokens and UDP clients carry it, so nothing meant for a closed
 * listener ever reaches the one that took its slot.
 */
struct listener {
	struct addr	 addr;		/* as bound: the real port */
	int		 view;		/* its namespace, st->view[] */
	int		 udp, tcp;	/* -1: the slot is free */
	uint32_t	 gen;
	uint64_t	 queries;	/* for SIGUSR1 and --metrics */
	uint64_t	 tcpq;		/* ... of them over TCP */
};

/*
 * What the command line asked: the -l chains given after one -N (or
 * before any), and the namespace they are for: our own, one path, or a
 * glob(7) pattern over the names of one directory.
 */
struct lgroup {
	const char	*path;		/* NULL: our own namespace */
	char		*dir;		/* the directory of path, watched */
	const char	*glob;		/* a pattern of names in it; NULL */
	int		 wd;		/* inotify watch of dir; -1 */
	const struct listen_chain *ch;	/* its chains, nch of them */
	int		 nch;
};

/*
 * A network namespace dnsfwd listens in, and the networks of its
 * interfaces: who may ask by default.  A netlink socket opened inside it
 * (it stays bound there after setns() back and after -u) hears every
 * address change, and each change reads the whole table again
 * (RTM_GETADDR), so the set is the namespace's as of the last loop pass.
 * With --allow the default is not used and no socket is opened.
 */
struct netview {
	bool		 used;		/* the slot holds a view */
	char		*path;		/* NULL: our own namespace */
	int		 group;		/* the lgroup it serves */
	bool		 bound;		/* its listeners are open */
	bool		 mark;		/* seen by the scan under way */
	bool		 said;		/* its failure to open was said */
	dev_t		 dev;		/* the namespace bound: its identity */
	ino_t		 ino;
	int		 nl;		/* netlink socket, -1 when none */
	uint32_t	 seq;		/* of the last dump asked */
	struct rate	 full_said;	/* "more than ACL_MAX networks" */
	struct acl	 onlink;	/* the last complete dump's networks */
};

/*
 * What each source holds, for the fair-share rule (policy_share_ok()): a
 * source is an address, and an IPv6 address's /64 is one too, with a
 * larger share (one host, or one site: what a single client can take
 * without spoofing).  A node lives while its source holds anything: a
 * query in flight, a TCP connection, an upstream TCP buffer; so never
 * more than two per query and two per connection, from a pool of that
 * many.  Buckets are keyed with the secret hash key, so no client can
 * make its sources collide.
 */
enum src_kind { SRC_QUERIES, SRC_CONNS, SRC_TBUFS, SRC_KINDS };

struct source {
	uint8_t		 key[SRC_KEY];	/* kind byte, then 4, 16 or 8 */
	int32_t		 next;		/* bucket chain, or free stack */
	int32_t		 n[SRC_KINDS];	/* what it holds of each */
};

/* A source looked up (source_of()): keys, buckets, nodes. */
struct srclook {
	uint8_t		 key[2][SRC_KEY];
	uint32_t	 h[2];
	int		 n;		/* levels: 1 (IPv4), 2 (IPv6), 0 */
	struct srcref	 sr;
};

/* A stranger's last log line, for "at most once a minute per source". */
struct stranger {
	struct rate	 rate;		/* its slot's lines: one a minute */
};

/* A TCP client (RFC 7766): framed queries in, framed answers out. */
struct conn {
	int		 fd;		/* -1 when free */
	uint32_t	 events;	/* what the epoll set waits for */
	int		 listener;
	uint32_t	 lgen;		/* the listener's gen when accepted */
	uint32_t	 gen;		/* bumped on close; queries compare */
	int		 inflight;
	bool		 eof;		/* client closed its sending side */
	struct link	 fl;		/* on its FIFO; fl.next: free stack */
	int8_t		 fifo;		/* C_IDLE, C_MSG or -1 */
	uint64_t	 deadline;	/* ms; idle or message close */
	struct list	 queries;	/* its queries in flight */
	uint32_t	 rlen;		/* bytes of rbuf filled */
	uint32_t	 wpos, wlen;	/* wbuf[wpos..wlen) awaits write */
	union sockany	 peer;		/* the client, for the -v log */
	socklen_t	 peerlen;
	struct srcref	 src;		/* its source: a share of the table */
	uint8_t		 rbuf[2 + DNS_MAX_QUERY];
	uint8_t		*wbuf;		/* TCP_WBUF bytes */
};

/*
 * What an epoll event names: a kind, a slot (query or conn), an upstream
 * position, and the generation the owner had when it registered the fd.
 * An event is dispatched only when the owner still has that generation,
 * so nothing closed or reused earlier in a pass is ever acted on.
 */
enum token_kind {
	TK_ATTEMPT = 1, TK_CONN = 2, TK_USOCK = 3, TK_VIEW = 4, TK_LISTEN = 5,
	TK_METRICS = 6,		/* pos 0: the listener; 1: scraper idx */
};

/* ==== 17. Runtime state: upstream sockets, files, the state ============== */

/*
 * A UDP socket of the upstream pool.  Each attempt connects one to its
 * upstream, which makes the kernel draw a fresh random source port, and
 * when the attempt ends the socket is drained and disconnected
 * (connect(AF_UNSPEC)), which releases that port: nothing can reach it any
 * more.  The socket object stays, in the epoll set, for the next attempt:
 * socket(), close() and epoll_ctl() per query were the larger part of a
 * forwarded query's cost, and keeping the object gives an attacker
 * nothing: no port outlives its attempt.
 */
struct usock {
	int		 fd;		/* -1 until first used */
	int32_t		 q;		/* the query using it; -1 idle */
	int32_t		 probe;		/* or the probe; -1 */
	int32_t		 next;		/* free list of its family */
	uint32_t	 seq;		/* q's incarnation */
	uint8_t		 pos;		/* and the position asked */
	uint8_t		 v6;		/* its family: AF_INET6 */
};

/*
 * A probe of a down upstream: a copy of a real query, sent from a pool
 * socket on its own, that no client waits for.  Any reply to it makes the
 * upstream live again; a timeout doubles its backoff.  At most one per
 * upstream per backoff period (policy_probe()), MAX_PROBES at once.
 */
struct probe {
	struct ulist	*list;		/* counted reference; NULL: slot free */
	uint8_t		 idx;		/* the upstream, list->u[idx] */
	uint16_t	 id;
	int32_t		 us;		/* its pool socket */
	uint64_t	 deadline;	/* ms */
	struct dns_query dq;		/* the question a reply must carry */
};

/* UDP answers queued for one sendmmsg on a listener. */
struct batch {
	int		 fd;
	int		 n;
	struct mmsghdr	 msg[BATCH];
	struct iovec	 iov[BATCH];
	union sockany	 to[BATCH];
	uint8_t		(*buf)[DNS_MAX_UDP];	/* copies of the answers */
};

struct stats {
	uint64_t	 queries;	/* from clients, well formed or not */
	uint64_t	 tcp_queries;
	uint64_t	 forwarded;	/* upstream attempts */
	uint64_t	 answered;	/* answers sent from upstreams */
	uint64_t	 coalesced;	/* answered from another's exchange */
	uint64_t	 servfail;	/* SERVFAIL sent */
	uint64_t	 malformed;	/* dropped or FORMERR */
	uint64_t	 full;		/* refused: in-flight table full */
	uint64_t	 probes;	/* sent to down upstreams */
	uint64_t	 revived;	/* ... that answered */
	uint64_t	 reasked;	/* asked again after one network error */
	uint64_t	 stale;		/* clients answered from stale entries */
	uint64_t	 over_share;	/* refused: its source's share taken */
	uint64_t	 strangers;	/* refused: not allowed (UDP) */
	uint64_t	 strangers_tcp;	/* closed at accept: not allowed */
	uint64_t	 no_socket;	/* SERVFAIL: upstream socket budget spent */
	uint64_t	 tcp_full;	/* refused: connection table full */
	uint64_t	 tcp_over_share; /* closed: its source's share taken */
	uint64_t	 tbuf_over_share; /* TCP upstream buffers: share taken */
	uint64_t	 tcp_evicted;	/* idle connections closed for new ones */
	uint64_t	 tcp_slow;	/* closed: a message not whole in time */
	uint64_t	 cancelled;	/* queries of closed connections ended */
	uint64_t	 unmatched;	/* replies that matched no query */
	uint64_t	 spoof_floods;	/* queries asked again over TCP */
	uint64_t	 loops;		/* our own queries come back: dropped */
	uint64_t	 held;		/* queries held for a first list */
	uint64_t	 local;		/* answered from -a and -H */
	uint64_t	 send_err;	/* datagrams the kernel refused */
	uint64_t	 rcode[16];	/* responses sent, by RCODE */
};

/* A followed file: the resolv file or a hosts file (sections 29 and 30). */
struct watched_file {
	const char	*path[2];	/* candidates, preferred first */
	int		 npath;
	const char	*path_read;	/* the one read last */
	int		 hosts;		/* -H: index in st->hosts; -1 resolv */
	bool		 servers;	/* a --servers-file (hosts -1 too) */
	bool		 given;		/* named on the command line */
	const char	*opt;		/* ... by this option: "-r ", "-H " */
	ssize_t		 max;		/* the largest it may be */
	bool		 failover;	/* resolved's uplinks behind its stub */
	bool		 warned;	/* "no usable nameserver" said once */
	struct rate	 self_said;	/* "skipping nameserver": a minute */
	uint64_t	 self_sig;	/* ... of which ones (0: none) */
	const char	*unread;	/* why it could not be read, said; NULL */
	char		*text;		/* last content read */
	ssize_t		 textlen;	/* -1 when none */
};

#define MAX_FOLLOW	(2 + MAX_HOSTS + MAX_SERVERS_FILES)	/* resolv, its
					 * failover, -H, --servers-file */

/* One inotify watch: a directory for a name in it, or a file ("" name). */
struct watch {
	int		 wd;
	char		 name[NAME_MAX + 1];
};

struct files {
	struct watched_file	 file[MAX_FOLLOW];
	int		 nfile;
	bool		 polling;
	uint64_t	 poll_ms;
	uint64_t	 next_poll;	/* ms */
	uint64_t	 reload_at;	/* ms; TIME_NONE when none is due */
	int		 ifd;		/* inotify, -1 */
	int		 nw;
	struct watch	 w[MAX_WATCH];
	char		*buf;		/* a file being read */
	struct addr	 good[RESOLV_MAX_NS];	/* the last good list */
	int		 ngood;
	struct addr	 fgood[RESOLV_MAX_NS];	/* the failover file's */
	int		 nfgood;
	bool		 stub;		/* good is resolved's stub alone */
	int		 mode;		/* enum follow_mode, as said last */
	struct rate	 held_said;	/* "held queries failed": once a hold */
};

/*
 * The fixed pollfd entries: inotify, and the epoll set that holds every
 * other descriptor (listeners, upstream sockets, TCP clients, netlink).
 */
enum { PFD_INOTIFY, PFD_EPOLL, PFD_COUNT };

/*
 * --metrics: one HTTP listener in dnsfwd's own namespace and a few
 * scrapers at a time (section 31).  A scraper has METRICS_WAIT_MS from
 * accept to the last byte of the answer; the body is made when its
 * request is whole, and freed when it closes.
 */
#define METRICS_CONNS	4
#define METRICS_WAIT_MS	5000
#define METRICS_REQ	2048	/* a request line and headers, at most */

struct mconn {
	int		 fd;		/* -1: free */
	uint32_t	 gen;
	uint64_t	 deadline;	/* ms */
	size_t		 got;		/* bytes of in[] */
	char		 in[METRICS_REQ];
	char		*out;		/* the answer; NULL until made */
	size_t		 outlen, outoff;
};

struct metrics {
	bool		 want;		/* --metrics given */
	struct addr	 addr;		/* as given, then as bound */
	int		 fd;		/* listening; -1 */
	struct mconn	 c[METRICS_CONNS];
};

struct state {
	uint64_t	 now;		/* ms, read once per loop pass */
	/* configuration */
	int		 timeout_ms;	/* -t: one attempt's wait */
	bool		 parallel;	/* --parallel: ask all at once */
	bool		 bogus_priv;	/* --bogus-priv */
	bool		 domain_needed;	/* --domain-needed */
	bool		 filter_aaaa;	/* --filter-aaaa */
	bool		 dns64;		/* --dns64 */
	uint8_t		 d64_prefix[16];	/* ... its NAT64 prefix */
	int		 d64_len;	/* ... bits: 32, 40, 48, 56, 64, 96 */
	uint8_t		*d64buf;	/* ... a synthesised answer */
	uint32_t	 ttl_cap;	/* --max-cache-ttl; 0: none */
	bool		 ttl_capped;	/* ... given */
	bool		 following;	/* a resolv file is followed */
	int		 qmax, tcpmax;	/* --max-queries, --max-tcp */
	struct addr	 statics[MAX_UPSTREAMS];	/* -s, in order */
	int		 nstatic;	/* statics used */
	struct addr	 fallbacks[MAX_UPSTREAMS];	/* -f */
	int		 nfallback;	/* fallbacks used */
	struct listener	*lis;		/* lcap slots, the first nlis used */
	int		 nlis, lcap;	/* used, allocated */
	struct netview	*view;		/* vcap slots, the first nview used */
	int		 nview, vcap;	/* used, allocated */
	struct lgroup	*grp;		/* from -N and -l, in order */
	int		 ngrp;		/* groups used (argc + 2 allocated) */
	uint64_t	 ns_scan_at;	/* ms: look at the namespaces; TIME_NONE */
	int		 ns_tries;	/* scans left before giving up waiting */
	int		 nsh;		/* socket to the namespace helper; -1 */
	bool		 nsh_gone;	/* it exited (said) */
	int		 ready_fd;	/* --ready-fd; -1 when none or done */
	bool		 ready;		/* readiness told */
	uint64_t	 start_ms;	/* ms: when start-up began */
	const char	*pid_file;	/* --pid-file, removed on exit */
	uint64_t	 ready_tok[EPOLL_BATCH];	/* listener events, last */
	int		 nready;	/* ready_tok entries this pass */
	struct acl	 allow;		/* --allow; replaces the on-link sets */
	bool		 allowing;	/* --allow was given */
	struct stranger	 strangers[STRANGER_SLOTS];	/* last "refused" line */
	struct rate	 stranger_rate;	/* refusals said, all sources */
	struct rate	 spoof_rate;	/* spoofing floods said */
	struct addr	 self[MAX_SELF];	/* our listening address:port pairs */
	int		 nself;		/* in our namespace, wildcards expanded */
	/* the default upstream list */
	struct ulist	*deflist;	/* current; NULL before the first */
	uint64_t	 generation;	/* bumped at every cache flush */
	/* upstream sockets: one per attempt, all in the epoll set */
	int		 ep;		/* the epoll set */
	int		 nsock;		/* attempt and pool sockets open */
	struct usock	*us;		/* the UDP pool, uscap slots */
	int		 uscap, nus;	/* slots, slots ever used */
	int32_t		 usfree[2];	/* idle pool sockets: IPv4, IPv6 */
	struct probe	 probes[MAX_PROBES];	/* of down upstreams */
	int		 nprobe;		/* slots in use */
	int		 sockmax;	/* their budget, from RLIMIT_NOFILE */
	int		 tcpcap;	/* TCP clients the budget leaves room for */
	int		 nconn;		/* TCP clients open */
	uint64_t	 accept_at;	/* ms; TCP accepts paused until then */
	bool		 fd_warned;	/* "out of fds" said for this episode */
	uint64_t	 hkey[2];	/* secret key of dns_question_hash() */
	/* queries */
	struct query	*q;		/* qmax slots */
	int32_t		 freeq;		/* free stack; then q[qhigh..qmax) */
	int		 qhigh;		/* slots ever used */
	int		 nq;		/* slots in use */
	uint32_t	 qseq;		/* last incarnation number given */
	int32_t		*qbucket;	/* in-flight hash: first leader, -1 */
	struct source	*src;		/* qmax nodes: free stack, chains */
	int32_t		*sbucket;	/* sources by hash: first node + 1, 0 */
	uint32_t	 smask;		/* its buckets - 1 */
	int32_t		 freesrc;	/* free stack; then src[shigh..qmax) */
	int32_t		 shigh;		/* source nodes ever used */
	uint32_t	 qmask;		/* its buckets - 1 */
	uint8_t		*negbuf;	/* NEG_MAX bytes per slot */
	struct list	 fifo[F_COUNT];	/* queries by deadline, per kind */
	struct list	 stale;		/* queries with a stale answer, by age */
	struct list	 done;		/* queries owed answers: done_push() */
	uint8_t		*stalebuf;	/* STALE_BUF: a stale answer served */
	struct addr	 tags[MAX_TAGS];	/* upstream tag k + 1 is tags[k] */
	int		 ntags;
	/* TCP */
	struct conn	*conn;		/* tcpmax client connections */
	int32_t		 freeconn;	/* free stack; then conn[chigh..) */
	int		 chigh;		/* connections ever used */
	uint8_t		*wbuf;		/* TCP_WBUF bytes per connection */
	struct list	 cfifo[C_COUNT];	/* connections by deadline */
	struct list	 orphans;	/* queries of closed conns, to cancel */
	uint8_t		(*tbuf)[2 + DNS_MAX_TCP];	/* TCP replies */
	int		*freetbuf;	/* free stack of tbuf indices */
	int		 nfreetbuf;	/* entries on that stack */
	/* poll */
	struct pollfd	*pfd;		/* PFD_* entries, fixed at start */
	/* buffers */
	struct batch	 cli;		/* UDP answers to clients */
	uint8_t		(*rbuf)[DNS_MAX_UDP];	/* recvmmsg from listeners */
	struct mmsghdr	 rmsg[BATCH];	/* recvmmsg headers over rbuf */
	struct iovec	 riov[BATCH];	/* one per rbuf entry */
	union sockany	 rname[BATCH];	/* the senders */
	uint8_t		*ubuf;		/* one upstream datagram, 64 KiB */
	/* answers made, with room for an answer's EDEs past it */
	uint8_t		 scratch[2 + DNS_MAX_TCP + DNS_EDE_MAX + 32];
	uint8_t		*fbuf;		/* --filter-aaaa: an answer filtered */
	struct files	 files;	/* the followed files and watches */
	struct hosts	 hosts[MAX_HOSTS];	/* -H tables */
	struct routes	 routes;		/* -s /D/ and -a rules */
	struct cache	 cache;		/* -c answers */
	struct ulist	**rlist;		/* per rule, RULE_FORWARD */
	const char	**rspec;	/* -s and -a rules, as given */
	bool		*rlocal;	/* ... -a */
	int		 nrspec;
	struct addr	 fstatic[MAX_UPSTREAMS];	/* servers files' server= */
	int		 nfstatic;
	struct stats	 stats;		/* the SIGUSR1 counters */
	struct metrics	 metrics;	/* --metrics: its listener, scrapers */
	struct rnd	 rnd;			/* upstream IDs */
};

/* Query q's slot in the table. */
static int32_t
slot_of(const struct state *st, const struct query *q)
{
	return (int32_t)(q - st->q);
}

/* The links of the query and connection tables (struct links). */
#define QUERY_LINKS(st, m)	LINKS((st)->q, struct query, m)
#define CONN_LINKS(st, m)	LINKS((st)->conn, struct conn, m)

/* ==== 18. Sources and event tokens ======================================= */

/* Sources: what each holds of the tables, for the fair share. */

/*
 * The keys of the source at sa: its address (level SHARE_ADDR), and for
 * IPv6 its /64 (SHARE_NET64).  The number of levels: 1 or 2, 0 for no
 * address (never matched).
 */
static int
source_keys(const struct sockaddr *sa, uint8_t key[2][SRC_KEY])
{
	const uint8_t *b;
	int v6 = acl_key(sa, &b);

	memset(key, 0, 2 * SRC_KEY);
	if (v6 < 0)
		return 0;
	key[0][0] = (uint8_t)(v6 + 1);	/* 1: IPv4, 2: IPv6, 3: a /64 */
	memcpy(key[0] + 1, b, v6 ? 16 : 4);
	if (!v6)
		return 1;
	key[1][0] = 3;
	memcpy(key[1] + 1, b, 8);
	return 2;
}

/* The node of key's source in bucket h, -1 if it holds nothing. */
static int32_t
source_find(const struct state *st, const uint8_t *key, uint32_t h)
{
	int32_t i;

	for (i = st->sbucket[h] - 1; i >= 0; i = st->src[i].next)
		if (memcmp(st->src[i].key, key, SRC_KEY) == 0)
			return i;
	return -1;
}

/*
 * Whether a source (its nodes, -1 where it holds nothing) may take one
 * more of kind, of which used of max are taken: policy_share_ok() at
 * each of its levels.  used -1: a fixed share, what the source could
 * take alone (policy_share_max()), for the TCP connection table, where
 * the idle are closed for newcomers and a full table is the usual state.
 */
static bool
source_may(const struct state *st, const struct srcref *sr,
    enum src_kind kind, int used, int max)
{
	int lv, held;

	for (lv = 0; lv < 2; lv++) {
		if (sr->node[lv] < 0)
			continue;
		held = st->src[sr->node[lv]].n[kind];
		if (!policy_share_ok(held, used < 0 ? held : used, max,
		    (enum share_level)lv))
			return false;
	}
	return true;
}

/*
 * The source at sa looked up once: its keys, their buckets, and its nodes
 * (-1 where it holds nothing) for source_may(), then source_take().
 */
static void
source_of(const struct state *st, const struct sockaddr *sa,
    struct srclook *sl)
{
	int lv;

	sl->n = source_keys(sa, sl->key);
	sl->sr.node[0] = sl->sr.node[1] = -1;
	for (lv = 0; lv < sl->n; lv++) {
		sl->h[lv] = (uint32_t)siphash13(st->hkey, sl->key[lv],
		    SRC_KEY) & st->smask;
		sl->sr.node[lv] = source_find(st, sl->key[lv], sl->h[lv]);
	}
}

/* A node for key (in bucket h), new: nodes <= 2 * (queries + conns). */
static int32_t
source_new(struct state *st, const uint8_t *key, uint32_t h)
{
	int32_t i;

	if ((i = st->freesrc) >= 0)
		st->freesrc = st->src[i].next;
	else
		i = st->shigh++;	/* first use: RSS grows with use */
	memcpy(st->src[i].key, key, SRC_KEY);
	memset(st->src[i].n, 0, sizeof(st->src[i].n));
	st->src[i].next = st->sbucket[h] - 1;
	st->sbucket[h] = i + 1;
	return i;
}

/*
 * One more of kind for the source looked up in sl: its nodes into out.
 * Found again in their buckets (no new hash): a node may have come or
 * gone since the lookup (an eviction closed the source's last one).
 */
static void
source_take(struct state *st, const struct srclook *sl, enum src_kind kind,
    struct srcref *out)
{
	int lv;

	out->node[0] = out->node[1] = -1;
	for (lv = 0; lv < sl->n; lv++) {
		if ((out->node[lv] = source_find(st, sl->key[lv],
		    sl->h[lv])) < 0)
			out->node[lv] = source_new(st, sl->key[lv], sl->h[lv]);
		st->src[out->node[lv]].n[kind]++;
	}
}

/* One more of kind for a source that holds something already. */
static void
source_add(struct state *st, const struct srcref *sr, enum src_kind kind)
{
	int lv;

	for (lv = 0; lv < 2; lv++)
		if (sr->node[lv] >= 0)
			st->src[sr->node[lv]].n[kind]++;
}

/* One less of kind; a node that holds nothing goes back to the pool. */
static void
source_put(struct state *st, const struct srcref *sr, enum src_kind kind)
{
	struct source *s;
	int32_t i, k;
	uint32_t h;
	int lv;

	for (lv = 0; lv < 2; lv++) {
		if ((i = sr->node[lv]) < 0)
			continue;
		s = &st->src[i];
		if (--s->n[kind] > 0 || s->n[SRC_QUERIES] + s->n[SRC_CONNS] +
		    s->n[SRC_TBUFS] > 0)
			continue;
		h = (uint32_t)siphash13(st->hkey, s->key, SRC_KEY) & st->smask;
		if (st->sbucket[h] - 1 == i) {
			st->sbucket[h] = s->next + 1;
		} else {
			for (k = st->sbucket[h] - 1; st->src[k].next != i;
			    k = st->src[k].next)
				;
			st->src[k].next = s->next;
		}
		s->next = st->freesrc;
		st->freesrc = i;
	}
}

/*
 * An event token: what an epoll event names (enum token_kind), the slot,
 * the upstream position, and its owner's generation when registered.
 */
static uint64_t
token_make(int kind, int idx, int pos, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint64_t)kind << 24 |
	    (uint64_t)pos << 16 | (uint64_t)idx;
}

/* ==== 19. Query table: queues, stale list, health ======================== */
/*
 * Every query in flight lives in one preallocated slot; the slot index is
 * its handle and seq tells its incarnations apart.  Free slots form a
 * stack.  A slot waiting on a deadline sits on one FIFO: all attempts
 * share one timeout and all held queries one hold time, so each FIFO is
 * sorted by construction and its head is the next deadline.  Leaders sit
 * on the in-flight hash, keyed like the cache, so that an identical
 * question joins them instead of going upstream again.
 */

static void
fifo_remove(struct state *st, struct query *q)
{
	if (q->fifo < 0)
		return;
	list_unlink(&st->fifo[q->fifo], QUERY_LINKS(st, fl), slot_of(st, q));
	q->fifo = -1;
}

/* Put q at the tail of FIFO which with deadline; keeps FIFOs sorted. */
static void
fifo_push(struct state *st, struct query *q, int which, uint64_t deadline)
{
	fifo_remove(st, q);
	q->deadline = deadline;
	q->fifo = (int8_t)which;
	list_add(&st->fifo[which], QUERY_LINKS(st, fl), slot_of(st, q), false);
}

static void
ulist_unref(struct ulist *l)
{
	if (l != NULL && --l->refs == 0)
		free(l);
}

/*
 * The stale list: leaders that missed the cache where a stale answer was
 * kept (RFC 8767), in arrival order; the head is the first whose client
 * is answered from it, STALE_WAIT_MS after it came, if no upstream has
 * answered by then.
 */
static void
stale_add(struct state *st, struct query *q)
{
	q->staling = true;
	list_add(&st->stale, QUERY_LINKS(st, sl), slot_of(st, q), false);
}

static void
stale_remove(struct state *st, struct query *q)
{
	if (!q->staling)
		return;
	list_unlink(&st->stale, QUERY_LINKS(st, sl), slot_of(st, q));
	q->staling = false;
}

/*
 * What an answer (alive) or a timeout says of upstream i of list l,
 * written to it and, when l has been replaced since, to the same server
 * in the current list: a query that began before a reload still teaches
 * the list that replaced its own.
 */
static void
upstream_health(struct state *st, struct ulist *l, int i, bool alive)
{
	struct ulist *now_list = st->deflist;
	bool was = l->u[i].backoff == 0;
	char a[80];
	int k;

	if (alive)
		policy_alive(&l->u[i]);
	else
		policy_down(&l->u[i], st->now);
	/* said without -v: once when it goes down, once when it is back */
	if (was != (l->u[i].backoff == 0) && !l->retired)
		logmsg(1, was ? "upstream %s: not answering; asked only when "
		    "the others fail, and probed until it answers" :
		    "upstream %s: answering again", addr_text(&l->u[i].addr,
		    '#', a, sizeof(a)));
	for (k = 0; l->retired && now_list != NULL && k < now_list->n; k++) {
		if (!addr_equal(&now_list->u[k].addr,
		    (const struct sockaddr *)&l->u[i].addr.ss))
			continue;
		if (alive)
			policy_alive(&now_list->u[k]);
		else
			policy_down(&now_list->u[k], st->now);
		break;
	}
}

static void
query_set_state(struct state *st, struct query *q, enum query_state s)
{
	char name[DNS_MAX_NAME * 4 + 1];

	if (log_level >= 3) {
		dns_name_text(q->dq.qname, name, sizeof(name));
		logmsg(3, "query %d %s: %s -> %s", (int)slot_of(st, q), name,
		    query_state_name[q->state], query_state_name[s]);
	}
	q->state = s;
}

/* ==== 20. Query slots: allocation, in-flight, upstream sockets =========== */

static struct query *
query_alloc(struct state *st)
{
	struct query *q;

	if (st->freeq >= 0) {
		q = &st->q[st->freeq];
		st->freeq = q->fl.next;
	} else if (st->qhigh < st->qmax) {
		q = &st->q[st->qhigh++];	/* first use of this slot */
	} else {
		return NULL;
	}
	q->seq = ++st->qseq;
	q->fl = LINK_NONE;
	q->fifo = -1;
	q->fds = q->reasked = q->spoofs = 0;
	q->tbuf = -1;
	q->list = NULL;
	q->neglen = 0;
	q->negede = 0;
	q->failed = q->neterr = false;
	q->d64 = false;
	q->hashed = false;
	q->hnext = q->leader = q->follow = -1;
	q->ql = LINK_NONE;
	q->clist = -1;
	q->gen = st->generation;
	q->done = 0;
	q->start = st->now;
	q->src.node[0] = q->src.node[1] = -1;
	q->sl = LINK_NONE;
	q->dl = LINK_NONE;
	q->ondone = q->release = false;
	q->owed = OWED_NONE;
	q->staling = q->replied = false;
	st->nq++;
	return q;
}

/* Whether a and b ask the same question (names both lower case). */
static bool
question_eq(const struct dns_query *a, const struct dns_query *b)
{
	return a->qtype == b->qtype && a->qclass == b->qclass &&
	    a->qname_len == b->qname_len &&
	    memcmp(a->qname, b->qname, a->qname_len) == 0;
}

/* A leader for the question of dq (hash h) asked on the current list. */
static struct query *
inflight_find(struct state *st, const struct dns_query *dq, uint32_t h)
{
	struct query *q;
	int32_t i;

	for (i = st->qbucket[h & st->qmask]; i >= 0; i = q->hnext) {
		q = &st->q[i];
		if (q->hash == h && q->gen == st->generation &&
		    cache_key(&q->dq) == cache_key(dq) &&
		    question_eq(&q->dq, dq))
			return q;
	}
	return NULL;
}

static void
inflight_add(struct state *st, struct query *q)
{
	int32_t *b = &st->qbucket[q->hash & st->qmask];

	q->hnext = *b;
	*b = slot_of(st, q);
	q->hashed = true;
}

static void
inflight_remove(struct state *st, struct query *q)
{
	int32_t *p = &st->qbucket[q->hash & st->qmask];

	while (*p != slot_of(st, q))
		p = &st->q[*p].hnext;
	*p = q->hnext;
	q->hashed = false;
}

/*
 * Give pool socket i back: with drain, read what is queued (a late
 * datagram, an ICMP error) so that the next attempt starts clean; then
 * disconnect it, which releases its port.  An attempt that ended with its
 * reply read needs no drain (a late duplicate is read and dropped by the
 * next attempt: it fails that attempt's ID).  A socket that will not
 * disconnect is closed.
 */
static void
usock_release(struct state *st, int32_t i, bool drain)
{
	struct usock *u = &st->us[i];
	struct sockaddr sa;
	int n;

	for (n = 0; n < 8 && drain; n++)
		if (recv(u->fd, st->ubuf, DNS_MAX_TCP, MSG_DONTWAIT) == -1 &&
		    errno == EAGAIN)
			break;
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNSPEC;
	if ((drain && n == 8) || connect(u->fd, &sa, sizeof(sa)) == -1) {
		close(u->fd);
		u->fd = -1;
		st->nsock--;
	}
	u->q = -1;
	u->probe = -1;
	u->next = st->usfree[u->v6];
	st->usfree[u->v6] = i;
}

/*
 * A pool socket of family for an attempt: an idle one, else a new one in
 * the epoll set.  Its slot, or -1 with errno set.
 */
static int32_t
usock_get(struct state *st, int family)
{
	int v6 = family == AF_INET6, err;
	int32_t i = st->usfree[v6];
	struct epoll_event ev;
	struct usock *u;

	if (i >= 0) {
		u = &st->us[i];
		st->usfree[v6] = u->next;
		if (u->fd >= 0)
			return i;
	} else if (st->nus < st->uscap) {
		i = st->nus++;
		u = &st->us[i];
		u->v6 = (uint8_t)v6;
		u->fd = -1;
		u->q = u->probe = -1;
	} else {
		errno = EMFILE;
		return -1;
	}
	if (st->nsock >= st->sockmax) {
		errno = EMFILE;
		goto back;
	}
	if ((u->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		goto back;
	ev.events = EPOLLIN;
	ev.data.u64 = token_make(TK_USOCK, i, 0, 0);
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, u->fd, &ev) == -1) {
		err = errno;
		close(u->fd);
		u->fd = -1;
		errno = err;
		goto back;
	}
	st->nsock++;
	return i;
back:
	u->next = st->usfree[v6];
	st->usfree[v6] = i;
	return -1;
}

/*
 * A pool socket connected to to, which draws it a fresh random port:
 * its slot, or -1 with errno set.
 */
static int32_t
usock_connect(struct state *st, const struct addr *to)
{
	int32_t i;
	int err;

	if ((i = usock_get(st, to->ss.ss_family)) < 0)
		return -1;
	if (connect(st->us[i].fd, (const struct sockaddr *)&to->ss, to->len) ==
	    -1) {
		err = errno;
		usock_release(st, i, false);
		errno = err;
		return -1;
	}
	return i;
}

/*
 * Close (or give back to the pool) the socket of q's attempt at pos;
 * answered: the attempt ended with its reply read.
 */
static void
attempt_end(struct state *st, struct query *q, int pos, bool answered)
{
	if (!(q->fds & (1u << pos)))
		return;
	q->fds &= ~(1u << pos);
	if (q->us[pos] >= 0) {
		usock_release(st, q->us[pos], !answered);
		return;
	}
	close(q->fd[pos]);	/* leaves the epoll set with it */
	st->nsock--;
}

static void
attempt_close(struct state *st, struct query *q, int pos)
{
	attempt_end(st, q, pos, false);
}

/*
 * q is finished: its sockets close, it leaves the in-flight hash, its
 * FIFO, the stale list and its upstream list, and a new incarnation (seq)
 * makes any event still queued for it stale.  Its slot, its TCP buffer
 * (which may hold its answer) and its source's count stay until
 * query_free().
 */
/* q's attempts end (sockets closed), it leaves its FIFO and its list. */
static void
query_let_go(struct state *st, struct query *q)
{
	int pos;

	for (pos = 0; q->fds != 0; pos++)
		attempt_close(st, q, pos);
	fifo_remove(st, q);
	ulist_unref(q->list);
	q->list = NULL;
}

static void
query_finish(struct state *st, struct query *q)
{
	query_let_go(st, q);
	if (q->hashed)
		inflight_remove(st, q);
	stale_remove(st, q);
	q->seq = ++st->qseq;
	query_set_state(st, q, Q_DONE);
}

/*
 * Free q (finished or not); its followers must have been answered or
 * moved on.  A TCP query must have left its connection's list (the
 * client part's conn_query_done() or conn_query_unlink()).
 */
static void
query_free(struct state *st, struct query *q)
{
	if (q->state != Q_DONE)
		query_finish(st, q);
	if (q->ondone) {	/* not drained yet: cancelled */
		list_unlink(&st->done, QUERY_LINKS(st, dl), slot_of(st, q));
		q->ondone = false;
	}
	if (q->tbuf >= 0) {
		st->freetbuf[st->nfreetbuf++] = q->tbuf;
		q->tbuf = -1;
		source_put(st, &q->src, SRC_TBUFS);
	}
	source_put(st, &q->src, SRC_QUERIES);
	q->src.node[0] = q->src.node[1] = -1;
	q->owed = OWED_NONE;
	q->release = false;
	query_set_state(st, q, Q_FREE);
	q->fl.next = st->freeq;
	st->freeq = slot_of(st, q);
	st->nq--;
}

/* ==== 21. Upstream sockets, attempts and probes ========================== */
/*
 * An attempt is one query to one upstream.  Each has a socket of its own
 * for its lifetime, connected to the upstream, so the kernel drops
 * datagrams from any other address or port, on a port the kernel draws at
 * random from the whole ephemeral range; and each carries a fresh random
 * ID.  An off-path attacker must guess both, for one exchange per question
 * (RFC 5452 9.2, 9.3).  The port is released as soon as the attempt ends
 * (a TCP socket is closed, a UDP pool socket disconnected: struct usock),
 * so a late or duplicate reply finds no socket.  A connected socket also
 * reports ICMP errors (ECONNREFUSED, ENETUNREACH) on its next read, so a
 * dead port costs no timeout.  Queries that came over TCP are forwarded
 * over TCP.
 *
 * Two recursions, hence the two prototypes: a failed send moves the query
 * on at once, which asks the next upstream (query_event() and query_ask(),
 * at most once per upstream of the list); and a follower that needs an
 * exchange of its own is started from its leader's query_done(), which
 * query_start() calls when there is no upstream (once: a follower has no
 * followers).
 */

static void query_event(struct state *, struct query *, int,
    enum reply_class, uint8_t *, size_t, struct dns_reply *);
static void query_start(struct state *, struct query *);

/*
 * A socket of type for q's attempt at pos, connected to its upstream and
 * in the epoll set, from a fresh random port, and a fresh ID: for UDP a
 * pool socket, for TCP a new one.  Returns the fd, or -1 with errno set.
 */
static int
attempt_open(struct state *st, struct query *q, int pos, int type)
{
	const struct upstream *u = &q->list->u[q->order[pos]];
	const struct sockaddr *to = (const struct sockaddr *)&u->addr.ss;
	struct epoll_event ev;
	int32_t i = -1;
	int fd, err;

	if (type == SOCK_DGRAM) {
		if ((i = usock_connect(st, &u->addr)) < 0)	/* a new port */
			return -1;
		fd = st->us[i].fd;
		st->us[i].q = slot_of(st, q);
		st->us[i].seq = q->seq;
		st->us[i].pos = (uint8_t)pos;
	} else {
		if (st->nsock >= st->sockmax) {
			errno = EMFILE;
			return -1;
		}
		fd = socket(u->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1)
			return -1;
		ev.events = EPOLLOUT;
		ev.data.u64 = token_make(TK_ATTEMPT, slot_of(st, q), pos,
		    q->seq);
		if ((connect(fd, to, u->addr.len) == -1 &&
		    errno != EINPROGRESS) ||
		    epoll_ctl(st->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		st->nsock++;
	}
	q->us[pos] = i;
	q->fd[pos] = fd;
	q->fds |= 1u << pos;
	q->wire_id[pos] = rnd16(&st->rnd);
	dns_hdr_set(q->out + 2, HDR_ID, q->wire_id[pos]);
	return fd;
}

static bool
is_resource_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM;
}

/* Declared ahead: a network error asks the same upstream again (once). */
static void	upstream_send_udp(struct state *, struct query *, int);

/*
 * A network error for q's attempt at pos: it ends; the same upstream is
 * asked again once (UDP), then the query moves on.
 */
static void
upstream_error(struct state *st, struct query *q, int pos, int err)
{
	struct upstream *u = &q->list->u[q->order[pos]];
	bool udp = !q->tcp;
	char a[80];

	attempt_close(st, q, pos);
	if (is_resource_error(err)) {
		st->stats.no_socket++;	/* ours, not the upstream's */
	} else if (udp && !(q->reasked & (1u << pos))) {
		/*
		 * Rule 3: an ICMP error names only our port, no ID, so anyone
		 * who guesses the port can forge one.  One proves nothing:
		 * the same upstream is asked again at once, from a fresh
		 * port and ID; only a second network error is a failure.
		 */
		q->reasked |= 1u << pos;
		st->stats.reasked++;
		if (log_level >= 2)
			logmsg(2, "upstream %s: %s; asked again from another "
			    "port", addr_text(&u->addr, '#', a, sizeof(a)),
			    strerror(err));
		upstream_send_udp(st, q, pos);
		return;
	} else {
		u->errors++;	/* refused, unreachable twice: down, probed */
		q->neterr = true;
		upstream_health(st, q->list, q->order[pos], false);
	}
	if (log_level >= 2)
		logmsg(2, "upstream %s: %s", addr_text(&u->addr, '#', a,
		    sizeof(a)), strerror(err));
	query_event(st, q, pos, REPLY_FAILURE, NULL, 0, NULL);
}

/* An attempt went out: counted, and its time kept for the histogram. */
static void
attempt_sent(struct state *st, struct query *q, int pos)
{
	uint64_t d = st->now - q->start;

	st->stats.forwarded++;
	q->list->u[q->order[pos]].sent++;
	q->sent_ms[pos] = (uint16_t)(d < 65535 ? d : 65535);
}

static void
upstream_send_udp(struct state *st, struct query *q, int pos)
{
	int fd;

	if ((fd = attempt_open(st, q, pos, SOCK_DGRAM)) == -1 ||
	    (send(fd, q->out + 2, q->len, 0) == -1 && errno != EAGAIN)) {
		upstream_error(st, q, pos, errno);
		return;
	}
	attempt_sent(st, q, pos);
}

static void
upstream_send_tcp(struct state *st, struct query *q, int pos)
{
	if (q->tbuf < 0) {
		/* the buffers are shared by source, over any connections */
		if (st->nfreetbuf == 0 || !source_may(st, &q->src, SRC_TBUFS,
		    st->tcpmax - st->nfreetbuf, st->tcpmax)) {
			if (st->nfreetbuf > 0)
				st->stats.tbuf_over_share++;
			upstream_error(st, q, pos, ENOBUFS);
			return;
		}
		q->tbuf = st->freetbuf[--st->nfreetbuf];
		source_add(st, &q->src, SRC_TBUFS);
	}
	if (attempt_open(st, q, pos, SOCK_STREAM) == -1) {
		upstream_error(st, q, pos, errno);
		return;
	}
	attempt_sent(st, q, pos);
	q->done = 0;
	query_set_state(st, q, Q_TCP_WRITE);
}

/* Whether a probe of the server at a is in flight (one at a time each). */
static bool
probe_pending(const struct state *st, const struct addr *a)
{
	const struct probe *p;
	int k;

	for (k = 0; st->nprobe > 0 && k < MAX_PROBES; k++) {
		p = &st->probes[k];
		if (p->list != NULL && addr_equal(a,
		    (const struct sockaddr *)&p->list->u[p->idx].addr.ss))
			return true;
	}
	return false;
}

/*
 * Probe the down upstreams of q's list that are due (policy_probe()) and
 * not being probed already (a probe's wait, -t, may outlast a backoff):
 * the live ones answer q, the probes only say whether the down ones are
 * back.  With no live upstream q asks them all itself.
 */
static void
probe_send(struct state *st, struct query *q)
{
	uint8_t out[UPQ_MAX];
	struct upstream *u;
	struct probe *p;
	int pos, i;
	int32_t k;

	for (pos = q->pol.live; pos < q->pol.n; pos++) {
		u = &q->list->u[q->order[pos]];
		if (st->nprobe == MAX_PROBES || probe_pending(st, &u->addr) ||
		    !policy_probe(u, st->now))
			continue;
		for (i = 0; st->probes[i].list != NULL; i++)
			;
		if ((k = usock_connect(st, &u->addr)) < 0)
			continue;	/* down it stays; probed again later */
		p = &st->probes[i];
		p->id = rnd16(&st->rnd);
		memcpy(out, q->out + 2, q->len);
		dns_hdr_set(out, HDR_ID, p->id);
		if (send(st->us[k].fd, out, q->len, 0) == -1) {
			usock_release(st, k, false);
			continue;	/* down it stays; probed again later */
		}
		st->us[k].probe = i;
		p->us = k;
		p->list = q->list;
		p->list->refs++;
		p->idx = q->order[pos];
		p->dq = q->dq;
		p->deadline = time_after(st->now, (uint64_t)st->timeout_ms);
		st->nprobe++;
		st->stats.probes++;
	}
}

/* Probe i ends: answered, the upstream is live; else its backoff grows. */
static void
probe_end(struct state *st, int i, bool answered)
{
	struct probe *p = &st->probes[i];
	char a[80];

	usock_release(st, p->us, !answered);
	upstream_health(st, p->list, p->idx, answered);
	if (answered)
		st->stats.revived++;
	logmsg(answered ? 1 : 2, "upstream %s: %s",
	    addr_text(&p->list->u[p->idx].addr, '#', a, sizeof(a)), answered ?
	    "answers again (probe); back in use" : "probe failed; still down");
	ulist_unref(p->list);
	p->list = NULL;
	st->nprobe--;
}

/* Datagrams on probe i's socket: its reply, checked as an attempt's. */
static void
probe_read(struct state *st, int i)
{
	struct probe *p = &st->probes[i];
	struct dns_reply r;
	uint16_t id, flags;
	ssize_t n;
	int k;

	for (k = 0; k < 4; k++) {
		n = recv(st->us[p->us].fd, st->ubuf, DNS_MAX_TCP, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			probe_end(st, i, false);
			return;
		}
		if (dns_peek_header(st->ubuf, (size_t)n, &id, &flags) &&
		    id == p->id && (flags & DNS_QR) &&
		    dns_parse_reply(st->ubuf, (size_t)n, &p->dq, &r) !=
		    REPLY_FOREIGN) {
			probe_end(st, i, true);
			return;
		}
		st->stats.unmatched++;
	}
}

/* ==== 22. Answers and the course of a query ============================== */

/*
 * Ask the next upstream (sequential) or all of them (parallel).  The
 * attempt deadline is set before sending: a send can fail at once and
 * move the query on, or end it.
 */
static void
query_ask(struct state *st, struct query *q)
{
	uint32_t seq = q->seq;
	int pos;

	fifo_push(st, q, F_ATTEMPT,
	    time_after(st->now, (uint64_t)st->timeout_ms));
	while ((pos = policy_ask(&q->pol)) >= 0) {
		q->asking = pos;
		if (q->tcp) {
			upstream_send_tcp(st, q, pos);
		} else {
			query_set_state(st, q, Q_UDP);
			upstream_send_udp(st, q, pos);
		}
		if (!q->pol.parallel || q->state == Q_FREE || q->seq != seq)
			break;
	}
}

/* q's negative buffer: a kept negative, or its answer on the done list. */
static uint8_t *
query_neg(struct state *st, struct query *q)
{
	return st->negbuf + (size_t)slot_of(st, q) * NEG_MAX;
}

/*
 * The done list: queries whose clients are owed an answer (enum owed), in
 * the order they finished.  The engine only puts them there; the client
 * part (clients_drain()) gives each client its answer in its own way
 * (UDP, TCP) after every event and every timer run, then frees the
 * finished ones.  An answer on the list stays put until then: in the
 * query's own negative buffer or TCP buffer, never in a buffer the next
 * read reuses (done_keep()).
 */

/*
 * Put q on the done list, owing its client what: buf (len bytes, r; our
 * EDE ede or -1).  release: q is finished (query_finish() now), and freed
 * once its client has its answer.  A query on the list already (a leader
 * owed a stale answer) now owes what it is given last.
 */
static void
done_push(struct state *st, struct query *q, enum owed what,
    const uint8_t *buf, size_t len, const struct dns_reply *r, int ede,
    const char *how, bool release)
{
	if (!q->ondone) {
		list_add(&st->done, QUERY_LINKS(st, dl), slot_of(st, q), false);
		q->ondone = true;
	}
	q->owed = (int8_t)what;
	q->ans = buf;
	q->anslen = (uint32_t)len;
	if (r != NULL)
		q->ansr = *r;
	q->owe_ede = (int8_t)ede;
	if (log_level >= 2)	/* how may be the caller's own buffer */
		snprintf(q->how, sizeof(q->how), "%s", how);
	if (release) {
		q->release = true;
		query_finish(st, q);
	}
}

/*
 * Where q's answer buf (*len bytes, then r->ede_len) can wait for the
 * drain: a buffer the next read reuses (an upstream datagram, the stale
 * answer) is copied into q's negative buffer, which a finished query no
 * longer needs; cut to NEG_MAX (a cut answer says TC).
 */
static const uint8_t *
done_keep(struct state *st, struct query *q, const uint8_t *buf,
    size_t *len, struct dns_reply *r)
{
	uint8_t *keep = query_neg(st, q);

	if (buf == keep || (q->tbuf >= 0 && buf == st->tbuf[q->tbuf] + 2))
		return buf;
	if (*len + r->ede_len > NEG_MAX) {
		r->ede_len = 0;		/* a cut answer says TC, no EDE */
		if (*len > NEG_MAX) {
			/* header and question kept: all a cut answer has */
			memcpy(keep, buf, NEG_MAX);
			r->opt = 0;	/* none here: dns_keep_ede() */
			*len = dns_truncate(keep, *len, NEG_MAX, r);
			return keep;
		}
	}
	memcpy(keep, buf, *len + r->ede_len);
	return keep;
}

/*
 * The stale answer kept for q, into st->stalebuf, if its upstream is on
 * q's list still (an answer from the last network's upstreams is never
 * served, stale or not, once the list moved on); its length, 0 for none.
 */
static size_t
query_stale_get(struct state *st, const struct query *q, struct dns_reply *r)
{
	uint16_t srcs[MAX_UPSTREAMS];
	int k, n = q->list != NULL ? q->list->n : 0;

	if (q->d64)	/* asking A for an AAAA client: no stale A for it */
		return 0;
	for (k = 0; k < n; k++)
		srcs[k] = q->list->u[k].tag;
	return cache_get_stale(&st->cache, &q->dq, q->out + 2, st->stalebuf,
	    STALE_BUF, st->now, r, srcs, n);
}

/*
 * q waited STALE_WAIT_MS: its followers end with the stale answer buf
 * (Extended DNS Error 3 to EDNS clients), and its own client is owed it
 * (fetched again when it is given: q goes on, and its answer refreshes
 * the entry).
 */
static void
query_stale(struct state *st, struct query *q, const uint8_t *buf,
    size_t len, const struct dns_reply *r)
{
	struct dns_reply kr;
	const uint8_t *b;
	struct query *f;
	int32_t i, next;
	size_t n;

	stale_remove(st, q);
	for (i = q->follow; i >= 0; i = next) {
		f = &st->q[i];
		next = f->follow;
		f->follow = f->leader = -1;
		kr = *r;
		n = len;
		b = done_keep(st, f, buf, &n, &kr);
		done_push(st, f, OWED_ANSWER, b, n, &kr, EDE_STALE, "stale",
		    true);
	}
	q->follow = -1;
	if (!q->replied) {
		q->replied = true;
		done_push(st, q, OWED_STALE, NULL, 0, NULL, EDE_STALE, "stale",
		    false);
	}
}

/*
 * q ends: its client and every follower are owed buf (no OPT; len bytes,
 * described by r), or the stale answer, or SERVFAIL when there is none.
 */
static void
query_done(struct state *st, struct query *q, const uint8_t *buf,
    size_t len, const struct dns_reply *r, const char *how)
{
	bool stale_owed = q->ondone && q->owed == OWED_STALE;
	enum owed what = OWED_SERVFAIL;
	struct dns_reply sr, kr;
	struct query *f;
	int32_t i, next;
	int ede = -1;
	size_t n;

	/* no answer at all: the stale one, if kept (RFC 8767) */
	if (buf == NULL && (n = query_stale_get(st, q, &sr)) != 0) {
		buf = st->stalebuf;
		len = n;
		r = &sr;
		ede = EDE_STALE;
		how = "stale";
	}
	if (buf != NULL) {
		kr = *r;
		buf = done_keep(st, q, buf, &len, &kr);
		r = &kr;
		what = OWED_ANSWER;
	} else {	/* why, for the leader's client and its followers */
		ede = q->list == NULL ? EDE_NOT_READY : q->neterr ?
		    EDE_NET_ERROR : EDE_NO_REACH;
	}
	for (i = q->follow; i >= 0; i = next) {
		f = &st->q[i];
		next = f->follow;
		f->follow = f->leader = -1;
		if (buf != NULL && (r->flags & DNS_TC) && f->cl.tcp &&
		    !q->tcp) {
			/* a cut UDP answer: the TCP client gets its own */
			query_start(st, f);
			continue;
		}
		if (ede != EDE_STALE)
			st->stats.coalesced++;
		done_push(st, f, what, buf, len, r, ede, how, true);
	}
	q->follow = -1;
	if (q->replied && !stale_owed)	/* its client had the stale answer */
		what = OWED_NONE;
	done_push(st, q, what, buf, len, r, ede, how, true);
}

/* Start forwarding q on its rule's list or the default one (or hold). */
static void
query_start(struct state *st, struct query *q)
{
	struct ulist *l = st->deflist;
	int live;

	if (q->route == -2) {	/* held; its rule turned local meanwhile */
		query_done(st, q, NULL, 0, NULL, "rules changed");
		return;
	}
	if (q->route >= 0 && st->rlist[q->route] != NULL)
		l = st->rlist[q->route];
	if (l == NULL || l->n == 0) {
		if (st->following && q->state != Q_HELD) {
			query_set_state(st, q, Q_HELD);
			st->stats.held++;
			fifo_push(st, q, F_HELD, hold_deadline(st->now));
			return;
		}
		query_done(st, q, NULL, 0, NULL, "no upstream");
		return;
	}
	fifo_remove(st, q);
	q->list = l;
	l->refs++;
	live = policy_order(l->u, l->n, q->order);
	/* TCP clients are forwarded one connection at a time */
	policy_start(&q->pol, l->n, live, st->parallel && !q->tcp);
	if (q->pol.live < q->pol.n)
		probe_send(st, q);
	query_ask(st, q);
}

/*
 * DNS64 (RFC 6147 5.1): q's AAAA question has no AAAA (NODATA, or only
 * excluded ones) and its client did not set CD: keep that answer (the
 * negative buffer), and ask the same list for A.  Until the A answer,
 * q's question is the A one (so an identical AAAA question starts its
 * own exchange rather than join this one).
 */
static bool
dns64_start(struct state *st, struct query *q, const uint8_t *buf,
    size_t len, const struct dns_reply *r)
{
	if (!st->dns64 || q->d64 || q->dq.qtype != TYPE_AAAA ||
	    q->dq.qclass != CLASS_IN || (q->dq.flags & DNS_CD) ||
	    r->rcode != RCODE_NOERROR || (r->class == REPLY_POSITIVE &&
	    dns64_usable(buf, len)) || len > NEG_MAX)
		return false;
	memcpy(query_neg(st, q), buf, len);
	q->neglen = (uint16_t)len;
	q->negede = 0;
	q->d64 = true;
	q->d64_ttl = r->class == REPLY_NEGATIVE && r->neg_ttl >= 0 ?
	    (uint32_t)r->neg_ttl : 600;
	query_let_go(st, q);
	q->failed = q->neterr = false;
	q->reasked = 0;
	q->spoofs = 0;
	q->dq.qtype = TYPE_A;
	put_u16(q->out + 2 + DNS_HDR + q->dq.qname_len, TYPE_A);
	query_start(st, q);
	return true;
}

/*
 * DNS64, the A question answered (buf; NULL: negative or failed): the
 * AAAA made from it, or the AAAA answer kept.  Returns the answer to
 * give, in st->d64buf or q's negative buffer; q's question is AAAA again.
 */
static size_t
dns64_end(struct state *st, struct query *q, const uint8_t *buf,
    size_t len, struct dns_reply *r, const uint8_t **out)
{
	size_t n = 0;

	q->dq.qtype = TYPE_AAAA;
	put_u16(q->out + 2 + DNS_HDR + q->dq.qname_len, TYPE_AAAA);
	q->d64 = false;
	if (buf != NULL)
		n = dns64_synth(buf, len, query_neg(st, q), q->neglen,
		    st->d64_prefix, st->d64_len, q->d64_ttl, st->d64buf,
		    DNS_MAX_TCP);
	*out = n != 0 ? st->d64buf : query_neg(st, q);
	n = n != 0 ? n : q->neglen;
	dns_parse_reply(*out, n, &q->dq, r);
	return n;
}

/*
 * The upstream at position pos gave buf: cache it when it may be kept,
 * then answer everyone waiting for it.
 */
static void
query_answer(struct state *st, struct query *q, const uint8_t *buf,
    size_t len, const struct dns_reply *r, int pos)
{
	char how[80] = "upstream";
	struct dns_reply cr = *r, dr;
	int64_t cap;
	int k;

	if (dns64_start(st, q, buf, len, r))
		return;
	if (q->d64) {	/* the A answer: cached as one, then the AAAA */
		if (q->gen == st->generation && r->class == REPLY_POSITIVE)
			cache_put(&st->cache, &q->dq, buf, len, &cr, st->now);
		len = dns64_end(st, q, r->class == REPLY_POSITIVE ? buf : NULL,
		    len, &dr, &buf);
		r = &dr;
		cr = dr;
	}
	/*
	 * A negative formed while upstreams of the list were down (and not
	 * asked) is kept no longer than the shortest of their backoffs: one
	 * of them may know the name when it is back.
	 */
	for (k = q->pol.live; r->class == REPLY_NEGATIVE && k < q->pol.n;
	    k++) {
		cap = q->list->u[q->order[k]].backoff / 1000;
		if (cr.neg_ttl > cap)
			cr.neg_ttl = cap;
	}
	/*
	 * Not kept: an answer from before the list changed (it would outlive
	 * the flush), or a negative when an upstream failed (RFC 2308).
	 */
	if (q->gen == st->generation && (r->class == REPLY_POSITIVE ||
	    !q->failed))
		cache_put(&st->cache, &q->dq, buf, len, &cr, st->now);
	if (log_level >= 2)
		addr_text(&q->list->u[q->order[pos]].addr, '#', how,
		    sizeof(how));
	query_done(st, q, buf, len, r, how);
}

/*
 * The attempt at pos ended with a reply of class c (buf, len, r; OPT
 * removed), or with REPLY_FAILURE and no reply.  Its socket is closed.
 */
static void
query_event(struct state *st, struct query *q, int pos, enum reply_class c,
    uint8_t *buf, size_t len, struct dns_reply *r)
{
	struct dns_reply nr;
	enum policy_act act;
	bool keep;

	if (c == REPLY_FAILURE)
		q->failed = true;
	act = policy_event(&q->pol, pos, c == REPLY_FAILURE && buf == NULL ?
	    NULL : r, q->list->u[q->order[pos]].final, &keep);
	if (act == ACT_ANSWER || (act == ACT_NEGATIVE && keep)) {
		query_answer(st, q, buf, len, r, pos);
		return;
	}
	if (q->d64) {	/* DNS64's A: no negative of its own is kept */
		if (act == ACT_NEGATIVE || act == ACT_SERVFAIL) {
			len = dns64_end(st, q, NULL, 0, &nr, (const uint8_t **)
			    (void *)&buf);
			query_done(st, q, buf, len, &nr, "dns64: no A");
		} else if (act == ACT_NEXT)
			query_ask(st, q);
		return;
	}
	if (keep) {		/* the negative to fall back on, for now */
		if (len + r->ede_len > NEG_MAX) {
			len = dns_truncate(buf, len, NEG_MAX, r);
			r->ede_len = 0;		/* a cut answer says TC */
		}
		memcpy(query_neg(st, q), buf, len + r->ede_len);
		q->neglen = (uint16_t)len;
		q->negede = r->ede_len;
	}
	switch (act) {
	case ACT_NEXT:
		query_ask(st, q);
		break;
	case ACT_NEGATIVE:
		dns_parse_reply(query_neg(st, q), q->neglen, &q->dq, &nr);
		nr.ede_len = q->negede;
		nr.src = q->list->u[q->order[q->pol.neg]].tag;
		query_answer(st, q, query_neg(st, q), q->neglen, &nr,
		    q->pol.neg);
		break;
	case ACT_SERVFAIL:
		query_done(st, q, NULL, 0, NULL, "all upstreams failed");
		break;
	case ACT_WAIT:
	case ACT_ANSWER:
		break;
	}
}

/* The attempt at pos got the reply buf (checked: ours, from its upstream). */
static void
upstream_reply(struct state *st, struct query *q, int pos, uint8_t *buf,
    size_t len, struct dns_reply *r)
{
	struct upstream *u = &q->list->u[q->order[pos]];

	static const uint32_t bound[UP_HIST - 1] = UP_HIST_MS;
	uint64_t d = st->now - q->start - q->sent_ms[pos];
	int b;

	attempt_end(st, q, pos, true);
	u->answers++;
	for (b = 0; b < UP_HIST - 1 && d > bound[b]; b++)
		;
	u->hist[b]++;
	u->dur_ms += d;
	upstream_health(st, q->list, q->order[pos], true);
	if (r->end != 0 && len > r->end)
		len = r->end;	/* junk past the last record: never passed on */
	len = dns_keep_ede(buf, len, r);
	if (st->ttl_capped)	/* no TTL handed out above --max-cache-ttl */
		dns_cap_ttls(buf, len, st->ttl_cap);
	r->src = u->tag;
	query_event(st, q, pos, r->class, buf, len, r);
}

/*
 * A spoofing flood at the port of q's attempt at pos (SPOOF_REPLIES
 * replies that failed the checks): the port is known to someone who is
 * guessing IDs.  The attempt's socket goes, and the same upstream is
 * asked again over TCP (as PowerDNS Recursor does), as is every later
 * upstream of this query: an off-path attacker cannot inject into TCP.
 * With --parallel the other attempts are on UDP still: this one ends as
 * a failure instead, and the upstream is not marked down.
 */
static void
upstream_spoofed(struct state *st, struct query *q, int pos)
{
	struct upstream *u = &q->list->u[q->order[pos]];
	uint32_t quiet;
	char a[80];

	st->stats.spoof_floods++;
	if (rate_say(&st->spoof_rate, st->now, RATE_MS, 1, &quiet))
		logmsg(0, "upstream %s: %d replies with a wrong ID or question "
		    "for one query: a spoofing flood? %s (said once a minute, "
		    "%u more since)", addr_text(&u->addr, '#', a, sizeof(a)),
		    SPOOF_REPLIES, q->pol.parallel ? "that attempt failed" :
		    "asked again over TCP", quiet);
	attempt_close(st, q, pos);
	if (q->pol.parallel) {
		q->failed = true;
		query_event(st, q, pos, REPLY_FAILURE, NULL, 0, NULL);
		return;
	}
	q->tcp = true;
	q->asking = pos;
	fifo_remove(st, q);	/* TCP gets a whole timeout */
	fifo_push(st, q, F_ATTEMPT,
	    time_after(st->now, (uint64_t)st->timeout_ms));
	upstream_send_tcp(st, q, pos);
}

/*
 * Datagrams on the socket of q's attempt at pos.  The kernel let through
 * only the upstream's address and port; the ID and question must be ours
 * too (RFC 5452 9.1).  Anything else is read and dropped: it cannot fill
 * the socket.  The buffer takes any datagram, so an answer larger than
 * we asked for is cut for the client (TC), never lost.
 */
static void
upstream_udp_read(struct state *st, struct query *q, int pos)
{
	struct dns_reply r;
	uint16_t id, flags;
	ssize_t n;
	bool have;
	int i;

	for (i = 0; i < 4; i++) {
		n = recv(q->fd[pos], st->ubuf, DNS_MAX_TCP, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			upstream_error(st, q, pos, errno);
			return;
		}
		/*
		 * Our own query back: an upstream on a port of this host's
		 * ephemeral range can be handed that very port as our
		 * source, and a socket connected to itself hears itself,
		 * never the ICMP error.  The port is as good as closed.
		 */
		have = dns_peek_header(st->ubuf, (size_t)n, &id, &flags);
		if (have && id == q->wire_id[pos] && !(flags & DNS_QR)) {
			upstream_error(st, q, pos, ECONNREFUSED);
			return;
		}
		if (!have || id != q->wire_id[pos] ||
		    dns_parse_reply(st->ubuf, (size_t)n, &q->dq, &r) ==
		    REPLY_FOREIGN) {
			st->stats.unmatched++;
			if (++q->spoofs < SPOOF_REPLIES)
				continue;
			upstream_spoofed(st, q, pos);
			return;
		}
		upstream_reply(st, q, pos, st->ubuf, (size_t)n, &r);
		return;
	}
}

/* q's TCP attempt is writable (connected) or readable. */
static void
upstream_tcp_io(struct state *st, struct query *q, uint32_t ev)
{
	struct epoll_event e;
	struct dns_reply r;
	uint8_t *b = st->tbuf[q->tbuf];
	int pos = q->asking, fd = q->fd[pos], err = 0;
	socklen_t el = sizeof(err);
	size_t need;
	ssize_t n;

	if (q->state == Q_TCP_WRITE) {
		if (ev & (EPOLLERR | EPOLLHUP)) {
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
			goto fail;
		}
		n = write(fd, q->out + q->done, 2u + q->len - q->done);
		if (n == -1) {
			err = errno;
			if (err == EAGAIN || err == EINTR)
				return;
			goto fail;
		}
		q->done += (uint32_t)n;
		if (q->done < 2u + q->len)
			return;
		q->done = 0;
		query_set_state(st, q, Q_TCP_READ);
		e.events = EPOLLIN;
		e.data.u64 = token_make(TK_ATTEMPT, slot_of(st, q), pos, q->seq);
		if (epoll_ctl(st->ep, EPOLL_CTL_MOD, fd, &e) == -1) {
			err = errno;
			goto fail;
		}
		return;
	}
	need = q->done < 2 ? 2 : 2 + (size_t)get_u16(b);
	n = read(fd, b + q->done, need - q->done);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		err = n == 0 ? ECONNRESET : errno;
		goto fail;
	}
	q->done += (uint32_t)n;
	if (q->done == 2 && get_u16(b) < DNS_HDR) {
		err = EPROTO;
		goto fail;
	}
	if (q->done < 2 || q->done < 2 + (size_t)get_u16(b))
		return;
	dns_parse_reply(b + 2, q->done - 2, &q->dq, &r);
	if (r.class == REPLY_FOREIGN || r.id != q->wire_id[pos]) {
		st->stats.unmatched++;
		err = EPROTO;
		goto fail;
	}
	upstream_reply(st, q, pos, b + 2, q->done - 2, &r);
	return;
fail:
	upstream_error(st, q, pos, err != 0 ? err : ECONNRESET);
}

/* The attempts of q timed out: each marks its upstream down. */
static void
expire_attempt(struct state *st, struct query *q)
{
	uint32_t pending = q->pol.pending, seq = q->seq;
	struct upstream *u;
	char a[80];
	int pos;

	fifo_remove(st, q);	/* query_ask() puts it back if it goes on */
	for (pos = 0; pos < q->pol.n; pos++) {
		if (!(pending & (1u << pos)))
			continue;
		if (q->state == Q_FREE || q->seq != seq)
			return;
		attempt_close(st, q, pos);
		u = &q->list->u[q->order[pos]];
		u->timeouts++;
		upstream_health(st, q->list, q->order[pos], false);
		if (log_level >= 2)
			logmsg(2, "upstream %s: timed out; down for %u ms",
			    addr_text(&u->addr, '#', a, sizeof(a)), u->backoff);
		query_event(st, q, pos, REPLY_FAILURE, NULL, 0, NULL);
	}
	/* every attempt answered for: a query left waiting on nothing ends */
	if (q->state != Q_FREE && q->seq == seq && q->fifo < 0)
		query_done(st, q, NULL, 0, NULL, "all upstreams failed");
}

/*
 * ######## Part 3. Clients ################################################
 * Owns: the UDP and TCP listeners' clients: reading queries, who may ask,
 * TCP connections (framing, pipelining, idle and slow limits), and
 * answering, UDP in sendmmsg batches, TCP framed.  Calls: Parts 1-2 (a
 * query enters the engine through query_enter()).  Promises: every client
 * owed an answer gets exactly one (clients_drain() after every event and
 * every timer run); a closed connection's queries are cancelled.  Its
 * deadlines: conns_next() / conns_due().
 */

/* ==== 23. Client output ================================================== */
/*
 * Every upstream socket and TCP client sits in one epoll set, which sits
 * in the pollfd array as one descriptor: ppoll() cost does not grow with
 * the queries in flight.  Answers to UDP clients leave in sendmmsg
 * batches; TCP clients get framed answers in the order they complete
 * (RFC 7766 6.2.1.1).
 */

static void
batch_add(struct batch *b, int fd, const struct sockaddr *to, socklen_t tolen,
    void *data, size_t len)
{
	struct mmsghdr *m = &b->msg[b->n];

	b->fd = fd;
	memcpy(&b->to[b->n], to, tolen);
	b->iov[b->n].iov_base = data;
	b->iov[b->n].iov_len = len;
	memset(m, 0, sizeof(*m));
	m->msg_hdr.msg_name = &b->to[b->n];
	m->msg_hdr.msg_namelen = tolen;
	m->msg_hdr.msg_iov = &b->iov[b->n];
	m->msg_hdr.msg_iovlen = 1;
	b->n++;
}

static void
batch_flush(struct state *st)
{
	struct batch *b = &st->cli;
	int i = 0, r;

	while (i < b->n) {
		r = sendmmsg(b->fd, b->msg + i, (unsigned)(b->n - i), 0);
		if (r > 0) {
			i += r;
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		st->stats.send_err++;
		if (r == -1 && errno == EAGAIN)
			break;
		i++;
	}
	b->n = 0;
}

static void
conn_fifo_remove(struct state *st, struct conn *c)
{
	if (c->fifo < 0)
		return;
	list_unlink(&st->cfifo[c->fifo], CONN_LINKS(st, fl),
	    (int32_t)(c - st->conn));
	c->fifo = -1;
}

/* c waits on FIFO which (C_IDLE, C_MSG), at its tail, deadline set. */
static void
conn_fifo_push(struct state *st, struct conn *c, int which)
{
	conn_fifo_remove(st, c);
	c->deadline = tcp_deadline((enum tcp_phase)which, st->now);
	c->fifo = (int8_t)which;
	list_add(&st->cfifo[which], CONN_LINKS(st, fl),
	    (int32_t)(c - st->conn), false);
}

/*
 * Activity between whole messages: the idle time starts again.  A
 * message in progress keeps its deadline: bytes that trickle in do not
 * extend it.
 */
static void
conn_touch(struct state *st, struct conn *c)
{
	if (c->fifo != C_MSG)
		conn_fifo_push(st, c, C_IDLE);
}

/*
 * Queries connection c may have in flight: at most TCP_PIPELINE, and at
 * most half of the upstream TCP buffers that others do not hold, so that
 * however many queries one connection sends, the next connection still
 * finds buffers (each newcomer gets half of what is left).
 */
static int
conn_pipeline(const struct state *st, const struct conn *c)
{
	int share = (st->nfreetbuf + c->inflight) / 2;

	if (share < 1)
		share = 1;
	return share < TCP_PIPELINE ? share : TCP_PIPELINE;
}

/*
 * Wait for what c can act on, and nothing else: reading while it may send
 * more queries, writing while answers wait.  A half-closed client with
 * queries in flight waits for nothing, so it cannot make ppoll() spin.
 */
static void
conn_arm(struct state *st, struct conn *c)
{
	struct epoll_event ev;
	uint32_t want = 0;

	if (!c->eof && c->inflight < conn_pipeline(st, c))
		want |= EPOLLIN;
	if (c->wpos < c->wlen)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.u64 = token_make(TK_CONN, (int)(c - st->conn), 0, c->gen);
	if (epoll_ctl(st->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/* Every slot of from at the tail of to, in order; from is empty after. */
static void
list_splice(struct list *to, struct list *from, struct links t)
{
	if (from->head < 0)
		return;
	link_at(t, from->head)->prev = to->tail;
	if (to->tail >= 0)
		link_at(t, to->tail)->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	*from = LIST_EMPTY;
}

/*
 * Close c.  Its queries in flight are moved to the orphan list and
 * cancelled at the start of the next loop pass, not here: conn_close()
 * may run while a leader hands its answer to its followers.
 */
static void
conn_close(struct state *st, struct conn *c)
{
	int32_t i;

	for (i = c->queries.head; i >= 0; i = st->q[i].ql.next)
		st->q[i].clist = CL_ORPHAN;
	list_splice(&st->orphans, &c->queries, QUERY_LINKS(st, ql));
	conn_fifo_remove(st, c);
	source_put(st, &c->src, SRC_CONNS);
	close(c->fd);		/* leaves the epoll set with it */
	c->fd = -1;
	st->nconn--;
	c->gen++;		/* its queries in flight now answer nobody */
	c->fl.next = st->freeconn;
	st->freeconn = (int32_t)(c - st->conn);
}

/* Write what is queued; false when c was closed. */
static bool
conn_write(struct state *st, struct conn *c)
{
	ssize_t n;

	while (c->wpos < c->wlen) {
		n = write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_close(st, c);
			return false;
		}
		c->wpos += (uint32_t)n;
	}
	if (c->wpos == c->wlen) {
		c->wpos = c->wlen = 0;
		if (c->eof && c->inflight == 0) {
			conn_close(st, c);
			return false;
		}
	}
	conn_arm(st, c);
	return true;
}

/* Queue one framed answer on c; a client that reads nothing is closed. */
static void
conn_send(struct state *st, struct conn *c, const uint8_t *buf, size_t len)
{
	if (c->wpos > 0 && c->wlen + 2 + len > TCP_WBUF) {
		memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
		c->wlen -= c->wpos;
		c->wpos = 0;
	}
	if (c->wlen + 2 + len > TCP_WBUF) {
		st->stats.send_err++;
		conn_close(st, c);
		return;
	}
	put_u16(c->wbuf + c->wlen, (uint16_t)len);
	memcpy(c->wbuf + c->wlen + 2, buf, len);
	c->wlen += 2 + (uint32_t)len;
	conn_touch(st, c);
	conn_write(st, c);
}

/* The list TCP query q is on. */
static struct list *
conn_qlist(struct state *st, const struct query *q)
{
	return q->clist == CL_ORPHAN ? &st->orphans :
	    &st->conn[q->cl.origin].queries;
}

/* A new TCP query q joins its connection's list, counted in flight. */
static void
conn_query_take(struct state *st, struct query *q)
{
	st->conn[q->cl.origin].inflight++;
	q->clist = CL_CONN;
	list_add(&st->conn[q->cl.origin].queries, QUERY_LINKS(st, ql),
	    slot_of(st, q), false);
}

static void
conn_query_unlink(struct state *st, struct query *q)
{
	if (q->clist < 0)
		return;
	list_unlink(conn_qlist(st, q), QUERY_LINKS(st, ql), slot_of(st, q));
	q->clist = -1;
}

/* TCP query q ended: its client may read again, or close once drained. */
static void
conn_query_done(struct state *st, struct query *q)
{
	struct conn *c = &st->conn[q->cl.origin];

	conn_query_unlink(st, q);
	if (c->gen != q->cl.gen || c->fd < 0)
		return;
	c->inflight--;
	if (c->eof && c->inflight == 0 && c->wpos == c->wlen)
		conn_close(st, c);
	else
		conn_arm(st, c);
}

/* Send a finished answer (dns_finish() made it fit) to a client. */
static void
client_send(struct state *st, const struct client *cl, const uint8_t *buf,
    size_t len)
{
	struct conn *c;
	int fd;

	if (len >= DNS_HDR)
		st->stats.rcode[buf[3] & 0x0f]++;
	if (cl->tcp) {
		c = &st->conn[cl->origin];
		if (c->fd >= 0 && c->gen == cl->gen)
			conn_send(st, c, buf, len);
		return;
	}
	if (len > DNS_MAX_UDP)
		return;		/* dns_finish() cut it to the client's size */
	if (st->lis[cl->origin].gen != cl->gen ||
	    (fd = st->lis[cl->origin].udp) < 0)
		return;		/* its listener closed: the namespace went */
	if (st->cli.n == BATCH || (st->cli.n > 0 && st->cli.fd != fd))
		batch_flush(st);
	memcpy(st->cli.buf[st->cli.n], buf, len);
	batch_add(&st->cli, fd, &cl->addr.sa, cl->addrlen,
	    st->cli.buf[st->cli.n], len);
}

/* The -v line: client, name, type, how answered, RCODE, milliseconds. */
static void
query_log(struct state *st, const struct client *cl,
    const struct dns_query *dq, const char *how, int rcode, uint64_t start)
{
	char who[80], name[DNS_MAX_NAME * 4 + 1], tb[16], tmb[48];
	const char *clock;
	struct timespec ts;
	struct addr a;
	long day;

	if (log_level < 2)
		return;
	memcpy(&a.ss, &cl->addr.ss, sizeof(a.ss));
	a.len = cl->addrlen;
	addr_text(&a, '#', who, sizeof(who) - 4);
	if (cl->tcp)
		strcat(who, "/tcp");
	dns_name_text(dq->qname, name, sizeof(name));
	clock = "";
	if (log_time && clock_gettime(CLOCK_REALTIME, &ts) == 0) {
		day = (long)(ts.tv_sec % 86400);	/* UTC: no zone files */
		snprintf(tmb, sizeof(tmb), "%02ld:%02ld:%02ld.%03ld ", day / 3600,
		    day / 60 % 60, day % 60, ts.tv_nsec / 1000000);
		clock = tmb;
	}
	logmsg(2, "%s%s %s %s: %s %s %llu ms", clock, who, name,
	    dns_type_name(dq->qtype, tb, sizeof(tb)), how,
	    dns_rcode_name(rcode), (unsigned long long)(st->now - start));
}

/*
 * Answer a client's query (its bytes in query, checked into dq) with
 * rcode and no records: the one way every error reply is made.
 */
static void
client_error(struct state *st, const struct client *cl, const uint8_t *query,
    const struct dns_query *dq, int rcode, int ede, const char *how,
    uint64_t start)
{
	size_t n;

	n = dns_build_error(st->scratch, sizeof(st->scratch), query, dq,
	    rcode, ede);
	dns_hdr_set(st->scratch, HDR_ID, dq->id);
	client_send(st, cl, st->scratch, n);
	if (rcode == RCODE_SERVFAIL)
		st->stats.servfail++;
	query_log(st, cl, dq, how, rcode, start);
}

/*
 * Send the answer in buf (no OPT; len bytes, described by r), to the
 * client of dq, whose own query bytes are in query: its ID, its spelling
 * of the name, an OPT made for it, cut to what it can take.
 */
static void
client_answer(struct state *st, const struct client *cl, const uint8_t *query,
    const struct dns_query *dq, const uint8_t *buf, size_t len,
    const struct dns_reply *r, int ede)
{
	uint8_t *out = st->scratch;
	struct dns_reply fr;
	size_t limit, n;

	if (len > DNS_MAX_TCP)
		len = DNS_MAX_TCP;
	if (st->filter_aaaa && (n = dns_filter_aaaa(buf, len, st->fbuf,
	    DNS_MAX_TCP)) != 0 && dns_parse_reply(st->fbuf, n, dq, &fr) !=
	    REPLY_FOREIGN) {
		/* the same answer but its AAAA: its EDEs follow it again */
		memcpy(st->fbuf + n, buf + len, r->ede_len);
		fr.ede = r->ede;
		fr.ede_len = r->ede_len;
		fr.verdict = r->verdict;
		fr.src = r->src;
		buf = st->fbuf;
		len = n;
		r = &fr;
	}
	if (out != buf)		/* the answer and its EDEs after it */
		memmove(out, buf, len + r->ede_len);
	dns_hdr_set(out, HDR_ID, dq->id);
	if (r->qend != 0)	/* 0x20: the client's own case */
		memcpy(out + DNS_HDR, query + DNS_HDR, dq->qname_len);
	limit = cl->tcp ? DNS_MAX_TCP : dq->udp_size < DNS_MAX_UDP ?
	    dq->udp_size : DNS_MAX_UDP;
	len = dns_finish(out, len, sizeof(st->scratch), r, dq, limit, ede);
	client_send(st, cl, out, len);
}

/* ==== 24. Intake: a client's query ======================================= */
/*
 * A listener is a UDP and a TCP socket on one address.  UDP queries come
 * in recvmmsg batches.  A TCP client may pipeline up to TCP_PIPELINE
 * queries.  Every query, UDP or TCP, goes the same way: parse, local
 * answer, cache, then the in-flight table (join an identical question, or
 * lead a new exchange).
 */

/*
 * A CHAOS question: dnsmasq's statistics names and version.bind answered
 * (one TXT record; servers.bind one string per upstream of the default
 * list, "ADDR#PORT QUERIES FAILED"), any other NOTIMP, as dnsmasq does.
 */
static void
chaos_answer(struct state *st, const struct client *cl, const uint8_t *buf,
    const struct dns_query *dq)
{
	const struct ulist *l = st->deflist;
	char text[MAX_UPSTREAMS][96], a[80];
	const char *s[MAX_UPSTREAMS];
	struct cache_stats cs;
	uint64_t v = 0;
	int k = chaos_name(dq), i, n = 1;
	size_t len;

	if (k < 0) {
		client_error(st, cl, buf, dq, RCODE_NOTIMP, -1, "CHAOS",
		    st->now);
		return;
	}
	cache_stats(&st->cache, &cs);
	v = k == CH_CACHESIZE ? (uint64_t)cs.size : k == CH_INSERTIONS ?
	    cs.inserts : k == CH_EVICTIONS ? cs.evictions : k == CH_MISSES ?
	    cs.misses : k == CH_HITS ? cs.hits : 0;
	if (k == CH_VERSION)
		snprintf(text[0], sizeof(text[0]), "dnsfwd %s", VERSION);
	else
		snprintf(text[0], sizeof(text[0]), "%llu",
		    (unsigned long long)v);
	if (k == CH_SERVERS)
		for (n = 0; l != NULL && n < l->n; n++)
			snprintf(text[n], sizeof(text[n]), "%s %u %u",
			    addr_text(&l->u[n].addr, '#', a, sizeof(a)),
			    l->u[n].sent, l->u[n].timeouts + l->u[n].errors);
	for (i = 0; i < n; i++)
		s[i] = text[i];
	st->stats.local++;
	len = dns_build_txt(st->scratch, sizeof(st->scratch), buf, dq, s, n);
	if (len == 0)
		client_error(st, cl, buf, dq, RCODE_SERVFAIL, -1, "CHAOS",
		    st->now);
	else {
		client_send(st, cl, st->scratch, len);
		query_log(st, cl, dq, "CHAOS", RCODE_NOERROR, st->now);
	}
}

/*
 * Answer dq from a -H file or a local rule (they win over forwarding).
 * Otherwise set *route to the rule that routes it (-1: default list).
 */
static bool
query_local(struct state *st, const struct client *cl, const uint8_t *buf,
    const struct dns_query *dq, int *route)
{
	struct local_answer a;
	const char *how = "hosts";
	size_t n;
	int i;

	*route = -1;
	if (dq->qclass == CLASS_CH) {	/* never forwarded */
		chaos_answer(st, cl, buf, dq);
		return true;
	}
	for (i = 0; i < MAX_HOSTS; i++)
		if (hosts_lookup(&st->hosts[i], dq, &a))
			goto answer;
	*route = route_match(&st->routes, dq->qname);
	/* special-use names, unless a rule names them (not /#/) */
	if ((*route < 0 || route_at(&st->routes, *route)->name_len <= 1) &&
	    special_answer(dq, &a)) {
		how = "special-use name";
		goto answer;
	}
	/* --bogus-priv, --domain-needed: unless a rule names them (not /#/) */
	if ((*route < 0 || route_at(&st->routes, *route)->name_len <= 1) &&
	    ((st->bogus_priv && bogus_priv_name(dq->qname)) ||
	    (st->domain_needed && domain_needed_name(dq)))) {
		a.n = 0;
		a.rcode = RCODE_NXDOMAIN;
		how = st->domain_needed && domain_needed_name(dq) ?
		    "domain-needed" : "bogus-priv";
		goto answer;
	}
	if (st->dns64 && (*route < 0 || route_at(&st->routes,
	    *route)->name_len <= 1) && dns64_ptr(dq, st->d64_prefix,
	    st->d64_len, &a)) {
		how = "dns64";
		goto answer;
	}
	if (*route < 0 || route_at(&st->routes, *route)->kind != RULE_LOCAL)
		return false;
	route_local(route_at(&st->routes, *route), dq, &a);
	how = "local";
answer:
	st->stats.local++;
	if (st->filter_aaaa && dq->qtype == TYPE_AAAA)
		a.n = 0;	/* hosts, rules, localhost: NODATA too */
	n = dns_build_answer(st->scratch, sizeof(st->scratch), buf, dq, &a,
	    LOCAL_TTL);
	if (n == 0) {
		client_error(st, cl, buf, dq, RCODE_SERVFAIL, -1, how, st->now);
		return true;
	}
	client_send(st, cl, st->scratch, n);
	query_log(st, cl, dq, how, a.rcode, st->now);
	return true;
}

/*
 * The address:port pairs that reach dnsfwd itself in its own namespace:
 * every listener's, and for a wildcard listener every address of the
 * namespace on its port.  Read again before a resolv file is applied, as
 * addresses come and go.
 */
static void
self_refresh(struct state *st)
{
	struct ifaddrs *ifa = NULL, *i;
	const struct listener *l;
	struct addr *a;
	int k;

	st->nself = 0;
	if (getifaddrs(&ifa) == -1)
		ifa = NULL;
	for (k = 0; k < st->nlis; k++) {
		l = &st->lis[k];
		if (l->udp < 0 || st->view[l->view].path != NULL ||
		    st->nself == MAX_SELF)
			continue;
		st->self[st->nself++] = l->addr;
		if (!is_wildcard(&l->addr))
			continue;
		for (i = ifa; i != NULL && st->nself < MAX_SELF;
		    i = i->ifa_next) {
			if (i->ifa_addr == NULL || i->ifa_addr->sa_family !=
			    l->addr.ss.ss_family)
				continue;
			a = &st->self[st->nself++];
			*a = l->addr;	/* the listener's port */
			if (a->ss.ss_family == AF_INET)
				((struct sockaddr_in *)&a->ss)->sin_addr =
				    ((struct sockaddr_in *)(void *)
				    i->ifa_addr)->sin_addr;
			else
				((struct sockaddr_in6 *)&a->ss)->sin6_addr =
				    ((struct sockaddr_in6 *)(void *)
				    i->ifa_addr)->sin6_addr;
		}
	}
	if (ifa != NULL)
		freeifaddrs(ifa);
}

/* Whether a, any port, is one of the addresses in st->self. */
static bool
self_has_host(const struct state *st, const struct addr *a)
{
	struct addr x;
	int i;

	for (i = 0; i < st->nself; i++) {
		x = st->self[i];
		if (x.ss.ss_family != a->ss.ss_family)
			continue;
		if (x.ss.ss_family == AF_INET)
			((struct sockaddr_in *)&x.ss)->sin_port =
			    ((const struct sockaddr_in *)&a->ss)->sin_port;
		else
			((struct sockaddr_in6 *)&x.ss)->sin6_port =
			    ((const struct sockaddr_in6 *)&a->ss)->sin6_port;
		if (addr_equal(&x, (const struct sockaddr *)&a->ss))
			return true;
	}
	return false;
}

/*
 * Drop from a[0..*n) the servers that are dnsfwd itself, saying so (what:
 * "-s", "-f"); a -s that points back would turn one query into a table
 * full of them.
 */
static void
self_skip(struct state *st, struct addr *a, int *n, const char *what)
{
	char t[80];
	int i, k = 0;

	for (i = 0; i < *n; i++) {
		if (policy_is_self(&a[i], st->self, st->nself)) {
			logmsg(0, "%s %s: skipped: it points back at dnsfwd",
			    what, addr_text(&a[i], '#', t, sizeof(t)));
			continue;
		}
		a[k++] = a[i];
	}
	*n = k;
}

/* Whether cl is this host: only it can send dnsfwd's own queries back. */
static bool
client_is_self(struct state *st, const struct client *cl)
{
	struct addr from;

	memcpy(&from.ss, &cl->addr.ss, sizeof(from.ss));
	from.len = cl->addrlen;
	return is_loopback(&from) || self_has_host(st, &from);
}

/*
 * Whether the client at from is the socket fd (its local address and
 * port; an IPv4-mapped address as IPv4).  Only dnsfwd itself sends from
 * its upstream sockets: no other process can bind their ports, and the
 * kernel drops loopback sources that come from outside.
 */
static bool
socket_is(int fd, const struct sockaddr *from)
{
	union sockany me;
	socklen_t len = sizeof(me);
	const uint8_t *a = NULL, *b = NULL;
	int fa, fb;

	if (getsockname(fd, &me.sa, &len) == -1)
		return false;
	fa = acl_key(&me.sa, &a);
	fb = acl_key(from, &b);
	if (fa < 0 || fa != fb || memcmp(a, b, fa ? 16 : 4) != 0)
		return false;
	return (me.sa.sa_family == AF_INET ? me.sin.sin_port :
	    me.sin6.sin6_port) == (from->sa_family == AF_INET ?
	    ((const struct sockaddr_in *)(const void *)from)->sin_port :
	    ((const struct sockaddr_in6 *)(const void *)from)->sin6_port);
}

/*
 * A probe come back: it is looked for before the cache, which may hold
 * the answer to the query the probe copied by the time it loops back.  It
 * must come from the probe's own socket (the ID alone proves nothing).
 */
static bool
probe_is_own(struct state *st, const struct client *cl,
    const struct dns_query *dq)
{
	struct probe *p;
	int k;

	if (st->nprobe == 0 || !client_is_self(st, cl))
		return false;
	for (k = 0; k < MAX_PROBES; k++) {
		p = &st->probes[k];
		if (p->list == NULL || p->id != dq->id ||
		    !question_eq(&p->dq, dq) ||
		    !socket_is(st->us[p->us].fd, &cl->addr.sa))
			continue;
		st->stats.loops++;
		query_log(st, cl, dq, "loop: dnsfwd's own probe, dropped",
		    RCODE_SERVFAIL, st->now);
		probe_end(st, k, false);	/* down it stays */
		return true;
	}
	return false;
}

/*
 * The last line against loops: a query for lead's very question (lead:
 * the query in flight for it, found by the in-flight hash, or NULL) that
 * comes from the socket of one of lead's attempts is that attempt come
 * back (an upstream that points at dnsfwd by a route no rule knew, a NAT
 * that sends it back).  The ID alone proves nothing: any local process
 * can guess it; it only spares the getsockname() for every other query.  The query is dropped, and the attempt ends with a
 * network error (ELOOP: asked again once from a fresh port, then a
 * failure) instead of timing out.  The same for a probe of a down
 * upstream (probe_is_own()): the probe fails, the upstream stays down.
 */
static bool
query_is_own(struct state *st, struct query *lead, const struct client *cl,
    const struct dns_query *dq)
{
	int pos;

	if (lead == NULL || !client_is_self(st, cl))
		return false;
	for (pos = 0; pos < lead->pol.n; pos++) {
		/* its own query carries its ID: only then the syscall */
		if (!(lead->fds & (1u << pos)) ||
		    lead->wire_id[pos] != dq->id ||
		    !socket_is(lead->fd[pos], &cl->addr.sa))
			continue;
		st->stats.loops++;
		query_log(st, cl, dq, "loop: dnsfwd's own query, dropped",
		    RCODE_SERVFAIL, st->now);
		upstream_error(st, lead, pos, ELOOP);
		return true;
	}
	return false;
}

/*
 * A slot for a new query from cl's source, within the source's share of
 * the table (policy_share_ok()); NULL once the client has its REFUSED or
 * SERVFAIL, or when the query was dnsfwd's own come back (query_is_own(),
 * asked only of a query admitted: a refused one changes nothing).
 */
static struct query *
query_admit(struct state *st, const struct client *cl, const uint8_t *buf,
    const struct dns_query *dq, struct query *lead)
{
	struct srclook sl;
	struct query *q;

	source_of(st, &cl->addr.sa, &sl);
	if (!source_may(st, &sl.sr, SRC_QUERIES, st->nq, st->qmax)) {
		st->stats.over_share++;
		client_error(st, cl, buf, dq, RCODE_REFUSED, -1,
		    "over its share of the table", st->now);
		return NULL;
	}
	if (query_is_own(st, lead, cl, dq))
		return NULL;
	if ((q = query_alloc(st)) == NULL) {
		st->stats.full++;
		client_error(st, cl, buf, dq, RCODE_SERVFAIL, -1,
		    "in-flight table full", st->now);
		return NULL;
	}
	source_take(st, &sl, SRC_QUERIES, &q->src);
	return q;
}

/*
 * Into the in-flight table: a question already asked follows the query
 * that leads its exchange (RFC 5452 9.3: one exchange per question in
 * flight); any other leads one and asks its first upstream.
 */
static void
query_enter(struct state *st, const struct client *cl, const uint8_t *buf,
    const struct dns_query *dq, int route)
{
	struct query *q, *lead;
	uint32_t h = dns_question_hash(st->hkey, dq);

	lead = inflight_find(st, dq, h);
	if ((q = query_admit(st, cl, buf, dq, lead)) == NULL)
		return;
	q->cl = *cl;
	q->tcp = cl->tcp;	/* TCP clients are forwarded over TCP */
	q->dq = *dq;
	q->route = route;
	q->len = (uint16_t)dns_build_query(q->out + 2, UPQ_MAX, buf, dq);
	put_u16(q->out, q->len);	/* the TCP length prefix */
	q->hash = h;
	if (cl->tcp)
		conn_query_take(st, q);
	if (lead != NULL) {
		query_set_state(st, q, Q_FOLLOW);
		q->leader = slot_of(st, lead);
		q->follow = lead->follow;
		lead->follow = slot_of(st, q);
		return;
	}
	inflight_add(st, q);
	if (cache_stale_seen(&st->cache))	/* answered from it in 1.8 s at worst */
		stale_add(st, q);
	query_start(st, q);
}

/* What q's client is owed (done_push()), given to it in its own way. */
static void
client_owed(struct state *st, struct query *q)
{
	struct dns_reply r;
	size_t n;

	switch ((enum owed)q->owed) {
	case OWED_ANSWER:
		client_answer(st, &q->cl, q->out + 2, &q->dq, q->ans,
		    q->anslen, &q->ansr, q->owe_ede);
		if (q->owe_ede == EDE_STALE)
			st->stats.stale++;
		else
			st->stats.answered++;
		query_log(st, &q->cl, &q->dq, q->how, q->ansr.rcode, q->start);
		break;
	case OWED_SERVFAIL:
		client_error(st, &q->cl, q->out + 2, &q->dq, RCODE_SERVFAIL,
		    q->owe_ede, q->how, q->start);
		break;
	case OWED_STALE:	/* a leader that goes on: fetched now */
		if ((n = query_stale_get(st, q, &r)) == 0) {
			q->replied = false;	/* evicted: its answer will do */
			break;
		}
		client_answer(st, &q->cl, q->out + 2, &q->dq, st->stalebuf, n,
		    &r, EDE_STALE);
		st->stats.stale++;
		query_log(st, &q->cl, &q->dq, "stale", r.rcode, q->start);
		break;
	case OWED_NONE:
		break;
	}
	q->owed = OWED_NONE;
}

/*
 * Answer every client the engine finished with since the last drain, in
 * the order the queries finished, then free the finished ones.  The loop
 * calls it after every event and every timer run, so no answer on the
 * list outlives the buffer it is in.
 */
static void
clients_drain(struct state *st)
{
	struct list l = st->done;
	struct query *q;
	int32_t i;

	if (l.head < 0)
		return;
	st->done = LIST_EMPTY;
	for (i = l.head; i >= 0; i = q->dl.next) {
		q = &st->q[i];
		client_owed(st, q);
	}
	while ((i = l.head) >= 0) {
		q = &st->q[i];
		list_unlink(&l, QUERY_LINKS(st, dl), i);
		q->ondone = false;
		if (!q->release)
			continue;
		if (q->cl.tcp)
			conn_query_done(st, q);
		query_free(st, q);
	}
}

/*
 * A query from a client, UDP or TCP: parse it, then answer it from a local
 * rule or hosts file, else from the cache, else through the table.
 */
static void
query_from_client(struct state *st, const struct client *cl, uint8_t *buf,
    size_t len)
{
	struct dns_query dq;
	struct dns_reply r;
	size_t n;
	int rc, route;

	st->stats.queries++;
	if (cl->tcp)
		st->stats.tcp_queries++;
	if ((rc = dns_parse_query(buf, len, &dq)) != 0) {
		st->stats.malformed++;
		if (rc > 0)
			client_error(st, cl, buf, &dq, rc, -1, "malformed",
			    st->now);
		return;
	}
	if (query_local(st, cl, buf, &dq, &route) ||
	    probe_is_own(st, cl, &dq))
		return;
	if ((n = cache_get(&st->cache, &dq, buf, st->scratch,
	    sizeof(st->scratch), st->now, &r)) != 0) {
		client_answer(st, cl, buf, &dq, st->scratch, n, &r, -1);
		query_log(st, cl, &dq, "cache", r.rcode, st->now);
		return;
	}
	query_enter(st, cl, buf, &dq, route);
}

/* ==== 25. Intake: who may ask, UDP and TCP clients ======================= */

/* A namespace as messages name it. */
static const char *
view_name(const struct netview *v)
{
	return v->path != NULL ? v->path : "this namespace";
}

/*
 * Who may ask: loopback always; then --allow if given, else the networks
 * of the listener's namespace (struct netview).  Everyone else gets
 * REFUSED over UDP (if it sent a query at all) and is closed at accept
 * over TCP, counted, and logged at most once a minute per source.
 */
static bool
client_allowed(const struct state *st, int li, const struct sockaddr *sa)
{
	if (acl_is_loopback(sa))
		return true;
	if (st->allowing)
		return acl_match(&st->allow, sa);
	return acl_match(&st->view[st->lis[li].view].onlink, sa);
}

static void
stranger_refused(struct state *st, int li, const union sockany *peer,
    socklen_t peerlen, bool tcp)
{
	const struct listener *l = &st->lis[li];
	uint8_t key[2][SRC_KEY], *k;
	int lv;
	struct stranger *s;
	struct addr a;
	uint32_t quiet;
	char t[80];

	if (tcp)
		st->stats.strangers_tcp++;
	else
		st->stats.strangers++;
	lv = source_keys(&peer->sa, key) - 1;	/* IPv6: said per /64 */
	k = key[lv > 0 ? lv : 0];
	/*
	 * One line a minute per slot: sources that share a slot share its
	 * minute (starting it again for each would say every query of two
	 * sources taking turns).
	 */
	s = &st->strangers[siphash13(st->hkey, k, SRC_KEY) % STRANGER_SLOTS];
	if (!rate_say(&s->rate, st->now, RATE_MS, 1, &quiet))
		return;
	if (!rate_say(&st->stranger_rate, st->now, RATE_MS, STRANGER_LINES,
	    NULL)) {
		s->rate.said = 0;	/* said next time, if the budget allows */
		return;		/* counted all the same */
	}
	memcpy(&a.ss, peer, peerlen);
	a.len = peerlen;
	logmsg(1, "refused %s%s: %s%s (--allow admits clients; said once a "
	    "minute per source, %u more since)", addr_text(&a, ':', t,
	    sizeof(t)), tcp ? " (tcp)" : "", st->allowing ? "not in --allow" :
	    "not on a network of ", st->allowing ? "" :
	    view_name(&st->view[l->view]), quiet);
}

/* A datagram from a stranger: REFUSED if it is a query, else nothing. */
static void
stranger_udp(struct state *st, const struct client *cl, const uint8_t *buf,
    size_t len)
{
	struct dns_query dq;

	st->stats.queries++;
	stranger_refused(st, cl->origin, &cl->addr, cl->addrlen, false);
	if (dns_parse_query(buf, len, &dq) == 0)
		client_error(st, cl, buf, &dq, RCODE_REFUSED, EDE_PROHIBITED,
		    "not allowed", st->now);
}

static void
udp_read(struct state *st, int li)
{
	struct client cl;
	int i, n;

	for (i = 0; i < BATCH; i++) {
		st->rmsg[i].msg_hdr.msg_namelen = sizeof(st->rname[i]);
		st->riov[i].iov_len = DNS_MAX_UDP;
	}
	n = recvmmsg(st->lis[li].udp, st->rmsg, BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	memset(&cl, 0, sizeof(cl));
	cl.origin = li;
	cl.gen = st->lis[li].gen;
	st->lis[li].queries += (uint64_t)n;
	for (i = 0; i < n; i++) {
		if (st->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
			st->stats.queries++;
			st->stats.malformed++;
			continue;
		}
		cl.addrlen = st->rmsg[i].msg_hdr.msg_namelen;
		memcpy(&cl.addr, &st->rname[i], cl.addrlen);
		if (!client_allowed(st, li, &cl.addr.sa)) {
			stranger_udp(st, &cl, st->rbuf[i],
			    st->rmsg[i].msg_len);
			continue;
		}
		query_from_client(st, &cl, st->rbuf[i], st->rmsg[i].msg_len);
	}
	batch_flush(st);
}

/* Stop (or, when due, resume) polling the TCP listeners for accepts. */
static void
tcp_arm(struct state *st, bool on)
{
	struct epoll_event ev;
	int i;

	for (i = 0; i < st->nlis; i++) {
		if (st->lis[i].tcp < 0)
			continue;
		ev.events = on ? EPOLLIN : 0;
		ev.data.u64 = token_make(TK_LISTEN, i, 1, st->lis[i].gen);
		epoll_ctl(st->ep, EPOLL_CTL_MOD, st->lis[i].tcp, &ev);
	}
}

static void
tcp_pause(struct state *st)
{
	if (!st->fd_warned)
		logmsg(0, "tcp: accept: %s; refusing connections until "
		    "descriptors are free", strerror(errno));
	st->fd_warned = true;
	st->accept_at = time_after(st->now, ACCEPT_PAUSE_MS);
	tcp_arm(st, false);
}

static void
tcp_resume(struct state *st)
{
	st->accept_at = TIME_NONE;
	tcp_arm(st, true);
}

/*
 * The table is full: close the connection that has waited longest with no
 * query in flight and nothing to write, idle or trickling a message, to
 * admit a new one.  Looks at the first few of each FIFO (their oldest).
 */
static void
conn_evict(struct state *st)
{
	struct conn *c, *best = NULL;
	uint64_t since, best_since = TIME_NONE;
	int32_t i;
	int k, n;

	for (k = 0; k < C_COUNT; k++)
		for (i = st->cfifo[k].head, n = 0; i >= 0 && n < 8;
		    i = c->fl.next, n++) {
			c = &st->conn[i];
			if (c->inflight > 0 || c->wpos < c->wlen)
				continue;
			since = tcp_since((enum tcp_phase)k, c->deadline);
			if (best == NULL ||
			    time_before(since, best_since)) {
				best = c;
				best_since = since;
			}
			break;
		}
	if (best == NULL)
		return;
	st->stats.tcp_evicted++;
	conn_close(st, best);
}

/*
 * End the queries of closed connections (conn_close() put them here): a
 * follower leaves its leader, a leader others wait on runs on and answers
 * nobody, anything else is freed with its sockets.
 */
static void
conn_cancel_orphans(struct state *st)
{
	struct query *q, *lead;
	int32_t *p, i;

	while (st->orphans.head >= 0) {
		i = st->orphans.head;
		q = &st->q[i];
		conn_query_unlink(st, q);
		if (q->state != Q_FOLLOW && q->follow >= 0)
			continue;
		if (q->state == Q_FOLLOW) {
			lead = &st->q[q->leader];
			for (p = &lead->follow; *p != i; p = &st->q[*p].follow)
				;
			*p = q->follow;
		}
		st->stats.cancelled++;
		query_free(st, q);
	}
}

/* A new connection in a free slot of the table, in the epoll set. */
static void
conn_open(struct state *st, int fd, int li, const union sockany *peer,
    socklen_t peerlen)
{
	struct epoll_event ev;
	struct srclook sl;
	struct conn *c;

	/*
	 * A source holds a fixed share of the table, busy or idle: with the
	 * default 64, an address 32 connections and a /64 48.
	 */
	source_of(st, &peer->sa, &sl);
	if (!source_may(st, &sl.sr, SRC_CONNS, -1, st->tcpcap)) {
		st->stats.tcp_over_share++;
		close(fd);
		return;
	}
	if (st->nconn >= st->tcpcap)
		conn_evict(st);
	if (st->nconn < st->tcpcap && st->freeconn >= 0) {
		c = &st->conn[st->freeconn];
		st->freeconn = c->fl.next;
	} else if (st->nconn < st->tcpcap && st->chigh < st->tcpmax) {
		c = &st->conn[st->chigh++];
		c->wbuf = st->wbuf + (size_t)(c - st->conn) * TCP_WBUF;
	} else {
		st->stats.tcp_full++;
		close(fd);
		return;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = token_make(TK_CONN, (int)(c - st->conn), 0, c->gen);
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		close(fd);
		c->fl.next = st->freeconn;
		st->freeconn = (int32_t)(c - st->conn);
		return;
	}
	st->nconn++;
	c->fd = fd;
	c->events = EPOLLIN;
	c->listener = li;
	c->lgen = st->lis[li].gen;
	c->peer = *peer;
	c->peerlen = peerlen;
	source_take(st, &sl, SRC_CONNS, &c->src);
	c->inflight = 0;
	c->eof = false;
	c->rlen = c->wpos = c->wlen = 0;
	c->fl = LINK_NONE;
	c->fifo = -1;
	c->queries = LIST_EMPTY;
	conn_fifo_push(st, c, C_IDLE);
}

static void
tcp_accept(struct state *st, int li)
{
	union sockany peer;
	socklen_t peerlen;
	int fd, n;

	for (n = 0; n < 16; n++) {
		peerlen = sizeof(peer);
		fd = accept4(st->lis[li].tcp, &peer.sa, &peerlen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1 && is_resource_error(errno)) {
			/* out of fds: stop accepting for a while, not spin */
			st->stats.tcp_full++;
			tcp_pause(st);
			return;
		}
		if (fd == -1)
			return;
		st->fd_warned = false;
		if (!client_allowed(st, li, &peer.sa)) {
			close(fd);
			stranger_refused(st, li, &peer, peerlen, true);
			continue;
		}
		conn_open(st, fd, li, &peer, peerlen);
	}
}

static void
conn_read(struct state *st, struct conn *c)
{
	struct client cl;
	uint32_t gen = c->gen;
	size_t need;
	ssize_t n;

	memset(&cl, 0, sizeof(cl));
	cl.tcp = true;
	cl.origin = (int)(c - st->conn);
	cl.gen = gen;
	cl.addr = c->peer;
	cl.addrlen = c->peerlen;
	while (c->gen == gen && !c->eof && c->inflight < conn_pipeline(st, c)) {
		need = c->rlen < 2 ? 2 : 2 + (size_t)get_u16(c->rbuf);
		if ((need == 2 && c->rlen == 2) || need - 2 > DNS_MAX_QUERY) {
			st->stats.malformed++;	/* empty, or over our limit */
			conn_close(st, c);
			return;
		}
		if (c->rlen < need) {
			n = read(c->fd, c->rbuf + c->rlen, need - c->rlen);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN)
				break;
			if (n == -1) {
				conn_close(st, c);
				return;
			}
			if (n == 0) {
				c->eof = true;
				if (c->inflight == 0 && c->wpos == c->wlen) {
					conn_close(st, c);
					return;
				}
				break;
			}
			if (c->rlen == 0)	/* a message starts: its clock */
				conn_fifo_push(st, c, C_MSG);
			c->rlen += (uint32_t)n;
			continue;
		}
		c->rlen = 0;
		conn_fifo_push(st, c, C_IDLE);
		if (st->lis[c->listener].gen == c->lgen) {
			st->lis[c->listener].queries++;
			st->lis[c->listener].tcpq++;
		}
		query_from_client(st, &cl, c->rbuf + 2, need - 2);
	}
	if (c->gen == gen)
		conn_arm(st, c);
}

static void
conn_io(struct state *st, struct conn *c, uint32_t ev)
{
	uint32_t gen = c->gen;

	if ((ev & EPOLLOUT) && !conn_write(st, c))
		return;
	if (!c->eof && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_read(st, c);
	/* reset, or shut both ways: nothing more can reach the client */
	if (c->gen == gen && (ev & (EPOLLHUP | EPOLLERR)))
		conn_close(st, c);
}

/*
 * ######## Part 4. Surroundings ###########################################
 * Owns: what dnsfwd follows outside itself: network namespaces and their
 * addresses (netlink), listeners bound in them, followed files (inotify or
 * polling), readiness, and the upstream lists the files give.  Calls:
 * Parts 1-3.  Promises: nothing it follows (a file swapped for a FIFO, a
 * namespace that goes) stalls the loop; changes reach the engine as data
 * (a new upstream list, a new listener).  Its deadlines: views_next(),
 * ready_next(), files_next() and their _due().
 */

/* ==== 26. Namespaces and their addresses ================================= */
/*
 * Where the listeners live: each namespace dnsfwd listens in (a netview),
 * the networks of its interfaces (who may ask, kept current by a netlink
 * socket inside it), and the listeners -N and -l ask for there, opened
 * and closed as namespaces come and go.
 */

/* Open the netlink socket of a new view; we are inside its namespace. */
static int
view_socket(void)
{
	struct {
		sa_family_t	 family;
		unsigned short	 pad;
		uint32_t	 pid, groups;
	} sa;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.family = AF_NETLINK;
	sa.groups = NL_GRP_IFADDR4 | NL_GRP_IFADDR6;
	if (bind(fd, (struct sockaddr *)(void *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Read the networks of v's namespace again (an RTM_GETADDR dump on its
 * socket).  The kernel makes each part of a dump as the one before is
 * read, so non-blocking reads see it whole; a change heard while dumping
 * starts the dump again (NL_DUMP_TRIES).  On failure the set read last
 * stays.
 */
static void
view_dump(struct state *st, struct netview *v)
{
	struct acl set;
	uint8_t req[NL_HDR + 4];
	uint32_t len, seq, quiet;
	uint16_t type = NL_GETADDR, flags = 0x301;	/* REQUEST|DUMP */
	ssize_t n;
	int tries, reads, other, rc = -1;

	for (tries = 0; tries < NL_DUMP_TRIES; tries++) {
		memset(&set, 0, sizeof(set));
		memset(req, 0, sizeof(req));
		len = sizeof(req);
		seq = ++v->seq;
		memcpy(req, &len, 4);
		memcpy(req + 4, &type, 2);
		memcpy(req + 6, &flags, 2);
		memcpy(req + 8, &seq, 4);	/* family AF_UNSPEC: both */
		if (send(v->nl, req, sizeof(req), 0) == -1)
			break;
		other = 0;
		for (reads = 0, rc = 0; rc == 0 && reads < 256; reads++) {
			n = recv(v->nl, st->ubuf, DNS_MAX_TCP, MSG_DONTWAIT);
			if (n <= 0 && errno == EINTR)
				continue;
			rc = n <= 0 ? -1 : nl_parse_addrs(st->ubuf,
			    (size_t)n, seq, &set, &other);
		}
		if (rc == 1 && other == 0)
			break;
	}
	if (rc != 1) {
		logmsg(0, "%s: cannot read its addresses; keeping the "
		    "networks read before", view_name(v));
		return;
	}
	if (set.full && rate_say(&v->full_said, st->now, RATE_MS, 1, &quiet))
		logmsg(1, "%s: more than %d networks; clients of the "
		    "others are refused (see --allow; said once a minute, %u "
		    "more since)", view_name(v), ACL_MAX, quiet);
	v->onlink = set;
}

/* An address changed in v's namespace: read what is queued, dump again. */
static void
view_event(struct state *st, int i)
{
	struct netview *v = &st->view[i];
	int n;

	for (n = 0; n < 64; n++)
		if (recv(v->nl, st->ubuf, DNS_MAX_TCP, MSG_DONTWAIT) == -1 &&
		    errno != ENOBUFS && errno != EINTR)
			break;	/* EAGAIN; ENOBUFS: changes were lost */
	view_dump(st, v);
}

/*
 * ---- Listeners in namespaces ----
 *
 * Each lgroup (a -N and the -l after it) is served in one namespace, or in
 * every namespace whose name in one directory matches its glob(7)
 * pattern: one netview per namespace, one listener per -l chain.  The
 * directory of every -N path is watched (inotify, in the loop with the
 * followed files); any change makes views_scan() compare each path with
 * the namespace its listeners are bound in, by identity (the namespace
 * file's device and inode, not its name): a namespace gone has its
 * listeners closed, so the kernel can free it; one re-created at the same
 * path gets new ones.  ip netns add creates the file before it mounts the
 * namespace on it, so a file that is not a namespace yet is looked at
 * again every NS_RETRY_MS, NS_TRIES times.
 *
 * After start-up, entering a namespace needs CAP_SYS_ADMIN (and binding
 * port 53 CAP_NET_BIND_SERVICE), which the process that reads packets
 * does not keep: a helper process does it (the namespace helper, below),
 * and hands the sockets over.
 */

#ifndef IP_FREEBIND
#define IP_FREEBIND	15
#endif
#define CAP_V3		0x20080522	/* _LINUX_CAPABILITY_VERSION_3 */
#define CAP_BIND	(1u << 10)	/* CAP_NET_BIND_SERVICE */
#define CAP_ADMIN	(1u << 21)	/* CAP_SYS_ADMIN */

/* ==== 27. Listeners: capabilities and binding ============================ */

/* capset(2), which libc does not wrap: set the first 32 capabilities. */
static int
caps_set(uint32_t effective, uint32_t permitted)
{
	struct {
		uint32_t	 version;
		int		 pid;
	} h = { CAP_V3, 0 };
	struct {
		uint32_t	 effective, permitted, inheritable;
	} d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = effective;
	d[0].permitted = permitted;
	return (int)syscall(SYS_capset, &h, d);
}

/*
 * Bind one listener at a; 0, or -1 with errno.  A specific address binds
 * even when it is not configured yet (IP_FREEBIND, which covers IPv6
 * sockets too): it is served as soon as it appears.
 */
static int
listen_bind(struct listener *l, const struct addr *a)
{
	int on = 1, err, rcvbuf = LISTEN_RCVBUF;
	struct addr b = *a;

	l->udp = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	l->tcp = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (l->udp == -1 || l->tcp == -1)
		goto fail;
	if (a->ss.ss_family == AF_INET6) {
		setsockopt(l->udp, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		setsockopt(l->tcp, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	}
	if (!is_wildcard(a)) {
		setsockopt(l->udp, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on));
		setsockopt(l->tcp, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on));
	}
	setsockopt(l->tcp, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* past net.core.rmem_max as root (FORCE), else up to it */
	if (setsockopt(l->udp, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
	    sizeof(rcvbuf)) == -1)
		setsockopt(l->udp, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		    sizeof(rcvbuf));
	if (bind(l->udp, (const struct sockaddr *)&b.ss, b.len) == -1)
		goto fail;
	/* port 0: the TCP socket takes the port UDP was given */
	if (getsockname(l->udp, (struct sockaddr *)&b.ss, &b.len) == -1 ||
	    bind(l->tcp, (const struct sockaddr *)&b.ss, b.len) == -1 ||
	    listen(l->tcp, 128) == -1)
		goto fail;
	l->addr = b;
	return 0;
fail:
	err = errno;
	if (l->udp != -1)
		close(l->udp);
	if (l->tcp != -1)
		close(l->tcp);
	l->udp = l->tcp = -1;
	errno = err;
	return -1;
}

/* Whether a is an address of the namespace we are in (no FREEBIND). */
static bool
addr_configured(const struct addr *a)
{
	struct addr b = *a;
	int fd, r;

	if (is_wildcard(a))
		return true;
	if (b.ss.ss_family == AF_INET)
		((struct sockaddr_in *)&b.ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&b.ss)->sin6_port = 0;
	if ((fd = socket(b.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return true;
	r = bind(fd, (const struct sockaddr *)&b.ss, b.len);
	close(fd);
	return r == 0 || errno != EADDRNOTAVAIL;
}

/*
 * Open l on the first address of chain ch that binds; we are in its
 * namespace.  The chain moves on only when an address is in use or not
 * permitted.  0, or -1 with errno of the last address tried.
 */
static int
listen_open(struct listener *l, const struct listen_chain *ch)
{
	char a[80];
	int i, tries, err = 0;

	for (i = 0; i < ch->n; i++) {
		/* with port 0 the TCP bind can lose a race; retry it */
		for (tries = 0; tries < 8; tries++) {
			if (listen_bind(l, &ch->a[i]) == 0)
				return 0;
			err = errno;
			if (err != EADDRINUSE || addr_port(&ch->a[i]) != 0)
				break;
		}
		if (err != EADDRINUSE && err != EACCES && err != EPERM)
			break;
		if (i + 1 < ch->n)
			logmsg(1, "cannot listen on %s: %s; trying the next",
			    addr_text(&ch->a[i], ':', a, sizeof(a)),
			    strerror(err));
	}
	errno = err;
	return -1;
}

/* ==== 28. Views: listeners in namespaces ================================= */

/* A free listener slot (the table grows at start and as namespaces come). */
static int
lis_alloc(struct state *st)
{
	struct listener *l;
	int i;

	for (i = 0; i < st->nlis; i++)
		if (st->lis[i].udp < 0)
			return i;
	if (st->nlis == st->lcap) {
		st->lcap = st->lcap > 0 ? 2 * st->lcap : 8;
		if ((l = realloc(st->lis, (size_t)st->lcap * sizeof(*l))) ==
		    NULL)
			return -1;
		st->lis = l;
	}
	l = &st->lis[st->nlis];
	memset(l, 0, sizeof(*l));
	l->udp = l->tcp = -1;
	return st->nlis++;
}

static int
view_alloc(struct state *st, int group, char *path)
{
	struct netview *v;
	int i;

	for (i = 0; i < st->nview && st->view[i].used; i++)
		;
	if (i == st->nview && st->nview == st->vcap) {
		st->vcap = st->vcap > 0 ? 2 * st->vcap : 8;
		if ((v = realloc(st->view, (size_t)st->vcap * sizeof(*v))) ==
		    NULL)
			return -1;
		st->view = v;
	}
	if (i == st->nview)
		st->nview++;
	v = &st->view[i];
	memset(v, 0, sizeof(*v));
	v->used = true;
	v->group = group;
	v->path = path;
	v->nl = -1;
	return i;
}

/* Listener k in the epoll set (its TCP socket paused when accepts are). */
static void
listener_watch(struct state *st, int k)
{
	struct listener *l = &st->lis[k];
	struct epoll_event ev;

	ev.events = EPOLLIN;
	ev.data.u64 = token_make(TK_LISTEN, k, 0, l->gen);
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, l->udp, &ev) == -1)
		logmsg(0, "epoll: %s", strerror(errno));
	/* accepts paused: not polled */
	ev.events = st->accept_at != TIME_NONE ? 0 : EPOLLIN;
	ev.data.u64 = token_make(TK_LISTEN, k, 1, l->gen);
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, l->tcp, &ev) == -1)
		logmsg(0, "epoll: %s", strerror(errno));
}

/* View vi's netlink socket in the epoll set, and its first dump. */
static void
view_watch(struct state *st, int vi)
{
	struct epoll_event ev;

	if (st->view[vi].nl < 0)
		return;
	ev.events = EPOLLIN;
	ev.data.u64 = token_make(TK_VIEW, vi, 0, 0);
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, st->view[vi].nl, &ev) == -1)
		logmsg(0, "epoll: %s", strerror(errno));
	view_dump(st, &st->view[vi]);
}

/* Close view vi's listeners (said, when say) and its netlink socket. */
static void
view_close(struct state *st, int vi, bool say)
{
	struct netview *v = &st->view[vi];
	struct listener *l;
	char a[80];
	int i;

	batch_flush(st);	/* nothing queued for a descriptor closed */
	for (i = 0; i < st->nlis; i++) {
		l = &st->lis[i];
		if (l->udp < 0 || l->view != vi)
			continue;
		if (say)
			logmsg(0, "stopped listening on %s in %s", addr_text(
			    &l->addr, ':', a, sizeof(a)), v->path);
		close(l->udp);
		close(l->tcp);
		l->udp = l->tcp = -1;
		l->gen++;
	}
	if (v->nl >= 0)
		close(v->nl);
	v->nl = -1;
	v->bound = false;
}

/*
 * View vi's listeners are open: say so (early: bit i for the i-th, whose
 * address is not configured yet) and put them in the epoll set.
 */
static void
view_bound(struct state *st, int vi, int early)
{
	struct netview *v = &st->view[vi];
	const char *where = v->path != NULL ? v->path : "";
	char a[80];
	int i, k;

	v->said = false;
	v->bound = true;
	for (i = 0, k = 0; k < st->nlis; k++) {
		if (st->lis[k].udp < 0 || st->lis[k].view != vi)
			continue;
		addr_text(&st->lis[k].addr, ':', a, sizeof(a));
		logmsg(LOG_NOTE | LOG_STDERR, "listening on %s (udp+tcp)%s%s", a,
		    v->path ? " in " : "", where);
		if (early & (1 << (i < 30 ? i : 30)))
			logmsg(1, "%s is not an address of %s yet: served once "
			    "it is added", a, view_name(v));
		if (st->ep >= 0)
			listener_watch(st, k);
		i++;
	}
	if (st->ep >= 0)
		view_watch(st, vi);
}

/*
 * What opening a view found.  Its listeners are in st->lis, tagged with
 * the view (the helper's are handed over and tagged on arrival).
 */
struct view_try {
	int		 err;		/* errno of the failure; 0 */
	int		 chain;		/* the -l chain that failed */
	int		 early;		/* bit i: chain i's address not up yet */
	int		 nl;		/* netlink socket; -1 */
	int		 nlerr;		/* why there is none (0: not wanted) */
	bool		 entered;	/* the namespace was entered */
	bool		 gone;		/* the namespace helper has exited */
	dev_t		 dev;		/* the namespace entered: its identity */
	ino_t		 ino;
};

/*
 * Bind group gi's listeners (tagged vi) and a netlink socket inside the
 * namespace at path (NULL: ours), and come back.  Run by start-up and by
 * the namespace helper, never by the loop.
 */
static void
view_bind(struct state *st, int gi, const char *path, int vi,
    struct view_try *t)
{
	const struct lgroup *g = &st->grp[gi];
	struct stat sb;
	int own = -1, ns = -1, k;

	memset(t, 0, sizeof(*t));
	t->nl = -1;
	t->entered = path == NULL;
	if (path != NULL) {
		if ((own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) ==
		    -1)
			die(2, "/proc/self/ns/net: %s", strerror(errno));
		if ((ns = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
		    fstat(ns, &sb) == -1 || setns(ns, CLONE_NEWNET) == -1) {
			t->err = errno;
			goto out;
		}
		t->dev = sb.st_dev;
		t->ino = sb.st_ino;
		t->entered = true;
	}
	for (t->chain = 0; t->chain < g->nch; t->chain++) {
		if ((k = lis_alloc(st)) < 0) {
			t->err = ENOMEM;
			break;
		}
		if (listen_open(&st->lis[k], &g->ch[t->chain]) == -1) {
			t->err = errno;
			break;
		}
		st->lis[k].view = vi;
		if (!addr_configured(&st->lis[k].addr))
			t->early |= 1 << (t->chain < 30 ? t->chain : 30);
	}
	if (t->err == 0 && !st->allowing && (t->nl = view_socket()) == -1)
		t->nlerr = errno;
out:
	if (own >= 0) {
		/* never entered (no CAP_SYS_ADMIN, say): still at home */
		if (t->entered && setns(own, CLONE_NEWNET) == -1)
			die(2, "setns back: %s", strerror(errno));
		close(own);
	}
	if (ns >= 0)
		close(ns);
}

static void nsh_ask(struct state *, int, struct view_try *);

/* What to do about a listener that could not be bound (err). */
static const char *
listen_hint(int err, int chained)
{
	if (err == EADDRINUSE)
		return chained > 1 ? " (each address of the chain is taken)" :
		    " (another DNS server listens there: stop it, or give a "
		    "fallback, -l 127.0.0.1:53,127.0.0.153:53)";
	if (err == EACCES)
		return " (a port below 1024 needs root or CAP_NET_BIND_SERVICE;"
		    " or give a port above 1023)";
	if (err == EADDRNOTAVAIL)
		return " (not an address of this host)";
	return "";
}

/* The line that says why view vi could not be opened. */
static void
view_why(const struct state *st, int vi, const struct view_try *t,
    bool fatal, char *why, size_t len)
{
	const struct netview *v = &st->view[vi];
	const struct lgroup *g = &st->grp[v->group];
	const struct listen_chain *ch;
	char a[80] = "";

	if (t->gone)
		snprintf(why, len, "--netns %s: skipped: the namespace helper "
		    "has exited (%s)", v->path, strerror(t->err));
	else if (!t->entered && t->err == ENOENT && !fatal)
		snprintf(why, len, "--netns %s: no such namespace yet; served "
		    "once it appears", v->path);
	else if (!t->entered)
		snprintf(why, len, "--netns %s: %s%s", v->path,
		    t->err == EINVAL ? "not a network namespace" :
		    strerror(t->err), t->err == EPERM || t->err == EACCES ?
		    " (entering a namespace needs CAP_SYS_ADMIN); skipped" :
		    "");
	else {
		if (t->chain >= 0 && t->chain < g->nch) {
			ch = &g->ch[t->chain];
			addr_text(&ch->a[ch->n - 1], ':', a, sizeof(a));
		}
		snprintf(why, len, "cannot listen on %s%s%s: %s%s", a,
		    v->path ? " in " : "", v->path ? v->path : "",
		    strerror(t->err), listen_hint(t->err, g->ch[t->chain <
		    g->nch ? t->chain : 0].n));
	}
}

/*
 * Open view vi's listeners, and its netlink socket, inside its namespace:
 * here at start, through the namespace helper later.  At start a failure
 * is fatal (exit 2, as before any query); later it is said once and the
 * namespace looked at again on its next change.
 */
static int
view_open(struct state *st, int vi, bool fatal)
{
	struct netview *v = &st->view[vi];
	char why[PATH_MAX + 160];
	struct view_try t;

	if (v->path != NULL && (st->nsh >= 0 || st->nsh_gone))
		nsh_ask(st, vi, &t);
	else
		view_bind(st, v->group, v->path, vi, &t);
	v->dev = t.dev;
	v->ino = t.ino;
	v->nl = t.nl;
	if (t.nlerr != 0)
		logmsg(0, "%s: cannot watch addresses (netlink: %s); "
		    "answering loopback clients only (see --allow)",
		    view_name(v), strerror(t.nlerr));
	if (t.err != 0) {
		view_close(st, vi, false);
		view_why(st, vi, &t, fatal, why, sizeof(why));
		/* at start, all but a missing capability is fatal (a typo) */
		if (fatal && (t.entered || (t.err != EPERM &&
		    t.err != EACCES)))
			die(2, "%s", why);
		if (!v->said)	/* once, until it works */
			logmsg(1, "%s", why);
		v->said = true;
		return -1;
	}
	view_bound(st, vi, t.early);
	return 0;
}

/*
 * Compare view vi's path with the namespace it is bound to: gone, or not
 * a namespace (any more, or yet), it is closed; another namespace there,
 * it is opened again; one we may not look at (a process's, which needs
 * the capabilities the server dropped) is left as it is.  Returns true
 * when it should be looked at again.
 */
static bool
view_check(struct state *st, int vi)
{
	struct netview *v = &st->view[vi];
	struct statfs fs;
	struct stat sb;

	if (stat(v->path, &sb) == -1 || statfs(v->path, &fs) == -1) {
		/* /proc/PID/ns/net of a process with capabilities we lack */
		if (errno == EACCES || errno == EPERM)
			return false;
		if (v->bound)
			view_close(st, vi, true);
		return false;
	}
	if ((unsigned long)fs.f_type != NSFS_MAGIC) {	/* not mounted yet */
		if (v->bound)
			view_close(st, vi, true);
		return true;
	}
	if (v->bound && sb.st_dev == v->dev && sb.st_ino == v->ino)
		return false;
	if (v->bound)
		view_close(st, vi, true);
	return view_open(st, vi, false) == -1;
}

/* Look at every -N namespace (a watched directory changed, or a retry). */
static void
views_scan(struct state *st)
{
	const struct lgroup *g;
	struct dirent *de;
	bool again = false;
	char path[PATH_MAX], *p;
	DIR *d;
	int gi, vi;

	st->ns_scan_at = TIME_NONE;
	for (gi = 0; gi < st->ngrp; gi++) {
		g = &st->grp[gi];
		if (g->path == NULL || g->nch == 0)
			continue;
		for (vi = 0; vi < st->nview; vi++)
			st->view[vi].mark = false;
		if (g->glob != NULL && (d = opendir(g->dir)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				if (!cfg_glob_match(g->glob, de->d_name) ||
				    snprintf(path, sizeof(path), "%s/%s", g->dir,
				    de->d_name) >= (int)sizeof(path))
					continue;
				for (vi = 0; vi < st->nview; vi++)
					if (st->view[vi].used &&
					    st->view[vi].group == gi &&
					    strcmp(st->view[vi].path, path) == 0)
						break;
				if (vi == st->nview) {
					if ((p = strdup(path)) == NULL ||
					    (vi = view_alloc(st, gi, p)) < 0) {
						free(p);
						continue;
					}
				}
				st->view[vi].mark = true;
			}
			closedir(d);
		}
		for (vi = 0; vi < st->nview; vi++) {
			if (!st->view[vi].used || st->view[vi].group != gi)
				continue;
			if (g->glob != NULL && !st->view[vi].mark) {
				if (st->view[vi].bound)	/* its name went */
					view_close(st, vi, true);
				free(st->view[vi].path);
				st->view[vi].used = false;
				continue;
			}
			again |= view_check(st, vi);
		}
	}
	if (again && st->ns_tries > 0) {
		st->ns_tries--;
		st->ns_scan_at = time_after(st->now, NS_RETRY_MS);
	}
}

/* A -N directory changed: look now, and keep looking for a while. */
static void
views_changed(struct state *st)
{
	st->ns_tries = NS_TRIES;
	if (!time_due(st->now, st->ns_scan_at))
		st->ns_scan_at = time_after(st->now, 0);
}

/*
 * The listeners opened before the loop existed join its epoll set, and
 * the -N directories are watched.
 */
static void
views_start(struct state *st)
{
	struct lgroup *g;
	int i;

	for (i = 0; i < st->nlis; i++)
		if (st->lis[i].udp >= 0)
			listener_watch(st, i);
	for (i = 0; i < st->nview; i++)
		if (st->view[i].used && st->view[i].bound)
			view_watch(st, i);
	for (i = 0; i < st->ngrp; i++) {
		g = &st->grp[i];
		/* /proc/PID/ns/net names a process's: nothing to watch */
		if (g->path == NULL || g->nch == 0 ||
		    strncmp(g->dir, "/proc/", 6) == 0)
			continue;
		if (st->files.ifd < 0 && (st->files.ifd =
		    inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) != -1)
			st->pfd[PFD_INOTIFY].fd = st->files.ifd;
		if (st->files.ifd < 0)
			break;
		g->wd = inotify_add_watch(st->files.ifd, g->dir, IN_CREATE |
		    IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR);
		if (g->wd == -1)
			logmsg(1, "%s: cannot watch (%s); namespaces there are "
			    "looked at on SIGHUP only", g->dir, strerror(errno));
	}
}

/*
 * ---- The namespace helper ----
 *
 * With -N, a helper process (forked at start, before privileges are
 * dropped) keeps CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE, and nothing
 * else, so that the process that reads packets keeps no capability at
 * all.  It never sees a packet: over a SOCK_SEQPACKET socketpair it takes
 * one request of a fixed size (a -N group and a path), checks it whole
 * (the group exists and has that path, or the path is a name its glob
 * matches in its directory), enters the namespace, binds the group's
 * listeners and a netlink socket, and hands them back (SCM_RIGHTS), one
 * message per listener and a last one that says how it went, keeping no
 * copy.  It exits when the server does (end of file, and
 * PR_SET_PDEATHSIG).  The loop waits for the answer (NSH_WAIT_MS at
 * most): entering and binding take well under a millisecond.
 */
#define NSH_MAGIC	0x64664e53u	/* the first word of every message */
#define NSH_WAIT_MS	5000

struct nsh_req {
	uint32_t	 magic;
	uint32_t	 group;		/* st->grp[] */
	char		 path[PATH_MAX];	/* NUL-terminated */
};

enum { NSH_LISTENER = 1, NSH_END = 2 };

struct nsh_rep {
	uint32_t	 magic;
	uint32_t	 kind;		/* LISTENER: 2 fds (udp, tcp); END: 0-1 */
	int32_t		 err;		/* END: struct view_try */
	int32_t		 chain, early, nlerr;
	uint32_t	 entered;
	uint64_t	 dev, ino;
	struct sockaddr_storage ss;	/* LISTENER: as bound */
	uint32_t	 len;
};

/* Send rep with nfd descriptors (0-2); 0, or -1 with errno. */
static int
nsh_send(int fd, const struct nsh_rep *rep, const int *fds, int nfd)
{
	union {
		struct cmsghdr	 h;
		char		 b[CMSG_SPACE(2 * sizeof(int))];
	} c;
	struct iovec iov = { (void *)(uintptr_t)rep, sizeof(*rep) };
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (nfd > 0) {
		memset(&c, 0, sizeof(c));
		m.msg_control = c.b;
		m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
		c.h.cmsg_level = SOL_SOCKET;
		c.h.cmsg_type = SCM_RIGHTS;
		c.h.cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
		memcpy(CMSG_DATA(&c.h), fds, (size_t)nfd * sizeof(int));
	}
	return sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)sizeof(*rep) ? 0 : -1;
}

/*
 * Receive one reply into rep and its descriptors into fds (room for 2);
 * the number of descriptors, or -1 with errno.  Anything but a whole
 * reply with at most two descriptors is refused (and what came closed).
 */
static int
nsh_recv(int fd, struct nsh_rep *rep, int *fds)
{
	union {
		struct cmsghdr	 h;
		char		 b[CMSG_SPACE(4 * sizeof(int))];
	} c;
	struct iovec iov = { rep, sizeof(*rep) };
	struct cmsghdr *h;
	struct msghdr m;
	ssize_t n;
	int nfd = 0, i, k, got[4];

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = c.b;
	m.msg_controllen = sizeof(c.b);
	while ((n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	if (n == -1)
		return -1;
	for (h = CMSG_FIRSTHDR(&m); h != NULL; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < k; i++)
			if (nfd < 4)
				memcpy(&got[nfd++], CMSG_DATA(h) + (size_t)i *
				    sizeof(int), sizeof(int));
	}
	if (n != (ssize_t)sizeof(*rep) || rep->magic != NSH_MAGIC ||
	    (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfd > 2) {
		for (i = 0; i < nfd; i++)
			close(got[i]);
		errno = n == 0 ? EPIPE : EPROTO;
		return -1;
	}
	memcpy(fds, got, (size_t)nfd * sizeof(int));
	return nfd;
}

/* Server side: ask the helper for view vi; the listeners land tagged vi. */
static void
nsh_ask(struct state *st, int vi, struct view_try *t)
{
	const struct netview *v = &st->view[vi];
	struct nsh_req req;
	struct nsh_rep rep;
	int fds[2], n, k, i;

	memset(t, 0, sizeof(*t));
	t->nl = -1;
	errno = EPIPE;
	if (st->nsh < 0)
		goto gone;
	memset(&req, 0, sizeof(req));
	req.magic = NSH_MAGIC;
	req.group = (uint32_t)v->group;
	snprintf(req.path, sizeof(req.path), "%s", v->path);
	if (send(st->nsh, &req, sizeof(req), MSG_NOSIGNAL) == -1)
		goto gone;
	for (i = 0; i <= st->grp[v->group].nch; i++) {
		if ((n = nsh_recv(st->nsh, &rep, fds)) == -1)
			goto gone;
		if (rep.kind == NSH_LISTENER && n == 2 &&
		    rep.len <= sizeof(rep.ss) && (k = lis_alloc(st)) >= 0) {
			st->lis[k].udp = fds[0];
			st->lis[k].tcp = fds[1];
			st->lis[k].view = vi;
			memcpy(&st->lis[k].addr.ss, &rep.ss, sizeof(rep.ss));
			st->lis[k].addr.len = (socklen_t)rep.len;
			continue;
		}
		if (rep.kind == NSH_END && n <= 1) {
			t->err = rep.err;
			t->chain = rep.chain;
			t->early = rep.early;
			t->nlerr = rep.nlerr;
			t->entered = rep.entered != 0;
			t->dev = (dev_t)rep.dev;
			t->ino = (ino_t)rep.ino;
			t->nl = n == 1 ? fds[0] : -1;
			return;
		}
		while (n-- > 0)
			close(fds[n]);
		errno = EPROTO;
		goto gone;
	}
	errno = EPROTO;
gone:
	t->err = errno == EAGAIN ? ETIMEDOUT : errno;
	t->gone = true;
	if (st->nsh >= 0)	/* said for each view that needs it */
		close(st->nsh);
	st->nsh = -1;
	st->nsh_gone = true;
}

/* Helper side: whether req names a namespace the command line asked for. */
static bool
nsh_valid(const struct state *st, const struct nsh_req *req)
{
	const struct lgroup *g;

	if (req->magic != NSH_MAGIC || req->group >= (uint32_t)st->ngrp ||
	    memchr(req->path, '\0', sizeof(req->path)) == NULL)
		return false;
	g = &st->grp[req->group];
	return g->path != NULL && g->nch > 0 &&
	    cfg_netns_path_ok(g->path, g->dir, g->glob, req->path);
}

/* Helper side: one request read from fd, answered.  -1 at end of file. */
static int
nsh_serve(struct state *st, int fd)
{
	struct nsh_req req;
	struct nsh_rep rep;
	struct view_try t;
	struct listener *l;
	ssize_t n;
	int k, fds[2];

	n = recv(fd, &req, sizeof(req), MSG_TRUNC);
	if (n <= 0)
		return n == -1 && errno == EINTR ? 0 : -1;
	memset(&t, 0, sizeof(t));
	t.err = EACCES;
	t.nl = -1;
	if (n == (ssize_t)sizeof(req) && nsh_valid(st, &req))
		view_bind(st, (int)req.group, req.path, -2, &t);
	for (k = 0; k < st->nlis; k++) {
		l = &st->lis[k];
		if (l->udp < 0 || l->view != -2)
			continue;
		memset(&rep, 0, sizeof(rep));
		rep.magic = NSH_MAGIC;
		rep.kind = NSH_LISTENER;
		memcpy(&rep.ss, &l->addr.ss, sizeof(rep.ss));
		rep.len = (uint32_t)l->addr.len;
		fds[0] = l->udp;
		fds[1] = l->tcp;
		if (t.err == 0 && nsh_send(fd, &rep, fds, 2) == -1)
			t.err = errno;
		close(l->udp);		/* no copy kept */
		close(l->tcp);
		l->udp = l->tcp = -1;
	}
	memset(&rep, 0, sizeof(rep));
	rep.magic = NSH_MAGIC;
	rep.kind = NSH_END;
	rep.err = t.err;
	rep.chain = t.chain;
	rep.early = t.early;
	rep.nlerr = t.nlerr;
	rep.entered = t.entered;
	rep.dev = (uint64_t)t.dev;
	rep.ino = (uint64_t)t.ino;
	n = nsh_send(fd, &rep, &t.nl, t.nl >= 0 ? 1 : 0);
	if (t.nl >= 0)
		close(t.nl);
	return n == -1 ? -1 : 0;
}

/* ==== 29. File following ================================================= */
/*
 * The resolv file is watched through its parent directory (and the
 * directory of a symlink's target), so edits in place, atomic renames and
 * delete + create are all seen.  Any event of interest schedules one
 * reload RELOAD_MS later, which re-arms every watch and reads the file.
 * An empty or server-less file keeps the last good list.
 */

/*
 * Watch dir for name (mask DIR_EVENTS), or, with name NULL, the file at dir
 * itself: an edit of a bind-mounted file (a container's resolv.conf
 * written from the host) reaches only the file's own watch.
 */
#define DIR_EVENTS	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
			 IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | \
			 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define FILE_EVENTS	(IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | \
			 IN_DELETE_SELF | IN_MOVE_SELF)

static void
watch_add(struct state *st, const char *dir, const char *name)
{
	struct files *f = &st->files;
	int wd;

	if (f->nw == MAX_WATCH)
		return;
	wd = inotify_add_watch(f->ifd, dir, name != NULL ? DIR_EVENTS :
	    FILE_EVENTS);
	if (wd == -1)
		return;
	f->w[f->nw].wd = wd;
	snprintf(f->w[f->nw].name, sizeof(f->w[f->nw].name), "%s",
	    name != NULL ? name : "");
	f->nw++;
}

/*
 * Watch path: its directory for its name, or, when directories are
 * missing, the deepest one that exists for the next name on the way.
 * A symlink's target is watched the same way.
 */
static void
watch_path(struct state *st, const char *path, int depth)
{
	char dir[PATH_MAX], target[PATH_MAX], link[PATH_MAX];
	char *slash;
	struct stat sb;
	ssize_t n;
	int nw = st->files.nw;

	if (depth > 8 || strlen(path) >= sizeof(dir) || path[0] != '/')
		return;
	strcpy(dir, path);
	while ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		watch_add(st, dir[0] != '\0' ? dir : "/", slash + 1);
		if (st->files.nw > nw)
			break;
	}
	watch_add(st, path, NULL);
	if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode) &&
	    (n = readlink(path, link, sizeof(link) - 1)) > 0) {
		link[n] = '\0';
		strcpy(dir, path);
		*strrchr(dir, '/') = '\0';
		if (link[0] == '/')
			snprintf(target, sizeof(target), "%s", link);
		else if (snprintf(target, sizeof(target), "%s/%s", dir, link) >=
		    (int)sizeof(target))
			return;
		watch_path(st, target, depth + 1);
	}
}

static void
watch_arm(struct state *st)
{
	struct files *f = &st->files;
	struct watch old[MAX_WATCH];
	int i, k, nold;

	if (f->ifd < 0)
		return;
	/* re-adding a watch returns its wd; only the unused are removed */
	memcpy(old, f->w, sizeof(old));
	nold = f->nw;
	f->nw = 0;
	for (i = 0; i < f->nfile; i++)
		for (k = 0; k < f->file[i].npath; k++)
			watch_path(st, f->file[i].path[k], 0);
	for (i = 0; i < nold; i++) {
		for (k = 0; k < f->nw && f->w[k].wd != old[i].wd; k++)
			;
		if (k == f->nw)
			inotify_rm_watch(f->ifd, old[i].wd);
	}
}

static void
follow_schedule(struct state *st)
{
	if (st->files.reload_at == TIME_NONE)
		st->files.reload_at = time_after(st->now, RELOAD_MS);
}

static void
watch_read(struct state *st)
{
	char buf[4096] __attribute__((aligned(8)));
	const struct inotify_event *ev;
	ssize_t n, i;
	int k;

	while ((n = read(st->files.ifd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i += (ssize_t)sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(void *)(buf + i);
			if (ev->mask & IN_Q_OVERFLOW) {
				follow_schedule(st);
				views_changed(st);
				continue;
			}
			/*
			 * Ours: a watched name changed, a watched file or
			 * directory changed itself or went away (IN_IGNORED of
			 * a watch removed by watch_arm() is not ours).
			 */
			for (k = 0; k < st->ngrp; k++)
				if (st->grp[k].wd == ev->wd && ev->wd >= 0)
					views_changed(st);
			for (k = 0; k < st->files.nw; k++)
				if (st->files.w[k].wd == ev->wd &&
				    (st->files.w[k].name[0] == '\0' ||
				    (ev->mask & (IN_IGNORED | IN_DELETE_SELF |
				    IN_MOVE_SELF)) || (ev->len > 0 &&
				    strcmp(st->files.w[k].name, ev->name) == 0)))
					follow_schedule(st);
		}
	}
}

/* What a file that is not a regular file is, for the message. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "not a regular file";
}

/*
 * Read path into f->buf; its length, or -1 when it cannot be read (errno
 * set; *kind set when it is no regular file).  Opened non-blocking and
 * checked on the descriptor, so nothing a file can be replaced with (a
 * FIFO with no writer, a device) stalls the loop; a read error is an
 * error, never an empty file.
 */
static ssize_t
follow_read(struct state *st, const char *path, ssize_t max,
    const char **kind)
{
	char *buf = st->files.buf;
	struct stat sb;
	ssize_t n, got = 0;
	int fd, err;

	*kind = NULL;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &sb) == -1) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		*kind = file_kind(sb.st_mode);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	while (got <= max) {
		n = read(fd, buf + got, (size_t)(max + 1 - got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	if (got > max) {
		errno = EFBIG;
		return -1;
	}
	return got;
}

/*
 * Which file gives the default list (README, -r): with no
 * -r, /etc/resolv.conf naming systemd-resolved's stub alone makes the
 * stub the upstream and resolved's uplink file its failover; otherwise
 * that uplink file when it has servers; otherwise /etc/resolv.conf.  The
 * choice is said whenever it changes ("following ...").
 */
enum follow_mode { FM_NONE, FM_FILE, FM_STUB, FM_SYSD };

static enum follow_mode
follow_mode(struct state *st)
{
	struct files *f = &st->files;
	const struct watched_file *ff = &f->file[0], *fo = &f->file[1];
	bool sysd = f->nfile > 1 && fo->failover;
	enum follow_mode m = FM_NONE;

	if (!st->following)
		return FM_NONE;
	if (sysd && f->stub && f->ngood > 0)
		m = FM_STUB;
	else if (sysd && f->nfgood > 0)
		m = FM_SYSD;
	else if (f->ngood > 0)
		m = FM_FILE;
	if (m != FM_NONE && (int)m != f->mode) {
		if (m == FM_STUB)
			logmsg(1, "following %s (systemd-resolved stub; "
			    "failover %s)", ff->path[0], fo->path[0]);
		else if (m == FM_SYSD)
			logmsg(1, "following %s (systemd-resolved's servers)",
			    fo->path[0]);
		else
			logmsg(1, "following %s%s", ff->path[0], f->stub ?
			    " (systemd-resolved stub)" : "");
		f->mode = (int)m;
	}
	return m;
}

/* Release queries held for a first upstream list. */
static void
follow_release(struct state *st)
{
	struct query *q;

	while (st->deflist != NULL && st->deflist->n > 0 &&
	    st->fifo[F_HELD].head >= 0) {
		q = &st->q[st->fifo[F_HELD].head];
		fifo_remove(st, q);
		query_start(st, q);
	}
	batch_flush(st);
}

/* ==== 30. Readiness and the files applied ================================ */

/*
 * sd_notify(3) without libsystemd: one datagram to the unix socket
 * NOTIFY_SOCKET names (abstract when it starts with '@').
 */
static void
notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '/'));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	(void)!sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (const struct sockaddr *)&sun, len);
	close(fd);
}

/*
 * Whether any name can reach the default list: not when a rule for the
 * root (-a /#/, or -s /#/ADDR) answers every name, with or without other
 * rules (an allowlist, the netcat NXDOMAIN server's replacement).
 */
static bool
default_needed(const struct state *st)
{
	static const uint8_t root[1] = { 0 };
	const struct rule *r;
	int f = route_match(&st->routes, root);

	if (f < 0)
		return true;
	r = route_at((struct routes *)(uintptr_t)&st->routes, f);
	return !(r->kind == RULE_LOCAL || (r->kind == RULE_FORWARD &&
	    r->nsrv > 0));
}

/*
 * Ready: every listener asked at start is bound (they are before the
 * loop runs) and the default list has servers (or no name needs it), or
 * the start hold ran out.
 * Tell --ready-fd (a newline, then close: s6, dinit) and NOTIFY_SOCKET
 * (READY=1: systemd Type=notify), once.
 */
static void
ready_check(struct state *st)
{
	bool servers = (st->deflist != NULL && st->deflist->n > 0) ||
	    !default_needed(st);

	if (st->ready || (!servers && !time_due(st->now, hold_deadline(st->start_ms))))
		return;
	st->ready = true;
	if (!servers)
		logmsg(0, "ready, but with no upstream after %d s: queries get "
		    "SERVFAIL until one appears", HOLD_MS / 1000);
	if (st->ready_fd >= 0) {
		(void)!write(st->ready_fd, "\n", 1);
		close(st->ready_fd);
		st->ready_fd = -1;
	}
	notify(servers ? "READY=1\nSTATUS=serving" :
	    "READY=1\nSTATUS=serving, no upstream yet");
}

/*
 * Upstream tags: what the cache keeps of the upstream that gave an answer
 * (cache_get_stale() serves it only while that upstream is on the list).
 * Tag k + 1 names st->tags[k]; 0 names none.  A tag is never given to
 * another address: when MAX_TAGS distinct upstreams have been seen, the
 * cache is flushed and the names start again, with a new generation so
 * that no answer still in flight is stored under an old name.
 */
static uint16_t
upstream_tag(struct state *st, const struct addr *a)
{
	int k;

	for (k = 0; k < st->ntags; k++)
		if (addr_equal(&st->tags[k], (const struct sockaddr *)&a->ss))
			return (uint16_t)(k + 1);
	if (st->ntags == MAX_TAGS)
		return 0;
	st->tags[st->ntags++] = *a;
	return (uint16_t)st->ntags;
}

/* Tag every upstream of the lists in use (at start, and when one changes). */
static void
lists_tag(struct state *st)
{
	struct ulist *l;
	int i, k, pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = -1; i < routes_count(&st->routes); i++) {
			l = i < 0 ? st->deflist : st->rlist != NULL ?
			    st->rlist[i] : NULL;
			for (k = 0; l != NULL && k < l->n; k++)
				if ((l->u[k].tag = upstream_tag(st,
				    &l->u[k].addr)) == 0)
					break;
			if (l != NULL && k < l->n)
				break;
		}
		if (i == routes_count(&st->routes))
			return;
		st->ntags = 0;		/* full: start again, nothing kept */
		st->generation++;
		cache_flush(&st->cache);
	}
}

/* Whether x is one of a[0..n). */
static bool
addr_in(const struct addr *a, int n, const struct addr *x)
{
	int i;

	for (i = 0; i < n; i++)
		if (addr_equal(&a[i], (const struct sockaddr *)&x->ss))
			return true;
	return false;
}

/*
 * The default list: -s servers, then the file's; -f servers only when
 * both are empty.  Health and counters carry over for the same address.
 */
/*
 * The default list: -s servers, the servers files' server= lines, then
 * the resolv file's; -f servers only when all are empty.  Into want (fo:
 * failovers); how many, and the follow mode and first failover's place.
 */
static int
deflist_want(struct state *st, struct addr *want, bool *fo,
    enum follow_mode *mode, int *primary)
{
	int i, n = 0;

	for (i = 0; i < st->nstatic && n < MAX_UPSTREAMS; i++)
		if (!addr_in(want, n, &st->statics[i]))
			want[n++] = st->statics[i];
	for (i = 0; i < st->nfstatic && n < MAX_UPSTREAMS; i++)
		if (!addr_in(want, n, &st->fstatic[i]))
			want[n++] = st->fstatic[i];
	*mode = follow_mode(st);
	for (i = 0; i < st->files.ngood && n < MAX_UPSTREAMS && *mode != FM_SYSD;
	    i++)
		if (!addr_in(want, n, &st->files.good[i]))
			want[n++] = st->files.good[i];
	/* resolved's uplinks: the stub's failover, or the list */
	*primary = *mode == FM_STUB ? n : MAX_UPSTREAMS;
	for (i = 0; i < st->files.nfgood && n < MAX_UPSTREAMS &&
	    (*mode == FM_STUB || *mode == FM_SYSD); i++)
		if (!addr_in(want, n, &st->files.fgood[i]))
			want[n++] = st->files.fgood[i];
	for (i = 0; i < n; i++)
		fo[i] = i >= *primary && *primary > 0;
	for (i = 0; i < st->nfallback && n == 0; i++) {
		fo[n] = false;
		want[n++] = st->fallbacks[i];
	}
	return n;
}

static void
deflist_rebuild(struct state *st)
{
	struct addr want[MAX_UPSTREAMS];
	bool fo[MAX_UPSTREAMS];
	struct ulist *l, *old = st->deflist;
	char text[MAX_UPSTREAMS * 60], a[80], status[MAX_UPSTREAMS * 60 + 32];
	int i, k, n, primary;
	enum follow_mode mode;
	size_t o = 0;

	n = deflist_want(st, want, fo, &mode, &primary);
	if (old != NULL && old->n == n) {
		for (i = 0; i < n; i++)
			if (!addr_equal(&old->u[i].addr,
			    (const struct sockaddr *)&want[i].ss) ||
			    old->u[i].failover != fo[i])
				break;
		if (i == n)
			return;
	}
	if ((l = calloc(1, sizeof(*l) + (size_t)n * sizeof(l->u[0]))) ==
	    NULL) {
		logmsg(0, "upstream list: %s; keeping the previous one",
		    strerror(errno));
		return;
	}
	l->refs = 1;
	l->n = n;
	text[0] = '\0';
	for (i = 0; i < n; i++) {
		l->u[i].addr = want[i];
		for (k = 0; old != NULL && k < old->n; k++)
			if (addr_equal(&old->u[k].addr,
			    (const struct sockaddr *)&want[i].ss)) {
				l->u[i] = old->u[k];
				break;
			}
		l->u[i].failover = fo[i];
		/* rule 3b: what resolved's stub says is final */
		l->u[i].final = mode == FM_STUB && i < primary &&
		    policy_is_stub(&want[i]);
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s%s",
		    i > 0 ? " " : "", addr_text(&want[i], '#', a, sizeof(a)),
		    fo[i] ? " (failover)" : "");
	}
	st->deflist = l;
	if (old != NULL)
		old->retired = true;
	ulist_unref(old);
	st->generation++;
	cache_expire(&st->cache);	/* the new list is asked at once */
	lists_tag(st);
	if (old != NULL || n > 0)	/* at start, "waiting for" said it */
		logmsg(1, "upstreams: %s", n > 0 ? text : "none");
	if (st->ready) {
		snprintf(status, sizeof(status), "STATUS=upstreams: "
		    "%s", n > 0 ? text : "none");
		notify(status);
	}
	follow_release(st);
}

/*
 * Say the nameservers of a resolv file that point back at dnsfwd (txt[],
 * n of them): each one when the set of them changes; the same set read
 * again, at most once a minute (a file rewritten 20 times says it once).
 */
static void
resolv_say_self(struct state *st, struct watched_file *ff,
    char (*txt)[80], int n)
{
	uint64_t sig = 1;
	uint32_t quiet = 0;
	int i;

	for (i = 0; i < n; i++)
		sig = sig * 31 + name_hash((const uint8_t *)txt[i],
		    strlen(txt[i]));
	if (n == 0) {
		ff->self_sig = 0;	/* gone: said again if it comes back */
		return;
	}
	if (sig == ff->self_sig && !rate_say(&ff->self_said, st->now, RATE_MS,
	    1, &quiet))
		return;
	if (sig != ff->self_sig) {
		memset(&ff->self_said, 0, sizeof(ff->self_said));
		(void)rate_say(&ff->self_said, st->now, RATE_MS, 1, NULL);
	}
	ff->self_sig = sig;
	for (i = 0; i < n; i++)
		logmsg(1, "%s: skipping nameserver %s: it points back at "
		    "dnsfwd%s", ff->path_read, txt[i], quiet > 0 ? " (said "
		    "once a minute while it stays)" : "");
}

/* A new resolv file: its usable servers become the last good list. */
static void
resolv_apply(struct state *st, struct watched_file *ff, const char *text,
    size_t len)
{
	struct files *f = &st->files;
	struct resolv_conf rc;
	struct addr *good;
	char selftxt[RESOLV_MAX_NS][80];
	int i, n = 0, nself = 0, *ngood;

	resolv_parse(text, len, &rc);
	self_refresh(st);
	for (i = 0; i < rc.n; i++) {
		if (addr_scope(&rc.ns[i].addr) == -1) {
			logmsg(1, "%s: nameserver %%%s: no such interface",
			    ff->path_read, rc.ns[i].addr.ifname);
			continue;
		}
		/* a nameserver that is dnsfwd itself would loop */
		if (policy_is_self(&rc.ns[i].addr, st->self, st->nself)) {
			addr_text(&rc.ns[i].addr, '#', selftxt[nself++], 80);
			continue;
		}
		rc.ns[n++] = rc.ns[i];
	}
	resolv_say_self(st, ff, selftxt, nself);
	if (rc.ignored > 0)
		logmsg(1, "%s: %d nameservers beyond %d ignored", ff->path_read,
		    rc.ignored, RESOLV_MAX_NS);
	good = ff->failover ? f->fgood : f->good;
	ngood = ff->failover ? &f->nfgood : &f->ngood;
	if (n == 0) {
		if (!ff->warned)
			logmsg(1, "%s: no usable nameserver; keeping %s",
			    ff->path_read, *ngood == 0 ?
			    "none: there were none before" :
			    *ngood == 1 ? "the previous upstream" :
			    "the previous upstreams");
		ff->warned = true;
		return;
	}
	ff->warned = false;
	for (i = 0; i < n; i++)
		good[i] = rc.ns[i].addr;
	*ngood = n;
	if (!ff->failover) {
		for (i = 0; i < n && policy_is_stub(&good[i]); i++)
			;
		f->stub = i == n;
	}
	deflist_rebuild(st);
}

/* A new hosts file replaces the table; the old one is kept on error. */
static void
hosts_apply(struct state *st, struct watched_file *ff, const char *text,
    size_t len)
{
	struct hosts h;
	int n, bad;

	if (hosts_parse(text, len, &h) == -1) {
		logmsg(0, "%s: out of memory; keeping the previous names",
		    ff->path_read);
		return;
	}
	n = hosts_count(&h, &bad);
	if (bad > 0)
		logmsg(1, "%s: %d lines not understood", ff->path_read, bad);
	hosts_free(&st->hosts[ff->hosts]);
	st->hosts[ff->hosts] = h;
	logmsg(1, "%s: %d %s", ff->path_read, n, n == 1 ? "name" : "names");
}

/*
 * Give every forwarding rule its upstream list; an address that was in
 * one of old[0..nold) keeps its health and counters.
 */
static void
routes_lists(struct state *st, struct ulist **old, int nold)
{
	struct rule *r;
	struct ulist *l;
	int i, k, j, m;

	st->rlist = xcalloc((size_t)routes_count(&st->routes) + 1,
	    sizeof(*st->rlist));
	for (i = 0; i < routes_count(&st->routes); i++) {
		r = route_at(&st->routes, i);
		if (r->kind != RULE_FORWARD)
			continue;
		self_skip(st, r->srv, &r->nsrv, "-s");
		l = st->rlist[i] = xcalloc(1, sizeof(*l) + (size_t)r->nsrv *
		    sizeof(l->u[0]));
		l->refs = 1;
		l->n = r->nsrv;
		for (k = 0; k < r->nsrv; k++) {
			l->u[k].addr = r->srv[k];
			for (j = 0; j < nold; j++)
				for (m = 0; old[j] != NULL && m < old[j]->n; m++)
					if (addr_equal(&old[j]->u[m].addr,
					    (const struct sockaddr *)
					    &r->srv[k].ss))
						l->u[k] = old[j]->u[m];
		}
	}
	lists_tag(st);
}

/* The rules of one servers file's text, into t and srv; bad lines said. */
static void
servers_apply(struct watched_file *ff, struct routes *t, struct addr *srv,
    int *nsrv, int *rules)
{
	const char *p = ff->text, *end = ff->text + ff->textlen, *nl;
	char why[160], a[80];
	int line, k = *nsrv, kind;

	for (line = 1; p < end; line++, p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		kind = servers_line(p, (size_t)(nl - p), t, srv, nsrv,
		    MAX_UPSTREAMS, why, sizeof(why));
		if (kind == SL_BAD || kind == SL_OTHER)
			logmsg(1, "%s:%d: %s; skipped", ff->path_read, line, why);
		*rules += kind == SL_RULE;
	}
	for (; k < *nsrv; k++)	/* %iface scopes, as -s */
		if (addr_scope(&srv[k]) == -1)
			logmsg(1, "%s: server %s: no such interface; skipped",
			    ff->path_read, addr_text(&srv[k], '#', a, sizeof(a)));
}

/*
 * Build the rule table again: the command line's -s and -a rules, then
 * each servers file's, in order (a change to one replaces all it gave).
 * The lists of the old rules are retired; held queries look again; the
 * cache expires, as for a new resolv file.
 */
static void
routes_rebuild(struct state *st)
{
	struct routes t, old = st->routes;
	struct ulist **oldl = st->rlist;
	struct watched_file *ff;
	struct rule *r;
	struct query *q;
	char err[160];
	int i, k, n, rules = 0, nold = routes_count(&st->routes);

	memset(&t, 0, sizeof(t));
	for (i = 0; i < st->nrspec; i++)
		(void)route_add(&t, st->rspec[i], st->rlocal[i], err,
		    sizeof(err));		/* checked at start */
	st->nfstatic = 0;
	for (i = 0; i < st->files.nfile; i++) {
		ff = &st->files.file[i];
		n = rules;
		if (ff->servers && ff->textlen > 0)
			servers_apply(ff, &t, st->fstatic, &st->nfstatic,
			    &rules);
		if (ff->servers && ff->path_read != NULL)
			logmsg(1, "%s: %d %s", ff->path_read, rules - n,
			    rules - n == 1 ? "rule" : "rules");
	}
	for (i = 0; i < routes_count(&t); i++)
		for (r = route_at(&t, i), k = 0; k < r->nsrv; k++)
			if (addr_scope(&r->srv[k]) == -1)	/* said: ff */
				r->srv[k--] = r->srv[--r->nsrv];
	st->routes = t;
	routes_lists(st, oldl, nold);
	for (i = 0; i < nold; i++) {
		if (oldl[i] != NULL)
			oldl[i]->retired = true;
		ulist_unref(oldl[i]);
	}
	free(oldl);
	routes_free(&old);
	/* a held query's rule index was the old table's */
	for (i = st->fifo[F_HELD].head; i >= 0; i = q->fl.next) {
		q = &st->q[i];
		q->route = route_match(&st->routes, q->dq.qname);
		if (q->route >= 0 && route_at(&st->routes, q->route)->kind ==
		    RULE_LOCAL)
			q->route = -2;	/* answered when released: SERVFAIL */
	}
	st->generation++;
	cache_expire(&st->cache);
	deflist_rebuild(st);	/* server= lines; releases held queries */
}

/*
 * Re-read one followed file; with force, even when its bytes did not
 * change.  A file that is missing or unreadable keeps what it gave last.
 */
static void
file_check(struct state *st, struct watched_file *ff, bool force)
{
	const char *path = NULL, *kind = NULL;
	struct stat sb;
	ssize_t len = -1;
	int i, err;

	err = ENOENT;
	for (i = 0; i < ff->npath && path == NULL; i++)
		if (stat(ff->path[i], &sb) == 0)
			path = ff->path[i];
		else if (errno != ENOENT && errno != ENOTDIR)
			err = errno;
	if (path != NULL && !S_ISREG(sb.st_mode))
		kind = file_kind(sb.st_mode);	/* not even opened */
	else if (path != NULL && (len = follow_read(st, path, ff->max,
	    &kind)) == -1)
		err = errno;
	if (len == -1 && ff->servers && kind == NULL && err == ENOENT &&
	    ff->path_read != NULL) {
		/* a servers file deleted: no rules (openresolv removes it) */
		if (ff->textlen != 0) {
			ff->textlen = 0;
			logmsg(1, "%s: gone; no rules from it", ff->path[0]);
			routes_rebuild(st);
		}
		ff->unread = strerror(err);
		return;
	}
	if (len == -1) {
		/* said once per reason: what it is, or why it cannot be read */
		if (kind != NULL && ff->unread != kind)
			logmsg(0, "%s: is %s, not a regular file; keeping what "
			    "it gave before", path, kind);
		else if (kind == NULL && ff->unread != strerror(err) &&
		    err == ENOENT && ff->path_read == NULL)	/* unread */
			logmsg(ff->failover ? 2 : ff->given ? 0 : 1,
			    "%s%s%swaiting for %s to appear", ff->given ?
			    ff->opt : "", ff->given ? ff->path[0] : "",
			    ff->given ? ": no such file yet (check the path); "
			    : "", ff->path[0]);
		else if (kind == NULL && ff->unread != strerror(err))
			logmsg(1, "%s: %s; keeping what it gave before",
			    path != NULL ? path : ff->path[0], err == ENOENT ?
			    "no such file" : strerror(err));
		ff->unread = kind != NULL ? kind : strerror(err);
		ff->textlen = -1;
		/* out of descriptors or memory: no event will come; retry */
		if ((err == EMFILE || err == ENFILE || err == ENOMEM) &&
		    st->files.reload_at == TIME_NONE)
			st->files.reload_at = time_after(st->now, RETRY_MS);
		return;
	}
	ff->unread = NULL;
	if (!force && path == ff->path_read && len == ff->textlen &&
	    memcmp(st->files.buf, ff->text, (size_t)len) == 0)
		return;
	memcpy(ff->text, st->files.buf, (size_t)len);
	ff->textlen = len;
	ff->path_read = path;
	if (ff->servers)
		routes_rebuild(st);
	else if (ff->hosts >= 0)
		hosts_apply(st, ff, ff->text, (size_t)len);
	else
		resolv_apply(st, ff, ff->text, (size_t)len);
}

static void
follow_reload(struct state *st, bool force)
{
	int i;

	watch_arm(st);
	for (i = 0; i < st->files.nfile; i++)
		file_check(st, &st->files.file[i], force);
}

/*
 * ######## Part 5. Loop and start-up ######################################
 * Owns: signals, the event loop, the options and start-up (bind, allocate,
 * follow, drop privileges) and main().  Calls: every part.  Promises: one
 * ppoll() per pass over a fixed pollfd array and one epoll set; events
 * first, then what is due (timer_parts[]); nothing allocated per query.
 */

/* ==== 31. Signals and counters =========================================== */
/*
 * Handlers only set flags; the signals are blocked except inside ppoll(),
 * so a flag is always seen before the next wait.
 */

static volatile sig_atomic_t sig_exit, sig_hup, sig_usr1;

static void
sig_handler(int sig)
{
	if (sig == SIGHUP)
		sig_hup = 1;
	else if (sig == SIGUSR1)
		sig_usr1 = 1;
	else
		sig_exit = 1;
}

static void
stats_print(struct state *st)
{
	const struct stats *s = &st->stats;
	const struct ulist *l = st->deflist;
	struct cache_stats cs;
	char a[80];
	int i;
	uint64_t ref = s->strangers + s->strangers_tcp + s->over_share +
	    s->full + s->tcp_full + s->tcp_over_share;

	logmsg(LOG_NOTE, "counters: queries %llu (tcp %llu), answers %llu: upstream "
	    "%llu, cache %llu, stale answers %llu, local %llu, shared %llu; "
	    "refused %llu: strangers refused %llu, strangers closed %llu, "
	    "over share %llu, refused (table full) %llu, refused (tcp full) "
	    "%llu, tcp over share %llu, tcp buffers over share %llu, "
	    "servfail %llu, malformed %llu, forwarded %llu, in flight %d, "
	    "held %llu, tcp evicted %llu, tcp too slow %llu, cancelled %llu, "
	    "no upstream socket %llu, unmatched replies %llu, spoofing floods "
	    "%llu, loops %llu, send errors %llu, upstream sockets %d, probes "
	    "%llu, "
	    "revived %llu, asked again after a network error %llu",
	    (unsigned long long)s->queries, (unsigned long long)s->tcp_queries,
	    (unsigned long long)(s->answered + st->cache.hits + s->stale +
	    s->local), (unsigned long long)s->answered,
	    (unsigned long long)st->cache.hits, (unsigned long long)s->stale,
	    (unsigned long long)s->local, (unsigned long long)s->coalesced,
	    (unsigned long long)ref, (unsigned long long)s->strangers,
	    (unsigned long long)s->strangers_tcp,
	    (unsigned long long)s->over_share, (unsigned long long)s->full,
	    (unsigned long long)s->tcp_full,
	    (unsigned long long)s->tcp_over_share,
	    (unsigned long long)s->tbuf_over_share,
	    (unsigned long long)s->servfail, (unsigned long long)s->malformed,
	    (unsigned long long)s->forwarded, st->nq,
	    (unsigned long long)s->held,
	    (unsigned long long)s->tcp_evicted,
	    (unsigned long long)s->tcp_slow,
	    (unsigned long long)s->cancelled, (unsigned long long)s->no_socket,
	    (unsigned long long)s->unmatched,
	    (unsigned long long)s->spoof_floods,
	    (unsigned long long)s->loops,
	    (unsigned long long)s->send_err, st->nsock,
	    (unsigned long long)s->probes, (unsigned long long)s->revived,
	    (unsigned long long)s->reasked);
	cache_stats(&st->cache, &cs);
	logmsg(LOG_NOTE, "cache: size %d of %d, hits %llu, misses %llu, evictions "
	    "%llu, inserts %llu, longest chain %d", cs.entries, cs.size,
	    (unsigned long long)cs.hits, (unsigned long long)cs.misses,
	    (unsigned long long)cs.evictions, (unsigned long long)cs.inserts,
	    cache_longest_chain(&st->cache));
	logmsg(LOG_NOTE, "cache memory: answers %zu of %zu arena bytes, %zu bytes "
	    "in all", cs.bytes, cs.arena, cs.memory);
	for (i = 0; i < st->nlis; i++)
		if (st->lis[i].udp >= 0)
			logmsg(LOG_NOTE, "listener %s%s%s: queries %llu",
			    addr_text(&st->lis[i].addr, ':', a, sizeof(a)),
			    st->view[st->lis[i].view].path ? " in " : "",
			    st->view[st->lis[i].view].path ?
			    st->view[st->lis[i].view].path : "",
			    (unsigned long long)st->lis[i].queries);
	for (i = 0; l != NULL && i < l->n; i++)
		logmsg(LOG_NOTE, "upstream %s: answers %u, timeouts %u, errors %u%s",
		    addr_text(&l->u[i].addr, '#', a, sizeof(a)),
		    l->u[i].answers, l->u[i].timeouts, l->u[i].errors,
		    l->u[i].backoff != 0 ? ", down" : "");
	logmsg(LOG_NOTE, "end of counters");	/* a reader knows it has them all */
}

/*
 * ---- --metrics: Prometheus's text format 0.0.4 over HTTP ----
 *
 * The counters are the plain integers above, read only here, at scrape
 * time.  An upstream named in several lists (the default one, rules) is
 * one series, its counters summed; a listener's counters start again
 * when its namespace is made anew (Prometheus reads a counter reset).
 */

/* A growing text; on failure to grow, oom is set and the text stops. */
struct text {
	char		*p;
	size_t		 len, cap;
	bool		 oom;
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	for (;;) {
		if (t->oom)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		if (n < 0 || (p = realloc(t->p, 2 * t->cap + (size_t)n + 1)) ==
		    NULL) {
			t->oom = true;
			return;
		}
		t->p = p;
		t->cap = 2 * t->cap + (size_t)n + 1;
	}
}

/* A label value: \ " and newline escaped, as the format asks. */
static const char *
label_value(const char *v, char *buf, size_t size)
{
	size_t o = 0;

	for (; *v != '\0' && o + 3 < size; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			buf[o++] = '\\';
		buf[o++] = *v == '\n' ? 'n' : *v;
	}
	buf[o] = '\0';
	return buf;
}

static void
metric_head(struct text *t, const char *name, const char *type,
    const char *help)
{
	text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One upstream's series, summed over the lists that name it. */
struct useries {
	char		 name[80];
	uint64_t	 sent, timeouts, errors, answers, dur_ms;
	uint64_t	 hist[UP_HIST];
	bool		 up;
};

static int
useries_cmp(const void *a, const void *b)
{
	return strcmp(((const struct useries *)a)->name,
	    ((const struct useries *)b)->name);
}

static void
useries_add(struct useries *s, int *n, const struct ulist *l)
{
	int i, b;

	for (i = 0; l != NULL && i < l->n; i++, (*n)++) {
		addr_text(&l->u[i].addr, '#', s[*n].name, sizeof(s[*n].name));
		s[*n].sent = l->u[i].sent;
		s[*n].timeouts = l->u[i].timeouts;
		s[*n].errors = l->u[i].errors;
		s[*n].answers = l->u[i].answers;
		s[*n].dur_ms = l->u[i].dur_ms;
		for (b = 0; b < UP_HIST; b++)
			s[*n].hist[b] = l->u[i].hist[b];
		s[*n].up = l->u[i].backoff == 0;
	}
}

/* Every upstream of every list, one entry per address (sorted). */
static int
useries_all(const struct state *st, struct useries **out)
{
	struct useries *s;
	int i, b, n = 0, k = 0, total = st->deflist != NULL ? st->deflist->n : 0;

	for (i = 0; i < routes_count(&st->routes); i++)
		total += st->rlist[i] != NULL ? st->rlist[i]->n : 0;
	if ((s = calloc((size_t)total + 1, sizeof(*s))) == NULL)
		return -1;
	useries_add(s, &n, st->deflist);
	for (i = 0; i < routes_count(&st->routes); i++)
		useries_add(s, &n, st->rlist[i]);
	qsort(s, (size_t)n, sizeof(*s), useries_cmp);
	for (i = 0; i < n; i++) {
		if (k > 0 && strcmp(s[k - 1].name, s[i].name) == 0) {
			s[k - 1].sent += s[i].sent;
			s[k - 1].timeouts += s[i].timeouts;
			s[k - 1].errors += s[i].errors;
			s[k - 1].answers += s[i].answers;
			s[k - 1].dur_ms += s[i].dur_ms;
			for (b = 0; b < UP_HIST; b++)
				s[k - 1].hist[b] += s[i].hist[b];
			s[k - 1].up |= s[i].up;
			continue;
		}
		s[k++] = s[i];
	}
	*out = s;
	return k;
}

static void
metrics_upstreams(const struct state *st, struct text *t)
{
	static const char *const le[UP_HIST] = { "0.001", "0.0025", "0.005",
	    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
	    "+Inf" };
	struct useries *s = NULL;
	uint64_t cum;
	int i, b, n = useries_all(st, &s);

	metric_head(t, "dnsfwd_upstream_queries_total", "counter",
	    "Queries sent to each upstream (attempts).");
	for (i = 0; i < n; i++)
		text_add(t, "dnsfwd_upstream_queries_total{upstream=\"%s\"} "
		    "%llu\n", s[i].name, (unsigned long long)s[i].sent);
	metric_head(t, "dnsfwd_upstream_failures_total", "counter",
	    "Attempts that failed, by reason.");
	for (i = 0; i < n; i++)
		text_add(t, "dnsfwd_upstream_failures_total{upstream=\"%s\","
		    "reason=\"timeout\"} %llu\ndnsfwd_upstream_failures_total{"
		    "upstream=\"%s\",reason=\"error\"} %llu\n", s[i].name,
		    (unsigned long long)s[i].timeouts, s[i].name,
		    (unsigned long long)s[i].errors);
	metric_head(t, "dnsfwd_upstream_up", "gauge",
	    "1 while the upstream is live, 0 while it is backed off.");
	for (i = 0; i < n; i++)
		text_add(t, "dnsfwd_upstream_up{upstream=\"%s\"} %d\n",
		    s[i].name, s[i].up ? 1 : 0);
	metric_head(t, "dnsfwd_upstream_duration_seconds", "histogram",
	    "Time from sending a query to its answer, by upstream (ms "
	    "resolution).");
	for (i = 0; i < n; i++) {
		for (b = 0, cum = 0; b < UP_HIST; b++) {
			cum += s[i].hist[b];
			text_add(t, "dnsfwd_upstream_duration_seconds_bucket{"
			    "upstream=\"%s\",le=\"%s\"} %llu\n", s[i].name,
			    le[b], (unsigned long long)cum);
		}
		text_add(t, "dnsfwd_upstream_duration_seconds_sum{upstream="
		    "\"%s\"} %llu.%03llu\ndnsfwd_upstream_duration_seconds_count{"
		    "upstream=\"%s\"} %llu\n", s[i].name,
		    (unsigned long long)(s[i].dur_ms / 1000),
		    (unsigned long long)(s[i].dur_ms % 1000), s[i].name,
		    (unsigned long long)cum);
	}
	free(s);
}

static void
metrics_queries(const struct state *st, struct text *t)
{
	const struct stats *x = &st->stats;
	const struct listener *l;
	char a[80], ns[PATH_MAX * 2];
	uint64_t other;
	int i;

	metric_head(t, "dnsfwd_queries_total", "counter",
	    "Queries received, by listener, namespace and transport.");
	for (i = 0; i < st->nlis; i++) {
		l = &st->lis[i];
		if (l->udp < 0)
			continue;
		addr_text(&l->addr, ':', a, sizeof(a));
		label_value(st->view[l->view].path != NULL ?
		    st->view[l->view].path : "", ns, sizeof(ns));
		text_add(t, "dnsfwd_queries_total{listener=\"%s\",netns=\"%s\","
		    "proto=\"udp\"} %llu\ndnsfwd_queries_total{listener=\"%s\","
		    "netns=\"%s\",proto=\"tcp\"} %llu\n", a, ns,
		    (unsigned long long)(l->queries - l->tcpq), a, ns,
		    (unsigned long long)l->tcpq);
	}
	metric_head(t, "dnsfwd_responses_total", "counter",
	    "Responses sent, by RCODE.");
	for (i = 0, other = 0; i < 16; i++)
		if (i <= RCODE_REFUSED)
			text_add(t, "dnsfwd_responses_total{rcode=\"%s\"} %llu\n",
			    dns_rcode_name(i), (unsigned long long)x->rcode[i]);
		else
			other += x->rcode[i];
	text_add(t, "dnsfwd_responses_total{rcode=\"other\"} %llu\n",
	    (unsigned long long)other);
	metric_head(t, "dnsfwd_answers_total", "counter",
	    "Answers, by where they came from.");
	text_add(t, "dnsfwd_answers_total{source=\"cache\"} %llu\n"
	    "dnsfwd_answers_total{source=\"upstream\"} %llu\n"
	    "dnsfwd_answers_total{source=\"local\"} %llu\n"
	    "dnsfwd_answers_total{source=\"stale\"} %llu\n",
	    (unsigned long long)st->cache.hits, (unsigned long long)x->answered,
	    (unsigned long long)x->local, (unsigned long long)x->stale);
	metric_head(t, "dnsfwd_refused_total", "counter",
	    "Queries and connections refused, by reason.");
	text_add(t, "dnsfwd_refused_total{reason=\"stranger\"} %llu\n"
	    "dnsfwd_refused_total{reason=\"stranger_tcp\"} %llu\n"
	    "dnsfwd_refused_total{reason=\"over_share\"} %llu\n"
	    "dnsfwd_refused_total{reason=\"table_full\"} %llu\n"
	    "dnsfwd_refused_total{reason=\"tcp_full\"} %llu\n"
	    "dnsfwd_refused_total{reason=\"tcp_over_share\"} %llu\n",
	    (unsigned long long)x->strangers,
	    (unsigned long long)x->strangers_tcp,
	    (unsigned long long)x->over_share, (unsigned long long)x->full,
	    (unsigned long long)x->tcp_full,
	    (unsigned long long)x->tcp_over_share);
}

/* The whole body, into t. */
static void
metrics_body(const struct state *st, struct text *t)
{
	struct cache_stats cs;
	int i, ns = 0;

	metrics_queries(st, t);
	metrics_upstreams(st, t);
	cache_stats(&st->cache, &cs);
	for (i = 0; i < st->nview; i++)
		ns += st->view[i].used && st->view[i].bound &&
		    st->view[i].path != NULL;
	metric_head(t, "dnsfwd_cache_entries", "gauge", "Answers cached.");
	text_add(t, "dnsfwd_cache_entries %d\n", cs.entries);
	metric_head(t, "dnsfwd_cache_bytes", "gauge",
	    "Arena bytes the cached answers hold.");
	text_add(t, "dnsfwd_cache_bytes %zu\n", cs.bytes);
	metric_head(t, "dnsfwd_cache_hits_total", "counter", "Cache hits.");
	text_add(t, "dnsfwd_cache_hits_total %llu\n",
	    (unsigned long long)cs.hits);
	metric_head(t, "dnsfwd_cache_misses_total", "counter",
	    "Cache misses.");
	text_add(t, "dnsfwd_cache_misses_total %llu\n",
	    (unsigned long long)cs.misses);
	metric_head(t, "dnsfwd_inflight", "gauge", "Queries in flight.");
	text_add(t, "dnsfwd_inflight %d\n", st->nq);
	metric_head(t, "dnsfwd_tcp_connections", "gauge",
	    "TCP client connections open.");
	text_add(t, "dnsfwd_tcp_connections %d\n", st->nconn);
	metric_head(t, "dnsfwd_namespaces", "gauge",
	    "Network namespaces (-N) with listeners open.");
	text_add(t, "dnsfwd_namespaces %d\n", ns);
}

/* Who may scrape: the rule of the DNS listeners in dnsfwd's namespace. */
static bool
metrics_allowed(const struct state *st, const struct sockaddr *sa)
{
	int i;

	if (acl_is_loopback(sa))
		return true;
	if (st->allowing)
		return acl_match(&st->allow, sa);
	for (i = 0; i < st->nview; i++)
		if (st->view[i].used && st->view[i].path == NULL &&
		    st->view[i].bound)
			return acl_match(&st->view[i].onlink, sa);
	return false;
}

static void
mconn_close(struct mconn *m)
{
	close(m->fd);		/* leaves the epoll set */
	m->fd = -1;
	m->gen++;
	free(m->out);
	m->out = NULL;
}

/* The answer to the request in m->in (whole): status, headers, body. */
static void
mconn_answer(struct state *st, struct mconn *m)
{
	struct text body = { NULL, 0, 0, false }, all = { NULL, 0, 0, false };
	const char *status = "200 OK", *minor = "0", *sp, *path;
	bool head;

	head = strncmp(m->in, "HEAD ", 5) == 0;
	path = m->in + (head ? 5 : 4);
	sp = strchr(path, ' ');
	if ((!head && strncmp(m->in, "GET ", 4) != 0) || sp == NULL ||
	    strncmp(sp, " HTTP/1.", 8) != 0)
		status = "400 Bad Request";
	else if (!((sp - path == 8 || (sp - path > 8 && path[8] == '?')) &&
	    strncmp(path, "/metrics", 8) == 0))
		status = "404 Not Found";
	else
		metrics_body(st, &body);
	if (sp != NULL && strncmp(sp, " HTTP/1.1", 9) == 0)
		minor = "1";
	if (body.oom)
		status = "503 Service Unavailable";
	text_add(&all, "HTTP/1.%s %s\r\nContent-Type: %s\r\nContent-Length: "
	    "%zu\r\nConnection: close\r\n\r\n%s", minor, status, body.len &&
	    !body.oom ? "text/plain; version=0.0.4; charset=utf-8" :
	    "text/plain; charset=utf-8", body.oom ? 0 : body.len, head ||
	    body.oom || body.p == NULL ? "" : body.p);
	free(body.p);
	if (all.oom) {
		free(all.p);
		mconn_close(m);
		return;
	}
	m->out = all.p;
	m->outlen = all.len;
	m->outoff = 0;
}

/* Write what the kernel takes; all of it written: closed. */
static void
mconn_write(struct state *st, struct mconn *m, int i)
{
	struct epoll_event ev;
	ssize_t n;

	while (m->outoff < m->outlen) {
		n = send(m->fd, m->out + m->outoff, m->outlen - m->outoff,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {	/* wait to write */
			ev.events = EPOLLOUT;
			ev.data.u64 = token_make(TK_METRICS, i, 1, m->gen);
			epoll_ctl(st->ep, EPOLL_CTL_MOD, m->fd, &ev);
			return;
		}
		if (n <= 0)
			break;
		m->outoff += (size_t)n;
	}
	mconn_close(m);
}

/* A scraper's event: read its request until whole, then answer. */
static void
mconn_io(struct state *st, int i)
{
	struct mconn *m = &st->metrics.c[i];
	ssize_t n;

	if (m->out != NULL) {
		mconn_write(st, m, i);
		return;
	}
	while (m->got < sizeof(m->in) - 1) {
		n = recv(m->fd, m->in + m->got, sizeof(m->in) - 1 - m->got,
		    MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {		/* gone before a whole request */
			mconn_close(m);
			return;
		}
		m->got += (size_t)n;
		m->in[m->got] = '\0';
		if (memmem(m->in, m->got, "\r\n\r\n", 4) != NULL ||
		    memmem(m->in, m->got, "\n\n", 2) != NULL)
			break;
	}
	m->in[m->got] = '\0';
	mconn_answer(st, m);	/* a request too long: 400 or 404 */
	if (m->fd >= 0)
		mconn_write(st, m, i);
}

/* New scrapers: each allowed one takes a free slot; the rest are closed. */
static void
metrics_accept(struct state *st)
{
	struct epoll_event ev;
	union sockany peer;
	socklen_t len;
	struct mconn *m;
	int fd, k, i;

	for (k = 0; k < 8; k++) {
		len = sizeof(peer);
		fd = accept4(st->metrics.fd, &peer.sa, &len, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);
		if (fd == -1)
			return;
		for (i = 0; i < METRICS_CONNS && st->metrics.c[i].fd >= 0; i++)
			;
		if (i == METRICS_CONNS || !metrics_allowed(st, &peer.sa)) {
			close(fd);
			continue;
		}
		m = &st->metrics.c[i];
		m->fd = fd;
		m->got = 0;
		m->deadline = time_after(st->now, METRICS_WAIT_MS);
		ev.events = EPOLLIN;
		ev.data.u64 = token_make(TK_METRICS, i, 1, m->gen);
		if (epoll_ctl(st->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			mconn_close(m);
	}
}

static void
metrics_event(struct state *st, int idx, int pos, uint32_t gen)
{
	if (pos == 0 && st->metrics.fd >= 0)
		metrics_accept(st);
	else if (pos == 1 && idx < METRICS_CONNS &&
	    st->metrics.c[idx].fd >= 0 && st->metrics.c[idx].gen == gen)
		mconn_io(st, idx);
}

static uint64_t
metrics_next(const struct state *st, uint64_t now)
{
	uint64_t next = TIME_NONE;
	int i;

	for (i = 0; i < METRICS_CONNS; i++)
		if (st->metrics.c[i].fd >= 0)
			next = time_first(now, next, st->metrics.c[i].deadline);
	return next;
}

/* Scrapers past their deadline (stalled, trickling): closed. */
static void
metrics_due(struct state *st, uint64_t now)
{
	int i;

	for (i = 0; i < METRICS_CONNS; i++)
		if (st->metrics.c[i].fd >= 0 &&
		    time_due(now, st->metrics.c[i].deadline))
			mconn_close(&st->metrics.c[i]);
}

/* ==== 32. The event loop ================================================= */
/*
 * One pass: wait in ppoll() until the nearest deadline (not at all when
 * one is due), dispatch what is ready (the file watch, one epoll_wait()
 * for upstream sockets and TCP clients, and the listeners last, so work
 * in progress finishes before new work starts), then run what is due
 * (attempts move on, held queries fail, idle TCP clients close, a
 * scheduled reload runs).  Events before deadlines: a reply that came
 * while dnsfwd was not scheduled (a busy machine) is read before its
 * attempt's deadline is judged, not thrown away as a timeout.
 *
 * What the loop guarantees:
 * - The pollfd array is fixed at start (inotify, the epoll set, the
 *   listeners) and each of its entries is handled at most once per pass.
 * - Every other descriptor is in the epoll set, and one epoll_wait() per
 *   pass reports each at most once.  Its event carries the generation its
 *   owner had when the descriptor was registered; a query's incarnation
 *   or a connection's generation changes when it is freed, and a closed
 *   attempt clears its bit, so an event for anything closed, freed or
 *   reused earlier in the pass is dropped, never dispatched.
 * - Nothing waits for an event it would not act on: a TCP client is
 *   polled for reading only while it may send (conn_arm()), and every
 *   readable upstream socket is read or closed.  So ppoll() never returns
 *   at once with nothing to do.
 */

/*
 * q has waited STALE_WAIT_MS with a stale answer kept: its clients get it
 * now (RFC 8767 5), and q goes on to refresh it.
 */
static void
stale_due(struct state *st, struct query *q)
{
	struct dns_reply r;
	size_t n;

	n = query_stale_get(st, q, &r);
	if (n != 0)
		query_stale(st, q, st->stalebuf, n, &r);
	else
		stale_remove(st, q);	/* evicted meanwhile */
}

/*
 * The parts that keep deadlines.  Each says when it next needs to run
 * (TIME_NONE: never) and runs what is due at now; the loop takes the
 * earliest over timer_parts[] below and calls each part that is due.  A
 * new timer is a new row, or a new deadline inside its part: nothing else
 * in the loop changes.
 */

/* The deadline of the first query on FIFO which, TIME_NONE if empty. */
static uint64_t
fifo_next(const struct state *st, int which)
{
	int32_t i = st->fifo[which].head;

	return i >= 0 ? st->q[i].deadline : TIME_NONE;
}

/* When the oldest query waiting with a stale answer is due it. */
static uint64_t
stale_next(const struct state *st)
{
	int32_t i = st->stale.head;

	return i >= 0 ? stale_deadline(st->q[i].start) : TIME_NONE;
}

/* Queries: attempts time out, held ones give up, probes end, stale. */
static uint64_t
queries_next(const struct state *st, uint64_t now)
{
	uint64_t next = time_first(now, fifo_next(st, F_ATTEMPT),
	    fifo_next(st, F_HELD));
	int k;

	for (k = 0; st->nprobe > 0 && k < MAX_PROBES; k++)
		if (st->probes[k].list != NULL)
			next = time_first(now, next, st->probes[k].deadline);
	return time_first(now, next, stale_next(st));
}

static void
queries_due(struct state *st, uint64_t now)
{
	int k;

	while (time_due(now, fifo_next(st, F_ATTEMPT)))
		expire_attempt(st, &st->q[st->fifo[F_ATTEMPT].head]);
	for (k = 0; time_due(now, fifo_next(st, F_HELD)); k++)
		query_done(st, &st->q[st->fifo[F_HELD].head], NULL, 0, NULL,
		    "no upstream yet");
	if (k > 0 && rate_say(&st->files.held_said, now, HOLD_MS, 1, NULL))
		logmsg(1, "%s%s: no upstream after %d s: %d held %s failed "
		    "(SERVFAIL)", st->files.file[0].path_read == NULL ?
		    "still waiting for " : "", st->files.nfile > 0 ?
		    st->files.file[0].path[0] : "-s", HOLD_MS / 1000, k,
		    k == 1 ? "query" : "queries");
	for (k = 0; st->nprobe > 0 && k < MAX_PROBES; k++)
		if (st->probes[k].list != NULL &&
		    time_due(now, st->probes[k].deadline))
			probe_end(st, k, false);
	while (time_due(now, stale_next(st)))
		stale_due(st, &st->q[st->stale.head]);
}

/* TCP clients: idle and slow ones close; accepting resumes. */
static uint64_t
conns_next(const struct state *st, uint64_t now)
{
	uint64_t next = st->accept_at;
	int32_t i;
	int k;

	for (k = 0; k < C_COUNT; k++)
		if ((i = st->cfifo[k].head) >= 0)
			next = time_first(now, next, st->conn[i].deadline);
	return next;
}

static void
conns_due(struct state *st, uint64_t now)
{
	struct conn *c;
	int k;

	for (k = 0; k < C_COUNT; k++)
		while (st->cfifo[k].head >= 0 && time_due(now,
		    st->conn[st->cfifo[k].head].deadline)) {
			c = &st->conn[st->cfifo[k].head];
			switch (tcp_expire((enum tcp_phase)k,
			    c->inflight > 0 || c->wpos < c->wlen)) {
			case TCP_WAIT:
				conn_fifo_push(st, c, C_IDLE);
				break;
			case TCP_CLOSE_SLOW:
				st->stats.tcp_slow++;
				conn_close(st, c);
				break;
			case TCP_CLOSE_IDLE:
				conn_close(st, c);
				break;
			}
		}
	conn_cancel_orphans(st);
	if (time_due(now, st->accept_at))
		tcp_resume(st);
}

/* Namespaces: a scan scheduled after a change, or to retry. */
static uint64_t
views_next(const struct state *st, uint64_t now)
{
	(void)now;
	return st->ns_scan_at;
}

static void
views_due(struct state *st, uint64_t now)
{
	if (time_due(now, st->ns_scan_at))
		views_scan(st);
}

/* Followed files: a scheduled reload, and polling where it is used. */
static uint64_t
files_next(const struct state *st, uint64_t now)
{
	return time_first(now, st->files.reload_at, st->files.polling ?
	    st->files.next_poll : TIME_NONE);
}

static void
files_due(struct state *st, uint64_t now)
{
	if (time_due(now, st->files.reload_at)) {
		st->files.reload_at = TIME_NONE;
		follow_reload(st, false);
	}
	if (st->files.polling && time_due(now, st->files.next_poll)) {
		st->files.next_poll = time_after(now, st->files.poll_ms);
		follow_reload(st, false);
	}
}

/* Readiness: said at the latest when the hold at start is over. */
static uint64_t
ready_next(const struct state *st, uint64_t now)
{
	(void)now;
	return st->ready ? TIME_NONE : hold_deadline(st->start_ms);
}

static void
ready_due(struct state *st, uint64_t now)
{
	(void)now;
	ready_check(st);
}

static const struct timer_part {
	uint64_t	(*next)(const struct state *, uint64_t);
	void		(*due)(struct state *, uint64_t);
} timer_parts[] = {
	{ queries_next, queries_due },	/* the engine */
	{ views_next, views_due },	/* surroundings: namespaces */
	{ ready_next, ready_due },	/* ... readiness */
	{ conns_next, conns_due },	/* clients */
	{ files_next, files_due },	/* surroundings: followed files */
	{ metrics_next, metrics_due },	/* counters: scrapers */
};

#define NTIMER_PARTS	(sizeof(timer_parts) / sizeof(timer_parts[0]))

/*
 * Run what is due, then what every pass does (readiness may have come
 * with an event; queries of closed connections end; answers queued for
 * UDP clients go); return the ms until the next deadline, -1 for none.
 */
static int
loop_timers(struct state *st)
{
	uint64_t next = TIME_NONE;
	size_t k;

	for (k = 0; k < NTIMER_PARTS; k++)
		if (time_due(st->now, timer_parts[k].next(st, st->now))) {
			timer_parts[k].due(st, st->now);
			clients_drain(st);
		}
	ready_check(st);
	conn_cancel_orphans(st);
	batch_flush(st);
	for (k = 0; k < NTIMER_PARTS; k++)
		next = time_first(st->now, next, timer_parts[k].next(st,
		    st->now));
	return time_wait(st->now, next);
}

/* One epoll event: dispatched only if its owner is still the one named. */
static void
loop_event(struct state *st, uint64_t tok, uint32_t ev)
{
	uint32_t gen = (uint32_t)(tok >> 32);
	int kind = (int)(tok >> 24 & 0xff), pos = (int)(tok >> 16 & 0xff);
	int idx = (int)(tok & 0xffff);
	struct usock *u;
	struct query *q;
	struct conn *c;

	if (kind == TK_CONN) {
		c = &st->conn[idx];
		if (c->fd >= 0 && c->gen == gen)
			conn_io(st, c, ev);
		return;
	}
	if (kind == TK_VIEW) {
		view_event(st, idx);
		return;
	}
	if (kind == TK_METRICS) {
		metrics_event(st, idx, pos, gen);
		return;
	}
	if (kind == TK_LISTEN) {
		if (st->nready < EPOLL_BATCH)	/* one per event taken */
			st->ready_tok[st->nready++] = tok;
		return;
	}
	if (kind == TK_USOCK) {
		u = &st->us[idx];
		if (u->probe >= 0) {
			probe_read(st, u->probe);
			return;
		}
		if (u->q < 0) {		/* came in before it was disconnected */
			for (pos = 0; pos < 8 && u->fd >= 0; pos++)
				if (recv(u->fd, st->ubuf, DNS_MAX_TCP,
				    MSG_DONTWAIT) == -1 && errno == EAGAIN)
					break;
			return;
		}
		q = &st->q[u->q];
		pos = u->pos;
		if (q->state == Q_UDP && q->seq == u->seq &&
		    (q->fds & (1u << pos)) && q->us[pos] == idx)
			upstream_udp_read(st, q, pos);
		return;
	}
	q = &st->q[idx];
	if (q->state == Q_FREE || q->seq != gen || !(q->fds & (1u << pos)))
		return;
	if (q->state == Q_UDP)
		upstream_udp_read(st, q, pos);
	else
		upstream_tcp_io(st, q, ev);
}

/* A listener's event, held back to the end of the pass: still its own? */
static void
listener_event(struct state *st, uint64_t tok)
{
	uint32_t gen = (uint32_t)(tok >> 32);
	int pos = (int)(tok >> 16 & 0xff), idx = (int)(tok & 0xffff);
	const struct listener *l = &st->lis[idx];

	if (idx >= st->nlis || l->udp < 0 || l->gen != gen)
		return;
	if (pos == 0)
		udp_read(st, idx);
	else if (st->accept_at == TIME_NONE)	/* accepts not paused */
		tcp_accept(st, idx);
}

static void
loop_dispatch(struct state *st)
{
	struct epoll_event ev[EPOLL_BATCH];
	int i, n;

	if (st->pfd[PFD_INOTIFY].revents) {
		watch_read(st);
		clients_drain(st);
	}
	if (st->pfd[PFD_EPOLL].revents) {
		st->nready = 0;
		n = epoll_wait(st->ep, ev, EPOLL_BATCH, 0);
		for (i = 0; i < n; i++) {
			loop_event(st, ev[i].data.u64, ev[i].events);
			clients_drain(st);	/* before the next read */
		}
		batch_flush(st);
		/* the listeners last: work in progress before new work */
		for (i = 0; i < st->nready; i++) {
			listener_event(st, st->ready_tok[i]);
			clients_drain(st);
		}
	}
	batch_flush(st);
}

static void
loop_run(struct state *st)
{
	struct timespec ts;
	sigset_t none;
	int timeout, ready;

	sigemptyset(&none);
	st->now = clock_ms();
	timeout = loop_timers(st);
	for (;;) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		ready = ppoll(st->pfd, PFD_COUNT, timeout < 0 ? NULL :
		    &ts, &none);
		if (ready == -1 && errno != EINTR)
			die(1, "poll: %s", strerror(errno));
		st->now = clock_ms();
		if (sig_exit)
			return;
		if (sig_usr1) {
			sig_usr1 = 0;
			stats_print(st);
		}
		if (sig_hup) {
			sig_hup = 0;
			logmsg(1, "SIGHUP: re-reading files, flushing the cache");
			cache_flush(&st->cache);
			st->generation++;
			follow_reload(st, true);
			views_changed(st);
			clients_drain(st);
		}
		if (ready > 0)
			loop_dispatch(st);
		st->now = clock_ms();
		timeout = loop_timers(st);
	}
}

/* ==== 33. Options: their values and messages ============================= */

/* What the command line asks for that start-up, not the state, keeps. */
struct options {
	struct listen_chain *chains;	/* one per -l (argc + 1 of them) */
	int		 nchain;	/* chains used */
	const char	*resolv;	/* -r FILE; NULL: the default files */
	const char	*user;		/* -u; NULL: stay who we are */
	const char	*hosts[MAX_HOSTS];	/* -H files, in order */
	int		 nhosts;
	const char	*servers[MAX_SERVERS_FILES];	/* --servers-file */
	int		 nservers;
	bool		 logtime;	/* --log-time */
	bool		 no_sandbox;	/* --no-sandbox */
	long		 cache_n;	/* -c */
	size_t		 cache_bytes;	/* --cache-bytes; 0: -c * CACHE_TYPICAL */
	long		 stale_s;	/* --stale */
	long		 min_ttl;	/* --min-cache-ttl */
	long		 max_ttl;	/* --max-cache-ttl; -1: not given */
	bool		 no_negcache;	/* --no-negcache */
	long		 poll_s;	/* --poll; 0: inotify */
	long		 timeout_ms;	/* -t */
	long		 qmax;		/* --max-queries */
	long		 tcpmax;	/* --max-tcp */
};

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: dnsfwd [OPTION]...\n"
"Forward DNS queries to the upstreams of resolv.conf, followed live.\n"
"\n"
"  -l, --listen ADDR[:PORT][,ADDR[:PORT]...]  listen on UDP and TCP; a comma\n"
"                         list is a fallback chain (default 127.0.0.1:53)\n"
"  -N, --netns PATH|NAME|PATTERN  open the next listeners in network\n"
"                         namespace PATH (NAME: /run/netns/NAME; a glob(7)\n"
"                         pattern: every match, present and future; '-':\n"
"                         dnsfwd's own)\n"
"      --allow CIDR       answer clients from CIDR (repeatable; replaces the\n"
"                         default: the listener's own networks); loopback\n"
"                         is always answered, others get REFUSED\n"
"  -r, --resolv FILE      follow FILE for upstreams (default: the stub\n"
"                         of systemd-resolved, with its uplink servers as\n"
"                         failover, when /etc/resolv.conf names it; else\n"
"                         /run/systemd/resolve/resolv.conf, else\n"
"                         /etc/resolv.conf)\n"
"  -R, --no-resolv        follow no file; use only -s servers\n"
"  -s, --server ADDR[#PORT]  a static upstream, ahead of the file's\n"
"  -s, --server /DOMAIN/[DOMAIN/...]ADDR[#PORT]|#  upstream for DOMAIN\n"
"                         and its subdomains ('#': the default list)\n"
"  -f, --fallback ADDR[#PORT]  used while the list would be empty\n"
"  -a, --address /DOMAIN/[DOMAIN/...][IP]  answer DOMAIN here: with IP,\n"
"                         or NXDOMAIN; /#/ matches every name\n"
"  -H, --hosts FILE       answer A, AAAA and PTR from FILE, followed live\n"
"      --bogus-priv       reverse lookups of private addresses: NXDOMAIN\n"
"                         here (unless a rule or -H covers them)\n"
"      --domain-needed    single-label names never leave: NXDOMAIN here\n"
"      --filter-aaaa      hand out no AAAA records (nor HTTPS ipv6hint)\n"
"      --dns64 PREFIX     DNS64 (RFC 6147) with a NAT64 prefix, e.g.\n"
"                         64:ff9b::/96\n"
"      --servers-file FILE  split-DNS rules in dnsmasq's syntax (server=,\n"
"                         local=, address=), followed live (openresolv)\n"
"  -c, --cache-size N     keep up to N answers (default 1000; 0: off)\n"
"      --cache-bytes SIZE  hold them in SIZE bytes (k, m, g: KiB, MiB,\n"
"                         GiB; default 256 per entry: 250k for 1000)\n"
"      --min-cache-ttl S  keep answers at least S seconds (at most 3600)\n"
"      --max-cache-ttl S  keep and hand out answers at most S seconds\n"
"      --no-negcache      do not cache negative answers\n"
"      --stale SECONDS    serve an answer up to SECONDS past its expiry\n"
"                         when no upstream answers (default 86400; 0: off)\n"
"      --poll SECONDS     poll the file instead of using inotify\n"
"  -t, --timeout MS       wait for one upstream (default 1500)\n"
"      --parallel         ask all upstreams at once\n"
"      --no-sandbox       no sandbox (for strace and debugging)\n"
"      --max-queries N    queries in flight (default 4096)\n"
"      --max-tcp N        TCP client connections (default 64)\n"
"  -u, --user USER|UID:GID  drop privileges after binding\n"
"      --ready-fd N       write a newline to descriptor N when ready\n"
"      --pid-file FILE    write the process ID to FILE; removed on exit\n"
"  -v, --verbose          log every query\n"
"      --syslog[=SOCKET]  log to syslog (/dev/log, or SOCKET), facility\n"
"                         daemon; \"listening on\" to stderr as well\n"
"      --metrics ADDR[:PORT]  Prometheus metrics over HTTP at /metrics\n"
"                         (port 9153 unless given)\n"
"      --log-time         start those lines with the time of day (the\n"
"                         default unless stderr is a terminal or journal)\n"
"  -q, --quiet            errors only\n"
"  -h, --help             this text\n"
"  -V, --version          print the version\n");
}

static _Noreturn void usage_error(const char *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
usage_error(const char *opt, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	die(1, "%s: %s", opt, why);
}

/* A numeric option value in [min, max], of unit (NULL: none); else exit 1. */
static long
opt_number(const char *opt, const char *arg, long min, long max,
    const char *unit)
{
	unsigned long v;

	if (cfg_parse_uint(arg, (unsigned long)min, (unsigned long)max, &v) ==
	    -1)
		usage_error(opt, "\"%s\" is not a number%s%s (%ld-%ld)", arg,
		    unit != NULL ? " of " : "", unit != NULL ? unit : "", min,
		    max);
	return (long)v;
}

/* ==== 34. Start-up: privileges and memory ================================ */

/* --pid-file: written once listening, before privileges are dropped. */
static void
pid_file_write(const char *path)
{
	char buf[32];
	int fd, n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write(fd, buf, (size_t)n) != n)
		die(1, "--pid-file %s: %s", path, strerror(errno));
	close(fd);
}

static void
scope_or_die(const char *opt, struct addr *a)
{
	if (addr_scope(a) == -1)
		die(1, "%s: %%%s: no such interface", opt, a->ifname);
}

/* Resolve -u USER before binding, so a bad name fails before "listening". */
static void
user_lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	unsigned long u, g;
	const char *colon = strchr(user, ':');
	char num[32];

	if (colon != NULL && (size_t)(colon - user) < sizeof(num)) {
		memcpy(num, user, (size_t)(colon - user));
		num[colon - user] = '\0';
		if (cfg_parse_uint(num, 0, UINT32_MAX - 1, &u) == -1 ||
		    cfg_parse_uint(colon + 1, 0, UINT32_MAX - 1, &g) == -1)
			die(1, "-u: \"%s\" is not UID:GID", user);
		*uid = (uid_t)u;
		*gid = (gid_t)g;
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		die(1, "-u: no user \"%s\"", user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

/*
 * Keep only the capabilities in keep (of the first 32), in every set and
 * in the bounding set; with -u, become that user first (keeping them
 * across setuid()).  0, or -1 with errno when -u fails.  Root without -u
 * keeps its user ID but no capability (no_new_privs and the filter stop
 * an execve() from giving them back).
 */
static int
privileges_drop(const char *user, uid_t uid, gid_t gid, uint32_t keep)
{
	int c;

	for (c = 0; c < 64; c++)	/* EPERM without CAP_SETPCAP */
		if ((c >= 32 || !(keep & (1u << c))) && prctl(PR_CAPBSET_DROP,
		    (long)c, 0L, 0L, 0L) == -1 && errno == EINVAL)
			break;
	if (user != NULL) {
		if (keep != 0)
			prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L);
		if (setgroups(0, NULL) == -1 || setgid(gid) == -1 ||
		    setuid(uid) == -1)
			return -1;
		prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
	}
	(void)caps_set(keep, keep);	/* fails when we had none: fine */
	return 0;
}


/* Preallocate every table; nothing is allocated per query after this. */
static void
state_alloc(struct state *st)
{
	ssize_t big;
	uint32_t b = 16;
	int i;

	st->q = xcalloc((size_t)st->qmax, sizeof(*st->q));
	st->negbuf = xcalloc((size_t)st->qmax, NEG_MAX);
	while (b < 2u * (uint32_t)st->qmax)
		b *= 2;
	st->qbucket = xcalloc(b, sizeof(*st->qbucket));
	st->qmask = b - 1;
	for (i = 0; i < (int)b; i++)
		st->qbucket[i] = -1;
	st->freeq = -1;		/* slots are taken from qhigh on first use */
	st->stale.head = st->stale.tail = -1;
	st->done = LIST_EMPTY;
	st->stalebuf = xcalloc(1, STALE_BUF);
	/* two nodes (address, /64) per query and per connection at most */
	st->src = xcalloc(2 * ((size_t)st->qmax + (size_t)st->tcpmax),
	    sizeof(*st->src));
	while (b < 2u * ((uint32_t)st->qmax + (uint32_t)st->tcpmax))
		b *= 2;
	st->sbucket = xcalloc(b, sizeof(*st->sbucket));
	st->smask = b - 1;	/* buckets hold first + 1: calloc's 0 is empty */
	st->freesrc = -1;	/* nodes are taken from shigh on first use */
	for (i = 0; i < F_COUNT; i++)
		st->fifo[i].head = st->fifo[i].tail = -1;
	st->conn = xcalloc((size_t)st->tcpmax, sizeof(*st->conn));
	st->wbuf = xcalloc((size_t)st->tcpmax, TCP_WBUF);
	st->freeconn = -1;
	for (i = 0; i < C_COUNT; i++)
		st->cfifo[i].head = st->cfifo[i].tail = -1;
	st->orphans = LIST_EMPTY;
	st->tbuf = xcalloc((size_t)st->tcpmax, sizeof(*st->tbuf));
	st->freetbuf = xcalloc((size_t)st->tcpmax, sizeof(int));
	for (i = 0; i < st->tcpmax; i++)
		st->freetbuf[st->nfreetbuf++] = i;
	st->rbuf = xcalloc(BATCH, DNS_MAX_UDP);
	st->cli.buf = xcalloc(BATCH, DNS_MAX_UDP);
	st->ubuf = xcalloc(1, DNS_MAX_TCP);
	if (st->filter_aaaa)
		st->fbuf = xcalloc(1, DNS_MAX_TCP + DNS_EDE_MAX);
	if (st->dns64)
		st->d64buf = xcalloc(1, DNS_MAX_TCP);
	for (i = 0; i < BATCH; i++) {
		st->riov[i].iov_base = st->rbuf[i];
		st->rmsg[i].msg_hdr.msg_iov = &st->riov[i];
		st->rmsg[i].msg_hdr.msg_iovlen = 1;
		st->rmsg[i].msg_hdr.msg_name = &st->rname[i];
	}
	for (i = 0, big = RESOLV_MAX_FILE; i < st->files.nfile; i++) {
		st->files.file[i].text = xcalloc(1,
		    (size_t)st->files.file[i].max + 1);
		if (st->files.file[i].max > big)
			big = st->files.file[i].max;
	}
	st->files.buf = xcalloc(1, (size_t)big + 1);
	st->pfd = xcalloc(PFD_COUNT, sizeof(*st->pfd));
}

/*
 * The descriptor budget for upstream sockets (one per attempt): the soft
 * RLIMIT_NOFILE is raised to the hard one; what the fixed descriptors and
 * the TCP clients leave is for attempts.  Said when it is fewer than the
 * queries that may be in flight.
 */
static void
state_budget(struct state *st)
{
	struct rlimit rl;
	long limit, avail;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		st->sockmax = st->qmax;
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	limit = rl.rlim_cur > (1 << 20) ? (1 << 20) : (long)rl.rlim_cur;
	/* stdio, inotify, epoll, listeners, netlink, a file being read, slack */
	avail = limit - (3 + 2 + 2L * st->nlis + st->nview + 1 + FD_SLACK);
	st->tcpcap = st->tcpmax;
	if (avail >= (long)st->qmax + st->tcpmax) {
		st->sockmax = (int)(avail - st->tcpmax);
		return;
	}
	/* too few: at most half go to TCP clients, the rest to attempts */
	if (st->tcpcap > avail / 2)
		st->tcpcap = (int)(avail / 2);
	if (st->tcpcap < 1)
		logmsg(0, "descriptor limit %ld: none left for TCP clients, "
		    "whose connections are refused (raise ulimit -n)",
		    rl.rlim_cur > (1 << 20) ? (long)(1 << 20) :
		    (long)rl.rlim_cur);
	st->sockmax = (int)(avail - st->tcpcap);
	if (st->sockmax < 1)
		st->sockmax = 1;
	logmsg(0, "descriptor limit %ld: %d upstream sockets for %d queries "
	    "in flight; beyond that queries get SERVFAIL (raise ulimit -n or "
	    "lower --max-queries)", limit, st->sockmax, st->qmax);
}

/* The fixed pollfd entries: inotify, the epoll set, the listeners. */
static void
state_fds(struct state *st)
{
	if ((st->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die(1, "epoll: %s", strerror(errno));
	st->pfd[PFD_INOTIFY].fd = st->files.ifd;
	st->pfd[PFD_INOTIFY].events = POLLIN;
	st->pfd[PFD_EPOLL].fd = st->ep;
	st->pfd[PFD_EPOLL].events = POLLIN;
	state_budget(st);
	st->uscap = st->sockmax < 65535 ? st->sockmax : 65535;
	st->us = xcalloc((size_t)st->uscap, sizeof(*st->us));
	st->usfree[0] = st->usfree[1] = -1;
}

/* ==== 35. Start-up: listeners, files, the order ========================== */

/* Watches need absolute paths: a relative one is taken from the cwd. */
static const char *
path_absolute(const char *path)
{
	char cwd[PATH_MAX], *abs;
	size_t n;

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return path;
	n = strlen(cwd) + strlen(path) + 2;
	abs = xcalloc(1, n);
	snprintf(abs, n, "%s/%s", cwd, path);
	return abs;
}

/*
 * A -N value: "-" is our own namespace again, a bare NAME is
 * /run/netns/NAME, and a glob(7) pattern may stand for the last name.
 */
static void
group_add(struct state *st, const char *arg)
{
	struct lgroup *g = &st->grp[st->ngrp++];
	const char *slash, *base;
	char *p;
	size_t n;

	g->wd = -1;
	if (strcmp(arg, "-") == 0)
		return;
	if (strchr(arg, '/') == NULL) {
		n = strlen(arg) + sizeof("/run/netns/");
		p = xcalloc(1, n);
		snprintf(p, n, "/run/netns/%s", arg);
		arg = p;
	}
	g->path = path_absolute(arg);
	slash = strrchr(g->path, '/');
	base = slash + 1;
	n = (size_t)(slash - g->path);
	g->dir = xcalloc(1, n + 2);
	memcpy(g->dir, g->path, n > 0 ? n : 1);
	if (strpbrk(g->dir, "*?[") != NULL)
		usage_error("-N", "\"%s\": a pattern matches names in one "
		    "directory only", arg);
	if (strpbrk(base, "*?[") != NULL)
		g->glob = base;
}

/*
 * Open every listener asked at start: our own namespace's and each -N
 * path's (fatal, exit 2, as before), and those of the namespaces a -N
 * pattern matches now (not fatal: they may come and go).
 */
static void
listen_start(struct state *st)
{
	int gi, vi;

	for (gi = 0; gi < st->ngrp; gi++) {
		if (st->grp[gi].nch == 0 || st->grp[gi].glob != NULL)
			continue;
		vi = view_alloc(st, gi, (char *)(uintptr_t)st->grp[gi].path);
		if (vi < 0)
			die(1, "out of memory");
		view_open(st, vi, true);
	}
	views_scan(st);		/* the patterns' first matches */
}

/* Name the files to follow: the resolv file (or candidates) and -H. */
static void
follow_paths(struct state *st, const char *file, const struct options *o)
{
	static const char sysd[] = "/run/systemd/resolve/resolv.conf";
	static const char etc[] = "/etc/resolv.conf";
	struct watched_file *ff;
	int i;

	if (st->following) {
		ff = &st->files.file[st->files.nfile++];
		ff->hosts = -1;
		ff->path[ff->npath++] = file != NULL ? path_absolute(file) :
		    etc;
		ff->given = file != NULL;
		ff->opt = "-r ";
	}
	/*
	 * With no -r, resolved's own list of uplink servers is followed too:
	 * while /etc/resolv.conf names its stub, they are the stub's
	 * failover (asked only when it fails); while /etc/resolv.conf gives
	 * nothing, they are the list.
	 */
	if (st->following && file == NULL) {
		ff = &st->files.file[st->files.nfile++];
		ff->hosts = -1;
		ff->failover = true;
		ff->path[ff->npath++] = sysd;
	}
	for (i = 0; i < o->nhosts; i++) {
		ff = &st->files.file[st->files.nfile++];
		ff->path[ff->npath++] = path_absolute(o->hosts[i]);
		ff->hosts = i;
		ff->given = true;
		ff->opt = "-H ";
	}
	for (i = 0; i < o->nservers; i++) {
		ff = &st->files.file[st->files.nfile++];
		ff->path[ff->npath++] = path_absolute(o->servers[i]);
		ff->hosts = -1;
		ff->servers = true;
		ff->given = true;
		ff->opt = "--servers-file ";
	}
	for (i = 0; i < st->files.nfile; i++) {
		st->files.file[i].textlen = -1;
		st->files.file[i].max = st->files.file[i].servers ?
		    SERVERS_MAX_FILE : RESOLV_MAX_FILE;
	}
}

/* Start watching (or polling) the followed files, and read them once. */
static void
follow_start(struct state *st, long poll_s)
{
	struct files *f = &st->files;

	f->ifd = -1;
	if (f->nfile == 0)
		return;
	f->poll_ms = poll_s > 0 ? (uint64_t)poll_s * 1000 : POLL_MS;
	if (poll_s == 0) {
		errno = 0;
		f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (f->ifd != -1) {
			watch_arm(st);
			if (f->nw == 0) {
				close(f->ifd);
				f->ifd = -1;
			}
		}
		if (f->ifd == -1)
			logmsg(0, "inotify unavailable (%s); polling %s every "
			    "%llu s", errno == 0 ? "no watch could be set" :
			    strerror(errno), f->file[0].path[0],
			    (unsigned long long)(f->poll_ms / 1000));
	}
	f->polling = f->ifd == -1;
	if (poll_s > 0)
		logmsg(1, "polling %s every %ld s", f->file[0].path[0], poll_s);
	f->next_poll = time_after(st->now, f->poll_ms);
	follow_reload(st, true);
	if (st->following && f->ngood == 0 && f->nfgood == 0 &&
	    st->nstatic == 0 && st->nfallback == 0 && default_needed(st))
		logmsg(1, "no upstream yet: each query is held up to %d s for "
		    "one to appear", HOLD_MS / 1000);
}

/* The "%name" scopes of -l, -s and -f addresses; exit 1 for a bad name. */
static void
scopes_resolve(struct state *st, const struct options *o)
{
	struct rule *r;
	int i, k;

	for (i = 0; i < o->nchain; i++)
		for (k = 0; k < o->chains[i].n; k++)
			scope_or_die("-l", &o->chains[i].a[k]);
	for (i = 0; i < st->nstatic; i++)
		scope_or_die("-s", &st->statics[i]);
	for (i = 0; i < st->nfallback; i++)
		scope_or_die("-f", &st->fallbacks[i]);
	for (i = 0; i < routes_count(&st->routes); i++)
		for (r = route_at(&st->routes, i), k = 0; k < r->nsrv; k++)
			scope_or_die("-s", &r->srv[k]);
}

/*
 * The sandbox, entered once start-up is over (listeners bound, files
 * opened, privileges dropped).  Two layers:
 *  - no_new_privs: nothing this process could execute would ever gain a
 *    privilege (set-user-ID files, file capabilities); a seccomp filter
 *    requires it of an unprivileged process;
 *  - a seccomp-BPF allowlist (x86_64 and aarch64): the system calls the
 *    loop makes and nothing else.  The filter checks the architecture
 *    first (a 32-bit or foreign call table is another numbering), then
 *    the number; socket() only for the families in use (UNIX, IPv4, IPv6,
 *    netlink), open() and openat() only to read.  Anything else traps:
 *    the handler says which call, and the process exits (70), so a call
 *    missing from the list is found by the suite, not run past.
 * Built from the kernel's numbering through <sys/syscall.h> and the
 * constants below (the BPF and seccomp ABI; musl's headers do not carry
 * <linux/seccomp.h>).  Elsewhere (mips, sanitizer builds, qemu-user,
 * which refuses filters) dnsfwd runs without the filter and says so.
 * --no-sandbox leaves both layers off.
 */
#if defined(__x86_64__)
#define SB_ARCH		0xc000003eu	/* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define SB_ARCH		0xc00000b7u	/* AUDIT_ARCH_AARCH64 */
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SB_SANITIZER	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SB_SANITIZER	1
#endif
#endif

#if defined(SB_ARCH) && !defined(SB_SANITIZER)
struct sb_insn {		/* struct sock_filter */
	uint16_t	 code;
	uint8_t		 jt, jf;
	uint32_t	 k;
};

struct sb_prog {		/* struct sock_fprog */
	unsigned short	 len;
	struct sb_insn	*filter;
};

#define SB_LD_W_ABS	0x20	/* BPF_LD | BPF_W | BPF_ABS */
#define SB_JEQ_K	0x15	/* BPF_JMP | BPF_JEQ | BPF_K */
#define SB_AND_K	0x54	/* BPF_ALU | BPF_AND | BPF_K */
#define SB_RET_K	0x06	/* BPF_RET | BPF_K */
#define SB_RET_ALLOW	0x7fff0000u	/* SECCOMP_RET_ALLOW */
#define SB_RET_TRAP	0x00030000u	/* SECCOMP_RET_TRAP */
#define SB_RET_KILL	0x80000000u	/* SECCOMP_RET_KILL_PROCESS */
#define SB_MODE_FILTER	2		/* SECCOMP_MODE_FILTER */
#define SB_NR		0	/* struct seccomp_data: nr */
#define SB_ARCH_OFF	4	/* ... arch */
#define SB_ARG(i)	(16u + 8u * (i))	/* ... args[i], low half (LE) */

#define SB_STMT(c, v)		{ (c), 0, 0, (v) }
#define SB_JUMP(c, v, t, f)	{ (c), (t), (f), (v) }

/*
 * The calls allowed whatever their arguments, the loop's busiest first:
 * the filter compares the number with each in turn.
 */
static const int sb_calls[] = {
	SYS_recvmmsg, SYS_sendmmsg, SYS_epoll_pwait, SYS_ppoll, SYS_recvfrom,
	SYS_sendto, SYS_connect, SYS_close, SYS_read, SYS_write, SYS_recvmsg,
	SYS_sendmsg, SYS_getsockname, SYS_setsockopt, SYS_accept4,
	SYS_readv, SYS_writev, SYS_lseek,
	SYS_fstat, SYS_newfstatat, SYS_statx, SYS_fstatfs, SYS_statfs,
	SYS_getdents64, SYS_readlinkat, SYS_fcntl, SYS_ioctl,
	SYS_mmap, SYS_munmap, SYS_mremap, SYS_madvise, SYS_brk,
	SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_epoll_ctl,
	SYS_bind, SYS_listen, SYS_shutdown, SYS_getsockopt, SYS_getpeername,
	SYS_inotify_init1, SYS_inotify_add_watch, SYS_inotify_rm_watch,
	SYS_clock_gettime, SYS_gettimeofday, SYS_getpid, SYS_gettid,
	SYS_getrandom, SYS_futex, SYS_unlinkat, SYS_exit, SYS_exit_group,
	SYS_restart_syscall, SYS_clock_nanosleep, SYS_nanosleep,
#ifdef SYS_stat
	SYS_stat, SYS_lstat, SYS_readlink, SYS_unlink, SYS_poll,
	SYS_epoll_wait, SYS_accept,
#endif
};
static const uint32_t sb_families[] = { AF_UNIX, AF_INET, AF_INET6,
    AF_NETLINK };

/* The namespace helper's: enter, bind, hand over (section 28). */
static const int sb_nsh_calls[] = {
	SYS_read, SYS_write, SYS_close, SYS_fstat, SYS_newfstatat, SYS_fcntl,
	SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg, SYS_setns,
	SYS_bind, SYS_listen, SYS_setsockopt, SYS_getsockname,
	SYS_mmap, SYS_munmap, SYS_mremap, SYS_madvise, SYS_brk,
	SYS_rt_sigreturn, SYS_restart_syscall, SYS_exit, SYS_exit_group,
#ifdef SYS_stat
	SYS_stat,
#endif
};
static const uint32_t sb_nsh_families[] = { AF_INET, AF_INET6, AF_NETLINK };

static const char *sb_who = "";	/* "namespace helper: " in the helper */

/* What it says before the process exits: the call it made. */
static _Noreturn void
sandbox_trap(int sig, siginfo_t *si, void *ctx)
{
	char msg[128];
	int n;

	(void)sig;
	(void)ctx;
	n = snprintf(msg, sizeof(msg), "dnsfwd: %ssandbox: system call %d "
	    "is not allowed; exiting (--no-sandbox runs without the "
	    "filter)\n", sb_who, si->si_syscall);
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	_exit(70);
}

/*
 * The call nr, allowed when its flags (args[arg]) only read, else
 * trapped; any other call goes on to what follows: 6 instructions.
 */
static void
sandbox_read_only(struct sb_insn *f, size_t *k, int nr, unsigned arg)
{
	f[(*k)++] = (struct sb_insn)SB_JUMP(SB_JEQ_K, (uint32_t)nr, 0, 5);
	f[(*k)++] = (struct sb_insn)SB_STMT(SB_LD_W_ABS, SB_ARG(arg));
	f[(*k)++] = (struct sb_insn)SB_STMT(SB_AND_K, O_ACCMODE | O_CREAT |
	    O_TRUNC | O_APPEND);
	f[(*k)++] = (struct sb_insn)SB_JUMP(SB_JEQ_K, 0, 0, 1);
	f[(*k)++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_ALLOW);
	f[(*k)++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_TRAP);
}

/* The filter allowing calls and socket() for fams: one check per call. */
static size_t
sandbox_program(struct sb_insn *f, const int *calls, size_t ncalls,
    const uint32_t *fams, size_t nfams)
{
	size_t i, k = 0;

	f[k++] = (struct sb_insn)SB_STMT(SB_LD_W_ABS, SB_ARCH_OFF);
	f[k++] = (struct sb_insn)SB_JUMP(SB_JEQ_K, SB_ARCH, 1, 0);
	f[k++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_KILL);
	f[k++] = (struct sb_insn)SB_STMT(SB_LD_W_ABS, SB_NR);
	for (i = 0; i < ncalls; i++) {
		f[k++] = (struct sb_insn)SB_JUMP(SB_JEQ_K, (uint32_t)calls[i],
		    0, 1);
		f[k++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_ALLOW);
	}
	/* socket(family, ...): the families in use */
	f[k++] = (struct sb_insn)SB_JUMP(SB_JEQ_K, SYS_socket, 0,
	    (uint8_t)(2 + 2 * nfams));
	f[k++] = (struct sb_insn)SB_STMT(SB_LD_W_ABS, SB_ARG(0));
	for (i = 0; i < nfams; i++) {
		f[k++] = (struct sb_insn)SB_JUMP(SB_JEQ_K, fams[i], 0, 1);
		f[k++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_ALLOW);
	}
	f[k++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_TRAP);
#ifdef SYS_open
	sandbox_read_only(f, &k, SYS_open, 1);	/* open(path, flags) */
#endif
	sandbox_read_only(f, &k, SYS_openat, 2);	/* openat(d, p, flags) */
	f[k++] = (struct sb_insn)SB_STMT(SB_RET_K, SB_RET_TRAP);
	return k;
}

/* The filter, the server's or the helper's: 0, or -1 with errno. */
static int
sandbox_filter(bool helper)
{
	static struct sb_insn f[4 + 2 * (sizeof(sb_calls) /
	    sizeof(sb_calls[0])) + 3 + 2 * 4 + 6 + 6 + 1];
	struct sigaction sa;
	struct sb_prog prog;
	size_t n;

	_Static_assert(sizeof(sb_nsh_calls) <= sizeof(sb_calls), "room");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_trap;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		return -1;
	if (helper)
		n = sandbox_program(f, sb_nsh_calls, sizeof(sb_nsh_calls) /
		    sizeof(sb_nsh_calls[0]), sb_nsh_families, 3);
	else
		n = sandbox_program(f, sb_calls, sizeof(sb_calls) /
		    sizeof(sb_calls[0]), sb_families, 4);
	prog.len = (unsigned short)n;
	prog.filter = f;
	return prctl(PR_SET_SECCOMP, SB_MODE_FILTER, &prog, 0L, 0L) == -1 ?
	    -1 : 0;
}
#endif

/*
 * Landlock (Linux 5.13 and later), the server's third layer: it may read
 * only beneath the top-level directories of what it follows (each file,
 * where its symlinks lead at start, each -N directory), execute nothing,
 * write, create or remove nothing anywhere, but remove the pid file.  A
 * rule holds a directory by its inode, so a rule on the directory of a
 * file would be lost when that directory is re-created (resolved makes
 * /run/systemd/resolve anew at each start, ip netns /run/netns): the
 * top-level directory (/run, /etc) is the one that stays.
 */
#ifndef SB_SANITIZER
#define LL_CREATE_RULESET	444	/* the same number on every arch */
#define LL_ADD_RULE		445
#define LL_RESTRICT_SELF	446
#define LL_VERSION		1u	/* LANDLOCK_CREATE_RULESET_VERSION */
#define LL_PATH_BENEATH		1	/* LANDLOCK_RULE_PATH_BENEATH */
#define LL_READ			(1ull << 2 | 1ull << 3)	/* FILE, DIR */
#define LL_REMOVE_FILE		(1ull << 5)

struct ll_path {		/* struct landlock_path_beneath_attr */
	uint64_t	 allowed;
	int32_t		 parent_fd;
} __attribute__((packed));

/* Allow access beneath the top-level directory of the absolute path p. */
static void
landlock_top(int rs, const char *p, uint64_t access)
{
	char top[PATH_MAX];
	struct ll_path rule;
	size_t n;

	if (p[0] != '/')
		return;
	n = 1 + strcspn(p + 1, "/");
	if (p[n] == '\0' || n >= sizeof(top))	/* a file in /: all of / */
		n = 1;
	memcpy(top, p, n);
	top[n] = '\0';
	rule.allowed = access;
	if ((rule.parent_fd = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return;
	(void)syscall(LL_ADD_RULE, rs, LL_PATH_BENEATH, &rule, 0);
	close(rule.parent_fd);
}

/* Allow reading beneath p's top-level directory and where p leads. */
static void
landlock_follow(int rs, const char *p)
{
	char path[PATH_MAX], real[PATH_MAX], *slash;

	landlock_top(rs, p, LL_READ);
	snprintf(path, sizeof(path), "%s", p);
	while (realpath(path, real) == NULL) {	/* the nearest that exists */
		if ((slash = strrchr(path, '/')) == NULL || slash == path)
			return;
		*slash = '\0';
	}
	landlock_top(rs, real, LL_READ);
}

/* The ruleset, from what st follows; said with -v when there is none. */
static void
landlock_enter(const struct state *st)
{
	uint64_t handled;
	char dir[PATH_MAX], *slash;
	struct ll_path rule;
	int abi, rs, i, k;

	abi = (int)syscall(LL_CREATE_RULESET, NULL, 0, LL_VERSION);
	if (abi < 1) {
		logmsg(2, "sandbox: no Landlock in this kernel (%s): file "
		    "access is not confined", strerror(errno));
		return;
	}
	/* every right the kernel knows: ABI 1 has 13, 2 REFER, 3 TRUNCATE,
	 * 5 IOCTL_DEV */
	handled = (1ull << (abi >= 5 ? 16 : abi >= 3 ? 15 : abi == 2 ? 14 :
	    13)) - 1;
	if ((rs = (int)syscall(LL_CREATE_RULESET, &handled, sizeof(handled),
	    0)) == -1) {
		logmsg(1, "sandbox: Landlock: %s; running without it",
		    strerror(errno));
		return;
	}
	for (i = 0; i < st->files.nfile; i++)
		for (k = 0; k < st->files.file[i].npath; k++)
			landlock_follow(rs, st->files.file[i].path[k]);
	for (i = 0; i < st->ngrp; i++)
		if (st->grp[i].path != NULL && st->grp[i].nch > 0)
			landlock_follow(rs, st->grp[i].dir);
	if (st->pid_file != NULL) {
		snprintf(dir, sizeof(dir), "%s", st->pid_file);
		if ((slash = strrchr(dir, '/')) != NULL) {
			slash[slash == dir] = '\0';
			rule.allowed = LL_REMOVE_FILE;
			if ((rule.parent_fd = open(dir, O_PATH | O_DIRECTORY |
			    O_CLOEXEC)) != -1) {
				(void)syscall(LL_ADD_RULE, rs, LL_PATH_BENEATH,
				    &rule, 0);
				close(rule.parent_fd);
			}
		}
	}
	if (syscall(LL_RESTRICT_SELF, rs, 0) == -1)
		logmsg(1, "sandbox: Landlock: %s; running without it",
		    strerror(errno));
	close(rs);
}
#endif

/* The sandbox of the server (helper false) or of the namespace helper. */
static void
sandbox_enter(const struct state *st, bool helper)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) == -1) {
		logmsg(0, "sandbox: no_new_privs: %s; running without the "
		    "sandbox", strerror(errno));
		return;
	}
#ifndef SB_SANITIZER
	if (!helper)
		landlock_enter(st);
#else
	(void)st;
#endif
#if defined(SB_ARCH) && !defined(SB_SANITIZER)
	sb_who = helper ? "namespace helper: " : "";
	if (sandbox_filter(helper) == -1) {	/* qemu-user refuses filters */
		if (!helper)
			logmsg(1, "sandbox: seccomp filter: %s; running "
			    "without it", strerror(errno));
		return;
	}
#ifdef DNSFWD_SANDBOX_TEST	/* test/dnsfwd-sbtest only: never shipped */
	if (!helper && getenv("DNSFWD_TRY_READ") != NULL) {
		int fd = open(getenv("DNSFWD_TRY_READ"), O_RDONLY | O_CLOEXEC);

		logmsg(0, "sandbox test: reading %s: %s", getenv(
		    "DNSFWD_TRY_READ"), fd == -1 ? strerror(errno) : "allowed");
		if (fd != -1)
			close(fd);
	}
	if (getenv(helper ? "DNSFWD_FORBIDDEN_CALL_NSH" :
	    "DNSFWD_FORBIDDEN_CALL") != NULL)
		(void)syscall(SYS_getppid);	/* not allowed: trapped */
#endif
#elif defined(SB_SANITIZER)
	if (!helper)
		logmsg(2, "sandbox: a sanitizer build: no seccomp filter");
#else
	if (!helper)
		logmsg(1, "sandbox: no seccomp filter for this architecture");
#endif
}

/* Close every descriptor but 2, keep and the syslog socket; 0 and 1
 * read /dev/null. */
static void
fds_close_except(int keep)
{
	struct rlimit rl;
	long i, max = 1024;
	int null;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur < (1 << 20) ? (long)rl.rlim_cur : 1 << 20;
	for (i = 3; i < max; i++)
		if (i != keep && i != sys_log.fd)
			close((int)i);
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, 0);
		dup2(null, 1);
		if (null > 2 && null != keep && null != sys_log.fd)
			close(null);
	}
}

/*
 * The namespace helper's life (section 28): it keeps CAP_SYS_ADMIN and
 * CAP_NET_BIND_SERVICE (and becomes -u's user), no descriptor but its
 * socket and stderr, and runs in a sandbox of its own few calls; it ends
 * with the server.
 */
static _Noreturn void
nsh_main(struct state *st, const struct options *o, int fd, pid_t parent,
    uid_t uid, gid_t gid)
{
	static const int quiet[] = { SIGHUP, SIGUSR1, SIGINT, SIGPIPE };
	sigset_t none;
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0L, 0L, 0L);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, (unsigned long)(uintptr_t)"dnsfwd-ns", 0L, 0L, 0L);
	for (i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		signal(quiet[i], SIG_IGN);	/* they are the server's */
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sys_log.no_reconnect = true;	/* stderr if syslog goes away */
	fds_close_except(fd);
	for (i = 0; i < (size_t)st->nlis; i++)	/* the server's, closed */
		st->lis[i].udp = st->lis[i].tcp = -1;
	if (privileges_drop(o->user, uid, gid, CAP_ADMIN | CAP_BIND) == -1)
		_exit(1);	/* the server says it, failing the same way */
	if (!o->no_sandbox)
		sandbox_enter(st, true);
	for (;;)
		if (nsh_serve(st, fd) == -1)
			_exit(0);
}

/* With -N: fork the namespace helper before privileges are dropped. */
static void
nsh_start(struct state *st, const struct options *o, uid_t uid, gid_t gid)
{
	struct timeval tv = { NSH_WAIT_MS / 1000, 0 };
	pid_t parent = getpid(), pid;
	bool want = false;
	int sv[2], gi;

	for (gi = 0; gi < st->ngrp; gi++)
		want |= st->grp[gi].path != NULL && st->grp[gi].nch > 0;
	if (!want)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (pid = fork()) == -1)
		die(1, "namespace helper: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		nsh_main(st, o, sv[1], parent, uid, gid);
	}
	close(sv[1]);
	st->nsh = sv[0];
	setsockopt(st->nsh, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* --metrics: its listener, bound at start in dnsfwd's own namespace. */
static void
metrics_open(struct state *st)
{
	struct metrics *m = &st->metrics;
	char a[80];
	int on = 1, i;

	m->fd = -1;
	for (i = 0; i < METRICS_CONNS; i++)
		m->c[i].fd = -1;
	if (!m->want)
		return;
	scope_or_die("--metrics", &m->addr);
	if ((m->fd = socket(m->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    bind(m->fd, (const struct sockaddr *)&m->addr.ss, m->addr.len) ==
	    -1 || listen(m->fd, 16) == -1 ||
	    getsockname(m->fd, (struct sockaddr *)&m->addr.ss, &m->addr.len) ==
	    -1)
		die(2, "--metrics: cannot listen on %s: %s", addr_text(&m->addr,
		    ':', a, sizeof(a)), strerror(errno));
	logmsg(LOG_NOTE | LOG_STDERR, "metrics on %s", addr_text(&m->addr, ':', a,
	    sizeof(a)));
}

static void
metrics_watch(struct state *st)
{
	struct epoll_event ev;

	if (st->metrics.fd < 0)
		return;
	ev.events = EPOLLIN;
	ev.data.u64 = token_make(TK_METRICS, 0, 0, 0);
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, st->metrics.fd, &ev) == -1)
		logmsg(0, "epoll: %s", strerror(errno));
}

/*
 * Start-up, in this order: bind every listener (as root, before anything
 * can fail late), allocate every table, read and start following the
 * files, drop privileges, and hand over to the loop.
 */
static void
startup(struct state *st, const struct options *o)
{
	uid_t uid = 0;
	gid_t gid = 0;

	if (o->user != NULL)
		user_lookup(o->user, &uid, &gid);
	scopes_resolve(st, o);
	st->start_ms = clock_ms();
	listen_start(st);				/* bind */
	metrics_open(st);
	nsh_start(st, o, uid, gid);
	if (st->pid_file != NULL)
		pid_file_write(st->pid_file);
	self_refresh(st);
	self_skip(st, st->statics, &st->nstatic, "-s");
	self_skip(st, st->fallbacks, &st->nfallback, "-f");
	st->now = clock_ms();
	follow_paths(st, o->resolv, o);
	state_alloc(st);				/* allocate */
	if (getrandom(st->hkey, sizeof(st->hkey), 0) !=
	    (ssize_t)sizeof(st->hkey) || getrandom(st->rnd.key,
	    sizeof(st->rnd.key), 0) != (ssize_t)sizeof(st->rnd.key))
		die(1, "getrandom: %s", strerror(errno));
	if (cache_init(&st->cache, (int)o->cache_n, o->cache_bytes,
	    st->hkey) == -1)
		die(1, "-c %ld: out of memory", o->cache_n);
	cache_stale(&st->cache, (uint32_t)o->stale_s);
	cache_ttls(&st->cache, (uint32_t)o->min_ttl, o->max_ttl >= 0 ?
	    (uint32_t)o->max_ttl : CACHE_MAX_TTL, o->no_negcache);
	st->ttl_capped = o->max_ttl >= 0;
	st->ttl_cap = (uint32_t)(o->max_ttl >= 0 ? o->max_ttl : 0);
	routes_lists(st, NULL, 0);
	follow_start(st, o->poll_s);			/* follow */
	if (st->deflist == NULL)	/* no servers in the file: -s and -f */
		deflist_rebuild(st);
	state_fds(st);
	views_start(st);
	metrics_watch(st);
	if (!st->following && st->nstatic == 0 && st->nfallback == 0 &&
	    default_needed(st))
		logmsg(0, "no upstream: with -R, names no rule answers get "
		    "SERVFAIL (give -s ADDR, or -a /#/ to answer them here)");
	if (privileges_drop(o->user, uid, gid, 0) == -1)	/* drop them */
		die(1, "-u %s: %s", o->user, strerror(errno));
	if (!o->no_sandbox)
		sandbox_enter(st, false);
}

/* The signals the loop handles; they are blocked but while in poll. */
static void
signals_init(void)
{
	static const int sigs[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
	struct sigaction sa;
	sigset_t block;
	size_t i;

	sigemptyset(&block);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaddset(&block, sigs[i]);
		sigaction(sigs[i], &sa, NULL);
	}
	sigprocmask(SIG_BLOCK, &block, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* ==== 36. The option table and main() ==================================== */

enum {
	OPT_POLL = 256, OPT_PARALLEL, OPT_MAXQ, OPT_MAXTCP, OPT_ALLOW,
	OPT_STALE, OPT_LOGTIME, OPT_READYFD, OPT_PIDFILE, OPT_CACHEBYTES,
	OPT_NOSANDBOX, OPT_SERVERSFILE, OPT_SYSLOG, OPT_METRICS, OPT_MINTTL,
	OPT_MAXTTL, OPT_NONEG, OPT_BOGUS, OPT_DOMNEED, OPT_FILTER6, OPT_DNS64,
};

/*
 * Every option, once: its names, and for a number its range, unit and the
 * long of struct options it lands in (number false: handled by
 * option_one()).  getopt's tables are built from this one.
 */
static const struct optdef {
	const char	*name;		/* long name */
	int		 ch;		/* short letter or OPT_ value */
	int		 arg;		/* no_argument or required_argument */
	bool		 number;	/* a number in [min, max] */
	long		 min, max;
	const char	*unit;		/* for the message; NULL: none */
	size_t		 off;		/* offsetof(struct options, ...) */
} optdefs[] = {
#define NUM(name, ch, min, max, unit, field) \
	{ name, ch, required_argument, true, min, max, unit, \
	    offsetof(struct options, field) }
#define ARG(name, ch)	{ name, ch, required_argument, false, 0, 0, NULL, 0 }
#define FLAG(name, ch)	{ name, ch, no_argument, false, 0, 0, NULL, 0 }
#define OPTIONAL(name, ch) { name, ch, optional_argument, false, 0, 0, NULL, 0 }
	ARG("listen", 'l'),
	ARG("netns", 'N'),
	ARG("allow", OPT_ALLOW),
	ARG("resolv", 'r'),
	FLAG("no-resolv", 'R'),
	ARG("server", 's'),
	ARG("fallback", 'f'),
	ARG("address", 'a'),
	ARG("hosts", 'H'),
	ARG("servers-file", OPT_SERVERSFILE),
	NUM("cache-size", 'c', 0, 1000000, "entries", cache_n),
	ARG("cache-bytes", OPT_CACHEBYTES),
	NUM("stale", OPT_STALE, 0, 604800, "seconds", stale_s),
	NUM("min-cache-ttl", OPT_MINTTL, 0, 3600, "seconds", min_ttl),
	NUM("max-cache-ttl", OPT_MAXTTL, 0, 86400, "seconds", max_ttl),
	FLAG("no-negcache", OPT_NONEG),
	FLAG("bogus-priv", OPT_BOGUS),
	FLAG("domain-needed", OPT_DOMNEED),
	FLAG("filter-aaaa", OPT_FILTER6),
	ARG("dns64", OPT_DNS64),
	NUM("poll", OPT_POLL, 1, 3600, "seconds", poll_s),
	NUM("timeout", 't', 1, 60000, "milliseconds", timeout_ms),
	FLAG("parallel", OPT_PARALLEL),
	FLAG("no-sandbox", OPT_NOSANDBOX),
	NUM("max-queries", OPT_MAXQ, 1, 65535, NULL, qmax),
	NUM("max-tcp", OPT_MAXTCP, 1, 4096, NULL, tcpmax),
	ARG("user", 'u'),
	ARG("ready-fd", OPT_READYFD),
	ARG("pid-file", OPT_PIDFILE),
	FLAG("verbose", 'v'),
	FLAG("log-time", OPT_LOGTIME),
	OPTIONAL("syslog", OPT_SYSLOG),
	ARG("metrics", OPT_METRICS),
	FLAG("quiet", 'q'),
	FLAG("help", 'h'),
	FLAG("version", 'V'),
#undef NUM
#undef ARG
#undef FLAG
};
#define NOPTDEF (sizeof(optdefs) / sizeof(optdefs[0]))

/* An option's name as messages give it: "-c", or "--poll" with no letter. */
static const char *
opt_name(const struct optdef *d, char *buf, size_t len)
{
	if (d->ch < 256)
		snprintf(buf, len, "-%c", d->ch);
	else
		snprintf(buf, len, "--%s", d->name);
	return buf;
}

/* -l ADDR[:PORT][,...]: a fallback chain in the current -N group. */
static void
option_listen(struct state *st, struct options *o, const char *arg)
{
	struct lgroup *g = &st->grp[st->ngrp - 1];
	char err[128];

	if (cfg_parse_listen(arg, &o->chains[o->nchain], err, sizeof(err)) ==
	    -1)
		usage_error("-l", "%s", err);
	if (g->nch++ == 0)
		g->ch = &o->chains[o->nchain];
	o->nchain++;
}

/* -a, -s, -f: a rule (-a, -s /DOMAIN/...), a static or a fallback server. */
static void
option_server(struct state *st, int ch, const char *arg)
{
	const char *opt = ch == 'a' ? "-a" : ch == 's' ? "-s" : "-f";
	char err[128];

	if (ch != 'f' && (arg[0] == '/' || ch == 'a')) {
		if (route_add(&st->routes, arg, ch == 'a', err, sizeof(err)) ==
		    -1)
			usage_error(opt, "%s", err);
		st->rlocal[st->nrspec] = ch == 'a';
		st->rspec[st->nrspec++] = arg;
		return;
	}
	if ((ch == 's' ? st->nstatic : st->nfallback) == MAX_UPSTREAMS)
		usage_error(opt, "more than %d servers", MAX_UPSTREAMS);
	if (cfg_parse_addr(arg, '#', 53, ch == 's' ?
	    &st->statics[st->nstatic++] : &st->fallbacks[st->nfallback++],
	    err, sizeof(err)) == -1)
		usage_error(opt, "%s", err);
}

/* One option that is not a plain number.  Returns 1 to exit 0 (-h, -V). */
/* The options of dnsmasq's world and of watching it (option_one()'s rest). */
static int
option_more(struct state *st, struct options *o, int ch, const char *arg)
{
	struct prefix pfx;
	unsigned long v;
	char err[128];

	switch (ch) {
	case OPT_READYFD:
		if (cfg_parse_uint(arg, 3, INT_MAX, &v) == -1 ||
		    fcntl((int)v, F_GETFD) == -1)
			usage_error("--ready-fd", "\"%s\" is not an open "
			    "descriptor (3 or more)", arg);
		st->ready_fd = (int)v;
		break;
	case OPT_SERVERSFILE:
		if (o->nservers == MAX_SERVERS_FILES)
			usage_error("--servers-file", "more than %d files",
			    MAX_SERVERS_FILES);
		o->servers[o->nservers++] = arg;
		break;
	case OPT_NONEG:
		o->no_negcache = true;
		break;
	case OPT_BOGUS:
		st->bogus_priv = true;
		break;
	case OPT_DOMNEED:
		st->domain_needed = true;
		break;
	case OPT_FILTER6:
		st->filter_aaaa = true;
		break;
	case OPT_DNS64:
		if (cfg_parse_prefix(arg, &pfx, err, sizeof(err)) == -1)
			usage_error("--dns64", "%s", err);
		if (!pfx.v6 || (pfx.len != 32 && pfx.len != 40 && pfx.len !=
		    48 && pfx.len != 56 && pfx.len != 64 && pfx.len != 96) ||
		    pfx.a[8] != 0)
			usage_error("--dns64", "\"%s\" is not a NAT64 prefix "
			    "(IPv6 /32, /40, /48, /56, /64 or /96, bits 64-71 "
			    "zero: RFC 6052), e.g. 64:ff9b::/96", arg);
		memcpy(st->d64_prefix, pfx.a, 16);
		st->d64_len = pfx.len;
		st->dns64 = true;
		break;
	case OPT_SYSLOG:
		sys_log.path = arg != NULL ? path_absolute(arg) : "/dev/log";
		if (strlen(sys_log.path) >= sizeof(((struct sockaddr_un *)0)->
		    sun_path))
			usage_error("--syslog", "\"%s\" is too long for a "
			    "socket path", arg);
		break;
	case OPT_METRICS:
		if (cfg_parse_addr(arg, ':', 9153, &st->metrics.addr, err,
		    sizeof(err)) == -1)
			usage_error("--metrics", "%s", err);
		st->metrics.want = true;
		break;
	}
	return 0;
}

static int
option_one(struct state *st, struct options *o, int ch, const char *arg)
{
	struct prefix pfx;
	unsigned long long sz;
	char err[128];

	switch (ch) {
	default:
		return option_more(st, o, ch, arg);
	case 'l':
		option_listen(st, o, arg);
		break;
	case 'N':
		group_add(st, arg);
		break;
	case OPT_ALLOW:
		if (cfg_parse_prefix(arg, &pfx, err, sizeof(err)) == -1)
			usage_error("--allow", "%s", err);
		if (!acl_add(&st->allow, &pfx))
			usage_error("--allow", "more than %d networks", ACL_MAX);
		st->allowing = true;
		break;
	case 'r':
		o->resolv = arg;
		break;
	case 'R':
		st->following = false;
		break;
	case 'a':
	case 's':
	case 'f':
		option_server(st, ch, arg);
		break;
	case 'H':
		if (o->nhosts == MAX_HOSTS)
			usage_error("-H", "more than %d files", MAX_HOSTS);
		o->hosts[o->nhosts++] = arg;
		break;
	case OPT_CACHEBYTES:
		if (cfg_parse_size(arg, CACHE_ARENA_MIN, CACHE_BYTES_MAX, &sz) ==
		    -1)
			usage_error("--cache-bytes", "\"%s\" is not a size "
			    "(4k-1g)", arg);
		o->cache_bytes = (size_t)sz;
		break;
	case OPT_PARALLEL:
		st->parallel = true;
		break;
	case 'u':
		o->user = arg;
		break;
	case OPT_PIDFILE:
		st->pid_file = path_absolute(arg);
		break;
	case 'v':
		log_level = log_level >= 2 ? 3 : 2;
		break;
	case OPT_LOGTIME:
		o->logtime = true;
		break;
	case OPT_NOSANDBOX:
		o->no_sandbox = true;
		break;
	case 'q':
		log_level = 0;
		break;
	case 'h':
		usage(stdout);
		return 1;
	case 'V':
		printf("dnsfwd %s\n", VERSION);
		return 1;
	}
	return 0;
}

/*
 * What getopt_long() refused (ch '?' or ':'; arg, the word it was in), in
 * one line the same for every libc's getopt, and exit 1.
 */
static _Noreturn void
option_unknown(int ch, const char *arg)
{
	char opt[64];

	if (optopt > 0 && optopt < 256 && (arg == NULL ||
	    strncmp(arg, "--", 2) != 0))
		snprintf(opt, sizeof(opt), "-%c", optopt);
	else
		snprintf(opt, sizeof(opt), "%.*s", arg != NULL ?
		    (int)strcspn(arg, "=") : 0, arg != NULL ? arg : "");
	die(1, "%s: %s (see dnsfwd --help)", opt, ch == ':' ?
	    "needs a value" : "unknown option");
}

/* getopt_long()'s two tables, from optdefs (short: 2 * NOPTDEF + 2). */
static void
getopt_tables(struct option *longopts, char *shortopts)
{
	const struct optdef *d;

	*shortopts++ = ':';	/* a missing value is ':', told apart from '?' */
	for (d = optdefs; d < optdefs + NOPTDEF; d++) {
		*longopts++ = (struct option){ d->name, d->arg, NULL, d->ch };
		if (d->ch >= 256)
			continue;
		*shortopts++ = (char)d->ch;
		if (d->arg == required_argument)
			*shortopts++ = ':';
	}
	*longopts = (struct option){ NULL, 0, NULL, 0 };
	*shortopts = '\0';
}

int
main(int argc, char **argv)
{
	static struct state st;
	static struct options o = {
		.cache_n = CACHE_SIZE, .stale_s = STALE_S,
		.timeout_ms = TIMEOUT_MS, .qmax = QUERY_MAX, .tcpmax = TCP_MAX,
		.max_ttl = -1,
	};
	static struct option longopts[NOPTDEF + 1];
	char shortopts[2 * NOPTDEF + 2], name[32];
	const struct optdef *d;
	int ch;

	getopt_tables(longopts, shortopts);
	opterr = 0;	/* option_unknown() says it */
	o.chains = xcalloc((size_t)argc + 1, sizeof(*o.chains));
	st.grp = xcalloc((size_t)argc + 2, sizeof(*st.grp));
	st.rspec = xcalloc((size_t)argc + 1, sizeof(*st.rspec));
	st.rlocal = xcalloc((size_t)argc + 1, sizeof(*st.rlocal));
	st.grp[st.ngrp++].wd = -1;	/* our own namespace, until a -N */
	st.ep = st.ready_fd = st.nsh = -1;
	st.following = true;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) !=
	    -1) {
		for (d = optdefs; d < optdefs + NOPTDEF && d->ch != ch; d++)
			;
		if (d == optdefs + NOPTDEF)
			option_unknown(ch, optind >= 1 && optind <= argc ?
			    argv[optind - 1] : "");
		if (d->number)
			*(long *)(void *)((char *)&o + d->off) = opt_number(
			    opt_name(d, name, sizeof(name)), optarg, d->min,
			    d->max, d->unit);
		else if (option_one(&st, &o, ch, optarg) == 1)
			return 0;
	}
	if (optind < argc)
		usage_error(argv[optind], "%s", "unexpected argument");
	log_init(o.logtime);
	if (o.resolv != NULL && !st.following)
		usage_error("-r", "%s", "cannot be combined with -R");
	if (o.nchain == 0) {
		cfg_parse_listen("127.0.0.1:53", &o.chains[0], NULL, 0);
		st.grp[0].ch = &o.chains[0];
		st.grp[0].nch = 1;
	}
	st.timeout_ms = (int)o.timeout_ms;
	st.qmax = (int)o.qmax;
	st.tcpmax = (int)o.tcpmax;
	signals_init();
	startup(&st, &o);
	loop_run(&st);
	if (st.pid_file != NULL)
		unlink(st.pid_file);
	logmsg(1, "exiting");
	return 0;
}

#endif /* !DNSFWD_TEST */
