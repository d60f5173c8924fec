/* An LD_PRELOAD stand-in for a character device whose poll always says
 * ready, as viocon(4)'s does (d_poll = nopoll = seltrue): poll() reports the
 * descriptor PS_FAKE_READY_FD readable and writable at once, whatever it
 * holds. Counts what the program under test then does with it, and writes
 * "polls P reads R empty E" to PS_FAKE_READY_OUT at exit
 * (test/agent/lying-poll.test.ts). Linux/glibc only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int target = -2;
static unsigned long polls, reads, empty;

static int fake_fd(void)
{
	if (target == -2) {
		const char *e = getenv("PS_FAKE_READY_FD");
		target = e ? atoi(e) : -1;
	}
	return target;
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	static int (*real)(struct pollfd *, nfds_t, int);
	if (!real)
		real = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
	int fd = fake_fd();
	nfds_t hit = n;
	for (nfds_t i = 0; i < n; i++)
		if (fds[i].fd == fd && fd >= 0 && (fds[i].events & (POLLIN | POLLOUT)))
			hit = i;
	if (hit == n)
		return real(fds, n, timeout);
	polls++;
	/* seltrue: ready now, so nothing else is waited for either. */
	int r = real(fds, n, 0);
	if (r < 0)
		return r;
	if (fds[hit].revents == 0)
		r++;
	fds[hit].revents |= fds[hit].events & (POLLIN | POLLOUT);
	return r;
}

ssize_t read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	if (!real)
		real = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	ssize_t r = real(fd, buf, len);
	if (fd == fake_fd()) {
		int e = errno;
		reads++;
		if (r < 0 && (e == EAGAIN || e == EWOULDBLOCK))
			empty++;
		errno = e;
	}
	return r;
}

__attribute__((destructor)) static void report(void)
{
	const char *out = getenv("PS_FAKE_READY_OUT");
	if (!out)
		return;
	FILE *f = fopen(out, "w");
	if (!f)
		return;
	fprintf(f, "polls %lu reads %lu empty %lu\n", polls, reads, empty);
	fclose(f);
}
