/*
 * test/unit.c - unit tests of the pure functions declared in dnsfwd.h.
 *
 * Every assertion prints one line, "ok - DESC" or "not ok - DESC", with
 * "#   " diagnostics under a failure; main returns 1 if any failed.  Every
 * parser input is copied so that it ends where a PROT_NONE page begins
 * (picohttpparser), buffers the builders write end at another, and the
 * build uses ASan and UBSan, so one byte read or written too far is a
 * crash, not a silent pass.
 *
 * Packets are written as specs (see enc()): hex bytes, "n:NAME" wire names
 * and "( ... )" for an RDLENGTH, so a table row reads like a hex dump.
 *
 * `test/unit --resolv FILE` prints what resolv_parse() makes of FILE, one
 * line each: "nameserver ADDR[%IFNAME|%N]", then "ignored N" and "bad N";
 * test/run.sh diffs that against the golden files in test/resolv/.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../dnsfwd.h"
#include "wire.h"

/* A fixed dns_question_hash() key: the tests must not depend on chance. */
static const uint64_t test_key[2] = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN	1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define DC		(-1)	/* table value: not checked */
#define AT_MARK		(-2)	/* table value: the offset of the first '@' */
#define NEG_DC		(-2)	/* table neg_ttl: not checked */
#define PKT_MAX		8192	/* largest packet a spec may build */
#define FUZZ_ROUNDS	20000	/* mutations per fuzzed parser */

static int n_run, n_failed;

/* ---- output ----------------------------------------------------------- */

static bool ok_(bool cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static bool
ok_(bool cond, const char *fmt, ...)
{
	va_list ap;

	n_run++;
	if (!cond)
		n_failed++;
	fputs(cond ? "ok - " : "not ok - ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return cond;
}

#define ok(cond, ...)	ok_((cond) != 0, __VA_ARGS__)

static void
diag(const char *fmt, ...)
{
	va_list ap;

	fputs("#   ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A mistake in a test itself: stop, and let run.sh count it. */
static _Noreturn void
bail(const char *what, const char *spec)
{
	printf("not ok - test error: %s: \"%s\"\n", what, spec);
	exit(1);
}

/* ---- guard page ------------------------------------------------------- */

static uint8_t *guard_end;	/* first byte of the PROT_NONE page */
static size_t guard_room;	/* writable bytes before it */
static uint8_t *out_end;	/* the same for output buffers */
static size_t out_room;

/* Map at least want bytes followed by a PROT_NONE page; its first byte. */
static uint8_t *
guard_map(size_t want, size_t *room)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p;

	*room = (want + page) / page * page;
	p = mmap(NULL, *room + page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + *room, page, PROT_NONE) == -1) {
		printf("not ok - guard page: cannot map\n");
		exit(1);
	}
	return p + *room;
}

static void
guard_init(void)
{
	/* room for the largest resolv.conf and one byte more */
	guard_end = guard_map(RESOLV_MAX_FILE, &guard_room);
	/* room for the largest answer written while input is at the guard */
	out_end = guard_map(DNS_MAX_TCP, &out_room);
}

/* Copy len bytes so that they end just before the guard page. */
static uint8_t *
at_guard(const void *src, size_t len)
{
	uint8_t *d;

	if (len > guard_room)
		bail("input larger than the guard area", "");
	d = guard_end - len;
	if (len > 0)
		memmove(d, src, len);
	return d;
}

/* An output buffer of size bytes that ends just before a guard page. */
static uint8_t *
out_guard(size_t size)
{
	if (size > out_room)
		bail("output larger than the guard area", "");
	return out_end - size;
}

/* The guards are armed: reading the first byte of one kills a child. */
static void
test_guard(void)
{
	volatile const uint8_t *ends[2] = { guard_end, out_end }, *p;
	pid_t pid;
	int st, fd, k;

	for (k = 0; k < 2; k++) {
		p = ends[k];
		st = 0;
		fflush(stdout);
		if ((pid = fork()) == 0) {
			if ((fd = open("/dev/null", O_WRONLY)) != -1)
				dup2(fd, 2);
			_exit(p[0] == 0x55 ? 3 : 0);
		}
		waitpid(pid, &st, 0);
		ok(pid > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0),
		    "guard page: a read past the %s faults",
		    k == 0 ? "input" : "output buffer");
	}
}

/* ---- packet specs ----------------------------------------------------- */

struct pkt {
	uint8_t		 b[PKT_MAX];
	size_t		 len;
	size_t		 mark[4];	/* offsets of the '@'s */
	int		 nmark;
};

static void
put(struct pkt *p, unsigned v, const char *spec)
{
	if (p->len >= sizeof(p->b))
		bail("spec too long", spec);
	p->b[p->len++] = (uint8_t)v;
}


/* "www.example.test" (or ".") as a wire name. */
static void
put_name(struct pkt *p, const char *s, size_t n, const char *spec)
{
	size_t i = 0, l;

	if (n == 1 && s[0] == '.') {
		put(p, 0, spec);
		return;
	}
	while (i < n) {
		for (l = 0; i + l < n && s[i + l] != '.'; l++)
			;
		if (l == 0 || l > 63)
			bail("bad name", spec);
		put(p, (unsigned)l, spec);
		for (; l > 0; l--)
			put(p, (unsigned char)s[i++], spec);
		i++;
	}
	put(p, 0, spec);
}

/*
 * Assemble a packet from space-separated tokens:
 *   0100 c00c     hex bytes, in the order written
 *   n:www.test    a wire name; "n:." is the root
 *   l:N           a label of N 'a's with its length byte (N may be 64)
 *   x:N:HEX       N copies of the bytes HEX ("x:3:0161" is 01 61 01 61 01 61)
 *   @             remember this offset in p->mark[]
 *   ( ... )       a big-endian 16-bit length of what is inside (RDLENGTH)
 */
static void
enc(struct pkt *p, const char *spec)
{
	size_t open[8], n, i;
	const char *s = spec;
	unsigned long a, b;
	char *end;
	int depth = 0, h1, h2;

	p->len = 0;
	p->nmark = 0;
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (*s == '(') {
			if (depth == 8)
				bail("too deep", spec);
			open[depth++] = p->len;
			put(p, 0, spec);
			put(p, 0, spec);
			s++;
			continue;
		}
		if (*s == ')') {
			if (depth == 0)
				bail("unbalanced )", spec);
			n = p->len - open[--depth] - 2;
			p->b[open[depth]] = (uint8_t)(n >> 8);
			p->b[open[depth] + 1] = (uint8_t)n;
			s++;
			continue;
		}
		n = strcspn(s, " ()");
		if (s[0] == '@') {
			if (p->nmark == 4)
				bail("too many marks", spec);
			p->mark[p->nmark++] = p->len;
		} else if (strncmp(s, "n:", 2) == 0) {
			put_name(p, s + 2, n - 2, spec);
		} else if (strncmp(s, "l:", 2) == 0) {
			a = strtoul(s + 2, &end, 10);
			put(p, (unsigned)a, spec);
			for (i = 0; i < a; i++)
				put(p, 'a', spec);
		} else if (strncmp(s, "x:", 2) == 0) {
			a = strtoul(s + 2, &end, 10);
			if (*end != ':')
				bail("bad x:", spec);
			b = (unsigned long)(s + n - (end + 1));
			if (b == 0 || b % 2 != 0)
				bail("bad x:", spec);
			for (i = 0; i < a * b; i += 2) {
				h1 = wire_hexval(end[1 + i % b]);
				h2 = wire_hexval(end[2 + i % b]);
				if (h1 < 0 || h2 < 0)
					bail("bad hex in x:", spec);
				put(p, (unsigned)(h1 << 4 | h2), spec);
			}
		} else {
			if (n % 2 != 0)
				bail("odd hex", spec);
			for (i = 0; i < n; i += 2) {
				h1 = wire_hexval(s[i]);
				h2 = wire_hexval(s[i + 1]);
				if (h1 < 0 || h2 < 0)
					bail("bad hex", spec);
				put(p, (unsigned)(h1 << 4 | h2), spec);
			}
		}
		s += n;
	}
	if (depth != 0)
		bail("unbalanced (", spec);
}

static uint16_t
u16_at(const uint8_t *b, size_t off)
{
	return (uint16_t)(b[off] << 8 | b[off + 1]);
}

/* Common pieces of specs. */
#define QH		"1234 0100 0001 0000 0000 0000"	/* RD, one question */
#define QH_AR1		"1234 0100 0001 0000 0000 0001"
#define QWWW		"n:www.example.test 0001 0001"	/* 22 bytes; qend 34 */
#define OPT_DO		"@ 00 0029 1000 00008000 0000"	/* 4096, DO */
#define OPT_PLAIN	"@ 00 0029 04d0 00000000 0000"	/* 1232 */
#define A300		"c00c 0001 0001 0000012c (c0000201)"
#define A3600		"c00c 0001 0001 00000e10 (c0000202)"
/* SOA for example.test, TTL 3600, MINIMUM 60, names compressed */
#define SOA_3600_60	"c010 0006 0001 00000e10 (c010 " \
			"0a686f73746d6173746572c010 00000001 00001c20 " \
			"00000e10 00093a80 0000003c)"
/* the same, TTL 30, MINIMUM 600, names in full */
#define SOA_30_600	"c010 0006 0001 0000001e (n:ns.example.test " \
			"n:hostmaster.example.test 00000001 00001c20 " \
			"00000e10 00093a80 00000258)"

/* The query every reply test answers: www.example.test A IN, EDNS. */
static struct dns_query the_query;

static void
init_query(void)
{
	struct pkt p;

	enc(&p, QH_AR1 " " QWWW " " OPT_DO);
	if (dns_parse_query(p.b, p.len, &the_query) != 0)
		bail("the reference query does not parse", QWWW);
}

/* ---- cursor and names ------------------------------------------------- */

static void
test_cursor(void)
{
	static const uint8_t bytes[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct dns_cursor c;
	uint32_t v32;
	uint16_t v16, t16;

	dns_cursor_init(&c, at_guard(bytes, sizeof(bytes)), sizeof(bytes));
	v32 = dns_get_u32(&c);
	v16 = dns_get_u16(&c);
	ok(v32 == 0x01020304 && v16 == 0x0506 && c.err == NULL && c.pos == 6,
	    "cursor: u32 and u16 read big-endian");
	t16 = dns_get_u16(&c);
	ok(t16 == 0 && c.err != NULL && c.pos == 6,
	    "cursor: u16 with one byte left fails and does not move");
	v32 = dns_get_u32(&c);
	ok(v32 == 0 && c.pos == 6, "cursor: the error sticks (u32 after it)");
	dns_cursor_init(&c, at_guard(bytes, 3), 3);
	v32 = dns_get_u32(&c);
	ok(v32 == 0 && c.err != NULL, "cursor: u32 from 3 bytes fails");
	dns_cursor_init(&c, at_guard(bytes, 0), 0);
	v16 = dns_get_u16(&c);
	ok(v16 == 0 && c.err != NULL, "cursor: u16 from 0 bytes fails");
}

struct name_case {
	const char	*desc;
	const char	*spec;
	size_t		 start;		/* cursor position to read from */
	int		 want;		/* return value */
	size_t		 pos;		/* cursor after it, when want > 0 */
	const char	*name;		/* spec of the wire name read */
};

static const struct name_case name_cases[] = {
	{ "plain name", "x:12:00 n:www.example.test", 12, 18, 30,
	    "n:www.example.test" },
	{ "root", "x:12:00 00", 12, 1, 13, "00" },
	{ "backward pointer", "x:12:00 n:example.test 03777777 c00c", 26, 18,
	    32, "n:www.example.test" },
	{ "chain of two backward pointers",
	    "x:12:00 n:test 076578616d706c65 c00c 03777777 c012", 28, 18, 34,
	    "n:www.example.test" },
	{ "bare pointer", "x:12:00 n:example.test c00c", 26, 14, 28,
	    "n:example.test" },
	{ "pointer with a 14-bit offset",
	    "x:12:00 x:300:00 n:foo.test 03777777 c138", 322, 14, 328,
	    "n:www.foo.test" },
	{ "pointer to itself", "x:12:00 c00c", 12, -1, 0, NULL },
	{ "forward pointer", "x:12:00 c00e 00", 12, -1, 0, NULL },
	{ "pointer loop of two", "x:12:00 c00e c00c", 14, -1, 0, NULL },
	{ "pointer back into its own run", "x:12:00 03666f6f c00c", 12, -1, 0,
	    NULL },
	{ "pointer into the header (5)", "x:12:00 03777777 c005", 12, -1, 0,
	    NULL },
	{ "pointer into the header (0)", "x:12:00 00 c000", 13, -1, 0, NULL },
	{ "pointer into the header (11)", "x:12:00 c00b", 12, -1, 0, NULL },
	{ "label type 0x40", "x:12:00 4161 00", 12, -1, 0, NULL },
	{ "label type 0x80", "x:12:00 8161 00", 12, -1, 0, NULL },
	{ "label type 0x40 after a label", "x:12:00 03777777 7f 00", 12, -1, 0,
	    NULL },
	{ "label of 63", "x:12:00 l:63 00", 12, 65, 77, "l:63 00" },
	{ "label of 64", "x:12:00 l:64 00", 12, -1, 0, NULL },
	{ "name of exactly 255 octets", "x:12:00 l:63 l:63 l:63 l:61 00", 12,
	    255, 267, "l:63 l:63 l:63 l:61 00" },
	{ "name of 256 octets", "x:12:00 l:63 l:63 l:63 l:62 00", 12, -1, 0,
	    NULL },
	{ "255 octets across a pointer",
	    "x:12:00 l:63 l:63 00 l:63 l:61 c00c", 141, 255, 269,
	    "l:63 l:61 l:63 l:63 00" },
	{ "256 octets across a pointer",
	    "x:12:00 l:63 l:63 00 l:63 l:62 c00c", 141, -1, 0, NULL },
	{ "255 octets in 127 one-byte labels", "x:12:00 x:127:0161 00", 12,
	    255, 267, "x:127:0161 00" },
	{ "257 octets in 128 one-byte labels", "x:12:00 x:128:0161 00", 12,
	    -1, 0, NULL },
	{ "label runs past the end", "x:12:00 03777777", 12, -1, 0, NULL },
	{ "label cut short", "x:12:00 037777", 12, -1, 0, NULL },
	{ "pointer cut after one byte", "x:12:00 00 03777777 c0", 13, -1, 0,
	    NULL },
	{ "nothing left at the cursor", "x:12:00", 12, -1, 0, NULL },
	{ "case preserved", "x:12:00 03575757 00", 12, 5, 17, "03575757 00" },
	{ "label bytes are opaque", "x:12:00 032e00ff 00", 12, 5, 17,
	    "032e00ff 00" },
};

static void
test_get_name(void)
{
	const struct name_case *t;
	struct dns_cursor c;
	struct pkt p, w;
	uint8_t out[DNS_MAX_NAME];
	size_t i;
	int n;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		t = &name_cases[i];
		enc(&p, t->spec);
		dns_cursor_init(&c, at_guard(p.b, p.len), p.len);
		c.pos = t->start;
		memset(out, 0xee, sizeof(out));
		n = dns_get_name(&c, out);
		if (t->want < 0) {
			if (!ok(n == -1 && c.err != NULL,
			    "dns_get_name: %s: rejected", t->desc))
				diag("got %d, err %s", n,
				    c.err != NULL ? c.err : "NULL");
			continue;
		}
		enc(&w, t->name);
		if (!ok(n == t->want && c.err == NULL && c.pos == t->pos &&
		    (size_t)n == w.len && memcmp(out, w.b, w.len) == 0,
		    "dns_get_name: %s: %d octets, cursor at %zu", t->desc,
		    t->want, t->pos))
			diag("got %d, cursor at %zu, err %s", n, c.pos,
			    c.err != NULL ? c.err : "NULL");
	}

	/* an error already set is kept, and nothing is read */
	enc(&p, "x:12:00 n:www.example.test");
	dns_cursor_init(&c, at_guard(p.b, p.len), p.len);
	c.pos = 12;
	c.err = "earlier";
	n = dns_get_name(&c, out);
	ok(n == -1 && c.pos == 12 && strcmp(c.err, "earlier") == 0,
	    "dns_get_name: a sticky error is kept");
}

static void
test_name_helpers(void)
{
	static const struct {
		const char	*spec;
		const char	*text;
	} texts[] = {
		{ "n:www.example.test", "www.example.test" },
		{ "00", "." },
		{ "n:a", "a" },
		{ "032e4141 00", "\\046AA" },
		{ "0320415c 00", "\\032A\\092" },
		{ "0200ff 00", "\\000\\255" },
	};
	char text[DNS_MAX_NAME * 4 + 1], tb[16];
	struct pkt p, w;
	size_t i;
	int cut;
	bool good;

	enc(&p, "03576057 07457841 6d506c45 04544553 74 5b 00");
	enc(&w, "03776077 07657861 6d706c65 04746573 74 5b 00");
	dns_name_lower(p.b, p.len);
	ok(memcmp(p.b, w.b, p.len) == 0,
	    "dns_name_lower: A-Z only ('`', '[', length bytes untouched)");
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		enc(&p, texts[i].spec);
		dns_name_text(p.b, text, sizeof(text));
		if (!ok(strcmp(text, texts[i].text) == 0,
		    "dns_name_text: \"%s\"", texts[i].text))
			diag("got \"%s\"", text);
	}
	/* a short buffer holds a NUL-terminated prefix of the text */
	enc(&p, "n:www.example.test");
	good = true;
	for (cut = 1; cut <= 17; cut++) {
		memset(text, 'Z', sizeof(text));
		dns_name_text(p.b, text, (size_t)cut);
		if (memchr(text, '\0', (size_t)cut) == NULL ||
		    strncmp(text, "www.example.test", strlen(text)) != 0 ||
		    text[cut] != 'Z') {
			if (good)
				diag("outlen %d: got \"%.*s\"", cut, cut, text);
			good = false;
		}
	}
	ok(good, "dns_name_text: a short buffer gets a prefix of the name");

	ok(strcmp(dns_type_name(TYPE_A, tb, sizeof(tb)), "A") == 0 &&
	    strcmp(dns_type_name(TYPE_AAAA, tb, sizeof(tb)), "AAAA") == 0 &&
	    strcmp(dns_type_name(65, tb, sizeof(tb)), "HTTPS") == 0,
	    "dns_type_name: mnemonics");
	ok(strcmp(dns_type_name(99, tb, sizeof(tb)), "TYPE99") == 0 &&
	    strcmp(dns_type_name(65535, tb, sizeof(tb)), "TYPE65535") == 0,
	    "dns_type_name: TYPEnn for unknown types");
	ok(strcmp(dns_rcode_name(RCODE_NXDOMAIN), "NXDOMAIN") == 0 &&
	    strcmp(dns_rcode_name(RCODE_REFUSED), "REFUSED") == 0 &&
	    strcmp(dns_rcode_name(9), "RCODE?") == 0 &&
	    strcmp(dns_rcode_name(-1), "RCODE?") == 0,
	    "dns_rcode_name: names, and RCODE? outside 0..5");
}

/* ---- dns_parse_query -------------------------------------------------- */

struct query_case {
	const char	*desc;
	const char	*spec;
	int		 rc;
	int		 qend;		/* DC: not checked */
	int		 opt;		/* offset, AT_MARK or DC */
	int		 udp;		/* DC: not checked */
	int		 do_bit;	/* DC: not checked */
};

static const struct query_case query_cases[] = {
	{ "A query, no EDNS", QH " " QWWW, 0, 34, 0, 512, 0 },
	{ "root NS query", QH " n:. 0002 0001", 0, 17, 0, 512, 0 },
	{ "EDNS 4096 with DO", QH_AR1 " " QWWW " " OPT_DO, 0, 34, AT_MARK,
	    4096, 1 },
	{ "EDNS 1232 without DO", QH_AR1 " " QWWW " " OPT_PLAIN, 0, 34,
	    AT_MARK, 1232, 0 },
	{ "EDNS size 100 is taken as 512",
	    QH_AR1 " " QWWW " @ 00 0029 0064 00000000 0000", 0, 34, AT_MARK,
	    512, 0 },
	{ "EDNS size 0 is taken as 512",
	    QH_AR1 " " QWWW " @ 00 0029 0000 00000000 0000", 0, 34, AT_MARK,
	    512, DC },
	{ "EDNS size 512 kept",
	    QH_AR1 " " QWWW " @ 00 0029 0200 00000000 0000", 0, 34, AT_MARK,
	    512, DC },
	{ "EDNS with a cookie option",
	    QH_AR1 " " QWWW " @ 00 0029 1000 00008000 (000a 0008 "
	    "0102030405060708)", 0, 34, AT_MARK, 4096, 1 },
	{ "OPT after another additional record",
	    "1234 0100 0001 0000 0000 0002 " QWWW
	    " c00c 0001 0001 00000000 (01020304) " OPT_PLAIN, 0, 34, AT_MARK,
	    1232, DC },
	{ "a well-formed answer record in a query",
	    "1234 0100 0001 0001 0000 0000 " QWWW " " A300, 0, 34, 0, 512, DC },
	{ "two OPT records: FORMERR",
	    "1234 0100 0001 0000 0000 0002 " QWWW " " OPT_PLAIN " " OPT_DO,
	    RCODE_FORMERR, 34, DC, DC, DC },
	{ "OPT owned by a name: FORMERR",
	    QH_AR1 " " QWWW " c00c 0029 1000 00000000 0000", RCODE_FORMERR, 34,
	    DC, DC, DC },
	{ "OPT RDLENGTH past the end: FORMERR",
	    QH_AR1 " " QWWW " 00 0029 1000 00000000 0004 0000",
	    RCODE_FORMERR, 34, DC, DC, DC },
	{ "QR set: dropped", "1234 8100 0001 0000 0000 0000 " QWWW, -1, DC,
	    DC, DC, DC },
	{ "QR set, no question: dropped", "1234 8000 0000 0000 0000 0000", -1,
	    DC, DC, DC, DC },
	{ "QR set, opcode 5: dropped", "1234 a800 0001 0000 0000 0000 " QWWW,
	    -1, DC, DC, DC, DC },
	{ "qdcount 0: FORMERR", "1234 0100 0000 0000 0000 0000", RCODE_FORMERR,
	    0, DC, DC, DC },
	{ "qdcount 0 with a question after the header: FORMERR",
	    "1234 0100 0000 0000 0000 0000 " QWWW, RCODE_FORMERR, 0, DC, DC,
	    DC },
	{ "qdcount 2: FORMERR", "1234 0100 0002 0000 0000 0000 " QWWW " " QWWW,
	    RCODE_FORMERR, 0, DC, DC, DC },
	{ "qdcount 1 but only a header: FORMERR", QH, RCODE_FORMERR, 0, DC,
	    DC, DC },
	{ "opcode 1 (IQUERY): NOTIMP, question kept",
	    "1234 0900 0001 0000 0000 0000 " QWWW, RCODE_NOTIMP, 34, DC, DC,
	    DC },
	{ "opcode 2 (STATUS): NOTIMP", "1234 1100 0001 0000 0000 0000 " QWWW,
	    RCODE_NOTIMP, 34, DC, DC, DC },
	{ "opcode 4 (NOTIFY): NOTIMP", "1234 2000 0001 0000 0000 0000 " QWWW,
	    RCODE_NOTIMP, 34, DC, DC, DC },
	{ "opcode 5 (UPDATE): NOTIMP", "1234 2800 0001 0000 0000 0000 " QWWW,
	    RCODE_NOTIMP, 34, DC, DC, DC },
	{ "opcode 15 with EDNS: NOTIMP",
	    "1234 7900 0001 0000 0000 0001 " QWWW " " OPT_DO, RCODE_NOTIMP, 34,
	    DC, DC, DC },
	{ "ancount 1, no record: FORMERR",
	    "1234 0100 0001 0001 0000 0000 " QWWW, RCODE_FORMERR, 34, DC, DC,
	    DC },
	{ "nscount 65535: FORMERR", "1234 0100 0001 0000 ffff 0000 " QWWW,
	    RCODE_FORMERR, 34, DC, DC, DC },
	{ "arcount 1, no record: FORMERR", QH_AR1 " " QWWW, RCODE_FORMERR, 34,
	    DC, DC, DC },
	{ "arcount 2, one OPT: FORMERR",
	    "1234 0100 0001 0000 0000 0002 " QWWW " " OPT_DO, RCODE_FORMERR,
	    34, DC, DC, DC },
	{ "counts 65535 everywhere: FORMERR",
	    "1234 0100 0001 ffff ffff ffff " QWWW, RCODE_FORMERR, 34, DC, DC,
	    DC },
	{ "question without type and class: FORMERR",
	    QH " n:www.example.test", RCODE_FORMERR, 0, DC, DC, DC },
	{ "question without class: FORMERR", QH " n:www.example.test 0001",
	    RCODE_FORMERR, 0, DC, DC, DC },
	{ "question name cut: FORMERR", QH " 03777777", RCODE_FORMERR, 0, DC,
	    DC, DC },
	{ "question label type 0x40: FORMERR", QH " 4161 00 0001 0001",
	    RCODE_FORMERR, 0, DC, DC, DC },
	{ "question label type 0x80: FORMERR", QH " 8161 00 0001 0001",
	    RCODE_FORMERR, 0, DC, DC, DC },
	{ "question pointer into the header: FORMERR", QH " c004 0001 0001",
	    RCODE_FORMERR, 0, DC, DC, DC },
	{ "question pointer to itself: FORMERR", QH " c00c 0001 0001",
	    RCODE_FORMERR, 0, DC, DC, DC },
	{ "question name of 255 octets", QH " l:63 l:63 l:63 l:61 00 0001 0001",
	    0, 271, 0, 512, DC },
	{ "question name of 256 octets: FORMERR",
	    QH " l:63 l:63 l:63 l:62 00 0001 0001", RCODE_FORMERR, 0, DC, DC,
	    DC },
	{ "question label of 64: FORMERR", QH " l:64 00 0001 0001",
	    RCODE_FORMERR, 0, DC, DC, DC },
};

static void
test_parse_query(void)
{
	const struct query_case *t;
	struct dns_query q;
	struct pkt p, w;
	const uint8_t *b;
	size_t i, l;
	int rc, opt;

	for (i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
		t = &query_cases[i];
		enc(&p, t->spec);
		memset(&q, 0xa5, sizeof(q));
		rc = dns_parse_query(at_guard(p.b, p.len), p.len, &q);
		opt = t->opt == AT_MARK ? (int)p.mark[0] : t->opt;
		if (!ok(rc == t->rc &&
		    (t->qend == DC || q.qend == t->qend) &&
		    (opt == DC || q.opt == opt) &&
		    (t->udp == DC || q.udp_size == t->udp) &&
		    (t->do_bit == DC || q.do_bit == (t->do_bit == 1)),
		    "dns_parse_query: %s", t->desc))
			diag("got rc %d qend %u opt %u udp %u do %d", rc,
			    q.qend, q.opt, q.udp_size, (int)q.do_bit);
	}

	enc(&p, "beef 0110 0001 0000 0000 0000 n:WwW.ExAmple.TEST 001c 0001");
	rc = dns_parse_query(at_guard(p.b, p.len), p.len, &q);
	enc(&w, "n:www.example.test");
	ok(rc == 0 && q.id == 0xbeef && q.flags == 0x0110 &&
	    q.qtype == TYPE_AAAA && q.qclass == CLASS_IN,
	    "dns_parse_query: id, flags (RD, CD), type and class");
	ok(rc == 0 && q.qname_len == w.len &&
	    memcmp(q.qname, w.b, w.len) == 0,
	    "dns_parse_query: qname is lower-cased");

	enc(&p, QH " " QWWW);
	for (l = 0; l < DNS_HDR; l++) {
		b = at_guard(p.b, l);
		rc = dns_parse_query(b, l, &q);
		ok(rc == -1, "dns_parse_query: %zu-byte packet dropped", l);
	}
}

/* ---- dns_parse_reply -------------------------------------------------- */

struct reply_case {
	const char	*desc;
	const char	*spec;
	enum reply_class class;
	int		 rcode;		/* DC: not checked */
	long		 min_ttl;	/* DC: not checked */
	long long	 neg_ttl;	/* NEG_DC: not checked */
	int		 opt;		/* offset, AT_MARK or DC */
};

