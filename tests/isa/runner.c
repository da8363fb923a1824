/*
 * skiff-isa-run: runs a static riscv64 Linux program in user mode on skiff's
 * engine, for the differential ISA checks (the same program also runs under
 * qemu-riscv64 and the two outputs must agree byte for byte).
 *
 * It loads the ELF (ET_EXEC, PT_LOAD segments, every field checked: a
 * malformed file gets an error message, never a crash) into guest RAM that
 * starts at address 0, builds the initial stack the way Linux does (argc,
 * argv, envp, auxv; System V ABI RISC-V supplement and Linux fs/binfmt_elf.c),
 * starts one hart in U-mode with user ECALLs exiting to us, and emulates the
 * handful of Linux system calls a glibc-static program needs.
 *
 * Guest address space (guest-virtual = guest-physical):
 *   [LOAD_MIN, MMAP_BASE)       program segments, then the brk heap
 *   [MMAP_BASE, stack_low)      anonymous mmap, handed out upwards
 *   [stack_low, stack_top)      the stack (STACK_SIZE)
 *   [pt_base, trap page)        page tables for --mmu (not guest-accessible)
 *   trap page (last page)       stvec points here; it holds an ECALL, so a
 *                               U-mode exception lands in S-mode, the ECALL
 *                               exits with EXIT_SBI at that pc and we report
 *                               scause/sepc/stval.
 * With --mmu sv39|sv48|sv57 the same identity map is built as page tables
 * (privileged spec 10.3-10.6) so every access goes through the MMU and TLB:
 * 4 KiB pages for the first 64 MiB and the top 2 MiB, 2 MiB megapages in
 * between; user RWX with A and D set; the trap page supervisor-only; the
 * page-table pages and the page at 0 unmapped.
 *
 * Exit status: the guest's exit status, or
 *   1    access outside guest memory (EXIT_MMIO)
 *   2    usage error, unreadable or malformed ELF, setup failure
 *   3    the engine gave up (EXIT_FATAL) or exited unexpectedly
 *   124  instruction limit or timeout reached
 *   128+signal  the guest took an exception (or raised a signal); signal is
 *        the one Linux would deliver (SIGILL, SIGSEGV, SIGBUS, SIGTRAP), so
 *        a shell reports it the same way it reports qemu-riscv64 dying.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/gram.h"
#include "engine/engine.h"

#ifndef EM_RISCV
#define EM_RISCV 243
#endif

/* Guest memory layout. */
#define RAM_SIZE (1ull << 30)
#define LOAD_MIN 0x1000ull
#define MMAP_BASE 0x20000000ull
#define STACK_SIZE (8ull << 20)
#define PAGE 4096ull
#define MAX_ELF_BYTES (256ull << 20)
#define MAX_PHNUM 256
#define MAX_ARG_BYTES (128u << 10)
#define PT_PAGES 64
#define SMALL_LOW (64ull << 20)   /* 4 KiB pages below this... */
#define SMALL_HIGH (2ull << 20)   /* ...and in this much at the top */

/* Page-table entry bits (privileged spec 10.3.1). */
#define PTE_V 0x01ull
#define PTE_R 0x02ull
#define PTE_W 0x04ull
#define PTE_X 0x08ull
#define PTE_U 0x10ull
#define PTE_A 0x40ull
#define PTE_D 0x80ull

/* Exit statuses of the runner itself. */
#define RUN_OUTSIDE_MEMORY 1
#define RUN_SETUP_ERROR 2
#define RUN_FATAL 3
#define RUN_LIMIT 124

/* Linux errno values (asm-generic, as used by riscv64). */
#define G_ENOENT 2
#define G_EIO 5
#define G_EBADF 9
#define G_ENOMEM 12
#define G_EFAULT 14
#define G_ENODEV 19
#define G_EINVAL 22
#define G_ENOTTY 25
#define G_ESPIPE 29
#define G_ENOSYS 38

/* Linux riscv64 system call numbers (asm-generic/unistd.h). */
enum {
	SYS_ioctl = 29,
	SYS_openat = 56,
	SYS_close = 57,
	SYS_lseek = 62,
	SYS_read = 63,
	SYS_write = 64,
	SYS_writev = 66,
	SYS_readlinkat = 78,
	SYS_newfstatat = 79,
	SYS_fstat = 80,
	SYS_exit = 93,
	SYS_exit_group = 94,
	SYS_set_tid_address = 96,
	SYS_futex = 98,
	SYS_set_robust_list = 99,
	SYS_nanosleep = 101,
	SYS_clock_gettime = 113,
	SYS_clock_getres = 114,
	SYS_clock_nanosleep = 115,
	SYS_sched_yield = 124,
	SYS_kill = 129,
	SYS_tkill = 130,
	SYS_tgkill = 131,
	SYS_rt_sigaction = 134,
	SYS_rt_sigprocmask = 135,
	SYS_uname = 160,
	SYS_gettimeofday = 169,
	SYS_getpid = 172,
	SYS_getppid = 173,
	SYS_getuid = 174,
	SYS_geteuid = 175,
	SYS_getgid = 176,
	SYS_getegid = 177,
	SYS_gettid = 178,
	SYS_brk = 214,
	SYS_munmap = 215,
	SYS_mremap = 216,
	SYS_mmap = 222,
	SYS_mprotect = 226,
	SYS_madvise = 233,
	SYS_prlimit64 = 261,
	SYS_riscv_hwprobe = 258,
	SYS_riscv_flush_icache = 259,
	SYS_getrandom = 278,
};

#define G_MAP_FIXED 0x10u
#define G_MAP_ANONYMOUS 0x20u
#define G_MAP_FIXED_NOREPLACE 0x100000u
#define G_AT_EMPTY_PATH 0x1000u
#define GUEST_PID 4242

/* CSR numbers (privileged spec, table 2.2). */
#define CSR_SSTATUS 0x100
#define CSR_STVEC 0x105
#define CSR_SCOUNTEREN 0x106
#define CSR_SENVCFG 0x10a
#define SENVCFG_CBZE (1u << 7)
#define CSR_SATP 0x180
#define CSR_SEPC 0x141
#define CSR_SCAUSE 0x142
#define CSR_STVAL 0x143
#define SSTATUS_FS_MASK (3ull << 13)
#define SSTATUS_FS_INITIAL (1ull << 13)

