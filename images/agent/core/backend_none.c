/* A backend that observes nothing: the core alone, for host-side tests of the
 * protocol over a pipe ("loopback") and for OSes without a backend yet. */
#include <errno.h>
#include <stdio.h>

#include "agent.h"

static int dummy;

static void *none_open(struct ps_agent *a, char *err, size_t errlen)
{
	(void)a; (void)err; (void)errlen;
	return &dummy;
}

static int none_caps(void *be, plugstorm_telemetry_v1_Capability *out, int max)
{
	(void)be; (void)out; (void)max;
	return 0;
}

static int none_pollfds(void *be, struct pollfd *out, int max)
{
	(void)be; (void)out; (void)max;
	return 0;
}

static void none_ready(void *be, const struct pollfd *pfd, int n) { (void)be; (void)pfd; (void)n; }
static uint64_t none_next_tick(void *be) { (void)be; return UINT64_MAX; }
static void none_tick(void *be, uint64_t now) { (void)be; (void)now; }

static int none_command(void *be, const ps_command_t *c, char *msg, size_t msglen)
{
	(void)be;
	const char *dev = NULL, *serial = NULL;
	switch (c->which_body) {
	case PS_C(hold_refs): dev = c->body.hold_refs.device; serial = c->body.hold_refs.serial; break;
	case PS_C(release_refs): dev = c->body.release_refs.device; serial = c->body.release_refs.serial; break;
	case PS_C(start_traffic): dev = c->body.start_traffic.device; serial = c->body.start_traffic.serial; break;
	case PS_C(stop_traffic): dev = c->body.stop_traffic.device; serial = c->body.stop_traffic.serial; break;
	case PS_C(inject_fault): dev = c->body.inject_fault.device; serial = c->body.inject_fault.serial; break;
	default: break;
	}
	if (dev) {
		/* Naming what was asked for shows the command was decoded. */
		snprintf(msg, msglen, "no device \"%s\" (serial \"%s\"): backend none sees none", dev, serial);
		return ENODEV;
	}
	switch (c->which_body) {
	default:
		snprintf(msg, msglen, "not supported by backend none");
		return ENOTSUP;
	}
}

static void none_stats(void *be, uint32_t *devices, uint32_t *refs, uint64_t *lost)
{
	(void)be;
	*devices = 0;
	*refs = 0;
	*lost = 0;
}

const struct ps_backend_ops ps_backend_none = {
	.name = "none",
	.os = plugstorm_telemetry_v1_GuestOs_GUEST_OS_UNSPECIFIED,
	.open = none_open,
	.capabilities = none_caps,
	.pollfds = none_pollfds,
	.ready = none_ready,
	.next_tick = none_next_tick,
	.tick = none_tick,
	.command = none_command,
	.stats = none_stats,
	.faults = "leak-ref",
};
