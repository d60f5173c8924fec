#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#if defined(__NetBSD__) || defined(PS_USE_KQUEUE)
/* viocon(4)'s cdevsw has d_poll = nopoll (seltrue: always ready) but
 * d_kqfilter = ttykqfilter, which is honest: device transports are
 * watched through a kqueue, whose own descriptor is what gets polled. */
#define PS_KQUEUE 1
#include <sys/event.h>
#endif

#include <pb_decode.h>
#include <pb_encode.h>

#include "framing.h"

#define NS 1000000000ull
/* Frames waiting for the wire. A storm with 64 NICs in flight makes the
 * kernel's trace buffer hand over hundreds of events in one read (three to
 * five frames each), faster than one pump: 256 dropped frames there. */
#define QUEUE_LEN 4096
#define WIRE_CAP (8 * (PS_MAX_ENCODED + 2))
#define MAX_POLL 64
/* Ready-without-data wakeups in a row before poll() is deemed to lie. */
#define SPURIOUS_LIMIT 8

struct pending {
	ps_frame_t f;
	uint64_t enq_ns;
};

struct ps_agent {
	const struct ps_agent_config *cfg;
	void *be;
	int in_fd, out_fd;
	int is_stdio;
	int acked;           /* HelloAck received: streaming */
	int connected;       /* device transport open and host attached */
	uint64_t seq;        /* last seq assigned in this session */
	uint64_t dropped;    /* frames dropped before sending, this boot */
	uint64_t bad_commands;
	uint64_t next_hello, next_heartbeat, last_progress, in_paused_until, next_open;
	struct pending q[QUEUE_LEN];
	unsigned q_head, q_len;
	uint8_t wire[WIRE_CAP];
	size_t wire_off, wire_len;
	struct ps_splitter rx;
	char boot_id[40];
	int done;
	int exit_status;
	/* The transport's readiness cannot be trusted (ready, yet no data and no
	 * room): it is then read and written on a timer instead of spinning. */
	unsigned spurious;
	int poll_lies;
	uint64_t next_lying_io;
	int kq;              /* kqueue watching the device transport, or -1 */
	int kq_write;        /* EVFILT_WRITE armed */
	uint64_t lying_ns;   /* timer period for a transport whose poll lies */
	/* Start-up findings (ps_report), told again at the start of every
	 * session: found before any host listened, a Log frame would have
	 * passed its deadline in the queue. */
	struct {
		plugstorm_telemetry_v1_Log_Level level;
		char text[200];
	} findings[12];
	int nfindings;
};

const struct ps_agent_config *ps_agent_cfg(const struct ps_agent *a)
{
	return a->cfg;
}

uint64_t ps_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

void ps_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

