/*
 * Unit tests for virtio-blk (src/virtio/blk.c) over the raw disk backend: a
 * test guest (virtio_guest.h) negotiates, reads the config space and sends
 * reads, writes, flushes, GET_ID, discards and write-zeroes against a raw
 * image in a temporary file, checking the file, the guest buffers, the status
 * byte and the used length; then malformed requests (out of range, partial
 * sectors, missing header or status byte, unknown types and flags), a
 * read-only disk, and a disk swapped under the driver.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "backend/disk/disk.h"
#include "virtio/blk.h"
#include "virtio_guest.h"

#define IMG_SECTORS 2048u   /* 1 MiB */
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_INDIRECT (1ull << VIRTIO_F_RING_INDIRECT_DESC)
#define F_EVENT_IDX (1ull << VIRTIO_F_RING_EVENT_IDX)
#define F_SIZE_MAX (1ull << 1)
#define F_SEG_MAX (1ull << 2)
#define F_RO (1ull << 5)
#define F_BLK_SIZE (1ull << 6)
#define F_FLUSH (1ull << 9)
#define F_DISCARD (1ull << 13)
#define F_WRITE_ZEROES (1ull << 14)

struct hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct range {
	uint64_t sector;
	uint32_t num, flags;
};

static char img_path[64];

static int make_image(void)
{
	strcpy(img_path, "/tmp/skiff-test-blk-XXXXXX");
	int fd = mkstemp(img_path);
	if (fd < 0)
		return -1;
	uint8_t sec[512];
	for (unsigned s = 0; s < IMG_SECTORS; s++) {
		for (int i = 0; i < 512; i++)
			sec[i] = (uint8_t)(s * 3 + i);
		if (pwrite(fd, sec, 512, (off_t)s * 512) != 512)
			return -1;
	}
	/* A partial trailing sector, invisible to the guest. */
	if (pwrite(fd, "tail", 4, (off_t)IMG_SECTORS * 512) != 4)
		return -1;
	close(fd);
	return 0;
}

static uint8_t file_byte(uint64_t off)
{
	int fd = open(img_path, O_RDONLY);
	uint8_t b = 0xee;
	if (pread(fd, &b, 1, (off_t)off) != 1)
		b = 0xee;
	close(fd);
	return b;
}