#define INSN_ECALL 0x00000073u

struct runner {
	struct gram ram;
	struct hart *hart;
	bool ram_ok;

	/* Options. */
	uint64_t max_insns;   /* 0: no limit */
	double timeout_s;     /* 0: none */
	bool verbose;
	unsigned mmu_levels;  /* 0: bare, 3: Sv39, 4: Sv48, 5: Sv57 */
	enum engine_tier engine;
	bool lockstep;
	uint64_t jit_threshold; /* 0: the engine's default */
	bool cbze;            /* senvcfg.CBZE: CBO.ZERO allowed in U-mode */

	/* Program image facts. */
	uint64_t entry;
	uint64_t phdr_addr, phnum;
	uint64_t image_end;

	/* Address space. */
	uint64_t brk_start, brk_cur, brk_limit;
	uint64_t mmap_next, mmap_limit;
	uint64_t stack_low, stack_top;
	uint64_t pt_base;
	uint64_t trap_addr;

	/* Deterministic randomness for AT_RANDOM and getrandom(). */
	uint64_t rng;

	/* Guest termination. */
	bool done;
	int status;

	/* Watchdog: kicks the hart so limits are checked. */
	pthread_t kicker;
	bool kicker_running;
	atomic_bool kicker_stop;
	struct timespec started;
};

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("skiff-isa-run: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t rng_next(struct runner *r)
{
	/* xorshift64* */
	uint64_t x = r->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t page_up(uint64_t x)
{
	return (x + PAGE - 1) & ~(PAGE - 1);
}

/* ---- guest memory helpers (all bounds-checked through gram_ptr) ---- */

/* Guest memory a system call may touch: RAM below the page tables. */
static void *gptr(struct runner *r, uint64_t addr, uint64_t len)
{
	if (addr >= r->pt_base || len > r->pt_base - addr)
		return NULL;
	return gram_ptr(&r->ram, addr, len);
}

static int gwrite(struct runner *r, uint64_t addr, const void *src, uint64_t len)
{
	if (!gptr(r, addr, len))
		return -1;
	return gram_write(&r->ram, addr, src, len);
}

static int gzero(struct runner *r, uint64_t addr, uint64_t len)
{
	void *p = gptr(r, addr, len);
	if (!p)
		return -1;
	memset(p, 0, len);
	gram_written(&r->ram, addr, len);
	return 0;
}

/* Zero a possibly large range without touching the host pages: whole pages
 * are handed back to the host (they read as zero), the edges cleared. */
static int gclear(struct runner *r, uint64_t addr, uint64_t len)
{
	if (!gptr(r, addr, len))
		return -1;
	uint64_t lo = page_up(addr), hi = (addr + len) & ~(PAGE - 1);
	if (hi <= lo)
		return gzero(r, addr, len);
	gzero(r, addr, lo - addr);
	gzero(r, hi, addr + len - hi);
	return gram_discard(&r->ram, lo, hi - lo) ? gzero(r, lo, hi - lo) : 0;
}

static int gput64(struct runner *r, uint64_t addr, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return gwrite(r, addr, b, 8);
}

static int gget64(struct runner *r, uint64_t addr, uint64_t *v)
{
	const uint8_t *p = gptr(r, addr, 8);
	if (!p)
		return -1;
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = (x << 8) | p[i];
	*v = x;
	return 0;
}

/* ---- ELF loading ---- */

static int read_file(const char *path, uint8_t **out, size_t *outlen)
{
	/* O_NONBLOCK: a FIFO must not hang us before the type check. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		note("%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		note("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > MAX_ELF_BYTES) {
		note("%s: too large (%lld bytes, limit %llu)", path,
		     (long long)st.st_size, MAX_ELF_BYTES);
		close(fd);
		return -1;
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		note("%s: out of memory", path);
		close(fd);
		return -1;
	}
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			note("%s: short read", path);
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)k;
	}
	close(fd);
	*out = buf;
	*outlen = n;
	return 0;
}

/*
 * Check and load a static executable (ELF-64 object file format, and the
 * RISC-V ELF psABI: e_machine EM_RISCV, EF_RISCV_RVE unsupported).
 * Returns 0, or -1 after printing what is wrong.
 */
static int load_elf(struct runner *r, const char *path, const uint8_t *img, size_t size)
{
	Elf64_Ehdr eh;
	if (size < sizeof(eh)) {
		note("%s: not an ELF file (only %zu bytes)", path, size);
		return -1;
	}
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
		note("%s: not an ELF file (bad magic)", path);
		return -1;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		note("%s: not a 64-bit little-endian ELF file", path);
		return -1;
	}
	if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
		note("%s: unknown ELF version", path);
		return -1;
	}
	if (eh.e_machine != EM_RISCV) {
		note("%s: not a RISC-V executable (e_machine %u)", path, eh.e_machine);
		return -1;
	}
	if (eh.e_type == ET_DYN) {
		note("%s: position-independent executable (ET_DYN) is not supported; "
		     "link with -static", path);
		return -1;
	}
	if (eh.e_type != ET_EXEC) {
		note("%s: not an executable (e_type %u)", path, eh.e_type);
		return -1;
	}
	if (eh.e_flags & 0x8) {
		note("%s: RV64E (EF_RISCV_RVE) is not supported", path);
		return -1;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
		note("%s: bad program header size %u", path, eh.e_phentsize);
		return -1;
	}
	if (eh.e_phnum == 0 || eh.e_phnum > MAX_PHNUM) {
		note("%s: bad program header count %u", path, eh.e_phnum);
		return -1;
	}
	uint64_t phbytes = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
	if (eh.e_phoff > size || phbytes > size - eh.e_phoff) {
		note("%s: program headers lie outside the file", path);
		return -1;
	}

	Elf64_Phdr ph[MAX_PHNUM];
	memcpy(ph, img + eh.e_phoff, phbytes);

	unsigned nload = 0;
	bool entry_ok = false;
	uint64_t end = 0;
	uint64_t phdr_addr = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type == PT_INTERP) {
			note("%s: dynamically linked (has PT_INTERP); link with -static", path);
			return -1;
		}
		if (p->p_type == PT_PHDR)
			phdr_addr = p->p_vaddr;
		if (p->p_type != PT_LOAD)
			continue;
		if (p->p_filesz > p->p_memsz) {
			note("%s: segment %u: file size 0x%" PRIx64 " exceeds memory size 0x%" PRIx64,
			     path, i, (uint64_t)p->p_filesz, (uint64_t)p->p_memsz);
			return -1;
		}
		if (p->p_offset > size || p->p_filesz > size - p->p_offset) {
			note("%s: segment %u: file data lies outside the file", path, i);
			return -1;
		}
		if (p->p_memsz == 0)
			continue;
		if (p->p_vaddr < LOAD_MIN || p->p_vaddr >= MMAP_BASE ||
		    p->p_memsz > MMAP_BASE - p->p_vaddr) {
			note("%s: segment %u: [0x%" PRIx64 ", +0x%" PRIx64 ") lies outside the "
			     "loadable range [0x%llx, 0x%llx)", path, i, (uint64_t)p->p_vaddr,
			     (uint64_t)p->p_memsz, LOAD_MIN, MMAP_BASE);
			return -1;
		}
		if (p->p_align > 1 && (p->p_align & (p->p_align - 1))) {
			note("%s: segment %u: alignment 0x%" PRIx64 " is not a power of two",
			     path, i, (uint64_t)p->p_align);
			return -1;
		}
		nload++;
		if (p->p_vaddr + p->p_memsz > end)
			end = p->p_vaddr + p->p_memsz;
		if ((p->p_flags & PF_X) && eh.e_entry >= p->p_vaddr &&
		    eh.e_entry - p->p_vaddr < p->p_memsz && p->p_memsz - (eh.e_entry - p->p_vaddr) >= 2)
			entry_ok = true;
		/* Linux finds the program headers through the segment that
		 * maps them when there is no PT_PHDR. */
		if (!phdr_addr && eh.e_phoff >= p->p_offset &&
		    eh.e_phoff - p->p_offset < p->p_filesz &&
		    phbytes <= p->p_filesz - (eh.e_phoff - p->p_offset))
			phdr_addr = p->p_vaddr + (eh.e_phoff - p->p_offset);
	}
	if (nload == 0) {
		note("%s: no loadable segments", path);
		return -1;
	}
	if (!entry_ok || (eh.e_entry & 1)) {
		note("%s: entry point 0x%" PRIx64 " is not in an executable segment", path,
		     (uint64_t)eh.e_entry);
		return -1;
	}
	if (phdr_addr && !gptr(r, phdr_addr, phbytes))
		phdr_addr = 0;

	/*
	 * Map as Linux does (fs/binfmt_elf.c, elf_map + padzero): whole file
	 * pages, so the bytes around a segment on its first and last page
	 * are the file's (or zero past the end of the file), in program-header
	 * order so a later segment wins a shared page; then the bss, from the
	 * end of the file data to the end of memsz, is zeroed.
	 */
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		uint64_t va = p->p_vaddr, off = p->p_offset, len = p->p_filesz;
		if ((va & (PAGE - 1)) == (off & (PAGE - 1))) {
			uint64_t head = va & (PAGE - 1);
			va -= head;
			off -= head;
			len = page_up(p->p_vaddr + p->p_filesz) - va;
		}
		uint64_t avail = off < size ? size - off : 0;
		if (gzero(r, va, len) != 0 ||
		    (avail && gwrite(r, va, img + off, len < avail ? len : avail) != 0) ||
		    gzero(r, p->p_vaddr + p->p_filesz, p->p_memsz - p->p_filesz) != 0) {
			note("%s: segment %u does not fit in guest memory", path, i);
			return -1;
		}
	}
	r->entry = eh.e_entry;
	r->phnum = eh.e_phnum;
	r->phdr_addr = phdr_addr;
	r->image_end = end;
	/* phdr_addr 0: no segment maps the program headers; build_stack
	 * puts a copy on the stack so AT_PHDR is still valid. */
	return 0;
}