void ps_debug(struct ps_agent *a, const char *fmt, ...)
{
	if (!a->cfg->verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "plugstorm-agent: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------------------------ output */

void ps_emit(struct ps_agent *a, ps_frame_t *f)
{
	if (f->guest_time_ns == 0)
		f->guest_time_ns = ps_now_ns();
	if (a->q_len == QUEUE_LEN) {
		/* A full queue drops the newest frame; in a session it still uses up a
		 * seq so the host sees the gap, and the heartbeat counts it. */
		a->dropped++;
		if (a->acked)
			a->seq++;
		return;
	}
	struct pending *p = &a->q[(a->q_head + a->q_len) % QUEUE_LEN];
	p->f = *f;
	p->enq_ns = ps_now_ns();
	p->f.seq = a->acked ? ++a->seq : 0;
	if (p->f.which_body == PS_F(heartbeat))
		p->f.body.heartbeat.frames_sent = p->f.seq;
	a->q_len++;
}

void ps_log(struct ps_agent *a, plugstorm_telemetry_v1_Log_Level level, const char *fmt, ...)
{
	ps_frame_t f = plugstorm_telemetry_v1_Frame_init_zero;
	f.which_body = PS_F(log);
	f.body.log.level = level;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f.body.log.text, sizeof f.body.log.text, fmt, ap);
	va_end(ap);
	ps_debug(a, "log: %s", f.body.log.text);
	ps_emit(a, &f);
}

void ps_report(struct ps_agent *a, plugstorm_telemetry_v1_Log_Level level, const char *fmt, ...)
{
	char text[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	fprintf(stderr, "plugstorm-agent: %s\n", text);
	if (a->cfg->console) {
		int fd = open(a->cfg->console, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			char line[224];
			int n = snprintf(line, sizeof line, "plugstorm-agent: %s\r\n", text);
			if (n > 0 && write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
				n = 0;
			close(fd);
		}
	}
	if (a->nfindings < (int)(sizeof a->findings / sizeof a->findings[0])) {
		a->findings[a->nfindings].level = level;
		PS_SET(a->findings[a->nfindings].text, text);
		a->nfindings++;
	}
	if (a->acked)
		ps_log(a, level, "%s", text);
}

static size_t encode_frame(const ps_frame_t *f, uint8_t *out)
{
	uint8_t buf[PS_MAX_PAYLOAD];
	pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
	if (!pb_encode(&os, plugstorm_telemetry_v1_Frame_fields, f))
		return 0;
	return ps_frame_encode(buf, os.bytes_written, out);
}

/* Frames still waiting in the wire buffer (each ends with one 0x00). */
static uint64_t wire_frames(const struct ps_agent *a)
{
	uint64_t n = 0;
	for (size_t i = a->wire_off; i < a->wire_len; i++)
		if (a->wire[i] == 0 && i > a->wire_off && a->wire[i - 1] != 0)
			n++;
	return n;
}

static void end_session(struct ps_agent *a, const char *why)
{
	if (a->acked) {
		a->dropped += wire_frames(a);
		ps_debug(a, "session ended: %s", why);
	}
	a->acked = 0;
	a->wire_off = a->wire_len = 0;
	/* Frames not yet on the wire go out again in the next session, renumbered. */
	for (unsigned i = 0; i < a->q_len; i++)
		a->q[(a->q_head + i) % QUEUE_LEN].f.seq = 0;
	a->next_hello = 0;
}

static void send_hello(struct ps_agent *a)
{
	ps_frame_t f = plugstorm_telemetry_v1_Frame_init_zero;
	plugstorm_telemetry_v1_Hello *h = &f.body.hello;
	struct utsname u;

	f.which_body = PS_F(hello);
	f.seq = 1;
	f.guest_time_ns = ps_now_ns();
	PS_SET(h->agent_version, PS_AGENT_VERSION);
	h->os = a->cfg->backend->os;
	if (uname(&u) == 0)
		PS_SET(h->kernel_version, u.release);
	PS_SET(h->boot_id, a->boot_id);
	PS_SET(h->clock_source, "CLOCK_MONOTONIC");
	h->capabilities_count = (pb_size_t)a->cfg->backend->capabilities(a->be, h->capabilities,
			(int)(sizeof h->capabilities / sizeof h->capabilities[0]));
	h->protocol_version = PS_PROTOCOL_VERSION;
	if (a->cfg->backend->unavailable)
		h->unavailable_count = (pb_size_t)a->cfg->backend->unavailable(a->be, h->unavailable,
				(int)(sizeof h->unavailable / sizeof h->unavailable[0]));

	a->seq = 1;
	/* Before HelloAck the wire holds only an older Hello: replace it, with a
	 * lone delimiter first so a receiver that joined mid-frame resynchronises. */
	a->wire_off = a->wire_len = 0;
	a->wire[a->wire_len++] = 0;
	a->wire_len += encode_frame(&f, a->wire + a->wire_len);
	ps_debug(a, "hello sent");
}

/* Moves queued frames into the wire buffer, dropping those past their deadline. */
static void pump(struct ps_agent *a, uint64_t now)
{
	if (!a->acked)
		return;
	if (a->wire_off == a->wire_len)
		a->wire_off = a->wire_len = 0;
	while (a->q_len > 0) {
		struct pending *p = &a->q[a->q_head];
		if (p->f.seq == 0)
			p->f.seq = ++a->seq;
		if (now > p->enq_ns && now - p->enq_ns > a->cfg->frame_deadline_ns) {
			a->dropped++;
		} else {
			if (WIRE_CAP - a->wire_len < PS_MAX_ENCODED + 1) {
				if (a->wire_off == 0)
					break;
				memmove(a->wire, a->wire + a->wire_off, a->wire_len - a->wire_off);
				a->wire_len -= a->wire_off;
				a->wire_off = 0;
				if (WIRE_CAP - a->wire_len < PS_MAX_ENCODED + 1)
					break;
			}
			size_t n = encode_frame(&p->f, a->wire + a->wire_len);
			if (n == 0)
				a->dropped++;
			a->wire_len += n;
		}
		a->q_head = (a->q_head + 1) % QUEUE_LEN;
		a->q_len--;
	}
}

/* Returns the bytes written. */
static size_t flush(struct ps_agent *a, uint64_t now)
{
	size_t before = a->wire_off;
	while (a->wire_off < a->wire_len) {
		ssize_t n = write(a->out_fd, a->wire + a->wire_off, a->wire_len - a->wire_off);
		if (n > 0) {
			a->wire_off += (size_t)n;
			a->last_progress = now;
			continue;
		}
		if (n < 0 && (errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (a->is_stdio) {
			a->done = 1;
			return 0;
		}
		ps_debug(a, "write: %s", strerror(errno));
		end_session(a, "write failed");
		return 0;
	}
	return a->wire_off >= before ? a->wire_off - before : 0;
}

/* ------------------------------------------------------------------ input */

static void ack(struct ps_agent *a, uint64_t id, int err, const char *msg, uint64_t host_time)
{
	ps_frame_t f = plugstorm_telemetry_v1_Frame_init_zero;
	f.which_body = PS_F(ack);
	f.body.ack.id = id;
	f.body.ack.error = err;
	f.body.ack.host_time_ns = host_time;
	if (msg)
		PS_SET(f.body.ack.message, msg);
	ps_emit(a, &f);
}

/* Whether name is one item of a comma separated list. */
static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return 0;
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		while (*p == ' ')
			p++;
		if (strncmp(p, name, n) == 0 && (p[n] == 0 || p[n] == ','))
			return 1;
	}
	return 0;
}

static void on_command(void *ctx, const uint8_t *payload, size_t n)
{
	struct ps_agent *a = ctx;
	ps_command_t c = plugstorm_telemetry_v1_Command_init_zero;
	pb_istream_t is = pb_istream_from_buffer(payload, n);
	char msg[96] = "";

	if (!pb_decode(&is, plugstorm_telemetry_v1_Command_fields, &c)) {
		a->bad_commands++;
		ps_log(a, plugstorm_telemetry_v1_Log_Level_WARN, "undecodable command (%zu bytes): %s",
				n, PB_GET_ERROR(&is));
		return;
	}
	ps_debug(a, "command id %llu body %u", (unsigned long long)c.id, (unsigned)c.which_body);
	if (c.id == 0) {
		ack(a, 0, EINVAL, "command id must be non-zero", 0);
		return;
	}
	switch (c.which_body) {
	case PS_C(hello_ack):
		if (!a->acked) {
			a->acked = 1;
			a->next_heartbeat = ps_now_ns() + NS;
			/* Frames queued before the host was there get their seq now, in order. */
			for (unsigned i = 0; i < a->q_len; i++) {
				ps_frame_t *f = &a->q[(a->q_head + i) % QUEUE_LEN].f;
				f->seq = ++a->seq;
				if (f->which_body == PS_F(heartbeat))
					f->body.heartbeat.frames_sent = f->seq;
			}
			ack(a, c.id, 0, NULL, 0);
			ps_log(a, plugstorm_telemetry_v1_Log_Level_INFO, "backend %s; faults: %s",
					a->cfg->backend->name, a->cfg->backend->faults);
			if (a->cfg->transport_note && a->cfg->transport_note[0])
				ps_log(a, plugstorm_telemetry_v1_Log_Level_INFO, "transport %s: %s",
						a->cfg->transport, a->cfg->transport_note);
			for (int i = 0; i < a->nfindings; i++)
				ps_log(a, a->findings[i].level, "%s", a->findings[i].text);
		} else {
			ack(a, c.id, 0, "already streaming", 0);
		}
		return;
	case PS_C(ping):
		ack(a, c.id, 0, NULL, c.body.ping.host_time_ns);
		return;
	case PS_C(inject_fault):
		if (!in_list(a->cfg->backend->faults, c.body.inject_fault.name)) {
			snprintf(msg, sizeof msg, "unknown fault \"%s\" (supported: %s)",
					c.body.inject_fault.name, a->cfg->backend->faults);
			ack(a, c.id, EINVAL, msg, 0);
			return;
		}
		break;
	case 0:
		ack(a, c.id, EINVAL, "command has no body", 0);
		return;
	default:
		break;
	}
	int err = a->cfg->backend->command(a->be, &c, msg, sizeof msg);
	ack(a, c.id, err, msg[0] ? msg : NULL, 0);
}

/* Returns the bytes read, or -1 at end of file (the host went away). */
static ssize_t read_input(struct ps_agent *a, uint64_t now)
{
	uint8_t buf[4096];
	ssize_t total = 0;
	for (;;) {
		ssize_t n = read(a->in_fd, buf, sizeof buf);
		if (n > 0) {
			ps_splitter_feed(&a->rx, buf, (size_t)n);
			total += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return total;
		if (a->is_stdio) {
			a->done = 1;
			return -1;
		}
		/* A virtio port reads 0 (and polls POLLHUP) while no host is attached. */
		if (a->connected || a->acked)
			end_session(a, "host went away");
		a->connected = 0;
		a->in_paused_until = now + NS / 5;
		return -1;
	}
}

/* A wakeup for the transport that found nothing to read and no room to
 * write: seltrue-style poll (viocon). Enough in a row and the transport is
 * served on a timer, so a 1-vCPU guest is not starved by this loop. */
static void transport_idle_wakeup(struct ps_agent *a, int useful)
{
	if (useful) {
		a->spurious = 0;
		return;
	}
	if (a->poll_lies || ++a->spurious < SPURIOUS_LIMIT)
		return;
	a->poll_lies = 1;
	ps_report(a, plugstorm_telemetry_v1_Log_Level_WARN, "transport %s: poll() says ready with nothing "
			"to read or write; reading and writing it every %llu ms instead of spinning",
			a->cfg->transport, (unsigned long long)(a->lying_ns / 1000000));
}

#ifdef PS_KQUEUE
static void kq_watch(struct ps_agent *a)
{
	a->kq = kqueue();
	if (a->kq < 0) {
		ps_report(a, plugstorm_telemetry_v1_Log_Level_WARN, "kqueue: %s; falling back to poll()", strerror(errno));
		return;
	}
	fcntl(a->kq, F_SETFD, FD_CLOEXEC);
	struct kevent ev;
	EV_SET(&ev, a->in_fd, EVFILT_READ, EV_ADD, 0, 0, 0);
	if (kevent(a->kq, &ev, 1, NULL, 0, NULL) < 0) {
		ps_report(a, plugstorm_telemetry_v1_Log_Level_WARN, "kevent EVFILT_READ on %s: %s; falling back to poll()",
				a->cfg->transport, strerror(errno));
		close(a->kq);
		a->kq = -1;
	}
	a->kq_write = 0;
}

/* Arms the one-shot write filter while frames wait, and says what is ready. */
static void kq_arm_write(struct ps_agent *a)
{
	if (a->kq < 0 || a->kq_write || a->wire_off >= a->wire_len)
		return;
	struct kevent ev;
	EV_SET(&ev, a->out_fd, EVFILT_WRITE, EV_ADD | EV_ONESHOT, 0, 0, 0);
	if (kevent(a->kq, &ev, 1, NULL, 0, NULL) == 0)
		a->kq_write = 1;
}

static void kq_ready(struct ps_agent *a, int *readable, int *writable)
{
	struct kevent evs[4];
	struct timespec zero = { 0, 0 };
	int n = kevent(a->kq, NULL, 0, evs, 4, &zero);
	for (int i = 0; i < n; i++) {
		if (evs[i].filter == EVFILT_READ)
			*readable = 1;
		if (evs[i].filter == EVFILT_WRITE) {
			*writable = 1;
			a->kq_write = 0;
		}
	}
}
#endif

/* ------------------------------------------------------------------ loop */

static void make_boot_id(struct ps_agent *a)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, a->boot_id, sizeof a->boot_id - 1);
		close(fd);
		if (n > 0) {
			a->boot_id[n] = 0;
			a->boot_id[strcspn(a->boot_id, "\n")] = 0;
			return;
		}
	}
	uint8_t r[16] = {0};
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, r, sizeof r) < 0)
			r[0] = 0;
		close(fd);
	}
	uint64_t t = ps_now_ns();
	for (int i = 0; i < 16; i++)
		snprintf(a->boot_id + 2 * i, 3, "%02x", r[i] ^ (uint8_t)(t >> (8 * (i % 8))));
}

