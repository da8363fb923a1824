/*
 * base/gram: guest RAM on transparent huge pages, and what a discard
 * (balloon, free page reporting) does to them. A discarded range must come
 * back a small page at a time: the guest's next touch of one 4 KiB page
 * there may not bring back 2 MiB (the balloon would give back nothing).
 * The host decides whether RAM gets huge pages at all; the checks hold
 * either way, and the test says which case it saw. And RAM mapped from a
 * memory file that is truncated under it: an access to a page the file no
 * longer holds reads zeros and is noted (gram.lost), where it raised a
 * SIGBUS that ended the process. A SIGBUS that is not guest RAM's still
 * ends the process by SIGBUS, after the handler that was there before,
 * on a thread that may not change a signal's action (the sandbox).
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/gram.h"
#include "check.h"

static struct check_counts C;

#define BASE 0x80000000ull
#define MIB (1ull << 20)
#define SLACK 16

/* Resident bytes of the huge page holding gpa. */
static uint64_t resident_in(struct gram *r, uint64_t gpa)
{
	uint64_t start = gpa & ~(GRAM_HUGE_SIZE - 1);
	unsigned char vec[GRAM_HUGE_SIZE >> GRAM_PAGE_SHIFT];
	if (mincore(gram_ptr(r, start, GRAM_HUGE_SIZE), GRAM_HUGE_SIZE, vec))
		return UINT64_MAX;
	uint64_t n = 0;
	for (size_t i = 0; i < sizeof(vec); i++)
		n += vec[i] & 1;
	return n << GRAM_PAGE_SHIFT;
}

static void touch(struct gram *r, uint64_t gpa)
{
	*(volatile uint8_t *)gram_ptr(r, gpa, 1) = 1;
}