/* ---- initial stack (Linux fs/binfmt_elf.c create_elf_tables) ---- */

static int push_bytes(struct runner *r, uint64_t *sp, const void *data, uint64_t len)
{
	if (len > *sp - r->stack_low)
		return -1;
	*sp -= len;
	return gwrite(r, *sp, data, len);
}

static int build_stack(struct runner *r, const char *elfpath, const uint8_t *img,
		       int argc, char **argv)
{
	uint64_t sp = r->stack_top;
	uint64_t total = 0;
	for (int i = 0; i < argc; i++)
		total += strlen(argv[i]) + 1;
	if (total > MAX_ARG_BYTES || argc > 4096) {
		note("argument list too long");
		return -1;
	}

	/* 16 random bytes for AT_RANDOM. */
	uint8_t rnd[16];
	for (int i = 0; i < 16; i++)
		rnd[i] = (uint8_t)rng_next(r);
	if (push_bytes(r, &sp, rnd, 16))
		return -1;
	uint64_t at_random = sp;

	/* Program headers, when no segment maps them. */
	if (!r->phdr_addr) {
		Elf64_Ehdr eh;
		memcpy(&eh, img, sizeof(eh));
		sp &= ~7ull;
		if (push_bytes(r, &sp, img + eh.e_phoff, r->phnum * sizeof(Elf64_Phdr)))
			return -1;
		r->phdr_addr = sp;
	}

	/* Strings: execfn, then argv. */
	uint64_t *argp = calloc((size_t)argc + 1, sizeof(*argp));
	if (!argp)
		return -1;
	if (push_bytes(r, &sp, elfpath, strlen(elfpath) + 1)) {
		free(argp);
		return -1;
	}
	uint64_t execfn = sp;
	for (int i = argc - 1; i >= 0; i--) {
		if (push_bytes(r, &sp, argv[i], strlen(argv[i]) + 1)) {
			free(argp);
			return -1;
		}
		argp[i] = sp;
	}

	/* auxv (id, value) pairs, AT_NULL last. HWCAP: one bit per
	 * single-letter extension, bit = letter - 'a' (IMAFDC). */
	const uint64_t hwcap = (1u << ('i' - 'a')) | (1u << ('m' - 'a')) | (1u << ('a' - 'a')) |
			       (1u << ('f' - 'a')) | (1u << ('d' - 'a')) | (1u << ('c' - 'a'));
	uint64_t auxv[][2] = {
		{ AT_PHDR, r->phdr_addr },
		{ AT_PHENT, sizeof(Elf64_Phdr) },
		{ AT_PHNUM, r->phnum },
		{ AT_PAGESZ, PAGE },
		{ AT_BASE, 0 },
		{ AT_FLAGS, 0 },
		{ AT_ENTRY, r->entry },
		{ AT_UID, 1000 },
		{ AT_EUID, 1000 },
		{ AT_GID, 1000 },
		{ AT_EGID, 1000 },
		{ AT_SECURE, 0 },
		{ AT_HWCAP, hwcap },
		{ AT_HWCAP2, 0 },
		{ AT_CLKTCK, 100 },
		{ AT_RANDOM, at_random },
		{ AT_EXECFN, execfn },
		{ AT_NULL, 0 },
	};
	uint64_t nauxv = sizeof(auxv) / sizeof(auxv[0]);
	/* argc, argv[], NULL, envp NULL, auxv */
	uint64_t words = 1 + (uint64_t)argc + 1 + 1 + 2 * nauxv;
	if (words * 8 + 16 > sp - r->stack_low) {
		free(argp);
		return -1;
	}
	sp = (sp - words * 8) & ~15ull;
	uint64_t p = sp;
	int err = gput64(r, p, (uint64_t)argc);
	p += 8;
	for (int i = 0; i < argc; i++, p += 8)
		err |= gput64(r, p, argp[i]);
	err |= gput64(r, p, 0); /* argv terminator */
	p += 8;
	err |= gput64(r, p, 0); /* empty environment */
	p += 8;
	for (uint64_t i = 0; i < nauxv; i++, p += 16) {
		err |= gput64(r, p, auxv[i][0]);
		err |= gput64(r, p + 8, auxv[i][1]);
	}
	free(argp);
	if (err)
		return -1;

	for (unsigned i = 1; i < 32; i++)
		hart_set_reg(r->hart, i, 0);
	hart_set_reg(r->hart, 2, sp);
	return 0;
}

