PREFIX	?= /usr/local
CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Wpedantic -Wshadow \
	   -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
	   -Wimplicit-fallthrough -Wcast-qual -Wwrite-strings -Wundef
SAN	 = -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer

all: dnsfwd

# `make` builds what the README promises, one static binary to copy
# anywhere, with musl-gcc (musl-tools) when it is there, and says which it
# built; without it, or with `make dynamic`, the system compiler's build.
# .build records how ./dnsfwd was built, so switching rebuilds it.
MUSLCC	!= command -v musl-gcc 2>/dev/null || true
STATIC	 = musl-gcc $(WARN) -O2 -static -s $(LDFLAGS)
DYNAMIC	 = $(CC) $(WARN) $(CFLAGS) $(LDFLAGS)
BUILD	 = $(if $(MUSLCC),$(STATIC),$(DYNAMIC))

dnsfwd: dnsfwd.c dnsfwd.h .build
	$(BUILD) -o $@ dnsfwd.c
	@echo "dnsfwd: $(if $(MUSLCC),a static binary (musl-gcc),a dynamic binary ($(CC)); apt-get install musl-tools for the static one), $$(wc -c <dnsfwd) bytes"

.build: FORCE
	@echo '$(BUILD)' | cmp -s - $@ || echo '$(BUILD)' >$@

static:
	$(MAKE) dnsfwd MUSLCC=musl-gcc

dynamic:
	$(MAKE) dnsfwd MUSLCC=

# the size the README quotes: the static build's, stripped
size: dnsfwd
	@wc -c <dnsfwd | awk '{ printf "dnsfwd: %d bytes (%d KB)\n", $$1, ($$1 + 512) / 1024 }'
	@file dnsfwd 2>/dev/null | sed 's/^/  /' || :

test/unit: test/unit.c test/wire.h dnsfwd.c dnsfwd.h
	$(CC) $(WARN) -Werror $(SAN) -DDNSFWD_TEST -o $@ test/unit.c dnsfwd.c

test/fakeup: test/fakeup.c test/wire.h
	$(CC) $(WARN) -Werror $(SAN) -o $@ test/fakeup.c

test/dnsq: test/dnsq.c test/wire.h
	$(CC) $(WARN) -Werror $(SAN) -o $@ test/dnsq.c

test/chaos: test/chaos.c test/wire.h
	$(CC) $(WARN) -Werror $(SAN) -o $@ test/chaos.c

FUZZ	 = query reply resolv hosts options acl cache servers
REPLAY	 = $(FUZZ:%=test/fuzz/replay/%)

test/fuzz/replay/%: test/fuzz/fuzz-%.c test/fuzz/driver.c test/fuzz/fuzz.h test/wire.h \
    dnsfwd.c dnsfwd.h
	@mkdir -p test/fuzz/replay
	$(CC) $(WARN) -Werror $(SAN) -DDNSFWD_TEST -o $@ test/fuzz/driver.c \
	    test/fuzz/fuzz-$*.c dnsfwd.c

# the release build with a test-only path: DNSFWD_FORBIDDEN_CALL set, it
# makes a system call the sandbox forbids once the filter is on
test/dnsfwd-sbtest: dnsfwd.c dnsfwd.h
	$(CC) $(WARN) -Werror -O1 -g -DDNSFWD_SANDBOX_TEST -o $@ dnsfwd.c

test/dnsfwd-san: dnsfwd.c dnsfwd.h
	$(CC) $(WARN) -Werror $(SAN) -o $@ dnsfwd.c

# the system compiler's build (glibc): the suite runs on it too, since musl
# and glibc make different system calls for the same function and the
# sandbox's filter must allow both (./dnsfwd is the musl one)
test/dnsfwd-cc: dnsfwd.c dnsfwd.h
	$(CC) $(WARN) -Werror $(CFLAGS) -o $@ dnsfwd.c

TESTBINS = dnsfwd test/unit test/fakeup test/dnsq test/chaos test/dnsfwd-san \
	   test/dnsfwd-sbtest test/dnsfwd-cc \
	   $(REPLAY)
NPROC	!= nproc 2>/dev/null || echo 2

# the programs are built in parallel, then test/run.sh runs the suite
test:
	$(MAKE) -j$(NPROC) $(TESTBINS)
	BINS="dnsfwd test/dnsfwd-cc test/dnsfwd-san" bash test/run.sh

# the suite N times (BUSY=1: beside a busy loop per core); what ever failed
N	?= 5
test-repeat:
	$(MAKE) -j$(NPROC) $(TESTBINS)
	bash test/repeat.sh $(N)

# The warnings the code is held to: the build's ($(WARN)) as errors, with
# and without the unit tests' DNSFWD_TEST, and clang's -Weverything minus:
#  -Wno-padded: structs are laid out to be read; padding is not a defect;
#  -Wno-disabled-macro-expansion: glibc defines sa_handler as a macro of
#   itself (struct sigaction), which we only assign;
#  and for DNSFWD_TEST, which builds the pure half alone, -Wno-unused-macros
#   (the I/O half's limits are defined but not compiled).
EVERYTHING = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Weverything \
	     -Wno-padded -Wno-disabled-macro-expansion
warnings:
	$(CC) $(WARN) -Werror -fsyntax-only dnsfwd.c
	$(CC) $(WARN) -Werror -fsyntax-only -DDNSFWD_TEST dnsfwd.c
	clang $(EVERYTHING) -Werror -fsyntax-only dnsfwd.c
	clang $(EVERYTHING) -Werror -fsyntax-only -DDNSFWD_TEST \
	    -Wno-unused-macros dnsfwd.c

test-cross: test/fakeup test/dnsq test/chaos
	WARN='$(WARN)' bash test/cross.sh

fuzz:
	sh test/fuzz/run.sh

CHAOS_SECONDS ?= 600
chaos: test/chaos test/dnsfwd-san
	test/chaos -s $(CHAOS_SECONDS) test/dnsfwd-san

bench: dnsfwd
	bash test/bench/bench.sh

install: dnsfwd
	install -D -m 755 dnsfwd $(DESTDIR)$(PREFIX)/sbin/dnsfwd

clean:
	rm -f dnsfwd .build test/unit test/fakeup test/dnsq test/chaos test/dnsfwd-san test/dnsfwd-sbtest test/dnsfwd-cc test/bench/benchup test/bench/relay test/bench/bench-acl test/bench/bench-cache
	rm -rf test/cross test/fuzz/replay
	rm -f $(FUZZ:%=test/fuzz/fuzz-%)

FORCE:

.PHONY: dynamic size warnings all static test test-repeat test-cross fuzz chaos bench install clean FORCE