static const struct reply_case reply_cases[] = {
	/* the four classes */
	{ "NOERROR with 2 answers: POSITIVE",
	    "1234 8180 0001 0002 0000 0001 " QWWW " " A300 " " A3600 " "
	    OPT_DO, REPLY_POSITIVE, 0, 300, -1, AT_MARK },
	{ "NODATA with SOA: NEGATIVE",
	    "1234 8180 0001 0000 0001 0001 " QWWW " " SOA_3600_60 " "
	    OPT_DO, REPLY_NEGATIVE, 0, 3600, 60, AT_MARK },
	{ "NODATA without records: NEGATIVE",
	    "1234 8180 0001 0000 0000 0000 " QWWW, REPLY_NEGATIVE, 0, 0, -1,
	    0 },
	{ "NXDOMAIN with SOA: NEGATIVE",
	    "1234 8183 0001 0000 0001 0000 " QWWW " " SOA_3600_60,
	    REPLY_NEGATIVE, RCODE_NXDOMAIN, 3600, 60, 0 },
	{ "NXDOMAIN without SOA: NEGATIVE",
	    "1234 8183 0001 0000 0000 0000 " QWWW, REPLY_NEGATIVE,
	    RCODE_NXDOMAIN, 0, -1, 0 },
	{ "SERVFAIL: FAILURE", "1234 8182 0001 0000 0000 0000 " QWWW,
	    REPLY_FAILURE, RCODE_SERVFAIL, DC, NEG_DC, DC },
	{ "REFUSED: FAILURE", "1234 8105 0001 0000 0000 0000 " QWWW,
	    REPLY_FAILURE, RCODE_REFUSED, DC, NEG_DC, DC },
	{ "FORMERR: FAILURE", "1234 8181 0001 0000 0000 0000 " QWWW,
	    REPLY_FAILURE, RCODE_FORMERR, DC, NEG_DC, DC },
	{ "NOTIMP: FAILURE", "1234 8184 0001 0000 0000 0000 " QWWW,
	    REPLY_FAILURE, RCODE_NOTIMP, DC, NEG_DC, DC },
	{ "RCODE 6 (YXDOMAIN): FAILURE", "1234 8186 0001 0000 0000 0000 " QWWW,
	    REPLY_FAILURE, 6, DC, NEG_DC, DC },
	{ "SERVFAIL with an answer and EDNS: FAILURE",
	    "1234 8182 0001 0001 0000 0001 " QWWW " " A300 " " OPT_DO,
	    REPLY_FAILURE, RCODE_SERVFAIL, DC, NEG_DC, AT_MARK },
	/* malformed after a good question */
	{ "answer RDLENGTH past the end: FAILURE",
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c00c 0001 0001 0000012c 0004 c000", REPLY_FAILURE, 0, DC, NEG_DC,
	    0 },
	{ "ancount 2, one answer: FAILURE",
	    "1234 8180 0001 0002 0000 0000 " QWWW " " A300, REPLY_FAILURE, 0,
	    DC, NEG_DC, 0 },
	{ "arcount 65535: FAILURE",
	    "1234 8180 0001 0001 0000 ffff " QWWW " " A300, REPLY_FAILURE, 0,
	    DC, NEG_DC, 0 },
	{ "answer owner with label type 0x40: FAILURE",
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " 4161 00 0001 0001 0000012c (c0000201)", REPLY_FAILURE, 0, DC,
	    NEG_DC, 0 },
	{ "answer owner with a forward pointer: FAILURE",
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c0ff 0001 0001 0000012c (c0000201)", REPLY_FAILURE, 0, DC,
	    NEG_DC, 0 },
	{ "answer owner pointing to itself: FAILURE",
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c022 0001 0001 0000012c (c0000201)", REPLY_FAILURE, 0, DC,
	    NEG_DC, 0 },
	{ "answer cut inside its header: FAILURE",
	    "1234 8180 0001 0001 0000 0000 " QWWW " c00c 0001 0001 0000",
	    REPLY_FAILURE, 0, DC, NEG_DC, 0 },
	{ "OPT in the answer section: FAILURE",
	    "1234 8180 0001 0002 0000 0000 " QWWW " " A300 " " OPT_DO,
	    REPLY_FAILURE, 0, DC, NEG_DC, 0 },
	{ "two OPT records: FAILURE",
	    "1234 8180 0001 0001 0000 0002 " QWWW " " A300 " " OPT_DO " "
	    OPT_PLAIN, REPLY_FAILURE, 0, DC, NEG_DC, 0 },
	{ "OPT owned by a name: FAILURE",
	    "1234 8180 0001 0001 0000 0001 " QWWW " " A300
	    " c00c 0029 1000 00000000 0000", REPLY_FAILURE, 0, DC, NEG_DC, 0 },
	{ "NXDOMAIN with a cut SOA: FAILURE",
	    "1234 8183 0001 0000 0001 0000 " QWWW
	    " c010 0006 0001 00000e10 0040 c010", REPLY_FAILURE,
	    RCODE_NXDOMAIN, DC, NEG_DC, 0 },
	/* not an answer to this question */
	{ "QR clear: FOREIGN",
	    "1234 0180 0001 0002 0000 0000 " QWWW " " A300 " " A3600,
	    REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "other name: FOREIGN",
	    "1234 8180 0001 0001 0000 0000 n:wwx.example.test 0001 0001 "
	    A300, REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "shorter name: FOREIGN",
	    "1234 8180 0001 0001 0000 0000 n:example.test 0001 0001 "
	    A300, REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "longer name: FOREIGN",
	    "1234 8180 0001 0001 0000 0000 n:www.example.test.x 0001 0001 "
	    A300, REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "other type: FOREIGN",
	    "1234 8180 0001 0001 0000 0000 n:www.example.test 001c 0001 "
	    A300, REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "other class: FOREIGN",
	    "1234 8180 0001 0001 0000 0000 n:www.example.test 0001 0003 "
	    A300, REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "qdcount 2: FAILURE (malformed)",
	    "1234 8180 0002 0001 0000 0000 " QWWW " " QWWW " " A300,
	    REPLY_FAILURE, DC, DC, NEG_DC, DC },
	{ "question cut: FAILURE (malformed)",
	    "1234 8180 0001 0000 0000 0000 n:www.example.test 0001",
	    REPLY_FAILURE, DC, DC, NEG_DC, DC },
	{ "question pointer into the header: FAILURE (malformed)",
	    "1234 8180 0001 0000 0000 0000 " "c004 0001 0001", REPLY_FAILURE,
	    DC, DC, NEG_DC, DC },
	{ "header only, qdcount 1: FAILURE (malformed)",
	    "1234 8180 0001 0000 0000 0000 ", REPLY_FAILURE, DC, DC, NEG_DC, DC },
	{ "11 bytes: FOREIGN", "1234 8180 0001 0000 0000 00", REPLY_FOREIGN,
	    DC, DC, NEG_DC, DC },
	{ "question in another case: accepted",
	    "1234 8180 0001 0001 0000 0000 n:WWW.Example.TEST 0001 0001 "
	    A300, REPLY_POSITIVE, 0, 300, -1, 0 },
	/* qdcount 0 */
	{ "qdcount 0, SERVFAIL: FAILURE", "1234 8182 0000 0000 0000 0000",
	    REPLY_FAILURE, RCODE_SERVFAIL, DC, NEG_DC, DC },
	{ "qdcount 0, REFUSED: FAILURE", "1234 8185 0000 0000 0000 0000",
	    REPLY_FAILURE, RCODE_REFUSED, DC, NEG_DC, DC },
	{ "qdcount 0, FORMERR: FAILURE", "1234 8181 0000 0000 0000 0000",
	    REPLY_FAILURE, RCODE_FORMERR, DC, NEG_DC, DC },
	{ "qdcount 0, NOERROR: FOREIGN", "1234 8180 0000 0000 0000 0000",
	    REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "qdcount 0, NXDOMAIN: FOREIGN", "1234 8183 0000 0000 0000 0000",
	    REPLY_FOREIGN, DC, DC, NEG_DC, DC },
	{ "qdcount 0, QR clear, SERVFAIL: FOREIGN",
	    "1234 0182 0000 0000 0000 0000", REPLY_FOREIGN, DC, DC, NEG_DC,
	    DC },
	/* truncated by the server */
	{ "TC, NOERROR, no answers: POSITIVE",
	    "1234 8380 0001 0000 0000 0000 " QWWW, REPLY_POSITIVE, 0, DC,
	    NEG_DC, DC },
	{ "TC, NXDOMAIN: POSITIVE", "1234 8383 0001 0000 0000 0000 " QWWW,
	    REPLY_POSITIVE, RCODE_NXDOMAIN, DC, NEG_DC, DC },
	{ "TC, cut inside the second answer: POSITIVE",
	    "1234 8380 0001 0002 0000 0000 " QWWW " " A300 " c00c 0001",
	    REPLY_POSITIVE, 0, DC, NEG_DC, 0 },
	{ "TC, SERVFAIL: FAILURE", "1234 8382 0001 0000 0000 0000 " QWWW,
	    REPLY_FAILURE, RCODE_SERVFAIL, DC, NEG_DC, DC },
	/* TTLs */
	{ "min_ttl over all sections",
	    "1234 8180 0001 0001 0001 0001 " QWWW " " A300
	    " c010 0002 0001 00000064 (026e73c010)"
	    " 026e73c010 0001 0001 00000032 (c0000203)",
	    REPLY_POSITIVE, 0, 50, -1, 0 },
	{ "min_ttl skips the OPT's TTL field",
	    "1234 8180 0001 0001 0000 0001 " QWWW " " A300
	    " @ 00 0029 1000 00000001 0000", REPLY_POSITIVE, 0, 300, -1,
	    AT_MARK },
	{ "TTL above 2^31-1 counts as 0 (RFC 2181 8)",
	    "1234 8180 0001 0002 0000 0000 " QWWW " " A300
	    " c00c 0001 0001 80000000 (c0000203)", REPLY_POSITIVE, 0, 0, -1,
	    0 },
	{ "neg_ttl is the SOA TTL when below MINIMUM",
	    "1234 8183 0001 0000 0001 0000 " QWWW " " SOA_30_600,
	    REPLY_NEGATIVE, RCODE_NXDOMAIN, 30, 30, 0 },
	{ "neg_ttl is MINIMUM when below the SOA TTL",
	    "1234 8180 0001 0000 0001 0000 " QWWW " " SOA_3600_60,
	    REPLY_NEGATIVE, 0, 3600, 60, 0 },
	{ "an SOA in the answer section is no neg_ttl",
	    "1234 8180 0001 0001 0000 0000 " QWWW " " SOA_3600_60,
	    REPLY_POSITIVE, 0, 3600, -1, 0 },
	{ "OPT after authority and glue is found",
	    "1234 8180 0001 0001 0001 0002 " QWWW " " A300
	    " c010 0002 0001 00000064 (026e73c010)"
	    " 026e73c010 0001 0001 00000032 (c0000203) " OPT_DO,
	    REPLY_POSITIVE, 0, 50, -1, AT_MARK },
};

static void
test_parse_reply(void)
{
	const struct reply_case *t;
	struct dns_reply r;
	struct pkt p;
	enum reply_class c;
	size_t i;
	int opt;

	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		t = &reply_cases[i];
		enc(&p, t->spec);
		c = dns_parse_reply(at_guard(p.b, p.len), p.len, &the_query,
		    &r);
		opt = t->opt == AT_MARK ? (int)p.mark[0] : t->opt;
		if (!ok(c == t->class && r.class == t->class &&
		    (t->rcode == DC || r.rcode == t->rcode) &&
		    (t->min_ttl == DC || r.min_ttl == (uint32_t)t->min_ttl) &&
		    (t->neg_ttl == NEG_DC || r.neg_ttl == t->neg_ttl) &&
		    (opt == DC || r.opt == opt),
		    "dns_parse_reply: %s", t->desc))
			diag("got class %d rcode %d min_ttl %u neg_ttl %lld "
			    "opt %u (want opt %d)", (int)c, r.rcode, r.min_ttl,
			    (long long)r.neg_ttl, r.opt, opt);
	}

	enc(&p, "1234 8180 0001 0002 0000 0001 " QWWW " " A300 " " A3600 " "
	    OPT_DO);
	dns_parse_reply(at_guard(p.b, p.len), p.len, &the_query, &r);
	ok(r.id == 0x1234 && r.flags == 0x8180 && r.ancount == 2 &&
	    r.qend == 34, "dns_parse_reply: id, flags, ancount, qend");

	/*
	 * An SOA whose RDATA is 10 bytes longer than its fields, followed
	 * by an OPT.  RDLENGTH frames the record, so the OPT is still at
	 * its offset: either the reply is malformed (FAILURE), or it is a
	 * NEGATIVE whose OPT is found and whose min_ttl is the SOA's 3600.
	 * A reader that resumes after the SOA's fields instead of at the
	 * end of its RDATA reads the padding as a record.
	 */
	enc(&p, "1234 8183 0001 0000 0001 0001 " QWWW
	    " c010 0006 0001 00000e10 (c010 c010 00000001 00001c20 00000e10"
	    " 00093a80 0000003c 00 0000 2910 00000000 00) " OPT_DO);
	c = dns_parse_reply(at_guard(p.b, p.len), p.len, &the_query, &r);
	if (!ok(c == REPLY_FAILURE || (c == REPLY_NEGATIVE &&
	    r.opt == p.mark[0] && r.min_ttl == 3600),
	    "dns_parse_reply: the record after an SOA with extra RDATA is "
	    "read at the end of that RDATA"))
		diag("got class %d opt %u (OPT is at %zu) min_ttl %u neg_ttl "
		    "%lld", (int)c, r.opt, p.mark[0], r.min_ttl,
		    (long long)r.neg_ttl);
}

/* ---- truncation at every byte ----------------------------------------- */

static const char *const prefix_queries[] = {
	QH " " QWWW,
	QH_AR1 " " QWWW " " OPT_DO,
	"1234 0100 0001 0000 0000 0002 " QWWW
	    " c00c 0001 0001 00000000 (01020304) @ 00 0029 1000 00008000 "
	    "(000a 0008 0102030405060708)",
	QH " l:63 l:63 l:63 l:61 00 0001 0001",
};

static const struct {
	const char		*spec;
	enum reply_class	 class;
} prefix_replies[] = {
	{ "1234 8180 0001 0002 0000 0001 " QWWW " " A300 " " A3600 " "
	    OPT_DO, REPLY_POSITIVE },
	{ "1234 8183 0001 0000 0001 0001 " QWWW " " SOA_3600_60 " " OPT_DO,
	    REPLY_NEGATIVE },
	{ "1234 8180 0001 0000 0001 0000 " QWWW " " SOA_30_600,
	    REPLY_NEGATIVE },
	{ "1234 8180 0001 0002 0001 0002 " QWWW
	    " c00c 0005 0001 0000012c (03776562c010)"
	    " c02e 0001 0001 0000012c (c0000201)"
	    " c010 0002 0001 00000064 (026e73c010)"
	    " 026e73c010 0001 0001 00000032 (c0000203) " OPT_DO,
	    REPLY_POSITIVE },
	{ "1234 8182 0001 0000 0000 0001 " QWWW " " OPT_DO, REPLY_FAILURE },
};

/* Every name in b[0..len) at every offset: bounded, never past len. */
static bool
names_everywhere(const uint8_t *b, size_t len)
{
	uint8_t name[DNS_MAX_NAME];
	struct dns_cursor c;
	size_t pos;
	int n;

	for (pos = 0; pos <= len; pos++) {
		dns_cursor_init(&c, b, len);
		c.pos = pos;
		n = dns_get_name(&c, name);
		if (n == 0 || n > DNS_MAX_NAME || c.pos > len ||
		    (n < 0 && c.err == NULL) || (n > 0 && c.err != NULL))
			return false;
	}
	return true;
}

static void
test_prefixes(void)
{
	struct dns_query q;
	struct dns_reply r;
	struct pkt p;
	uint8_t out[1024], *b;
	enum reply_class c;
	size_t i, l, n;
	int rc, bad;

	for (i = 0; i < sizeof(prefix_queries) / sizeof(prefix_queries[0]);
	    i++) {
		enc(&p, prefix_queries[i]);
		bad = 0;
		for (l = 0; l <= p.len; l++) {
			b = at_guard(p.b, l);
			rc = dns_parse_query(b, l, &q);
			if ((l == p.len && rc != 0) || (l < p.len && rc == 0) ||
			    (l < DNS_HDR && rc != -1) || q.qend > l ||
			    (q.opt != 0 && q.opt >= l)) {
				if (bad++ == 0)
					diag("%zu of %zu bytes: rc %d qend %u",
					    l, p.len, rc, q.qend);
			}
			if (rc > 0) {
				n = dns_build_error(out, sizeof(out), b, &q,
				    rc, -1);
				if (n < DNS_HDR || (out[2] & 0x80) == 0)
					bad++;
			}
			if (!names_everywhere(b, l))
				bad++;
		}
		ok(bad == 0, "truncation: query %zu (%zu bytes) at every "
		    "length 0..%zu: only the whole is accepted", i, p.len,
		    p.len);
	}

	for (i = 0; i < sizeof(prefix_replies) / sizeof(prefix_replies[0]);
	    i++) {
		enc(&p, prefix_replies[i].spec);
		bad = 0;
		for (l = 0; l <= p.len; l++) {
			b = at_guard(p.b, l);
			c = dns_parse_reply(b, l, &the_query, &r);
			if ((l == p.len && c != prefix_replies[i].class) ||
			    (l < p.len && (c == REPLY_POSITIVE ||
			    c == REPLY_NEGATIVE)) || r.qend > l ||
			    (r.opt != 0 && (size_t)r.opt + 11 > l)) {
				if (bad++ == 0)
					diag("%zu of %zu bytes: class %d qend "
					    "%u opt %u", l, p.len, (int)c,
					    r.qend, r.opt);
			}
			if (!names_everywhere(b, l))
				bad++;
			/* and cut what was read, in place at the guard */
			if (c != REPLY_FOREIGN && l > 40 &&
			    dns_truncate(b, l, 40, &r) > l)
				bad++;
		}
		ok(bad == 0, "truncation: reply %zu (%zu bytes) at every "
		    "length 0..%zu: no prefix passes as complete", i, p.len,
		    p.len);
	}
}

/* ---- a small mutation fuzzer ------------------------------------------ */

static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Change 1..4 bytes of p (or cut it) in ways parsers find hard. */
static size_t
mutate(uint8_t *b, size_t len, uint32_t *s)
{
	int k, n = 1 + (int)(rnd(s) % 4);
	size_t at;

	for (k = 0; k < n && len > 0; k++) {
		at = rnd(s) % len;
		switch (rnd(s) % 6) {
		case 0:
			b[at] = (uint8_t)rnd(s);
			break;
		case 1:
			b[at] ^= (uint8_t)(1u << (rnd(s) % 8));
			break;
		case 2:
			b[at] = 0xc0;
			break;
		case 3:
			b[at] = (uint8_t)(rnd(s) % 64);
			break;
		case 4:
			b[4 + rnd(s) % 8] = (uint8_t)rnd(s);
			break;
		default:
			len = at;
			break;
		}
	}
	return len;
}

static void
test_fuzz(void)
{
	uint8_t buf[PKT_MAX], out[PKT_MAX], *b;
	struct dns_query q;
	struct dns_reply r;
	struct pkt p;
	uint32_t s = 0x2545f491;
	size_t len, n, k;
	int i, rc, bad = 0;

	for (i = 0; i < FUZZ_ROUNDS; i++) {
		k = rnd(&s) % (sizeof(prefix_queries) /
		    sizeof(prefix_queries[0]));
		enc(&p, prefix_queries[k]);
		memcpy(buf, p.b, p.len);
		len = mutate(buf, p.len, &s);
		b = at_guard(buf, len);
		rc = dns_parse_query(b, len, &q);
		if (q.qend > len || (q.opt != 0 && (size_t)q.opt + 11 > len) ||
		    (rc == 0 && (q.udp_size < 512 || q.qname_len == 0)))
			bad++;
		if (rc > 0) {
			n = dns_build_error(out, sizeof(out), b, &q, rc, -1);
			if (n < DNS_HDR || n > (size_t)q.qend + 11 + DNS_HDR)
				bad++;
		}
	}
	ok(bad == 0, "fuzz: %d mutated queries parsed at the guard page",
	    FUZZ_ROUNDS);

	bad = 0;
	for (i = 0; i < FUZZ_ROUNDS; i++) {
		k = rnd(&s) % (sizeof(prefix_replies) /
		    sizeof(prefix_replies[0]));
		enc(&p, prefix_replies[k].spec);
		memcpy(buf, p.b, p.len);
		len = mutate(buf, p.len, &s);
		b = at_guard(buf, len);
		dns_parse_reply(b, len, &the_query, &r);
		if (r.qend > len || (r.opt != 0 && (size_t)r.opt + 11 > len))
			bad++;
		if (r.class != REPLY_FOREIGN && len > 30 &&
		    dns_truncate(b, len, 30, &r) > len)
			bad++;
	}
	ok(bad == 0, "fuzz: %d mutated replies parsed and cut at the guard "
	    "page", FUZZ_ROUNDS);
}

/* ---- dns_truncate and dns_build_error --------------------------------- */

/* A reply to the_query with nan A records, then spec tail. */
static void
big_reply(struct pkt *p, int nan, bool opt, const char *tail)
{
	char spec[PKT_MAX];
	int i;

	snprintf(spec, sizeof(spec), "1234 8180 0001 %04x 0000 %04x " QWWW,
	    (unsigned)nan, opt ? 1u : 0u);
	for (i = 0; i < nan; i++)
		strcat(spec, " c00c 0001 0001 0000012c (0a000001)");
	if (opt)
		strcat(spec, tail);
	enc(p, spec);
}

static void
test_truncate(void)
{
	struct dns_reply r, r2;
	struct pkt p;
	uint8_t *b;
	size_t n, optat;

	big_reply(&p, 40, true, " " OPT_DO);
	b = at_guard(p.b, p.len);
	dns_parse_reply(b, p.len, &the_query, &r);
	optat = r.opt;
	ok(r.class == REPLY_POSITIVE && p.len > 512 && optat == p.mark[0],
	    "dns_truncate: the %zu-byte reply parses, OPT at %zu", p.len,
	    optat);
	n = dns_truncate(b, p.len, 512, &r);
	ok(n == 34 + 11, "dns_truncate: cut to 512 keeps header, question "
	    "and OPT (%zu bytes)", n);
	ok((b[2] & 0x02) != 0 && (u16_at(b, 2) & ~DNS_TC) == 0x8180,
	    "dns_truncate: TC set, other flags kept");
	ok(u16_at(b, 0) == 0x1234 && u16_at(b, 4) == 1 && u16_at(b, 6) == 0 &&
	    u16_at(b, 8) == 0 && u16_at(b, 10) == 1,
	    "dns_truncate: id kept, qd 1, an 0, ns 0, ar 1");
	ok(memcmp(b + 12, p.b + 12, 22) == 0 &&
	    memcmp(b + 34, p.b + optat, 11) == 0,
	    "dns_truncate: question and OPT bytes as they were");
	ok(dns_parse_reply(b, n, &the_query, &r2) == REPLY_POSITIVE &&
	    r2.opt == 34 && r2.ancount == 0,
	    "dns_truncate: the cut reply parses: TC, OPT at 34");

	big_reply(&p, 40, false, "");
	b = at_guard(p.b, p.len);
	dns_parse_reply(b, p.len, &the_query, &r);
	n = dns_truncate(b, p.len, 512, &r);
	ok(n == 34 && (b[2] & 0x02) && u16_at(b, 6) == 0 &&
	    u16_at(b, 10) == 0, "dns_truncate: no OPT: header and question, "
	    "ar 0");

	big_reply(&p, 40, true, " @ 00 0029 1000 00000000 (000a 0008 "
	    "0102030405060708)");
	b = at_guard(p.b, p.len);
	dns_parse_reply(b, p.len, &the_query, &r);
	n = dns_truncate(b, p.len, 512, &r);
	ok(n == 34 + 23 && u16_at(b, 10) == 1 && u16_at(b, 34 + 9) == 12 &&
	    memcmp(b + 34, p.b + p.mark[0], 23) == 0,
	    "dns_truncate: an OPT with options is kept whole");

	big_reply(&p, 40, true, " " OPT_DO);
	b = at_guard(p.b, p.len);
	dns_parse_reply(b, p.len, &the_query, &r);
	n = dns_truncate(b, p.len, 40, &r);
	ok(n == 34 && u16_at(b, 10) == 0 && (b[2] & 0x02),
	    "dns_truncate: an OPT that does not fit in the limit is dropped");

	big_reply(&p, 2, true, " " OPT_DO);
	b = at_guard(p.b, p.len);
	dns_parse_reply(b, p.len, &the_query, &r);
	n = dns_truncate(b, p.len, p.len, &r);
	ok(n == p.len && memcmp(b, p.b, p.len) == 0,
	    "dns_truncate: a reply of exactly the limit is untouched");
	n = dns_truncate(b, p.len, 512, &r);
	ok(n == p.len && memcmp(b, p.b, p.len) == 0,
	    "dns_truncate: a reply below the limit is untouched");

	enc(&p, "1234 8182 0000 0000 0000 0000 x:600:00");
	b = at_guard(p.b, p.len);
	dns_parse_reply(b, p.len, &the_query, &r);
	n = dns_truncate(b, p.len, 512, &r);
	ok(r.class == REPLY_FAILURE && n == DNS_HDR && (b[2] & 0x02),
	    "dns_truncate: no question: header only, TC set");
}

static void
test_build_error(void)
{
	struct dns_query q;
	struct dns_reply r;
	struct pkt p;
	uint8_t out[512];
	const uint8_t *b;
	size_t n;
	int rc;

	enc(&p, "abcd 0100 0001 0000 0000 0000 n:WWW.example.test 0001 0001");
	b = at_guard(p.b, p.len);
	dns_parse_query(b, p.len, &q);
	n = dns_build_error(out, sizeof(out), b, &q, RCODE_SERVFAIL, -1);
	ok(n == 34 && u16_at(out, 0) == 0xabcd,
	    "dns_build_error: SERVFAIL is header and question, id echoed");
	ok(u16_at(out, 2) == (DNS_QR | DNS_RD | DNS_RA | RCODE_SERVFAIL),
	    "dns_build_error: QR, RD copied, RA, RCODE 2");
	ok(u16_at(out, 4) == 1 && u16_at(out, 6) == 0 && u16_at(out, 8) == 0 &&
	    u16_at(out, 10) == 0, "dns_build_error: counts 1 0 0 0");
	ok(memcmp(out + 12, p.b + 12, 22) == 0,
	    "dns_build_error: question echoed in the client's case");
	ok(dns_parse_reply(out, n, &the_query, &r) == REPLY_FAILURE &&
	    r.rcode == RCODE_SERVFAIL,
	    "dns_build_error: the answer parses as a SERVFAIL");

	enc(&p, "abcd 0010 0001 0000 0000 0000 " QWWW);
	b = at_guard(p.b, p.len);
	dns_parse_query(b, p.len, &q);
	n = dns_build_error(out, sizeof(out), b, &q, RCODE_REFUSED, -1);
	ok(n == 34 && u16_at(out, 2) == (DNS_QR | DNS_CD | DNS_RA |
	    RCODE_REFUSED), "dns_build_error: RD clear stays clear, CD copied");

	enc(&p, QH_AR1 " " QWWW " " OPT_DO);
	b = at_guard(p.b, p.len);
	dns_parse_query(b, p.len, &q);
	n = dns_build_error(out, sizeof(out), b, &q, RCODE_SERVFAIL, -1);
	ok(n == 34 + 11 && u16_at(out, 10) == 1 && out[34] == 0 &&
	    u16_at(out, 35) == TYPE_OPT && u16_at(out, 37) >= 512 &&
	    (out[41] & 0x80) != 0 && u16_at(out, 43) == 0,
	    "dns_build_error: an EDNS query gets an OPT with DO");
	ok(dns_parse_reply(out, n, &the_query, &r) == REPLY_FAILURE &&
	    r.opt == 34, "dns_build_error: that OPT parses");
	n = dns_build_error(out, 34, b, &q, RCODE_SERVFAIL, -1);
	ok(n == 34 && u16_at(out, 10) == 0,
	    "dns_build_error: no room for the OPT: none, ar 0");
	n = dns_build_error(out, 33, b, &q, RCODE_SERVFAIL, -1);
	ok(n == 0, "dns_build_error: no room for the question: 0");

	enc(&p, QH_AR1 " " QWWW " " OPT_PLAIN);
	b = at_guard(p.b, p.len);
	dns_parse_query(b, p.len, &q);
	n = dns_build_error(out, sizeof(out), b, &q, RCODE_SERVFAIL, -1);
	ok(n == 45 && (out[41] & 0x80) == 0,
	    "dns_build_error: no DO in the query, none in the OPT");

	enc(&p, "abcd 1100 0001 0000 0000 0000 " QWWW);
	b = at_guard(p.b, p.len);
	rc = dns_parse_query(b, p.len, &q);
	n = dns_build_error(out, sizeof(out), b, &q, rc, -1);
	ok(rc == RCODE_NOTIMP && n == 34 && u16_at(out, 2) == (DNS_QR |
	    0x1000 | DNS_RD | DNS_RA | RCODE_NOTIMP) && u16_at(out, 4) == 1,
	    "dns_build_error: NOTIMP echoes opcode 2 and the question");

	enc(&p, "abcd 0100 0002 0000 0000 0000 " QWWW " " QWWW);
	b = at_guard(p.b, p.len);
	rc = dns_parse_query(b, p.len, &q);
	n = dns_build_error(out, sizeof(out), b, &q, rc, -1);
	ok(rc == RCODE_FORMERR && n == DNS_HDR && u16_at(out, 0) == 0xabcd &&
	    u16_at(out, 2) == (DNS_QR | DNS_RD | DNS_RA | RCODE_FORMERR) &&
	    u16_at(out, 4) == 0 && u16_at(out, 10) == 0,
	    "dns_build_error: FORMERR with qend 0 is the header alone, qd 0");
	n = dns_build_error(out, 11, b, &q, rc, -1);
	ok(n == 0, "dns_build_error: no room for a header: 0");
}

/* ---- policy ----------------------------------------------------------- */

struct policy_case {
	const char		*desc;
	int			 n;
	bool			 parallel;
	enum policy_act		 start;
	const char		*steps;	/* "ask=N" and "POS:CLASS>ACT[+]" */
	int			 neg;	/* p.neg at the end */
	int			 live;	/* of n, live; 0: all */
};

/*
 * Steps: "ask=N" expects policy_ask() to return N; "P:C>A" reports class
 * C for position P and expects action A; a '+' after A expects *keep.
 * Classes: pos, neg (NXDOMAIN), nd (NODATA), fail.
 */
static const struct policy_case policy_cases[] = {
	{ "sequential: positive first", 3, false, ACT_NEXT,
	    "ask=0 0:pos>answer", -1, 0 },
	{ "sequential: neg, neg, fail: the last negative", 3, false, ACT_NEXT,
	    "ask=0 0:neg>next+ ask=1 1:neg>next+ ask=2 2:fail>negative "
	    "ask=-1", 1, 0 },
	{ "sequential: neg, fail, neg: the last negative", 3, false, ACT_NEXT,
	    "ask=0 0:neg>next+ ask=1 1:fail>next ask=2 2:neg>negative+", 2, 0 },
	{ "sequential: all fail: SERVFAIL", 3, false, ACT_NEXT,
	    "ask=0 0:fail>next ask=1 1:fail>next ask=2 2:fail>servfail "
	    "ask=-1", -1, 0 },
	{ "sequential: fail then positive", 3, false, ACT_NEXT,
	    "ask=0 0:fail>next ask=1 1:pos>answer", -1, 0 },
	{ "sequential: negative then positive", 2, false, ACT_NEXT,
	    "ask=0 0:neg>next+ ask=1 1:pos>answer", 0, 0 },
	{ "sequential: one upstream, negative", 1, false, ACT_NEXT,
	    "ask=0 0:neg>negative+ ask=-1", 0, 0 },
	{ "sequential: events for positions not pending", 3, false, ACT_NEXT,
	    "1:pos>wait ask=0 2:neg>wait 0:fail>next 0:pos>wait ask=1 "
	    "5:pos>wait -1:pos>wait 1:pos>answer", -1, 0 },
	{ "sequential: no upstreams", 0, false, ACT_SERVFAIL, "ask=-1", -1, 0 },
	{ "parallel: every position asked once", 3, true, ACT_NEXT,
	    "ask=0 ask=1 ask=2 ask=-1", -1, 0 },
	{ "parallel: positive after a negative", 3, true, ACT_NEXT,
	    "ask=0 ask=1 ask=2 1:neg>wait+ 0:fail>wait 2:pos>answer", 1, 0 },
	{ "parallel: a positive while an earlier one is pending: kept", 3,
	    true, ACT_NEXT, "ask=0 ask=1 ask=2 2:pos>wait+ 1:neg>wait "
	    "0:fail>negative", 2, 0 },
	{ "parallel: the first upstream's positive at once", 3, true,
	    ACT_NEXT, "ask=0 ask=1 ask=2 0:pos>answer", -1, 0 },
	{ "parallel: positives at 2 then 1 held: 1 is sent once 0 failed", 3,
	    true, ACT_NEXT, "ask=0 ask=1 ask=2 2:pos>wait+ 1:pos>wait+ "
	    "0:tmo>negative", 1, 0 },
	{ "parallel: negatives at 2 then 0, failure at 1: the last in order, "
	    "as sequential", 3, true, ACT_NEXT,
	    "ask=0 ask=1 ask=2 2:neg>wait+ 0:neg>wait 1:fail>negative", 2, 0 },
	{ "parallel: negatives at 0 then 2: 2 is kept", 3, true, ACT_NEXT,
	    "ask=0 ask=1 ask=2 0:neg>wait+ 2:neg>wait+ 1:fail>negative", 2, 0 },
	{ "parallel: the last to arrive is the negative", 2, true, ACT_NEXT,
	    "ask=0 ask=1 0:fail>wait 1:neg>negative+", 1, 0 },
	{ "parallel: all failures: SERVFAIL", 3, true, ACT_NEXT,
	    "ask=0 ask=1 ask=2 1:fail>wait 0:fail>wait 2:fail>servfail", -1, 0 },
	{ "parallel: WAIT while pending, a repeat is ignored", 3, true,
	    ACT_NEXT, "ask=0 ask=1 ask=2 0:fail>wait 0:pos>wait 1:fail>wait "
	    "1:neg>wait 7:pos>wait 2:pos>answer", -1, 0 },
	{ "parallel: 16 upstreams", 16, true, ACT_NEXT,
	    "15:neg>wait+ 3:neg>wait 0:fail>wait 1:fail>wait 2:fail>wait "
	    "4:fail>wait 5:fail>wait 6:fail>wait 7:fail>wait 8:fail>wait "
	    "9:fail>wait 10:fail>wait 11:fail>wait 12:fail>wait 13:fail>wait "
	    "14:fail>negative", 15, 0 },
	{ "parallel: no upstreams", 0, true, ACT_SERVFAIL, "ask=-1", -1, 0 },
	/* NODATA outranks NXDOMAIN, in both modes, in any order */
	{ "sequential: NODATA then NXDOMAIN: NODATA", 2, false, ACT_NEXT,
	    "ask=0 0:nd>next+ ask=1 1:neg>negative", 0, 0 },
	{ "sequential: NXDOMAIN then NODATA: NODATA", 2, false, ACT_NEXT,
	    "ask=0 0:neg>next+ ask=1 1:nd>negative+", 1, 0 },
	{ "sequential: NODATA, NODATA: the last", 2, false, ACT_NEXT,
	    "ask=0 0:nd>next+ ask=1 1:nd>negative+", 1, 0 },
	{ "sequential: NODATA, NXDOMAIN, failure: NODATA", 3, false, ACT_NEXT,
	    "ask=0 0:nd>next+ ask=1 1:neg>next ask=2 2:fail>negative", 0, 0 },
	{ "parallel: NODATA at 0 first, NXDOMAIN at 1: NODATA", 2, true,
	    ACT_NEXT, "ask=0 ask=1 0:nd>wait+ 1:neg>negative", 0, 0 },
	{ "parallel: NXDOMAIN at 1 first, NODATA at 0: NODATA", 2, true,
	    ACT_NEXT, "ask=0 ask=1 1:neg>wait+ 0:nd>negative+", 0, 0 },
	{ "parallel: NXDOMAIN at 0 first, NODATA at 1: NODATA", 2, true,
	    ACT_NEXT, "ask=0 ask=1 0:neg>wait+ 1:nd>negative+", 1, 0 },
	{ "parallel: NODATA at 1 first, NXDOMAIN at 0: NODATA", 2, true,
	    ACT_NEXT, "ask=0 ask=1 1:nd>wait+ 0:neg>negative", 1, 0 },
	/* down upstreams (after the live ones) only when all live failed */
	{ "sequential, 1 of 3 down: live negatives end it", 3, false,
	    ACT_NEXT, "ask=0 0:neg>next+ ask=1 1:neg>negative+", 1, 2 },
	{ "sequential, 1 of 3 down: failure, negative: no wait on it", 3,
	    false, ACT_NEXT, "ask=0 0:fail>next ask=1 1:nd>negative+", 1, 2 },
	{ "sequential, 1 of 3 down: both live failed: asked", 3, false,
	    ACT_NEXT, "ask=0 0:fail>next ask=1 1:fail>next ask=2 2:pos>answer",
	    -1, 2 },
	{ "sequential, 2 of 3 down: a live negative ends it", 3, false,
	    ACT_NEXT, "ask=0 0:nd>negative+", 0, 1 },
	{ "parallel, 1 of 3 down: the live round only", 3, true, ACT_NEXT,
	    "ask=0 ask=1 ask=-1 0:nd>wait+ 1:fail>negative", 0, 2 },
	{ "parallel, 1 of 3 down: live ones failed: then the down one", 3,
	    true, ACT_NEXT, "ask=0 ask=1 ask=-1 1:fail>wait 0:fail>next ask=2 "
	    "ask=-1 2:neg>negative+", 2, 2 },
	{ "parallel, 1 of 3 down: the second round fails too", 3, true,
	    ACT_NEXT, "ask=0 ask=1 0:fail>wait 1:fail>next ask=2 2:fail>"
	    "servfail", -1, 2 },
	/* rule 3a: a verdict ends the walk, whatever its RCODE */
	{ "sequential: SERVFAIL with a DNSSEC verdict: returned, none after",
	    3, false, ACT_NEXT, "ask=0 0:vfail>answer", -1, 3 },
	{ "sequential: NXDOMAIN with a filter's verdict: returned at once",
	    2, false, ACT_NEXT, "ask=0 0:vneg>answer", -1, 2 },
	{ "sequential: a verdict after a negative: the verdict", 3, false,
	    ACT_NEXT, "ask=0 0:nd>next+ ask=1 1:vfail>answer", 0, 3 },
	{ "sequential: a plain SERVFAIL still moves on", 2, false, ACT_NEXT,
	    "ask=0 0:fail>next ask=1 1:pos>answer", -1, 2 },
	{ "parallel: the first upstream's verdict ends it at once", 3, true,
	    ACT_NEXT, "ask=0 ask=1 ask=2 0:vfail>answer", -1, 3 },
	{ "parallel: a faster forged positive waits for the first one's "
	    "verdict, which wins", 2, true, ACT_NEXT,
	    "ask=0 ask=1 1:pos>wait+ 0:vfail>answer", 1, 2 },
	{ "parallel: a faster positive, the first one NXDOMAIN: the "
	    "positive, as sequential", 2, true, ACT_NEXT,
	    "ask=0 ask=1 1:pos>wait+ 0:neg>negative", 1, 2 },
	{ "parallel: a verdict at 2 held; a positive at 1 before it wins", 3,
	    true, ACT_NEXT, "ask=0 ask=1 ask=2 2:vfail>wait+ 1:pos>wait+ "
	    "0:fail>negative", 1, 3 },
	{ "parallel: a verdict after a negative: the verdict", 2, true,
	    ACT_NEXT, "ask=0 ask=1 0:nd>wait+ 1:vneg>answer", 0, 2 },
	/* rule 3b: the stub's answers are final, its timeout is not */
	{ "stub: its SERVFAIL is final, the failovers not asked", 3, false,
	    ACT_NEXT, "ask=0 0:sfail>answer", -1, 1 },
	{ "stub: its NXDOMAIN is final", 3, false, ACT_NEXT,
	    "ask=0 0:sneg>answer", -1, 1 },
	{ "stub: a timeout: the failovers are asked", 3, false, ACT_NEXT,
	    "ask=0 0:stmo>next ask=1 1:pos>answer", -1, 1 },
	/* rule 4: a validated negative outranks one of its kind */
	{ "NXDOMAIN with AD, then NXDOMAIN: the validated one", 2, false,
	    ACT_NEXT, "ask=0 0:aneg>next+ ask=1 1:neg>negative", 0, 2 },
	{ "NXDOMAIN, then NXDOMAIN with AD: the validated one", 2, false,
	    ACT_NEXT, "ask=0 0:neg>next+ ask=1 1:aneg>negative+", 1, 2 },
	{ "NODATA with AD, then NODATA: the validated one", 2, false,
	    ACT_NEXT, "ask=0 0:and>next+ ask=1 1:nd>negative", 0, 2 },
	{ "NXDOMAIN with AD, then NODATA: NODATA still outranks", 2, false,
	    ACT_NEXT, "ask=0 0:aneg>next+ ask=1 1:nd>negative+", 1, 2 },
	{ "both validated NXDOMAIN: the later", 2, false, ACT_NEXT,
	    "ask=0 0:aneg>next+ ask=1 1:aneg>negative+", 1, 2 },
	{ "parallel: NXDOMAIN with AD last to arrive still wins", 2, true,
	    ACT_NEXT, "ask=0 ask=1 1:neg>wait+ 0:aneg>negative+", 0, 2 },
};