/* ---- system calls ---- */

static int64_t sys_write_buf(struct runner *r, uint64_t fd, uint64_t buf, uint64_t len)
{
	if (fd != 1 && fd != 2)
		return -G_EBADF;
	if (len == 0)
		return 0;
	const uint8_t *p = gptr(r, buf, len);
	if (!p)
		return -G_EFAULT;
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = write((int)fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (int64_t)done : -G_EFAULT;
		}
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

/* read(2) from the runner's own stdin (fd 0 only), as qemu-user passes it
 * through: the FPU vector program reads its vectors there. */
static int64_t sys_read_buf(struct runner *r, uint64_t fd, uint64_t buf, uint64_t len)
{
	if (fd != 0)
		return -G_EBADF;
	if (len == 0)
		return 0;
	uint8_t *p = gptr(r, buf, len);
	if (!p)
		return -G_EFAULT;
	for (;;) {
		ssize_t n = read(0, p, len);
		if (n >= 0) {
			gram_written(&r->ram, buf, (uint64_t)n);
			return n;
		}
		if (errno != EINTR)
			return -G_EIO;
	}
}

static int64_t sys_writev(struct runner *r, uint64_t fd, uint64_t iov, uint64_t cnt)
{
	if (fd != 1 && fd != 2)
		return -G_EBADF;
	if (cnt > 1024)
		return -G_EINVAL;
	int64_t total = 0;
	for (uint64_t i = 0; i < cnt; i++) {
		uint64_t base, len;
		if (gget64(r, iov + 16 * i, &base) || gget64(r, iov + 16 * i + 8, &len))
			return -G_EFAULT;
		if (len > INT64_MAX - (uint64_t)total)
			return -G_EINVAL;
		int64_t n = sys_write_buf(r, fd, base, len);
		if (n < 0)
			return total ? total : n;
		total += n;
	}
	return total;
}

/* struct stat of asm-generic (128 bytes), from the host's fstat. */
static int64_t sys_fstat_fd(struct runner *r, uint64_t fd, uint64_t buf)
{
	if (fd > 2)
		return -G_EBADF;
	struct stat st;
	if (fstat((int)fd, &st) != 0)
		return -G_EBADF;
	uint8_t s[128];
	memset(s, 0, sizeof(s));
#define PUT(off, val, bytes) do { uint64_t v_ = (uint64_t)(val); \
		for (int b_ = 0; b_ < (bytes); b_++) s[(off) + b_] = (uint8_t)(v_ >> (8 * b_)); } while (0)
	PUT(0, st.st_dev, 8);
	PUT(8, st.st_ino, 8);
	PUT(16, st.st_mode, 4);
	PUT(20, st.st_nlink, 4);
	PUT(24, st.st_uid, 4);
	PUT(28, st.st_gid, 4);
	PUT(32, st.st_rdev, 8);
	PUT(48, st.st_size, 8);
	PUT(56, st.st_blksize, 4);
	PUT(64, st.st_blocks, 8);
	PUT(72, st.st_atim.tv_sec, 8);
	PUT(80, st.st_atim.tv_nsec, 8);
	PUT(88, st.st_mtim.tv_sec, 8);
	PUT(96, st.st_mtim.tv_nsec, 8);
	PUT(104, st.st_ctim.tv_sec, 8);
	PUT(112, st.st_ctim.tv_nsec, 8);
#undef PUT
	if (gwrite(r, buf, s, sizeof(s)))
		return -G_EFAULT;
	return 0;
}

static int64_t sys_brk(struct runner *r, uint64_t addr)
{
	if (addr < r->brk_start || addr > r->brk_limit)
		return (int64_t)r->brk_cur;
	if (addr < r->brk_cur)
		gclear(r, addr, r->brk_cur - addr); /* shrunk memory comes back zeroed */
	r->brk_cur = addr;
	return (int64_t)addr;
}

