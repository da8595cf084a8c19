/*
 * fakeup: a scriptable fake DNS upstream for the dnsfwd integration tests.
 *
 * It serves UDP and TCP on one address, answers each query by the first rule
 * whose pattern matches the query name, and logs every query it was asked,
 * one line each, so a test can assert what reached the upstream.  Rules come
 * from the command line and from a rule file that is re-read whenever it
 * changes, so a test can change behaviour at run time.  One poll loop, no
 * threads, no sleeping: delayed replies wait in a table with their due time.
 *
 *	cc -std=c11 -D_GNU_SOURCE -o test/fakeup test/fakeup.c
 *	test/fakeup [-l ADDR:PORT] [-L LOGFILE] [-r RULEFILE] [RULE ...]
 *
 * The rule language is described in usage() below.
 *
 * Sections:
 *	1. Limits
 *	2. Messages and utilities
 *	3. Rules: parsing and matching
 *	4. Rule file following
 *	5. Queries: parsing and logging
 *	6. Replies
 *	7. Delivery and delayed replies
 *	8. UDP and TCP I/O
 *	9. Event loop
 *	10. usage() and main()
 */

#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
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

/* ==== 1. Limits =========================================================== */
/*
 * Everything is allocated once at start-up.  The limits are far above what a
 * test script needs; hitting one is reported on stderr and never fatal.
 */

#define MAX_RULES	256	/* per source; a test needs a handful */
#define MAX_TOKENS	64	/* words in one rule */
#define MAX_LINE	1024	/* longest rule line */
#define MAX_PATTERN	256	/* a name in presentation form, plus "*." */
#define MAX_IPS		16	/* addresses in one answer */
#define MAX_NAME	1100	/* 255 wire octets, each up to "\DDD" */
#define MAX_LABELS	128	/* RFC 1035 2.3.4: 255 octets */
#define MAX_RULEFILE	65536	/* bigger rule files are refused */
#define MAX_MSG		65535	/* RFC 1035 4.2.2: TCP length prefix */
#define UDP_CAP		65000	/* largest UDP reply we build */
#define MAX_CONNS	512	/* TCP clients; the oldest is evicted */
#define MAX_OUT		(4u << 20)	/* unsent bytes; then the client goes */
#define MAX_PENDING	1024	/* delayed replies; the first due is evicted */
#define MAX_QUERY	4096	/* query bytes kept for a delayed reply */
#define UDP_BATCH	64	/* datagrams read per loop pass */
#define BIND_TRIES	100	/* port 0: tries to find one free for both */
#define RACY_S		2	/* s; fresher files are compared by content */

#define T_A		1
#define T_CNAME		5
#define T_SOA		6
#define T_AAAA		28
#define T_OPT		41
#define C_IN		1

#define F_QR		0x8000
#define F_TC		0x0200
#define F_RD		0x0100
#define F_RA		0x0080
#define F_AD		0x0020
#define F_CD		0x0010

/* ==== 2. Messages and utilities =========================================== */
/*
 * Every message is one line on stderr, starting "fakeup: ".  Only start-up
 * may die(); once serving, errors are reported and the loop goes on.
 */

static volatile sig_atomic_t stop_requested;

static void	logmsg(const char *, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *, ...)
		    __attribute__((format(printf, 1, 2)));

static void	vlogmsg(const char *, va_list)
		    __attribute__((format(printf, 1, 0)));

static void
vlogmsg(const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	fprintf(stderr, "fakeup: %s\n", line);
	fflush(stderr);
}

static void
logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogmsg(fmt, ap);
	va_end(ap);
}

static _Noreturn void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogmsg(fmt, ap);
	va_end(ap);
	exit(1);
}


/* Parse all of s as a decimal number in [0, max]; 0 or -1. */
static int
parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* ==== 3. Rules: parsing and matching ====================================== */
/*
 * A rule is "PATTERN[/TYPE] ACTION [ARGS]".  Modifiers (delay, badid, badport, badq,
 * caseflip) are prefixes that set flags; then exactly one action word with
 * its arguments.  Parsing fills a struct action completely, so replying
 * never looks at text again.
 */

enum kind {
	K_ANSWER,	/* ip[]: one A or AAAA record each */
	K_CNAME,	/* target, then ip[] owned by the target */
	K_NXDOMAIN,	/* SOA in authority unless nosoa */
	K_NODATA,	/* as K_NXDOMAIN with NOERROR */
	K_RCODE,	/* rcode, question only */
	K_DROP,		/* no reply */
	K_TC,		/* UDP: TC, no records; TCP: as K_ANSWER */
	K_LARGE,	/* count A records */
	K_GARBAGE,	/* header, then a name that runs past the end */
	K_CLOSE,	/* TCP: close the connection; UDP: as K_DROP */
};

struct ip {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];
};

struct action {
	enum kind	 kind;
	uint32_t	 delay_ms;	/* sum of the delay prefixes */
	bool		 badid;		/* reply with ID + 1 */
	bool		 badport;	/* UDP: send from the other socket */
	bool		 badq;		/* change the first byte of the qname */
	bool		 caseflip;	/* flip the case of qname letters */
	bool		 ecs;		/* OPT with a Client Subnet, scope /24 */
	bool		 cookie;	/* OPT with a client and server COOKIE */
	int		 ede;		/* OPT with this Extended DNS Error; -1 */
	bool		 ad;		/* AD set: "validated" */
	bool		 rd0refused;	/* RD=0 asked: REFUSED, as a recursor */
	uint32_t	 junk;		/* bytes of junk after the message */
	bool		 nosoa;		/* negative answers without SOA */
	uint8_t		 rcode;		/* K_RCODE */
	uint32_t	 ttl;		/* seconds; records, or the SOA */
	uint32_t	 min;		/* seconds; SOA minimum */
	uint32_t	 count;		/* K_LARGE */
	int		 nip;
	struct ip	 ip[MAX_IPS];
	size_t		 target_len;	/* K_CNAME, wire form */
	uint8_t		 target[256];
};

struct rule {
	char		 pattern[MAX_PATTERN];	/* "*", "*.suffix" or a name */
	char		 qtype[16];	/* "/TYPE" after it: only that type */
	struct action	 act;
};

/* Split s in place at blanks; a word starting with '#' ends the line. */
static int
tokenize(char *s, char **tok, int max)
{
	int n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0' || *s == '#')
			return n;
		if (n == max)
			return -1;
		tok[n++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\r' &&
		    *s != '\n')
			s++;
		if (*s == '\0')
			return n;
		*s++ = '\0';
	}
}

/* A dotted name to wire form (no escapes); length or -1. */
static int
name_to_wire(const char *s, uint8_t *out, size_t size)
{
	size_t len = 0, start;

	if (strcmp(s, ".") == 0)
		s++;
	while (*s != '\0') {
		start = len++;
		while (*s != '\0' && *s != '.') {
			if (len + 1 >= size || len - start > 63)
				return -1;
			out[len++] = (uint8_t)*s++;
		}
		if (len - start - 1 == 0 || len - start - 1 > 63)
			return -1;
		out[start] = (uint8_t)(len - start - 1);
		if (*s == '.')
			s++;
	}
	if (len + 1 > size || len + 1 > 255)
		return -1;
	out[len++] = 0;
	return (int)len;
}