static int
act_of(const char *s)
{
	static const char *const names[] = {
		"wait", "answer", "next", "negative", "servfail",
	};
	int i;

	for (i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/*
 * One event of a policy case.  Classes: pos, neg (NXDOMAIN), nd (NODATA),
 * fail (SERVFAIL), tmo (a timeout: no reply); a prefix a: sets AD, v: an
 * EDE verdict, s: from an upstream whose answers are final (the stub).
 */
static int
policy_step(struct policy *p, int pos, const char *cls, bool *keep)
{
	struct dns_reply r;
	bool final = false;

	memset(&r, 0, sizeof(r));
	r.qend = DNS_HDR + 5;
	r.ede = -1;
	for (;; cls++) {
		if (*cls == 'a')
			r.flags |= DNS_AD;
		else if (*cls == 'v')
			r.verdict = true, r.ede = 6;
		else if (*cls == 's')
			final = true;
		else
			break;
	}
	r.rcode = strcmp(cls, "neg") == 0 ? RCODE_NXDOMAIN :
	    strcmp(cls, "fail") == 0 ? RCODE_SERVFAIL : RCODE_NOERROR;
	r.class = strcmp(cls, "pos") == 0 ? REPLY_POSITIVE :
	    strcmp(cls, "neg") == 0 || strcmp(cls, "nd") == 0 ?
	    REPLY_NEGATIVE : REPLY_FAILURE;
	return (int)policy_event(p, pos, strcmp(cls, "tmo") == 0 ? NULL : &r,
	    final, keep);
}

static bool
run_policy(const struct policy_case *t)
{
	char tok[32], cls[16], act[16], plus[2];
	const char *s = t->steps;
	struct policy p;
	size_t n;
	int v, pos, got, k;
	bool keep;

	got = (int)policy_start(&p, t->n, t->live, t->parallel);
	if (got != (int)t->start) {
		diag("policy_start gave %d", got);
		return false;
	}
	while (*s != '\0') {
		n = strcspn(s, " ");
		if (n >= sizeof(tok))
			bail("step too long", t->steps);
		memcpy(tok, s, n);
		tok[n] = '\0';
		s += n + (s[n] == ' ');
		if (sscanf(tok, "ask=%d", &v) == 1) {
			if ((got = policy_ask(&p)) != v) {
				diag("%s: policy_ask gave %d", tok, got);
				return false;
			}
			continue;
		}
		plus[0] = '\0';
		k = sscanf(tok, "%d:%15[a-z]>%15[a-z]%1[+]", &pos, cls, act,
		    plus);
		if (k < 3 || act_of(act) < 0)
			bail("bad step", tok);
		keep = !(plus[0] == '+');	/* policy_event() must set it */
		got = policy_step(&p, pos, cls, &keep);
		if (got != act_of(act) || keep != (plus[0] == '+')) {
			diag("%s: got action %d keep %d", tok, got, (int)keep);
			return false;
		}
	}
	if (p.neg != t->neg) {
		diag("neg is %d", p.neg);
		return false;
	}
	return true;
}

static void
test_policy_events(void)
{
	size_t i;

	for (i = 0; i < sizeof(policy_cases) / sizeof(policy_cases[0]); i++)
		ok(run_policy(&policy_cases[i]), "policy: %s (neg %d)",
		    policy_cases[i].desc, policy_cases[i].neg);
}

/* ---- timing rules, against a fake clock ---------------------------------- */

/*
 * The clocks every timing test runs on: a plain start, one that wraps
 * modulo 2^64 within the first seconds, and one that reaches TIME_NONE
 * itself on the way.
 */
static const uint64_t clocks[] = {
	1000000, UINT64_MAX - 999, UINT64_MAX - 61999, UINT64_MAX,
};
#define NCLOCK	(sizeof(clocks) / sizeof(clocks[0]))

static void
test_time(void)
{
	const uint64_t big = UINT64_MAX - 2;
	uint64_t t0, d;
	size_t i;
	bool good = true;

	ok(!time_due(0, TIME_NONE) && !time_due(UINT64_MAX, TIME_NONE) &&
	    !time_due(12345, TIME_NONE), "time_due: never for TIME_NONE");
	for (i = 0; i < NCLOCK; i++) {
		t0 = clocks[i];
		d = time_after(t0, 1500);
		if (d == TIME_NONE || time_due(t0 + 1498, d) ||
		    time_due(t0 + 1499 - (d != t0 + 1500), d) ||
		    !time_due(d, d) || !time_due(d + 1, d) ||
		    !time_due(d + 3600000, d) || time_due(t0, d)) {
			diag("clock %llu: deadline %llu", (unsigned long long)t0,
			    (unsigned long long)d);
			good = false;
		}
	}
	ok(good, "time_due: not one ms before the deadline, at it and after, "
	    "on every clock (wrapping too)");
	ok(time_after(big, 2) == UINT64_MAX && time_after(big, 3) == 1 &&
	    time_after(big, 4) == 1 && time_after(big, 5) == 2, "time_after: across the wrap; a deadline "
	    "on TIME_NONE falls 1 ms later");
	ok(time_before(UINT64_MAX, 1) && !time_before(1, UINT64_MAX) &&
	    time_before(5, 6) && !time_before(6, 6) && !time_before(7, 6),
	    "time_before: across the wrap, strict");
	ok(time_first(big, TIME_NONE, TIME_NONE) == TIME_NONE &&
	    time_first(big, TIME_NONE, 7) == 7 &&
	    time_first(big, 7, TIME_NONE) == 7 &&
	    time_first(big, UINT64_MAX, 3) == UINT64_MAX &&
	    time_first(big, 3, UINT64_MAX) == UINT64_MAX &&
	    time_first(100, 200, 150) == 150 &&
	    time_first(100, 50, 150) == 50,
	    "time_first: the earlier seen from now, across the wrap; "
	    "TIME_NONE is no deadline");
	ok(time_wait(100, TIME_NONE) == -1 && time_wait(100, 100) == 0 &&
	    time_wait(100, 99) == 0 && time_wait(100, 101) == 2 &&
	    time_wait(100, 1600) == 1501 && time_wait(big, 5) == 9 &&
	    time_wait(0, 86400000) == 86400000 &&
	    time_wait(0, 90000000) == 86400000 &&
	    time_wait(5, UINT64_MAX) == 0,
	    "time_wait: forever, at once when due, 1 ms past the deadline, "
	    "a day at most, across the wrap");
}

/*
 * The backoff against each clock.  An instant "a period after t" is
 * time_after(t, period): on the clock that reaches TIME_NONE it is 1 ms
 * later there, and only there.
 */
static void
test_backoff(void)
{
	static const uint32_t ladder[] = {
		1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
	};
	struct upstream u;
	uint64_t t0, t, d;
	size_t i, k;
	bool burst = true, edge = true, probe = true, ladder_ok = true;

	for (i = 0; i < NCLOCK; i++) {
		t0 = clocks[i];
		memset(&u, 0, sizeof(u));
		/* twenty queries sent before it went down time out together */
		for (k = 0; k < 20; k++)
			policy_down(&u, t0 + k * 50);
		d = time_after(t0, 1000);
		if (u.backoff != 1000 || u.probe_at != d)
			burst = false;
		/* one ms before the period ends: still counted once */
		policy_down(&u, d - 1);
		if (u.backoff != 1000)
			edge = false;
		/* at its end: it doubles, once */
		policy_down(&u, d);
		policy_down(&u, d + 1);
		policy_down(&u, d + 1999);
		if (u.backoff != 2000 || u.probe_at != time_after(d, 2000))
			edge = false;
		/* one probe per backoff, to the ms */
		t = u.probe_at;
		if (policy_probe(&u, t - 1) || !policy_probe(&u, t) ||
		    u.probe_at != time_after(t, 2000) ||
		    policy_probe(&u, t + 1) || policy_probe(&u, t + 1999) ||
		    !policy_probe(&u, u.probe_at))
			probe = false;
		/* failures a whole period apart climb the ladder */
		memset(&u, 0, sizeof(u));
		for (k = 0, t = t0; k < sizeof(ladder) / sizeof(ladder[0]);
		    k++) {
			policy_down(&u, t);
			if (u.backoff != ladder[k])
				ladder_ok = false;
			d = time_after(t, ladder[k]);
			policy_down(&u, d - 1);		/* no step */
			if (u.backoff != ladder[k])
				ladder_ok = false;
			t = d;
		}
		policy_alive(&u);
		policy_down(&u, t);
		if (u.backoff != 1000)
			ladder_ok = false;
		if (!burst || !edge || !probe || !ladder_ok)
			diag("clock %llu: backoff %u", (unsigned long long)t0,
			    u.backoff);
	}
	ok(burst, "backoff: 20 timeouts within a second count once (1 s, "
	    "probe 1 s after the first)");
	ok(edge, "backoff: doubles at the end of its period, not 1 ms "
	    "before, and once per period");
	ok(probe, "backoff: one probe per backoff, due at the ms, not before");
	ok(ladder_ok, "backoff: 1, 2, 4, 8, 16, 32, 60, 60 s, a period apart; "
	    "back to 1 s after it answered");
}

static void
test_deadlines(void)
{
	uint64_t t0;
	size_t i;
	bool hold = true, stale = true, tcp = true;

	for (i = 0; i < NCLOCK; i++) {
		t0 = clocks[i];
		if (time_due(t0 + 4999, hold_deadline(t0)) ||
		    !time_due(t0 + 5000, hold_deadline(t0)) ||
		    !time_due(t0 + 5001, hold_deadline(t0)))
			hold = false;
		if (time_due(t0 + 1799, stale_deadline(t0)) ||
		    !time_due(t0 + 1800, stale_deadline(t0)))
			stale = false;
		if (time_due(t0 + 9999, tcp_deadline(TCP_IDLE, t0)) ||
		    !time_due(t0 + 10000, tcp_deadline(TCP_IDLE, t0)) ||
		    time_due(t0 + 4999, tcp_deadline(TCP_MSG, t0)) ||
		    !time_due(t0 + 5000, tcp_deadline(TCP_MSG, t0)))
			tcp = false;
		if (tcp_since(TCP_IDLE, tcp_deadline(TCP_IDLE, t0)) !=
		    t0 + (t0 + 10000 == TIME_NONE) ||
		    tcp_since(TCP_MSG, tcp_deadline(TCP_MSG, t0)) !=
		    t0 + (t0 + 5000 == TIME_NONE))
			tcp = false;
	}
	ok(hold, "hold: a held query fails, and readiness stops waiting, "
	    "5000 ms after it came, not 1 ms before");
	ok(stale, "stale: the stale answer goes 1800 ms after the query "
	    "came, not 1 ms before");
	ok(tcp, "tcp: idle 10000 ms, a message 5000 ms from its first byte, "
	    "to the ms; tcp_since() inverts it");
	ok(tcp_expire(TCP_IDLE, false) == TCP_CLOSE_IDLE &&
	    tcp_expire(TCP_IDLE, true) == TCP_WAIT &&
	    tcp_expire(TCP_MSG, false) == TCP_CLOSE_SLOW &&
	    tcp_expire(TCP_MSG, true) == TCP_CLOSE_SLOW,
	    "tcp: idle and owed answers waits; idle and owed nothing closes; "
	    "a message not whole in time closes, owed or not");
}

static void
test_rate(void)
{
	struct rate r;
	uint64_t t0;
	uint32_t quiet;
	size_t i;
	int k, said;
	bool once = true, budget = true;

	for (i = 0; i < NCLOCK; i++) {
		t0 = clocks[i];
		memset(&r, 0, sizeof(r));
		quiet = 99;
		if (!rate_say(&r, t0, RATE_MS, 1, &quiet) || quiet != 0)
			once = false;
		/* 1 ms later, and 1 ms before the minute is over: quiet */
		if (rate_say(&r, t0 + 1, RATE_MS, 1, &quiet) ||
		    rate_say(&r, t0 + 30000, RATE_MS, 1, &quiet) ||
		    rate_say(&r, t0 + 59999, RATE_MS, 1, &quiet))
			once = false;
		/* at the minute: said, with the three kept quiet */
		if (!rate_say(&r, t0 + 60000, RATE_MS, 1, &quiet) || quiet != 3)
			once = false;
		if (rate_say(&r, t0 + 119999, RATE_MS, 1, &quiet) ||
		    !rate_say(&r, t0 + 120000, RATE_MS, 1, &quiet) ||
		    quiet != 1)
			once = false;
		/* 16 a minute, whatever their causes */
		memset(&r, 0, sizeof(r));
		for (k = 0, said = 0; k < 40; k++)
			said += rate_say(&r, t0 + (uint64_t)k * 1000, RATE_MS,
			    16, NULL);
		if (said != 16 || r.quiet != 24 ||
		    !rate_say(&r, t0 + 60000, RATE_MS, 16, &quiet) ||
		    quiet != 24)
			budget = false;
	}
	ok(once, "rate: once a minute, to the ms, with the count kept quiet "
	    "(wrapping clocks too)");
	ok(budget, "rate: at most 16 a minute, the rest counted");
}

static void
test_policy_health(void)
{
	static const struct {
		const char	*desc;
		int		 n;
		uint32_t	 backoff[6];	/* of each; 0: live */
		int		 live;
		const char	*order;
	} cases[] = {
		{ "all live: list order", 3, { 0, 0, 0 }, 3, "0 1 2" },
		{ "down ones last, list order kept", 4,
		    { 1000, 0, 4000, 0 }, 2, "1 3 0 2" },
		{ "all down: list order", 3, { 1000, 2000, 1000 }, 0,
		    "0 1 2" },
		{ "first down, the rest live", 6, { 60000, 0, 0, 0, 0, 0 }, 5,
		    "1 2 3 4 5 0" },
		{ "one upstream down", 1, { 1000 }, 0, "0" },
	};
	static const uint32_t backoff[] = {
		1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000,
	};
	struct upstream u[6];
	uint8_t order[MAX_UPSTREAMS];
	char got[64];
	size_t i, o;
	uint64_t t;
	int live, k;
	bool good;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(u, 0, sizeof(u));
		for (k = 0; k < cases[i].n; k++)
			u[k].backoff = cases[i].backoff[k];
		live = policy_order(u, cases[i].n, order);
		o = 0;
		got[0] = '\0';
		for (k = 0; k < cases[i].n && o < sizeof(got); k++)
			o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%u",
			    k ? " " : "", order[k]);
		if (!ok(live == cases[i].live &&
		    strcmp(got, cases[i].order) == 0,
		    "policy_order: %s: %s, %d live", cases[i].desc,
		    cases[i].order, cases[i].live))
			diag("got %d live: %s", live, got);
	}

	memset(u, 0, sizeof(u));
	good = true;
	t = 100000;
	for (i = 0; i < sizeof(backoff) / sizeof(backoff[0]); i++) {
		policy_down(&u[0], t);
		if (u[0].backoff != backoff[i] ||
		    u[0].probe_at != t + backoff[i]) {
			diag("timeout %zu: backoff %u probe_at %llu", i + 1,
			    u[0].backoff, (unsigned long long)u[0].probe_at);
			good = false;
		}
		t += backoff[i];	/* each failure a whole period later */
	}
	ok(good, "policy_down: backoff 1000, 2000, 4000 ... 60000 capped, "
	    "next probe a backoff away");

	policy_alive(&u[0]);
	ok(u[0].backoff == 0 && u[0].probe_at == 0,
	    "policy_alive: live again, no probe due");
	ok(!policy_probe(&u[0], 123456), "policy_probe: never for a live "
	    "upstream");
	policy_down(&u[0], 7000);
	ok(u[0].backoff == 1000 && u[0].probe_at == 8000,
	    "policy_down: after policy_alive, backoff starts at 1000");
	ok(!policy_probe(&u[0], 7999), "policy_probe: not before the backoff "
	    "ran out");
	ok(policy_probe(&u[0], 8000), "policy_probe: due when it ran out");
	ok(!policy_probe(&u[0], 8500) && u[0].probe_at == 9000,
	    "policy_probe: once per backoff period");
	ok(policy_probe(&u[0], 9000), "policy_probe: due again a backoff "
	    "later");

	memset(u, 0, sizeof(u));
	policy_down(&u[0], 7000);
	ok(policy_order(u, 3, order) == 2 && order[2] == 0,
	    "policy_order: timed out: last");
	ok(policy_order(u, 3, order) == 2 && order[2] == 0,
	    "policy_order: still last a minute later: down until it answers");
	policy_alive(&u[0]);
	ok(policy_order(u, 3, order) == 3 && order[0] == 0,
	    "policy_order: first again once it answered");

	/* systemd-resolved: the stub, then its uplinks as failover */
	memset(u, 0, sizeof(u));
	u[1].failover = u[2].failover = true;
	ok(policy_order(u, 3, order) == 1 && order[0] == 0 && order[1] == 1 &&
	    order[2] == 2, "policy_order: the stub alone first, the failovers "
	    "after it");
	policy_down(&u[0], 1000);
	ok(policy_order(u, 3, order) == 2 && order[0] == 1 && order[1] == 2 &&
	    order[2] == 0, "policy_order: the stub down: the failovers first, "
	    "the stub last");
	policy_down(&u[1], 1000);
	ok(policy_order(u, 3, order) == 1 && order[0] == 2 && order[1] == 0 &&
	    order[2] == 1, "policy_order: a failover down too: the other one, "
	    "then the down ones in list order");
}

static void
test_policy_self(void)
{
	static const struct {
		const char	*ns;	/* ADDR#PORT */
		const char	*self;	/* -l chain, "" for none */
		bool		 want;
	} cases[] = {
		{ "127.0.0.1", "127.0.0.1:53", true },
		{ "127.0.0.1#5353", "127.0.0.1:5353", true },
		{ "127.0.0.1", "127.0.0.1:5353", false },
		{ "127.0.0.1#5353", "127.0.0.1:53", false },
		{ "127.0.0.2", "127.0.0.1:53", false },
		{ "10.0.0.1", "127.0.0.1:53,10.0.0.1:53", true },
		{ "10.0.0.1", "10.0.0.1:5353", false },
		{ "127.0.0.1", "0.0.0.0:53", true },
		{ "127.1.2.3", "0.0.0.0:53", true },
		{ "127.0.0.1", "0.0.0.0:5353", false },
		{ "192.168.1.1", "0.0.0.0:53", false },
		{ "0.0.0.0", "", true },
		{ "0.0.0.0#5353", "127.0.0.1:53", true },
		{ "::", "", true },
		{ "::#5353", "", true },
		{ "127.0.0.53", "", false },	/* the stub: an upstream */
		{ "127.0.0.53", "127.0.0.53:53", true },
		{ "127.0.0.54", "", false },
		{ "127.0.0.53#5353", "", false },
		{ "127.0.0.55", "", false },
		{ "127.0.0.1", "", false },
		{ "8.8.8.8", "127.0.0.1:53", false },
		{ "::1", "[::1]:53", true },
		{ "::1#5353", "[::1]:53", false },
		{ "::1", "[::]:53", true },
		{ "::1", "[::]:5353", false },
		{ "::1", "0.0.0.0:53", false },
		{ "127.0.0.1", "[::]:53", false },
		{ "fe80::1", "[::]:53", false },
		{ "2001:db8::1", "[2001:db8::1]:53", true },
		{ "2001:db8::1", "[2001:db8::2]:53", false },
	};
	struct listen_chain self;
	struct addr ns;
	char err[128];
	size_t i;
	bool got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		self.n = 0;
		if (cfg_parse_addr(cases[i].ns, '#', 53, &ns, err,
		    sizeof(err)) == -1 || (cases[i].self[0] != '\0' &&
		    cfg_parse_listen(cases[i].self, &self, err,
		    sizeof(err)) == -1))
			bail("bad address in a policy_is_self case",
			    cases[i].ns);
		got = policy_is_self(&ns, self.a, self.n);
		ok(got == cases[i].want, "policy_is_self: %s with listeners "
		    "\"%s\": %s", cases[i].ns, cases[i].self,
		    cases[i].want ? "true" : "false");
	}
}

/* ---- command-line values ---------------------------------------------- */

/* "ADDR port P[ scope S]" for an addr, as the tables spell it. */
static void
addr_show(const struct addr *a, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
	char host[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET && a->len == sizeof(*sin)) {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s port %u", host, ntohs(sin->sin_port));
	} else if (a->ss.ss_family == AF_INET6 && a->len == sizeof(*sin6)) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		if (a->ifname[0] != '\0')	/* a name: no index yet */
			snprintf(buf, len, "%s port %u %%%s%s", host,
			    ntohs(sin6->sin6_port), a->ifname,
			    sin6->sin6_scope_id != 0 ? " and a scope" : "");
		else if (sin6->sin6_scope_id != 0)
			snprintf(buf, len, "%s port %u scope %u", host,
			    ntohs(sin6->sin6_port),
			    (unsigned)sin6->sin6_scope_id);
		else
			snprintf(buf, len, "%s port %u", host,
			    ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "family %d len %u", a->ss.ss_family,
		    (unsigned)a->len);
	}
}

static void
test_cfg_addr(void)
{
	static const struct {
		const char	*s;
		char		 sep;
		uint16_t	 defport;
		const char	*want;	/* addr_show(), or NULL: rejected */
	} cases[] = {
		{ "127.0.0.1", ':', 53, "127.0.0.1 port 53" },
		{ "127.0.0.1:5353", ':', 53, "127.0.0.1 port 5353" },
		{ "127.0.0.1:0", ':', 53, "127.0.0.1 port 0" },
		{ "127.0.0.1:65535", ':', 53, "127.0.0.1 port 65535" },
		{ "0.0.0.0:53", ':', 53, "0.0.0.0 port 53" },
		{ "[::1]:53", ':', 53, "::1 port 53" },
		{ "[::1]:5300", ':', 53, "::1 port 5300" },
		{ "[::1]", ':', 53, "::1 port 53" },
		{ "::1", ':', 53, "::1 port 53" },
		{ "::1", ':', 5353, "::1 port 5353" },
		{ "2001:db8::1", ':', 53, "2001:db8::1 port 53" },
		{ "[2001:db8::1]:853", ':', 53, "2001:db8::1 port 853" },
		{ "1.2.3.4", '#', 53, "1.2.3.4 port 53" },
		{ "1.2.3.4#5353", '#', 53, "1.2.3.4 port 5353" },
		{ "::1#5353", '#', 53, "::1 port 5353" },
		{ "2001:db8::53", '#', 53, "2001:db8::53 port 53" },
		{ "fe80::1%2", '#', 53, "fe80::1 port 53 scope 2" },
		{ "fe80::1%2#5353", '#', 53, "fe80::1 port 5353 scope 2" },
		/* bad ports */
		{ "127.0.0.1:65536", ':', 53, NULL },
		{ "127.0.0.1:", ':', 53, NULL },
		{ "127.0.0.1:5x", ':', 53, NULL },
		{ "127.0.0.1:-1", ':', 53, NULL },
		{ "127.0.0.1: 53", ':', 53, NULL },
		{ "127.0.0.1:+53", ':', 53, NULL },
		{ "127.0.0.1:99999999999999999999999", ':', 53, NULL },
		{ "[::1]:", ':', 53, NULL },
		{ "[::1]:65536", ':', 53, NULL },
		{ "1.2.3.4#", '#', 53, NULL },
		{ "1.2.3.4#x", '#', 53, NULL },
		/* bad addresses */
		{ "", ':', 53, NULL },
		{ "localhost", ':', 53, NULL },
		{ "1.2.3", ':', 53, NULL },
		{ "1.2.3.256", ':', 53, NULL },
		{ "1.2.3.4.5", ':', 53, NULL },
		{ " 1.2.3.4", ':', 53, NULL },
		{ "[::1", ':', 53, NULL },
		{ "[::1]x", ':', 53, NULL },
		{ "[::1]#53", ':', 53, NULL },
		{ "[]:53", ':', 53, NULL },
		{ "::g", ':', 53, NULL },
		{ ":::1", ':', 53, NULL },
		{ "1.2.3.4:53", '#', 53, NULL },
		{ "1.2.3.4%lo", '#', 53, NULL },
		{ "fe80::1%", '#', 53, NULL },
		{ "fe80::1%0", '#', 53, NULL },
		{ "fe80::1%no-such-if9", '#', 53, "fe80::1 port 53 %no-such-if9" },
		{ "fe80::1%lo#53", '#', 53, "fe80::1 port 53 %lo" },
		{ "[fe80::1%lo]:5353", ':', 53, "fe80::1 port 5353 %lo" },
		{ "fe80::1%lo", ':', 53, "fe80::1 port 53 %lo" },
		{ "fe80::1%lo]:533", ':', 53, NULL },	/* no "]" in a name */
		{ "fe80::1%l o", '#', 53, NULL },
		{ "fe80::1%eth0:1", '#', 53, NULL },
		{ "fe80::1%abcdefghijklmno", '#', 53,
		    "fe80::1 port 53 %abcdefghijklmno" },
		{ "fe80::1%abcdefghijklmnop", '#', 53, NULL },
		{ "fe80::1%2x", '#', 53, NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    ':', 53, NULL },
	};
	struct addr a;
	char err[256], got[128];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		rc = cfg_parse_addr(cases[i].s, cases[i].sep, cases[i].defport,
		    &a, err, sizeof(err));
		if (cases[i].want == NULL) {
			if (!ok(rc == -1 && err[0] != '\0',
			    "cfg_parse_addr: \"%s\" (sep '%c') rejected",
			    cases[i].s, cases[i].sep)) {
				addr_show(&a, got, sizeof(got));
				diag("got %d: %s", rc, got);
			}
			continue;
		}
		addr_show(&a, got, sizeof(got));
		if (!ok(rc == 0 && strcmp(got, cases[i].want) == 0,
		    "cfg_parse_addr: \"%s\" (sep '%c'): %s", cases[i].s,
		    cases[i].sep, cases[i].want))
			diag("got %d: %s (%s)", rc, got, err);
	}

	rc = cfg_parse_addr("127.0.0.1:65536", ':', 53, &a, err, sizeof(err));
	ok(rc == -1 && strcmp(err, "\"65536\" is not a port") == 0,
	    "cfg_parse_addr: the message names the bad port");
	rc = cfg_parse_addr("1.2.3", ':', 53, &a, err, sizeof(err));
	ok(rc == -1 && strcmp(err, "\"1.2.3\" is not an address") == 0,
	    "cfg_parse_addr: the message names the bad address");
}

static void
test_cfg_listen(void)
{
	static const struct {
		const char	*s;
		const char	*want;	/* addr_show() joined by ", " */
	} cases[] = {
		{ "127.0.0.1", "127.0.0.1 port 53" },
		{ "127.0.0.1:53,127.0.0.153:53,[::1]:5353",
		    "127.0.0.1 port 53, 127.0.0.153 port 53, ::1 port 5353" },
		{ "[::1],0.0.0.0:0", "::1 port 53, 0.0.0.0 port 0" },
		{ "1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,"
		    "1.1.1.8", "1.1.1.1 port 53, 1.1.1.2 port 53, "
		    "1.1.1.3 port 53, 1.1.1.4 port 53, 1.1.1.5 port 53, "
		    "1.1.1.6 port 53, 1.1.1.7 port 53, 1.1.1.8 port 53" },
		{ "1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,"
		    "1.1.1.8,1.1.1.9", NULL },
		{ "127.0.0.1:53,,[::1]:53", NULL },
		{ ",127.0.0.1", NULL },
		{ "127.0.0.1,", NULL },
		{ "", NULL },
		{ ",", NULL },
		{ "127.0.0.1,127.0.0.1:99999", NULL },
		{ "127.0.0.1,bogus", NULL },
		{ "127.0.0.1 ,127.0.0.2", NULL },
	};
	struct listen_chain lc;
	char err[256], got[1024];
	size_t i, o;
	int rc, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		rc = cfg_parse_listen(cases[i].s, &lc, err, sizeof(err));
		if (cases[i].want == NULL) {
			if (!ok(rc == -1 && err[0] != '\0',
			    "cfg_parse_listen: \"%s\" rejected", cases[i].s))
				diag("got %d, %d addresses", rc, lc.n);
			continue;
		}
		o = 0;
		got[0] = '\0';
		for (k = 0; rc == 0 && k < lc.n; k++) {
			if (k > 0)
				o += (size_t)snprintf(got + o, sizeof(got) - o,
				    ", ");
			addr_show(&lc.a[k], got + o, sizeof(got) - o);
			o = strlen(got);
		}
		if (!ok(rc == 0 && strcmp(got, cases[i].want) == 0,
		    "cfg_parse_listen: \"%s\": %d address%s", cases[i].s,
		    lc.n, lc.n == 1 ? "" : "es"))
			diag("got %d: %s (%s)", rc, got, err);
	}
}

