// guest_io: the I/O workload of the benchmark's blk and 9p rows, run inside
// the guest (a static riscv64 program: busybox dd cannot do random 4 KiB
// I/O, and the guest's busybox has no sub-10 ms clock).  Built on the host
// by bench/devices.py with riscv64-linux-gnu-gcc -static and carried into
// the guest on the benchmarked disk or share itself.
//
//   guest_io PATH OP SIZE BS COUNT SEED
//
// works on the first SIZE bytes of the block device PATH, opened with
// O_DIRECT so the guest's page cache is not measured:
//   seqread, seqwrite    SIZE / BS operations of BS bytes, in order
//   randread, randwrite  COUNT operations of BS bytes at BS-aligned offsets
//                        drawn by splitmix64 from SEED (the same offsets on
//                        every system; bench/iowork.py draws them too)
//   crc                  seqread with the full CRC (below), to check what
//                        the writes left on the disk
// or on the file PATH, opened normally (a 9p file):
//   fileread             SIZE / BS reads of BS bytes in order, and the file
//                        must end there
//   filecrc              fileread with the full CRC
// and prints one line
//   @@IO op=OP ops=N bytes=N seconds=S crc=HEX
// seconds: the time spent in pread/pwrite only (CLOCK_MONOTONIC), so making
// the data and the checksum is not counted; crc: CRC-32 (zlib's), in
// operation order, for the host to check.  The measured operations take it
// over a sample, the first 16 bytes of every 4 KiB of data (which tells
// whether the right blocks came back), so that the host CPU the VMM spends
// during a measurement is I/O, not the guest computing checksums; crc and
// filecrc take it over every byte.
//
// Written data: a block of BS bytes of splitmix64 output from SEED, whose
// first 8 bytes are replaced by the byte offset of the operation and the
// next 8 by the operation's number (little endian), so every block on the
// disk says which write put it there.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

#define SAMPLE_EVERY 4096
#define SAMPLE_BYTES 16

// Continues a CRC-32 over more data, as zlib's crc32(crc, buf, len) does.
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t crc32_sample(uint32_t crc, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += SAMPLE_EVERY)
		crc = crc32_update(crc, p + i, SAMPLE_BYTES);
	return crc;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t number(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0') {
		fprintf(stderr, "guest_io: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: guest_io PATH seqread|seqwrite|randread|randwrite|crc|"
			"fileread|filecrc SIZE BS COUNT SEED\n");
		return 2;
	}
	const char *dev = argv[1], *op = argv[2];
	uint64_t size = number(argv[3], "SIZE"), bs = number(argv[4], "BS");
	uint64_t count = number(argv[5], "COUNT"), seed = number(argv[6], "SEED");
	int rnd = !strncmp(op, "rand", 4);
	int wr = !strcmp(op, "seqwrite") || !strcmp(op, "randwrite");
	int file = !strcmp(op, "fileread") || !strcmp(op, "filecrc");
	int full = !strcmp(op, "crc") || !strcmp(op, "filecrc");
	if (!wr && !file && strcmp(op, "seqread") && strcmp(op, "randread") && !full) {
		fprintf(stderr, "guest_io: unknown operation '%s'\n", op);
		return 2;
	}
	// O_DIRECT needs the buffer, offsets and lengths aligned to the logical
	// block size; 4 KiB covers every virtio-blk disk here.
	if (bs == 0 || bs % 4096 || size < bs || size % bs) {
		fprintf(stderr, "guest_io: BS must be a multiple of 4096 dividing SIZE\n");
		return 2;
	}
	uint64_t blocks = size / bs;
	uint64_t ops = rnd ? count : blocks;

	int fd = open(dev, (wr ? O_WRONLY : O_RDONLY) | (file ? 0 : O_DIRECT));
	if (fd < 0) {
		fprintf(stderr, "guest_io: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	unsigned char *buf;
	if (posix_memalign((void **)&buf, 4096, bs)) {
		fprintf(stderr, "guest_io: out of memory\n");
		return 1;
	}
	crc_init();
	if (wr) {
		uint64_t s = seed;
		for (uint64_t i = 0; i < bs; i += 8)
			put_le64(buf + i, splitmix64(&s));
	}

	uint64_t rs = seed;
	uint32_t crc = 0;
	double busy = 0;
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t off = (rnd ? splitmix64(&rs) % blocks : i) * bs;
		if (wr) {
			put_le64(buf, off);
			put_le64(buf + 8, i);
		}
		double t0 = now();
		ssize_t n = wr ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
		busy += now() - t0;
		if (n != (ssize_t)bs) {
			fprintf(stderr, "guest_io: %s at %" PRIu64 ": %s\n", op, off,
				n < 0 ? strerror(errno) : "short transfer");
			return 1;
		}
		crc = full ? crc32_update(crc, buf, bs) : crc32_sample(crc, buf, bs);
	}
	if (file) {
		ssize_t n = pread(fd, buf, bs, size);
		if (n != 0) {
			fprintf(stderr, "guest_io: %s: %s\n", dev,
				n < 0 ? strerror(errno) : "the file is longer than SIZE");
			return 1;
		}
	}
	if (close(fd)) {
		fprintf(stderr, "guest_io: close %s: %s\n", dev, strerror(errno));
		return 1;
	}
	printf("@@IO op=%s ops=%" PRIu64 " bytes=%" PRIu64 " seconds=%.6f crc=%08x\n",
	       op, ops, ops * bs, busy, crc);
	return 0;
}