static int
parse_ip(const char *s, struct ip *ip)
{
	if (inet_pton(AF_INET, s, ip->addr) == 1)
		ip->family = AF_INET;
	else if (inet_pton(AF_INET6, s, ip->addr) == 1)
		ip->family = AF_INET6;
	else
		return -1;
	return 0;
}

/* The words after the action word: ttl=N, min=N, nosoa, and addresses. */
static int
action_args(char **tok, int n, struct action *a, bool want_ips,
    char *err, size_t errlen)
{
	int i;

	for (i = 0; i < n; i++) {
		if (strncmp(tok[i], "ttl=", 4) == 0) {
			if (parse_u32(tok[i] + 4, INT32_MAX, &a->ttl) == -1)
				goto bad;
		} else if (strncmp(tok[i], "min=", 4) == 0 &&
		    (a->kind == K_NXDOMAIN || a->kind == K_NODATA)) {
			if (parse_u32(tok[i] + 4, INT32_MAX, &a->min) == -1)
				goto bad;
		} else if (strcmp(tok[i], "nosoa") == 0 &&
		    (a->kind == K_NXDOMAIN || a->kind == K_NODATA)) {
			a->nosoa = true;
		} else if (want_ips && a->nip < MAX_IPS &&
		    parse_ip(tok[i], &a->ip[a->nip]) == 0) {
			a->nip++;
		} else
			goto bad;
	}
	if (want_ips && a->nip == 0) {
		snprintf(err, errlen, "an address is needed");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "\"%s\": unexpected here", tok[i]);
	return -1;
}

/* A modifier that is a word alone (badid, ...): set it in a; false if none. */
static bool
action_flag(const char *word, struct action *a)
{
	static const struct {
		const char	*word;
		size_t		 off;
	} flags[] = {
		{ "badid", offsetof(struct action, badid) },
		{ "badport", offsetof(struct action, badport) },
		{ "badq", offsetof(struct action, badq) },
		{ "caseflip", offsetof(struct action, caseflip) },
		{ "ecs", offsetof(struct action, ecs) },
		{ "cookie", offsetof(struct action, cookie) },
		{ "ad", offsetof(struct action, ad) },
		{ "rd0refused", offsetof(struct action, rd0refused) },
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcmp(word, flags[i].word) == 0) {
			*(bool *)(void *)((char *)a + flags[i].off) = true;
			return true;
		}
	return false;
}

static int
action_parse(char **tok, int n, struct action *a, char *err, size_t errlen)
{
	static const struct {
		const char	*word;
		uint8_t		 rcode;
	} rcodes[] = {
		{ "formerr", 1 }, { "servfail", 2 }, { "notimp", 4 },
		{ "refused", 5 },
	};
	uint32_t ms;
	size_t i;
	int len;

	memset(a, 0, sizeof(*a));
	a->ede = -1;
	a->ttl = 300;
	a->min = 60;
	for (; n > 0; tok++, n--) {
		if (strcmp(tok[0], "delay") == 0) {
			if (n < 2 || parse_u32(tok[1], 3600000, &ms) == -1) {
				snprintf(err, errlen,
				    "delay: needs milliseconds");
				return -1;
			}
			a->delay_ms += ms;
			tok++;
			n--;
		} else if (action_flag(tok[0], a))
			;
		else if (strcmp(tok[0], "ede") == 0 ||
		    strcmp(tok[0], "junk") == 0) {
			if (n < 2 || parse_u32(tok[1], tok[0][0] == 'e' ?
			    65535 : 512, &ms) == -1) {
				snprintf(err, errlen, "%s: needs a number",
				    tok[0]);
				return -1;
			}
			if (tok[0][0] == 'e')
				a->ede = (int)ms;
			else
				a->junk = ms;
			tok++;
			n--;
		} else
			break;
	}
	if (n == 0) {
		snprintf(err, errlen, "no action");
		return -1;
	}
	for (i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++)
		if (strcmp(tok[0], rcodes[i].word) == 0) {
			a->kind = K_RCODE;
			a->rcode = rcodes[i].rcode;
			return action_args(tok + 1, n - 1, a, false, err,
			    errlen);
		}
	if (strcmp(tok[0], "answer") == 0 || strcmp(tok[0], "tc") == 0) {
		a->kind = tok[0][0] == 'a' ? K_ANSWER : K_TC;
		return action_args(tok + 1, n - 1, a, true, err, errlen);
	}
	if (strcmp(tok[0], "cname") == 0) {
		a->kind = K_CNAME;
		if (n < 2 || (len = name_to_wire(tok[1], a->target,
		    sizeof(a->target))) == -1) {
			snprintf(err, errlen, "cname: needs a target name");
			return -1;
		}
		a->target_len = (size_t)len;
		return action_args(tok + 2, n - 2, a, true, err, errlen);
	}
	if (strcmp(tok[0], "nxdomain") == 0 || strcmp(tok[0], "nodata") == 0) {
		a->kind = tok[0][1] == 'x' ? K_NXDOMAIN : K_NODATA;
		a->ttl = 60;
		return action_args(tok + 1, n - 1, a, false, err, errlen);
	}
	if (strcmp(tok[0], "large") == 0) {
		a->kind = K_LARGE;
		if (n != 2 || parse_u32(tok[1], 65535, &a->count) == -1) {
			snprintf(err, errlen, "large: needs a record count");
			return -1;
		}
		return 0;
	}
	if (strcmp(tok[0], "drop") == 0)
		a->kind = K_DROP;
	else if (strcmp(tok[0], "garbage") == 0)
		a->kind = K_GARBAGE;
	else if (strcmp(tok[0], "close") == 0)
		a->kind = K_CLOSE;
	else {
		snprintf(err, errlen, "\"%s\": unknown action", tok[0]);
		return -1;
	}
	return action_args(tok + 1, n - 1, a, false, err, errlen);
}

/*
 * Parse one rule; text is modified.  0, 1 when text holds no rule (blank or
 * a comment), or -1 with err filled.
 */
static int
rule_parse(char *text, struct rule *r, char *err, size_t errlen)
{
	char *tok[MAX_TOKENS], *slash;
	size_t len;
	int n;

	n = tokenize(text, tok, MAX_TOKENS);
	if (n == -1) {
		snprintf(err, errlen, "too many words");
		return -1;
	}
	if (n == 0)
		return 1;
	if (n == 1) {
		snprintf(err, errlen, "needs a pattern and an action");
		return -1;
	}
	r->qtype[0] = '\0';
	if ((slash = strchr(tok[0], '/')) != NULL) {
		if (strlen(slash + 1) >= sizeof(r->qtype) || slash[1] == '\0') {
			snprintf(err, errlen, "bad type after /");
			return -1;
		}
		strcpy(r->qtype, slash + 1);
		*slash = '\0';
	}
	len = strlen(tok[0]);
	if (len > 1 && tok[0][len - 1] == '.')
		tok[0][--len] = '\0';
	if (len >= sizeof(r->pattern)) {
		snprintf(err, errlen, "pattern too long");
		return -1;
	}
	memcpy(r->pattern, tok[0], len + 1);
	return action_parse(tok + 1, n - 1, &r->act, err, errlen);
}