static void
test_cfg_uint(void)
{
	static const struct {
		const char	*s;
		unsigned long	 min, max;
		int		 rc;
		unsigned long	 want;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -1, 0 },
		{ "0", 1, 10, -1, 0 },
		{ "007", 0, 10, 0, 7 },
		{ "1500", 1, 60000, 0, 1500 },
		{ "4294967295", 0, 4294967295UL, 0, 4294967295UL },
		{ "4294967296", 0, 4294967295UL, -1, 0 },
		{ "99999999999999999999999", 0, 4294967295UL, -1, 0 },
		{ "", 0, 10, -1, 0 },
		{ "5x", 0, 10, -1, 0 },
		{ "x5", 0, 10, -1, 0 },
		{ "-1", 0, 10, -1, 0 },
		{ "+1", 0, 10, -1, 0 },
		{ " 1", 0, 10, -1, 0 },
		{ "1 ", 0, 10, -1, 0 },
		{ "0x10", 0, 100, -1, 0 },
		{ "1.5", 0, 10, -1, 0 },
	};
	unsigned long v;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		rc = cfg_parse_uint(cases[i].s, cases[i].min, cases[i].max, &v);
		ok(rc == cases[i].rc && (rc != 0 || v == cases[i].want) &&
		    (rc == 0 || v == 12345),
		    "cfg_parse_uint: \"%s\" in [%lu, %lu]: %s", cases[i].s,
		    cases[i].min, cases[i].max, cases[i].rc == 0 ? "ok" :
		    "rejected, *out untouched");
	}
	ok(cfg_parse_uint(NULL, 0, 10, &v) == -1, "cfg_parse_uint: NULL");
}

static void
test_cfg_size(void)
{
	static const struct {
		const char		*s;
		unsigned long long	 min, max;
		int			 rc;
		unsigned long long	 want;
	} cases[] = {
		{ "4096", 4096, 1ull << 30, 0, 4096 },
		{ "4k", 4096, 1ull << 30, 0, 4096 },
		{ "4K", 4096, 1ull << 30, 0, 4096 },
		{ "3k", 4096, 1ull << 30, -1, 0 },
		{ "4095", 4096, 1ull << 30, -1, 0 },
		{ "250k", 4096, 1ull << 30, 0, 256000 },
		{ "1m", 4096, 1ull << 30, 0, 1048576 },
		{ "16M", 4096, 1ull << 30, 0, 16777216 },
		{ "1g", 4096, 1ull << 30, 0, 1073741824 },
		{ "1G", 4096, 1ull << 30, 0, 1073741824 },
		{ "2g", 4096, 1ull << 30, -1, 0 },
		{ "1025m", 4096, 1ull << 30, -1, 0 },
		{ "0", 0, 10, 0, 0 },
		{ "0k", 0, 10, 0, 0 },
		{ "17179869183g", 0, ~0ull, 0, 17179869183ull << 30 },
		{ "17179869184g", 0, ~0ull, -1, 0 },	/* 2^64: overflows */
		{ "18446744073709551615", 0, ~0ull, 0, ~0ull },
		{ "18446744073709551616", 0, ~0ull, -1, 0 },
		{ "", 0, 10, -1, 0 },
		{ "k", 0, 10, -1, 0 },
		{ "4kb", 0, 1ull << 30, -1, 0 },
		{ "4 k", 0, 1ull << 30, -1, 0 },
		{ "4t", 0, ~0ull, -1, 0 },
		{ "-4k", 0, 1ull << 30, -1, 0 },
		{ "+4k", 0, 1ull << 30, -1, 0 },
		{ " 4k", 0, 1ull << 30, -1, 0 },
		{ "1.5m", 0, 1ull << 30, -1, 0 },
		{ "0x10", 0, 1ull << 30, -1, 0 },
	};
	unsigned long long v;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		rc = cfg_parse_size(cases[i].s, cases[i].min, cases[i].max, &v);
		ok(rc == cases[i].rc && (rc != 0 || v == cases[i].want) &&
		    (rc == 0 || v == 12345),
		    "cfg_parse_size: \"%s\" in [%llu, %llu]: %s", cases[i].s,
		    cases[i].min, cases[i].max, cases[i].rc == 0 ? "ok" :
		    "rejected, *out untouched");
	}
	ok(cfg_parse_size(NULL, 0, 10, &v) == -1, "cfg_parse_size: NULL");
}

/* ---- resolv.conf ------------------------------------------------------ */

/* "ADDR", "ADDR%IFNAME" or "ADDR%N" for a parsed nameserver. */
static void
ns_show(const struct ns_entry *e, char *buf, size_t len)
{
	const struct sockaddr_in *sin =
	    (const struct sockaddr_in *)&e->addr.ss;
	const struct sockaddr_in6 *sin6 =
	    (const struct sockaddr_in6 *)&e->addr.ss;
	char host[INET6_ADDRSTRLEN];

	if (e->addr.ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s", host);
		return;
	}
	inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
	if (e->addr.ifname[0] != '\0')
		snprintf(buf, len, "%s%%%.*s", host, IF_NAMESIZE, e->addr.ifname);
	else if (sin6->sin6_scope_id != 0)
		snprintf(buf, len, "%s%%%u", host,
		    (unsigned)sin6->sin6_scope_id);
	else
		snprintf(buf, len, "%s", host);
}

/* The servers of rc joined by spaces; false if one is not port 53. */
static bool
ns_list(const struct resolv_conf *rc, char *buf, size_t len)
{
	char one[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	bool port53 = true;
	size_t o = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < rc->n && i < RESOLV_MAX_NS; i++) {
		ns_show(&rc->ns[i], one, sizeof(one));
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? " " : "",
		    one);
		if (o >= len)
			break;
		if (rc->ns[i].addr.ss.ss_family == AF_INET6 ?
		    ((const struct sockaddr_in6 *)&rc->ns[i].addr.ss)->sin6_port
		    != htons(53) :
		    ((const struct sockaddr_in *)&rc->ns[i].addr.ss)->sin_port
		    != htons(53))
			port53 = false;
	}
	return port53;
}

struct resolv_case {
	const char	*desc;
	const char	*text;
	int		 n, ignored, bad;
	const char	*servers;
};

static const struct resolv_case resolv_cases[] = {
	{ "empty text", "", 0, 0, 0, "" },
	{ "one server", "nameserver 1.2.3.4\n", 1, 0, 0, "1.2.3.4" },
	{ "no newline at the end", "nameserver 1.2.3.4", 1, 0, 0, "1.2.3.4" },
	{ "comments with # and ;",
	    "# comment\n; comment\n#nameserver 9.9.9.9\n;nameserver 9.9.9.8\n"
	    "nameserver 1.2.3.4\n", 1, 0, 0, "1.2.3.4" },
	{ "comment after the address",
	    "nameserver 1.2.3.4 # one\nnameserver 1.2.3.5#two\n"
	    "nameserver 1.2.3.6;three\nnameserver 1.2.3.7 ; four\n", 4, 0, 0,
	    "1.2.3.4 1.2.3.5 1.2.3.6 1.2.3.7" },
	{ "tab after the keyword", "nameserver\t1.2.3.4\n", 1, 0, 0,
	    "1.2.3.4" },
	{ "mixed white space, trailing spaces and tabs",
	    "nameserver \t  1.2.3.4 \t \nnameserver\t\t2.3.4.5\t\n", 2, 0, 0,
	    "1.2.3.4 2.3.4.5" },
	{ "CRLF line ends",
	    "# crlf\r\nnameserver 1.2.3.4\r\nnameserver ::1\r\n", 2, 0, 0,
	    "1.2.3.4 ::1" },
	{ "blank and white lines", "\n\n   \n\t\nnameserver 1.2.3.4\n\n", 1, 0,
	    0, "1.2.3.4" },
	{ "text after the address is ignored",
	    "nameserver 1.2.3.4 5.6.7.8\n", 1, 0, 0, "1.2.3.4" },
	{ "\"nameserver1.2.3.4\" is not a nameserver line",
	    "nameserver1.2.3.4\n", 0, 0, 0, "" },
	{ "\"nameservers 1.2.3.4\" is not a nameserver line",
	    "nameservers 1.2.3.4\n", 0, 0, 0, "" },
	{ "keyword is case-sensitive", "NAMESERVER 1.2.3.4\n", 0, 0, 0, "" },
	{ "leading space before the keyword: ignored, as libc does",
	    " nameserver 1.2.3.4\n", 0, 0, 0, "" },
	{ "leading tab before the keyword: ignored, as libc does",
	    "\tnameserver 1.2.3.4\n", 0, 0, 0, "" },
	{ "\"nameserver\" with white space and no value: bad",
	    "nameserver   \n", 0, 0, 1, "" },
	{ "\"nameserver\" with only a comment: bad",
	    "nameserver # none\n", 0, 0, 1, "" },
	{ "IPv6", "nameserver 2001:db8::53\nnameserver ::1\n", 2, 0, 0,
	    "2001:db8::53 ::1" },
	{ "link-local with %ifname", "nameserver fe80::1%eth0\n", 1, 0, 0,
	    "fe80::1%eth0" },
	{ "link-local with a numeric scope", "nameserver fe80::1%2\n", 1, 0,
	    0, "fe80::1%2" },
	{ "ifname of 15 bytes", "nameserver fe80::1%abcdefghijklmno\n", 1, 0,
	    0, "fe80::1%abcdefghijklmno" },
	{ "ifname of 16 bytes: bad", "nameserver fe80::1%abcdefghijklmnop\n",
	    0, 0, 1, "" },
	{ "empty scope: bad", "nameserver fe80::1%\n", 0, 0, 1, "" },
	{ "IPv4 with a scope: bad", "nameserver 1.2.3.4%eth0\n", 0, 0, 1, "" },
	{ "garbage values counted in bad",
	    "nameserver foo\nnameserver 1.2.3\nnameserver 1.2.3.4.5\n"
	    "nameserver 300.1.1.1\nnameserver ::g\nnameserver 1.2.3.4\n"
	    "nameserver [::1]\nnameserver 1.2.3.4:53\n", 1, 0, 7, "1.2.3.4" },
	{ "a value too long for any address: bad",
	    "nameserver 1111111111111111111111111111111111111111111111111111111"
	    "1111111111111111111111111111\n", 0, 0, 1, "" },
	{ "options, search and domain lines ignored",
	    "options edns0 trust-ad ndots:5\nsearch a.example b.example\n"
	    "domain example\nsortlist 10.0.0.0/8\nnameserver 1.2.3.4\n", 1, 0,
	    0, "1.2.3.4" },
	{ "more than RESOLV_MAX_NS servers: the rest ignored",
	    "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"
	    "nameserver 10.0.0.4\nnameserver 10.0.0.5\nnameserver 10.0.0.6\n"
	    "nameserver 10.0.0.7\nnameserver 10.0.0.8\nnameserver 10.0.0.9\n"
	    "nameserver 10.0.0.10\n", 8, 2, 0,
	    "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 "
	    "10.0.0.8" },
	{ "bad lines past the cap are bad, not ignored",
	    "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"
	    "nameserver 10.0.0.4\nnameserver 10.0.0.5\nnameserver 10.0.0.6\n"
	    "nameserver 10.0.0.7\nnameserver 10.0.0.8\nnameserver x\n"
	    "nameserver 10.0.0.9\n", 8, 1, 1,
	    "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 "
	    "10.0.0.8" },
	{ "duplicates are kept", "nameserver 1.2.3.4\nnameserver 1.2.3.4\n",
	    2, 0, 0, "1.2.3.4 1.2.3.4" },
};

static void
check_resolv(const char *desc, const char *text, size_t len, int n,
    int ignored, int bad, const char *servers)
{
	struct resolv_conf rc;
	char got[1024];
	bool port53;
	int ret;

	memset(&rc, 0xa5, sizeof(rc));
	ret = resolv_parse((const char *)at_guard(text, len), len, &rc);
	port53 = ns_list(&rc, got, sizeof(got));
	if (!ok(ret == n && rc.n == n && rc.ignored == ignored &&
	    rc.bad == bad && strcmp(got, servers) == 0 && port53,
	    "resolv_parse: %s", desc))
		diag("got %d servers \"%s\", ignored %d, bad %d%s", ret, got,
		    rc.ignored, rc.bad, port53 ? "" : ", not port 53");
}

static void
test_resolv(void)
{
	static const char nul[] = "nameserver 1.2.3.4\n\0\xff\xfe\n"
	    "nameserver 5.6.7.8\n";
	static const char scoped[] = "nameserver fe80::1%eth0\n"
	    "nameserver fe80::2%2\n";
	const struct resolv_case *t;
	struct resolv_conf rc;
	char text[2048];
	size_t i, l;
	int bad;

	for (i = 0; i < sizeof(resolv_cases) / sizeof(resolv_cases[0]); i++) {
		t = &resolv_cases[i];
		check_resolv(t->desc, t->text, strlen(t->text), t->n,
		    t->ignored, t->bad, t->servers);
	}

	/* a line of 255 bytes is read, one of 256 is skipped (musl) */
	snprintf(text, sizeof(text), "nameserver 1.2.3.4%*s\n"
	    "nameserver 5.6.7.8%*s\nnameserver 9.9.9.9\n", 255 - 18, "",
	    256 - 18, "");
	check_resolv("line of 255 bytes read, line of 256 skipped", text,
	    strlen(text), 2, 0, 0, "1.2.3.4 9.9.9.9");
	snprintf(text, sizeof(text), "# %600s\nnameserver 1.2.3.4 %400s\n"
	    "nameserver 5.6.7.8", "x", "y");
	check_resolv("over-long lines skipped", text, strlen(text), 1, 0, 0,
	    "5.6.7.8");
	snprintf(text, sizeof(text), "nameserver 1.2.3.4%*s", 300, "");
	check_resolv("over-long last line without a newline skipped", text,
	    strlen(text), 0, 0, 0, "");
	check_resolv("NUL and binary bytes on a line of their own", nul,
	    sizeof(nul) - 1, 2, 0, 0, "1.2.3.4 5.6.7.8");

	/* the scope is left to the caller: a name in ifname, or a number */
	resolv_parse(scoped, sizeof(scoped) - 1, &rc);
	ok(rc.n == 2 && rc.ns[0].addr.ss.ss_family == AF_INET6 &&
	    strcmp(rc.ns[0].addr.ifname, "eth0") == 0 &&
	    ((struct sockaddr_in6 *)&rc.ns[0].addr.ss)->sin6_scope_id == 0 &&
	    rc.ns[0].addr.len == sizeof(struct sockaddr_in6),
	    "resolv_parse: \"%%eth0\" kept in ifname, scope_id 0");
	ok(rc.n == 2 && rc.ns[1].addr.ifname[0] == '\0' &&
	    ((struct sockaddr_in6 *)&rc.ns[1].addr.ss)->sin6_scope_id == 2,
	    "resolv_parse: \"%%2\" is scope_id 2, no ifname");

	/* every prefix of a realistic file, ending at the guard page */
	snprintf(text, sizeof(text), "# Generated by NetworkManager\r\n"
	    "search example.com\nnameserver 192.168.0.1\n"
	    "nameserver fe80::1%%eth0\nnameserver\t2001:db8::1 ; x\n"
	    "nameserver fe80::2%%3\n nameserver 1.1.1.1\nnameserver 300.0.0.1"
	    "\n");
	bad = 0;
	for (l = 0; l <= strlen(text); l++) {
		resolv_parse((const char *)at_guard(text, l), l, &rc);
		if (rc.n < 0 || rc.n > RESOLV_MAX_NS || rc.bad < 0)
			bad++;
	}
	resolv_parse(text, strlen(text), &rc);
	ok(bad == 0 && rc.n == 4 && rc.bad == 1,
	    "resolv_parse: every prefix of a file, at the guard page");
}

/* ---- helpers for local answers, hosts, routes and the cache ----------- */

#define EDNS_NONE	0
#define EDNS_PLAIN	1	/* OPT_PLAIN */
#define EDNS_DO		2	/* OPT_DO */
#define TYPE_MX		15	/* a type hosts and -a rules do not answer */

/* No allocation is unreachable now: LeakSanitizer, or a skip. */
static void
ok_no_leaks(const char *what)
{
#ifdef HAVE_LSAN
	ok(__lsan_do_recoverable_leak_check() == 0, "%s: no leak", what);
#else
	printf("# %s: leaks checked only in the LeakSanitizer build\n", what);
#endif
}

/* Parse spec as a query into *q, its bytes in p; a test error if not 0. */
static void
query_of(struct pkt *p, struct dns_query *q, const char *spec)
{
	enc(p, spec);
	if (dns_parse_query(p->b, p->len, q) != 0)
		bail("query does not parse", spec);
}

/*
 * A query for name (class IN, id 0x1234, RD) with an OPT as edns says.
 * "ptr:ADDR" names the reverse of ADDR: in-addr.arpa, or ip6.arpa nibbles.
 */
static void
query_name(struct pkt *p, struct dns_query *q, const char *name,
    uint16_t type, int edns)
{
	char spec[1024], rev[DNS_MAX_NAME];
	uint8_t a[16];
	size_t o = 0;
	int i;

	if (strncmp(name, "ptr:", 4) == 0) {
		if (inet_pton(AF_INET, name + 4, a) == 1) {
			snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa",
			    a[3], a[2], a[1], a[0]);
		} else if (inet_pton(AF_INET6, name + 4, a) == 1) {
			for (i = 15; i >= 0; i--)
				o += (size_t)snprintf(rev + o, sizeof(rev) - o,
				    "%x.%x.", a[i] & 0xfu, (unsigned)a[i] >> 4);
			snprintf(rev + o, sizeof(rev) - o, "ip6.arpa");
		} else {
			bail("bad ptr: address", name);
		}
		name = rev;
	}
	snprintf(spec, sizeof(spec), "1234 0100 0001 0000 0000 %04x n:%s %04x "
	    "0001 %s", edns != EDNS_NONE ? 1u : 0u, name, type,
	    edns == EDNS_DO ? OPT_DO : edns == EDNS_PLAIN ? OPT_PLAIN : "");
	query_of(p, q, spec);
}

/* "RCODE", then " TYPE DATA" for each record of a, as tables spell it. */
static void
answer_show(const struct local_answer *a, char *buf, size_t size)
{
	char data[DNS_MAX_NAME * 4 + 1], tb[16];
	size_t o;
	int i;

	snprintf(buf, size, "%s", dns_rcode_name(a->rcode));
	for (i = 0; i < a->n && i < LOCAL_MAX_RR; i++) {
		if (a->rr[i].type == TYPE_A && a->rr[i].len == 4)
			inet_ntop(AF_INET, a->rr[i].data, data, sizeof(data));
		else if (a->rr[i].type == TYPE_AAAA && a->rr[i].len == 16)
			inet_ntop(AF_INET6, a->rr[i].data, data, sizeof(data));
		else if (a->rr[i].type == TYPE_PTR && a->rr[i].len > 0 &&
		    a->rr[i].data[a->rr[i].len - 1] == 0)
			dns_name_text(a->rr[i].data, data, sizeof(data));
		else
			snprintf(data, sizeof(data), "(%u bytes)",
			    a->rr[i].len);
		o = strlen(buf);
		snprintf(buf + o, size - o, " %s %s",
		    dns_type_name(a->rr[i].type, tb, sizeof(tb)), data);
	}
}

/*
 * The answer dns_build_answer() makes of a for q (query bytes in b) parses
 * as a reply to q with a's RCODE and records.
 */
static bool
answer_parses(const uint8_t *b, const struct dns_query *q,
    const struct local_answer *a)
{
	static uint8_t out[DNS_MAX_UDP];
	struct dns_reply r;
	enum reply_class c;
	size_t n;

	n = dns_build_answer(out, sizeof(out), b, q, a, 300);
	c = dns_parse_reply(out, n, q, &r);
	return n > 0 && c == (a->n > 0 ? REPLY_POSITIVE : REPLY_NEGATIVE) &&
	    r.rcode == a->rcode && r.ancount == a->n;
}

/* ---- cfg_parse_domain ------------------------------------------------- */

#define A10		"aaaaaaaaaa"
#define A61		A10 A10 A10 A10 A10 A10 "a"
#define A63		A61 "aa"
#define A64		A63 "a"
#define A62		A61 "a"
#define NAME253		A63 "." A63 "." A63 "." A61	/* 255 octets */
#define NAME254		A63 "." A63 "." A63 "." A62	/* 256 octets */
#define DOTS127		"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a." \
			"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a." \
			"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a." \
			"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a." \
			"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a." \
			"a.a"			/* 127 labels, 253 chars */

static void
test_cfg_domain(void)
{
	static const struct {
		const char	*s;
		const char	*want;	/* spec of the wire name; NULL: -1 */
	} cases[] = {
		{ "corp.example", "n:corp.example" },
		{ "Corp.Example.", "n:corp.example" },
		{ "CORP", "n:corp" },
		{ "a-b_c.x9", "n:a-b_c.x9" },
		{ "#", "00" },
		{ "a..b", NULL },
		{ ".a", NULL },
		{ "a.b..", NULL },
		{ "..", NULL },
		{ A63 ".example", "l:63 n:example" },
		{ A64 ".example", NULL },
		{ "example." A64, NULL },
		{ NAME253, "l:63 l:63 l:63 l:61 00" },
		{ NAME253 ".", "l:63 l:63 l:63 l:61 00" },
		{ NAME254, NULL },
		{ NAME254 ".", NULL },
		{ DOTS127, "x:127:0161 00" },
		{ DOTS127 ".a", NULL },
	};
	struct pkt w;
	uint8_t *out;
	size_t i, l;
	int n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		l = strlen(cases[i].s);
		out = out_guard(DNS_MAX_NAME);
		memset(out, 0xee, DNS_MAX_NAME);
		n = cfg_parse_domain((const char *)at_guard(cases[i].s, l), l,
		    out);
		if (cases[i].want == NULL) {
			if (!ok(n == -1, "cfg_parse_domain: \"%.40s%s\" (%zu "
			    "chars) rejected", cases[i].s, l > 40 ? "..." : "",
			    l))
				diag("got %d", n);
			continue;
		}
		enc(&w, cases[i].want);
		if (!ok(n == (int)w.len && memcmp(out, w.b, w.len) == 0,
		    "cfg_parse_domain: \"%.40s%s\" (%zu chars): %zu octets",
		    cases[i].s, l > 40 ? "..." : "", l, w.len))
			diag("got %d", n);
	}
}

/* ---- dns_build_answer ------------------------------------------------- */

#define RR_A1		"0001 0a000001"
#define RR_A_8		RR_A1 "," RR_A1 "," RR_A1 "," RR_A1 "," RR_A1 "," \
			RR_A1 "," RR_A1 "," RR_A1
#define AN_A1		"c00c 0001 0001 0000003c (0a000001)"

struct answer_case {
	const char	*desc;
	const char	*query;		/* spec */
	int		 rcode;
	uint32_t	 ttl;
	const char	*rr;		/* "TYPE RDATA" specs, ',' between */
	const char	*want;		/* spec of the answer before the OPT */
	int		 opt;		/* EDNS_NONE, EDNS_PLAIN or EDNS_DO */
};

static const struct answer_case answer_cases[] = {
	{ "two A, RD and CD copied, EDNS with DO, question in its case",
	    "abcd 0110 0001 0000 0000 0001 n:WwW.Corp.Example 0001 0001 "
	    OPT_DO, RCODE_NOERROR, 3600, "0001 0a000001, 0001 0a000002",
	    "abcd 8590 0001 0002 0000 0001 n:WwW.Corp.Example 0001 0001 "
	    "c00c 0001 0001 00000e10 (0a000001) "
	    "c00c 0001 0001 00000e10 (0a000002)", EDNS_DO },
	{ "AAAA, RD only, no EDNS, TTL 0",
	    "0001 0100 0001 0000 0000 0000 n:v6.example 001c 0001",
	    RCODE_NOERROR, 0, "001c 20010db8000000000000000000000001",
	    "0001 8580 0001 0001 0000 0000 n:v6.example 001c 0001 "
	    "c00c 001c 0001 00000000 (20010db8000000000000000000000001)",
	    EDNS_NONE },
	{ "PTR, RD clear, TTL written big-endian",
	    "7777 0000 0001 0000 0000 0000 n:5.0.0.10.IN-ADDR.arpa 000c 0001",
	    RCODE_NOERROR, 0x12345678, "000c n:web.corp.example",
	    "7777 8480 0001 0001 0000 0000 n:5.0.0.10.IN-ADDR.arpa 000c 0001 "
	    "c00c 000c 0001 12345678 (n:web.corp.example)", EDNS_NONE },
	{ "NXDOMAIN, no records, EDNS without DO",
	    "4242 0100 0001 0000 0000 0001 n:nx.example 0001 0001 " OPT_PLAIN,
	    RCODE_NXDOMAIN, 60, "",
	    "4242 8583 0001 0000 0000 0001 n:nx.example 0001 0001",
	    EDNS_PLAIN },
	{ "NXDOMAIN, no records, no EDNS",
	    "4243 0100 0001 0000 0000 0000 n:nx.example 0001 0001",
	    RCODE_NXDOMAIN, 60, "",
	    "4243 8583 0001 0000 0000 0000 n:nx.example 0001 0001", EDNS_NONE },
	{ "NODATA, CD only",
	    "4244 0010 0001 0000 0000 0000 n:v4only.example 001c 0001",
	    RCODE_NOERROR, 60, "",
	    "4244 8490 0001 0000 0000 0000 n:v4only.example 001c 0001",
	    EDNS_NONE },
	{ "eight A for a 255-octet name, EDNS with DO",
	    "4245 0100 0001 0000 0000 0001 l:63 l:63 l:63 l:61 00 0001 0001 "
	    OPT_DO, RCODE_NOERROR, 60, RR_A_8,
	    "4245 8580 0001 0008 0000 0001 l:63 l:63 l:63 l:61 00 0001 0001 "
	    AN_A1 " " AN_A1 " " AN_A1 " " AN_A1 " " AN_A1 " " AN_A1 " " AN_A1
	    " " AN_A1, EDNS_DO },
};

/* Fill a from "TYPE RDATA, TYPE RDATA" specs. */
static void
answer_of(struct local_answer *a, int rcode, const char *rrs)
{
	char one[DNS_MAX_NAME * 3];
	const char *s = rrs;
	struct pkt p;
	size_t n;

	memset(a, 0, sizeof(*a));
	a->rcode = rcode;
	while (*s != '\0') {
		n = strcspn(s, ",");
		if (n >= sizeof(one) || a->n == LOCAL_MAX_RR)
			bail("bad records", rrs);
		memcpy(one, s, n);
		one[n] = '\0';
		s += n + (s[n] == ',');
		enc(&p, one);
		if (p.len < 2 || p.len - 2 > DNS_MAX_NAME)
			bail("bad record", one);
		a->rr[a->n].type = u16_at(p.b, 0);
		a->rr[a->n].len = (uint8_t)(p.len - 2);
		memcpy(a->rr[a->n].data, p.b + 2, p.len - 2);
		a->n++;
	}
}

static void
test_build_answer(void)
{
	static struct pkt p, w;
	static uint8_t full[DNS_MAX_UDP];
	const struct answer_case *t;
	struct local_answer a;
	struct dns_query q;
	struct dns_reply r;
	enum reply_class c;
	const uint8_t *b;
	uint8_t *out;
	size_t i, n, size, want;
	int bad;

	for (i = 0; i < sizeof(answer_cases) / sizeof(answer_cases[0]); i++) {
		t = &answer_cases[i];
		query_of(&p, &q, t->query);
		b = at_guard(p.b, p.len);
		answer_of(&a, t->rcode, t->rr);
		enc(&w, t->want);
		want = w.len + (t->opt != EDNS_NONE ? 11 : 0);
		n = dns_build_answer(full, sizeof(full), b, &q, &a, t->ttl);
		if (!ok(n == want && memcmp(full, w.b, w.len) == 0 &&
		    (t->opt == EDNS_NONE || (full[w.len] == 0 &&
		    u16_at(full, w.len + 1) == TYPE_OPT &&
		    u16_at(full, w.len + 3) >= 512 &&
		    (full[w.len + 7] & 0x80) ==
		    (t->opt == EDNS_DO ? 0x80 : 0) &&
		    u16_at(full, w.len + 9) == 0)),
		    "dns_build_answer: %s: %zu bytes", t->desc, want))
			diag("got %zu bytes, flags %04x, counts %u %u %u %u", n,
			    u16_at(full, 2), u16_at(full, 4), u16_at(full, 6),
			    u16_at(full, 8), u16_at(full, 10));
		c = dns_parse_reply(full, n, &q, &r);
		if (!ok(c == (a.n > 0 ? REPLY_POSITIVE : REPLY_NEGATIVE) &&
		    r.rcode == t->rcode && r.ancount == a.n &&
		    r.opt == (t->opt != EDNS_NONE ? w.len : 0),
		    "dns_build_answer: %s: parses as the reply to its query",
		    t->desc))
			diag("got class %d rcode %d ancount %u opt %u", (int)c,
			    r.rcode, r.ancount, r.opt);

		/* every smaller buffer, ending at the guard: 0, no overflow */
		bad = 0;
		for (size = 0; size <= want; size++) {
			out = out_guard(size);
			n = dns_build_answer(out, size, b, &q, &a, t->ttl);
			if ((size < want && n != 0) || (size == want &&
			    (n != want || memcmp(out, full, want) != 0))) {
				if (bad++ == 0)
					diag("size %zu: got %zu", size, n);
			}
		}
		ok(bad == 0, "dns_build_answer: %s: 0 for each size 0..%zu, "
		    "whole at %zu", t->desc, want - 1, want);
	}
}

/* ---- hosts_parse and hosts_lookup ------------------------------------- */

static const char hosts_text[] =
    "# /etc/hosts: static table lookup for hostnames\n"
    "127.0.0.1\tlocalhost\n"
    "127.0.1.1\tmyhost.corp.example\tmyhost\n"
    "\n"
    "# The following lines are desirable for IPv6 capable hosts\n"
    "::1     localhost ip6-localhost ip6-loopback\n"
    "ff02::1 ip6-allnodes\n"
    "10.0.0.5 web.corp.example web db # the web server\n"
    "10.0.0.6\tweb.corp.example\t\n"
    "fd00::5  web.corp.example\n"
    "192.168.1.10 printer#no space before the comment\n"
    "   10.0.0.7 v4only.example   \n"
    "2001:db8::1 Mixed.Case.Example\r\n"
    "10.0.0.8 a..b.example good.example\n"
    "not-an-ip bogus.example\n"
    "10.0.0.300 bad.example\n"
    "#10.0.0.9 commented.example\n"
    "10.0.0.10 trailing.example.\n"
    "10.0.0.11";
#define HOSTS_NAMES	17	/* names in hosts_text */
#define HOSTS_BAD	3	/* not-an-ip, 10.0.0.300, a..b.example */

