/*
 * gai: getaddrinfo() as a stub resolver's user calls it, for the tests
 * that ask dnsfwd through a real libc: glibc (cc) and musl (musl-gcc
 * -static).  Prints each address on a line of its own, or "error: ..."
 * and exits 2 when the lookup fails; the family is AF_UNSPEC unless
 * "4" or "6" is given.
 *
 *	test/gai NAME [4|6]
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	struct addrinfo hints, *res, *r;
	char text[INET6_ADDRSTRLEN];
	const void *a;
	int rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gai NAME [4|6]\n");
		return 3;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = argc == 3 && strcmp(argv[2], "4") == 0 ? AF_INET :
	    argc == 3 && strcmp(argv[2], "6") == 0 ? AF_INET6 : AF_UNSPEC;
	if ((rc = getaddrinfo(argv[1], NULL, &hints, &res)) != 0) {
		printf("error: %s\n", gai_strerror(rc));
		return 2;
	}
	for (r = res; r != NULL; r = r->ai_next) {
		if (r->ai_family == AF_INET)
			a = &((struct sockaddr_in *)(void *)r->ai_addr)->sin_addr;
		else
			a = &((struct sockaddr_in6 *)(void *)r->ai_addr)->
			    sin6_addr;
		printf("%s\n", inet_ntop(r->ai_family, a, text, sizeof(text)));
	}
	freeaddrinfo(res);
	return 0;
}