/* name: presentation form, no trailing dot, root as "."; type: its name. */
static bool
rule_matches(const struct rule *r, const char *name, const char *type)
{
	const char *p = r->pattern;
	size_t pl, nl;

	if (r->qtype[0] != '\0' && strcasecmp(r->qtype, type) != 0)
		return false;
	if (strcmp(p, "*") == 0)
		return true;
	if (p[0] == '*' && p[1] == '.') {
		pl = strlen(p + 1);
		nl = strlen(name);
		return nl > pl && strcasecmp(name + nl - pl, p + 1) == 0;
	}
	return strcasecmp(p, name) == 0;
}

/* ==== 4. Rule file following ============================================== */
/*
 * The file is checked on each query.  A changed identity, size, mtime or
 * ctime means re-read; so does an mtime within RACY_S seconds, since two
 * writes in one timestamp tick would look the same (git's "racy clean").
 * A re-read file whose text did not change is not parsed again.  A missing
 * or unreadable file keeps the rules last read from it.
 */

struct rulefile {
	const char	*path;		/* NULL: no -r */
	bool		 known;		/* the fields below describe a read */
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	struct timespec	 ctime;
	size_t		 len;		/* bytes of text in use */
	char		*text;		/* MAX_RULEFILE + 1, what was parsed */
	char		*next;		/* MAX_RULEFILE + 1, scratch */
	struct rule	*rules;		/* MAX_RULES, parsed from text */
	int		 nrules;
	struct rule	*scratch;	/* MAX_RULES, being parsed */
};

static bool
ts_equal(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Read the file into f->next; its length or -1. */
static ssize_t
rulefile_read(struct rulefile *f)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	for (;;) {
		n = read(fd, f->next + len, MAX_RULEFILE + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > MAX_RULEFILE)
			break;
	}
	close(fd);
	if (n == -1)
		return -1;
	if (len > MAX_RULEFILE) {
		logmsg("%s: longer than %d bytes; keeping the last rules",
		    f->path, MAX_RULEFILE);
		return -1;
	}
	f->next[len] = '\0';
	return (ssize_t)len;
}

/*
 * Parse f->next into f->scratch, then swap it in.  Bad lines are reported
 * and skipped; at start-up (fatal) they end the program instead.
 */
static void
rulefile_parse(struct rulefile *f, size_t len, bool fatal)
{
	char line[MAX_LINE + 1], err[256];
	size_t pos, end, ll;
	struct rule *tmp;
	int lineno = 0, n = 0, bad = 0, r;

	for (pos = 0; pos < len; pos = end + 1) {
		lineno++;
		for (end = pos; end < len && f->next[end] != '\n'; end++)
			;
		ll = end - pos;
		r = -1;
		if (ll > MAX_LINE)
			snprintf(err, sizeof(err), "line too long");
		else if (n == MAX_RULES)
			snprintf(err, sizeof(err), "more than %d rules",
			    MAX_RULES);
		else {
			memcpy(line, f->next + pos, ll);
			line[ll] = '\0';
			r = rule_parse(line, &f->scratch[n], err, sizeof(err));
		}
		if (r == 0)
			n++;
		if (r == -1) {
			bad++;
			logmsg("%s:%d: %s", f->path, lineno, err);
		}
	}
	if (bad > 0 && fatal)
		exit(1);
	tmp = f->rules;
	f->rules = f->scratch;
	f->scratch = tmp;
	f->nrules = n;
	memcpy(f->text, f->next, len + 1);
	f->len = len;
}

static void
rulefile_check(struct rulefile *f, bool fatal)
{
	struct stat sb;
	ssize_t len;

	if (f->path == NULL || stat(f->path, &sb) == -1)
		return;
	if (f->known && f->dev == sb.st_dev && f->ino == sb.st_ino &&
	    f->size == sb.st_size && ts_equal(f->mtime, sb.st_mtim) &&
	    ts_equal(f->ctime, sb.st_ctim) &&
	    time(NULL) > sb.st_mtim.tv_sec + RACY_S)
		return;
	len = rulefile_read(f);
	if (len == -1)
		return;
	f->known = true;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->size = sb.st_size;
	f->mtime = sb.st_mtim;
	f->ctime = sb.st_ctim;
	if ((size_t)len == f->len && memcmp(f->text, f->next, f->len) == 0)
		return;
	rulefile_parse(f, (size_t)len, fatal);
}

/* ==== 5. Queries: parsing and logging ===================================== */
/*
 * Every byte is read through a cursor whose error sticks.  A query must have
 * QR clear, opcode QUERY and exactly one question with an uncompressed name;
 * anything else is malformed and ignored.
 */

struct cursor {
	const uint8_t	*buf;
	size_t		 len;
	size_t		 pos;
	bool		 err;
};

struct query {
	const uint8_t	*msg;		/* the query as received; not owned */
	size_t		 len;
	uint16_t	 id;
	bool		 rd;
	bool		 cd, ad;
	size_t		 qname_end;	/* offset just past the qname */
	size_t		 qend;		/* offset just past the question */
	uint16_t	 qtype;
	size_t		 zone;		/* offset of the SOA owner */
	bool		 edns;		/* an OPT record was present */
	uint16_t	 udp_size;	/* from the OPT record */
	bool		 dnssec_ok;	/* DO bit of the OPT record */
	char		 opts[64];	/* option codes of the OPT, "8,10" */
	char		 name[MAX_NAME];	/* presentation form */
};

static uint8_t
get_u8(struct cursor *c)
{
	if (c->err || c->len - c->pos < 1) {
		c->err = true;
		return 0;
	}
	return c->buf[c->pos++];
}

static uint16_t
get_u16(struct cursor *c)
{
	uint16_t v;

	if (c->err || c->len - c->pos < 2) {
		c->err = true;
		return 0;
	}
	v = (uint16_t)(c->buf[c->pos] << 8 | c->buf[c->pos + 1]);
	c->pos += 2;
	return v;
}

static uint32_t
get_u32(struct cursor *c)
{
	uint32_t hi;

	hi = get_u16(c);
	return hi << 16 | get_u16(c);
}

static void
skip(struct cursor *c, size_t n)
{
	if (c->err || c->len - c->pos < n) {
		c->err = true;
		return;
	}
	c->pos += n;
}

/* Skip a name in a record; a pointer ends it. */
static void
skip_name(struct cursor *c)
{
	uint8_t b;

	for (;;) {
		b = get_u8(c);
		if (c->err || b == 0)
			return;
		if ((b & 0xC0) == 0xC0) {
			skip(c, 1);
			return;
		}
		if ((b & 0xC0) != 0) {
			c->err = true;
			return;
		}
		skip(c, b);
	}
}

