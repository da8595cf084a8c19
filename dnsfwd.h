/*
 * dnsfwd.h - the tested contract of dnsfwd.
 *
 * Everything declared here is pure: no file descriptors, signals, clocks or
 * globals.  Time comes in as `now`, monotonic milliseconds.  The unit tests
 * compile dnsfwd.c with -DDNSFWD_TEST (which removes main) and call these.
 */
#ifndef DNSFWD_H
#define DNSFWD_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_MAX_NAME	255	/* RFC 1035 2.3.4: octets of a wire name */
#define DNS_MAX_QUERY	4096	/* largest query accepted, UDP or TCP */
#define DNS_MAX_UDP	4096	/* largest UDP answer relayed (EDNS ceiling) */
#define DNS_MAX_TCP	65535	/* RFC 1035 4.2.2: 16-bit length prefix */
#define DNS_HDR		12
#define MAX_UPSTREAMS	16	/* servers in one list; one bit each */
#define RESOLV_MAX_NS	8	/* nameservers taken from one resolv.conf */
#define RESOLV_MAX_FILE	65536	/* larger resolv/hosts files are refused */

/* RCODEs (RFC 1035 4.1.1) */
#define RCODE_NOERROR	0
#define RCODE_FORMERR	1
#define RCODE_SERVFAIL	2
#define RCODE_NXDOMAIN	3
#define RCODE_NOTIMP	4
#define RCODE_REFUSED	5
#define RCODE_BADVERS	16	/* RFC 6891 9: extended, carried in the OPT */

/* TYPEs and CLASS */
#define TYPE_A		1
#define TYPE_NS		2
#define TYPE_CNAME	5
#define TYPE_SOA	6
#define TYPE_PTR	12
#define TYPE_AAAA	28
#define TYPE_OPT	41
#define CLASS_IN	1

/* Header flag bits (second 16-bit word) */
#define DNS_QR		0x8000
#define DNS_AA		0x0400
#define DNS_TC		0x0200
#define DNS_RD		0x0100
#define DNS_RA		0x0080
#define DNS_AD		0x0020
#define DNS_CD		0x0010

/* ==== 5. Command-line values ============================================ */

/*
 * A socket address with its length.  A scope given by name ("%eth0") stays
 * a name in ifname, with sin6_scope_id 0, until the I/O code resolves it
 * (addr_scope()); a numeric scope ("%2") is set at once, ifname "".
 */
struct addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 ifname[IF_NAMESIZE];
};

#define LISTEN_MAX_CHAIN 8	/* addresses in one -l fallback chain */

struct listen_chain {
	struct addr	 a[LISTEN_MAX_CHAIN];
	int		 n;
};

/*
 * Parse "ADDR[<sep>PORT]" where ADDR is IPv4, or IPv6 (in brackets when
 * sep is ':'; "fe80::1%eth0" scopes allowed, kept as names).  sep is ':'
 * for -l and '#' for -s/-f.  Returns 0 and fills *out, or -1 with err
 * filled.
 */
int	cfg_parse_addr(const char *s, char sep, uint16_t defport,
	    struct addr *out, char *err, size_t errlen);

/*
 * Whether name matches the glob(7) pattern of a -N value: '*', '?', "[a-z]"
 * and "[!...]" sets, '\\' quoting; a leading '.' only by a '.'.
 */
bool	cfg_glob_match(const char *pattern, const char *name);
/*
 * Whether want is a namespace a -N asked for: its path (glob NULL), or a
 * name in dir that glob matches (no "/", not "." or "..").  The namespace
 * helper serves nothing else.
 */
bool	cfg_netns_path_ok(const char *path, const char *dir, const char *glob,
	    const char *want);

/* Parse a -l value: a comma-separated fallback chain.  0 or -1 as above. */
int	cfg_parse_listen(const char *s, struct listen_chain *out, char *err,
	    size_t errlen);

/*
 * Format a as "127.0.0.1:53" and "[::1]:53" (sep ':') or "127.0.0.1#53"
 * and "::1#53" (sep '#'), with "%iface" for a scope.  Returns buf.
 */
const char *addr_text(const struct addr *a, char sep, char *buf,
	    size_t len);

/*
 * Parse an unsigned decimal that must fill s entirely and lie in
 * [min, max].  Returns 0 and fills *out, or -1.
 */
int	cfg_parse_uint(const char *s, unsigned long min, unsigned long max,
	    unsigned long *out);

/*
 * A size in bytes: digits, then optionally k, m or g (KiB, MiB, GiB; either
 * case) as in unbound's "msg-cache-size: 4m".  0, or -1 when s is not one
 * or the value is outside [min, max].
 */
int	cfg_parse_size(const char *s, unsigned long long min,
	    unsigned long long max, unsigned long long *out);

/*
 * Convert a domain in text ("Corp.Example", "corp.example.", "#" or "."
 * for the root, which every name ends in) to lower-case wire form in out
 * (DNS_MAX_NAME bytes).  Returns the wire length, or -1 for an empty name
 * or label, a label over 63 or a name over 255 octets.
 */
int	cfg_parse_domain(const char *s, size_t len, uint8_t *out);

/* ==== 6-8. DNS wire format ============================================== */

/* A read cursor over untrusted bytes; the first error sticks in err. */
struct dns_cursor {
	const uint8_t	*buf;
	size_t		 len;
	size_t		 pos;
	const char	*err;	/* first error seen; NULL while all is well */
};

void	dns_cursor_init(struct dns_cursor *c, const uint8_t *buf, size_t len);
uint16_t dns_get_u16(struct dns_cursor *c);
uint32_t dns_get_u32(struct dns_cursor *c);