static const struct {
	const char	*name;
	uint16_t	 type;
	const char	*want;	/* answer_show(); NULL: hosts_lookup false */
} hosts_cases[] = {
	{ "localhost", TYPE_A, "NOERROR A 127.0.0.1" },
	{ "localhost", TYPE_AAAA, "NOERROR AAAA ::1" },
	{ "LocalHost", TYPE_A, "NOERROR A 127.0.0.1" },
	{ "myhost", TYPE_A, "NOERROR A 127.0.1.1" },
	{ "myhost.corp.example", TYPE_A, "NOERROR A 127.0.1.1" },
	{ "ip6-loopback", TYPE_AAAA, "NOERROR AAAA ::1" },
	{ "ip6-allnodes", TYPE_AAAA, "NOERROR AAAA ff02::1" },
	{ "web.corp.example", TYPE_A, "NOERROR A 10.0.0.5 A 10.0.0.6" },
	{ "web.corp.example", TYPE_AAAA, "NOERROR AAAA fd00::5" },
	{ "WEB.Corp.EXAMPLE", TYPE_A, "NOERROR A 10.0.0.5 A 10.0.0.6" },
	{ "web", TYPE_A, "NOERROR A 10.0.0.5" },
	{ "db", TYPE_A, "NOERROR A 10.0.0.5" },
	{ "web", TYPE_AAAA, "NOERROR" },
	{ "printer", TYPE_A, "NOERROR A 192.168.1.10" },
	{ "v4only.example", TYPE_A, "NOERROR A 10.0.0.7" },
	{ "v4only.example", TYPE_AAAA, "NOERROR" },
	{ "v4only.example", TYPE_MX, "NOERROR" },
	{ "v4only.example", TYPE_PTR, "NOERROR" },
	{ "mixed.case.example", TYPE_AAAA, "NOERROR AAAA 2001:db8::1" },
	{ "good.example", TYPE_A, "NOERROR A 10.0.0.8" },
	{ "trailing.example", TYPE_A, "NOERROR A 10.0.0.10" },
	{ "unknown.example", TYPE_A, NULL },
	{ "corp.example", TYPE_A, NULL },
	{ "x.web.corp.example", TYPE_A, NULL },
	{ "bogus.example", TYPE_A, NULL },
	{ "bad.example", TYPE_A, NULL },
	{ "commented.example", TYPE_A, NULL },
	{ "the", TYPE_A, NULL },
	{ "ptr:10.0.0.5", TYPE_PTR, "NOERROR PTR web.corp.example" },
	{ "ptr:10.0.0.6", TYPE_PTR, "NOERROR PTR web.corp.example" },
	{ "ptr:127.0.1.1", TYPE_PTR, "NOERROR PTR myhost.corp.example" },
	{ "ptr:127.0.0.1", TYPE_PTR, "NOERROR PTR localhost" },
	{ "ptr:::1", TYPE_PTR, "NOERROR PTR localhost" },
	{ "ptr:fd00::5", TYPE_PTR, "NOERROR PTR web.corp.example" },
	{ "ptr:2001:db8::1", TYPE_PTR, "NOERROR PTR mixed.case.example" },
	{ "ptr:10.0.0.8", TYPE_PTR, "NOERROR PTR good.example" },
	{ "ptr:10.0.0.10", TYPE_PTR, "NOERROR PTR trailing.example" },
	{ "5.0.0.10.IN-ADDR.ARPA", TYPE_PTR, "NOERROR PTR web.corp.example" },
	{ "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.D.F."
	    "IP6.ARPA", TYPE_PTR, "NOERROR PTR web.corp.example" },
	{ "ptr:10.0.0.99", TYPE_PTR, NULL },
	{ "ptr:10.0.0.11", TYPE_PTR, NULL },
	{ "ptr:10.0.0.9", TYPE_PTR, NULL },
	{ "ptr:fd00::6", TYPE_PTR, NULL },
	{ "0.0.10.in-addr.arpa", TYPE_PTR, NULL },
};

/* Look name up in h: false, or true with answer_show() in buf. */
static bool
hosts_show(const struct hosts *h, const char *name, uint16_t type,
    char *buf, size_t size)
{
	struct local_answer a;
	struct dns_query q;
	struct pkt p;
	bool found;

	query_name(&p, &q, name, type, EDNS_NONE);
	memset(&a, 0xa5, sizeof(a));
	found = hosts_lookup(h, &q, &a);
	if (found)
		answer_show(&a, buf, size);
	else
		snprintf(buf, size, "(not found)");
	return found;
}

static void
test_hosts(void)
{
	static char text[65536];
	struct local_answer a;
	struct dns_query q;
	struct hosts h;
	struct pkt p;
	char got[512], want[512];
	size_t i, l, o;
	int n, bad, nbad, wrong;
	bool found;

	l = sizeof(hosts_text) - 1;
	n = hosts_parse((const char *)at_guard(hosts_text, l), l, &h);
	if (!ok(n == HOSTS_NAMES && hosts_count(&h, &bad) == HOSTS_NAMES &&
	    bad == HOSTS_BAD, "hosts_parse: a realistic file: %d names, %d bad",
	    HOSTS_NAMES, HOSTS_BAD))
		diag("got %d names, count %d, bad %d", n,
		    hosts_count(&h, &bad), bad);
	for (i = 0; i < sizeof(hosts_cases) / sizeof(hosts_cases[0]); i++) {
		found = hosts_show(&h, hosts_cases[i].name, hosts_cases[i].type,
		    got, sizeof(got));
		if (hosts_cases[i].want == NULL) {
			if (!ok(!found, "hosts_lookup: %.40s %s: not known",
			    hosts_cases[i].name,
			    dns_type_name(hosts_cases[i].type, want,
			    sizeof(want))))
				diag("got %s", got);
			continue;
		}
		if (!ok(found && strcmp(got, hosts_cases[i].want) == 0,
		    "hosts_lookup: %.40s %s: %s", hosts_cases[i].name,
		    dns_type_name(hosts_cases[i].type, want, sizeof(want)),
		    hosts_cases[i].want))
			diag("got %s", got);
	}

	/* the answer built from a lookup parses as the reply */
	query_name(&p, &q, "web.corp.example", TYPE_A, EDNS_DO);
	ok(hosts_lookup(&h, &q, &a) && answer_parses(p.b, &q, &a),
	    "hosts_lookup: its answer, built, parses as the reply (2 A)");
	query_name(&p, &q, "ptr:fd00::5", TYPE_PTR, EDNS_NONE);
	ok(hosts_lookup(&h, &q, &a) && answer_parses(p.b, &q, &a),
	    "hosts_lookup: its answer, built, parses as the reply (PTR)");
	hosts_free(&h);
	ok(hosts_count(&h, &bad) == 0 && bad == 0 &&
	    !hosts_show(&h, "web.corp.example", TYPE_A, got, sizeof(got)),
	    "hosts_free: the table is empty again");

	/* nothing, and nothing but comments */
	n = hosts_parse((const char *)at_guard("", 0), 0, &h);
	ok(n == 0 && hosts_count(&h, &bad) == 0 && bad == 0 &&
	    !hosts_show(&h, "localhost", TYPE_A, got,
	    sizeof(got)), "hosts_parse: an empty text: 0 names, none known");
	hosts_free(&h);
	l = strlen("# only\n\n  # comments\n");
	n = hosts_parse((const char *)at_guard("# only\n\n  # comments\n", l),
	    l, &h);
	ok(n == 0 && hosts_count(&h, &bad) == 0 && bad == 0 &&
	    !hosts_show(&h, "only", TYPE_A, got,
	    sizeof(got)), "hosts_parse: comments only: 0 names");
	hosts_free(&h);

	/* more addresses than a local answer holds: the first, in order */
	o = 0;
	for (i = 1; i <= LOCAL_MAX_RR + 2; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "10.0.0.%zu many\n", i);
	hosts_parse((const char *)at_guard(text, o), o, &h);
	hosts_show(&h, "many", TYPE_A, got, sizeof(got));
	ok(strcmp(got, "NOERROR A 10.0.0.1 A 10.0.0.2 A 10.0.0.3 A 10.0.0.4 "
	    "A 10.0.0.5 A 10.0.0.6 A 10.0.0.7 A 10.0.0.8") == 0,
	    "hosts_lookup: %d lines for one name: the first %d, file order",
	    LOCAL_MAX_RR + 2, LOCAL_MAX_RR);
	hosts_free(&h);

	/* 2,000 lines, two names each */
	o = 0;
	for (i = 0; i < 2000; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "10.0.%zu.%zu\th%zu h%zu.lan\n", i / 256, i % 256, i, i);
	n = hosts_parse((const char *)at_guard(text, o), o, &h);
	wrong = 0;
	for (i = 0; i < 2000; i++) {
		snprintf(want, sizeof(want), "h%zu.lan", i);
		hosts_show(&h, want, TYPE_A, got, sizeof(got));
		snprintf(want, sizeof(want), "NOERROR A 10.0.%zu.%zu", i / 256,
		    i % 256);
		if (strcmp(got, want) != 0 && wrong++ == 0)
			diag("h%zu.lan: got %s", i, got);
		snprintf(want, sizeof(want), "ptr:10.0.%zu.%zu", i / 256,
		    i % 256);
		hosts_show(&h, want, TYPE_PTR, got, sizeof(got));
		snprintf(want, sizeof(want), "NOERROR PTR h%zu", i);
		if (strcmp(got, want) != 0 && wrong++ == 0)
			diag("PTR of line %zu: got %s", i, got);
	}
	ok(n == 4000 && hosts_count(&h, &bad) == 4000 && bad == 0 &&
	    wrong == 0,
	    "hosts_parse: 2000 lines (%zu bytes): 4000 names, each found, "
	    "each address's PTR its first name", o);
	hosts_free(&h);

	/* every prefix of the realistic file, ending at the guard page */
	bad = 0;
	l = sizeof(hosts_text) - 1;
	for (i = 0; i <= l; i++) {
		n = hosts_parse((const char *)at_guard(hosts_text, i), i, &h);
		/* a cut address is one more bad line */
		if (n < 0 || n > HOSTS_NAMES || n != hosts_count(&h, &nbad) ||
		    nbad < 0 || nbad > HOSTS_BAD + 1) {
			if (bad++ == 0)
				diag("%zu bytes: %d names, bad %d", i, n,
				    nbad);
		}
		hosts_show(&h, "web.corp.example", TYPE_A, got, sizeof(got));
		hosts_show(&h, "ptr:10.0.0.5", TYPE_PTR, got, sizeof(got));
		hosts_free(&h);
	}
	ok(bad == 0, "hosts_parse: every prefix (0..%zu bytes) at the guard "
	    "page", l);
	ok_no_leaks("hosts_parse and hosts_free");
}

/* ---- routes ----------------------------------------------------------- */

/* "NAME KIND ...", KIND "fwd ADDR#PORT...", "default" or "local ...". */
static void
rule_show(const struct rule *r, char *buf, size_t size)
{
	char name[DNS_MAX_NAME * 4 + 1], one[INET6_ADDRSTRLEN + 32];
	size_t o;
	int i;

	dns_name_text(r->name, name, sizeof(name));
	if (r->kind == RULE_LOCAL) {
		snprintf(buf, size, "%s local%s", name, r->has4 || r->has6 ?
		    "" : " nxdomain");
		if (r->has4) {
			inet_ntop(AF_INET, r->a4, one, sizeof(one));
			o = strlen(buf);
			snprintf(buf + o, size - o, " %s", one);
		}
		if (r->has6) {
			inet_ntop(AF_INET6, r->a6, one, sizeof(one));
			o = strlen(buf);
			snprintf(buf + o, size - o, " %s", one);
		}
		return;
	}
	snprintf(buf, size, "%s %s", name, r->kind == RULE_FORWARD ? "fwd" :
	    r->kind == RULE_DEFAULT ? "default" : "kind?");
	for (i = 0; i < r->nsrv; i++) {
		o = strlen(buf);
		snprintf(buf + o, size - o, " %s",
		    addr_text(&r->srv[i], '#', one, sizeof(one)));
	}
}

/* Apply "-s SPEC -a SPEC ..." to an empty t; false (with diag) if one fails. */
static bool
routes_of(struct routes *t, const char *opts)
{
	char tok[1024], err[256];
	const char *s = opts;
	bool local = false;
	size_t n;

	memset(t, 0, sizeof(*t));
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return true;
		n = strcspn(s, " ");
		if (n >= sizeof(tok))
			bail("option too long", opts);
		memcpy(tok, s, n);
		tok[n] = '\0';
		s += n;
		if (strcmp(tok, "-s") == 0 || strcmp(tok, "-a") == 0) {
			local = tok[1] == 'a';
			continue;
		}
		err[0] = '\0';
		if (route_add(t, tok, local, err, sizeof(err)) == -1) {
			diag("route_add %s \"%s\": %s", local ? "-a" : "-s",
			    tok, err);
			return false;
		}
	}
}

/* The rule route_match() finds for name, shown, or "(none)". */
static void
match_show(const struct routes *t, const char *name, char *buf,
    size_t size)
{
	struct dns_query q;
	struct pkt p;
	int f;

	query_name(&p, &q, name, TYPE_A, EDNS_NONE);
	f = route_match(t, q.qname);
	if (f < 0)
		snprintf(buf, size, "(none)");
	else if (f >= t->n)
		snprintf(buf, size, "(rule %d of %d)", f, t->n);
	else
		rule_show(&t->r[f], buf, size);
}

#define LONGEST		"-s /example/10.0.0.1 -s /a.example/10.0.0.2 " \
			"-s /b.a.example/10.0.0.3"
#define LONGEST_REV	"-s /b.a.example/10.0.0.3 -s /a.example/10.0.0.2 " \
			"-s /example/10.0.0.1"

static const struct {
	const char	*opts;
	const char	*name;
	const char	*want;	/* rule_show(), or "(none)" */
} route_cases[] = {
	{ "", "www.example", "(none)" },
	{ "-s /corp.example/10.0.0.1#5353", "www.corp.example",
	    "corp.example fwd 10.0.0.1#5353" },
	{ "-s /Corp.Example./10.0.0.1", "WWW.corp.EXAMPLE",
	    "corp.example fwd 10.0.0.1#53" },
	{ "-s /a/b/10.0.0.2", "x.a", "a fwd 10.0.0.2#53" },
	{ "-s /a/b/10.0.0.2", "b", "b fwd 10.0.0.2#53" },
	{ "-s /a/b/10.0.0.2", "ab", "(none)" },
	{ "-s /d/#", "x.d", "d default" },
	{ "-s /d/", "x.d", "d local nxdomain" },
	{ "-s /d/fd00::53#5353", "d", "d fwd fd00::53#5353" },
	{ "-a /x/1.2.3.4 -a /x/fd00::1", "x", "x local 1.2.3.4 fd00::1" },
	{ "-a /x/fd00::1 -a /x/1.2.3.4", "y.x", "x local 1.2.3.4 fd00::1" },
	{ "-a /x/", "x", "x local nxdomain" },
	{ "-a /x/y/1.2.3.4", "y", "y local 1.2.3.4" },
	{ "-s /#/", "any.thing.example", ". local nxdomain" },
	{ "-s /#/", "com", ". local nxdomain" },
	{ "-a /#/", "any.thing.example", ". local nxdomain" },
	{ "-s /#/10.9.9.9", "a.b.c.d.e", ". fwd 10.9.9.9#53" },
	/* longest suffix wins, whatever the order of the options */
	{ LONGEST, "example", "example fwd 10.0.0.1#53" },
	{ LONGEST, "x.example", "example fwd 10.0.0.1#53" },
	{ LONGEST, "ba.example", "example fwd 10.0.0.1#53" },
	{ LONGEST, "a.example", "a.example fwd 10.0.0.2#53" },
	{ LONGEST, "x.a.example", "a.example fwd 10.0.0.2#53" },
	{ LONGEST, "b.a.example", "b.a.example fwd 10.0.0.3#53" },
	{ LONGEST, "c.b.a.example", "b.a.example fwd 10.0.0.3#53" },
	{ LONGEST, "example.org", "(none)" },
	{ LONGEST_REV, "x.example", "example fwd 10.0.0.1#53" },
	{ LONGEST_REV, "x.a.example", "a.example fwd 10.0.0.2#53" },
	{ LONGEST_REV, "c.b.a.example", "b.a.example fwd 10.0.0.3#53" },
	{ "-a /#/ -s /allowed.example/1.1.1.1", "www.allowed.example",
	    "allowed.example fwd 1.1.1.1#53" },
	{ "-a /#/ -s /allowed.example/1.1.1.1", "other.example",
	    ". local nxdomain" },
	/* label boundaries */
	{ "-s /corp.example/10.0.0.1", "corp.example",
	    "corp.example fwd 10.0.0.1#53" },
	{ "-s /corp.example/10.0.0.1", "x.corp.example",
	    "corp.example fwd 10.0.0.1#53" },
	{ "-s /corp.example/10.0.0.1", "evilcorp.example", "(none)" },
	{ "-s /corp.example/10.0.0.1", "corp.example.org", "(none)" },
	{ "-s /corp.example/10.0.0.1", "example", "(none)" },
	{ "-s /corp.example/10.0.0.1", "orp.example", "(none)" },
	/* a local rule wins over forwarding, in either order */
	{ "-s /d/1.1.1.1 -a /d/1.2.3.4", "d", "d local 1.2.3.4" },
	{ "-a /d/1.2.3.4 -s /d/1.1.1.1", "d", "d local 1.2.3.4" },
	{ "-s /d/1.1.1.1 -a /d/", "d", "d local nxdomain" },
	{ "-a /d/ -s /d/1.1.1.1", "d", "d local nxdomain" },
	{ "-s /d/1.1.1.1 -s /d/", "d", "d local nxdomain" },
	{ "-s /d/ -s /d/1.1.1.1", "d", "d local nxdomain" },
	{ "-a /d/ -s /d/#", "d", "d local nxdomain" },
	/* several servers: their order; "#" and servers */
	{ "-s /d/1.1.1.1 -s /d/2.2.2.2#5353 -s /d/::1", "d",
	    "d fwd 1.1.1.1#53 2.2.2.2#5353 ::1#53" },
	{ "-s /d/1.1.1.1 -s /d/#", "d", "d fwd 1.1.1.1#53" },
	{ "-s /d/# -s /d/1.1.1.1", "d", "d fwd 1.1.1.1#53" },
};

static const struct {
	const char	*spec;
	bool		 local;
} route_errors[] = {
	{ "corp/1.1.1.1", false },
	{ "corp/1.1.1.1", true },
	{ "corp.example", false },
	{ "", false },
	{ "/", false },
	{ "/x", false },
	{ "/bad..name/1.1.1.1", false },
	{ "/bad..name/1.2.3.4", true },
	{ "/a.b/c..d/1.1.1.1", false },
	{ "/" A64 "/1.1.1.1", false },
	{ "/" NAME254 "/1.1.1.1", false },
	{ "/x/notanip", true },
	{ "/x/notanip", false },
	{ "/x/1.2.3.4#53", true },
	{ "/x/#", true },
	{ "/x/1.1.1.1#99999", false },
	{ "/x/1.1.1.1:53", false },
};

static const struct {
	const char	*opts;
	const char	*name;
	uint16_t	 type;
	const char	*want;	/* answer_show() */
} route_local_cases[] = {
	{ "-a /x/1.2.3.4 -a /x/fd00::1", "x", TYPE_A, "NOERROR A 1.2.3.4" },
	{ "-a /x/1.2.3.4 -a /x/fd00::1", "www.x", TYPE_AAAA,
	    "NOERROR AAAA fd00::1" },
	{ "-a /x/1.2.3.4 -a /x/fd00::1", "x", TYPE_MX, "NOERROR" },
	{ "-a /x/1.2.3.4", "x", TYPE_AAAA, "NOERROR" },
	{ "-a /x/fd00::1", "x", TYPE_A, "NOERROR" },
	{ "-a /x/", "a.x", TYPE_A, "NXDOMAIN" },
	{ "-a /x/", "x", TYPE_AAAA, "NXDOMAIN" },
	{ "-s /d/", "d", TYPE_A, "NXDOMAIN" },
	{ "-a /#/", "anything.example", TYPE_A, "NXDOMAIN" },
	{ "-a /#/0.0.0.0", "ads.example", TYPE_A, "NOERROR A 0.0.0.0" },
	{ "-a /#/0.0.0.0", "ads.example", TYPE_AAAA, "NOERROR" },
};

static void
test_routes(void)
{
	struct local_answer a;
	struct dns_query q;
	struct routes t;
	struct pkt p;
	char got[1024], err[256];
	size_t i;
	int rc, f, k;
	bool added;

	for (i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
		added = routes_of(&t, route_cases[i].opts);
		match_show(&t, route_cases[i].name, got, sizeof(got));
		if (!ok(added && strcmp(got, route_cases[i].want) == 0,
		    "route_match: \"%s\": %s -> %s", route_cases[i].opts,
		    route_cases[i].name, route_cases[i].want))
			diag("got %s", got);
		routes_free(&t);
	}

	for (i = 0; i < sizeof(route_errors) / sizeof(route_errors[0]); i++) {
		memset(&t, 0, sizeof(t));
		err[0] = '\0';
		rc = route_add(&t, route_errors[i].spec, route_errors[i].local,
		    err, sizeof(err));
		ok(rc == -1 && err[0] != '\0', "route_add: %s \"%.40s%s\" "
		    "rejected", route_errors[i].local ? "-a" : "-s",
		    route_errors[i].spec,
		    strlen(route_errors[i].spec) > 40 ? "..." : "");
		routes_free(&t);
	}
	memset(&t, 0, sizeof(t));
	rc = route_add(&t, "/bad..name/1.1.1.1", false, err, sizeof(err));
	if (!ok(rc == -1 && strcmp(err, "\"bad..name\" is not a domain") == 0,
	    "route_add: the message names the bad domain"))
		diag("got %d: %s", rc, err);
	routes_free(&t);

	/* MAX_UPSTREAMS servers for one domain, and not one more */
	memset(&t, 0, sizeof(t));
	rc = 0;
	for (k = 1; k <= MAX_UPSTREAMS && rc == 0; k++) {
		snprintf(got, sizeof(got), "/d/10.0.0.%d", k);
		rc = route_add(&t, got, false, err, sizeof(err));
	}
	snprintf(got, sizeof(got), "/d/10.0.0.%d", k);
	ok(rc == 0 && routes_count(&t) == 1 &&
	    route_at(&t, 0)->nsrv == MAX_UPSTREAMS &&
	    route_add(&t, got, false, err, sizeof(err)) == -1,
	    "route_add: %d servers for one domain, not %d", MAX_UPSTREAMS,
	    MAX_UPSTREAMS + 1);
	routes_free(&t);

	/* an empty domain is not the root ("#"): no catch-all by a typo */
	memset(&t, 0, sizeof(t));
	rc = route_add(&t, "/a//b/1.1.1.1", false, err, sizeof(err));
	match_show(&t, "unrelated.test", got, sizeof(got));
	if (!ok(rc == -1 || strcmp(got, "(none)") == 0,
	    "route_add: -s \"/a//b/1.1.1.1\" does not route every name"))
		diag("route_add gave %d; unrelated.test matches \"%s\"", rc,
		    got);
	routes_free(&t);

	for (i = 0; i < sizeof(route_local_cases) /
	    sizeof(route_local_cases[0]); i++) {
		if (!routes_of(&t, route_local_cases[i].opts))
			bail("options rejected", route_local_cases[i].opts);
		query_name(&p, &q, route_local_cases[i].name,
		    route_local_cases[i].type, EDNS_DO);
		f = route_match(&t, q.qname);
		memset(&a, 0xa5, sizeof(a));
		got[0] = '\0';
		if (f >= 0 && route_at(&t, f)->kind == RULE_LOCAL) {
			route_local(route_at(&t, f), &q, &a);
			answer_show(&a, got, sizeof(got));
		}
		if (!ok(strcmp(got, route_local_cases[i].want) == 0 &&
		    answer_parses(p.b, &q, &a), "route_local: \"%s\": %s %s: "
		    "%s", route_local_cases[i].opts, route_local_cases[i].name,
		    dns_type_name(route_local_cases[i].type, err, sizeof(err)),
		    route_local_cases[i].want))
			diag("got \"%s\" (rule %d)", got, f);
		routes_free(&t);
	}
}

#define MANY_RULES	10000

static void
test_routes_many(void)
{
	struct dns_query q;
	struct routes t;
	struct pkt p;
	char spec[64], got[256], want[256], err[256];
	int i, f, bad = 0, wrong = 0;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < MANY_RULES; i++) {
		snprintf(spec, sizeof(spec), "/r%d.example/10.%d.%d.1", i,
		    i >> 8, i & 255);
		if (route_add(&t, spec, false, err, sizeof(err)) == -1 &&
		    bad++ == 0)
			diag("%s: %s", spec, err);
	}
	ok(bad == 0 && routes_count(&t) == MANY_RULES,
	    "route_add: %d rules", MANY_RULES);
	for (i = 0; i < MANY_RULES; i++) {
		snprintf(spec, sizeof(spec), "www.r%d.example", i);
		match_show(&t, spec, got, sizeof(got));
		snprintf(want, sizeof(want), "r%d.example fwd 10.%d.%d.1#53", i,
		    i >> 8, i & 255);
		if (strcmp(got, want) != 0 && wrong++ == 0)
			diag("%s: got %s", spec, got);
	}
	ok(wrong == 0, "route_match: each of %d rules matches its subdomain",
	    MANY_RULES);
	query_name(&p, &q, "r10000.example", TYPE_A, EDNS_NONE);
	f = route_match(&t, q.qname);
	ok(f == -1, "route_match: %d rules, an unknown name matches none",
	    MANY_RULES);
	route_add(&t, "/r5000.example/10.0.0.2", false, err, sizeof(err));
	match_show(&t, "r5000.example", got, sizeof(got));
	ok(routes_count(&t) == MANY_RULES &&
	    strcmp(got, "r5000.example fwd 10.19.136.1#53 10.0.0.2#53") == 0,
	    "route_add: a domain named again gains a server, no new rule");
	routes_free(&t);
	ok(routes_count(&t) == 0 && route_match(&t, q.qname) == -1,
	    "routes_free: the table is empty again");
	ok_no_leaks("route_add and routes_free");
}

/* ---- cache ------------------------------------------------------------ */

#define Q_WWW		QH " " QWWW
#define Q_WWW_DO	QH_AR1 " " QWWW " " OPT_DO
/* an SOA for example.test with the TTL and MINIMUM given in hex */
#define SOA(ttl, min)	"c010 0006 0001 " ttl " (c010 c010 00000001 " \
			"00001c20 00000e10 00093a80 " min ")"

struct cache_case {
	const char		*desc;
	const char		*query;
	const char		*answer;
	enum reply_class	 class;	/* what the answer is, checked */
	long			 life;	/* seconds served; 0: not stored */
};

