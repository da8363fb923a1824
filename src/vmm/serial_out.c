/* The guest console's output to a file or pipe (PUT /serial); see
 * serial_out.h. */
#include "vmm/serial_out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/json_check.h"

static const struct api_field bucket_fields[] = {
	{ "size", API_T_UINT, true },
	{ "one_time_burst", API_T_UINT },
	{ "refill_time", API_T_UINT, true },
	{ NULL }
};

static const struct api_field serial_fields[] = {
	{ "serial_out_path", API_T_STRING },
	{ "rate_limiter", API_T_OBJECT, false, bucket_fields },
	{ NULL }
};

const char *vmm_serial_open(const json_t *body, struct vmm_serial **out, char *err, size_t errlen)
{
	*out = NULL;
	if (api_json_check_object(body, serial_fields, "serial", err, errlen))
		return err;
	const char *path = api_json_string(body, "serial_out_path");
	const json_t *rl = api_json_member(body, "rate_limiter");
	if (!path && !rl)
		return NULL;   /* nothing to change: output stays on the console */
	struct vmm_serial *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return err;
	}
	s->fd = -1;
	if (path) {
		/* Non-blocking: a pipe nobody reads must not stop the guest. */
		s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
		if (s->fd < 0) {
			snprintf(err, errlen, "serial.serial_out_path: cannot open '%s': %s", path,
				 errno == ENXIO ? "a named pipe with no reader" : strerror(errno));
			free(s);
			return err;
		}
	}
	uint64_t size = 0, burst = 0, refill = 0;
	if (rl) {
		api_json_uint(rl, "size", &size);
		api_json_uint(rl, "one_time_burst", &burst);
		api_json_uint(rl, "refill_time", &refill);
		s->limited = size && refill;
	}
	token_bucket_init(&s->tb, size, burst, refill);
	*out = s;
	return NULL;
}

void vmm_serial_free(struct vmm_serial *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	token_bucket_destroy(&s->tb);
	free(s);
}

void vmm_serial_write(void *ctx, const uint8_t *buf, size_t n)
{
	struct vmm_serial *s = ctx;
	if (s->limited && token_bucket_take(&s->tb, n)) {
		atomic_fetch_add(&s->dropped, n);
		return;
	}
	if (s->fd < 0) {
		if (s->next.out)
			s->next.out(s->next.ctx, buf, n);
		return;
	}
	while (n) {
		ssize_t w = write(s->fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			atomic_fetch_add(&s->dropped, n);
			return;
		}
		buf += w;
		n -= (size_t)w;
	}
}