/*
 * Read the (possibly compressed) name at the cursor into out, which must
 * hold DNS_MAX_NAME bytes, uncompressed, in wire form, case preserved
 * (out NULL: check and skip it only).
 * A pointer must point strictly before the start of the run it ends, so
 * loops cannot exist.  Returns the wire length (1 for the root), or -1
 * with c->err set.  The cursor moves past the name as it appears in place.
 */
int	dns_get_name(struct dns_cursor *c, uint8_t *out);

/* Lower-case the ASCII letters of a wire name of length len, in place. */
void	dns_name_lower(uint8_t *name, size_t len);

/* Write wire name as dotted text ("example.test", "." for the root). */
void	dns_name_text(const uint8_t *name, char *out, size_t outlen);

/* Mnemonic of a TYPE ("A", "AAAA", ...; "TYPE65" otherwise); static. */
const char *dns_type_name(uint16_t type, char *buf, size_t buflen);
const char *dns_rcode_name(int rcode);

/* A query from a client, as checked by dns_parse_query(). */
struct dns_query {
	uint16_t	 id;
	uint16_t	 flags;
	uint16_t	 qtype;
	uint16_t	 qclass;
	uint16_t	 qend;		/* offset just past the question */
	uint16_t	 opt;		/* offset of the OPT RR, 0 without EDNS */
	uint16_t	 udp_size;	/* what the client takes; 512 w/o EDNS */
	bool		 do_bit;	/* EDNS DO (RFC 3225) */
	uint8_t		 qname_len;
	uint8_t		 qname[DNS_MAX_NAME];	/* wire form, lower case */
};

/*
 * Check a client query.  Returns 0 when it may be answered or forwarded
 * (q filled); -1 when it must be dropped silently (short, QR set); or an
 * RCODE (FORMERR, NOTIMP, BADVERS for an EDNS version other than 0) to
 * answer with.  When an RCODE is returned and q->qend is non-zero, the
 * question was readable and may be echoed.
 */
int	dns_parse_query(const uint8_t *buf, size_t len, struct dns_query *q);

/*
 * SipHash-1-3 of the question of q (name in lower case, type, class and
 * the EDNS, DO and CD bits) under key: the cache and the table of
 * questions in flight are keyed by names that clients choose, so their
 * buckets must not be predictable (hash flooding).
 */
uint32_t dns_question_hash(const uint64_t key[2], const struct dns_query *q);

/*
 * Write to out (size bytes) the query that goes upstream for the client
 * query in query (checked into q): its header (ID as given; RD, CD and AD
 * kept), its question as spelled, and, when the client used EDNS, an OPT
 * of our own: the client's size (at most DNS_MAX_UDP), its DO bit,
 * version 0, no options.  The client's options (COOKIE, Client Subnet,
 * padding) and any other records are not forwarded.  Returns the length,
 * 0 if no room.
 */
size_t	dns_build_query(uint8_t *out, size_t size, const uint8_t *query,
	    const struct dns_query *q);

/* Reply classes of the sequential policy (README: How an answer is chosen). */
enum reply_class {
	REPLY_POSITIVE,	/* NOERROR with answers, or TC: returned at once */
	REPLY_NEGATIVE,	/* NXDOMAIN or NODATA: kept, the next is asked */
	REPLY_FAILURE,	/* bad RCODE, malformed, timeout, network error */
	REPLY_FOREIGN,	/* not an answer to this question: ignored */
};

/*
 * What a reply says, from dns_parse_reply().  Its Extended DNS Errors
 * (RFC 8914) are part of the answer: dns_keep_ede() moves the options of
 * the OPT record that are EDEs (ede_len bytes, each option whole: code,
 * length, INFO-CODE, EXTRA-TEXT) to just past the message, where
 * dns_finish(), the cache and every copy of an answer keep them.
 */
#define DNS_EDE_MAX	255	/* EDE option bytes kept with one answer */

struct dns_reply {
	uint16_t	 id;
	uint16_t	 flags;
	int		 rcode;
	uint16_t	 ancount;
	uint16_t	 qend;		/* offset past the question, 0 if none */
	uint16_t	 opt;		/* offset of the OPT RR, 0 if none */
	uint16_t	 ar_opt;	/* additional records before the OPT */
	uint16_t	 end;		/* past the last counted record; 0: none */
	bool		 scoped;	/* Client Subnet with a scope: uncacheable */
	bool		 verdict;	/* an EDE states a verdict: ede_verdict() */
	int		 ede;		/* the first EDE INFO-CODE, -1 for none */
	uint8_t		 ede_len;	/* EDE option bytes past the message */
	uint16_t	 src;		/* the upstream that gave it (cache_put) */
	uint32_t	 min_ttl;	/* smallest TTL over all RRs but OPT */
	int64_t		 neg_ttl;	/* RFC 2308: min(SOA TTL, MINIMUM); -1 */
	enum reply_class class;
};

/*
 * Whether Extended DNS Error code states a validator's or a filter's
 * verdict about the name (SPEC rule 3a): 1-2 and 5-12 (DNSSEC: algorithm
 * or digest unsupported, indeterminate, bogus, signature expired or not
 * yet valid, DNSKEY, RRSIGs or NSEC missing, no zone key bit) and 15-17
 * (Blocked, Censored, Filtered).  Such an answer ends the walk: asking
 * the next upstream would hand the client what the first one refused.
 */
bool	ede_verdict(int code);

/*
 * FNV-1a of n bytes: the unkeyed hash of names from files and options
 * (the routing rules, hosts); names from clients are hashed with
 * dns_question_hash(), keyed.
 */
uint32_t	name_hash(const uint8_t *p, size_t n);

/*
 * The ID and flags of the message buf (len bytes), through the cursor;
 * false when it is shorter than a header.
 */
bool	dns_peek_header(const uint8_t *buf, size_t len, uint16_t *id,
	    uint16_t *flags);