/* Append the escaped presentation form of label bytes to out. */
static size_t
name_text(const uint8_t *p, size_t n, char *out, size_t pos)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '.' || p[i] == '\\') {
			out[pos++] = '\\';
			out[pos++] = (char)p[i];
		} else if (p[i] <= ' ' || p[i] >= 0x7f)
			pos += (size_t)sprintf(out + pos, "\\%03u", p[i]);
		else
			out[pos++] = (char)p[i];
	}
	return pos;
}

static int
query_name(struct cursor *c, struct query *q)
{
	size_t label[MAX_LABELS], pos = 0, start = c->pos;
	int n = 0;
	uint8_t b;

	for (;;) {
		b = get_u8(c);
		if (c->err || (b & 0xC0) != 0 || c->pos - start + b >= 255 ||
		    n == MAX_LABELS)
			return -1;
		if (b == 0)
			break;
		label[n++] = c->pos - 1;
		skip(c, b);
		if (c->err)
			return -1;
		if (pos > 0)
			q->name[pos++] = '.';
		pos = name_text(c->buf + c->pos - b, b, q->name, pos);
	}
	if (n == 0)
		q->name[pos++] = '.';
	q->name[pos] = '\0';
	q->qname_end = c->pos;
	q->zone = n > 2 ? label[n - 2] : start;
	return 0;
}

/* The option codes of an OPT rdata (rdlen bytes at c), comma-separated. */
static void
opt_codes(const struct cursor *at, uint16_t rdlen, char *out, size_t size)
{
	struct cursor c = *at;
	size_t end = c.pos + rdlen, o = 0;
	uint16_t code, olen;

	out[0] = '\0';
	if (c.len - c.pos < rdlen)
		return;
	while (!c.err && c.pos + 4 <= end && o + 8 < size) {
		code = get_u16(&c);
		olen = get_u16(&c);
		o += (size_t)snprintf(out + o, size - o, "%s%u", o ? "," : "",
		    code);
		skip(&c, olen);
	}
}

static int
query_parse(const uint8_t *msg, size_t len, struct query *q)
{
	struct cursor c = { msg, len, 0, false };
	uint16_t flags, qd, an, ns, ar, type, class, rdlen;
	uint32_t ttl, i;

	memset(q, 0, offsetof(struct query, name));
	q->msg = msg;
	q->len = len;
	q->id = get_u16(&c);
	flags = get_u16(&c);
	qd = get_u16(&c);
	an = get_u16(&c);
	ns = get_u16(&c);
	ar = get_u16(&c);
	if (c.err || (flags & F_QR) != 0 || (flags & 0x7800) != 0 || qd != 1)
		return -1;
	q->rd = (flags & F_RD) != 0;
	q->cd = (flags & F_CD) != 0;
	q->ad = (flags & F_AD) != 0;
	if (query_name(&c, q) == -1)
		return -1;
	q->qtype = get_u16(&c);
	(void)get_u16(&c);
	q->qend = c.pos;
	for (i = 0; i < (uint32_t)an + ns + ar && !c.err; i++) {
		skip_name(&c);
		type = get_u16(&c);
		class = get_u16(&c);
		ttl = get_u32(&c);
		rdlen = get_u16(&c);
		if (type == T_OPT && !c.err)
			opt_codes(&c, rdlen, q->opts, sizeof(q->opts));
		skip(&c, rdlen);
		if (type == T_OPT && i >= (uint32_t)an + ns) {
			q->edns = true;
			q->udp_size = class;	/* RFC 6891 6.1.2 */
			q->dnssec_ok = (ttl & 0x8000) != 0;
		}
	}
	return c.err ? -1 : 0;
}

static const char *
type_name(uint16_t type, char *buf, size_t size)
{
	static const struct {
		uint16_t	 type;
		const char	*name;
	} types[] = {
		{ 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" },
		{ 12, "PTR" }, { 13, "HINFO" }, { 15, "MX" }, { 16, "TXT" },
		{ 28, "AAAA" }, { 33, "SRV" }, { 35, "NAPTR" }, { 39, "DNAME" },
		{ 41, "OPT" }, { 43, "DS" }, { 46, "RRSIG" }, { 47, "NSEC" },
		{ 48, "DNSKEY" }, { 50, "NSEC3" }, { 52, "TLSA" },
		{ 64, "SVCB" }, { 65, "HTTPS" }, { 99, "SPF" },
		{ 251, "IXFR" }, { 252, "AXFR" }, { 255, "ANY" },
		{ 257, "CAA" },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	snprintf(buf, size, "TYPE%u", type);
	return buf;
}

/*
 * One line per query, written at once so lines never interleave; it ends
 * with ms=, the wall clock in milliseconds when the query was read (the
 * tests' now_ms), so a test can tell when and how far apart queries came.
 */
static bool	 log_more;	/* -x: the source port and EDNS options too */

static void
query_log(int fd, const struct query *q, bool tcp,
    const struct sockaddr_storage *peer)
{
	char line[MAX_NAME + 256], tbuf[16], ebuf[8], more[96] = "";
	struct timespec ts;
	unsigned port = 0;
	int n;

	if (fd == -1)
		return;
	if (peer == NULL)
		port = 0;	/* TCP: not logged */
	else if (peer->ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)peer)->sin_port);
	else if (peer->ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)peer)->sin6_port);
	if (log_more)
		snprintf(more, sizeof(more), " port=%u opts=%s", port,
		    q->opts[0] != '\0' ? q->opts : "none");
	snprintf(ebuf, sizeof(ebuf), "%u", q->udp_size);
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "%s %s %s id=%u edns=%s do=%d rd=%d%s "
	    "cd=%d ad=%d ms=%lld\n", tcp ? "tcp" : "udp", q->name,
	    type_name(q->qtype, tbuf, sizeof(tbuf)), q->id,
	    q->edns ? ebuf : "none", q->dnssec_ok, q->rd, more, q->cd, q->ad,
	    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (n > 0 && (size_t)n < sizeof(line) &&
	    write(fd, line, (size_t)n) != n)
		logmsg("log: %s", strerror(errno));
}

/* ==== 6. Replies ========================================================== */
/*
 * The reply is built in a caller's buffer: the query's ID and question (the
 * bytes as received, at offset 12 as in the query, so pointers into the
 * query's question are valid in the reply), then records, then an OPT
 * record if the query had one.  Modifiers are applied last, to the bytes.
 */

struct wbuf {
	uint8_t		*buf;
	size_t		 size;
	size_t		 len;
	bool		 err;	/* out of space; len is not advanced */
};

static void
put(struct wbuf *w, const void *p, size_t n)
{
	if (w->err || w->size - w->len < n) {
		w->err = true;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void
put_u16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 2);
}

static void
put_u32(struct wbuf *w, uint32_t v)
{
	put_u16(w, (uint16_t)(v >> 16));
	put_u16(w, (uint16_t)v);
}

