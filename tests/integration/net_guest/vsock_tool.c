/*
 * vsock_tool: the guest side of the vsock (and UDP) integration tests
 * (busybox has no vsock client and its nc no UDP). Built static for riscv64
 * by the test and copied into the guest on a disk image.
 *
 *   vsock_tool recv PORT [READY]  accept one connection on PORT, copy it to
 *                                 stdout until EOF; READY: a file made once
 *                                 PORT is listened on (a test waits for it
 *                                 before the host connects)
 *   vsock_tool send CID PORT      connect, copy stdin to the connection,
 *                                 shut down writing, wait for the peer's EOF
 *   vsock_tool echo PORT N        accept N connections, echo each (one
 *                                 process per connection) until EOF
 *   vsock_tool wait-eof CID PORT  connect, copy what arrives to stdout,
 *                                 then "EOF" at the end of the stream or
 *                                 "ERR <message>" on an error
 *   vsock_tool udp-echo PORT N    answer N UDP datagrams to PORT with
 *                                 "echo:" + the datagram, then exit
 *
 * Errors go to stderr as "vsock_tool: <what>: <strerror>"; exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>

static char buf[65536];

static int fail(const char *what)
{
	fprintf(stderr, "vsock_tool: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int copy(int from, int to)
{
	for (;;) {
		ssize_t n = read(from, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (write_all(to, buf, (size_t)n))
			return -1;
	}
}

static int listen_on(unsigned port)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 16))
		return -1;
	return s;
}

static int connect_to(unsigned cid, unsigned port)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;
		if (s >= 0)
			close(s);
		errno = e;
		return -1;
	}
	return s;
}

int main(int argc, char **argv)
{
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "recv")) {
		int l = listen_on((unsigned)atoi(argv[2]));
		if (l < 0)
			return fail("listen");
		if (argc == 4) {
			FILE *ready = fopen(argv[3], "w");
			if (!ready || fclose(ready))
				return fail("ready file");
		}
		int c = accept(l, NULL, NULL);
		if (c < 0)
			return fail("accept");
		if (copy(c, 1))
			return fail("receive");
		close(c);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "send")) {
		int c = connect_to((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
		if (c < 0)
			return fail("connect");
		if (copy(0, c))
			return fail("send");
		shutdown(c, SHUT_WR);
		while (read(c, buf, sizeof(buf)) > 0)
			;
		close(c);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "echo")) {
		int l = listen_on((unsigned)atoi(argv[2]));
		int n = atoi(argv[3]);
		if (l < 0)
			return fail("listen");
		printf("listening\n");
		fflush(stdout);
		for (int i = 0; i < n; i++) {
			int c = accept(l, NULL, NULL);
			if (c < 0)
				return fail("accept");
			pid_t p = fork();
			if (p == 0) {
				if (copy(c, c))
					return fail("echo");
				shutdown(c, SHUT_WR);
				close(c);
				_exit(0);
			}
			close(c);
		}
		int st, bad = 0;
		while (wait(&st) > 0)
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				bad = 1;
		return bad;
	}
	if (argc == 4 && !strcmp(argv[1], "wait-eof")) {
		int c = connect_to((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
		if (c < 0)
			return fail("connect");
		for (;;) {
			ssize_t n = read(c, buf, sizeof(buf));
			if (n == 0) {
				printf("EOF\n");
				return 0;
			}
			if (n < 0 && errno != EINTR) {
				printf("ERR %s\n", strerror(errno));
				return 0;
			}
			if (n > 0)
				fwrite(buf, 1, (size_t)n, stdout);
		}
	}
	if (argc == 4 && !strcmp(argv[1], "udp-echo")) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)))
			return fail("udp bind");
		printf("listening\n");
		fflush(stdout);
		for (int i = 0, n = atoi(argv[3]); i < n; i++) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			memcpy(buf, "echo:", 5);
			ssize_t r = recvfrom(s, buf + 5, sizeof(buf) - 5, 0, (struct sockaddr *)&from, &fl);
			if (r < 0)
				return fail("recvfrom");
			if (sendto(s, buf, (size_t)r + 5, 0, (struct sockaddr *)&from, fl) < 0)
				return fail("sendto");
		}
		return 0;
	}
	fprintf(stderr, "usage: vsock_tool recv PORT [READY] | send CID PORT | echo PORT N | wait-eof CID PORT | udp-echo PORT N\n");
	return 2;
}