/*
 * Classify an upstream reply to the query q (whose name is compared
 * case-insensitively, with type and class).  Returns the class and fills
 * *r.  The ID is not checked here; the caller matched it.
 */
enum reply_class dns_parse_reply(const uint8_t *buf, size_t len,
	    const struct dns_query *q, struct dns_reply *r);

/*
 * Cut a reply of len bytes that does not fit in limit bytes down to its
 * header, question and OPT record, with TC set and counts adjusted
 * (RFC 2181 9, RFC 6891 7).  Returns the new length (len when it fits).
 * r must come from dns_parse_reply() on the same bytes.
 */
size_t	dns_truncate(uint8_t *buf, size_t len, size_t limit,
	    const struct dns_reply *r);

/*
 * Remove the OPT record of the reply in buf (len bytes, described by r)
 * and the additional records after it: an upstream's OPT was made for our
 * query and may echo a client's options.  Its Extended DNS Errors are
 * part of the answer: they are kept, just past the new end (r->ede_len
 * bytes; DNS_EDE_MAX at most, a long EXTRA-TEXT cut).  Sets r->opt to 0;
 * returns the new length.
 */
size_t	dns_keep_ede(uint8_t *buf, size_t len, struct dns_reply *r);

/*
 * The header flags of an answer (the upstream's, flags) as the client of
 * q gets them: its own RD and CD echoed; AD only when it asked with AD or
 * DO (RFC 6840 5.8) and the upstream set it.
 */
uint16_t dns_answer_flags(uint16_t flags, const struct dns_query *q);

/*
 * Make an answer without OPT (len bytes in buf, then its r->ede_len bytes
 * of EDE options; size bytes of room; described by r) fit the client of
 * q: its header flags as dns_answer_flags() says, cut to header and
 * question with TC set when it and the OPT would exceed limit bytes,
 * then, for an EDNS client, append an OPT of our own (EDNS_SIZE, the
 * client's DO bit) that carries the answer's EDE options and dnsfwd's own
 * Extended DNS Error ede (RFC 8914) unless ede is -1.  Returns the new
 * length.
 */
size_t	dns_finish(uint8_t *buf, size_t len, size_t size,
	    const struct dns_reply *r, const struct dns_query *q, size_t limit,
	    int ede);

/*
 * Build an answer to query (len bytes, checked into q) with rcode, no
 * records but an OPT when the query had one (an extended rcode such as
 * BADVERS goes in the OPT), carrying Extended DNS Error ede unless it is
 * -1.  With q->qend zero, only the header is echoed.  Returns the length
 * written to out (size bytes), or 0 when it does not fit.
 */
size_t	dns_build_error(uint8_t *out, size_t size, const uint8_t *query,
	    const struct dns_query *q, int rcode, int ede);

/* A locally made answer: -a rules and hosts files. */
#define LOCAL_MAX_RR	8

struct local_answer {
	int		 rcode;
	int		 n;
	struct {
		uint16_t type;
		uint8_t	 len;
		uint8_t	 data[DNS_MAX_NAME];
	}		 rr[LOCAL_MAX_RR];
};

/*
 * Build the answer a to query (checked into q): question echoed, QR, AA
 * and RA set, RD and CD copied, one record per a->rr owned by the
 * question name, TTL ttl, an OPT when the query had one.  Returns the
 * length written to out (size bytes), or 0 when it does not fit.
 */
size_t	dns_build_answer(uint8_t *out, size_t size, const uint8_t *query,
	    const struct dns_query *q, const struct local_answer *a,
	    uint32_t ttl);

/*
 * --filter-aaaa: copy the reply in (len bytes, parsed) to out (size bytes)
 * without its AAAA records, the RRSIGs over them, and the ipv6hint of its
 * HTTPS and SVCB records (and its mention in their mandatory list); every
 * other byte of every other record is kept (names written out in full,
 * the question's as a pointer, as removing records may break a pointer
 * into them).  Returns the new length; 0 when nothing is to be removed
 * (in is right as it is) or out is too small or in malformed.
 */
#define TYPE_SVCB	64
#define TYPE_HTTPS	65
size_t	dns_filter_aaaa(const uint8_t *in, size_t len, uint8_t *out,
	    size_t size);

/*
 * DNS64 (RFC 6147) with a NAT64 prefix of plen bits (RFC 6052: 32, 40,
 * 48, 56, 64 or 96; bits 64-71, the u octet, are 0 and skipped).
 *  - dns64_addr: the IPv6 address embedding v4 under prefix;
 *  - dns64_v4: whether a6 is under prefix, and its IPv4 address;
 *  - dns64_usable: whether the positive AAAA answer ans (len bytes) has an
 *    AAAA outside the excluded ::ffff:0:0/96 (else it counts as none);
 *  - dns64_synth: the AAAA answer to the question of q6 (a reply to it,
 *    len6 bytes: its header and question are used) made from the A answer
 *    aans: CNAMEs kept, each A as an AAAA with TTL at most ttlcap, AD
 *    cleared, nothing but the answer section; its length, 0 when there
 *    was no A or no room;
 *  - dns64_ptr: a PTR question for an address under prefix is answered
 *    here with a CNAME to the IPv4 address's in-addr.arpa name.
 */
void	dns64_addr(const uint8_t *prefix, int plen, const uint8_t *v4,
	    uint8_t *out);
bool	dns64_v4(const uint8_t *a6, const uint8_t *prefix, int plen,
	    uint8_t *v4);
bool	dns64_usable(const uint8_t *ans, size_t len);
size_t	dns64_synth(const uint8_t *aans, size_t alen, const uint8_t *q6,
	    size_t len6, const uint8_t *prefix, int plen, uint32_t ttlcap,
	    uint8_t *out, size_t size);
bool	dns64_ptr(const struct dns_query *q, const uint8_t *prefix, int plen,
	    struct local_answer *a);

