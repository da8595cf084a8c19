/*
 * test/fuzz/driver.c - replay fuzz inputs without libFuzzer (c-ares's
 * test/ares-test-fuzz.c).
 *
 *	cc -fsanitize=address,undefined -DDNSFWD_TEST -o test/fuzz/replay/T \
 *	    test/fuzz/driver.c test/fuzz/fuzz-T.c dnsfwd.c
 *	test/fuzz/replay/T FILE|DIR...
 *
 * Every file named, and every regular file under each directory named
 * (recursively, in name order), is read into a buffer of exactly its size
 * and passed to the target's LLVMFuzzerTestOneInput().  Then one line is
 * printed, "ok - fuzz replay T: N inputs", with T the program's name.  A
 * bug is loud: the sanitizers stop at the first report (halt_on_error),
 * a broken invariant aborts, LeakSanitizer is asked after each input,
 * and each way the input's path is printed as "not ok - fuzz replay T:
 * PATH" and the exit status is not 0.  Exits 1 when nothing was replayed
 * or a path cannot be read.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int		 LLVMFuzzerTestOneInput(const uint8_t *, size_t);
const char	*__asan_default_options(void);
const char	*__ubsan_default_options(void);
/* weak: the driver also links without sanitizers */
void		 __sanitizer_set_death_callback(void (*)(void))
		    __attribute__((weak));
int		 __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static const char *target = "fuzz";
static const char *current;	/* the input being replayed, for a crash */
static int n_inputs, n_errors;

/* Stop at the first report and make the exit status say so. */
const char *
__asan_default_options(void)
{
	return "abort_on_error=0:detect_leaks=1:allocator_may_return_null=1";
}

const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:abort_on_error=1:print_stacktrace=1";
}

static void
say_crash(void)
{
	if (current == NULL)
		return;
	fprintf(stdout, "not ok - fuzz replay %s: %s\n", target, current);
	fflush(stdout);
	current = NULL;
}

/* A broken invariant aborts; ASan and UBSan call say_crash() instead. */
static void
on_signal(int sig)
{
	say_crash();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
replay_file(const char *path)
{
	struct stat sb;
	uint8_t *buf;
	size_t len;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL || fstat(fileno(fp), &sb) == -1) {
		printf("not ok - fuzz replay %s: %s: %s\n", target, path,
		    strerror(errno));
		n_errors++;
		if (fp != NULL)
			fclose(fp);
		return;
	}
	len = (size_t)sb.st_size;
	/* exactly len bytes, so ASan sees one byte read too far */
	if ((buf = malloc(len ? len : 1)) == NULL ||
	    fread(buf, 1, len, fp) != len) {
		printf("not ok - fuzz replay %s: %s: cannot read\n", target,
		    path);
		n_errors++;
		free(buf);
		fclose(fp);
		return;
	}
	fclose(fp);
	current = path;
	LLVMFuzzerTestOneInput(buf, len);
	current = NULL;
	free(buf);
	n_inputs++;
	/* as libFuzzer does: a leak is the input's, not the run's */
	if (__lsan_do_recoverable_leak_check != NULL &&
	    __lsan_do_recoverable_leak_check() != 0) {
		printf("not ok - fuzz replay %s: %s: leak\n", target, path);
		fflush(stdout);
		_exit(1);
	}
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *);

static void
replay_dir(const char *path)
{
	struct dirent *d;
	char **names = NULL, **more, sub[PATH_MAX];
	size_t n = 0, i;
	DIR *dp;

	if ((dp = opendir(path)) == NULL) {
		printf("not ok - fuzz replay %s: %s: %s\n", target, path,
		    strerror(errno));
		n_errors++;
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;	/* ".", ".." and hidden files */
		if ((more = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (more[n] = strdup(d->d_name)) == NULL) {
			fprintf(stderr, "driver: out of memory\n");
			exit(2);
		}
		names = more;
		n++;
	}
	closedir(dp);
	if (n > 0)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, names[i]);
		replay_path(sub);
		free(names[i]);
	}
	free(names);
}

static void
replay_path(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) == -1) {
		printf("not ok - fuzz replay %s: %s: %s\n", target, path,
		    strerror(errno));
		n_errors++;
	} else if (S_ISDIR(sb.st_mode)) {
		replay_dir(path);
	} else if (S_ISREG(sb.st_mode)) {
		replay_file(path);
	}
}

int
main(int argc, char **argv)
{
	const char *slash;
	int i;

	if (argc > 0 && argv[0] != NULL) {
		slash = strrchr(argv[0], '/');
		target = slash != NULL ? slash + 1 : argv[0];
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", target);
		return 2;
	}
	if (__sanitizer_set_death_callback != NULL)
		__sanitizer_set_death_callback(say_crash);
	signal(SIGABRT, on_signal);
	for (i = 1; i < argc; i++)
		replay_path(argv[i]);
	if (n_inputs == 0 && n_errors == 0) {
		printf("not ok - fuzz replay %s: no inputs\n", target);
		return 1;
	}
	if (n_errors != 0)
		return 1;
	printf("ok - fuzz replay %s: %d inputs\n", target, n_inputs);
	return 0;
}