static int64_t sys_mmap(struct runner *r, uint64_t addr, uint64_t len, uint64_t flags)
{
	if (len == 0)
		return -G_EINVAL;
	if (!(flags & G_MAP_ANONYMOUS))
		return -G_ENODEV; /* file mappings are not emulated */
	if (len > RAM_SIZE)
		return -G_ENOMEM;
	len = page_up(len);
	if (flags & (G_MAP_FIXED | G_MAP_FIXED_NOREPLACE)) {
		if (addr & (PAGE - 1))
			return -G_EINVAL;
		if (addr < LOAD_MIN || addr > r->stack_low || len > r->stack_low - addr)
			return -G_ENOMEM;
		gclear(r, addr, len);
		return (int64_t)addr;
	}
	if (len > r->mmap_limit - r->mmap_next)
		return -G_ENOMEM;
	uint64_t a = r->mmap_next;
	r->mmap_next += len;
	gclear(r, a, len);
	return (int64_t)a;
}

static int64_t sys_munmap(struct runner *r, uint64_t addr, uint64_t len)
{
	if ((addr & (PAGE - 1)) || len == 0 || len > RAM_SIZE)
		return -G_EINVAL;
	len = page_up(len);
	if (!gptr(r, addr, len))
		return -G_EINVAL;
	if (addr >= MMAP_BASE && addr + len <= r->mmap_limit) {
		gram_discard(&r->ram, addr, len);
		if (addr + len == r->mmap_next)
			r->mmap_next = addr;
	}
	return 0;
}

static int64_t sys_uname(struct runner *r, uint64_t buf)
{
	char u[6][65];
	memset(u, 0, sizeof(u));
	strcpy(u[0], "Linux");
	strcpy(u[1], "skiff");
	strcpy(u[2], "6.1.0");
	strcpy(u[3], "#1 SMP");
	strcpy(u[4], "riscv64");
	strcpy(u[5], "(none)");
	return gwrite(r, buf, u, sizeof(u)) ? -G_EFAULT : 0;
}

static int64_t sys_clock_gettime(struct runner *r, uint64_t clk, uint64_t buf)
{
	struct timespec ts;
	if (clk > 11 || clock_gettime((clockid_t)clk, &ts) != 0)
		return -G_EINVAL;
	if (!buf)
		return 0;
	if (gput64(r, buf, (uint64_t)ts.tv_sec) || gput64(r, buf + 8, (uint64_t)ts.tv_nsec))
		return -G_EFAULT;
	return 0;
}

static int64_t sys_prlimit(struct runner *r, uint64_t resource, uint64_t old)
{
	if (resource > 15)
		return -G_EINVAL;
	if (!old)
		return 0;
	uint64_t cur = UINT64_MAX, max = UINT64_MAX;
	if (resource == 3) /* RLIMIT_STACK */
		cur = STACK_SIZE;
	else if (resource == 7) /* RLIMIT_NOFILE */
		cur = 1024, max = 4096;
	if (gput64(r, old, cur) || gput64(r, old + 8, max))
		return -G_EFAULT;
	return 0;
}

static int64_t sys_getrandom(struct runner *r, uint64_t buf, uint64_t len)
{
	if (len > 0x1ffffff)
		len = 0x1ffffff;
	uint8_t *p = gptr(r, buf, len);
	if (!p)
		return -G_EFAULT;
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng_next(r);
	gram_written(&r->ram, buf, len);
	return (int64_t)len;
}

static void guest_signal(struct runner *r, int sig, const char *why)
{
	note("%s: terminated by signal %d", why, sig);
	r->done = true;
	r->status = 128 + sig;
}

static int64_t do_syscall(struct runner *r, uint64_t nr, const uint64_t a[6])
{
	switch (nr) {
	case SYS_write:
		return sys_write_buf(r, a[0], a[1], a[2]);
	case SYS_writev:
		return sys_writev(r, a[0], a[1], a[2]);
	case SYS_read:
		return sys_read_buf(r, a[0], a[1], a[2]);
	case SYS_close:
		return a[0] <= 2 ? 0 : -G_EBADF;
	case SYS_lseek:
		return -G_ESPIPE;
	case SYS_openat:
	case SYS_readlinkat:
		return -G_ENOENT;
	case SYS_ioctl:
		return -G_ENOTTY;
	case SYS_fstat:
		return sys_fstat_fd(r, a[0], a[1]);
	case SYS_newfstatat: {
		const char *path = gptr(r, a[1], 1);
		if (!path)
			return -G_EFAULT;
		if (path[0] == 0 && (a[3] & G_AT_EMPTY_PATH))
			return sys_fstat_fd(r, a[0], a[2]);
		return -G_ENOENT;
	}
	case SYS_exit:
	case SYS_exit_group:
		r->done = true;
		r->status = (int)(a[0] & 0xff);
		return 0;
	case SYS_set_tid_address:
	case SYS_gettid:
	case SYS_getpid:
		return GUEST_PID;
	case SYS_getppid:
		return 1;
	case SYS_getuid:
	case SYS_geteuid:
	case SYS_getgid:
	case SYS_getegid:
		return 1000;
	case SYS_set_robust_list:
	case SYS_futex:
	case SYS_sched_yield:
	case SYS_nanosleep:
	case SYS_clock_nanosleep:
	case SYS_mprotect:
	case SYS_madvise:
		return 0;
	case SYS_rt_sigaction:
		if (a[0] < 1 || a[0] > 64)
			return -G_EINVAL;
		if (a[2] && gzero(r, a[2], 24))
			return -G_EFAULT;
		return 0;
	case SYS_rt_sigprocmask:
		if (a[3] != 8)
			return -G_EINVAL;
		if (a[2] && gzero(r, a[2], 8))
			return -G_EFAULT;
		return 0;
	case SYS_kill:
	case SYS_tkill:
	case SYS_tgkill: {
		uint64_t sig = nr == SYS_tgkill ? a[2] : a[1];
		if (sig == 0)
			return 0;
		if (sig > 64)
			return -G_EINVAL;
		guest_signal(r, (int)sig, "guest raised a signal");
		return 0;
	}
	case SYS_uname:
		return sys_uname(r, a[0]);
	case SYS_clock_gettime:
		return sys_clock_gettime(r, a[0], a[1]);
	case SYS_clock_getres:
		if (a[1] && (gput64(r, a[1], 0) || gput64(r, a[1] + 8, 1)))
			return -G_EFAULT;
		return 0;
	case SYS_gettimeofday: {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (a[0] && (gput64(r, a[0], (uint64_t)ts.tv_sec) ||
			     gput64(r, a[0] + 8, (uint64_t)ts.tv_nsec / 1000)))
			return -G_EFAULT;
		return 0;
	}
	case SYS_brk:
		return sys_brk(r, a[0]);
	case SYS_mmap:
		return sys_mmap(r, a[0], a[1], a[3]);
	case SYS_munmap:
		return sys_munmap(r, a[0], a[1]);
	case SYS_prlimit64:
		return sys_prlimit(r, a[1], a[3]);
	case SYS_getrandom:
		return sys_getrandom(r, a[0], a[1]);
	case SYS_riscv_flush_icache:
		/* Linux makes earlier stores visible to instruction fetch. */
		hart_request_fence_i(r->hart);
		return 0;
	case SYS_riscv_hwprobe:
	case SYS_mremap:
	default:
		if (r->verbose)
			note("unimplemented system call %" PRIu64 " -> ENOSYS", nr);
		return -G_ENOSYS;
	}
}

