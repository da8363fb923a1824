/*
 * System calls with hostile arguments, made raw (syscall(2)) so the C
 * library does not filter them: pointers outside memory, huge lengths, bad
 * descriptors, bad sizes and numbers. Both qemu-riscv64 and skiff-isa-run
 * must answer with the same Linux error numbers (and not crash). Only
 * results that do not depend on the host are printed.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BAD ((long)0x7ffffffff000l) /* outside guest memory in both */

static void r(const char *what, long ret)
{
	if (ret < 0)
		printf("%-40s -> -1 errno %d\n", what, errno);
	else
		printf("%-40s -> %ld\n", what, ret);
	errno = 0;
}

int main(void)
{
	static char ok[64] = "x";
	static long iov_bad[4] = { BAD, 10, 0, 0 };
	static uint8_t st[256];
	fflush(stdout);
	r("write bad pointer", syscall(SYS_write, 1, BAD, 10));
	r("write huge length", syscall(SYS_write, 1, ok, 1l << 40));
	r("write bad fd", syscall(SYS_write, 99, ok, 1));
	r("write zero length", syscall(SYS_write, 1, ok, 0));
	r("writev bad iov array", syscall(SYS_writev, 1, BAD, 2));
	r("writev bad iov base", syscall(SYS_writev, 1, iov_bad, 1));
	r("writev too many", syscall(SYS_writev, 1, iov_bad, 5000));
	r("uname bad pointer", syscall(SYS_uname, BAD));
	r("getrandom bad pointer", syscall(SYS_getrandom, BAD, 16, 0));
	r("getrandom 16", syscall(SYS_getrandom, st, 16, 0));
	r("clock_gettime bad pointer", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BAD));
	r("clock_gettime bad clock", syscall(SYS_clock_gettime, 1000, st));
	r("rt_sigprocmask bad size", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, st, 4));
	r("rt_sigaction signal 0", syscall(SYS_rt_sigaction, 0, NULL, st, 8));
	r("rt_sigaction signal 65", syscall(SYS_rt_sigaction, 65, NULL, st, 8));
	r("prlimit64 bad resource", syscall(SYS_prlimit64, 0, 100, NULL, st));
	r("mmap length 0", syscall(SYS_mmap, 0, 0, 3, 0x22, -1, 0));
	r("mmap 2^62 bytes", syscall(SYS_mmap, 0, 1l << 62, 3, 0x22, -1, 0));
	r("munmap unaligned", syscall(SYS_munmap, 0x10001, 4096));
	r("brk(0) is nonzero", syscall(SYS_brk, 0) != 0);
	r("openat nonexistent", syscall(SYS_openat, AT_FDCWD, "/nonexistent/skiff", O_RDONLY));
	r("newfstatat stdout bad buffer", syscall(SYS_newfstatat, 1, "", BAD, 0x1000 /* AT_EMPTY_PATH */));
	r("fstat bad fd", syscall(SYS_fstat, 77, st));
	r("unknown system call 4000", syscall(4000, 1, 2, 3));
	r("getpid positive", syscall(SYS_getpid) > 0);
	done();
	return 0;
}
