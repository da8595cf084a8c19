/*
 * fuzz-servers: servers_line() over every line of any text, as a
 * --servers-file is read, into one table; then routes_free().  Built with
 * LeakSanitizer, so the table must be freed whole.
 *
 * Invariants: a line refused (SL_BAD, SL_OTHER) changes neither the table
 * nor the server list and says why; SL_NONE changes nothing; SL_SERVER
 * adds exactly one server, with a port that is not 0; SL_RULE leaves
 * every rule's name a well-formed lower-case wire name found again by
 * route_match(), a forwarding rule with at least one server unless it is
 * local or the default list; the server list never passes its bound.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "../../dnsfwd.h"
#include "fuzz.h"

#define SRV_MAX	4

static void
check_table(const struct routes *t)
{
	const struct rule *r;
	size_t i, len;
	int k;

	for (k = 0; k < routes_count(t); k++) {
		r = route_at((struct routes *)(uintptr_t)t, k);
		for (len = 0; r->name[len] != 0; len += 1u + r->name[len]) {
			check(r->name[len] <= 63);
			for (i = 1; i <= r->name[len]; i++)
				check(!(r->name[len + i] >= 'A' &&
				    r->name[len + i] <= 'Z'));
		}
		check(len + 1 == r->name_len && len + 1 <= DNS_MAX_NAME);
		check(route_match(t, r->name) == k);
		check(r->kind == RULE_LOCAL || r->kind == RULE_DEFAULT ||
		    r->nsrv > 0);
		check(r->nsrv >= 0 && r->nsrv <= MAX_UPSTREAMS);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct addr srv[SRV_MAX];
	struct routes t;
	char why[160];
	int kind, n, nsrv = 0, before;

	if (size > SERVERS_MAX_FILE)
		return 0;	/* the caller refuses larger files */
	memset(&t, 0, sizeof(t));
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = routes_count(&t);
		before = nsrv;
		why[0] = '\0';
		kind = servers_line(p, (size_t)(nl - p), &t, srv, &nsrv,
		    SRV_MAX, why, sizeof(why));
		check(kind >= SL_NONE && kind <= SL_OTHER);
		if (kind == SL_BAD || kind == SL_OTHER)
			check(why[0] != '\0' && routes_count(&t) == n &&
			    nsrv == before);
		if (kind == SL_NONE)
			check(routes_count(&t) == n && nsrv == before);
		if (kind == SL_SERVER)
			check(nsrv == before + 1 && routes_count(&t) == n &&
			    ((const struct sockaddr_in *)&srv[before].ss)->
			    sin_port != 0);
		if (kind == SL_RULE)
			check(nsrv == before);
		check(nsrv <= SRV_MAX);
	}
	check_table(&t);
	routes_free(&t);
	check(routes_count(&t) == 0);
	return 0;
}