/* ---- exceptions ---- */

static const char *cause_name(uint64_t cause)
{
	static const char *const names[] = {
		"instruction address misaligned", "instruction access fault",
		"illegal instruction", "breakpoint", "load address misaligned",
		"load access fault", "store/AMO address misaligned", "store/AMO access fault",
		"environment call from U-mode", "environment call from S-mode", "reserved",
		"reserved", "instruction page fault", "load page fault", "reserved",
		"store/AMO page fault",
	};
	if (cause < sizeof(names) / sizeof(names[0]))
		return names[cause];
	return "unknown";
}

/* The signal Linux delivers for an exception (arch/riscv/kernel/traps.c). */
static int cause_signal(uint64_t cause)
{
	switch (cause) {
	case 0: case 4: case 6:
		return 7;  /* SIGBUS */
	case 1: case 5: case 7: case 12: case 13: case 15:
		return 11; /* SIGSEGV */
	case 3:
		return 5;  /* SIGTRAP */
	default:
		return 4;  /* SIGILL */
	}
}

static void report_trap(struct runner *r)
{
	uint64_t cause = 0, epc = 0, tval = 0;
	hart_csr_read(r->hart, CSR_SCAUSE, &cause);
	hart_csr_read(r->hart, CSR_SEPC, &epc);
	hart_csr_read(r->hart, CSR_STVAL, &tval);
	if (cause >> 63) {
		note("unexpected interrupt %" PRIu64 " at pc 0x%" PRIx64,
		     (uint64_t)(cause & ~(1ull << 63)), epc);
		r->status = RUN_FATAL;
	} else {
		note("trap: cause %" PRIu64 " (%s) at pc 0x%" PRIx64 ", tval 0x%" PRIx64,
		     cause, cause_name(cause), epc, tval);
		r->status = 128 + cause_signal(cause);
	}
	r->done = true;
}

/* ---- watchdog ---- */

static void *kicker_main(void *arg)
{
	struct runner *r = arg;
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	while (!atomic_load(&r->kicker_stop)) {
		nanosleep(&tick, NULL);
		hart_kick(r->hart);
	}
	return NULL;
}

static bool limits_reached(struct runner *r)
{
	if (r->max_insns && hart_instret(r->hart) >= r->max_insns) {
		note("instruction limit (%" PRIu64 ") reached at pc 0x%" PRIx64, r->max_insns,
		     hart_get_pc(r->hart));
		return true;
	}
	if (r->timeout_s > 0) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double el = (double)(now.tv_sec - r->started.tv_sec) +
			    (double)(now.tv_nsec - r->started.tv_nsec) / 1e9;
		if (el > r->timeout_s) {
			note("timeout (%.1f s) at pc 0x%" PRIx64, r->timeout_s, hart_get_pc(r->hart));
			return true;
		}
	}
	return false;
}

/* ---- main loop ---- */

static void run(struct runner *r)
{
	struct hart_exit ex;
	while (!r->done) {
		memset(&ex, 0, sizeof(ex));
		hart_run(r->hart, &ex);
		switch (ex.reason) {
		case EXIT_USER_ECALL: {
			uint64_t a[6];
			for (int i = 0; i < 6; i++)
				a[i] = hart_get_reg(r->hart, 10 + (unsigned)i);
			uint64_t nr = hart_get_reg(r->hart, 17);
			int64_t ret = do_syscall(r, nr, a);
			if (r->done)
				break;
			hart_set_reg(r->hart, 10, (uint64_t)ret);
			hart_set_pc(r->hart, hart_get_pc(r->hart) + 4);
			if (limits_reached(r)) {
				r->done = true;
				r->status = RUN_LIMIT;
			}
			break;
		}
		case EXIT_SBI:
			if (hart_get_pc(r->hart) == r->trap_addr && hart_get_priv(r->hart) == PRIV_S) {
				report_trap(r);
			} else {
				note("unexpected S-mode ecall at pc 0x%" PRIx64, hart_get_pc(r->hart));
				r->done = true;
				r->status = RUN_FATAL;
			}
			break;
		case EXIT_MMIO:
			note("access outside memory: %s of %u bytes at 0x%" PRIx64 " (pc 0x%" PRIx64 ")",
			     ex.mmio.write ? "write" : "read", ex.mmio.size, ex.mmio.addr,
			     hart_get_pc(r->hart));
			r->done = true;
			r->status = RUN_OUTSIDE_MEMORY;
			break;
		case EXIT_FATAL:
			note("engine fatal: %s (pc 0x%" PRIx64 ", cause %" PRIu64 ", tval 0x%" PRIx64 ")",
			     ex.fatal.what ? ex.fatal.what : "?", ex.fatal.pc, ex.fatal.cause,
			     ex.fatal.tval);
			r->done = true;
			r->status = RUN_FATAL;
			break;
		case EXIT_NONE:
		case EXIT_WFI:
		case EXIT_KICK:
		case EXIT_PAUSE:
			if (limits_reached(r)) {
				r->done = true;
				r->status = RUN_LIMIT;
			}
			break;
		default:
			note("unexpected exit %s", exit_reason_name(ex.reason));
			r->done = true;
			r->status = RUN_FATAL;
			break;
		}
	}
}