static void
set_u16(struct wbuf *w, size_t at, uint16_t v)
{
	w->buf[at] = (uint8_t)(v >> 8);
	w->buf[at + 1] = (uint8_t)v;
}

/* A name already in the message at off: a pointer, or the root byte. */
static void
put_ref(struct wbuf *w, size_t off)
{
	if (w->buf[off] == 0)
		put(w, "", 1);
	else
		put_u16(w, (uint16_t)(0xC000 | off));
}

static void
put_addr_rr(struct wbuf *w, size_t owner, const struct ip *ip, uint32_t ttl)
{
	bool v4 = ip->family == AF_INET;

	put_ref(w, owner);
	put_u16(w, v4 ? T_A : T_AAAA);
	put_u16(w, C_IN);
	put_u32(w, ttl);
	put_u16(w, v4 ? 4 : 16);
	put(w, ip->addr, v4 ? 4 : 16);
}

static void
put_soa(struct wbuf *w, size_t zone, const struct action *a)
{
	size_t rdlen_at;

	put_ref(w, zone);
	put_u16(w, T_SOA);
	put_u16(w, C_IN);
	put_u32(w, a->ttl);
	rdlen_at = w->len;
	put_u16(w, 0);
	put(w, "\002ns", 3);
	put_ref(w, zone);
	put(w, "\012hostmaster", 11);
	put_ref(w, zone);
	put_u32(w, 1);		/* serial */
	put_u32(w, 3600);	/* refresh */
	put_u32(w, 600);	/* retry */
	put_u32(w, 86400);	/* expire */
	put_u32(w, a->min);
	if (!w->err)
		set_u16(w, rdlen_at, (uint16_t)(w->len - rdlen_at - 2));
}

/* A reply that must not parse: its qname's first label runs past the end. */
static size_t
reply_garbage(const struct query *q, uint8_t *out)
{
	uint8_t junk[30];
	size_t i;

	if (getrandom(junk, sizeof(junk), 0) != (ssize_t)sizeof(junk))
		for (i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)(i * 37 + 11);
	junk[0] = 63;
	out[0] = (uint8_t)(q->id >> 8);
	out[1] = (uint8_t)q->id;
	out[2] = 0x81 | (q->rd ? 0x01 : 0);
	out[3] = 0x80;
	memcpy(out + 4, "\0\001\0\0\0\0\0\0", 8);
	memcpy(out + 12, junk, sizeof(junk));
	return 12 + sizeof(junk);
}

static void
reply_modify(const struct query *q, const struct action *a, uint8_t *out)
{
	size_t p, i;
	uint8_t *b;

	if (a->badid) {
		out[0] = (uint8_t)((q->id + 1) >> 8);
		out[1] = (uint8_t)(q->id + 1);
	}
	if (a->caseflip)
		for (p = 12; out[p] != 0; p += out[p] + 1u)
			for (i = 1; i <= out[p]; i++)
				if ((out[p + i] | 0x20) >= 'a' &&
				    (out[p + i] | 0x20) <= 'z')
					out[p + i] ^= 0x20;
	if (a->badq) {
		if (out[12] == 0) {
			out[q->qname_end + 1] ^= 1;	/* root: the type */
			return;
		}
		b = &out[13];
		if ((*b | 0x20) >= 'a' && (*b | 0x20) < 'z')
			(*b)++;
		else if ((*b | 0x20) == 'z')
			*b -= 25;
		else
			*b = 'x';
	}
}

/*
 * Build the reply to q by a into out (size bytes, at least MAX_MSG).
 * Returns its length, or 0 when a says not to reply.
 */
static size_t
reply_build(const struct query *q, const struct action *a, bool tcp,
    uint8_t *out, size_t size)
{
	struct wbuf w = { out, size, 0, false };
	struct action refused;
	uint16_t flags, an = 0, ns = 0;
	size_t cap, target;
	struct ip ip;
	uint32_t i;
	int k;

	if (a->kind == K_DROP || a->kind == K_CLOSE)
		return 0;
	if (a->kind == K_GARBAGE)
		return reply_garbage(q, out);
	if (a->rd0refused && !q->rd) {
		refused = *a;
		refused.kind = K_RCODE;
		refused.rcode = 5;
		refused.rd0refused = false;
		a = &refused;
	}
	flags = F_QR | F_RA | (q->rd ? F_RD : 0) | (a->ad ? F_AD : 0);
	put(&w, q->msg, 12);
	put(&w, q->msg + 12, q->qend - 12);
	switch (a->kind) {
	case K_TC:
	case K_ANSWER:
		if (a->kind == K_TC && !tcp) {
			flags |= F_TC;
			break;
		}
		for (k = 0; k < a->nip; k++, an++)
			put_addr_rr(&w, 12, &a->ip[k], a->ttl);
		break;
	case K_CNAME:
		put_ref(&w, 12);
		put_u16(&w, T_CNAME);
		put_u16(&w, C_IN);
		put_u32(&w, a->ttl);
		put_u16(&w, (uint16_t)a->target_len);
		target = w.len;
		put(&w, a->target, a->target_len);
		for (an = 1, k = 0; k < a->nip && !w.err; k++, an++)
			put_addr_rr(&w, target, &a->ip[k], a->ttl);
		break;
	case K_NXDOMAIN:
	case K_NODATA:
		flags |= a->kind == K_NXDOMAIN ? 3 : 0;
		if (!a->nosoa) {
			put_soa(&w, q->zone, a);
			ns = 1;
		}
		break;
	case K_RCODE:
		flags |= a->rcode;
		break;
	case K_LARGE:
		cap = (tcp ? MAX_MSG : UDP_CAP) - (q->edns ? 11 : 0);
		ip.family = AF_INET;
		for (i = 0; i < a->count && w.len + 16 <= cap; i++, an++) {
			ip.addr[0] = 10;
			ip.addr[1] = 0;
			ip.addr[2] = (uint8_t)((i + 1) >> 8);
			ip.addr[3] = (uint8_t)(i + 1);
			put_addr_rr(&w, 12, &ip, a->ttl);
		}
		break;
	case K_DROP:
	case K_CLOSE:
	case K_GARBAGE:
		break;
	}
	if (q->edns) {
		put(&w, "", 1);
		put_u16(&w, T_OPT);
		put_u16(&w, 4096);
		put_u32(&w, q->dnssec_ok ? 0x8000 : 0);
		put_u16(&w, (uint16_t)((a->ecs ? 11 : 0) + (a->cookie ? 20 : 0) +
		    (a->ede >= 0 ? 12 : 0)));
		if (a->ecs) {	/* RFC 7871: 192.0.2.0/24, scope /24 */
			put_u16(&w, 8);
			put_u16(&w, 7);
			put_u16(&w, 1);
			put(&w, "\x18\x18\xc0\x00\x02", 5);
		}
		if (a->cookie) {	/* RFC 7873: client and server parts */
			put_u16(&w, 10);
			put_u16(&w, 16);
			put(&w, "\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc"
			    "\x5e\x5e\x5e\x5e\x5e\x5e\x5e\x5e", 16);
		}
		if (a->ede >= 0) {	/* RFC 8914, with a text */
			put_u16(&w, 15);
			put_u16(&w, 8);
			put_u16(&w, (uint16_t)a->ede);
			put(&w, "fakeup", 6);
		}
	}
	if (w.err) {
		logmsg("%s: reply does not fit", q->name);
		return 0;
	}
	set_u16(&w, 2, flags);
	set_u16(&w, 4, 1);
	set_u16(&w, 6, an);
	set_u16(&w, 8, ns);
	set_u16(&w, 10, q->edns ? 1 : 0);
	reply_modify(q, a, out);
	for (i = 0; i < a->junk && w.len < size; i++)	/* past the records */
		out[w.len++] = 0xee;
	return w.len;
}