/*
 * The CHAOS-class names answered here, as dnsmasq does (its statistics,
 * read by dnsmasq_exporter, and version.bind): the index of q's name in
 * CHAOS_NAMES when q is CH TXT for one of them, else -1.
 */
#define CLASS_CH	3
#define TYPE_TXT	16
enum { CH_CACHESIZE, CH_INSERTIONS, CH_EVICTIONS, CH_MISSES, CH_HITS,
    CH_AUTH, CH_SERVERS, CH_VERSION, CH_COUNT };
int	chaos_name(const struct dns_query *q);

/*
 * Build a CHAOS TXT answer to query: one record (class CH, TTL 0, owned by
 * the question name) of the n strings s[] (each cut at 255 bytes), or no
 * record when n is 0; flags as dns_build_answer().  Returns the length,
 * or 0 when it does not fit in size.
 */
size_t	dns_build_txt(uint8_t *out, size_t size, const uint8_t *query,
	    const struct dns_query *q, const char *const *s, int n);

/* ==== 9. resolv.conf and hosts ========================================== */

struct ns_entry {
	struct addr	 addr;		/* "%iface" kept in addr.ifname */
};

struct resolv_conf {
	struct ns_entry	 ns[RESOLV_MAX_NS];
	int		 n;
	int		 ignored;	/* usable nameservers past the cap */
	int		 bad;		/* nameserver lines not understood */
};

/*
 * Parse resolv.conf text the way libc stub resolvers do: "nameserver"
 * followed by white space and an IPv4 or IPv6 address (with "%iface" on
 * link-local ones); comments from '#' or ';'; lines longer than 255 bytes
 * skipped; other keywords ignored.  Port 53 always.  The scope of a
 * "%iface" is left in addr.ifname for the caller to resolve (scope_id 0
 * here, or the number when numeric).  Returns the number of servers; never
 * fails.
 */
int	resolv_parse(const char *text, size_t len, struct resolv_conf *out);

/* One name of a hosts file. */
struct hosts_rec {
	uint32_t	 name;		/* offset of the wire name in names */
	uint32_t	 rname;		/* offset of the reverse name */
	uint8_t		 name_len, rname_len;
	uint8_t		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];
	int32_t		 next;		/* next record of the same name, -1 */
};

struct hosts {
	struct hosts_rec *rec;
	int		 n;
	uint8_t		*names;		/* wire names, lower case */
	uint32_t	*byname;	/* hash: record + 1; 0 empty */
	uint32_t	*byaddr;	/* hash on the reverse name */
	uint32_t	 mask;
	int		 bad;		/* lines not understood */
};

/*
 * Parse hosts(5) text: an address, then names; '#' starts a comment.
 * Allocates out's tables (free them with hosts_free()).  Returns the
 * number of names, or -1 when memory runs out.
 */
int	hosts_parse(const char *text, size_t len, struct hosts *out);
void	hosts_free(struct hosts *h);

/* The names h holds; *bad (if not NULL): the lines it did not understand. */
int	hosts_count(const struct hosts *h, int *bad);

/*
 * Answer q from h: A and AAAA for a name in the file (NODATA for the
 * other types), PTR for an address in it.  Returns true with a filled,
 * or false when the file does not know the name.
 */
bool	hosts_lookup(const struct hosts *h, const struct dns_query *q,
	    struct local_answer *a);

/*
 * Special-use names (RFC 6761, 7686, 9462), answered here and never
 * forwarded: localhost and names under it (A 127.0.0.1, AAAA ::1, other
 * types NODATA), invalid and onion names (NXDOMAIN), resolver.arpa and
 * names under it (NODATA: a client must not discover the upstream's
 * encrypted endpoint and go around dnsfwd).  Returns true with a filled
 * for such a name.  A rule or a hosts file that names one explicitly
 * comes first (the caller's order).
 */
bool	special_answer(const struct dns_query *q, struct local_answer *a);

/*
 * What --bogus-priv keeps here: q's name is in one of the RFC 6303
 * reverse zones of private and local addresses (10/8, 172.16/12,
 * 192.168/16, 127/8, 169.254/16, 100.64/10, fc00::/7, fe80::/10, ::1),
 * the zone's own name included.  Nibble and label forms are matched on
 * label boundaries; a name above a zone (192.in-addr.arpa) is not in it.
 */
bool	bogus_priv_name(const uint8_t *qname);

/*
 * What --domain-needed keeps here: a single-label name (printer, wpad)
 * asked for anything but a zone's own records (NS, SOA, DS, DNSKEY, which
 * validators ask of top-level domains).
 */
bool	domain_needed_name(const struct dns_query *q);

/* ==== 10-12. Policy, who may ask, routing =============================== */

/* A domain rule from -s /DOMAIN/... or -a /DOMAIN/... */
enum rule_kind {
	RULE_FORWARD,	/* to srv[0..nsrv-1], sequential policy */
	RULE_DEFAULT,	/* to the default list ("-s /d/#") */
	RULE_LOCAL,	/* answered here: has4/has6, else NXDOMAIN */
};

struct rule {
	uint8_t		*name;		/* wire, lower case */
	uint8_t		 name_len;
	uint8_t		 kind;
	bool		 has4, has6;
	uint8_t		 a4[4], a6[16];
	int		 nsrv;
	struct addr	*srv;
};

/* All rules, hashed by name so matching costs one probe per label. */
struct routes {
	struct rule	*r;
	int		 n, cap;
	uint32_t	*slot;		/* rule + 1; 0 empty */
	uint32_t	 mask;
};

/*
 * Add the rules of one option value "/D1/D2/.../VALUE": for -s (local
 * false) VALUE is ADDR[#PORT], "#" for the default list, or empty for a
 * local-only domain; for -a (local true) VALUE is an IPv4 or IPv6
 * address, or empty for NXDOMAIN.  A domain named again gains servers or
 * addresses; a local rule wins over forwarding.  Allocates; returns 0, or
 * -1 with err filled.
 */