/* Lines of /proc/self/maps: the memory areas the process has. */
static int areas(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void discard_then_touch(void)
{
	struct gram r;
	CHECK(&C, gram_init(&r, BASE, 64 * MIB) == 0, "64 MiB of RAM");
	CHECK(&C, ((uintptr_t)r.host & (GRAM_HUGE_SIZE - 1)) == 0,
	      "RAM starts on a huge-page boundary (%p)", (void *)r.host);
	uint64_t hp = BASE + 6 * MIB, other = BASE + 10 * MIB;
	CHECK(&C, !gram_small_pages(&r, hp) || !r.small,
	      "fresh RAM is not switched to small pages");
	touch(&r, hp + 123);
	uint64_t first = resident_in(&r, hp);
	printf("first touch of a fresh huge page brought back %llu KiB (%s)\n",
	       (unsigned long long)first >> 10,
	       first == GRAM_HUGE_SIZE ? "the host gives huge pages" : "the host gave a small page");
	CHECK(&C, first == GRAM_HUGE_SIZE || first == GRAM_PAGE_SIZE, "a touch brings back a page");

	/* Free page reporting: a whole, aligned 2 MiB block. */
	CHECK(&C, gram_discard(&r, hp, GRAM_HUGE_SIZE) == 0, "discard 2 MiB");
	CHECK(&C, resident_in(&r, hp) == 0, "the discard gave everything back (%llu KiB left)",
	      (unsigned long long)resident_in(&r, hp) >> 10);
	CHECK(&C, gram_small_pages(&r, hp), "the discarded huge page is on small pages now");
	CHECK(&C, !gram_small_pages(&r, other) || !r.small, "another huge page is not");
	touch(&r, hp + 4096 * 7);
	CHECK(&C, resident_in(&r, hp) == GRAM_PAGE_SIZE,
	      "a touch after the discard brings back one small page, not %llu KiB",
	      (unsigned long long)resident_in(&r, hp) >> 10);

	/* The balloon: one 4 KiB page inside a huge page the guest uses. */
	touch(&r, other);
	touch(&r, other + 8192);
	CHECK(&C, gram_discard(&r, other + 8192, GRAM_PAGE_SIZE) == 0, "discard 4 KiB");
	CHECK(&C, gram_small_pages(&r, other), "a 4 KiB discard switches its huge page too");
	uint64_t left = resident_in(&r, other);
	CHECK(&C, left < GRAM_HUGE_SIZE && left >= GRAM_PAGE_SIZE,
	      "the 4 KiB page was given back, the rest kept (%llu KiB)", (unsigned long long)left >> 10);
	touch(&r, other + 8192);
	CHECK(&C, resident_in(&r, other) == left + GRAM_PAGE_SIZE,
	      "touching it again brings back that page only (%llu -> %llu KiB)",
	      (unsigned long long)left >> 10, (unsigned long long)resident_in(&r, other) >> 10);
	gram_destroy(&r);
}

/* Each run of switched huge pages costs the host memory areas; past
 * GRAM_SMALL_RUNS_MAX runs all of RAM goes to small pages at once, which
 * joins the areas again. */
static void bounded_runs(void)
{
	struct gram r;
	uint64_t hps = 2 * (GRAM_SMALL_RUNS_MAX + 2);
	CHECK(&C, gram_init(&r, BASE, hps * GRAM_HUGE_SIZE) == 0, "RAM for the runs");
	if (!r.small) {
		printf("the host refused MADV_HUGEPAGE: RAM stays on small pages\n");
		CHECK(&C, gram_small_pages(&r, BASE), "no huge pages asked for: all small");
		gram_destroy(&r);
		return;
	}
	int before = areas();
	/* Every other huge page: each discard starts a run of its own. */
	for (uint64_t i = 0; i < GRAM_SMALL_RUNS_MAX; i++)
		gram_discard(&r, BASE + 2 * i * GRAM_HUGE_SIZE, GRAM_PAGE_SIZE);
	int most = areas();
	CHECK(&C, gram_small_pages(&r, BASE + 2 * (GRAM_SMALL_RUNS_MAX - 1) * GRAM_HUGE_SIZE) &&
		  !gram_small_pages(&r, BASE + GRAM_HUGE_SIZE),
	      "up to the bound, only the discarded huge pages are switched");
	/* SLACK: areas the C library or a sanitizer may map meanwhile. */
	CHECK(&C, most > before + GRAM_SMALL_RUNS_MAX && most <= before + 2 * GRAM_SMALL_RUNS_MAX + SLACK,
	      "each run is an area or two (%d -> %d)", before, most);
	gram_discard(&r, BASE + 2 * GRAM_SMALL_RUNS_MAX * GRAM_HUGE_SIZE, GRAM_PAGE_SIZE);
	CHECK(&C, gram_small_pages(&r, BASE + GRAM_HUGE_SIZE) &&
		  gram_small_pages(&r, BASE + (hps - 1) * GRAM_HUGE_SIZE),
	      "one run more: all of RAM is on small pages");
	int after = areas();
	CHECK(&C, after <= before + SLACK, "and the areas are joined again (%d -> %d -> %d)",
	      before, most, after);
	gram_destroy(&r);
}

/* The mapping itself, as the engine's block arena uses it too. */
static void huge_mapping(void)
{
	bool huge;
	uint64_t size = 6 * MIB + 4096;
	uint8_t *p = gram_map_huge(size, &huge);
	CHECK(&C, p != MAP_FAILED, "mapped");
	if (p == MAP_FAILED)
		return;
	CHECK(&C, ((uintptr_t)p & (GRAM_HUGE_SIZE - 1)) == 0, "on a huge-page boundary (%p)", (void *)p);
	p[size - 1] = 1;   /* the whole length is there, and no more is ours */
	unsigned char vec[1];
	CHECK(&C, mincore(p + 2 * MIB, 4096, vec) == 0, "inside");
	p[2 * MIB + 5] = 1;
	uint64_t n = 0;
	unsigned char v2[GRAM_HUGE_SIZE >> GRAM_PAGE_SHIFT];
	if (mincore(p + 2 * MIB, GRAM_HUGE_SIZE, v2) == 0)
		for (size_t i = 0; i < sizeof(v2); i++)
			n += v2[i] & 1;
	CHECK(&C, !huge || n == 1 || n == sizeof(v2),
	      "a touch brings back a small or a huge page (%llu pages)", (unsigned long long)n);
	CHECK(&C, munmap(p, size) == 0, "unmapped");
}

/* RAM mapped from a file, then the file truncated to half: the first
 * half's pages still read from the file, or what was written to them (a
 * private copy); the first access past the new end reads zeros, and
 * gram.lost names that page. Past the end even a page written before is
 * gone (Linux drops the private copies past a truncation too). */
static void truncated_file(void)
{
	char path[] = "/tmp/skiff-test-gram-XXXXXX";
	int fd = mkstemp(path);
	CHECK(&C, fd >= 0, "temporary file");
	if (fd < 0)
		return;
	unlink(path);
	uint64_t size = 64 * GRAM_PAGE_SIZE;
	uint8_t *img = malloc(size);
	memset(img, 0xab, size);
	CHECK(&C, pwrite(fd, img, size, 0) == (ssize_t)size, "file written");
	free(img);
	gram_catch_lost_pages();
	struct gram r;
	CHECK(&C, gram_init_file(&r, BASE, size, fd) == 0, "RAM mapped from the file");
	volatile uint8_t *kept = gram_ptr(&r, BASE + 10 * GRAM_PAGE_SIZE, 1);
	volatile uint8_t *cut = gram_ptr(&r, BASE + 40 * GRAM_PAGE_SIZE, 1);
	*kept = 0x55;  /* copy-on-write: these pages are the RAM's own now */
	*cut = 0x66;
	CHECK(&C, ftruncate(fd, size / 2) == 0, "file truncated");
	volatile uint8_t *low = gram_ptr(&r, BASE + 3 * GRAM_PAGE_SIZE + 7, 1);
	CHECK(&C, *low == 0xab, "a page the file still holds reads from it: %#x", *low);
	CHECK(&C, *kept == 0x55, "a page written before, below the new end, keeps it: %#x", *kept);
	CHECK(&C, atomic_load(&r.lost) == 0, "nothing lost yet");
	volatile uint8_t *gone = gram_ptr(&r, BASE + 50 * GRAM_PAGE_SIZE + 9, 1);
	CHECK(&C, *gone == 0, "a page past the file's new end reads zeros: %#x", *gone);
	CHECK(&C, atomic_load(&r.lost) == BASE + 50 * GRAM_PAGE_SIZE + 1,
	      "gram.lost names that page: %#llx", (unsigned long long)atomic_load(&r.lost));
	*gone = 7;
	CHECK(&C, *gone == 7, "the page of zeros takes writes");
	CHECK(&C, *cut == 0, "a page written before, past the new end, reads zeros: %#x", *cut);
	CHECK(&C, atomic_load(&r.lost) == BASE + 50 * GRAM_PAGE_SIZE + 1, "gram.lost keeps the first");
	gram_destroy(&r);
	close(fd);
}

static int prev_ran_fd = -1;

/* Like the console's fatal-signal handler (base/terminal.c): note, then
 * the signal again for the default action. */
static void prev_handler(int sig)
{
	char b = 1;
	if (write(prev_ran_fd, &b, 1) < 0)
		_exit(99);
	raise(sig);
}

/* In a child: `prev` as SIGBUS's handler (SIG_DFL or prev_handler), then
 * gram's, then a filter that kills the process on rt_sigaction (a confined
 * thread's list), then a read past the end of a truncated file mapping
 * that is not guest RAM. Returns how the child ended. */
static int foreign_sigbus(bool with_prev, bool *prev_ran)
{
	int pfd[2];
	if (pipe(pfd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prev_ran_fd = pfd[1];
		struct sigaction sa = { .sa_handler = with_prev ? prev_handler : SIG_DFL,
					.sa_flags = SA_RESETHAND };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, NULL);
		gram_catch_lost_pages();
		char path[] = "/tmp/skiff-test-gram-XXXXXX";
		int fd = mkstemp(path);
		unlink(path);
		if (fd < 0 || ftruncate(fd, 2 * GRAM_PAGE_SIZE))
			_exit(98);
		volatile uint8_t *m = mmap(NULL, 2 * GRAM_PAGE_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED || ftruncate(fd, 0))
			_exit(97);
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigaction, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
			_exit(96);
		(void)m[GRAM_PAGE_SIZE];
		_exit(0);
	}
	close(pfd[1]);
	int status = -1;
	if (pid > 0)
		waitpid(pid, &status, 0);
	char b;
	*prev_ran = read(pfd[0], &b, 1) == 1;
	close(pfd[0]);
	return status;
}

static void not_guest_ram(void)
{
	for (int with_prev = 0; with_prev < 2; with_prev++) {
		bool prev_ran = false;
		int st = foreign_sigbus(with_prev, &prev_ran);
		CHECK(&C, WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
		      "%s: a SIGBUS outside guest RAM ends the process by SIGBUS (status %#x%s)",
		      with_prev ? "a handler before" : "none before", st,
		      WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? ": SIGSYS, it changed an action" : "");
		CHECK(&C, prev_ran == with_prev, "the handler there before ran: %d", prev_ran);
	}
}

int main(void)
{
	/* First: its children install gram's handler after their own. */
	not_guest_ram();
	truncated_file();
	huge_mapping();
	discard_then_touch();
	bounded_runs();
	return check_summary(&C);
}
