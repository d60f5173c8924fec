/* The OS-neutral agent core: session (Hello until HelloAck, then stream),
 * sequence numbers, bounded outbound queue with non-blocking writes, heartbeats
 * and the command loop. An OS backend reports kernel events through ps_emit and
 * carries out device commands. */
#ifndef PS_AGENT_H
#define PS_AGENT_H
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "plugstorm/telemetry/v1/telemetry.pb.h"

#define PS_AGENT_VERSION "plugstorm-agent 0.1.0"
#define PS_PROTOCOL_VERSION 1

typedef plugstorm_telemetry_v1_Frame ps_frame_t;
typedef plugstorm_telemetry_v1_Command ps_command_t;

/* Field-setting shorthands for the generated names. */
#define PS_F(x) plugstorm_telemetry_v1_Frame_##x##_tag
#define PS_C(x) plugstorm_telemetry_v1_Command_##x##_tag

struct ps_agent;

struct ps_backend_ops {
	const char *name;
	plugstorm_telemetry_v1_GuestOs os;
	/* Sets up kernel observation; returns an opaque backend or NULL (err says why). */
	void *(*open)(struct ps_agent *a, char *err, size_t errlen);
	/* What the backend can observe and do (Hello.capabilities). */
	int (*capabilities)(void *be, plugstorm_telemetry_v1_Capability *out, int max);
	/* Descriptors to poll, and what to do when they are ready. */
	int (*pollfds)(void *be, struct pollfd *out, int max);
	void (*ready)(void *be, const struct pollfd *pfd, int n);
	/* Absolute CLOCK_MONOTONIC ns of the next tick wanted, or UINT64_MAX. */
	uint64_t (*next_tick)(void *be);
	void (*tick)(void *be, uint64_t now_ns);
	/* Device commands (HoldRefs, ReleaseRefs, traffic, faults, ...): 0 or an errno; msg explains. */
	int (*command)(void *be, const ps_command_t *cmd, char *msg, size_t msglen);
	void (*stats)(void *be, uint32_t *devices, uint32_t *refs, uint64_t *events_lost);
	/* Optional: what the backend cannot observe and why (Hello.unavailable). */
	int (*unavailable)(void *be, char (*out)[96], int max);
	/* Faults this backend can inject, comma separated, for the Log after HelloAck. */
	const char *faults;
};

extern const struct ps_backend_ops ps_backend_none;
#ifdef __linux__
extern const struct ps_backend_ops ps_backend_linux;
#endif
#ifdef __NetBSD__
extern const struct ps_backend_ops ps_backend_netbsd;
#endif

struct ps_agent_config {
	const struct ps_backend_ops *backend;
	/* "stdio" (in 0, out 1; EOF on stdin ends the agent) or a device path. */
	const char *transport;
	int verbose;
	/* How long a frame may wait unsent before it is dropped, and how long the
	 * channel may make no progress before the session is abandoned. */
	uint64_t frame_deadline_ns;
	uint64_t stall_ns;
	/* Why this transport was chosen (logged after HelloAck), or NULL. */
	const char *transport_note;
	/* Where start-up findings also go (the guest console, the host's boot
	 * log), or NULL for stderr only. */
	const char *console;
	/* How long the backend may wait for DTrace to come up. */
	uint64_t dtrace_deadline_ns;
	/* How often the transport is read when its poll() cannot be trusted. */
	uint64_t lying_poll_interval_ns;
};

const struct ps_agent_config *ps_agent_cfg(const struct ps_agent *a);
/* A start-up finding: to stderr, to the console if configured, and as a Log
 * frame (sent once the host has acknowledged the Hello). */
void ps_report(struct ps_agent *a, plugstorm_telemetry_v1_Log_Level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

uint64_t ps_now_ns(void);
/* Queues a frame (body set, seq assigned here; guest_time_ns 0 = now). Never blocks. */
void ps_emit(struct ps_agent *a, ps_frame_t *f);
void ps_log(struct ps_agent *a, plugstorm_telemetry_v1_Log_Level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Debug print to stderr when verbose. */
void ps_debug(struct ps_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bounded copy into a nanopb char array. */
#define PS_SET(dst, src) ps_strlcpy((dst), (src), sizeof(dst))
void ps_strlcpy(char *dst, const char *src, size_t cap);

/* Runs until the transport ends (stdio EOF) or a fatal error; returns the exit status. */
int ps_agent_run(const struct ps_agent_config *cfg);
#endif