/* ---- page tables for --mmu ---- */

static int put_pte(struct runner *r, uint64_t table, unsigned idx, uint64_t pte)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(pte >> (8 * i));
	return gram_write(&r->ram, table + 8ull * idx, b, 8);
}

static uint64_t pte_table(uint64_t pa)
{
	return ((pa >> 12) << 10) | PTE_V;
}

static uint64_t pte_leaf(uint64_t pa, uint64_t flags)
{
	return ((pa >> 12) << 10) | flags;
}

/* The identity map described at the top of the file; satp last. */
static int enable_mmu(struct runner *r)
{
	const uint64_t user = PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D;
	uint64_t next = r->pt_base, end = r->pt_base + PT_PAGES * PAGE;
	int err = 0;
#define PT_ALLOC(var)                                             \
	do {                                                      \
		if (next >= end)                                  \
			return -1;                                \
		(var) = next;                                     \
		next += PAGE;                                     \
	} while (0)
	uint64_t root, l2, l1;
	PT_ALLOC(root);
	/* Sv48/Sv57: extra levels above the 1 GiB level, entry 0 each. */
	l2 = root;
	for (unsigned lv = 3; lv < r->mmu_levels; lv++) {
		uint64_t t;
		PT_ALLOC(t);
		err |= put_pte(r, l2, 0, pte_table(t));
		l2 = t;
	}
	PT_ALLOC(l1);
	err |= put_pte(r, l2, 0, pte_table(l1));
	for (unsigned i = 0; i < 512; i++) {
		uint64_t va = (uint64_t)i << 21;
		if (va >= SMALL_LOW && va < RAM_SIZE - SMALL_HIGH) {
			err |= put_pte(r, l1, i, pte_leaf(va, user));
			continue;
		}
		uint64_t l0;
		PT_ALLOC(l0);
		err |= put_pte(r, l1, i, pte_table(l0));
		for (unsigned j = 0; j < 512; j++) {
			uint64_t pa = va + (uint64_t)j * PAGE;
			uint64_t pte = pte_leaf(pa, user);
			if (pa == r->trap_addr)
				pte = pte_leaf(pa, PTE_V | PTE_R | PTE_X | PTE_A);
			else if (pa < LOAD_MIN)
				pte = 0; /* null page, unmapped as on Linux */
			else if (pa >= r->pt_base && pa < end)
				pte = 0;
			err |= put_pte(r, l0, j, pte);
		}
	}
#undef PT_ALLOC
	uint64_t mode = r->mmu_levels == 3 ? 8 : r->mmu_levels == 4 ? 9 : 10;
	uint64_t satp = (mode << 60) | (root >> 12), back = 0;
	if (err || hart_csr_write(r->hart, CSR_SATP, satp) ||
	    hart_csr_read(r->hart, CSR_SATP, &back) || back != satp) {
		note("cannot enable Sv%u translation (satp 0x%" PRIx64 " reads back 0x%" PRIx64 ")",
		     r->mmu_levels == 3 ? 39 : r->mmu_levels == 4 ? 48 : 57, satp, back);
		return -1;
	}
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: skiff-isa-run [--max-insns N] [--timeout SECONDS] [--seed N]\n"
	      "                     [--mmu bare|sv39|sv48|sv57] [--engine interp|jit|lockstep]\n"
	      "                     [--jit-threshold N] [--cbze] [-v] program.elf [args...]\n"
	      "Runs a static riscv64 Linux program in U-mode on skiff's engine.\n"
	      "--mmu runs it through identity-mapped page tables instead of satp = 0.\n"
	      "--cbze sets senvcfg.CBZE: CBO.ZERO (Zicboz) allowed in U-mode, as Linux\n"
	      "allows it (otherwise illegal, as under qemu-riscv64 7.2).\n"
	      "--engine picks the tier (default: $SKIFF_ENGINE, else the engine's default);\n"
	      "lockstep is the JIT checked block by block against the executor.\n"
	      "--jit-threshold: runs of a block before it is translated (default:\n"
	      "$SKIFF_JIT_THRESHOLD, else the engine's).\n"
	      "Exit status: the program's, or 1 access outside memory, 2 bad usage or ELF,\n"
	      "3 engine fatal, 124 limit reached, 128+signal guest exception.\n", f);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return false;
	*out = v;
	return true;
}