/* ==== 7. Delivery and delayed replies ===================================== */
/*
 * A query is answered at once, or parked in st->pending with its due time
 * and a copy of its bytes and action.  A parked TCP reply names its
 * connection by slot and serial, so a closed and reused slot gets nothing.
 */

enum via {
	VIA_UDP,
	VIA_TCP,
};

struct pending {
	bool		 used;
	uint64_t	 due;		/* ms, monotonic */
	enum via	 via;
	int		 conn;		/* VIA_TCP: slot in st->conn */
	uint64_t	 serial;	/* VIA_TCP: that slot's serial */
	struct sockaddr_storage peer;	/* VIA_UDP: where to reply */
	socklen_t	 peerlen;
	struct action	 act;		/* delay already served */
	size_t		 len;
	uint8_t		 query[MAX_QUERY];
};

struct conn {
	int		 fd;		/* -1: slot free */
	uint64_t	 serial;	/* new on every accept into the slot */
	uint64_t	 opened;	/* ms; the oldest is evicted */
	bool		 eof;		/* client done sending; close if idle */
	int		 owed;		/* delayed replies still pending */
	size_t		 inlen;
	uint8_t		*in;		/* 2 + MAX_MSG, allocated when used */
	size_t		 outoff;	/* bytes of out already sent */
	size_t		 outlen;
	size_t		 outsize;
	uint8_t		*out;		/* grows up to MAX_OUT */
};

struct state {
	uint64_t	 now;		/* ms, monotonic, read once per pass */
	int		 udp;		/* listening UDP socket */
	int		 udp_alt;	/* same address, other port: badport */
	int		 tcp;		/* listening TCP socket */
	int		 logfd;		/* -1: no log */
	struct rulefile	 file;		/* tried first */
	struct rule	*rules;		/* from the command line; tried next */
	int		 nrules;
	uint64_t	 serial;	/* last connection serial handed out */
	struct conn	 conn[MAX_CONNS];
	struct pending	*pending;	/* MAX_PENDING */
	int		 npending;
	uint8_t		*buf;		/* 2 + MAX_MSG: datagrams in */
	uint8_t		*reply;		/* 2 + MAX_MSG: TCP length + reply */
	struct pollfd	 pfd[3 + MAX_CONNS];
};

static void
conn_close(struct conn *c)
{
	if (c->fd == -1)
		return;
	close(c->fd);
	c->fd = -1;
	c->inlen = 0;
	c->outoff = c->outlen = 0;
	c->owed = 0;
}

/* Close c if the client has stopped sending and nothing more is owed. */
static void
conn_close_idle(struct conn *c)
{
	if (c->fd != -1 && c->eof && c->owed == 0 && c->outoff == c->outlen)
		conn_close(c);
}

