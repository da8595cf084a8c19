/*
 * test/fuzz/fuzz.h - what every fuzz target shares.
 *
 * Each test/fuzz/fuzz-*.c defines LLVMFuzzerTestOneInput() for one entry
 * point of dnsfwd.h.  The same file links either with libFuzzer (clang
 * -fsanitize=fuzzer, `make fuzz`) or with test/fuzz/driver.c (any cc with
 * ASan and UBSan, `make test`), which replays test/fuzz/corpus/TARGET/.
 *
 * check() states an invariant of the code under test.  A broken one prints
 * the condition and aborts, which libFuzzer records as a crash and the
 * replay driver reports with the input's file name.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)	check_((cond) != 0, #cond, __FILE__, __LINE__)

static void
check_(int cond, const char *what, const char *file, int line)
{
	if (cond)
		return;
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

#endif /* FUZZ_H */