int	route_add(struct routes *t, const char *spec, bool local, char *err,
	    size_t errlen);

/* The rule with the longest suffix of qname (wire, lower), or -1. */
int	route_match(const struct routes *t, const uint8_t *qname);

/* Fill a for q from a RULE_LOCAL rule. */
void	route_local(const struct rule *r, const struct dns_query *q,
	    struct local_answer *a);

void	routes_free(struct routes *t);

/*
 * One line of a --servers-file (n bytes, no newline), dnsmasq's syntax:
 * "server=/D/[D/...][ADDR[#PORT]|#]" and "local=/D/" add to t (as -s),
 * "address=/D/[D/...][IP]" too (as -a), "server=ADDR[#PORT]" appends to
 * srv[*nsrv] (a server of the default list, maxsrv at most).  A bad line
 * adds nothing.  Returns SL_NONE (blank, comment), SL_RULE, SL_SERVER, or
 * SL_BAD / SL_OTHER (another dnsmasq option) with why filled.
 */
#define SERVERS_MAX_FILE	(1 << 20)	/* larger servers files refused */
#define SERVERS_LINE_MAX	4096
enum { SL_NONE, SL_RULE, SL_SERVER, SL_BAD, SL_OTHER };
int	servers_line(const char *line, size_t n, struct routes *t,
	    struct addr *srv, int *nsrv, int maxsrv, char *why, size_t wl);

/* The number of rules, and rule i (0 <= i < routes_count(t)). */
int	routes_count(const struct routes *t);
struct rule *route_at(struct routes *t, int i);

/*
 * Time.  `now` is the monotonic clock in milliseconds, passed in by the
 * caller.  It may start anywhere and it wraps modulo 2^64, so an instant is
 * compared with now only through time_due() (the signed distance: right
 * while the two are less than 2^63 ms apart) and a deadline is made only by
 * time_after().  TIME_NONE (0) means "no deadline": time_after() never
 * returns it (a deadline that would fall on it falls 1 ms later) and
 * time_due() is never true of it.
 */
#define TIME_NONE	0

/* The timing rules (SPEC; README "Timing rules"), in milliseconds. */
#define BACKOFF_MIN	1000	/* a down upstream's first backoff ... */
#define BACKOFF_MAX	60000	/* ... doubling up to this */
#define HOLD_MS		5000	/* queries held at start for an upstream */
#define STALE_WAIT_MS	1800	/* RFC 8767 5: the client response timer */
#define TCP_IDLE_MS	10000	/* RFC 7766 6.2.3: an idle client closed */
#define TCP_MSG_MS	5000	/* a message whole within this of its 1st byte */
#define RATE_MS		60000	/* a message that repeats: once a minute */

/* Whether now is before the instant at (any value: no TIME_NONE here). */
bool	 time_before(uint64_t now, uint64_t at);

/* Whether the deadline at (not TIME_NONE) has come at now. */
bool	 time_due(uint64_t now, uint64_t at);

/* The deadline ms after now; never TIME_NONE. */
uint64_t time_after(uint64_t now, uint64_t ms);

/* The earlier of two deadlines seen from now; TIME_NONE if both are. */
uint64_t time_first(uint64_t now, uint64_t a, uint64_t b);

/*
 * How long a poll() at now may sleep for the deadline next: -1 for
 * TIME_NONE (forever), 0 when it is due, else 1 ms past it (the clock
 * reads whole milliseconds), at most a day.
 */
int	 time_wait(uint64_t now, uint64_t next);

/*
 * A message that can repeat (a refused stranger, held queries failing):
 * said at most max times per period, the period starting with the first
 * one said; the others are counted.  Zeroed: nothing said yet.
 */
struct rate {
	uint64_t	 at;		/* the period's start; TIME_NONE: none */
	uint32_t	 said;		/* said in it */
	uint32_t	 quiet;		/* kept quiet since the last one said */
};

/*
 * Whether to say it at now.  When it is to be said, *quiet (if not NULL)
 * gets how many were kept quiet since the last one said, and the count
 * starts again.
 */
bool	 rate_say(struct rate *r, uint64_t now, uint64_t period,
	    uint32_t max, uint32_t *quiet);

/*
 * A query that came at start with no upstream known yet is held until
 * hold_deadline(start), then fails; start-up waits for an upstream until
 * the same deadline, then is ready all the same.
 */
uint64_t hold_deadline(uint64_t start);

/* A query that came at start with a stale answer kept gets it then. */
uint64_t stale_deadline(uint64_t start);

/*
 * A TCP client's clock (RFC 7766 6.2.3, SPEC Fairness): between whole
 * messages it may be idle TCP_IDLE_MS; from the first byte of a message
 * the message must be whole within TCP_MSG_MS, however its bytes trickle.
 */
enum tcp_phase { TCP_IDLE, TCP_MSG };

/* The deadline of a client that enters phase p at now. */
uint64_t tcp_deadline(enum tcp_phase p, uint64_t now);

/* When a client whose deadline in phase p is d entered it. */
uint64_t tcp_since(enum tcp_phase p, uint64_t d);

enum tcp_verdict {
	TCP_WAIT,	/* idle, but answers are owed it: another period */
	TCP_CLOSE_IDLE,	/* idle and owed nothing: closed */
	TCP_CLOSE_SLOW,	/* a message not whole in time: closed */
};

/* What becomes of a client in phase p at its deadline; busy: owed answers. */
enum tcp_verdict tcp_expire(enum tcp_phase p, bool busy);