/* Write what can be written; close when the client is done and idle. */
static void
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1) {
			conn_close(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	conn_close_idle(c);
}

static void
conn_queue(struct conn *c, const uint8_t *p, size_t n)
{
	size_t want;
	uint8_t *out;

	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outsize - c->outlen < n) {
		want = c->outlen + n;
		if (want > MAX_OUT) {
			logmsg("tcp client: %zu bytes unread; closing", want);
			conn_close(c);
			return;
		}
		want = want < 2 * c->outsize ? 2 * c->outsize : want;
		out = realloc(c->out, want);
		if (out == NULL) {
			logmsg("tcp client: out of memory; closing");
			conn_close(c);
			return;
		}
		c->out = out;
		c->outsize = want;
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

/* Answer q by a now; c is its connection, or peer its UDP client. */
static void
deliver(struct state *st, const struct query *q, const struct action *a,
    struct conn *c, const struct sockaddr_storage *peer, socklen_t peerlen)
{
	size_t len;
	int fd;

	if (c != NULL && a->kind == K_CLOSE) {
		conn_close(c);
		return;
	}
	len = reply_build(q, a, c != NULL, st->reply + 2, MAX_MSG);
	if (len == 0)
		return;
	if (c == NULL) {
		fd = a->badport ? st->udp_alt : st->udp;
		if (sendto(fd, st->reply + 2, len, 0,
		    (const struct sockaddr *)peer, peerlen) == -1)
			logmsg("udp reply: %s", strerror(errno));
		return;
	}
	st->reply[0] = (uint8_t)(len >> 8);
	st->reply[1] = (uint8_t)len;
	conn_queue(c, st->reply, len + 2);
	if (c->fd != -1)
		conn_flush(c);
}

/* The connection a parked TCP reply is for, or NULL if it is gone. */
static struct conn *
pending_conn(struct state *st, const struct pending *p)
{
	struct conn *c = &st->conn[p->conn];

	if (p->via != VIA_TCP || c->fd == -1 || c->serial != p->serial)
		return NULL;
	return c;
}

/* A free pending slot; when full, the entry due first is dropped. */
static struct pending *
pending_slot(struct state *st)
{
	struct pending *p, *first = NULL;
	struct conn *c;
	int i;

	for (i = 0; i < MAX_PENDING; i++) {
		p = &st->pending[i];
		if (!p->used)
			return p;
		if (first == NULL || p->due < first->due)
			first = p;
	}
	logmsg("more than %d delayed replies; dropping the next due",
	    MAX_PENDING);
	if ((c = pending_conn(st, first)) != NULL)
		c->owed--;
	st->npending--;
	return first;
}

static void
pending_add(struct state *st, const struct query *q, const struct action *a,
    struct conn *c, const struct sockaddr_storage *peer, socklen_t peerlen)
{
	struct pending *p;

	if (q->len > MAX_QUERY) {
		logmsg("%s: query too long to delay; dropped", q->name);
		return;
	}
	p = pending_slot(st);
	p->used = true;
	p->due = st->now + a->delay_ms;
	p->act = *a;
	p->act.delay_ms = 0;
	p->len = q->len;
	memcpy(p->query, q->msg, q->len);
	if (c != NULL) {
		p->via = VIA_TCP;
		p->conn = (int)(c - st->conn);
		p->serial = c->serial;
		c->owed++;
	} else {
		p->via = VIA_UDP;
		p->peer = *peer;
		p->peerlen = peerlen;
	}
	st->npending++;
}

/* Send what is due; return the poll timeout in ms (-1: none pending). */
static int
pending_run(struct state *st)
{
	struct pending *p;
	struct conn *c;
	struct query q;
	uint64_t next = UINT64_MAX;
	int i;

	for (i = 0; i < MAX_PENDING && st->npending > 0; i++) {
		p = &st->pending[i];
		if (!p->used)
			continue;
		if (p->due > st->now) {
			next = p->due < next ? p->due : next;
			continue;
		}
		p->used = false;
		st->npending--;
		c = pending_conn(st, p);
		if (p->via == VIA_TCP && c == NULL)
			continue;
		if (c != NULL)
			c->owed--;
		if (query_parse(p->query, p->len, &q) == 0)
			deliver(st, &q, &p->act, c, &p->peer, p->peerlen);
		if (c != NULL)
			conn_close_idle(c);
	}
	if (next == UINT64_MAX)
		return -1;
	return next - st->now > INT_MAX ? INT_MAX : (int)(next - st->now);
}

static void
query_answer(struct state *st, const uint8_t *msg, size_t len,
    struct conn *c, const struct sockaddr_storage *peer, socklen_t peerlen)
{
	static const struct action nxdomain = {
		.kind = K_NXDOMAIN, .ttl = 60, .min = 60, .ede = -1,
	};
	const struct action *a = &nxdomain;
	struct query q;
	const char *type;
	char tbuf[16];
	int i;

	if (query_parse(msg, len, &q) == -1)
		return;
	type = type_name(q.qtype, tbuf, sizeof(tbuf));
	query_log(st->logfd, &q, c != NULL, peer);
	rulefile_check(&st->file, false);
	for (i = 0; i < st->file.nrules; i++)
		if (rule_matches(&st->file.rules[i], q.name, type)) {
			a = &st->file.rules[i].act;
			goto found;
		}
	for (i = 0; i < st->nrules; i++)
		if (rule_matches(&st->rules[i], q.name, type)) {
			a = &st->rules[i].act;
			break;
		}
found:
	if (a->delay_ms > 0)
		pending_add(st, &q, a, c, peer, peerlen);
	else
		deliver(st, &q, a, c, peer, peerlen);
}

/* ==== 8. UDP and TCP I/O ================================================== */
/*
 * TCP messages carry a two-byte length (RFC 1035 4.2.2); a connection may
 * carry many queries, answered in the order their replies become due
 * (RFC 7766 6.2.1.1).  All sockets are non-blocking.
 */

static void
udp_read(struct state *st)
{
	struct sockaddr_storage peer;
	socklen_t peerlen;
	ssize_t n;
	int i;

	for (i = 0; i < UDP_BATCH; i++) {
		peerlen = sizeof(peer);
		n = recvfrom(st->udp, st->buf, MAX_MSG, MSG_DONTWAIT,
		    (struct sockaddr *)&peer, &peerlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return;
		query_answer(st, st->buf, (size_t)n, NULL, &peer, peerlen);
	}
}

static void
tcp_accept(struct state *st)
{
	struct conn *c, *oldest;
	int fd, i;

	for (;;) {
		fd = accept4(st->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1 && errno == EINTR)
			continue;
		if (fd == -1)
			return;
		oldest = c = NULL;
		for (i = 0; i < MAX_CONNS && c == NULL; i++) {
			if (st->conn[i].fd == -1)
				c = &st->conn[i];
			else if (oldest == NULL ||
			    st->conn[i].opened < oldest->opened)
				oldest = &st->conn[i];
		}
		if (c == NULL) {
			logmsg("more than %d tcp clients; closing the oldest",
			    MAX_CONNS);
			conn_close(oldest);
			c = oldest;
		}
		if (c->in == NULL && (c->in = malloc(2 + MAX_MSG)) == NULL) {
			logmsg("tcp client: out of memory; closing");
			close(fd);
			continue;
		}
		c->fd = fd;
		c->serial = ++st->serial;
		c->opened = st->now;
		c->eof = false;
		c->owed = 0;
		c->inlen = c->outoff = c->outlen = 0;
	}
}

static void
tcp_read(struct state *st, struct conn *c)
{
	uint64_t serial = c->serial;
	size_t mlen;
	ssize_t n;

	n = recv(c->fd, c->in + c->inlen, 2 + MAX_MSG - c->inlen,
	    MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN ||
	    errno == EWOULDBLOCK))
		return;
	if (n == -1) {
		conn_close(c);
		return;
	}
	if (n == 0)
		c->eof = true;
	c->inlen += (size_t)n;
	while (c->inlen >= 2) {
		mlen = (size_t)c->in[0] << 8 | c->in[1];
		if (c->inlen < 2 + mlen)
			break;
		query_answer(st, c->in + 2, mlen, c, NULL, 0);
		if (c->fd == -1 || c->serial != serial)
			return;
		c->inlen -= 2 + mlen;
		memmove(c->in, c->in + 2 + mlen, c->inlen);
	}
	conn_close_idle(c);
}

/* ==== 9. Event loop ======================================================= */
/*
 * SIGTERM and SIGINT are blocked except inside ppoll(), so a signal can
 * never slip in between the check of stop_requested and the wait.
 */

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
loop_run(struct state *st, const sigset_t *waitmask)
{
	struct timespec ts;
	struct conn *c;
	int timeout, npfd, i, ready, ev;
	int slot[MAX_CONNS];

	while (!stop_requested) {
		st->now = wire_now_ms();
		timeout = pending_run(st);
		st->pfd[0] = (struct pollfd){ st->udp, POLLIN, 0 };
		st->pfd[1] = (struct pollfd){ st->tcp, POLLIN, 0 };
		npfd = 2;
		for (i = 0; i < MAX_CONNS; i++) {
			if (st->conn[i].fd == -1)
				continue;
			slot[npfd - 2] = i;
			st->pfd[npfd++] = (struct pollfd){ st->conn[i].fd,
			    (short)(st->conn[i].eof ? 0 : POLLIN) |
			    (st->conn[i].outoff < st->conn[i].outlen ?
			    POLLOUT : 0), 0 };
		}
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		ready = ppoll(st->pfd, (nfds_t)npfd, timeout < 0 ? NULL : &ts,
		    waitmask);
		if (ready == -1 && errno == EINTR)
			continue;
		if (ready == -1)
			die("poll: %s", strerror(errno));
		st->now = wire_now_ms();
		for (i = 2; i < npfd; i++) {
			c = &st->conn[slot[i - 2]];
			ev = st->pfd[i].revents;
			if (ev & POLLOUT)
				conn_flush(c);
			if (c->fd == -1 || (ev & ~POLLOUT) == 0)
				continue;
			if (c->eof)	/* hung up with replies still owed */
				conn_close(c);
			else
				tcp_read(st, c);
		}
		if (st->pfd[0].revents)
			udp_read(st);
		if (st->pfd[1].revents)
			tcp_accept(st);
	}
}

/* ==== 10. usage() and main() ============================================== */

static _Noreturn void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
"usage: fakeup [-x] [-l ADDR:PORT] [-L LOGFILE] [-r RULEFILE] [RULE ...]\n"
"  -l ADDR:PORT  UDP and TCP address (default 127.0.0.1:0; [::1]:0 for IPv6)\n"
"  -L LOGFILE    append one line per query:\n"
"                udp|tcp QNAME TYPE id=ID edns=SIZE|none do=0|1 rd=0|1\n"
"                [port=SOURCEPORT opts=CODES|none] cd=0|1 ad=0|1 ms=WALLCLOCK\n"
"  -x            ... with port= and opts=\n"
"  -r RULEFILE   one rule per line, # comments; re-read when it changes;\n"
"                its rules are tried before the command line's\n"
"RULE: PATTERN [MODIFIER...] ACTION [ARGS]; the first match wins, none is\n"
"  nxdomain.  PATTERN: *, *.SUFFIX (subdomains only) or a name, with\n"
"  /TYPE (A, AAAA, TYPE65...) for that query type only.\n"
"MODIFIER: delay MS | badid | badport | badq | caseflip | ecs | cookie |\n"
"          ede CODE | ad | rd0refused | junk N\n"
"ACTION:   answer IP... [ttl=N] | cname TARGET IP... [ttl=N]\n"
"          nxdomain|nodata [ttl=N] [min=N] [nosoa]\n"
"          servfail | refused | formerr | notimp | drop | close | garbage\n"
"          tc IP... [ttl=N] | large N\n");
	exit(status);
}