static int setup(struct runner *r, const char *path, int argc, char **argv)
{
	int err = gram_init(&r->ram, 0, RAM_SIZE);
	if (err) {
		note("cannot reserve guest memory: %s", strerror(-err));
		return -1;
	}
	r->ram_ok = true;
	r->trap_addr = RAM_SIZE - PAGE;
	r->pt_base = r->trap_addr - PT_PAGES * PAGE;
	r->stack_top = r->pt_base - 16 * PAGE;
	r->stack_low = r->stack_top - STACK_SIZE;
	r->mmap_next = MMAP_BASE;
	r->mmap_limit = r->stack_low;

	uint8_t *img = NULL;
	size_t size = 0;
	if (read_file(path, &img, &size))
		return -1;
	if (load_elf(r, path, img, size)) {
		free(img);
		return -1;
	}
	r->brk_start = r->brk_cur = page_up(r->image_end);
	r->brk_limit = MMAP_BASE;

	struct hart_config cfg = { .hartid = 0, .user_ecall_exits = true, .timebase_hz = 10000000,
				   .engine = r->engine, .jit_lockstep = r->lockstep,
				   .jit_threshold = (uint32_t)r->jit_threshold };
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	cfg.time_base_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	r->hart = hart_create(&r->ram, &cfg);
	if (!r->hart) {
		note("cannot create a hart (engine %s%s)", engine_tier_name(r->engine),
		     r->lockstep ? ", lockstep" : "");
		free(img);
		return -1;
	}
	hart_reset(r->hart, r->entry, 0);
	hart_set_priv(r->hart, PRIV_U);
	hart_set_pc(r->hart, r->entry);

	uint32_t ecall = INSN_ECALL;
	uint8_t insn[4] = { (uint8_t)ecall, (uint8_t)(ecall >> 8), (uint8_t)(ecall >> 16),
			    (uint8_t)(ecall >> 24) };
	if (gram_write(&r->ram, r->trap_addr, insn, 4) ||
	    hart_csr_write(r->hart, CSR_STVEC, r->trap_addr)) {
		note("cannot install the trap vector");
		free(img);
		return -1;
	}
	uint64_t sstatus = 0;
	if (hart_csr_read(r->hart, CSR_SSTATUS, &sstatus) ||
	    hart_csr_write(r->hart, CSR_SSTATUS, (sstatus & ~SSTATUS_FS_MASK) | SSTATUS_FS_INITIAL)) {
		note("cannot enable the FPU (sstatus)");
		free(img);
		return -1;
	}
	if (r->mmu_levels && enable_mmu(r)) {
		free(img);
		return -1;
	}
	/* Let U-mode read cycle, time and instret (privileged spec 4.1.5). */
	if (hart_csr_write(r->hart, CSR_SCOUNTEREN, 7))
		note("warning: cannot write scounteren");
	/* Off by default, as at reset: qemu-riscv64 7.2, the reference of
	 * the differential checks, has no Zicboz (CBO.ZERO is illegal). */
	if (r->cbze && hart_csr_write(r->hart, CSR_SENVCFG, SENVCFG_CBZE)) {
		note("cannot write senvcfg");
		free(img);
		return -1;
	}

	if (build_stack(r, path, img, argc, argv)) {
		note("cannot build the initial stack");
		free(img);
		return -1;
	}
	free(img);
	return 0;
}

int main(int argc, char **argv)
{
	struct runner *r = calloc(1, sizeof(*r));
	if (!r) {
		fputs("skiff-isa-run: out of memory\n", stderr);
		return RUN_SETUP_ERROR;
	}
	r->timeout_s = 120;
	r->rng = 0x5eed5eed12345678ull;
	r->engine = engine_default_tier();
	const char *env_engine = getenv("SKIFF_ENGINE");
	const char *env_threshold = getenv("SKIFF_JIT_THRESHOLD");
	if (env_threshold && !parse_u64(env_threshold, &r->jit_threshold)) {
		note("SKIFF_JIT_THRESHOLD: bad number '%s'", env_threshold);
		free(r);
		return RUN_SETUP_ERROR;
	}

	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--")) {
			i++;
			break;
		} else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			free(r);
			return 0;
		} else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
			r->verbose = true;
		} else if (!strncmp(o, "--mmu=", 6) || (!strcmp(o, "--mmu") && i + 1 < argc)) {
			const char *m = o[5] == '=' ? o + 6 : argv[++i];
			if (!strcmp(m, "bare"))
				r->mmu_levels = 0;
			else if (!strcmp(m, "sv39"))
				r->mmu_levels = 3;
			else if (!strcmp(m, "sv48"))
				r->mmu_levels = 4;
			else if (!strcmp(m, "sv57"))
				r->mmu_levels = 5;
			else {
				note("--mmu: unknown mode '%s' (bare, sv39, sv48, sv57)", m);
				free(r);
				return RUN_SETUP_ERROR;
			}
		} else if (!strcmp(o, "--cbze")) {
			r->cbze = true;
		} else if (!strcmp(o, "--engine") && i + 1 < argc) {
			env_engine = argv[++i];
		} else if ((!strcmp(o, "--max-insns") || !strcmp(o, "--timeout") ||
			    !strcmp(o, "--seed") || !strcmp(o, "--jit-threshold")) && i + 1 < argc) {
			uint64_t v;
			if (!parse_u64(argv[i + 1], &v)) {
				note("%s: bad number '%s'", o, argv[i + 1]);
				free(r);
				return RUN_SETUP_ERROR;
			}
			if (!strcmp(o, "--max-insns"))
				r->max_insns = v;
			else if (!strcmp(o, "--timeout"))
				r->timeout_s = (double)v;
			else if (!strcmp(o, "--jit-threshold"))
				r->jit_threshold = v;
			else
				r->rng = v | 1;
			i++;
		} else {
			note("unknown option '%s'", o);
			usage(stderr);
			free(r);
			return RUN_SETUP_ERROR;
		}
	}
	if (i >= argc) {
		usage(stderr);
		free(r);
		return RUN_SETUP_ERROR;
	}
	if (env_engine) {
		r->lockstep = !strcmp(env_engine, "lockstep");
		if (r->lockstep)
			r->engine = ENGINE_JIT;
		else if (engine_tier_parse(env_engine, &r->engine)) {
			note("engine '%s': not interp, jit or lockstep", env_engine);
			free(r);
			return RUN_SETUP_ERROR;
		}
	}

	int status;
	if (setup(r, argv[i], argc - i, argv + i)) {
		status = RUN_SETUP_ERROR;
	} else {
		clock_gettime(CLOCK_MONOTONIC, &r->started);
		if (r->max_insns || r->timeout_s > 0) {
			atomic_store(&r->kicker_stop, false);
			r->kicker_running = pthread_create(&r->kicker, NULL, kicker_main, r) == 0;
			if (!r->kicker_running)
				note("warning: no watchdog thread; limits are checked at system calls only");
		}
		run(r);
		if (r->kicker_running) {
			atomic_store(&r->kicker_stop, true);
			pthread_join(r->kicker, NULL);
		}
		status = r->status;
		if (r->verbose)
			note("exit status %d after %" PRIu64 " instructions", status,
			     hart_instret(r->hart));
	}
	fflush(stdout);
	if (r->hart)
		hart_destroy(r->hart);
	if (r->ram_ok)
		gram_destroy(&r->ram);
	free(r);
	return status;
}