static const struct cache_case cache_cases[] = {
	{ "positive, TTL 300: 300 s", Q_WWW,
	    "1234 8180 0001 0001 0000 0000 " QWWW " " A300, REPLY_POSITIVE,
	    300 },
	{ "TTLs 3600 and 300: the smallest, 300 s", Q_WWW,
	    "1234 8180 0001 0002 0000 0000 " QWWW " " A3600 " " A300,
	    REPLY_POSITIVE, 300 },
	{ "an authority NS of TTL 100 counts: 100 s", Q_WWW,
	    "1234 8180 0001 0001 0001 0000 " QWWW " " A300
	    " c010 0002 0001 00000064 (026e73c010)", REPLY_POSITIVE, 100 },
	{ "glue of TTL 50 counts: 50 s", Q_WWW,
	    "1234 8180 0001 0001 0000 0001 " QWWW " " A300
	    " 026e73c010 0001 0001 00000032 (c0000203)", REPLY_POSITIVE, 50 },
	{ "the OPT's TTL field (DO) is no TTL: 40000 s", Q_WWW_DO,
	    "1234 8180 0001 0001 0000 0001 " QWWW
	    " c00c 0001 0001 00009c40 (c0000201) " OPT_DO, REPLY_POSITIVE,
	    40000 },
	{ "TTL 100000: CACHE_MAX_TTL", Q_WWW,
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c00c 0001 0001 000186a0 (c0000201)", REPLY_POSITIVE,
	    CACHE_MAX_TTL },
	{ "NXDOMAIN, SOA TTL 60 MINIMUM 30: 30 s", Q_WWW,
	    "1234 8183 0001 0000 0001 0000 " QWWW " "
	    SOA("0000003c", "0000001e"), REPLY_NEGATIVE, 30 },
	{ "NXDOMAIN, SOA TTL 10 MINIMUM 30: 10 s", Q_WWW,
	    "1234 8183 0001 0000 0001 0000 " QWWW " "
	    SOA("0000000a", "0000001e"), REPLY_NEGATIVE, 10 },
	{ "NXDOMAIN, SOA TTL and MINIMUM 86400: CACHE_MAX_NEG", Q_WWW,
	    "1234 8183 0001 0000 0001 0000 " QWWW " "
	    SOA("00015180", "00015180"), REPLY_NEGATIVE, CACHE_MAX_NEG },
	{ "NXDOMAIN with EDNS, SOA 60/30: 30 s", Q_WWW_DO,
	    "1234 8183 0001 0000 0001 0001 " QWWW " "
	    SOA("0000003c", "0000001e") " " OPT_DO, REPLY_NEGATIVE, 30 },
	{ "NXDOMAIN without SOA: not stored", Q_WWW,
	    "1234 8183 0001 0000 0000 0000 " QWWW, REPLY_NEGATIVE, 0 },
	{ "NXDOMAIN, SOA MINIMUM 0: not stored", Q_WWW,
	    "1234 8183 0001 0000 0001 0000 " QWWW " "
	    SOA("0000003c", "00000000"), REPLY_NEGATIVE, 0 },
	{ "NODATA, SOA TTL 60 MINIMUM 30: 30 s", Q_WWW,
	    "1234 8180 0001 0000 0001 0000 " QWWW " "
	    SOA("0000003c", "0000001e"), REPLY_NEGATIVE, 30 },
	{ "NODATA, SOA TTL 10 MINIMUM 30: 10 s", Q_WWW,
	    "1234 8180 0001 0000 0001 0000 " QWWW " "
	    SOA("0000000a", "0000001e"), REPLY_NEGATIVE, 10 },
	{ "NODATA without SOA: not stored", Q_WWW,
	    "1234 8180 0001 0000 0000 0000 " QWWW, REPLY_NEGATIVE, 0 },
	{ "SERVFAIL: not stored", Q_WWW,
	    "1234 8182 0001 0000 0000 0000 " QWWW, REPLY_FAILURE, 0 },
	{ "SERVFAIL with an answer: not stored", Q_WWW,
	    "1234 8182 0001 0001 0000 0000 " QWWW " " A300, REPLY_FAILURE, 0 },
	{ "REFUSED: not stored", Q_WWW,
	    "1234 8185 0001 0000 0000 0000 " QWWW, REPLY_FAILURE, 0 },
	{ "TC with an answer: not stored", Q_WWW,
	    "1234 8380 0001 0001 0000 0000 " QWWW " " A300, REPLY_POSITIVE,
	    0 },
	{ "TC, NXDOMAIN with SOA: not stored", Q_WWW,
	    "1234 8383 0001 0000 0001 0000 " QWWW " "
	    SOA("0000003c", "0000001e"), REPLY_POSITIVE, 0 },
	{ "TTL 0: not stored", Q_WWW,
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c00c 0001 0001 00000000 (c0000201)", REPLY_POSITIVE, 0 },
	{ "TTL 0 beside TTL 300: not stored", Q_WWW,
	    "1234 8180 0001 0002 0000 0000 " QWWW " " A300
	    " c00c 0001 0001 00000000 (c0000202)", REPLY_POSITIVE, 0 },
	{ "CACHE_DATA bytes: stored", Q_WWW,
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c00c 000a 0001 0000012c (x:1186:61)", REPLY_POSITIVE, 300 },
	{ "CACHE_DATA + 1 bytes: not stored", Q_WWW,
	    "1234 8180 0001 0001 0000 0000 " QWWW
	    " c00c 000a 0001 0000012c (x:1187:61)", REPLY_POSITIVE, 0 },
};

/* What the cache's counters say now. */
static struct cache_stats
cst(const struct cache *c)
{
	struct cache_stats s;

	cache_stats(c, &s);
	return s;
}

/* A query and an answer to it, as the cache is given them. */
struct xchg {
	struct pkt	 qp, ap;
	struct dns_query q;
	struct dns_reply r;
};

/* The query spec and the answer spec; the class the answer must be. */
static void
xchg_of(struct xchg *x, const char *query, const char *answer,
    enum reply_class class)
{
	query_of(&x->qp, &x->q, query);
	enc(&x->ap, answer);
	if (dns_parse_reply(x->ap.b, x->ap.len, &x->q, &x->r) != class)
		bail("the answer is not of its class", answer);
}

/* Write x's answer from its query: the question, one A 10.0.0.v, TTL ttl. */
static void
xchg_answer(struct xchg *x, int v, uint32_t ttl, const char *what)
{
	uint8_t *b = x->ap.b;
	size_t n = x->q.qend;

	memcpy(b, x->qp.b, n);
	b[2] = 0x81;		/* QR RD, RA */
	b[3] = 0x80;
	memset(b + 4, 0, 8);
	b[5] = 1;		/* qdcount */
	b[7] = 1;		/* ancount */
	n += wire_rr(b + n, 1, ttl, 4);
	b[n++] = 10;
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = (uint8_t)v;
	x->ap.len = n;
	if (dns_parse_reply(b, n, &x->q, &x->r) != REPLY_POSITIVE)
		bail("the written answer does not parse", what);
}

/* The query for name (as query_name()) and an A 10.0.0.v answer to it. */
static void
xchg_a(struct xchg *x, const char *name, uint16_t type, int edns, int v,
    uint32_t ttl)
{
	query_name(&x->qp, &x->q, name, type, edns);
	xchg_answer(x, v, ttl, name);
}

static bool
xchg_put(struct cache *c, struct xchg *x, uint64_t now)
{
	return cache_put(c, &x->q, x->ap.b, x->ap.len, &x->r, now);
}

/* Look x's query up at now: the length, and in *v the last rdata byte. */
static size_t
xchg_get(struct cache *c, struct xchg *x, uint64_t now, int *v)
{
	static uint8_t out[DNS_MAX_UDP];
	struct dns_reply r;
	size_t n;

	n = cache_get(c, &x->q, x->qp.b, out, sizeof(out), now, &r);
	*v = n > 0 ? out[n - 1] : -1;
	return n;
}

/* Look x's query up as a last resort at now: length, *v, *ttl served. */
static size_t
xchg_stale(struct cache *c, struct xchg *x, uint64_t now, int *v,
    uint32_t *ttl)
{
	static uint8_t out[DNS_MAX_UDP];
	struct dns_reply r;
	size_t n;

	n = cache_get_stale(c, &x->q, x->qp.b, out, sizeof(out), now, &r,
	    (const uint16_t[]){ 0 }, 1);
	*v = n > 0 ? out[n - 1] : -1;
	*ttl = n >= 10 ? (uint32_t)out[n - 10] << 24 | (uint32_t)out[n - 9] <<
	    16 | (uint32_t)out[n - 8] << 8 | out[n - 7] : 0;
	return n;
}

/* The TTL of the one record of a served A answer (out, n bytes). */
static uint32_t
served_ttl(const uint8_t *out, size_t n)
{
	return n >= 10 ? (uint32_t)out[n - 10] << 24 | (uint32_t)out[n - 9] <<
	    16 | (uint32_t)out[n - 8] << 8 | out[n - 7] : 0;
}

/* --min-cache-ttl, --max-cache-ttl, --no-negcache, on a fake clock. */
static void
test_cache_ttls(void)
{
	static const uint64_t key[2] = { 1, 2 };
	static uint8_t out[DNS_MAX_UDP];
	static struct xchg x, neg;
	struct dns_reply r;
	struct cache c;
	size_t n;
	uint64_t t = 1000000;

	if (cache_init(&c, 16, 0, key) == -1)
		bail("cache_init", "");
	cache_ttls(&c, 600, 3600, false);
	xchg_a(&x, "short.example", TYPE_A, 0, 1, 60);
	ok(xchg_put(&c, &x, t), "min 600: a 60 s answer is kept");
	n = cache_get(&c, &x.q, x.qp.b, out, sizeof(out), t + 100000, &r);
	ok(n > 0 && served_ttl(out, n) == 500, "min 600: 100 s later, still "
	    "there, its TTL counting down from the clamp (%u)",
	    served_ttl(out, n));
	ok(cache_get(&c, &x.q, x.qp.b, out, sizeof(out), t + 601000, &r) ==
	    0, "min 600: gone after 600 s");
	xchg_a(&x, "long.example", TYPE_A, 0, 2, 86400);
	ok(xchg_put(&c, &x, t), "max 3600: a day's answer is kept");
	n = cache_get(&c, &x.q, x.qp.b, out, sizeof(out), t, &r);
	ok(n > 0 && served_ttl(out, n) == 3600, "max 3600: served with 3600 "
	    "(%u)", served_ttl(out, n));
	ok(cache_get(&c, &x.q, x.qp.b, out, sizeof(out), t + 3601000, &r) ==
	    0, "max 3600: gone after an hour");
	xchg_of(&neg, QH " " QWWW, "1234 8183 0001 0000 0001 0000 " QWWW " "
	    SOA_3600_60, REPLY_NEGATIVE);
	ok(xchg_put(&c, &neg, t), "a negative answer is kept");
	ok(cache_get(&c, &neg.q, neg.qp.b, out, sizeof(out), t + 59000, &r) >
	    0 && cache_get(&c, &neg.q, neg.qp.b, out, sizeof(out), t + 61000,
	    &r) == 0, "... for its SOA minimum (60 s), not raised to 600");
	cache_ttls(&c, 0, 30, false);
	ok(xchg_put(&c, &neg, t) && cache_get(&c, &neg.q, neg.qp.b, out,
	    sizeof(out), t + 31000, &r) == 0, "max 30: a negative too: 30 s");
	cache_ttls(&c, 0, 3600, true);
	ok(!xchg_put(&c, &neg, t), "--no-negcache: a negative is not kept");
	cache_free(&c);
	{
		static struct xchg big;
		uint8_t *b;

		xchg_a(&big, "cap.example", TYPE_A, 0, 3, 7200);
		b = big.ap.b;
		dns_cap_ttls(b, big.ap.len, 300);
		ok(served_ttl(b, big.ap.len) == 300, "dns_cap_ttls: 7200 to 300");
		dns_cap_ttls(b, big.ap.len, 600);
		ok(served_ttl(b, big.ap.len) == 300, "dns_cap_ttls: 300 stays "
		    "under 600");
	}
	ok_no_leaks("cache_ttls");
}

/* RFC 8767: answers kept past expiry, served only as a last resort. */
static void
test_cache_stale(void)
{
	static struct xchg a, b, cc, short_ttl;
	struct cache c;
	uint32_t ttl;
	int v;

	xchg_a(&a, "a.test", TYPE_A, EDNS_NONE, 1, 300);
	xchg_a(&b, "b.test", TYPE_A, EDNS_NONE, 2, 300);
	xchg_a(&cc, "c.test", TYPE_A, EDNS_NONE, 3, 300);
	xchg_a(&short_ttl, "s.test", TYPE_A, EDNS_NONE, 4, 10);

	cache_init(&c, 4, 0, test_key);
	cache_stale(&c, 100);
	xchg_put(&c, &a, 0);
	ok(xchg_get(&c, &a, 299999, &v) != 0 && !cache_stale_seen(&c),
	    "stale: fresh until its TTL runs out");
	ok(xchg_get(&c, &a, 300000, &v) == 0 && cache_stale_seen(&c),
	    "stale: expired: a miss that says a stale answer is kept");
	ok(xchg_stale(&c, &a, 300000, &v, &ttl) != 0 && v == 1 &&
	    ttl == STALE_TTL, "cache_get_stale: served with TTL %d",
	    STALE_TTL);
	ok(xchg_stale(&c, &a, 399999, &v, &ttl) != 0 && v == 1,
	    "cache_get_stale: until 100 s past expiry");
	ok(xchg_get(&c, &a, 399999, &v) == 0, "stale: never a normal hit");
	ok(xchg_stale(&c, &a, 400000, &v, &ttl) == 0, "cache_get_stale: not "
	    "after the window");
	ok(xchg_get(&c, &a, 400000, &v) == 0 && !cache_stale_seen(&c) && cst(&c).entries == 0,
	    "stale: past the window, dropped on lookup");

	xchg_put(&c, &short_ttl, 0);
	ok(xchg_stale(&c, &short_ttl, 20000, &v, &ttl) != 0 && ttl == 10,
	    "cache_get_stale: an original TTL under %d is kept", STALE_TTL);
	ok(xchg_stale(&c, &short_ttl, 5000, &v, &ttl) != 0 && ttl == 5,
	    "cache_get_stale: a fresh entry is served aged, as by cache_get");

	/* the list changed: every entry expired at once, kept as stale */
	xchg_put(&c, &b, 1000);
	cache_expire(&c);
	ok(xchg_get(&c, &b, 2000, &v) == 0 && cache_stale_seen(&c),
	    "cache_expire: a fresh entry is expired at once");
	ok(xchg_stale(&c, &b, 2000, &v, &ttl) != 0 && v == 2 &&
	    ttl == STALE_TTL, "cache_expire: ... and served as stale");
	xchg_put(&c, &b, 3000);
	ok(xchg_get(&c, &b, 3000, &v) != 0 && v == 2, "cache_expire: an "
	    "answer stored after it is fresh");
	cache_free(&c);

	/* stale entries are evicted before fresh ones */
	cache_init(&c, 2, 0, test_key);
	cache_stale(&c, 86400);
	xchg_a(&a, "a.test", TYPE_A, EDNS_NONE, 1, 1);
	xchg_put(&c, &a, 0);
	xchg_put(&c, &b, 1);
	ok(xchg_get(&c, &a, 500, &v) != 0, "stale eviction: a used last");
	ok(xchg_get(&c, &a, 1500, &v) == 0 && cache_stale_seen(&c),
	    "stale eviction: then a is stale");
	xchg_put(&c, &cc, 1600);
	ok(xchg_get(&c, &b, 1700, &v) != 0 && v == 2 &&
	    xchg_stale(&c, &a, 1700, &v, &ttl) == 0,
	    "stale eviction: c evicted the stale a, not the older fresh b");
	cache_free(&c);

	cache_init(&c, 2, 0, test_key);
	xchg_put(&c, &b, 0);
	ok(xchg_get(&c, &b, 300000, &v) == 0 && !cache_stale_seen(&c) &&
	    xchg_stale(&c, &b, 300000, &v, &ttl) == 0,
	    "cache_stale 0 (the default): nothing kept past expiry");
	cache_free(&c);
}

/* ---- the cache's store: blocks, eviction by bytes, fragmentation -------- */

/* The query spec and answer spec of an entry whose cost README gives. */
static const struct {
	const char	*desc, *query, *answer;
	size_t		 len, bytes;	/* the answer's length, arena bytes */
} entry_costs[] = {
	{ "an A answer", "1234 0100 0001 0000 0000 0000 n:www.example.com "
	    "0001 0001", "1234 8180 0001 0001 0000 0000 n:www.example.com "
	    "0001 0001 c00c 0001 0001 0000012c (0a000001)", 49, 64 },
	{ "an AAAA answer", "1234 0100 0001 0000 0000 0000 n:www.example.com "
	    "001c 0001", "1234 8180 0001 0001 0000 0000 n:www.example.com "
	    "001c 0001 c00c 001c 0001 0000012c "
	    "(20010db8000000000000000000000001)", 61, 64 },
	{ "NXDOMAIN with an SOA", "1234 0100 0001 0000 0000 0000 "
	    "n:nosuch.example.com 0001 0001", "1234 8183 0001 0000 0001 0000 "
	    "n:nosuch.example.com 0001 0001 c013 0006 0001 00000384 (03 6e7331 "
	    "c013 0a 686f73746d6173746572 c013 00000001 00000e10 00000258 "
	    "00093a80 0000012c)", 87, 128 },
	{ "a TXT answer of 1000 bytes of text", "1234 0100 0001 0000 0000 0000 "
	    "n:www.example.com 0010 0001", "1234 8180 0001 0001 0000 0000 "
	    "n:www.example.com 0010 0001 c00c 0010 0001 0000012c (f9 x:249:61 "
	    "f9 x:249:62 f9 x:249:63 f9 x:249:64)", 1045, 1088 },
};

/*
 * x: the query for "sNNNN.test" (v, 4 digits) and an answer of one NULL
 * record of rdlen bytes v: 40 + rdlen bytes.
 */
static void
xchg_sized(struct xchg *x, int v, size_t rdlen, uint32_t ttl)
{
	char spec[256];

	snprintf(spec, sizeof(spec), "1234 0100 0001 0000 0000 0000 "
	    "n:s%04d.test 0001 0001", v);
	query_of(&x->qp, &x->q, spec);
	snprintf(spec, sizeof(spec), "1234 8180 0001 0001 0000 0000 "
	    "n:s%04d.test 0001 0001 c00c 000a 0001 %08x (x:%zu:%02x)", v, ttl,
	    rdlen, (unsigned)v & 0xff);
	enc(&x->ap, spec);
	if (dns_parse_reply(x->ap.b, x->ap.len, &x->q, &x->r) != REPLY_POSITIVE)
		bail("the sized answer does not parse", spec);
}

/* Put x at now and get it back at once: the same bytes, exactly? */
static bool
xchg_round_trip(struct cache *c, struct xchg *x, uint64_t now)
{
	struct dns_reply r;
	uint8_t *out;
	size_t n;

	if (!xchg_put(c, x, now))
		return false;
	out = out_guard(x->ap.len);
	n = cache_get(c, &x->q, x->qp.b, out, x->ap.len, now, &r);
	return n == x->ap.len && memcmp(out, x->ap.b, n) == 0;
}

static void
test_cache_costs(void)
{
	static struct xchg x;
	struct cache c;
	size_t i;

	for (i = 0; i < sizeof(entry_costs) / sizeof(entry_costs[0]); i++) {
		query_of(&x.qp, &x.q, entry_costs[i].query);
		enc(&x.ap, entry_costs[i].answer);
		dns_parse_reply(x.ap.b, x.ap.len, &x.q, &x.r);
		cache_init(&c, 1000, 0, test_key);
		if (!ok(x.ap.len == entry_costs[i].len &&
		    xchg_round_trip(&c, &x, 0) &&
		    cst(&c).bytes == entry_costs[i].bytes,
		    "cache_put: %s (%zu bytes) takes %zu arena bytes",
		    entry_costs[i].desc, entry_costs[i].len,
		    entry_costs[i].bytes))
			diag("answer %zu bytes, arena bytes %zu", x.ap.len,
			    cst(&c).bytes);
		cache_free(&c);
	}
	ok(sizeof(struct cache_entry) == 48,
	    "cache: an entry's fixed part is 48 bytes (%zu)",
	    sizeof(struct cache_entry));
	cache_init(&c, 1000, 0, test_key);
	ok(cst(&c).arena == 1000 * CACHE_TYPICAL && cst(&c).memory <= 330000,
	    "cache_init: -c 1000 gets %d arena bytes, %zu in all", 1000 *
	    CACHE_TYPICAL, cst(&c).memory);
	cache_free(&c);
	cache_init(&c, 2, 0, test_key);
	ok(cst(&c).arena == CACHE_ARENA_MIN,
	    "cache_init: -c 2 still gets %d arena bytes", CACHE_ARENA_MIN);
	cache_free(&c);
}

/* Answers of every chain length, at and around each block boundary. */
static void
test_cache_sizes(void)
{
	static struct xchg x, y, z;
	static char name[300], upper[300];
	struct cache c;
	size_t blocks, len, want, rdlen, k;
	int bad = 0, n = 0, d, v;

	cache_init(&c, 4, 0, test_key);
	for (blocks = 1; blocks * CACHE_BLOCK <= CACHE_DATA + 2 + CACHE_BLOCK;
	    blocks++) {
		for (d = -1; d <= 1; d++) {
			/* the chain holds the answer and one TTL offset */
			len = blocks * CACHE_BLOCK + (size_t)(long)d - 2;
			if (len < 41 || len > CACHE_DATA)
				continue;
			rdlen = len - 40;
			xchg_sized(&x, (int)blocks, rdlen, 300);
			want = (len + 2 + CACHE_BLOCK - 1) / CACHE_BLOCK;
			n++;
			if (!xchg_round_trip(&c, &x, 0) ||
			    cst(&c).bytes != want * CACHE_BLOCK) {
				if (bad++ == 0)
					diag("%zu bytes: arena bytes %zu, "
					    "want %zu", len, cst(&c).bytes,
					    want * CACHE_BLOCK);
			}
			cache_flush(&c);
		}
	}
	ok(bad == 0 && n > 50, "cache_put, cache_get: %d answers of 1 to %d "
	    "blocks, each side of every boundary: the same bytes back", n,
	    (CACHE_DATA + 2 + CACHE_BLOCK - 1) / CACHE_BLOCK);

	/* names that do not fit the first block are compared across blocks */
	for (d = 40; d <= 190; d += 50) {
		snprintf(name, sizeof(name), "%.*s.long.test", d,
		    "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu."
		    "vwxyzabcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmno."
		    "pqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789abcdefghi."
		    "jklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789ab.");
		if (name[d - 1] == '.')
			memmove(name + d - 1, name + d, strlen(name + d) + 1);
		xchg_a(&x, name, TYPE_A, EDNS_NONE, 7, 300);
		for (k = 0; name[k] != '\0'; k++)
			upper[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ?
			    name[k] - 32 : name[k]);
		upper[k] = '\0';
		xchg_a(&y, upper, TYPE_A, EDNS_NONE, 7, 300);
		name[5] ^= 1;			/* one letter off */
		xchg_a(&z, name, TYPE_A, EDNS_NONE, 8, 300);
		if (!ok(xchg_put(&c, &x, 0) &&
		    xchg_get(&c, &y, 1, &v) == x.ap.len && v == 7 &&
		    xchg_get(&c, &z, 1, &v) == 0,
		    "cache_get: a %d-byte name, in any case, and not one "
		    "letter off", (int)x.q.qname_len))
			diag("name %s", upper);
		cache_flush(&c);
	}
	cache_free(&c);
}

/* Eviction by bytes: a large answer pushes out as many small ones as it must. */
static void
test_cache_bytes(void)
{
	static struct xchg a[64], big, big2;
	struct cache c;
	int i, v, hits = 0;

	cache_init(&c, 1000, 4096, test_key);	/* 64 blocks */
	for (i = 0; i < 64; i++) {
		xchg_sized(&a[i], i, 4, 300);	/* 44 + 2 bytes: 1 block */
		xchg_put(&c, &a[i], (uint64_t)i);
	}
	ok(cst(&c).entries == 64 && cst(&c).bytes == 4096 &&
	    cst(&c).evictions == 0,
	    "cache_put: 64 one-block answers fill a 4 KiB arena");
	xchg_sized(&big, 1000, 1000, 300);	/* 1040 + 2 bytes: 17 blocks */
	ok(xchg_put(&c, &big, 100) && cst(&c).entries == 48 &&
	    cst(&c).evictions == 17 && cst(&c).bytes == 4096,
	    "cache_put: a 17-block answer evicts the 17 least recently used");
	for (i = 0; i < 64; i++)
		if (xchg_get(&c, &a[i], 101, &v) != 0)
			hits += i >= 17;
		else
			hits -= i >= 17 ? 100 : 0;
	ok(hits == 47 && xchg_get(&c, &big, 101, &v) != 0 && v == (1000 & 0xff),
	    "cache_get: the first 17 are gone, the other 47 and the large one "
	    "are there");
	/* those gets put a[17] at the end of the use order, big at the head */
	xchg_sized(&big2, 1001, 1100, 300);	/* 1140 + 2 bytes: 18 blocks */
	ok(xchg_put(&c, &big2, 102) && cst(&c).evictions == 17 + 18 &&
	    xchg_get(&c, &a[34], 103, &v) == 0 &&
	    xchg_get(&c, &a[35], 103, &v) != 0 &&
	    xchg_get(&c, &big, 103, &v) != 0 && cst(&c).bytes == 4096,
	    "cache_put: 18 blocks wanted: the 18 least recently used go");
	cache_flush(&c);
	ok(cst(&c).entries == 0 && cst(&c).bytes == 0 &&
	    xchg_round_trip(&c, &big, 200),
	    "cache_flush: the arena is empty and used again");
	cache_free(&c);
}

/* Stale entries hold blocks until evicted, and go first. */
static void
test_cache_stale_bytes(void)
{
	static struct xchg a, b, cc, d;
	struct cache c;
	int v;

	cache_init(&c, 10, 4096, test_key);
	cache_stale(&c, 1000);
	xchg_sized(&b, 2, 1000, 300);		/* 17 blocks each */
	xchg_sized(&cc, 3, 1000, 300);
	xchg_sized(&a, 1, 1000, 1);
	xchg_sized(&d, 4, 1000, 300);
	xchg_put(&c, &b, 0);
	xchg_put(&c, &cc, 1);
	xchg_put(&c, &a, 2);			/* the most recent, TTL 1 */
	ok(xchg_get(&c, &a, 2000, &v) == 0 && cache_stale_seen(&c) &&
	    cst(&c).bytes == 51 * CACHE_BLOCK,
	    "cache_get: expired within the stale window: kept, blocks held");
	ok(xchg_put(&c, &d, 2001) && cst(&c).evictions == 1 &&
	    xchg_get(&c, &b, 2002, &v) != 0 && xchg_get(&c, &cc, 2002, &v) != 0,
	    "cache_put: the stale one is evicted first, not the older fresh "
	    "ones");
	cache_free(&c);

	cache_init(&c, 10, 4096, test_key);
	cache_stale(&c, 1);
	xchg_put(&c, &a, 0);
	ok(xchg_get(&c, &a, 2001, &v) == 0 && !cache_stale_seen(&c) &&
	    cst(&c).entries == 0 && cst(&c).bytes == 0,
	    "cache_get: past the stale window: dropped, its blocks freed");
	cache_free(&c);
}

/*
 * Fragmentation: random puts and gets of answers of 1 to 18 blocks against
 * a model of the rule (evict least recently used until an entry and its
 * blocks are free).  Any free block serves any entry, so the cache must
 * keep exactly what the model keeps.
 */
#define FRAG_NAMES	48
#define FRAG_STEPS	20000

static void
test_cache_fragments(void)
{
	static struct xchg x[FRAG_NAMES];
	int order[FRAG_NAMES], n = 0, blocks[FRAG_NAMES], used = 0;
	struct cache c;
	uint32_t seed = 12345;
	int step, i, k, v, got, bad = 0, least = 99, most = 0;
	bool present;

	for (i = 0; i < FRAG_NAMES; i++) {
		seed = seed * 1103515245 + 12345;
		xchg_sized(&x[i], i, 4 + (seed >> 16) % 1100, 86400);
		blocks[i] = (int)((x[i].ap.len + 2 + CACHE_BLOCK - 1) /
		    CACHE_BLOCK);
		least = blocks[i] < least ? blocks[i] : least;
		most = blocks[i] > most ? blocks[i] : most;
	}
	cache_init(&c, 16, 8192, test_key);	/* 16 entries, 128 blocks */
	for (step = 0; step < FRAG_STEPS && bad == 0; step++) {
		seed = seed * 1103515245 + 12345;
		i = (int)((seed >> 16) % FRAG_NAMES);
		for (k = 0; k < n && order[k] != i; k++)
			;
		present = k < n;
		if (present) {			/* either way, to the head */
			memmove(order + 1, order, (size_t)k * sizeof(order[0]));
			order[0] = i;
		}
		if (seed & 0x10000000) {		/* a get */
			got = xchg_get(&c, &x[i], (uint64_t)step, &v) != 0;
			if (got != present || (got && v != i))
				bad++;
			continue;
		}
		if (present) {			/* a put replaces it */
			memmove(order, order + 1, (size_t)(n - 1) *
			    sizeof(order[0]));
			n--;
			used -= blocks[i];
		}
		while (n > 0 && (n == 16 || 128 - used < blocks[i]))
			used -= blocks[order[--n]];
		memmove(order + 1, order, (size_t)n * sizeof(order[0]));
		order[0] = i;
		n++;
		used += blocks[i];
		if (!xchg_put(&c, &x[i], (uint64_t)step))
			bad++;
		if (cst(&c).entries != n ||
		    cst(&c).bytes != (size_t)used * CACHE_BLOCK)
			bad++;
	}
	if (!ok(bad == 0, "cache: %d random puts and gets of answers of %d to "
	    "%d blocks keep what the model keeps, block for block", step,
	    least, most))
		diag("step %d: entries %d (model %d), bytes %zu (model %d)",
		    step, cst(&c).entries, n, cst(&c).bytes,
		    used * CACHE_BLOCK);
	cache_free(&c);
}

/* The cache counters and size as "n N hits H misses M inserts I evict E". */
static void
cache_show(const struct cache *c, char *buf, size_t size)
{
	snprintf(buf, size, "n %d hits %llu misses %llu inserts %llu "
	    "evictions %llu", cst(c).entries, (unsigned long long)cst(c).hits,
	    (unsigned long long)cst(c).misses,
	    (unsigned long long)cst(c).inserts,
	    (unsigned long long)cst(c).evictions);
}

static void
test_cache_cases(void)
{
	static struct xchg x;
	static uint8_t out[DNS_MAX_UDP];
	const struct cache_case *t;
	struct dns_reply r;
	struct cache c;
	uint64_t end;
	size_t i, hit, miss;
	bool stored;

	for (i = 0; i < sizeof(cache_cases) / sizeof(cache_cases[0]); i++) {
		t = &cache_cases[i];
		xchg_of(&x, t->query, t->answer, t->class);
		if (cache_init(&c, 4, 0, test_key) != 0)
			bail("cache_init", t->desc);
		stored = cache_put(&c, &x.q, x.ap.b, x.ap.len, &x.r, 0);
		if (t->life == 0) {
			hit = cache_get(&c, &x.q, x.qp.b, out, sizeof(out), 0,
			    &r);
			if (!ok(!stored && cst(&c).entries == 0 && hit == 0,
			    "cache_put: %s", t->desc))
				diag("put gave %d, n %d, get %zu", (int)stored,
				    cst(&c).entries, hit);
			cache_free(&c);
			continue;
		}
		end = (uint64_t)t->life * 1000;
		hit = cache_get(&c, &x.q, x.qp.b, out, sizeof(out), end - 1,
		    &r);
		miss = cache_get(&c, &x.q, x.qp.b, out, sizeof(out), end, &r);
		/* served without the upstream's OPT: dns_finish() adds one */
		if (!ok(stored && hit == (x.r.opt != 0 ? x.r.opt : x.ap.len) &&
		    miss == 0 && cst(&c).entries == 0,
		    "cache_put: %s (hit at %llu ms, miss at %llu)", t->desc,
		    (unsigned long long)end - 1, (unsigned long long)end))
			diag("put gave %d, get %zu then %zu, n %d",
			    (int)stored, hit, miss, cst(&c).entries);
		cache_free(&c);
	}
}

/* The TTLs of an answer's records in order, "opt:HEX" for an OPT. */
static void
ttl_show(const uint8_t *b, size_t len, char *buf, size_t size)
{
	uint8_t name[DNS_MAX_NAME];
	struct dns_cursor c;
	unsigned n, i;
	uint32_t ttl;
	uint16_t type, rdlen;
	size_t o = 0;

	buf[0] = '\0';
	dns_cursor_init(&c, b, len);
	c.pos = 4;
	dns_get_u16(&c);
	n = dns_get_u16(&c);
	n += dns_get_u16(&c);
	n += dns_get_u16(&c);
	dns_get_name(&c, name);
	dns_get_u32(&c);
	for (i = 0; i < n && c.err == NULL && o < size; i++) {
		dns_get_name(&c, name);
		type = dns_get_u16(&c);
		dns_get_u16(&c);
		ttl = dns_get_u32(&c);
		rdlen = dns_get_u16(&c);
		c.pos += rdlen;
		o += (size_t)snprintf(buf + o, size - o, type == TYPE_OPT ?
		    "%sopt:%08x" : "%s%u", i ? " " : "", ttl);
	}
	if (c.err != NULL && o < size)
		snprintf(buf + o, size - o, " (%s)", c.err);
}

/* An answer to www.example.test A with four records and an OPT; TTLs. */
#define HIT_ANSWER	"%04x 8180 0001 0002 0001 0002 n:%s 0001 0001 " \
			"c00c 0001 0001 %08x (c0000201) " \
			"c00c 0001 0001 %08x (c0000202) " \
			"c010 0002 0001 %08x (026e73c010) " \
			"026e73c010 0001 0001 %08x (c0000203) " OPT_DO

static void
test_cache_hit(void)
{
	static struct pkt q1, q2, ans, want;
	/* 74 A records fill CACHE_DATA; CACHE_TTLS covers all that fit */
	static const int nrr[] = { 1, 23, 24, 25, 60, 74 };
	static char got[1024], want_ttls[1024];
	struct dns_query dq1, dq2;
	struct dns_reply r, r2;
	struct cache c;
	char spec[1024];
	uint8_t *out;
	size_t n, k, o;
	int i;

	query_of(&q1, &dq1, "1234 0100 0001 0000 0000 0001 "
	    "n:www.Example.test 0001 0001 " OPT_DO);
	query_of(&q2, &dq2, "beef 0100 0001 0000 0000 0001 "
	    "n:WWW.eXAMPLE.TEST 0001 0001 " OPT_DO);
	snprintf(spec, sizeof(spec), HIT_ANSWER, 0x1234u, "www.Example.test",
	    300u, 300u, 300u, 300u);
	enc(&ans, spec);
	dns_parse_reply(ans.b, ans.len, &dq1, &r);
	cache_init(&c, 8, 0, test_key);
	ok(cache_put(&c, &dq1, ans.b, ans.len, &r, 0) && cst(&c).entries == 1 &&
	    cst(&c).inserts == 1, "cache_put: a positive answer, TTL 300, at 0");

	/* 100.5 s later, another ID and spelling: 200 s left everywhere */
	out = out_guard(ans.len);
	n = cache_get(&c, &dq2, q2.b, out, ans.len, 100500, &r2);
	snprintf(spec, sizeof(spec), HIT_ANSWER, 0xbeefu, "WWW.eXAMPLE.TEST",
	    200u, 200u, 200u, 200u);
	enc(&want, spec);
	ttl_show(out, n, got, sizeof(got));
	if (!ok(n == want.mark[0] && memcmp(out, want.b, 10) == 0 &&
	    u16_at(out, 10) == u16_at(want.b, 10) - 1 &&
	    memcmp(out + 12, want.b + 12, n - 12) == 0,
	    "cache_get: at 100500 ms: the new ID and spelling, every TTL "
	    "200, no OPT (the client's is added by dns_finish())"))
		diag("got %zu bytes, id %04x, TTLs %s", n, u16_at(out, 0), got);
	if (!ok(n > 0 && r2.qend == 34 && r2.opt == 0 &&
	    r2.rcode == RCODE_NOERROR,
	    "cache_get: *r gives qend, no OPT and RCODE for dns_finish()"))
		diag("got qend %u opt %u (OPT at %zu) rcode %d", r2.qend,
		    r2.opt, want.mark[0], r2.rcode);
	/* served again later: the stored copy was not aged by serving it */
	n = cache_get(&c, &dq1, q1.b, out, ans.len, 200500, &r2);
	snprintf(spec, sizeof(spec), HIT_ANSWER, 0x1234u, "www.Example.test",
	    100u, 100u, 100u, 100u);
	enc(&want, spec);
	ttl_show(out, n, got, sizeof(got));
	if (!ok(n == want.mark[0] && memcmp(out, want.b, 10) == 0 &&
	    memcmp(out + 12, want.b + 12, n - 12) == 0,
	    "cache_get: the stored bytes keep their TTLs: at 200500 ms, 100"))
		diag("got %zu bytes, TTLs %s", n, got);
	ok(cst(&c).hits == 2 && cst(&c).misses == 0, "cache_get: two hits counted");
	cache_free(&c);

	/* TTLs that differ: each counts down, the smallest ends it */
	snprintf(spec, sizeof(spec), HIT_ANSWER, 0x1234u, "www.Example.test",
	    300u, 3600u, 1000u, 400u);
	enc(&ans, spec);
	dns_parse_reply(ans.b, ans.len, &dq1, &r);
	cache_init(&c, 8, 0, test_key);
	cache_put(&c, &dq1, ans.b, ans.len, &r, 0);
	out = out_guard(ans.len);
	n = cache_get(&c, &dq1, q1.b, out, ans.len, 100500, &r2);
	ttl_show(out, n, got, sizeof(got));
	if (!ok(strcmp(got, "200 3500 900 300") == 0,
	    "cache_get: TTLs 300 3600 1000 400 at 100500 ms: 200 3500 900 "
	    "300"))
		diag("got %s", got);
	n = cache_get(&c, &dq1, q1.b, out, ans.len, 299999, &r2);
	ttl_show(out, n, got, sizeof(got));
	if (!ok(strcmp(got, "1 3301 701 101") == 0,
	    "cache_get: at 299999 ms: still served, 1 3301 701 101"))
		diag("got %zu bytes, TTLs %s", n, got);
	n = cache_get(&c, &dq1, q1.b, out, ans.len, 300000, &r2);
	ok(n == 0 && cst(&c).entries == 0 && cst(&c).misses == 1 && cst(&c).hits == 2,
	    "cache_get: at 300000 ms: a miss, and the entry freed");
	ok(cache_put(&c, &dq1, ans.b, ans.len, &r, 300000) && cst(&c).entries == 1,
	    "cache_put: the freed entry is used again");
	cache_free(&c);

	/* few records, and as many as fit: every TTL counts down */
	query_of(&q1, &dq1, QH_AR1 " " QWWW " " OPT_DO);
	for (k = 0; k < sizeof(nrr) / sizeof(nrr[0]); k++) {
		big_reply(&ans, nrr[k], true, " " OPT_DO);
		dns_parse_reply(ans.b, ans.len, &dq1, &r);
		cache_init(&c, 2, 0, test_key);
		cache_put(&c, &dq1, ans.b, ans.len, &r, 0);
		out = out_guard(ans.len);
		n = cache_get(&c, &dq1, q1.b, out, ans.len, 100500, &r2);
		ttl_show(out, n, got, sizeof(got));
		o = 0;
		for (i = 0; i < nrr[k]; i++)
			o += (size_t)snprintf(want_ttls + o,
			    sizeof(want_ttls) - o, "%s200", i > 0 ? " " : "");
		if (!ok(n == ans.len - 11 && strcmp(got, want_ttls) == 0,
		    "cache_get: %d records of TTL 300 at 100500 ms: each 200",
		    nrr[k]))
			diag("got %zu bytes, TTLs %s", n, got);
		cache_free(&c);
	}
}

static const struct {
	const char	*desc;
	const char	*name;
	uint16_t	 type;
	int		 edns;
	const char	*spec;	/* or, when not NULL, the whole query */
} cache_keys[] = {
	{ "no EDNS", "www.example.test", TYPE_A, EDNS_NONE, NULL },
	{ "EDNS without DO", "www.example.test", TYPE_A, EDNS_PLAIN, NULL },
	{ "EDNS with DO", "www.example.test", TYPE_A, EDNS_DO, NULL },
	{ "CD", NULL, 0, 0, "1234 0110 0001 0000 0000 0000 " QWWW },
	{ "CD and DO", NULL, 0, 0,
	    "1234 0110 0001 0000 0000 0001 " QWWW " " OPT_DO },
	{ "RD clear", NULL, 0, 0, "1234 0000 0001 0000 0000 0000 " QWWW },
	{ "RD clear and CD", NULL, 0, 0, "1234 0010 0001 0000 0000 0000 " QWWW },
	{ "AAAA", "www.example.test", TYPE_AAAA, EDNS_NONE, NULL },
	{ "MX", "www.example.test", TYPE_MX, EDNS_NONE, NULL },
	{ "class CH", NULL, 0, 0, QH " n:www.example.test 0001 0003" },
	{ "another name", "www2.example.test", TYPE_A, EDNS_NONE, NULL },
	{ "a name one label longer", "a.www.example.test", TYPE_A,
	    EDNS_NONE, NULL },
};
#define N_KEYS		(sizeof(cache_keys) / sizeof(cache_keys[0]))

/* The query of cache_keys[k] and an answer of 10.0.0.(k + 1). */
static void
xchg_key(struct xchg *x, size_t k)
{
	if (cache_keys[k].spec == NULL) {
		xchg_a(x, cache_keys[k].name, cache_keys[k].type,
		    cache_keys[k].edns, (int)k + 1, 300);
		return;
	}
	query_of(&x->qp, &x->q, cache_keys[k].spec);
	xchg_answer(x, (int)k + 1, 300, cache_keys[k].spec);
}

static void
test_cache_keys(void)
{
	static struct xchg x[N_KEYS];
	struct cache c;
	size_t k, j;
	int v, bad;

	for (k = 0; k < N_KEYS; k++)
		xchg_key(&x[k], k);

	/* one variant stored: only its own query hits it */
	for (k = 0; k < N_KEYS; k++) {
		cache_init(&c, 16, 0, test_key);
		xchg_put(&c, &x[k], 0);
		bad = 0;
		for (j = 0; j < N_KEYS; j++) {
			if ((xchg_get(&c, &x[j], 1000, &v) != 0) != (j == k) &&
			    bad++ == 0)
				diag("stored %s; %s %s", cache_keys[k].desc,
				    cache_keys[j].desc, j == k ? "missed" :
				    "hit");
		}
		ok(bad == 0, "cache: an entry for a query with %s is hit by "
		    "that query only", cache_keys[k].desc);
		cache_free(&c);
	}

	/* all stored: each query gets its own answer */
	cache_init(&c, 16, 0, test_key);
	for (k = 0; k < N_KEYS; k++)
		xchg_put(&c, &x[k], 0);
	bad = 0;
	for (k = 0; k < N_KEYS; k++) {
		if ((xchg_get(&c, &x[k], 1000, &v) == 0 || v != (int)k + 1) &&
		    bad++ == 0)
			diag("%s: got answer %d", cache_keys[k].desc, v);
	}
	ok(bad == 0 && cst(&c).entries == (int)N_KEYS, "cache: %zu variants of one "
	    "question are %zu entries, each served its own answer", N_KEYS,
	    N_KEYS);
	cache_free(&c);
}

static void
test_cache_lru(void)
{
	static struct xchg a, b, cc, d, e, a2;
	struct cache c;
	char got[256];
	int v, va, vb, vc, vd, ve;

	xchg_a(&a, "a.test", TYPE_A, EDNS_NONE, 1, 300);
	xchg_a(&b, "b.test", TYPE_A, EDNS_NONE, 2, 300);
	xchg_a(&cc, "c.test", TYPE_A, EDNS_NONE, 3, 300);
	xchg_a(&d, "d.test", TYPE_A, EDNS_NONE, 4, 300);
	xchg_a(&e, "e.test", TYPE_A, EDNS_NONE, 5, 300);

	cache_init(&c, 3, 0, test_key);
	ok(xchg_put(&c, &a, 0) && xchg_put(&c, &b, 1) && xchg_put(&c, &cc, 2)
	    && cst(&c).entries == 3 && cst(&c).evictions == 0, "cache_put: a, b, c in a cache of "
	    "3");
	ok(xchg_get(&c, &a, 3, &v) != 0 && v == 1, "cache_get: a hits");
	ok(xchg_put(&c, &d, 4) && cst(&c).entries == 3 && cst(&c).evictions == 1,
	    "cache_put: d evicts one entry");
	ok(xchg_get(&c, &b, 5, &v) == 0, "cache_get: b, least recently used, "
	    "was the one evicted");
	ok(xchg_get(&c, &a, 6, &va) != 0 && xchg_get(&c, &cc, 7, &vc) != 0 &&
	    xchg_get(&c, &d, 8, &vd) != 0 && va == 1 && vc == 3 && vd == 4,
	    "cache_get: a, c and d hit");
	cache_show(&c, got, sizeof(got));
	if (!ok(strcmp(got, "n 3 hits 4 misses 1 inserts 4 evictions 1") == 0,
	    "cache: counters after a, b, c, get a, d, get b, a, c, d"))
		diag("got %s", got);
	ok(xchg_put(&c, &e, 9) && xchg_get(&c, &a, 10, &v) == 0 &&
	    xchg_get(&c, &cc, 11, &vc) != 0 && xchg_get(&c, &d, 12, &vd) != 0 &&
	    xchg_get(&c, &e, 13, &ve) != 0,
	    "cache_put: e evicts a, now the least recently used");

	/* flush: empty, counters kept, usable again */
	cache_show(&c, got, sizeof(got));
	cache_flush(&c);
	ok(cst(&c).entries == 0 && cst(&c).hits == 7 && cst(&c).misses == 2 && cst(&c).inserts == 5 &&
	    cst(&c).evictions == 2, "cache_flush: empty, counters kept (%s)", got);
	ok(xchg_get(&c, &cc, 14, &v) == 0 && xchg_get(&c, &d, 15, &v) == 0 &&
	    xchg_get(&c, &e, 16, &v) == 0 && cst(&c).misses == 5,
	    "cache_get: after a flush, c, d and e miss");
	ok(xchg_put(&c, &a, 17) && xchg_put(&c, &b, 18) &&
	    xchg_put(&c, &cc, 19) && xchg_put(&c, &d, 20) && cst(&c).entries == 3 &&
	    cst(&c).evictions == 3 && xchg_get(&c, &a, 21, &v) == 0 &&
	    xchg_get(&c, &b, 22, &vb) != 0 && xchg_get(&c, &d, 23, &vd) != 0 &&
	    vb == 2 && vd == 4,
	    "cache: after a flush, filled again, the oldest evicted");
	cache_free(&c);

	/* the same question again replaces the entry, in any spelling */
	cache_init(&c, 3, 0, test_key);
	xchg_a(&a2, "A.Test", TYPE_A, EDNS_NONE, 9, 600);
	ok(xchg_put(&c, &a, 0) && xchg_put(&c, &a2, 1) && cst(&c).entries == 1 &&
	    cst(&c).inserts == 2 && cst(&c).evictions == 0 &&
	    xchg_get(&c, &a, 2, &v) != 0 && v == 9,
	    "cache_put: the same question twice: one entry, the newer answer");
	ok(xchg_get(&c, &a, 450000, &v) != 0,
	    "cache_put: the newer answer's TTL (600) holds");
	cache_free(&c);

	/* size 0: off */
	ok(cache_init(&c, 0, 0, test_key) == 0 && !xchg_put(&c, &a, 0) &&
	    xchg_get(&c, &a, 0, &v) == 0 && cst(&c).entries == 0,
	    "cache: size 0: put returns false, get misses");
	cache_flush(&c);
	cache_free(&c);
	ok_no_leaks("cache_init and cache_free");
}

/* ---- test/unit --resolv FILE ------------------------------------------ */

static int
resolv_file(const char *path)
{
	char one[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	struct resolv_conf rc;
	uint8_t *buf = guard_end - guard_room;
	size_t len = 0;
	ssize_t n;
	int fd, i;

	if ((fd = open(path, O_RDONLY)) == -1) {
		perror(path);
		return 2;
	}
	while (len <= RESOLV_MAX_FILE) {
		n = read(fd, buf + len, guard_room - len);
		if (n == -1) {
			perror(path);
			close(fd);
			return 2;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == guard_room)
			break;
	}
	close(fd);
	if (len > RESOLV_MAX_FILE) {
		fprintf(stderr, "%s: larger than %d bytes\n", path,
		    RESOLV_MAX_FILE);
		return 2;
	}
	resolv_parse((const char *)at_guard(buf, len), len, &rc);
	for (i = 0; i < rc.n; i++) {
		ns_show(&rc.ns[i], one, sizeof(one));
		printf("nameserver %s\n", one);
	}
	printf("ignored %d\nbad %d\n", rc.ignored, rc.bad);
	return 0;
}

/*
 * --filter-aaaa: a real HTTPS record (alpn h2 h3, port 443, ipv4hint,
 * ech, ipv6hint; mandatory naming port and ipv6hint), an AAAA, an RRSIG
 * over it and an A: the AAAA and its RRSIG go, the HTTPS record loses its
 * ipv6hint (and mandatory its mention) and keeps every other byte.
 */
static void
test_filter_aaaa(void)
{
	static const uint8_t params_kept[] = {
		0, 0, 0, 2, 0, 3,				/* mandatory=port */
		0, 1, 0, 6, 2, 'h', '2', 2, 'h', '3',		/* alpn */
		0, 3, 0, 2, 0x01, 0xbb,				/* port 443 */
		0, 4, 0, 4, 192, 0, 2, 1,			/* ipv4hint */
		0, 5, 0, 5, 0xfe, 0x0d, 0xaa, 0xbb, 0xcc,	/* ech */
	};
	static const uint8_t params_in[] = {
		0, 0, 0, 4, 0, 3, 0, 6,			/* mandatory=port,ipv6hint */
		0, 1, 0, 6, 2, 'h', '2', 2, 'h', '3',
		0, 3, 0, 2, 0x01, 0xbb,
		0, 4, 0, 4, 192, 0, 2, 1,
		0, 5, 0, 5, 0xfe, 0x0d, 0xaa, 0xbb, 0xcc,
		0, 6, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 1,					/* ipv6hint */
	};
	static uint8_t in[512], out[512], q[64];
	struct dns_query dq;
	struct dns_reply r;
	size_t n = 0, m, qn, at;
	const uint8_t *p;

	/* the query: example.com HTTPS */
	memcpy(q, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
	    "\x07" "example\x03" "com\x00\x00\x41\x00\x01", 29);
	qn = 29;
	ok(dns_parse_query(q, qn, &dq) == 0, "filter: the query parses");
	memcpy(in, q, qn);
	in[2] = 0x81;
	in[3] = 0x80;
	in[7] = 4;				/* ANCOUNT */
	n = qn;
	/* HTTPS 1 . params_in */
	memcpy(in + n, "\xc0\x0c\x00\x41\x00\x01\x00\x00\x01\x2c", 10);
	n += 10;
	in[n++] = 0;
	in[n++] = (uint8_t)(3 + sizeof(params_in));
	memcpy(in + n, "\x00\x01\x00", 3);
	n += 3;
	memcpy(in + n, params_in, sizeof(params_in));
	n += sizeof(params_in);
	/* AAAA 2001:db8::2 */
	memcpy(in + n, "\xc0\x0c\x00\x1c\x00\x01\x00\x00\x01\x2c\x00\x10"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02", 28);
	n += 28;
	/* RRSIG covering AAAA (a stub: type covered, then bytes) */
	memcpy(in + n, "\xc0\x0c\x00\x2e\x00\x01\x00\x00\x01\x2c\x00\x06"
	    "\x00\x1c\x0d\x02\x00\x00", 18);
	n += 18;
	/* A 192.0.2.1 */
	memcpy(in + n, "\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04"
	    "\xc0\x00\x02\x01", 16);
	n += 16;
	ok(dns_parse_reply(in, n, &dq, &r) == REPLY_POSITIVE,
	    "filter: the answer parses (4 records)");
	m = dns_filter_aaaa(in, n, out, sizeof(out));
	ok(m > 0, "filter: something dropped (%zu -> %zu bytes)", n, m);
	ok(dns_parse_reply(out, m, &dq, &r) == REPLY_POSITIVE,
	    "filter: what is left parses");
	ok(r.ancount == 2, "filter: two records left (%u)", r.ancount);
	/* the HTTPS record, first after the question */
	p = out + qn;
	at = 10;
	ok(p[0] == 0xc0 && p[1] == 0x0c && p[3] == 0x41,
	    "filter: the HTTPS record first, owner the question's");
	ok((size_t)(p[at] << 8 | p[at + 1]) == 3 + sizeof(params_kept),
	    "filter: its RDLENGTH less the ipv6hint and a mandatory key");
	ok(memcmp(p + at + 2, "\x00\x01\x00", 3) == 0 && memcmp(p + at + 5,
	    params_kept, sizeof(params_kept)) == 0,
	    "filter: priority, target, alpn, port, ipv4hint, ech: "
	    "byte-identical");
	p += at + 2 + 3 + sizeof(params_kept);
	ok(p[3] == TYPE_A && p[12] == 192 && p[15] == 1,
	    "filter: the A record kept, after it");
	ok(dns_filter_aaaa(out, m, in, sizeof(in)) == 0,
	    "filter: a filtered answer has nothing more to drop");
	ok(dns_filter_aaaa(out, m, in, 20) == 0, "filter: no room: 0");
}

/* DNS64: the RFC 6052 layouts, the exclusion, synthesis, PTR. */
static void
test_dns64(void)
{
	static const struct {
		int		 plen;
		const char	*prefix, *want;
	} ex[] = {	/* RFC 6052 2.4's table, for 192.0.2.33 */
		{ 32, "2001:db8::", "2001:db8:c000:221::" },
		{ 40, "2001:db8:100::", "2001:db8:1c0:2:21::" },
		{ 48, "2001:db8:122::", "2001:db8:122:c000:2:2100::" },
		{ 56, "2001:db8:122:300::", "2001:db8:122:3c0:0:221::" },
		{ 64, "2001:db8:122:344::", "2001:db8:122:344:c0:2:2100:0" },
		{ 96, "2001:db8:122:344::", "2001:db8:122:344::192.0.2.33" },
	};
	static const uint8_t v4[4] = { 192, 0, 2, 33 };
	uint8_t prefix[16], a6[16], want[16], back[4], q6[64], aans[128],
	    out[256];
	struct dns_query dq;
	struct dns_reply r;
	struct local_answer la;
	size_t i, n, alen;
	char name[128];

	for (i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		inet_pton(AF_INET6, ex[i].prefix, prefix);
		inet_pton(AF_INET6, ex[i].want, want);
		dns64_addr(prefix, ex[i].plen, v4, a6);
		ok(memcmp(a6, want, 16) == 0, "dns64_addr: /%d: %s",
		    ex[i].plen, ex[i].want);
		ok(dns64_v4(a6, prefix, ex[i].plen, back) &&
		    memcmp(back, v4, 4) == 0, "dns64_v4: /%d: back to "
		    "192.0.2.33", ex[i].plen);
	}
	inet_pton(AF_INET6, "64:ff9b::", prefix);
	inet_pton(AF_INET6, "64:ff9c::c000:221", a6);
	ok(!dns64_v4(a6, prefix, 96, back), "dns64_v4: outside the prefix");
	/* AAAA question, NODATA reply as q6; an A answer with a CNAME */
	memcpy(q6, "\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00"
	    "\x01" "a\x04" "test\x00\x00\x1c\x00\x01", 24);
	memcpy(aans, "\x12\x34\x81\xa0\x00\x01\x00\x02\x00\x00\x00\x00"
	    "\x01" "a\x04" "test\x00\x00\x01\x00\x01"
	    "\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x04\x01" "b\xc0\x0e"
	    "\xc0\x24\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x21",
	    24 + 16 + 16);
	alen = 24 + 16 + 16;
	n = dns64_synth(aans, alen, q6, 24, prefix, 96, 60, out, sizeof(out));
	ok(n > 0, "dns64_synth: made (%zu bytes)", n);
	ok(dns_parse_query((const uint8_t *)"\x12\x34\x01\x00\x00\x01\x00\x00"
	    "\x00\x00\x00\x00\x01" "a\x04" "test\x00\x00\x1c\x00\x01", 24, &dq) ==
	    0 && dns_parse_reply(out, n, &dq, &r) == REPLY_POSITIVE &&
	    r.ancount == 2, "dns64_synth: a positive AAAA answer, 2 records");
	ok(!(out[3] & 0x20), "dns64_synth: AD cleared (it was set)");
	ok(r.min_ttl == 60, "dns64_synth: TTL at most the cap (%u)",
	    r.min_ttl);
	ok(n >= 16 && memcmp(out + n - 16, "\x00\x64\xff\x9b\0\0\0\0\0\0\0\0"
	    "\xc0\x00\x02\x21", 16) == 0, "dns64_synth: 64:ff9b::c000:221 last");
	ok(!dns64_usable(out, 0), "dns64_usable: nothing: not usable");
	ok(dns64_usable(out, n), "dns64_usable: a synthesised AAAA is usable");
	memcpy(out + n - 16, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\x00\x02\x21",
	    16);
	ok(!dns64_usable(out, n), "dns64_usable: ::ffff:192.0.2.33 is not");
	aans[7] = 1;		/* the CNAME alone: no A to make from */
	ok(dns64_synth(aans, 24 + 16, q6, 24, prefix, 96, 60, out,
	    sizeof(out)) == 0, "dns64_synth: no A: nothing made");
	snprintf(name, sizeof(name), "1.2.2.0.0.0.0.c.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.b.9.f.f.4.6.0.0.ip6.arpa");
	memset(&dq, 0, sizeof(dq));
	dq.qname_len = (uint8_t)cfg_parse_domain(name, strlen(name), dq.qname);
	dq.qtype = TYPE_PTR;
	ok(dns64_ptr(&dq, prefix, 96, &la) && la.n == 1 &&
	    la.rr[0].type == TYPE_CNAME && memcmp(la.rr[0].data,
	    "\00233\0012\0010\003192\007in-addr\004arpa", 25) == 0,
	    "dns64_ptr: a CNAME to 33.2.0.192.in-addr.arpa");
	dq.qtype = TYPE_A;
	ok(!dns64_ptr(&dq, prefix, 96, &la), "dns64_ptr: PTR only");
}

/* --bogus-priv and --domain-needed: which names stay here. */
static void
test_local_refusals(void)
{
	static const struct {
		const char	*name;
		bool		 bogus;
	} rev[] = {
		{ "1.2.3.10.in-addr.arpa", true }, { "10.in-addr.arpa", true },
		{ "in-addr.arpa", false }, { "110.in-addr.arpa", false },
		{ "1.0.16.172.in-addr.arpa", true },
		{ "31.172.in-addr.arpa", true }, { "32.172.in-addr.arpa", false },
		{ "15.172.in-addr.arpa", false }, { "172.in-addr.arpa", false },
		{ "168.192.in-addr.arpa", true }, { "5.168.192.in-addr.arpa", true },
		{ "192.in-addr.arpa", false }, { "169.192.in-addr.arpa", false },
		{ "1.0.0.127.in-addr.arpa", true }, { "254.169.in-addr.arpa", true },
		{ "64.100.in-addr.arpa", true }, { "9.127.100.in-addr.arpa", true },
		{ "63.100.in-addr.arpa", false }, { "128.100.in-addr.arpa", false },
		{ "8.8.8.8.in-addr.arpa", false },
		{ "c.f.ip6.arpa", true }, { "1.2.d.f.ip6.arpa", true },
		{ "e.f.ip6.arpa", false }, { "f.ip6.arpa", false },
		{ "8.e.f.ip6.arpa", true }, { "b.e.f.ip6.arpa", true },
		{ "c.e.f.ip6.arpa", false },
		{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", true },
		{ "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", false },
		{ "8.b.d.0.1.0.0.2.ip6.arpa", false }, { "example.com", false },
	};
	uint8_t wire[DNS_MAX_NAME];
	struct dns_query q;
	size_t i;

	for (i = 0; i < sizeof(rev) / sizeof(rev[0]); i++) {
		cfg_parse_domain(rev[i].name, strlen(rev[i].name), wire);
		ok(bogus_priv_name(wire) == rev[i].bogus, "--bogus-priv: %s %s",
		    rev[i].name, rev[i].bogus ? "kept here" : "forwarded");
	}
	memset(&q, 0, sizeof(q));
	cfg_parse_domain("printer", 7, q.qname);
	q.qtype = TYPE_A;
	ok(domain_needed_name(&q), "--domain-needed: printer A kept here");
	q.qtype = TYPE_AAAA;
	ok(domain_needed_name(&q), "--domain-needed: printer AAAA kept here");
	q.qtype = 33;
	ok(domain_needed_name(&q), "--domain-needed: printer SRV kept here");
	q.qtype = 48;
	ok(!domain_needed_name(&q), "--domain-needed: DNSKEY of a TLD forwarded");
	q.qtype = TYPE_NS;
	ok(!domain_needed_name(&q), "--domain-needed: NS of a TLD forwarded");
	cfg_parse_domain("printer.lan", 11, q.qname);
	q.qtype = TYPE_A;
	ok(!domain_needed_name(&q), "--domain-needed: printer.lan forwarded");
	cfg_parse_domain(".", 1, q.qname);
	q.qtype = TYPE_NS;
	ok(!domain_needed_name(&q), "--domain-needed: the root forwarded");
}

/* ---- test/unit --servers FILE ----------------------------------------- */

/* What servers_line() makes of each line of FILE, then the table. */
static int
servers_file(const char *path)
{
	static char text[SERVERS_MAX_FILE + 1];
	struct addr srv[MAX_UPSTREAMS];
	struct routes t;
	char why[160], one[INET6_ADDRSTRLEN + 32], line[2 * DNS_MAX_NAME * 4];
	const char *p, *end, *nl;
	int fd, n, nsrv = 0, k, i;
	ssize_t len = 0, got;
	static const char *const kinds[] = { "none", "rule", "server", "bad",
	    "other" };

	if ((fd = open(path, O_RDONLY)) == -1) {
		perror(path);
		return 2;
	}
	while ((got = read(fd, text + len, sizeof(text) - (size_t)len)) > 0)
		len += got;
	close(fd);
	memset(&t, 0, sizeof(t));
	for (n = 1, p = text, end = text + len; p < end; n++, p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		why[0] = '\0';
		k = servers_line(p, (size_t)(nl - p), &t, srv, &nsrv,
		    MAX_UPSTREAMS, why, sizeof(why));
		if (k != SL_NONE)
			printf("line %d: %s%s%s\n", n, kinds[k], why[0] != '\0' ?
			    ": " : "", why);
	}
	for (i = 0; i < routes_count(&t); i++) {
		rule_show(route_at(&t, i), line, sizeof(line));
		printf("rule %s\n", line);
	}
	for (i = 0; i < nsrv; i++)
		printf("server %s\n", addr_text(&srv[i], '#', one, sizeof(one)));
	routes_free(&t);
	return 0;
}

/* servers_line(): each form, each refusal, and a refusal adds nothing. */
static void
test_servers_line(void)
{
	static const struct {
		const char	*line;
		int		 kind;
		const char	*rule;	/* rule 0 after it, or why; NULL none */
	} cases[] = {
		{ "", SL_NONE, NULL },
		{ "   # comment", SL_NONE, NULL },
		{ "server=/corp.example/10.0.0.1", SL_RULE,
		    "corp.example fwd 10.0.0.1#53" },
		{ "server=/Corp.Example./10.0.0.1#5353", SL_RULE,
		    "corp.example fwd 10.0.0.1#5353" },
		{ "server=/a.example/b.example/fd00::1", SL_RULE,
		    "a.example fwd fd00::1#53" },
		{ "server=/corp.example/", SL_RULE, "corp.example local nxdomain" },
		{ "server=/corp.example/#", SL_RULE, "corp.example default" },
		{ "local=/lan/", SL_RULE, "lan local nxdomain" },
		{ "address=/ads.example/0.0.0.0", SL_RULE,
		    "ads.example local 0.0.0.0" },
		{ "address=/v6.example/2001:db8::1", SL_RULE,
		    "v6.example local 2001:db8::1" },
		{ "address=/nx.example/", SL_RULE, "nx.example local nxdomain" },
		{ "server=10.0.0.53", SL_SERVER, NULL },
		{ "server=10.0.0.53#5353\r", SL_SERVER, NULL },
		{ "server=/bad..name/10.0.0.1", SL_BAD,
		    "\"bad..name\" is not a domain" },
		{ "server=/x.example/999.1.1.1", SL_BAD, NULL },
		{ "server=/x.example/10.0.0.1#99999", SL_BAD, NULL },
		{ "address=/x.example/nonsense", SL_BAD,
		    "\"nonsense\" is not an address" },
		{ "server=//10.0.0.1", SL_BAD, NULL },
		{ "server=/x.example/10.0.0.1@eth0", SL_BAD, NULL },
		{ "server=10.0.0.1@eth0", SL_BAD, NULL },
		{ "server=nonsense", SL_BAD, NULL },
		{ "local=/x.example/10.0.0.1", SL_BAD,
		    "local= takes /DOMAIN/ only" },
		{ "server=x.example/10.0.0.1", SL_BAD, NULL },
		{ "server=/", SL_BAD, NULL },
		{ "cache-size=100", SL_OTHER,
		    "\"cache-size\" is a dnsmasq option dnsfwd does not have" },
		{ "no-resolv", SL_OTHER,
		    "\"no-resolv\" is a dnsmasq option dnsfwd does not have" },
		{ "Server=/x/1.2.3.4", SL_BAD, "not a dnsmasq option line" },
		{ "=x", SL_BAD, "not a dnsmasq option line" },
		{ "$(reboot)", SL_BAD, "not a dnsmasq option line" },
	};
	char why[160], buf[512];
	struct addr srv[2];
	struct routes t;
	size_t i;
	int k, nsrv;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&t, 0, sizeof(t));
		nsrv = 0;
		why[0] = '\0';
		k = servers_line(cases[i].line, strlen(cases[i].line), &t, srv,
		    &nsrv, 2, why, sizeof(why));
		ok(k == cases[i].kind, "servers_line \"%s\": kind %d (%d) %s",
		    cases[i].line, cases[i].kind, k, why);
		if (k == SL_RULE && cases[i].rule != NULL) {
			rule_show(route_at(&t, 0), buf, sizeof(buf));
			ok(strcmp(buf, cases[i].rule) == 0, "... \"%s\" (\"%s\")",
			    cases[i].rule, buf);
		} else if (k != SL_RULE && cases[i].rule != NULL)
			ok(strcmp(why, cases[i].rule) == 0, "... why \"%s\" "
			    "(\"%s\")", cases[i].rule, why);
		if (k == SL_BAD || k == SL_OTHER)
			ok(routes_count(&t) == 0 && nsrv == 0,
			    "... a refused line adds nothing");
		ok(k != SL_SERVER || nsrv == 1, "... server= gives a server");
		routes_free(&t);
	}
	/* overlong: refused; the server list's bound: said */
	{
		static char longline[SERVERS_LINE_MAX + 64];

		memset(longline, 'a', sizeof(longline) - 1);
		memcpy(longline, "server=/", 8);
		memset(&t, 0, sizeof(t));
		nsrv = 0;
		k = servers_line(longline, strlen(longline), &t, srv, &nsrv, 2,
		    why, sizeof(why));
		ok(k == SL_BAD && strstr(why, "longer than") != NULL,
		    "servers_line: a line over %d bytes refused (%s)",
		    SERVERS_LINE_MAX, why);
		nsrv = 2;
		k = servers_line("server=10.0.0.1", 15, &t, srv, &nsrv, 2, why,
		    sizeof(why));
		ok(k == SL_BAD && nsrv == 2, "servers_line: the %d servers the "
		    "list holds, then refused (%s)", 2, why);
		routes_free(&t);
	}
	/* 10,000 rules: each found by its own name, in one probe per label */
	{
		uint8_t qname[DNS_MAX_NAME];
		char l[80];
		int n, found = 0, f;

		memset(&t, 0, sizeof(t));
		for (n = 0; n < 10000; n++) {
			snprintf(l, sizeof(l), "server=/d%d.big.example/10.%d.%d.1",
			    n, n / 256, n % 256);
			if (servers_line(l, strlen(l), &t, srv, &nsrv, 2, why,
			    sizeof(why)) != SL_RULE)
				break;
		}
		ok(n == 10000 && routes_count(&t) == 10000,
		    "servers_line: 10,000 rules (%d)", routes_count(&t));
		for (n = 0; n < 10000; n += 997) {
			snprintf(l, sizeof(l), "x.d%d.big.example", n);
			cfg_parse_domain(l, strlen(l), qname);
			f = route_match(&t, qname);
			snprintf(l, sizeof(l), "10.%d.%d.1#53", n / 256, n % 256);
			found += f >= 0 && strcmp(addr_text(&route_at(&t, f)->srv[0],
			    '#', why, sizeof(why)), l) == 0;
		}
		ok(found == 11, "10,000 rules: each name routes to its own "
		    "server (%d of 11)", found);
		routes_free(&t);
		ok_no_leaks("servers_line and routes_free");
	}
}

/* FNV-1a (name_hash()), the unkeyed hash the cache once used. */
#define fnv1a	name_hash

/*
 * Hash flooding: 300 names chosen to share one bucket of the old unkeyed
 * hash go into a cache of 1000 (1024 buckets).  With the keyed hash no
 * chain grows long; and the same question hashes differently under
 * another key.
 */
static void
test_cache_flood(void)
{
	static const uint64_t other_key[2] = { 42, 4242 };
	static struct xchg x;
	char name[64];
	struct dns_query q;
	struct cache c;
	int found = 0, longest;
	unsigned i, same = 0;
	uint32_t want = 0;

	cache_init(&c, 1000, 0, test_key);
	for (i = 0; i < 4000000 && found < 300; i++) {
		snprintf(name, sizeof(name), "c%u.flood.test", i);
		query_name(&x.qp, &x.q, name, TYPE_A, EDNS_NONE);
		if (found == 0)
			want = fnv1a(x.q.qname, x.q.qname_len) & 1023;
		if ((fnv1a(x.q.qname, x.q.qname_len) & 1023) != want)
			continue;
		xchg_answer(&x, 1, 300, name);
		if (xchg_put(&c, &x, 0))
			found++;
		q = x.q;
		same += dns_question_hash(test_key, &q) ==
		    dns_question_hash(other_key, &q);
	}
	longest = cache_longest_chain(&c);
	if (!ok(found == 300 && longest <= 12, "cache: 300 names that share "
	    "one FNV-1a bucket: the longest chain of the keyed hash is short"))
		diag("found %d names, longest chain %d", found, longest);
	ok(same == 0, "dns_question_hash: another key, another hash (300 "
	    "names)");
	cache_free(&c);
}

/* ---- who may ask: prefixes, sets, netlink dumps, fair share ------------ */

/* sa for text "1.2.3.4" or "::1" (port 0). */
static struct sockaddr_storage
sock_of(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		bail("bad address in a who-may-ask case", text);
	return ss;
}

static void
test_acl(void)
{
	static const struct {
		const char	*allow;		/* space-separated --allow values */
		const char	*client;
		bool		 want;
	} cases[] = {
		{ "10.0.0.0/8", "10.1.2.3", true },
		{ "10.0.0.0/8", "11.0.0.1", false },
		{ "10.1.2.3/8", "10.200.0.1", true },	/* host bits cleared */
		{ "192.0.2.0/25", "192.0.2.127", true },
		{ "192.0.2.0/25", "192.0.2.128", false },
		{ "192.0.2.7", "192.0.2.7", true },	/* an address: /32 */
		{ "192.0.2.7", "192.0.2.6", false },
		{ "0.0.0.0/0", "203.0.113.9", true },
		{ "0.0.0.0/0", "2001:db8::1", false },	/* families apart */
		{ "::/0", "2001:db8::1", true },
		{ "2001:db8::/32", "2001:db8:ffff::1", true },
		{ "2001:db8::/33", "2001:db8:8000::1", false },
		{ "2001:db8::/33", "2001:db8:7fff::1", true },
		{ "fe80::/10", "febf::1", true },
		{ "fe80::/10", "fec0::1", false },
		{ "10.0.0.0/8", "::ffff:10.9.9.9", true },	/* v4-mapped */
		{ "::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true }, /* IPv4 */
		{ "::ffff:10.0.0.0/104", "10.9.9.9", true },
		{ "::ffff:10.0.0.0/104", "11.9.9.9", false },
		{ "2001:db8::1/128", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::2", false },
		{ "", "10.0.0.1", false },
		{ "172.16.0.0/12 10.0.0.0/8", "10.0.0.1", true },
	};
	static const char *bad[] = {
		"10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "", "10.0.0",
		"10.0.0.0/8x", "10.0.0.0/-1", "fe80::1%eth0/64", "banana",
	};
	static const struct {
		const char	*addr;
		bool		 want;
	} loop[] = {
		{ "127.0.0.1", true }, { "127.255.0.9", true },
		{ "128.0.0.1", false }, { "::1", true }, { "::2", false },
		{ "::ffff:127.0.0.1", true }, { "::ffff:10.0.0.1", false },
		{ "0.0.0.0", false },
	};
	struct sockaddr_storage ss;
	struct prefix p;
	struct acl set;
	char err[128], buf[128], *tok, *save;
	size_t i;
	int k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&set, 0, sizeof(set));
		snprintf(buf, sizeof(buf), "%s", cases[i].allow);
		for (tok = strtok_r(buf, " ", &save); tok != NULL;
		    tok = strtok_r(NULL, " ", &save)) {
			if (cfg_parse_prefix(tok, &p, err, sizeof(err)) == -1)
				bail(err, tok);
			acl_add(&set, &p);
		}
		ss = sock_of(cases[i].client);
		ok(acl_match(&set, (struct sockaddr *)&ss) == cases[i].want,
		    "acl: %s %s \"%s\"", cases[i].client, cases[i].want ?
		    "in" : "not in", cases[i].allow);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(cfg_parse_prefix(bad[i], &p, err, sizeof(err)) == -1 &&
		    strstr(err, "\"") != NULL, "cfg_parse_prefix: \"%s\" is "
		    "an error that quotes it", bad[i]);
	for (i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
		ss = sock_of(loop[i].addr);
		ok(acl_is_loopback((struct sockaddr *)&ss) == loop[i].want,
		    "acl_is_loopback: %s: %s", loop[i].addr, loop[i].want ?
		    "yes" : "no");
	}
	memset(&set, 0, sizeof(set));
	for (k = 0; k < ACL_MAX + 2; k++) {
		snprintf(buf, sizeof(buf), "10.%d.0.0/16", k);
		cfg_parse_prefix(buf, &p, err, sizeof(err));
		acl_add(&set, &p);
		acl_add(&set, &p);	/* twice: kept once */
	}
	ok(set.n == ACL_MAX && set.full, "acl_add: a set holds %d networks, "
	    "no duplicates, and says it is full", ACL_MAX);
}

/* Append one netlink message (16-byte header, then body) to buf at *len. */
static void
nl_msg(uint8_t *buf, size_t *len, uint16_t type, uint32_t seq,
    const uint8_t *body, size_t blen)
{
	uint32_t mlen = (uint32_t)(16 + blen), pid = 0;
	uint16_t flags = 2;	/* NLM_F_MULTI */

	memcpy(buf + *len, &mlen, 4);
	memcpy(buf + *len + 4, &type, 2);
	memcpy(buf + *len + 6, &flags, 2);
	memcpy(buf + *len + 8, &seq, 4);
	memcpy(buf + *len + 12, &pid, 4);
	memcpy(buf + *len + 16, body, blen);
	*len += (16 + blen + 3) & ~(size_t)3;
}

/* An RTM_NEWADDR body: ifaddrmsg, then IFA_ADDRESS (and IFA_LOCAL). */
static size_t
nl_addr(uint8_t *b, int family, int plen, const char *addr, const char *local)
{
	uint8_t a[16];
	uint16_t alen, type;
	size_t n = 8, k = family == AF_INET ? 4 : 16;
	const char *v[2] = { addr, local };
	int i;

	memset(b, 0, 64);
	b[0] = (uint8_t)family;
	b[1] = (uint8_t)plen;
	for (i = 0; i < 2; i++) {
		if (v[i] == NULL)
			continue;
		if (inet_pton(family, v[i], a) != 1)
			bail("bad address in a netlink case", v[i]);
		alen = (uint16_t)(4 + k);
		type = (uint16_t)(i + 1);	/* IFA_ADDRESS, IFA_LOCAL */
		memcpy(b + n, &alen, 2);
		memcpy(b + n + 2, &type, 2);
		memcpy(b + n + 4, a, k);
		n += (4 + k + 3) & ~(size_t)3;
	}
	return n;
}

static void
test_netlink(void)
{
	uint8_t buf[1024], body[64];
	struct sockaddr_storage ss;
	struct acl set;
	size_t len = 0, n;
	int other = 0, rc;
	uint32_t bad;

	n = nl_addr(body, AF_INET, 24, "10.211.0.1", "10.211.0.1");
	nl_msg(buf, &len, 20, 7, body, n);
	n = nl_addr(body, AF_INET6, 64, "fd21:1::1", NULL);
	nl_msg(buf, &len, 20, 7, body, n);
	n = nl_addr(body, AF_INET, 32, "10.8.0.2", "10.8.0.1");	/* p2p */
	nl_msg(buf, &len, 20, 7, body, n);
	n = nl_addr(body, AF_INET, 16, "172.30.0.1", NULL);	/* news */
	nl_msg(buf, &len, 20, 99, body, n);
	memset(&set, 0, sizeof(set));
	rc = nl_parse_addrs(buf, len, 7, &set, &other);
	ok(rc == 0 && set.n == 4 && other == 1, "nl_parse_addrs: a part of "
	    "a dump: 4 networks, 1 message of another sequence skipped");
	ss = sock_of("10.211.0.77");
	ok(acl_match(&set, (struct sockaddr *)&ss), "nl_parse_addrs: the "
	    "address's /24 is its network");
	ss = sock_of("fd21:1::abcd");
	ok(acl_match(&set, (struct sockaddr *)&ss), "nl_parse_addrs: IPv6 "
	    "/64");
	ss = sock_of("10.8.0.2");
	ok(acl_match(&set, (struct sockaddr *)&ss), "nl_parse_addrs: a "
	    "point-to-point peer");
	ss = sock_of("172.30.0.9");
	ok(!acl_match(&set, (struct sockaddr *)&ss), "nl_parse_addrs: an "
	    "address notification is not part of the dump");

	len = 0;
	nl_msg(buf, &len, 3, 7, (const uint8_t *)"\0\0\0", 4);	/* DONE */
	ok(nl_parse_addrs(buf, len, 7, &set, &other) == 1, "nl_parse_addrs: "
	    "NLMSG_DONE ends the dump");
	len = 0;
	nl_msg(buf, &len, 2, 7, (const uint8_t *)"\0\0\0\0", 4); /* ERROR */
	ok(nl_parse_addrs(buf, len, 7, &set, &other) == -1, "nl_parse_addrs: "
	    "an error message fails the dump");

	len = 0;
	n = nl_addr(body, AF_INET, 24, "10.1.1.1", NULL);
	nl_msg(buf, &len, 20, 7, body, n);
	bad = (uint32_t)len + 4;	/* the message says more than is there */
	memcpy(buf, &bad, 4);
	ok(nl_parse_addrs(buf, len, 7, &set, &other) == -1, "nl_parse_addrs: "
	    "a message longer than the buffer is an error");
	memcpy(buf, &(uint32_t){ 8 }, 4);
	ok(nl_parse_addrs(buf, len, 7, &set, &other) == -1, "nl_parse_addrs: "
	    "a message shorter than its header is an error");
	len = 0;
	n = nl_addr(body, AF_INET, 24, "10.1.1.1", NULL);
	body[8] = 200;		/* the attribute runs past its message */
	nl_msg(buf, &len, 20, 7, body, n);
	ok(nl_parse_addrs(buf, len, 7, &set, &other) == -1, "nl_parse_addrs: "
	    "an attribute past its message is an error");
	len = 0;
	n = nl_addr(body, AF_INET, 40, "10.1.1.1", NULL);	/* bad length */
	nl_msg(buf, &len, 20, 7, body, n);
	memset(&set, 0, sizeof(set));
	ok(nl_parse_addrs(buf, len, 7, &set, &other) == 0 && set.n == 0,
	    "nl_parse_addrs: an IPv4 prefix over 32 bits is skipped");
}

static void
test_peek(void)
{
	static const uint8_t m[12] = { 0x12, 0x34, 0x81, 0x80 };
	uint16_t id = 0, flags = 0;

	ok(dns_peek_header(m, 12, &id, &flags) && id == 0x1234 &&
	    flags == 0x8180, "dns_peek_header: ID and flags of a header");
	ok(!dns_peek_header(m, 11, &id, &flags), "dns_peek_header: 11 bytes "
	    "are no header");
	ok(!dns_peek_header(m, 0, &id, &flags), "dns_peek_header: nothing");
}

static void
test_share(void)
{
	static const struct {
		int	 held, nq, max;
		enum share_level lv;
		bool	 want;
	} cases[] = {
		{ 2047, 2047, 4096, SHARE_ADDR, true },	/* under half */
		{ 2048, 2048, 4096, SHARE_ADDR, false },	/* half, its own */
		{ 100, 2048, 4096, SHARE_ADDR, true },
		{ 1365, 2730, 4096, SHARE_ADDR, true },	/* two of 1365 */
		{ 1366, 2732, 4096, SHARE_ADDR, false },	/* max / 3 each */
		{ 0, 4095, 4096, SHARE_ADDR, true },	/* new, one left */
		{ 0, 4096, 4096, SHARE_ADDR, true },	/* full: the table's */
		{ 1, 4095, 4096, SHARE_ADDR, false },
		{ 0, 0, 1, SHARE_ADDR, true },
		{ 1, 1, 1, SHARE_ADDR, false },		/* full, its own */
		{ 1, 3, 4, SHARE_ADDR, false },
		/* a /64: three times what is free */
		{ 2048, 2048, 4096, SHARE_NET64, true },
		{ 3071, 3071, 4096, SHARE_NET64, true },	/* 3071 < 3075 */
		{ 3072, 3072, 4096, SHARE_NET64, false },	/* 3072 = 3 * 1024 */
		{ 1787, 3500, 4096, SHARE_NET64, true },	/* 596 free */
		{ 1788, 3500, 4096, SHARE_NET64, false },	/* 3 * 596 */
		{ 2048, 3500, 4096, SHARE_NET64, false },
		{ 2000, 3800, 4096, SHARE_NET64, false },	/* 2000 >= 888 */
		{ 0, 4095, 4096, SHARE_NET64, true },
		{ 3, 4095, 4096, SHARE_NET64, false },	/* 3 = 3 * 1 */
		{ 47, 47, 64, SHARE_NET64, true },
		{ 48, 48, 64, SHARE_NET64, false },
	};
	/*
	 * What one source alone takes of each table, with the defaults
	 * (--max-queries 4096, --max-tcp 64: 64 connections, 64 upstream
	 * TCP buffers) and the smallest tables: an address half, a /64
	 * three quarters; a table of one is the one source's.
	 */
	static const struct {
		int	 max, addr, net64;
	} alone[] = {
		{ 4096, 2048, 3072 }, { 64, 32, 48 }, { 1024, 512, 768 },
		{ 1, 1, 1 }, { 2, 1, 2 }, { 3, 2, 3 }, { 4, 2, 3 },
	};
	size_t i;
	int held, nb, used;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(policy_share_ok(cases[i].held, cases[i].nq, cases[i].max,
		    cases[i].lv) == cases[i].want, "policy_share_ok: %s "
		    "holding %d of %d taken (table %d): %s",
		    cases[i].lv == SHARE_ADDR ? "an address" : "a /64",
		    cases[i].held, cases[i].nq, cases[i].max,
		    cases[i].want ? "admitted" : "refused");
	for (i = 0; i < sizeof(alone) / sizeof(alone[0]); i++)
		ok(policy_share_max(alone[i].max, SHARE_ADDR) == alone[i].addr &&
		    policy_share_max(alone[i].max, SHARE_NET64) ==
		    alone[i].net64, "policy_share_max: of %d, an address takes "
		    "%d (got %d), a /64 %d (got %d)", alone[i].max,
		    alone[i].addr, policy_share_max(alone[i].max, SHARE_ADDR),
		    alone[i].net64, policy_share_max(alone[i].max,
		    SHARE_NET64));
	/*
	 * Neighbours: host A of a /64 takes all it may of 64 connections;
	 * its neighbour B, in the same /64, then gets what the /64's share
	 * leaves (16), and a host of another network still finds 16 free.
	 */
	for (held = 0; policy_share_ok(held, held, 64, SHARE_ADDR) &&
	    policy_share_ok(held, held, 64, SHARE_NET64); held++)
		;
	for (nb = 0, used = held; policy_share_ok(nb, used, 64, SHARE_ADDR) &&
	    policy_share_ok(held + nb, used, 64, SHARE_NET64) && used < 64;
	    nb++, used++)
		;
	ok(held == 32 && nb == 16 && 64 - used == 16, "fair share: host A "
	    "of a /64 takes 32 of 64 (got %d), neighbour B then 16 (got %d), "
	    "16 left for others (got %d)", held, nb, 64 - used);
}

static void
test_glob(void)
{
	static const struct {
		const char	*pattern, *name;
		bool		 want;
	} cases[] = {
		{ "vm-*", "vm-1", true }, { "vm-*", "vm-", true },
		{ "vm-*", "vm", false }, { "vm-*", "xvm-1", false },
		{ "*", "anything", true }, { "*", ".hidden", false },
		{ ".*", ".hidden", true }, { "vm-?", "vm-7", true },
		{ "vm-?", "vm-17", false }, { "vm-[0-9]", "vm-5", true },
		{ "vm-[0-9]", "vm-a", false }, { "vm-[!0-9]", "vm-a", true },
		{ "vm-[!0-9]", "vm-5", false }, { "vm-[ab]x", "vm-bx", true },
		{ "*-*-*", "a-b-c", true }, { "*-*-*", "a-b", false },
		{ "a\\*", "a*", true }, { "a\\*", "ab", false },
		{ "vm-[0-9", "vm-[0-9", true }, { "**x", "abx", true },
		{ "exact", "exact", true }, { "exact", "exact2", false },
		{ "", "", true }, { "", "a", false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(cfg_glob_match(cases[i].pattern, cases[i].name) ==
		    cases[i].want, "cfg_glob_match: \"%s\" %s \"%s\"",
		    cases[i].pattern, cases[i].want ? "matches" : "does not match",
		    cases[i].name);
}

/* What the namespace helper agrees to enter: what -N asked, nothing else. */
static void
test_netns_path(void)
{
	static const struct {
		const char	*path, *dir, *glob, *want;
		bool		 ok;
	} cases[] = {
		{ "/run/netns/vm1", "/run/netns", NULL, "/run/netns/vm1", true },
		{ "/run/netns/vm1", "/run/netns", NULL, "/run/netns/vm2", false },
		{ "/run/netns/vm1", "/run/netns", NULL, "/run/netns/vm1/", false },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netns/vm-a", true },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netns/vm-", true },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netns/vx-a", false },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netns/vm-a/b", false },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netns//vm-a", false },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netnsX/vm-a", false },
		{ "/run/netns/vm-*", "/run/netns", "vm-*", "/run/netns/../vm-a", false },
		{ "/run/netns/*", "/run/netns", "*", "/run/netns/..", false },
		{ "/run/netns/*", "/run/netns", "*", "/run/netns/.", false },
		{ "/run/netns/*", "/run/netns", "*", "/run/netns/", false },
		{ "/run/netns/*", "/run/netns", "*", "/proc/1/ns/net", false },
		{ "/run/netns/*", "/run/netns", "*", "/run/netns/a", true },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(cfg_netns_path_ok(cases[i].path, cases[i].dir, cases[i].glob,
		    cases[i].want) == cases[i].ok, "netns helper: -N %s %s %s",
		    cases[i].path, cases[i].ok ? "lets in" : "refuses",
		    cases[i].want);
}

#define EDE_STALE_TEST	3

/* The flags of the message at p. */
static uint16_t
dns_hdr_get_test(const uint8_t *p)
{
	return (uint16_t)(p[2] << 8 | p[3]);
}

/* ---- answers a client can trust --------------------------------------------- */

#define RH	"1234 81a0 0001 0001 0000"	/* QR RD RA AD, one answer */
#define EDE6	"000f ( 0006 6162 )"		/* DNSSEC Bogus, "ab" */

static void
test_ede_codes(void)
{
	static const int verdicts[] = { 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 15,
	    16, 17 };
	size_t k;
	int code, bad = 0;
	bool want;

	for (code = 0; code <= 30; code++) {
		for (k = 0, want = false; k < sizeof(verdicts) / sizeof(*verdicts);
		    k++)
			want |= verdicts[k] == code;
		if (ede_verdict(code) != want && bad++ == 0)
			diag("INFO-CODE %d: %d", code, (int)!want);
	}
	ok(bad == 0, "ede_verdict: 1, 2, 5-12, 15-17 are verdicts; 0, 3, 4, "
	    "13, 14, 18-30 are not");
	ok(!ede_verdict(49152) && !ede_verdict(65535) && !ede_verdict(-1) &&
	    !ede_verdict(31), "ede_verdict: unknown and private codes are not");
}

static void
test_reply_trust(void)
{
	struct pkt qp, p;
	struct dns_query q;
	struct dns_reply r;
	size_t n;

	query_of(&qp, &q, QH " n:v.test 0001 0001");
	/* EDE among other options: kept alone, just past the message */
	enc(&p, RH " 0001 n:v.test 0001 0001 " A300 " @ 00 0029 1000 00000000 "
	    "( 000a ( 0102030405060708 ) " EDE6 " 000c ( 00000000 ) )");
	ok(dns_parse_reply(p.b, p.len, &q, &r) == REPLY_POSITIVE &&
	    r.ede == 6 && r.verdict && r.opt == p.mark[0] && r.end == p.len,
	    "dns_parse_reply: EDE 6 among COOKIE and padding: a verdict");
	n = dns_keep_ede(p.b, p.len, &r);
	ok(n == p.mark[0] && r.opt == 0 && r.ede_len == 8 &&
	    memcmp(p.b + n, "\x00\x0f\x00\x04\x00\x06" "ab", 8) == 0 &&
	    p.b[11] == 0, "dns_keep_ede: the OPT goes, its EDE stays after the "
	    "answer, the cookie and the padding do not");
	/* a long EXTRA-TEXT is cut to fit */
	enc(&p, RH " 0001 n:v.test 0001 0001 " A300 " @ 00 0029 1000 00000000 "
	    "( 000f ( 000f x:300:61 ) )");
	dns_parse_reply(p.b, p.len, &q, &r);
	n = dns_keep_ede(p.b, p.len, &r);
	ok(r.ede_len == DNS_EDE_MAX && p.b[n + 2] == 0 &&
	    p.b[n + 3] == DNS_EDE_MAX - 4 && p.b[n + 5] == 15 && r.ede == 15 &&
	    r.verdict, "dns_keep_ede: 300 bytes of text cut to %d in all",
	    DNS_EDE_MAX);
	/* a second EDE after the first filled the room: not kept, no more */
	enc(&p, RH " 0001 n:v.test 0001 0001 " A300 " @ 00 0029 1000 00000000 "
	    "( 000f ( 000f x:300:61 ) 000f ( 0006 x:300:62 ) 000f ( 0011 ) )");
	dns_parse_reply(p.b, p.len, &q, &r);
	n = dns_keep_ede(p.b, p.len, &r);
	ok(r.ede_len == DNS_EDE_MAX && p.b[n + 3] == DNS_EDE_MAX - 4 &&
	    p.b[n + 5] == 15, "dns_keep_ede: two long EDEs: the first, cut to "
	    "fill the room, and nothing past it");
	enc(&p, RH " 0001 n:v.test 0001 0001 " A300 " @ 00 0029 1000 00000000 "
	    "( 000f ( 000f x:247:61 ) 000f ( 0006 6162 ) )");
	dns_parse_reply(p.b, p.len, &q, &r);
	n = dns_keep_ede(p.b, p.len, &r);
	ok(r.ede_len == 253 && p.b[n + 3] == 249, "dns_keep_ede: a second EDE "
	    "that does not fit whole in the 2 bytes left: left out");
	/* EDE 18, 22: not verdicts */
	enc(&p, "1234 8182 0001 0000 0000 0001 n:v.test 0001 0001 "
	    "00 0029 1000 00000000 ( 000f ( 0016 ) )");
	ok(dns_parse_reply(p.b, p.len, &q, &r) == REPLY_FAILURE &&
	    r.ede == 22 && !r.verdict, "dns_parse_reply: SERVFAIL with EDE 22 "
	    "(No Reachable Authority) is a plain failure");
	/* junk after the last counted record */
	enc(&p, RH " 0000 n:v.test 0001 0001 " A300 " deadbeef00");
	ok(dns_parse_reply(p.b, p.len, &q, &r) == REPLY_POSITIVE &&
	    r.end == p.len - 5, "dns_parse_reply: 5 junk bytes after the "
	    "records: the answer ends before them (r.end)");
}

static void
test_answer_flags(void)
{
	static const struct {
		const char	*query;
		uint16_t	 upstream;	/* the answer's flags */
		uint16_t	 want;
		const char	*desc;
	} t[] = {
		{ QH " " QWWW, 0x81a0, 0x8180,
		    "RD asker, no AD or DO: AD cleared" },
		{ "1234 0120 0001 0000 0000 0000 " QWWW, 0x81a0, 0x81a0,
		    "AD asker: the upstream's AD" },
		{ "1234 0120 0001 0000 0000 0000 " QWWW, 0x8180, 0x8180,
		    "AD asker, the upstream did not validate: no AD" },
		{ QH_AR1 " " QWWW " " OPT_DO, 0x81a0, 0x81a0,
		    "DO asker: the upstream's AD" },
		{ "1234 0000 0001 0000 0000 0000 " QWWW, 0x8180, 0x8080,
		    "RD=0 asker: RD=0 echoed, whoever filled it" },
		{ "1234 0110 0001 0000 0000 0000 " QWWW, 0x8180, 0x8190,
		    "CD asker: CD echoed" },
		{ QH " " QWWW, 0x8090, 0x8180,
		    "RD asker of an entry filled with RD=0 CD=1: its own RD, "
		    "no CD" },
	};
	struct dns_query q;
	struct pkt p;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		query_of(&p, &q, t[i].query);
		ok(dns_answer_flags(t[i].upstream, &q) == t[i].want,
		    "dns_answer_flags: %s (%04x)", t[i].desc, t[i].want);
	}
	query_of(&p, &q, "1234 0010 0001 0000 0000 0000 " QWWW);
	ok(dns_build_query(p.b + 100, 200, p.b, &q) > 0 &&
	    dns_hdr_get_test(p.b + 100) == (DNS_CD | DNS_AD),
	    "dns_build_query: the asker's RD (clear) and CD, and AD asked for");
}

static void
test_finish_ede(void)
{
	struct pkt qp, p, ne;
	struct dns_query q, q0;
	struct dns_reply r, g;
	uint8_t buf[600];
	size_t n, len;

	query_of(&qp, &q, QH_AR1 " n:v.test 0001 0001 " OPT_PLAIN);
	query_of(&ne, &q0, QH " n:v.test 0001 0001");
	enc(&p, RH " 0001 n:v.test 0001 0001 " A300 " @ 00 0029 1000 00000000 "
	    "( " EDE6 " )");
	dns_parse_reply(p.b, p.len, &q, &r);
	len = dns_keep_ede(p.b, p.len, &r);
	memcpy(buf, p.b, len + r.ede_len);
	n = dns_finish(buf, len, sizeof(buf), &r, &q, 512, EDE_STALE_TEST);
	ok(dns_parse_reply(buf, n, &q, &g) == REPLY_POSITIVE && g.opt != 0 &&
	    g.ede == 6 && g.verdict && buf[n - 6 + 5] == 3 &&
	    dns_hdr_get_test(buf) == 0x8180,
	    "dns_finish: an EDNS client gets the upstream's EDE 6 and ours (3), "
	    "no AD (it asked without AD or DO)");
	memcpy(buf, p.b, len + r.ede_len);
	n = dns_finish(buf, len, sizeof(buf), &r, &q0, 512, -1);
	ok(n == len && dns_parse_reply(buf, n, &q0, &g) == REPLY_POSITIVE &&
	    g.opt == 0, "dns_finish: a client without EDNS: no OPT, no EDE");
	memcpy(buf, p.b, len + r.ede_len);
	n = dns_finish(buf, len, sizeof(buf), &r, &q, len + 11 + 6 + 8 - 1, 3);
	ok(dns_parse_reply(buf, n, &q, &g) == REPLY_POSITIVE &&
	    (g.flags & DNS_TC) && g.ancount == 0 && g.ede == 6,
	    "dns_finish: answer and EDEs 1 byte over the limit: cut with TC, "
	    "the EDEs kept (the client asks again over TCP)");
	memcpy(buf, p.b, len + r.ede_len);
	n = dns_finish(buf, len, sizeof(buf), &r, &q, r.qend + 11 + 6, 3);
	ok(dns_parse_reply(buf, n, &q, &g) == REPLY_POSITIVE && g.opt != 0 &&
	    (g.flags & DNS_TC) && g.ede == 3, "dns_finish: no room for the "
	    "upstream's EDE even with the answer cut: ours only");
}

static void
test_cache_trust(void)
{
	struct pkt qp, p, rq;
	struct dns_query q, q0;
	struct dns_reply r, g;
	struct cache c;
	uint8_t out[600];
	size_t n, len;

	query_of(&qp, &q, QH " n:v.test 0001 0001");
	query_of(&rq, &q0, "1234 0000 0001 0000 0000 0000 n:v.test 0001 0001");
	enc(&p, RH " 0001 n:v.test 0001 0001 " A300 " @ 00 0029 1000 00000000 "
	    "( " EDE6 " ) 0badbad0");
	dns_parse_reply(p.b, p.len, &q, &r);
	r.src = 7;
	cache_init(&c, 16, 0, test_key);
	cache_stale(&c, 100);
	ok(cache_put(&c, &q, p.b, p.len, &r, 1000), "cache_put: a raw reply "
	    "with an OPT and junk after it");
	n = cache_get(&c, &q, qp.b, out, sizeof(out), 2000, &g);
	len = p.mark[0];
	ok(n == len && g.ede_len == 8 &&
	    memcmp(out + n, "\x00\x0f\x00\x04\x00\x06" "ab", 8) == 0 &&
	    dns_hdr_get_test(out + 8) == 0,	/* ARCOUNT: no OPT */
	    "cache_get: the answer without OPT or junk, its EDE kept after it");
	ok(cache_get(&c, &q0, rq.b, out, sizeof(out), 2000, &g) == 0,
	    "cache_get: an RD=0 query does not hit an RD=1 entry");
	ok(cache_get_stale(&c, &q, qp.b, out, sizeof(out), 400000, &g,
	    (const uint16_t[]){ 3, 7 }, 2) == len && g.src == 7,
	    "cache_get_stale: served while its upstream (7) is on the list");
	ok(cache_get_stale(&c, &q, qp.b, out, sizeof(out), 400000, &g,
	    (const uint16_t[]){ 3, 8 }, 2) == 0 &&
	    cache_get_stale(&c, &q, qp.b, out, sizeof(out), 400000, &g,
	    NULL, 0) == 0, "cache_get_stale: never from an upstream no longer "
	    "on the list, nor with no list");
	ok(cache_get_stale(&c, &q, qp.b, out, sizeof(out), 2000, &g,
	    NULL, 0) == len, "cache_get_stale: a fresh entry is served, "
	    "whatever the list");
	cache_free(&c);
}

static void
test_opcodes(void)
{
	static const struct {
		const char	*spec;
		bool		 question, opt;
		const char	*desc;
	} t[] = {
		{ "1234 7800 0000 0000 0000 0000", false, false,
		    "opcode 15, no question" },
		{ "1234 7800 0000 0000 0000 0001 00 0029 1000 00000000 0000",
		    false, true, "opcode 15, no question, EDNS" },
		{ "1234 2800 0001 0000 0001 0001 n:zone.test 0006 0001 "
		    "n:a.zone.test 0001 00ff 00000000 0000 "
		    "00 0029 1000 00000000 0000", true, true, "UPDATE, EDNS" },
		{ "1234 2000 0001 0000 0000 0000 n:zone.test 0006 0001", true,
		    false, "NOTIFY" },
		{ "1234 0800 0001 0000 0000 0000 n:v.test 0001 0001", true,
		    false, "IQUERY" },
		{ "1234 1800 0002 0000 0000 0000 n:a.test 0001 0001 n:b.test "
		    "0001 0001", false, false, "unassigned opcode 3, two "
		    "questions" },
	};
	struct dns_query q;
	struct pkt p;
	uint8_t out[600];
	size_t i, n;
	int rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enc(&p, t[i].spec);
		rc = dns_parse_query(p.b, p.len, &q);
		n = rc > 0 ? dns_build_error(out, sizeof(out), p.b, &q, rc, -1) :
		    0;
		ok(rc == RCODE_NOTIMP && n >= DNS_HDR && (out[3] & 0xf) == 4 &&
		    (out[2] & 0x78) == (p.b[2] & 0x78) &&
		    (q.qend != 0) == t[i].question &&
		    (q.opt != 0) == t[i].opt && out[11] == (t[i].opt ? 1 : 0),
		    "opcode: %s: NOTIMP, opcode echoed, %s question, %s OPT",
		    t[i].desc, t[i].question ? "its" : "no",
		    t[i].opt ? "an" : "no");
	}
}

static void
test_special_names(void)
{
	static const struct {
		const char	*name;
		uint16_t	 type;
		int		 rcode;		/* -1: not special */
		int		 n;
		const char	*desc;
	} t[] = {
		{ "localhost", TYPE_A, RCODE_NOERROR, 1, "localhost A" },
		{ "db.localhost", TYPE_AAAA, RCODE_NOERROR, 1,
		    "a name under localhost, AAAA" },
		{ "localhost", TYPE_MX, RCODE_NOERROR, 0, "localhost MX: NODATA" },
		{ "x.invalid", TYPE_A, RCODE_NXDOMAIN, 0, "x.invalid" },
		{ "invalid", TYPE_A, RCODE_NXDOMAIN, 0, "invalid" },
		{ "facebookcorewwwi.onion", TYPE_A, RCODE_NXDOMAIN, 0, "onion" },
		{ "_dns.resolver.arpa", 64, RCODE_NOERROR, 0,
		    "_dns.resolver.arpa SVCB (DDR): NODATA" },
		{ "localhost.example", TYPE_A, -1, 0, "localhost.example" },
		{ "notlocalhost", TYPE_A, -1, 0, "notlocalhost" },
		{ "arpa", TYPE_SOA, -1, 0, "arpa" },
		{ "onion.example", TYPE_A, -1, 0, "onion.example" },
	};
	struct local_answer a;
	struct dns_query q;
	struct pkt p;
	char spec[200];
	size_t i;
	bool got;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(spec, sizeof(spec), QH " n:%s %04x 0001", t[i].name,
		    t[i].type);
		query_of(&p, &q, spec);
		got = special_answer(&q, &a);
		ok(got == (t[i].rcode >= 0) && (!got || (a.rcode == t[i].rcode &&
		    a.n == t[i].n && (a.n == 0 || a.rr[0].type == t[i].type))),
		    "special_answer: %s", t[i].desc);
	}
	query_of(&p, &q, QH " n:localhost 0001 0001");
	special_answer(&q, &a);
	ok(memcmp(a.rr[0].data, "\x7f\x00\x00\x01", 4) == 0,
	    "special_answer: localhost is 127.0.0.1");
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	guard_init();
	if (argc == 3 && strcmp(argv[1], "--resolv") == 0)
		return resolv_file(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--servers") == 0)
		return servers_file(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: test/unit [--resolv FILE | --servers "
		    "FILE]\n");
		return 2;
	}
	init_query();
	test_guard();
	test_cursor();
	test_get_name();
	test_name_helpers();
	test_parse_query();
	test_parse_reply();
	test_prefixes();
	test_fuzz();
	test_truncate();
	test_build_error();
	test_policy_events();
	test_policy_health();
	test_ede_codes();
	test_reply_trust();
	test_answer_flags();
	test_finish_ede();
	test_cache_trust();
	test_opcodes();
	test_special_names();
	test_time();
	test_backoff();
	test_deadlines();
	test_rate();
	test_policy_self();
	test_acl();
	test_netlink();
	test_share();
	test_peek();
	test_cfg_addr();
	test_cfg_listen();
	test_glob();
	test_netns_path();
	test_servers_line();
	test_local_refusals();
	test_filter_aaaa();
	test_dns64();
	test_cache_ttls();
	test_cfg_uint();
	test_cfg_size();
	test_resolv();
	test_cfg_domain();
	test_build_answer();
	test_hosts();
	test_routes();
	test_routes_many();
	test_cache_cases();
	test_cache_hit();
	test_cache_keys();
	test_cache_lru();
	test_cache_stale();
	test_cache_costs();
	test_cache_sizes();
	test_cache_bytes();
	test_cache_stale_bytes();
	test_cache_fragments();
	test_cache_flood();
	printf("# %d tests, %d failed\n", n_run, n_failed);
	return n_failed != 0;
}
