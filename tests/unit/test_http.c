/*
 * api/http's requests that wait (api_server_config.waits, as the VMM's
 * guest agent calls do): such a request runs on a thread of its own
 * ("api-call", the sandbox's api class) and holds up nothing; another
 * client is answered meanwhile by the polling thread, and the waiting
 * request is answered once its handler returns, also when the server
 * stops right after. Also: requests one after another on new connections
 * are all answered on the polling thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http.h"
#include "base/unix_sock.h"
#include "check.h"

static struct check_counts C;

/* A failure bound only: a request that is never answered fails the test
 * after this long instead of hanging it. */
#define ANSWER_BOUND_MS 60000
#define STOP_ROUNDS 20

struct server_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered;           /* a /block handler is waiting */
	bool released;
	char block_thread[16];  /* the thread name of each kind of request */
	char fast_thread[16];
};

static bool waits(void *ctx, const struct api_request *req)
{
	(void)ctx;
	return !strcmp(req->path, "/block");
}

static void handler(void *ctx, const struct api_request *req, struct api_response *resp)
{
	struct server_state *st = ctx;
	bool block = !strcmp(req->path, "/block");
	pthread_mutex_lock(&st->lock);
	pthread_getname_np(pthread_self(), block ? st->block_thread : st->fast_thread, 16);
	if (block) {
		st->entered = true;
		pthread_cond_broadcast(&st->cond);
		while (!st->released)
			pthread_cond_wait(&st->cond, &st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	api_respond_text(resp, 200, strdup(block ? "{\"blocked\":true}" : "{}"));
}

/* A new connection with one request sent; -1 on failure. */
static int send_request(const char *path, const char *url)
{
	int fd = unix_connect(path, false);
	if (fd < 0)
		return -1;
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", url);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The status of the answer on fd (0: none within the bound); closes fd. */
static int read_status(int fd)
{
	char buf[512];
	size_t len = 0;
	while (len < sizeof(buf) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, ANSWER_BOUND_MS) <= 0)
			break;
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	close(fd);
	unsigned status = 0;
	return sscanf(buf, "HTTP/1.1 %u", &status) == 1 ? (int)status : 0;
}

int main(void)
{
	char dir[] = "/tmp/skiff-http-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char path[100], err[512];
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	struct server_state st = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct api_server_config cfg = {
		.socket_path = path, .waits = waits, .handler = handler, .ctx = &st,
	};
	struct api_server *s = api_server_start(&cfg, err, sizeof(err));
	CHECK(&C, s != NULL, "start: %s", err);
	if (!s)
		return check_summary(&C);

	/* Many requests one after another, each on a new connection. */
	int answered = 0;
	for (int i = 0; i < 50; i++) {
		int fd = send_request(path, "/");
		if (fd >= 0 && read_status(fd) == 200)
			answered++;
	}
	CHECK(&C, answered == 50, "%d of 50 requests one after another answered", answered);
	CHECK(&C, !strncmp(st.fast_thread, "MHD-", 4), "the polling thread's name: '%s'", st.fast_thread);

	/* One request's handler waits; another client is answered meanwhile. */
	int blocked = send_request(path, "/block");
	CHECK(&C, blocked >= 0, "connect: %s", strerror(errno));
	pthread_mutex_lock(&st.lock);
	while (!st.entered)
		pthread_cond_wait(&st.cond, &st.lock);
	pthread_mutex_unlock(&st.lock);
	int fast = send_request(path, "/");
	CHECK(&C, read_status(fast) == 200, "answered while another handler waits");
	CHECK(&C, !strcmp(st.block_thread, "api-call") && !strncmp(st.fast_thread, "MHD-", 4),
	      "the waiting one on its own thread ('%s', the other '%s')", st.block_thread, st.fast_thread);
	pthread_mutex_lock(&st.lock);
	st.released = true;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);
	CHECK(&C, read_status(blocked) == 200, "the waiting request is answered once released");

	api_server_stop(s);
	CHECK(&C, access(path, F_OK) != 0, "the socket file is removed at the stop");

	/* A waiting request released right before the stop (a guest agent
	 * call ended by the VM's poweroff, then the VMM's exit): its answer
	 * still goes out. Rounds, as the stop races the polling thread. */
	int lost = 0;
	for (int round = 0; round < STOP_ROUNDS; round++) {
		st.entered = st.released = false;
		s = api_server_start(&cfg, err, sizeof(err));
		CHECK(&C, s != NULL, "start again: %s", err);
		if (!s)
			break;
		int fd = send_request(path, "/block");
		pthread_mutex_lock(&st.lock);
		while (fd >= 0 && !st.entered)
			pthread_cond_wait(&st.cond, &st.lock);
		st.released = true;
		pthread_cond_broadcast(&st.cond);
		pthread_mutex_unlock(&st.lock);
		api_server_stop(s);
		if (fd < 0 || read_status(fd) != 200)
			lost++;
	}
	CHECK(&C, lost == 0, "%d of %d answers made right before the stop were lost", lost, STOP_ROUNDS);
	rmdir(dir);
	return check_summary(&C);
}
