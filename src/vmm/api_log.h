/*
 * The VMM's log and metrics outputs configured by PUT /logger and
 * PUT /metrics (or the logger/metrics sections of a --config-file): a file
 * or named pipe each, written a whole line at a time and never blocking (a
 * full pipe drops the line and counts it).
 *
 * Log lines look like Firecracker's:
 *   2024-05-01T10:00:00.123456789 [id:api:Info:src/vmm/api.c:120] message
 * (the level only with show_level, the origin only with show_log_origin).
 */
#ifndef SKIFF_VMM_API_LOG_H
#define SKIFF_VMM_API_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/config_json.h"

struct vmm_logger {
	int fd;                     /* -1: logging off */
	enum vmm_log_level level;
	bool show_level, show_origin;
	uint64_t dropped;
};

/* Open the output for `cfg` into `out` (not touched on failure). */
const char *vmm_logger_open(struct vmm_logger *out, const struct vmm_logger_config *cfg,
			    char *err, size_t errlen);
void vmm_logger_close(struct vmm_logger *l);
void vmm_logger_write(struct vmm_logger *l, const char *id, const char *thread,
		      enum vmm_log_level level, const char *file, int line, const char *msg);

/* Open a metrics file or named pipe for appending; -1 with err on failure. */
int vmm_metrics_open(const char *path, char *err, size_t errlen);
/* Write `line` plus a newline; false if it was dropped. */
bool vmm_write_line(int fd, const char *line);

#endif