/*
 * One upstream server and its health; the health survives reloads.  An
 * upstream that timed out is down (backoff != 0) until it answers again:
 * it is asked only when every live upstream of its list failed, and is
 * probed in the background at most once per backoff period.
 */
/*
 * The buckets of the upstream duration histogram (--metrics), in ms: an
 * answer that took d ms counts in the first bucket whose bound is >= d
 * (1, 2.5, 5 ... 5000 ms: 2.5 holds 2, as d is whole ms); the last
 * bucket is everything slower.
 */
#define UP_HIST		13
#define UP_HIST_MS	{ 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, \
			  5000 }

struct upstream {
	struct addr	 addr;
	bool		 failover;	/* asked only when the others failed */
	bool		 final;		/* its answers end the walk: the stub */
	uint16_t	 tag;		/* names it in the cache: dns_reply.src */
	uint64_t	 probe_at;	/* ms; down: the next probe from then */
	uint64_t	 down_at;	/* ms; down: when backoff last grew */
	uint32_t	 backoff;	/* ms; 0 while live, then 1000..60000 */
	uint32_t	 answers;	/* counters for SIGUSR1 and --metrics */
	uint32_t	 timeouts;
	uint32_t	 errors;
	uint32_t	 sent;		/* attempts sent to it */
	uint32_t	 hist[UP_HIST];	/* answers by time taken (UP_HIST_MS) */
	uint64_t	 dur_ms;	/* ... their sum */
};

/*
 * Fill order[] with the positions 0..n-1 of u[], each group in list
 * order: the live ones that are not failovers first, then the live
 * failovers, then the down ones.  Returns the size of the first group (the
 * upstreams a query asks before any other): the live non-failovers, or
 * when there are none the live failovers.  A failover (systemd-resolved's
 * uplink servers behind its stub) is asked, like a down upstream, only
 * when every one before it failed, never after a negative answer.
 */
int	policy_order(const struct upstream *u, int n, uint8_t *order);

/*
 * An upstream timed out, failed with a network error, or failed a probe
 * at now: it is down for BACKOFF_MIN ms, its next probe that far away.
 * Already down, the backoff doubles (up to BACKOFF_MAX) only once its
 * current period has run out: the failures of queries sent before it went
 * down, however many, count once.  (Counters are the caller's.)
 */
void	policy_down(struct upstream *u, uint64_t now);

/* An upstream answered: it is live again. */
void	policy_alive(struct upstream *u);

/*
 * Whether a down upstream is due a probe at now; if so, the next is a
 * backoff away (at most one probe per backoff period).
 */
bool	policy_probe(struct upstream *u, uint64_t now);

/*
 * The per-query decision state; positions index the query's order[], the
 * live upstreams first.  The negative kept is the best so far: NODATA
 * outranks NXDOMAIN (the name exists at some upstream), a validated one
 * (AD) one that is not, and between two alike the later in the order.
 * Both modes reach the same answer.
 */
struct policy {
	uint8_t		 n;		/* upstreams in the order */
	uint8_t		 live;		/* the first live of them, all if 0 */
	uint8_t		 next;		/* next position to ask */
	uint8_t		 stop;		/* parallel: end of the round asked */
	int8_t		 neg;		/* position of the kept answer, -1 */
	uint8_t		 negrank;	/* 2 NXDOMAIN, 4 NODATA, +1 AD; 8 a
					 * final answer kept in parallel */
	bool		 parallel;
	uint32_t	 pending;	/* bit per position awaiting a reply */
};

enum policy_act {
	ACT_WAIT,	/* parallel: others are still pending */
	ACT_ANSWER,	/* send this reply to the client */
	ACT_NEXT,	/* ask the position policy_ask() gives */
	ACT_NEGATIVE,	/* send the kept negative answer */
	ACT_SERVFAIL,	/* nothing usable: SERVFAIL */
};

/*
 * Start a decision over n upstreams of which the first live are live
 * (policy_order()).  The down ones are asked only when every live one
 * failed; negative answers from the live ones end the decision.  With no
 * live one, all are asked as if live.  Returns ACT_NEXT when there is one
 * to ask (parallel: the live round all pending), else ACT_SERVFAIL.
 */
enum policy_act policy_start(struct policy *p, int n, int live,
	    bool parallel);

/*
 * The next position to ask: sequential, marks it pending and returns it
 * once; parallel, returns the positions of the current round in turn (all
 * pending from its start).  Returns -1 when there is none left.
 */
int	policy_ask(struct policy *p);

/*
 * The upstream at position pos gave the reply r (NULL for a timeout or a
 * network error); final: that upstream's answers are final (systemd-
 * resolved's stub, rule 3b).  A positive answer, a verdict (r->verdict)
 * and a final upstream's answer are returned at once; a negative is kept
 * when it outranks the one kept so far (NODATA over NXDOMAIN, then AD over
 * none, then the later) and *keep is set.  Returns what to do; ACT_NEXT in
 * parallel starts the round of the down upstreams.  An event for a
 * position that is not pending returns ACT_WAIT.
 */
enum policy_act policy_event(struct policy *p, int pos,
	    const struct dns_reply *r, bool final, bool *keep);

/*
 * Whether a nameserver would send queries back to dnsfwd: 0.0.0.0 or ::,
 * or one of the listening addresses self[0..n-1] (a wildcard listener
 * counts for every loopback address on its port).  systemd-resolved's
 * stubs (127.0.0.53/54) are self only when dnsfwd listens there.
 */
bool	policy_is_self(const struct addr *ns, const struct addr *self, int n);

/* Whether a is systemd-resolved's stub, 127.0.0.53 or 127.0.0.54, port 53. */
bool	policy_is_stub(const struct addr *a);

/*
 * Who may ask.  A prefix is an IPv4 or IPv6 network; a set is what one
 * --allow list or one namespace's on-link networks hold.  An IPv4 client
 * seen on an IPv6 socket (::ffff:a.b.c.d) is matched as IPv4.
 */