/* "ADDR:PORT", "[V6ADDR]:PORT", or an address alone (port 0). */
static int
parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN];
	const char *end, *port = NULL;
	uint32_t p = 0;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (spec[0] == '[') {
		if ((end = strchr(spec, ']')) == NULL)
			return -1;
		hl = (size_t)(end - spec - 1);
		spec++;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		end = strrchr(spec, ':');
		hl = end == NULL ? strlen(spec) : (size_t)(end - spec);
		port = end == NULL ? NULL : end + 1;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (port != NULL && parse_u32(port, 65535, &p) == -1)
		return -1;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*s6);
	} else
		return -1;
	return 0;
}

static int
open_socket(const struct sockaddr_storage *ss, socklen_t len, int type)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket: %s", strerror(errno));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t
sock_port(struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ?
	    ((struct sockaddr_in *)ss)->sin_port :
	    ((struct sockaddr_in6 *)ss)->sin6_port);
}

static void
sock_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* Bind UDP and TCP to one port; with port 0, find one free for both. */
static void
listen_open(struct state *st, const char *spec)
{
	struct sockaddr_storage ss, bound;
	char host[INET6_ADDRSTRLEN];
	bool any;
	socklen_t len, blen;
	int try;

	if (parse_listen(spec, &ss, &len) == -1)
		die("-l: \"%s\" is not ADDR:PORT", spec);
	any = sock_port(&ss) == 0;
	for (try = 0; try < BIND_TRIES; try++) {
		sock_set_port(&ss, any ? 0 : sock_port(&ss));
		if ((st->udp = open_socket(&ss, len, SOCK_DGRAM)) == -1)
			die("cannot listen on %s: %s", spec, strerror(errno));
		blen = sizeof(bound);
		if (getsockname(st->udp, (struct sockaddr *)&bound,
		    &blen) == -1)
			die("getsockname: %s", strerror(errno));
		sock_set_port(&ss, sock_port(&bound));
		st->tcp = open_socket(&ss, len, SOCK_STREAM);
		if (st->tcp != -1 && listen(st->tcp, SOMAXCONN) == 0)
			break;
		if (!any || (errno != EADDRINUSE && errno != EACCES))
			die("cannot listen on %s (tcp): %s", spec,
			    strerror(errno));
		if (st->tcp != -1)
			close(st->tcp);
		close(st->udp);
	}
	if (try == BIND_TRIES)
		die("cannot listen on %s: no port free for udp and tcp", spec);
	sock_set_port(&ss, 0);
	if ((st->udp_alt = open_socket(&ss, len, SOCK_DGRAM)) == -1)
		die("cannot bind the badport socket: %s", strerror(errno));
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr,
		    host, sizeof(host));
		logmsg("listening on %s:%u", host, sock_port(&bound));
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr,
		    host, sizeof(host));
		logmsg("listening on [%s]:%u", host, sock_port(&bound));
	}
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n, size)) == NULL)
		die("out of memory");
	return p;
}

static void
state_free(struct state *st)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++) {
		conn_close(&st->conn[i]);
		free(st->conn[i].in);
		free(st->conn[i].out);
	}
	free(st->file.text);
	free(st->file.next);
	free(st->file.rules);
	free(st->file.scratch);
	free(st->rules);
	free(st->pending);
	free(st->buf);
	free(st->reply);
	close(st->udp);
	close(st->udp_alt);
	close(st->tcp);
	if (st->logfd != -1)
		close(st->logfd);
	free(st);
}

int
main(int argc, char *argv[])
{
	const char *listen_spec = "127.0.0.1:0", *logpath = NULL;
	struct sigaction sa;
	sigset_t block, waitmask;
	struct state *st;
	char err[256], rule[MAX_LINE + 1];
	int ch, i, r;

	st = xcalloc(1, sizeof(*st));
	st->logfd = -1;
	while ((ch = getopt(argc, argv, "+hl:L:r:x")) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'x':
			log_more = true;
			break;
		case 'L':
			logpath = optarg;
			break;
		case 'r':
			st->file.path = optarg;
			break;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > MAX_RULES)
		die("more than %d rules", MAX_RULES);
	st->rules = xcalloc(MAX_RULES, sizeof(*st->rules));
	for (i = 0; i < argc; i++) {
		if (strlen(argv[i]) > MAX_LINE)
			die("rule %d: too long", i + 1);
		strcpy(rule, argv[i]);
		r = rule_parse(rule, &st->rules[st->nrules], err, sizeof(err));
		if (r == -1)
			die("rule \"%s\": %s", argv[i], err);
		if (r == 0)
			st->nrules++;
	}
	st->file.text = xcalloc(1, MAX_RULEFILE + 1);
	st->file.next = xcalloc(1, MAX_RULEFILE + 1);
	st->file.rules = xcalloc(MAX_RULES, sizeof(struct rule));
	st->file.scratch = xcalloc(MAX_RULES, sizeof(struct rule));
	rulefile_check(&st->file, true);
	st->pending = xcalloc(MAX_PENDING, sizeof(*st->pending));
	st->buf = xcalloc(1, 2 + MAX_MSG);
	st->reply = xcalloc(1, 2 + MAX_MSG);
	for (i = 0; i < MAX_CONNS; i++)
		st->conn[i].fd = -1;
	if (logpath != NULL && (st->logfd = open(logpath,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) == -1)
		die("%s: %s", logpath, strerror(errno));

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	listen_open(st, listen_spec);
	loop_run(st, &waitmask);
	state_free(st);
	return 0;
}
