/*
 * fuzz-resolv: resolv_parse() on any text, as read from a followed
 * resolv.conf (at most RESOLV_MAX_FILE bytes, not NUL-terminated).
 *
 * Invariants: at most RESOLV_MAX_NS servers, each an IPv4 or IPv6 address
 * on port 53 that addr_text() prints and cfg_parse_addr() reads back the
 * same; an interface name only on IPv6 and NUL-terminated; an IPv4
 * address printed as it was written; no more servers, ignored and bad
 * lines together than there are lines; the same result twice.
 */
/* memmem() needs _GNU_SOURCE, which the Makefile defines */
#include <arpa/inet.h>
#include <string.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

static void
check_ns(const struct ns_entry *e, const uint8_t *data, size_t size)
{
	const struct sockaddr_in6 *sin6;
	struct addr back;
	char text[128], err[256], *p;
	size_t len;

	check(e->addr.ss.ss_family == AF_INET ||
	    e->addr.ss.ss_family == AF_INET6);
	check(memchr(e->addr.ifname, '\0', sizeof(e->addr.ifname)) != NULL);
	if (e->addr.ss.ss_family == AF_INET) {
		check(e->addr.len == sizeof(struct sockaddr_in));
		check(e->addr.ifname[0] == '\0');
		check(((const struct sockaddr_in *)&e->addr.ss)->sin_port ==
		    htons(53));
	} else {
		sin6 = (const struct sockaddr_in6 *)&e->addr.ss;
		check(e->addr.len == sizeof(struct sockaddr_in6));
		check(sin6->sin6_port == htons(53));
		check(sin6->sin6_scope_id == 0 || e->addr.ifname[0] == '\0');
	}
	for (len = 1; len < 40; len += 7) {
		memset(text, 'x', sizeof(text));
		addr_text(&e->addr, '#', text, len);
		check(memchr(text, '\0', len) != NULL);
	}
	addr_text(&e->addr, '#', text, sizeof(text));
	check(cfg_parse_addr(text, '#', 1, &back, err, sizeof(err)) == 0);
	check(back.len == e->addr.len);
	check(memcmp(&back.ss, &e->addr.ss, e->addr.len) == 0);
	check(strcmp(back.ifname, e->addr.ifname) == 0);
	if (e->addr.ss.ss_family == AF_INET) {
		p = strchr(text, '#');
		*p = '\0';
		check(memmem(data, size, text, strlen(text)) != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct resolv_conf rc, rc2;
	size_t i, lines = 1;
	int n;

	if (size > RESOLV_MAX_FILE)
		return 0;	/* the caller refuses larger files */
	n = resolv_parse((const char *)data, size, &rc);
	check(n == rc.n);
	check(n >= 0 && n <= RESOLV_MAX_NS);
	check(rc.ignored >= 0 && rc.bad >= 0);
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	check((size_t)n + (size_t)rc.ignored + (size_t)rc.bad <= lines);
	for (i = 0; i < (size_t)n; i++)
		check_ns(&rc.ns[i], data, size);
	check(resolv_parse((const char *)data, size, &rc2) == n);
	check(memcmp(&rc, &rc2, sizeof(rc)) == 0);
	return 0;
}
