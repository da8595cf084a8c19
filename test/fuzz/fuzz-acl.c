/*
 * fuzz-acl: who may ask, as dnsfwd reads it.
 *
 * Byte 0 picks the entry point:
 *	even	nl_parse_addrs over the rest, as a netlink dump whose request
 *		carried sequence 7 (the bytes come from the kernel, but a
 *		parser that trusts lengths is a parser to fuzz)
 *	odd	cfg_parse_prefix over the rest as text (--allow)
 *
 * Invariants: a set never holds more than ACL_MAX networks, each with a
 * length its family allows and no host bits set; a network parsed from
 * --allow contains its own address and, unless it is /0, not the address
 * with the first bit past its length flipped... of the other half.
 */
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

static void
check_prefix(const struct prefix *p)
{
	int i, max = p->v6 ? 128 : 32;

	check(p->v6 <= 1 && p->len <= max);
	for (i = 0; i < 16; i++) {
		if (8 * (i + 1) <= p->len)
			continue;
		if (8 * i >= p->len)
			check(p->a[i] == 0);
		else
			check((p->a[i] & (0xff >> (p->len - 8 * i))) == 0);
	}
}

/* p as a socket address: its network address. */
static struct sockaddr_storage
sock_of(const struct prefix *p)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (p->v6) {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, p->a, 16);
	} else {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, p->a, 4);
	}
	return ss;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct prefix p;
	struct acl set;
	char text[256], err[256];
	int i, other = 0, rc;

	if (size == 0)
		return 0;
	memset(&set, 0, sizeof(set));
	if ((data[0] & 1) == 0) {
		rc = nl_parse_addrs(data + 1, size - 1, 7, &set, &other);
		check(rc >= -1 && rc <= 1);
		check(set.n >= 0 && set.n <= ACL_MAX);
		for (i = 0; i < set.n; i++) {
			check_prefix(&set.p[i]);
			ss = sock_of(&set.p[i]);
			check(acl_match(&set, (struct sockaddr *)&ss));
		}
		return 0;
	}
	if (size - 1 >= sizeof(text))
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	err[0] = '\0';
	if (cfg_parse_prefix(text, &p, err, sizeof(err)) == -1) {
		check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		return 0;
	}
	check_prefix(&p);
	check(acl_add(&set, &p) && set.n == 1);
	ss = sock_of(&p);
	check(acl_match(&set, (struct sockaddr *)&ss));
	if (p.len > 0 && p.len < (p.v6 ? 128 : 32)) {
		p.a[(p.len - 1) / 8] ^= (uint8_t)(0x80 >> ((p.len - 1) % 8));
		ss = sock_of(&p);	/* the other half of the parent */
		check(!acl_match(&set, (struct sockaddr *)&ss) ||
		    acl_is_loopback((struct sockaddr *)&ss));
	}
	return 0;
}