static struct disk *open_disk(bool ro)
{
	struct disk_open_opts o = { .format = DISK_FORMAT_RAW, .read_only = ro };
	struct disk *d = NULL;
	char err[256];
	if (disk_open(img_path, &o, &d, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	return d;
}

struct blkt {
	struct vguest g;
	struct disk *disk;
	struct virtio_blk *blk;
	uint64_t hdr, data, status;   /* guest buffers */
};

static void blkt_up(struct blkt *t, bool ro, uint64_t want)
{
	vg_init(&t->g);
	t->disk = open_disk(ro);
	char err[200];
	t->blk = virtio_blk_create(&t->g.ram, t->disk, "skiff-serial-01", err, sizeof(err));
	if (!t->blk) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	vg_attach(&t->g, virtio_blk_dev(t->blk));
	uint64_t offered = vg_device_features(&t->g);
	CHECK(vg_negotiate(&t->g, want & offered));
	vg_queue_setup(&t->g, 0, 128);
	vg_driver_ok(&t->g);
	t->hdr = vg_alloc(&t->g, 64, 16);
	t->data = vg_alloc(&t->g, 64 * 1024, 4096);
	t->status = vg_alloc(&t->g, 16, 16);
}

static void blkt_down(struct blkt *t)
{
	virtio_blk_destroy(t->blk);
	disk_close(t->disk);
	vg_fini(&t->g);
}

/* Send header + segs (data segments and their direction), then a status
 * byte. Returns the status, the used length in *len. */
static int blk_req(struct blkt *t, uint32_t type, uint64_t sector,
		   const struct vg_seg *data, unsigned ndata, bool indirect, uint32_t *len)
{
	struct hdr *h = vg_host(&t->g, t->hdr);
	h->type = type;
	h->reserved = 0;
	h->sector = sector;
	struct vg_seg segs[16];
	unsigned n = 0;
	segs[n++] = (struct vg_seg){ t->hdr, sizeof(*h), false };
	for (unsigned i = 0; i < ndata; i++)
		segs[n++] = data[i];
	segs[n++] = (struct vg_seg){ t->status, 1, true };
	*(uint8_t *)vg_host(&t->g, t->status) = 0xff;
	uint16_t head = vg_submit(&t->g, 0, segs, n, indirect);
	uint32_t id = 0;
	if (!vg_wait_used(&t->g, 0, &id, len) || id != head)
		return -1;
	return *(uint8_t *)vg_host(&t->g, t->status);
}

static void test_config(void)
{
	struct blkt t;
	blkt_up(&t, false, F_V1 | F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WRITE_ZEROES);
	uint64_t f = vg_device_features(&t.g);
	CHECK(f & F_V1);
	CHECK(f & F_SEG_MAX);
	CHECK(f & F_SIZE_MAX);
	CHECK(f & F_BLK_SIZE);
	CHECK(f & F_FLUSH);
	CHECK(f & F_DISCARD);
	CHECK(f & F_WRITE_ZEROES);
	CHECK(!(f & F_RO));
	CHECK_EQ(vg_r32(&t.g, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	uint64_t v;
	virtio_mmio_ops.read(&t.g.t, 0x100, 8, &v);
	CHECK_EQ(v, IMG_SECTORS);
	/* Linux reads 64-bit fields as two 32-bit halves. */
	virtio_mmio_ops.read(&t.g.t, 0x100, 4, &v);
	CHECK_EQ(v, IMG_SECTORS);
	virtio_mmio_ops.read(&t.g.t, 0x104, 4, &v);
	CHECK_EQ(v, 0);
	virtio_mmio_ops.read(&t.g.t, 0x108, 4, &v);
	CHECK_EQ(v, 1u << 20);        /* size_max */
	virtio_mmio_ops.read(&t.g.t, 0x10c, 4, &v);
	CHECK_EQ(v, 254);             /* seg_max */
	virtio_mmio_ops.read(&t.g.t, 0x114, 4, &v);
	CHECK_EQ(v, 512);             /* blk_size */
	virtio_mmio_ops.read(&t.g.t, 0x100 + 40, 4, &v);
	CHECK_EQ(v, 32);              /* max_discard_seg */
	vg_w32(&t.g, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(vg_r32(&t.g, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	blkt_down(&t);
}

static void test_io(bool indirect)
{
	struct blkt t;
	blkt_up(&t, false, F_V1 | F_INDIRECT | F_EVENT_IDX | F_FLUSH | F_DISCARD | F_WRITE_ZEROES);
	uint8_t *data = vg_host(&t.g, t.data);
	uint32_t len;

	/* Read sectors 5..6 in two segments of unequal size. */
	struct vg_seg rd[2] = { { t.data, 300, true }, { t.data + 4096, 724, true } };
	CHECK_EQ(blk_req(&t, T_IN, 5, rd, 2, indirect, &len), S_OK);
	CHECK_EQ(len, 1025);
	CHECK_EQ(data[0], (uint8_t)(5 * 3));
	CHECK_EQ(data[299], (uint8_t)(5 * 3 + 299));
	CHECK_EQ(data[4096], (uint8_t)(5 * 3 + 300));
	CHECK_EQ(data[4096 + 723], (uint8_t)(6 * 3 + 1023 - 512));

	/* Write sector 100 from a pattern, read it back from the file. */
	memset(data, 0x5a, 512);
	data[0] = 0xa5;
	struct vg_seg wr[1] = { { t.data, 512, false } };
	CHECK_EQ(blk_req(&t, T_OUT, 100, wr, 1, indirect, &len), S_OK);
	CHECK_EQ(len, 1);
	CHECK_EQ(file_byte(100 * 512), 0xa5);
	CHECK_EQ(file_byte(100 * 512 + 511), 0x5a);
	CHECK_EQ(file_byte(101 * 512), (uint8_t)(101 * 3));

	/* Last sector is fine, one past it is not. */
	struct vg_seg one[1] = { { t.data, 512, true } };
	CHECK_EQ(blk_req(&t, T_IN, IMG_SECTORS - 1, one, 1, indirect, &len), S_OK);
	CHECK_EQ(blk_req(&t, T_IN, IMG_SECTORS, one, 1, indirect, &len), S_IOERR);
	CHECK_EQ(len, 1);
	struct vg_seg two[1] = { { t.data, 1024, true } };
	CHECK_EQ(blk_req(&t, T_IN, IMG_SECTORS - 1, two, 1, indirect, &len), S_IOERR);
	CHECK_EQ(blk_req(&t, T_IN, ~0ull, one, 1, indirect, &len), S_IOERR);
	CHECK_EQ(blk_req(&t, T_IN, ~0ull / 512 + 1, one, 1, indirect, &len), S_IOERR);
	struct vg_seg wone[1] = { { t.data, 512, false } };
	CHECK_EQ(blk_req(&t, T_OUT, IMG_SECTORS, wone, 1, indirect, &len), S_IOERR);
	/* Partial sectors. */
	struct vg_seg part[1] = { { t.data, 100, true } };
	CHECK_EQ(blk_req(&t, T_IN, 0, part, 1, indirect, &len), S_IOERR);
	struct vg_seg wpart[1] = { { t.data, 513, false } };
	CHECK_EQ(blk_req(&t, T_OUT, 0, wpart, 1, indirect, &len), S_IOERR);
	CHECK_EQ(file_byte(0), 0);
	/* Zero-length read: OK, nothing done. */
	CHECK_EQ(blk_req(&t, T_IN, 0, NULL, 0, indirect, &len), S_OK);
	CHECK_EQ(len, 1);

	/* Flush. */
	CHECK_EQ(blk_req(&t, T_FLUSH, 0, NULL, 0, indirect, &len), S_OK);

	/* GET_ID: 20 bytes, zero padded. */
	memset(data, 0xff, 32);
	struct vg_seg id[1] = { { t.data, 20, true } };
	CHECK_EQ(blk_req(&t, T_GET_ID, 0, id, 1, indirect, &len), S_OK);
	CHECK_EQ(len, 21);
	CHECK(!memcmp(data, "skiff-serial-01\0\0\0\0\0", 20));
	CHECK_EQ(data[20], 0xff);

	/* Unknown type. */
	CHECK_EQ(blk_req(&t, 77, 0, NULL, 0, indirect, &len), S_UNSUPP);
	CHECK_EQ(blk_req(&t, 2, 0, NULL, 0, indirect, &len), S_UNSUPP);   /* legacy SCSI */

	/* Write zeroes over sectors 10..11 and discard 20..27. */
	struct range *r = (struct range *)data;
	r[0] = (struct range){ 10, 2, 0 };
	struct vg_seg rg[1] = { { t.data, 16, false } };
	CHECK_EQ(blk_req(&t, T_WRITE_ZEROES, 0, rg, 1, indirect, &len), S_OK);
	CHECK_EQ(file_byte(10 * 512 + 7), 0);
	CHECK_EQ(file_byte(11 * 512 + 511), 0);
	CHECK_EQ(file_byte(12 * 512 + 1), (uint8_t)(12 * 3 + 1));
	r[0] = (struct range){ 30, 1, 1 };   /* unmap is fine for write zeroes */
	CHECK_EQ(blk_req(&t, T_WRITE_ZEROES, 0, rg, 1, indirect, &len), S_OK);
	CHECK_EQ(file_byte(30 * 512 + 100), 0);
	r[0] = (struct range){ 20, 8, 0 };
	CHECK_EQ(blk_req(&t, T_DISCARD, 0, rg, 1, indirect, &len), S_OK);
	r[0] = (struct range){ 20, 8, 1 };   /* unmap on discard: UNSUPP (5.2.6.2) */
	CHECK_EQ(blk_req(&t, T_DISCARD, 0, rg, 1, indirect, &len), S_UNSUPP);
	r[0] = (struct range){ 20, 8, 4 };   /* unknown flag */
	CHECK_EQ(blk_req(&t, T_WRITE_ZEROES, 0, rg, 1, indirect, &len), S_UNSUPP);
	r[0] = (struct range){ IMG_SECTORS - 1, 2, 0 };
	CHECK_EQ(blk_req(&t, T_WRITE_ZEROES, 0, rg, 1, indirect, &len), S_IOERR);
	CHECK_EQ(file_byte((IMG_SECTORS - 1) * 512), (uint8_t)((IMG_SECTORS - 1) * 3));
	/* Two ranges, the second bad: nothing is done. */
	r[0] = (struct range){ 40, 1, 0 };
	r[1] = (struct range){ IMG_SECTORS, 1, 0 };
	struct vg_seg rg2[1] = { { t.data, 32, false } };
	CHECK_EQ(blk_req(&t, T_WRITE_ZEROES, 0, rg2, 1, indirect, &len), S_IOERR);
	CHECK_EQ(file_byte(40 * 512 + 3), (uint8_t)(40 * 3 + 3));
	/* Not a whole number of ranges. */
	struct vg_seg rg3[1] = { { t.data, 20, false } };
	CHECK_EQ(blk_req(&t, T_DISCARD, 0, rg3, 1, indirect, &len), S_IOERR);

	CHECK(!vg_needs_reset(&t.g));
	blkt_down(&t);
}

/* The layout is the driver's choice (2.7.4): header split over two
 * descriptors, status byte at the end of a larger writable descriptor. */
static void test_any_layout(void)
{
	struct blkt t;
	blkt_up(&t, false, F_V1);
	struct hdr *h = vg_host(&t.g, t.hdr);
	*h = (struct hdr){ T_IN, 0, 7 };
	uint64_t buf = t.data;
	struct vg_seg segs[3] = {
		{ t.hdr, 6, false }, { t.hdr + 6, 10, false },
		{ buf, 513, true },   /* 512 data bytes + status */
	};
	uint8_t *p = vg_host(&t.g, buf);
	p[512] = 0xff;
	uint16_t head = vg_submit(&t.g, 0, segs, 3, false);
	uint32_t id = 0, len = 0;
	CHECK(vg_wait_used(&t.g, 0, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 513);
	CHECK_EQ(p[512], S_OK);
	CHECK_EQ(p[1], (uint8_t)(7 * 3 + 1));

	/* Header too short: IOERR. */
	struct vg_seg s2[2] = { { t.hdr, 8, false }, { t.status, 1, true } };
	*(uint8_t *)vg_host(&t.g, t.status) = 0xff;
	head = vg_submit(&t.g, 0, s2, 2, false);
	CHECK(vg_wait_used(&t.g, 0, &id, &len));
	CHECK_EQ(*(uint8_t *)vg_host(&t.g, t.status), S_IOERR);

	/* No writable byte for the status: returned with nothing written. */
	struct vg_seg s3[1] = { { t.hdr, 16, false } };
	head = vg_submit(&t.g, 0, s3, 1, false);
	CHECK(vg_wait_used(&t.g, 0, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 0);
	CHECK(!vg_needs_reset(&t.g));
	blkt_down(&t);
}

static void test_read_only(void)
{
	struct blkt t;
	blkt_up(&t, true, F_V1 | F_RO | F_FLUSH | F_DISCARD | F_WRITE_ZEROES);
	uint64_t f = vg_device_features(&t.g);
	CHECK(f & F_RO);
	CHECK(!(f & F_DISCARD));
	CHECK(!(f & F_WRITE_ZEROES));
	uint8_t *data = vg_host(&t.g, t.data);
	uint32_t len;
	memset(data, 0x77, 512);
	struct vg_seg wr[1] = { { t.data, 512, false } };
	CHECK_EQ(blk_req(&t, T_OUT, 3, wr, 1, false, &len), S_IOERR);
	CHECK_EQ(file_byte(3 * 512), (uint8_t)(3 * 3));
	struct range *r = (struct range *)(data + 1024);
	*r = (struct range){ 3, 1, 0 };
	struct vg_seg rg[1] = { { t.data + 1024, 16, false } };
	CHECK_EQ(blk_req(&t, T_WRITE_ZEROES, 0, rg, 1, false, &len), S_IOERR);
	CHECK_EQ(blk_req(&t, T_DISCARD, 0, rg, 1, false, &len), S_IOERR);
	CHECK_EQ(file_byte(3 * 512 + 1), (uint8_t)(3 * 3 + 1));
	struct vg_seg rd[1] = { { t.data, 512, true } };
	CHECK_EQ(blk_req(&t, T_IN, 3, rd, 1, false, &len), S_OK);
	CHECK_EQ(data[0], (uint8_t)(3 * 3));
	CHECK_EQ(blk_req(&t, T_FLUSH, 0, NULL, 0, false, &len), S_OK);
	blkt_down(&t);
}

/* Many requests in flight at once, published before one notify. */
static void test_batch(void)
{
	struct blkt t;
	blkt_up(&t, false, F_V1 | F_EVENT_IDX);
	enum { N = 40 };
	uint64_t hdrs = vg_alloc(&t.g, 16 * N, 16), sts = vg_alloc(&t.g, N, 1);
	uint64_t bufs = vg_alloc(&t.g, 512 * N, 512);
	uint16_t heads[N];
	for (int i = 0; i < N; i++) {
		struct hdr *h = vg_host(&t.g, hdrs + 16 * i);
		*h = (struct hdr){ T_IN, 0, (uint64_t)(i * 17) };
		struct vg_seg s[3] = { { hdrs + 16 * i, 16, false }, { bufs + 512 * i, 512, true },
				       { sts + i, 1, true } };
		heads[i] = vg_chain(&t.g, 0, s, 3, false);
		vg_publish(&t.g, 0, heads[i]);
	}
	vg_notify(&t.g, 0);
	bool ok = true;
	for (int i = 0; i < N; i++) {
		uint32_t id = 0, len = 0;
		ok &= vg_wait_used(&t.g, 0, &id, &len);
		ok &= id == heads[i] && len == 513;
		ok &= *(uint8_t *)vg_host(&t.g, sts + i) == S_OK;
		ok &= *(uint8_t *)vg_host(&t.g, bufs + 512 * i + 9) == (uint8_t)(i * 17 * 3 + 9);
	}
	CHECK(ok);
	blkt_down(&t);
}

/* A second image of `sectors` sectors, each byte of sector s being
 * s * 5 + i + 1 (unlike the first image's pattern). */
static int make_image2(char *path, unsigned sectors)
{
	strcpy(path, "/tmp/skiff-test-blk2-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	uint8_t sec[512];
	for (unsigned s = 0; s < sectors; s++) {
		for (int i = 0; i < 512; i++)
			sec[i] = (uint8_t)(s * 5 + i + 1);
		if (pwrite(fd, sec, 512, (off_t)s * 512) != 512) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/* The disk swapped under a driver (PATCH /drives path_on_host): the writes
 * before it are in the old file, the requests after it go to the new one,
 * the capacity is the new one's and the driver sees ConfigGeneration move
 * and a configuration change interrupt (virtio 1.2 2.5.1, 4.2.2); a disk
 * that disagrees on read-only is refused and nothing changes. */
static void test_replace_disk(void)
{
	char path2[64], path3[64];
	if (make_image2(path2, 2 * IMG_SECTORS) || make_image2(path3, 8)) {
		CHECK(!"second image");
		return;
	}
	struct blkt t;
	blkt_up(&t, false, F_V1 | F_FLUSH);
	uint8_t *data = vg_host(&t.g, t.data);
	uint32_t len;
	memset(data, 0x5a, 512);
	struct vg_seg wr[1] = { { t.data, 512, false } }, rd[1] = { { t.data, 512, true } };
	CHECK_EQ(blk_req(&t, T_OUT, 7, wr, 1, false, &len), S_OK);
	uint32_t gen = vg_r32(&t.g, VIRTIO_MMIO_CONFIG_GENERATION);

	struct disk_open_opts o = { .format = DISK_FORMAT_RAW };
	struct disk *d2 = NULL, *ro = NULL, *old = NULL;
	char err[256] = "";
	CHECK(disk_open(path2, &o, &d2, err, sizeof(err)) == 0);
	o.read_only = true;
	CHECK(disk_open(path3, &o, &ro, err, sizeof(err)) == 0);
	/* Read-only beside a writable drive: refused, nothing changes. */
	CHECK(virtio_blk_replace_disk(t.blk, ro, &old, err, sizeof(err)) == -1 && !old);
	CHECK(strstr(err, "read-only") != NULL);
	CHECK_EQ(vg_r32(&t.g, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	disk_close(ro);
	CHECK_EQ(blk_req(&t, T_IN, 7, rd, 1, false, &len), S_OK);
	CHECK_EQ(data[3], 0x5a);

	/* The used-buffer interrupts taken, so the line is low. */
	vg_settle(&t.g);
	vg_w32(&t.g, VIRTIO_MMIO_INTERRUPT_ACK, vg_r32(&t.g, VIRTIO_MMIO_INTERRUPT_STATUS));
	CHECK(!atomic_load(&t.g.irq_level));
	int rises = atomic_load(&t.g.irq_rises);
	CHECK(virtio_blk_replace_disk(t.blk, d2, &old, err, sizeof(err)) == 0 && old == t.disk);
	disk_close(old);
	t.disk = d2;
	CHECK_EQ(file_byte(7 * 512 + 3), 0x5a);
	CHECK(vg_r32(&t.g, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	CHECK_EQ(vg_r32(&t.g, VIRTIO_MMIO_INTERRUPT_STATUS), 2);
	CHECK_EQ(atomic_load(&t.g.irq_rises), rises + 1);
	uint64_t v;
	virtio_mmio_ops.read(&t.g.t, 0x100, 8, &v);
	CHECK_EQ(v, 2 * IMG_SECTORS);
	/* The new image's data, up to its new end. */
	CHECK_EQ(blk_req(&t, T_IN, 7, rd, 1, false, &len), S_OK);
	CHECK_EQ(data[3], (uint8_t)(7 * 5 + 3 + 1));
	CHECK_EQ(blk_req(&t, T_IN, 2 * IMG_SECTORS - 1, rd, 1, false, &len), S_OK);
	CHECK_EQ(data[0], (uint8_t)((2 * IMG_SECTORS - 1) * 5 + 1));
	CHECK_EQ(blk_req(&t, T_IN, 2 * IMG_SECTORS, rd, 1, false, &len), S_IOERR);
	/* A write goes to the new file only. */
	memset(data, 0xa5, 512);
	CHECK_EQ(blk_req(&t, T_OUT, 9, wr, 1, false, &len), S_OK);
	CHECK_EQ(file_byte(9 * 512), (uint8_t)(9 * 3));
	int fd = open(path2, O_RDONLY);
	uint8_t b = 0;
	CHECK(fd >= 0 && pread(fd, &b, 1, 9 * 512) == 1);
	CHECK_EQ(b, 0xa5);
	if (fd >= 0)
		close(fd);
	blkt_down(&t);
	unlink(path2);
	unlink(path3);
}

static void test_create_errors(void)
{
	struct gram ram;
	gram_init(&ram, VG_RAM_BASE, 1 << 20);
	struct disk *d = open_disk(true);
	char err[200] = "";
	CHECK(virtio_blk_create(&ram, d, "this serial is far too long", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "serial") != NULL);
	struct virtio_blk *b = virtio_blk_create(&ram, d, NULL, err, sizeof(err));
	CHECK(b != NULL);
	virtio_blk_destroy(b);
	disk_close(d);
	gram_destroy(&ram);
}

int main(void)
{
	if (make_image()) {
		perror("test image");
		return 2;
	}
	test_config();
	test_io(false);
	test_io(true);
	test_any_layout();
	test_read_only();
	test_batch();
	test_replace_disk();
	test_create_errors();
	unlink(img_path);
	return vt_report();
}