struct prefix {
	uint8_t		 v6;		/* 0: IPv4 (a[0..3]), 1: IPv6 */
	uint8_t		 len;		/* bits; host bits of a[] are zero */
	uint8_t		 a[16];
};

#define ACL_MAX		64	/* prefixes in one set */

struct acl {
	int		 n;
	bool		 full;		/* more were offered than fit */
	struct prefix	 p[ACL_MAX];
};

/*
 * Parse "10.0.0.0/8", "fd00::/8", or an address alone (a /32 or /128);
 * host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8, as iptables and
 * CoreDNS read it), and an IPv4-mapped network (::ffff:10.0.0.0/104) is
 * the IPv4 one, as clients are matched.  Returns 0 and fills *out, or -1
 * with err filled.
 */
int	cfg_parse_prefix(const char *s, struct prefix *out, char *err,
	    size_t errlen);

/* Add p to set unless it is there; false (and set->full) when full. */
bool	acl_add(struct acl *set, const struct prefix *p);

/* Whether sa is loopback: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
bool	acl_is_loopback(const struct sockaddr *sa);

/* Whether sa (AF_INET or AF_INET6) lies in a prefix of set. */
bool	acl_match(const struct acl *set, const struct sockaddr *sa);

/*
 * Read netlink messages buf[0..len) of an RTM_GETADDR dump whose request
 * carried seq, adding every address's network to out (IFA_ADDRESS and
 * IFA_LOCAL, each with the address's prefix length).  Messages of another
 * sequence (address notifications) are skipped and counted in *other.
 * Returns 1 when the dump's NLMSG_DONE was read, 0 when more is to come,
 * -1 for an error message or a message that runs past the buffer.
 */
int	nl_parse_addrs(const uint8_t *buf, size_t len, uint32_t seq,
	    struct acl *out, int *other);

/*
 * The fair share of a table of max (queries in flight, TCP connections,
 * upstream TCP buffers) of which used are taken: may a source that holds
 * held of them take one more?  A source is an address (IPv4, or IPv6
 * /128: SHARE_ADDR); an IPv6 address's /64 (SHARE_NET64) has a larger
 * share of its own, checked as well.
 *  - An address may add one while the table is under half full, or while
 *    it holds fewer than are still free, or when it holds none: alone it
 *    is held to half the table, and k flooding addresses to max/(k+1)
 *    each, leaving that much to everyone else.
 *  - A /64 may add one while the table is under half full, or while it
 *    holds fewer than three times what is still free: alone it is held
 *    to three quarters, so one host of a shared /64 (half the table)
 *    leaves a quarter to its neighbours, and one host with many
 *    addresses in its /64 leaves a quarter to the rest of the world.
 * A full table is refused by the table, not by this rule.
 */
enum share_level { SHARE_ADDR, SHARE_NET64 };
bool	policy_share_ok(int held, int used, int max, enum share_level lv);
/* What one source alone can take of a table of max (SIGUSR1, tests). */
int	policy_share_max(int max, enum share_level lv);

/* ==== 13-14. Cache ====================================================== */

#define CACHE_DATA	1232	/* larger answers are not cached */
#define CACHE_MAX_TTL	86400	/* seconds, as unbound's cache-max-ttl */
#define CACHE_MAX_NEG	10800	/* RFC 2308 5: three hours at most */
#define CACHE_TTLS	110	/* TTLs noted per entry: all that fit */
#define STALE_TTL	30	/* RFC 8767 4: the TTL of a stale answer */
#define CACHE_BLOCK	64	/* the arena's unit, in bytes */
#define CACHE_TYPICAL	256	/* arena bytes per entry unless told */
#define CACHE_ARENA_MIN	4096	/* room for two of the largest answers */
#define CACHE_NIL	UINT32_MAX	/* ends a block chain */

/*
 * Intrusive lists of table slots, doubly linked by index: the tables are
 * arrays allocated at start, so an index serves as a pointer.  For every
 * list and every slot, what holds:
 *  - a slot is on at most one list through a given link; on none, its
 *    link is { -1, -1 } (its owner may say so in a field of its own);
 *  - on a list, prev is the slot before it, -1 at the head, and next the
 *    one after it, -1 at the tail; head and tail are -1 exactly when the
 *    list is empty.
 * dnsfwd.c's list_add(), list_unlink() and list_splice() keep it;
 * nothing else writes a link.
 */
struct link {
	int32_t		 prev, next;
};

struct list {
	int32_t		 head, tail;
};

/*
 * One entry's fixed part: its question, times, links.  Its answer and the
 * offsets of the answer's TTLs live in the arena, in a chain of blocks.
 */
struct cache_entry {
	uint64_t	 stored;	/* ms */
	uint32_t	 ttl;		/* s: fresh until stored + ttl */
	uint32_t	 gen;		/* fresh only while it is the cache's */
	uint32_t	 hash;		/* dns_question_hash() of its question */
	int32_t		 hnext;		/* hash chain; -1 ends */
	struct link	 use;		/* use order; use.next: the free list */
	uint32_t	 block;		/* first block of its chain */
	uint16_t	 qtype, qclass;
	uint16_t	 len;		/* of the answer, which has no OPT */
	uint16_t	 src;		/* the upstream that gave it: r->src */
	uint8_t		 kr;		/* cache_key() << 4 | RCODE */
	uint8_t		 qname_len;
	uint8_t		 nttl;		/* TTL offsets after the answer ... */
	uint8_t		 ede_len;	/* ... then its EDE options */
};