static int open_transport(struct ps_agent *a)
{
	if (a->is_stdio) {
		a->in_fd = 0;
		a->out_fd = 1;
		fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
		fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
		return 0;
	}
	int fd = open(a->cfg->transport, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	/* A UART (NetBSD com1 = /dev/tty01) must be raw: default termios turns
	 * \n into \r\n and eats the frames. BSD resets termios on first open,
	 * so stty before starting the agent would not stick. */
	if (isatty(fd)) {
		struct termios t;
		if (tcgetattr(fd, &t) == 0) {
			t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
			t.c_oflag &= ~(tcflag_t)OPOST;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
			t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CRTSCTS);
			t.c_cflag |= CS8 | CLOCAL | CREAD;
			t.c_cc[VMIN] = 1;
			t.c_cc[VTIME] = 0;
			cfsetispeed(&t, B115200);
			cfsetospeed(&t, B115200);
			tcsetattr(fd, TCSANOW, &t);
		}
	}
	a->in_fd = a->out_fd = fd;
#ifdef PS_KQUEUE
	kq_watch(a);
#endif
	return 0;
}

static uint64_t min64(uint64_t x, uint64_t y) { return x < y ? x : y; }

int ps_agent_run(const struct ps_agent_config *cfg)
{
	static struct ps_agent agent;
	struct ps_agent *a = &agent;
	char err[160] = "";

	a->cfg = cfg;
	a->in_fd = a->out_fd = -1;
	a->kq = -1;
	a->lying_ns = cfg->lying_poll_interval_ns ? cfg->lying_poll_interval_ns : NS / 50;
	a->is_stdio = strcmp(cfg->transport, "stdio") == 0;
	ps_splitter_init(&a->rx, on_command, a);
	make_boot_id(a);
	a->be = cfg->backend->open(a, err, sizeof err);
	if (!a->be) {
		fprintf(stderr, "plugstorm-agent: backend %s: %s\n", cfg->backend->name, err);
		return 1;
	}
	if (err[0])
		ps_log(a, plugstorm_telemetry_v1_Log_Level_WARN, "%s", err);

	while (!a->done) {
		uint64_t now = ps_now_ns();
		if (a->in_fd < 0 && now >= a->next_open) {
			if (open_transport(a) < 0) {
				if (a->next_open == 0)
					fprintf(stderr, "plugstorm-agent: open %s: %s (retrying)\n",
							cfg->transport, strerror(errno));
				a->next_open = now + NS;
			} else {
				a->connected = 1;
				a->last_progress = now;
			}
		}
		if (a->in_fd >= 0) {
			if (!a->acked && now >= a->next_hello) {
				send_hello(a);
				a->next_hello = now + NS;
				a->last_progress = now;
			}
			if (a->acked && now >= a->next_heartbeat) {
				ps_frame_t f = plugstorm_telemetry_v1_Frame_init_zero;
				f.which_body = PS_F(heartbeat);
				f.body.heartbeat.frames_dropped = a->dropped;
				cfg->backend->stats(a->be, &f.body.heartbeat.devices_present,
						&f.body.heartbeat.refs_held, &f.body.heartbeat.events_lost);
				ps_emit(a, &f);
				a->next_heartbeat = now + NS;
			}
			pump(a, now);
			flush(a, now);
			if (a->acked && a->wire_off < a->wire_len && now - a->last_progress > cfg->stall_ns)
				end_session(a, "channel stalled");
		}
		if (cfg->backend->next_tick(a->be) <= now)
			cfg->backend->tick(a->be, now);

		struct pollfd pfd[MAX_POLL];
		int n = 0, in_idx = -1, out_idx = -1;
#ifdef PS_KQUEUE
		int kq_idx = -1;
#endif
		int serve = a->in_fd >= 0 && now >= a->in_paused_until;
		int want_out = a->wire_off < a->wire_len;
		if (serve && a->poll_lies) {
			/* Served on the timer below, never polled. */
		}
#ifdef PS_KQUEUE
		else if (serve && a->kq >= 0) {
			kq_arm_write(a);
			kq_idx = n;
			pfd[n].fd = a->kq;
			pfd[n].events = POLLIN;
			n++;
		}
#endif
		else if (serve) {
			in_idx = n;
			pfd[n].fd = a->in_fd;
			pfd[n].events = POLLIN;
			if (a->out_fd == a->in_fd) {
				if (want_out)
					pfd[n].events |= POLLOUT;
				out_idx = n;
			}
			n++;
			if (a->out_fd != a->in_fd && want_out) {
				out_idx = n;
				pfd[n].fd = a->out_fd;
				pfd[n].events = POLLOUT;
				n++;
			}
		}
		int be_first = n;
		n += cfg->backend->pollfds(a->be, pfd + n, MAX_POLL - n);

		uint64_t wake = cfg->backend->next_tick(a->be);
		if (a->in_fd < 0)
			wake = min64(wake, a->next_open);
		else {
			wake = min64(wake, a->acked ? a->next_heartbeat : a->next_hello);
			if (now < a->in_paused_until)
				wake = min64(wake, a->in_paused_until);
			if (a->acked && a->q_len > 0)
				wake = min64(wake, now + NS / 100); /* wire full: retry soon */
			if (serve && a->poll_lies)
				wake = min64(wake, a->next_lying_io);
		}
		now = ps_now_ns();
		int timeout = wake <= now ? 0 : (int)min64((wake - now + 999999) / 1000000, 60000);
		int r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR) {
			perror("plugstorm-agent: poll");
			return 1;
		}
		now = ps_now_ns();
		if (serve && a->poll_lies && now >= a->next_lying_io) {
			a->next_lying_io = now + a->lying_ns;
			read_input(a, now);
			flush(a, now);
		}
		if (r <= 0)
			continue;
		int readable = 0, writable = 0;
		if (in_idx >= 0 && (pfd[in_idx].revents & (POLLIN | POLLHUP | POLLERR)))
			readable = 1;
		if (out_idx >= 0 && (pfd[out_idx].revents & POLLOUT))
			writable = 1;
#ifdef PS_KQUEUE
		if (kq_idx >= 0 && (pfd[kq_idx].revents & POLLIN))
			kq_ready(a, &readable, &writable);
#endif
		if (readable || writable) {
			ssize_t got = readable ? read_input(a, now) : 0;
			size_t put = writable ? flush(a, now) : 0;
			/* EOF (got < 0) is news too: the host went away. */
			transport_idle_wakeup(a, got != 0 || put > 0 || a->in_fd < 0 || a->done);
		}
		if (be_first < n)
			cfg->backend->ready(a->be, pfd + be_first, n - be_first);
	}
	/* Best effort: what is already framed goes out before a clean exit. */
	if (a->out_fd >= 0) {
		fcntl(a->out_fd, F_SETFL, fcntl(a->out_fd, F_GETFL) & ~O_NONBLOCK);
		pump(a, ps_now_ns());
		flush(a, ps_now_ns());
	}
	return a->exit_status;
}