struct cache {
	struct cache_entry *e;		/* size of them, e[high..size) unused */
	int		 size;		/* entries at most (-c); 0: off */
	int		 n;		/* in use */
	int		 high;
	int32_t		 free;		/* freed entries, linked by use.next */
	int32_t		*bucket;	/* hash -> first entry, -1 */
	uint32_t	 mask;
	struct list	 use;		/* use order: head most recent */
	uint8_t		*arena;		/* nb blocks of CACHE_BLOCK bytes */
	uint32_t	*bnext;		/* bnext[b]: the block after b */
	uint32_t	 nb;
	uint32_t	 bhigh;		/* blocks [bhigh, nb) never used */
	uint32_t	 bfree;		/* freed blocks, linked by bnext */
	uint32_t	 nbfree;	/* on that list */
	uint64_t	 key[2];	/* dns_question_hash() key: secret */
	uint64_t	 stale_ms;	/* entries are kept this long past expiry */
	uint32_t	 gen;		/* bumped by cache_expire() */
	uint32_t	 min_ttl;	/* --min-cache-ttl: positives kept longer */
	uint32_t	 max_ttl;	/* --max-cache-ttl (CACHE_MAX_TTL) */
	bool		 no_neg;	/* --no-negcache */
	bool		 stale_seen;	/* the last miss had a stale answer */
	uint64_t	 hits, misses, evictions, inserts, stale_hits;
};

/* What SIGUSR1 and the tests read of a cache. */
struct cache_stats {
	int		 entries, size;	/* in use, at most */
	size_t		 bytes;		/* arena bytes entries hold */
	size_t		 arena;		/* the arena's size */
	size_t		 memory;	/* all allocated: headers, buckets, arena */
	uint64_t	 hits, misses, evictions, inserts, stale_hits;
};

/*
 * Allocate a cache of size entries (0: off) and an arena of bytes (0:
 * size * CACHE_TYPICAL, at least CACHE_ARENA_MIN), its buckets keyed by
 * key (a per-process secret).  Memory is allocated once, here, but touched
 * only as entries use it.  0, or -1 without memory.
 */
int	cache_init(struct cache *c, int size, size_t bytes,
	    const uint64_t key[2]);
void	cache_free(struct cache *c);

/* Drop every entry (SIGHUP). */
void	cache_flush(struct cache *c);

/*
 * Keep entries up to seconds past their expiry, for cache_get_stale()
 * (RFC 8767; 0, the default after cache_init(), keeps none).
 */
void	cache_stale(struct cache *c, uint32_t seconds);

/*
 * The TTL rules of cache_put() (cache_init() sets 0, CACHE_MAX_TTL,
 * false): a positive answer is kept for its smallest TTL raised to min and
 * lowered to max, and every TTL stored with it likewise, so that served
 * ones count down from the clamp (dnsmasq's --min-cache-ttl and
 * --max-cache-ttl); a negative one for its SOA rule (RFC 2308) lowered to
 * max, never raised; with no_neg, negatives are not kept.
 */
void	cache_ttls(struct cache *c, uint32_t min, uint32_t max, bool no_neg);

/*
 * Lower every TTL of the message buf (len bytes; not the OPT's) to cap
 * (no answer is handed out with more than --max-cache-ttl).
 */
void	dns_cap_ttls(uint8_t *buf, size_t len, uint32_t cap);

/*
 * Expire every entry at once, keeping them as stale ones (the upstream
 * list changed: the new list is asked, but an outage right after the
 * switch can still be served).  O(1).
 */
void	cache_expire(struct cache *c);

/*
 * Store ans (len bytes, described by r, its r->ede_len bytes of EDE
 * options after them) as the answer to q at now, with r->src, the tag of
 * the upstream that gave it; an OPT record in it is left out but for its
 * EDEs (dns_keep_ede()), and bytes past r->end are never kept.  Only
 * positive answers (for their smallest TTL) and negative ones with an SOA
 * (RFC 2308: min(SOA TTL, MINIMUM)) are kept; TC, failures, TTL 0,
 * answers scoped by Client Subnet, answers over CACHE_DATA bytes and with
 * more than CACHE_TTLS records are not.  The least recently used entries
 * are evicted until there is an entry and room in the arena for it.
 * Returns true when stored.
 */
bool	cache_put(struct cache *c, const struct dns_query *q,
	    const uint8_t *ans, size_t len, const struct dns_reply *r,
	    uint64_t now);

/*
 * Look up q (its query bytes in query) at now.  On a hit, write the
 * answer to out (size bytes) with the query's ID and spelling of the
 * name and every TTL lowered by the whole seconds spent in the cache, no
 * OPT (dns_finish() adds the client's), fill *r for dns_finish(), and
 * return its length; 0 on a miss.  After a miss, cache_stale_seen() tells
 * whether an expired answer is still kept for cache_get_stale(); such an
 * entry goes to the end of the use order, evicted before fresh ones.
 */
size_t	cache_get(struct cache *c, const struct dns_query *q,
	    const uint8_t *query, uint8_t *out, size_t size, uint64_t now,
	    struct dns_reply *r);

/*
 * The same, but an expired answer within the stale window is served too,
 * every TTL set to at most STALE_TTL (RFC 8767 4): the last resort when
 * no upstream answers.  Only an answer whose upstream is still one the
 * query is routed to (its tag among srcs[0..nsrc)): a laptop that moved
 * to another network never gets the last one's answers.  0 when there is
 * none.
 */
size_t	cache_get_stale(struct cache *c, const struct dns_query *q,
	    const uint8_t *query, uint8_t *out, size_t size, uint64_t now,
	    struct dns_reply *r, const uint16_t *srcs, int nsrc);

/* The number of entries in the longest hash chain (SIGUSR1, tests). */
int	cache_longest_chain(const struct cache *c);

/* Did the last cache_get() miss where a stale answer is kept? */
bool	cache_stale_seen(const struct cache *c);

void	cache_stats(const struct cache *c, struct cache_stats *s);

#endif /* DNSFWD_H */
