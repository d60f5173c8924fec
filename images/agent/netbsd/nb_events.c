/* See nb_events.h. Kernel facts behind the mapping (images/netbsd/README.md,
 * "NetBSD facts"): "device-attach" is reported before ca_attach runs,
 * "device-detach" after the localcount drain and before config_detach
 * returns; the softc is freed inside config_detach (config_devfree) unless a
 * device iterator defers it. RTM_IFANNOUNCE departure is sent from inside
 * if_detach: after psref_target_destroy in 10.x (if.c), before it in 7.x
 * (measured), so it is reported as what it is (IfEvent DEPARTURE) and no
 * order with the drain is assumed. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_events.h"

/* sys/sys/device.h */
#define NB_DETACH_FORCE 0x01
#define NB_DETACH_QUIET 0x02
#define NB_DETACH_SHUTDOWN 0x04
#define NB_DETACH_POWEROFF 0x08

const char *const ps_nb_devent_names[PS_NB_D_COUNT] = {
	[PS_NB_D_DETACH_ENTRY] = "detach-entry",
	[PS_NB_D_DETACH_RETURN] = "detach-return",
	[PS_NB_D_DEACTIVATE_ENTRY] = "deactivate-entry",
	[PS_NB_D_DEACTIVATE_RETURN] = "deactivate-return",
	[PS_NB_D_PORT_ENTRY] = "port-entry",
	[PS_NB_D_PORT_RETURN] = "port-return",
	[PS_NB_D_USBNET_ENTRY] = "usbnet-entry",
	[PS_NB_D_USBNET_RETURN] = "usbnet-return",
	[PS_NB_D_IFDETACH_ENTRY] = "ifdetach-entry",
	[PS_NB_D_IFDETACH_RETURN] = "ifdetach-return",
	[PS_NB_D_PSREF_ENTRY] = "psref-entry",
	[PS_NB_D_PSREF_RETURN] = "psref-return",
	[PS_NB_D_LCDRAIN_ENTRY] = "lcdrain-entry",
	[PS_NB_D_LCDRAIN_RETURN] = "lcdrain-return",
	[PS_NB_D_ACQUIRE] = "acquire",
	[PS_NB_D_RELEASE] = "release",
	[PS_NB_D_RELEASE_RETURN] = "release-return",
	[PS_NB_D_PIPE_ABORT_START] = "pipe-abort-start",
	[PS_NB_D_PIPE_ABORT_DONE] = "pipe-abort-done",
	[PS_NB_D_XFER] = "usbdi",
	[PS_NB_D_COMMIT] = "commit",
	[PS_NB_D_DEVFREE] = "devfree",
	[PS_NB_D_ETHER_IFDETACH] = "ether-ifdetach",
	[PS_NB_D_TASK_WAIT] = "task-wait",
	[PS_NB_D_IFREF_ACQUIRE] = "ifref-acquire",
	[PS_NB_D_IFREF_RELEASE] = "ifref-release",
};

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int ps_nb_parse_dline(const char *line, struct ps_nb_dline *out, char *err, size_t errlen)
{
	static const char *const what[] = { "tag", "timestamp", "tid", "event", "arg1", "arg2" };
	const char *f[6];
	size_t len[6];
	int n = 0;
	const char *p = line;
	if (strncmp(line, "PS ", 3) != 0)
		return 0;
	while (n < 6) {
		const char *e = p;
		while (*e && *e != ' ' && *e != '\n' && *e != '\r')
			e++;
		f[n] = p;
		len[n] = (size_t)(e - p);
		if (len[n] == 0) {
			snprintf(err, errlen, "field %d (%s) is empty", n + 1, what[n]);
			return -1;
		}
		n++;
		if (*e != ' ')
			break;
		p = e + 1;
	}
	if (n < 6) {
		snprintf(err, errlen, "expected 6 fields (PS ts tid event arg1 arg2), got %d", n);
		return -1;
	}
	const char *rest = f[5] + len[5];
	while (*rest == '\n' || *rest == '\r')
		rest++;
	if (*rest != '\0') {
		snprintf(err, errlen, "trailing text after arg2: \"%.20s\"", rest);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if (parse_u64(f[1], len[1], &out->ts_ns) != 0) {
		snprintf(err, errlen, "timestamp \"%.*s\" is not a decimal number", (int)(len[1] > 24 ? 24 : len[1]), f[1]);
		return -1;
	}
	if (parse_u64(f[2], len[2], &out->tid) != 0) {
		snprintf(err, errlen, "tid \"%.*s\" is not a decimal number", (int)(len[2] > 24 ? 24 : len[2]), f[2]);
		return -1;
	}
	int k;
	for (k = 0; k < PS_NB_D_COUNT; k++)
		if (strlen(ps_nb_devent_names[k]) == len[3] && memcmp(ps_nb_devent_names[k], f[3], len[3]) == 0)
			break;
	if (k == PS_NB_D_COUNT) {
		snprintf(err, errlen, "unknown event \"%.*s\"", (int)(len[3] > 32 ? 32 : len[3]), f[3]);
		return -1;
	}
	out->kind = (enum ps_nb_dkind)k;
	for (int i = 4; i < 6; i++) {
		char *dst = i == 4 ? out->arg1 : out->arg2;
		if (len[i] >= sizeof(out->arg1)) {
			snprintf(err, errlen, "%s is longer than %zu bytes", what[i], sizeof(out->arg1) - 1);
			return -1;
		}
		if (!(len[i] == 1 && f[i][0] == '-'))
			memcpy(dst, f[i], len[i]);
	}
	return 1;
}

void ps_nb_driver_of(const char *xname, char *out, size_t cap)
{
	size_t n = strlen(xname);
	while (n > 0 && isdigit((unsigned char)xname[n - 1]))
		n--;
	if (n == strlen(xname))
		n = 0; /* no unit number: not an autoconf name */
	if (n >= cap)
		n = cap - 1;
	memcpy(out, xname, n);
	out[n] = '\0';
}

void ps_nb_init(struct ps_nb_state *s, int have_dtrace)
{
	memset(s, 0, sizeof(*s));
	s->have_dtrace = have_dtrace;
	s->have_drvctl = 1;
	if (have_dtrace) {
		s->probes.detach_return = 1;
		s->probes.devfree = 0; /* static in subr_autoconf.c: only if fbt found it */
		s->probes.ifnet_refs = 1;
	}
}

void ps_nb_set_probes(struct ps_nb_state *s, const struct ps_nb_probes *p)
{
	s->probes = *p;
}

struct ps_nb_dev *ps_nb_find(struct ps_nb_state *s, const char *name)
{
	for (int i = 0; i < PS_NB_MAX_DEVS; i++)
		if (s->devs[i].used && strcmp(s->devs[i].name, name) == 0)
			return &s->devs[i];
	return NULL;
}

static struct ps_nb_dev *dev_new(struct ps_nb_state *s, const char *name)
{
	struct ps_nb_dev *d = ps_nb_find(s, name);
	if (!d) {
		/* Reuse a departed slot before giving up: names come back (cdce0 again). */
		for (int i = 0; i < PS_NB_MAX_DEVS && !d; i++)
			if (!s->devs[i].used)
				d = &s->devs[i];
		for (int i = 0; i < PS_NB_MAX_DEVS && !d; i++)
			if (!s->devs[i].present)
				d = &s->devs[i];
		if (!d)
			return NULL;
	}
	memset(d, 0, sizeof(*d));
	d->used = 1;
	d->present = 1;
	d->instance = ++s->next_instance;
	PS_SET(d->name, name);
	return d;
}

static plugstorm_telemetry_v1_Bus bus_of(const char *parent)
{
	if (strncmp(parent, "uhub", 4) == 0)
		return plugstorm_telemetry_v1_Bus_BUS_USB;
	if (strncmp(parent, "pcmcia", 6) == 0)
		return plugstorm_telemetry_v1_Bus_BUS_PCMCIA;
	if (strncmp(parent, "pci", 3) == 0)
		return plugstorm_telemetry_v1_Bus_BUS_PCI;
	return plugstorm_telemetry_v1_Bus_BUS_UNSPECIFIED;
}

static plugstorm_telemetry_v1_DeviceEvent *dev_frame(ps_frame_t *f, uint64_t ts, plugstorm_telemetry_v1_DeviceEvent_Kind kind,
						      const char *name, const struct ps_nb_dev *d)
{
	memset(f, 0, sizeof(*f));
	f->guest_time_ns = ts;
	f->which_body = PS_F(device);
	plugstorm_telemetry_v1_DeviceEvent *e = &f->body.device;
	e->kind = kind;
	PS_SET(e->name, name);
	ps_nb_driver_of(name, e->driver, sizeof(e->driver));
	if (d) {
		PS_SET(e->parent, d->parent);
		e->bus = bus_of(d->parent);
		PS_SET(e->serial, d->info.serial);
		PS_SET(e->mac, d->info.mac);
		PS_SET(e->port, d->info.port);
		e->instance = d->instance;
		/* Ethernet drivers name their interface after the device (cdce0). */
		PS_SET(e->ifname, name);
	}
	return e;
}

static void if_frame(ps_frame_t *f, uint64_t ts, plugstorm_telemetry_v1_IfEvent_Kind kind, const char *ifname, const char *device)
{
	memset(f, 0, sizeof(*f));
	f->guest_time_ns = ts;
	f->which_body = PS_F(ifnet);
	f->body.ifnet.kind = kind;
	PS_SET(f->body.ifnet.ifname, ifname);
	PS_SET(f->body.ifnet.device, device);
}

static int detach_end_frame(struct ps_nb_state *s, ps_frame_t *out, uint64_t ts, const char *name, int error)
{
	struct ps_nb_dev *dv = ps_nb_find(s, name);
	plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(out, ts, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_END, name, dv);
	e->error = error;
	if (dv)
		dv->detach_ended = 1;
	return 1;
}

static void drop_detach_frames(struct ps_nb_state *s, const char *device);

void ps_nb_set_clock(struct ps_nb_state *s, uint64_t now_ns)
{
	s->clock_ns = now_ns;
}

/* Whether drvctl's report is joined with what DTrace saw after it. */
static int joining(const struct ps_nb_state *s)
{
	return s->have_dtrace && s->have_drvctl && (s->probes.detach_return || s->probes.devfree);
}

/* The report, then what waited for it, then (without a return probe) the end.
 * Needs up to 4 frames. */
static int release_report(struct ps_nb_state *s, struct ps_nb_dev *d, uint64_t rep_ts, ps_frame_t *out)
{
	int n = 0;
	dev_frame(&out[n++], rep_ts, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_REPORTED, d->name, d);
	uint64_t last = rep_ts;
	for (int i = 0; i < d->npost; i++) {
		out[n++] = d->post[i];
		last = d->post[i].guest_time_ns;
	}
	d->npost = 0;
	d->rep_held = 0;
	d->reported = 1;
	if (!(s->have_dtrace && s->probes.detach_return) && !d->detach_ended) {
		n += detach_end_frame(s, &out[n], last, d->name, 0);
		drop_detach_frames(s, d->name);
	}
	return n;
}

/* Frames DTrace saw after the report in the kernel (the free, the return):
 * out now if the report is in, held otherwise. Returns frames written. */
static int after_report(struct ps_nb_state *s, struct ps_nb_dev *d, const ps_frame_t *fr, int k, ps_frame_t *out)
{
	if (!d || !joining(s) || d->reported) {
		for (int i = 0; i < k; i++)
			out[i] = fr[i];
		return k;
	}
	for (int i = 0; i < k && d->npost < 2; i++)
		d->post[d->npost++] = fr[i];
	if (d->rep_held) {
		/* The report happened before these in the kernel: stamp it no later. */
		uint64_t ts = d->rep_ts < d->post[0].guest_time_ns ? d->rep_ts : d->post[0].guest_time_ns;
		return release_report(s, d, ts, out);
	}
	if (d->npost == k)
		d->post_seen_ns = s->clock_ns;
	return 0;
}

int ps_nb_flush_joins(struct ps_nb_state *s, uint64_t now_ns, ps_frame_t *out, int max)
{
	int n = 0;
	for (int i = 0; i < PS_NB_MAX_DEVS && n + 4 <= max; i++) {
		struct ps_nb_dev *d = &s->devs[i];
		if (!d->used)
			continue;
		if (d->rep_held && now_ns >= d->rep_seen_ns + PS_NB_JOIN_NS) {
			/* No free or return came: emit the report as it is. */
			n += release_report(s, d, d->rep_ts, &out[n]);
		} else if (d->npost > 0 && now_ns >= d->post_seen_ns + PS_NB_JOIN_NS) {
			/* No report came (drvctl's queue may have dropped it). */
			for (int k = 0; k < d->npost; k++)
				out[n++] = d->post[k];
			d->npost = 0;
			d->reported = 1;
		}
	}
	return n;
}

uint64_t ps_nb_next_join(const struct ps_nb_state *s)
{
	uint64_t t = UINT64_MAX;
	for (int i = 0; i < PS_NB_MAX_DEVS; i++) {
		const struct ps_nb_dev *d = &s->devs[i];
		if (!d->used)
			continue;
		if (d->rep_held && d->rep_seen_ns + PS_NB_JOIN_NS < t)
			t = d->rep_seen_ns + PS_NB_JOIN_NS;
		if (d->npost > 0 && d->post_seen_ns + PS_NB_JOIN_NS < t)
			t = d->post_seen_ns + PS_NB_JOIN_NS;
	}
	return t;
}

int ps_nb_drvctl_frames(struct ps_nb_state *s, const char *event, const char *device, const char *parent,
			const struct ps_nb_devinfo *info, uint64_t ts_ns, ps_frame_t *out, int max)
{
	if (max < 1)
		return 0;
	if (strcmp(event, "device-attach") == 0) {
		/* An attach for a device still present: the 64-deep drvctl queue
		 * dropped its detach (it drops the oldest, silently). */
		struct ps_nb_dev *old = ps_nb_find(s, device);
		if (old && old->present)
			s->events_lost++;
		struct ps_nb_dev *d = dev_new(s, device);
		if (!d) {
			s->unattributed++;
			return 0;
		}
		PS_SET(d->parent, parent ? parent : "");
		if (info)
			d->info = *info;
		d->attach_held = 1;
		d->attach_ts = ts_ns;
		return 0;
	}
	if (strcmp(event, "device-detach") == 0) {
		struct ps_nb_dev *d = ps_nb_find(s, device);
		/* A detach for a device whose attach never came: the queue dropped it. */
		if (!d)
			s->events_lost++;
		/* Properties are gone with the device: keep what attach learned. */
		if (d && info) {
			if (info->serial[0])
				PS_SET(d->info.serial, info->serial);
			if (info->mac[0])
				PS_SET(d->info.mac, info->mac);
		}
		int n = ps_nb_flush_attach(s, device, out, max);
		/* devmon's report: after the driver's detach and the localcount
		 * drain, before the free and config_detach's return. */
		if (d && joining(s) && !d->reported && max - n >= 4) {
			if (d->npost > 0) {
				uint64_t ts = ts_ns < d->post[0].guest_time_ns ? ts_ns : d->post[0].guest_time_ns;
				n += release_report(s, d, ts, &out[n]);
			} else if (!d->rep_held) {
				d->rep_held = 1;
				d->rep_ts = ts_ns;
				d->rep_seen_ns = s->clock_ns;
			}
			d->present = 0;
			return n;
		}
		if (n < max)
			dev_frame(&out[n++], ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_REPORTED, device, d);
		/* Without a config_detach return probe this is the last word on a
		 * successful detach (it is only reported on success): the end. */
		if (!(s->have_dtrace && s->probes.detach_return) && n < max && !(d && d->detach_ended)) {
			n += detach_end_frame(s, &out[n], ts_ns, device, 0);
			drop_detach_frames(s, device);
		}
		if (d)
			d->present = 0;
		return n;
	}
	return -1;
}

int ps_nb_flush_attach(struct ps_nb_state *s, const char *device, ps_frame_t *out, int max)
{
	struct ps_nb_dev *d = ps_nb_find(s, device);
	if (!d || !d->attach_held || max < 1)
		return 0;
	d->attach_held = 0;
	plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[0], d->attach_ts, plugstorm_telemetry_v1_DeviceEvent_Kind_ATTACH_BEGIN, device, d);
	e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	return 1;
}

int ps_nb_ifannounce_frames(struct ps_nb_state *s, const char *ifname, int arrival, const struct ps_nb_devinfo *info,
			    uint64_t ts_ns, ps_frame_t *out, int max)
{
	struct ps_nb_dev *d = ps_nb_find(s, ifname);
	const char *device = d ? d->name : "";
	if (arrival) {
		if (max < 4)
			return 0;
		if (d && info) {
			if (info->serial[0])
				PS_SET(d->info.serial, info->serial);
			if (info->mac[0])
				PS_SET(d->info.mac, info->mac);
		}
		/* The interface is registered at the end of the driver's attach: the
		 * nearest observable point to ca_attach returning. */
		int n = d ? ps_nb_flush_attach(s, ifname, out, max) : 0;
		if (d && d->present)
			dev_frame(&out[n++], ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_ATTACH_END, ifname, d);
		/* if_register sends the announcement: the interface is attached. */
		if_frame(&out[n++], ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_ATTACH, ifname, device);
		if (n < max)
			if_frame(&out[n++], ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_ARRIVAL, ifname, device);
		return n;
	}
	if (max < 1)
		return 0;
	/* Announced from inside if_detach; whether before or after the psref
	 * drain depends on the version, and a full routing socket drops it:
	 * neither if_detach's begin nor its end is implied. */
	if_frame(&out[0], ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DEPARTURE, ifname, device);
	return 1;
}

static struct ps_nb_thread *thread_of(struct ps_nb_state *s, uint64_t tid, int create)
{
	struct ps_nb_thread *free_slot = NULL, *oldest = NULL;
	for (int i = 0; i < PS_NB_MAX_THREADS; i++) {
		struct ps_nb_thread *t = &s->threads[i];
		if (t->depth > 0 && t->tid == tid)
			return t;
		if (t->depth == 0 && !free_slot)
			free_slot = t;
		if (t->depth > 0 && (!oldest || t->last_ts < oldest->last_ts))
			oldest = t;
	}
	if (!create)
		return NULL;
	if (!free_slot) {
		/* Every slot holds a thread with open frames: the one seen least
		 * recently is most likely one whose returns were never probed. */
		free_slot = oldest;
		s->unreturned += (uint64_t)free_slot->depth;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->tid = tid;
	return free_slot;
}

void ps_nb_route_overflow(struct ps_nb_state *s)
{
	s->events_lost++;
	s->route_lost++;
}

int ps_nb_loss_log(struct ps_nb_state *s, ps_frame_t *out, int max)
{
	if (max < 1 || s->route_lost == s->route_lost_told)
		return 0;
	memset(out, 0, sizeof(*out));
	out->which_body = PS_F(log);
	out->body.log.level = plugstorm_telemetry_v1_Log_Level_WARN;
	/* The count is of recv errors: each stands for one or more messages. */
	snprintf(out->body.log.text, sizeof out->body.log.text,
		 "routing socket overflowed %llu time(s) (ENOBUFS): interface arrivals/departures were lost; "
		 "a missing departure is not a lost detach",
		 (unsigned long long)s->route_lost);
	s->route_lost_told = s->route_lost;
	return 1;
}

int ps_nb_thread_depth(struct ps_nb_state *s, uint64_t tid)
{
	struct ps_nb_thread *t = thread_of(s, tid, 0);
	return t ? t->depth : 0;
}

static struct ps_nb_thread *push(struct ps_nb_state *s, const struct ps_nb_dline *d, const char *name)
{
	struct ps_nb_thread *t = thread_of(s, d->tid, 1);
	if (t->depth == PS_NB_DEPTH) {
		/* The oldest frame is the likeliest to have lost its return. */
		memmove(t->stack, t->stack + 1, sizeof(t->stack[0]) * (PS_NB_DEPTH - 1));
		memmove(t->what, t->what + 1, sizeof(t->what[0]) * (PS_NB_DEPTH - 1));
		memmove(t->waiter, t->waiter + 1, PS_NB_DEPTH - 1);
		memmove(t->past_if_detach, t->past_if_detach + 1, PS_NB_DEPTH - 1);
		t->depth--;
		s->unreturned++;
	}
	PS_SET(t->stack[t->depth], name);
	t->what[t->depth] = d->kind;
	t->waiter[t->depth] = 0;
	t->past_if_detach[t->depth] = 0;
	t->depth++;
	t->last_ts = d->ts_ns;
	return t;
}

/* Pops the innermost frame entered by `entry`, and every frame above it
 * (entries whose return never came); returns its name (static buffer) and
 * whether it was a waiter, or NULL when no such frame is open (the script
 * started inside the call). */
static const char *pop(struct ps_nb_state *s, const struct ps_nb_dline *d, enum ps_nb_dkind entry, int *waiter)
{
	static char name[24];
	struct ps_nb_thread *t = thread_of(s, d->tid, 0);
	if (!t)
		return NULL;
	for (int i = t->depth - 1; i >= 0; i--) {
		if (t->what[i] != entry)
			continue;
		s->unreturned += (uint64_t)(t->depth - 1 - i);
		PS_SET(name, t->stack[i]);
		if (waiter)
			*waiter = t->waiter[i];
		t->depth = i;
		t->last_ts = d->ts_ns;
		return name;
	}
	return NULL;
}

/* Removes, on every thread, the open config_detach frame of a device whose
 * detach is known to be over (drvctl said so) although no return was seen. */
static void drop_detach_frames(struct ps_nb_state *s, const char *device)
{
	for (int k = 0; k < PS_NB_MAX_THREADS; k++) {
		struct ps_nb_thread *t = &s->threads[k];
		for (int i = t->depth - 1; i >= 0; i--) {
			if (t->what[i] == PS_NB_D_DETACH_ENTRY && !t->waiter[i] && strcmp(t->stack[i], device) == 0) {
				s->unreturned += (uint64_t)(t->depth - i);
				t->depth = i;
				break;
			}
		}
	}
}

/* Innermost enclosing call of kind k on this thread (its name), or NULL;
 * a config_detach that is only waiting for another thread's does not count. */
static const char *inside(struct ps_nb_state *s, uint64_t tid, enum ps_nb_dkind k)
{
	struct ps_nb_thread *t = thread_of(s, tid, 0);
	if (!t)
		return NULL;
	for (int i = t->depth - 1; i >= 0; i--)
		if (t->what[i] == k && !t->waiter[i])
			return t->stack[i];
	return NULL;
}

static int innermost_is(struct ps_nb_state *s, uint64_t tid, enum ps_nb_dkind k)
{
	struct ps_nb_thread *t = thread_of(s, tid, 0);
	return t && t->depth > 0 && t->what[t->depth - 1] == k;
}

/* Whether another thread is inside config_detach of this device (as the
 * detacher, not as a waiter). */
static int detaching_elsewhere(struct ps_nb_state *s, uint64_t tid, const char *device)
{
	for (int k = 0; k < PS_NB_MAX_THREADS; k++) {
		struct ps_nb_thread *t = &s->threads[k];
		if (t->depth == 0 || t->tid == tid)
			continue;
		for (int i = 0; i < t->depth; i++)
			if (t->what[i] == PS_NB_D_DETACH_ENTRY && !t->waiter[i] && strcmp(t->stack[i], device) == 0)
				return 1;
	}
	return 0;
}

static int drain(struct ps_nb_state *s, const struct ps_nb_dline *d, int begin, plugstorm_telemetry_v1_ObjectKind kind,
		 const char *device, ps_frame_t *out)
{
	struct ps_nb_dev *dv = ps_nb_find(s, device);
	plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(out, d->ts_ns,
		begin ? plugstorm_telemetry_v1_DeviceEvent_Kind_DRAIN_BEGIN : plugstorm_telemetry_v1_DeviceEvent_Kind_DRAIN_END, device, dv);
	e->object_kind = kind;
	e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	return 1;
}

static void ref_frame(ps_frame_t *f, const struct ps_nb_dline *d, plugstorm_telemetry_v1_RefEvent_Kind kind, const char *object)
{
	memset(f, 0, sizeof(*f));
	f->guest_time_ns = d->ts_ns;
	f->which_body = PS_F(ref);
	f->body.ref.kind = kind;
	f->body.ref.object_kind = plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_DEVICE;
	PS_SET(f->body.ref.object, object);
	/* device_lookup_acquire/device_release pair up on one lwp (cdev_open). */
	snprintf(f->body.ref.holder, sizeof(f->body.ref.holder), "lwp:%llu", (unsigned long long)d->tid);
	PS_SET(f->body.ref.holder_desc, "device_lookup_acquire");
	f->body.ref.count_after = -1;
	f->body.ref.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	PS_SET(f->body.ref.device, object);
}

static plugstorm_telemetry_v1_DeviceEvent *step_frame(struct ps_nb_state *s, ps_frame_t *out, const struct ps_nb_dline *d,
						     const char *device, plugstorm_telemetry_v1_DeviceEvent_DetachStep step)
{
	plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(out, d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_STEP, device, ps_nb_find(s, device));
	e->step = step;
	e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	return e;
}

/* The innermost usbnet_detach frame of this thread, or -1. */
static int usbnet_frame(struct ps_nb_state *s, uint64_t tid, struct ps_nb_thread **tp)
{
	struct ps_nb_thread *t = thread_of(s, tid, 0);
	*tp = t;
	if (!t)
		return -1;
	for (int i = t->depth - 1; i >= 0; i--)
		if (t->what[i] == PS_NB_D_USBNET_ENTRY)
			return i;
	return -1;
}

/* A thread sleeping in config_detach_enter for this device: its thread and
 * frame index, or NULL. */
static struct ps_nb_thread *sleeper_of(struct ps_nb_state *s, const char *device, int *idx)
{
	for (int k = 0; k < PS_NB_MAX_THREADS; k++) {
		struct ps_nb_thread *t = &s->threads[k];
		for (int i = 0; i < t->depth; i++)
			if (t->what[i] == PS_NB_D_DETACH_ENTRY && t->waiter[i] && strcmp(t->stack[i], device) == 0) {
				*idx = i;
				return t;
			}
	}
	return NULL;
}

static void set_flags(plugstorm_telemetry_v1_DeviceEvent *e, unsigned long fl)
{
	e->has_flags = true;
	e->flags.force = (fl & NB_DETACH_FORCE) != 0;
	e->flags.quiet = (fl & NB_DETACH_QUIET) != 0;
	e->flags.shutdown = (fl & NB_DETACH_SHUTDOWN) != 0;
	e->flags.poweroff = (fl & NB_DETACH_POWEROFF) != 0;
}

int ps_nb_detach_result(struct ps_nb_state *s, const char *device, int error, uint64_t ts_ns, ps_frame_t *out, int max)
{
	struct ps_nb_dev *dv = ps_nb_find(s, device);
	/* With a return probe (or a success, which drvctl reports) the end is
	 * already told; a veto without a return probe is told only here. */
	if (max < 1 || error == 0 || (s->have_dtrace && s->probes.detach_return) || !dv || dv->detach_ended)
		return 0;
	drop_detach_frames(s, device);
	return detach_end_frame(s, out, ts_ns, device, error);
}

int ps_nb_dline_frames(struct ps_nb_state *s, const struct ps_nb_dline *d, ps_frame_t *out, int max)
{
	if (max < 4)
		return 0;
	const char *name;
	switch (d->kind) {
	case PS_NB_D_PORT_ENTRY:
		push(s, d, d->arg1);
		return 0;
	case PS_NB_D_PORT_RETURN:
		pop(s, d, PS_NB_D_PORT_ENTRY, NULL);
		return 0;
	case PS_NB_D_DETACH_ENTRY: {
		const char *port = inside(s, d->tid, PS_NB_D_PORT_ENTRY);
		char portbuf[24] = "";
		if (port)
			PS_SET(portbuf, port);
		/* Without a return probe an earlier detach of this device on this
		 * thread is over (config_detach_enter forbids recursion). */
		int dummy;
		struct ps_nb_thread *t0 = thread_of(s, d->tid, 0);
		if (t0)
			for (int i = t0->depth - 1; i >= 0; i--)
				if (t0->what[i] == PS_NB_D_DETACH_ENTRY && strcmp(t0->stack[i], d->arg1) == 0) {
					struct ps_nb_dline at = *d;
					at.kind = PS_NB_D_DETACH_RETURN;
					pop(s, &at, PS_NB_D_DETACH_ENTRY, &dummy);
					break;
				}
		int waiting = detaching_elsewhere(s, d->tid, d->arg1);
		struct ps_nb_thread *t = push(s, d, d->arg1);
		struct ps_nb_dev *dv = ps_nb_find(s, d->arg1);
		t->flags[t->depth - 1] = strtoul(d->arg2, NULL, 0);
		if (waiting) {
			/* A second config_detach: it sleeps in config_detach_enter and
			 * then returns ENOENT. Not a second detach. */
			t->waiter[t->depth - 1] = 1;
			plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_WAIT, d->arg1, dv);
			e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
			return 1;
		}
		if (dv) {
			dv->freed = 0;
			dv->detach_ended = 0;
			/* A report already held came before this line on the other
			 * channel: keep it. */
			dv->reported = 0;
			dv->npost = 0;
		}
		/* Detached before any interface arrived: its attach still began. */
		int k = ps_nb_flush_attach(s, d->arg1, out, max);
		plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[k], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_BEGIN, d->arg1, dv);
		set_flags(e, strtoul(d->arg2, NULL, 0));
		e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		/* usb_disconnect_port around it: the hub's event thread, forced. */
		PS_SET(e->thread, portbuf[0] ? "usb event thread" : "");
		if (portbuf[0] && !e->port[0])
			snprintf(e->port, sizeof(e->port), "port %s", portbuf);
		return k + 1;
	}
	case PS_NB_D_DETACH_RETURN: {
		int waiter = 0;
		name = pop(s, d, PS_NB_D_DETACH_ENTRY, &waiter);
		if (!name) {
			s->unattributed++;
			return 0;
		}
		char nm[24];
		PS_SET(nm, name);
		struct ps_nb_dev *dv = ps_nb_find(s, nm);
		long rv = strtol(d->arg2, NULL, 10);
		if (waiter) {
			int n = detach_end_frame(s, &out[0], d->ts_ns, nm, (int32_t)rv);
			/* The last sleeper has left: its deviter no longer defers the
			 * winner's free. */
			int idx;
			if (dv && dv->free_held && !sleeper_of(s, nm, &idx)) {
				out[n] = dv->held_free;
				out[n].guest_time_ns = d->ts_ns;
				dv->free_held = 0;
				n++;
			}
			return n;
		}
		if (rv != 0) {
			int n = detach_end_frame(s, &out[0], d->ts_ns, nm, (int32_t)rv);
			/* A veto wakes a sleeper in config_detach_enter, which then runs
			 * the detach itself. */
			int idx;
			struct ps_nb_thread *st = sleeper_of(s, nm, &idx);
			if (st) {
				st->waiter[idx] = 0;
				plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[n++], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_BEGIN, nm, dv);
				set_flags(e, st->flags[idx]);
				e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
				if (dv) {
					dv->detach_ended = 0;
					dv->reported = 0;
				}
			}
			return n;
		}
		ps_frame_t fr[2];
		int n = 0;
		int deferred = 0;
		int idx;
		int sleeping = sleeper_of(s, nm, &idx) != NULL;
		if (!s->probes.devfree && sleeping && dv) {
			/* A sleeper's deviter defers the free until it has left
			 * (config_alldevs_exit): FREE follows the sleeper's end. */
			deferred = 1;
			dev_frame(&dv->held_free, d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_FREE, nm, dv);
			dv->free_held = 1;
		} else if (!s->probes.devfree) {
			/* The softc went with config_devfree before config_detach
			 * returned (unless a deviter deferred it, unseen here). */
			dev_frame(&fr[n++], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_FREE, nm, dv);
		} else if (!dv || !dv->freed) {
			/* config_devfree did not run inside this detach: a device
			 * iterator was active, the free comes from config_alldevs_exit. */
			deferred = 1;
		}
		n += detach_end_frame(s, &fr[n], d->ts_ns, nm, 0);
		fr[n - 1].body.device.deferred = deferred;
		if (dv)
			dv->present = 0;
		return after_report(s, dv, fr, n, out);
	}
	case PS_NB_D_COMMIT: {
		struct ps_nb_dev *dv = ps_nb_find(s, d->arg1);
		if (!dv)
			return 0;
		plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_COMMIT, d->arg1, dv);
		e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		return 1;
	}
	case PS_NB_D_DEVFREE: {
		struct ps_nb_dev *dv = ps_nb_find(s, d->arg1);
		if (!dv || !s->probes.devfree)
			return 0;
		dv->freed = 1;
		ps_frame_t fr[1];
		dev_frame(&fr[0], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_FREE, d->arg1, dv);
		return after_report(s, dv, fr, 1, out);
	}
	case PS_NB_D_DEACTIVATE_ENTRY: {
		push(s, d, d->arg1);
		dev_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DEACTIVATE, d->arg1, ps_nb_find(s, d->arg1));
		return 1;
	}
	case PS_NB_D_DEACTIVATE_RETURN:
		pop(s, d, PS_NB_D_DEACTIVATE_ENTRY, NULL);
		return 0;
	case PS_NB_D_USBNET_ENTRY:
		push(s, d, d->arg1);
		return 0;
	case PS_NB_D_USBNET_RETURN:
		pop(s, d, PS_NB_D_USBNET_ENTRY, NULL);
		return 0;
	case PS_NB_D_ETHER_IFDETACH: {
		struct ps_nb_thread *t;
		if (usbnet_frame(s, d->tid, &t) < 0)
			return 0;
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		if (!dev)
			return 0;
		step_frame(s, &out[0], d, dev, plugstorm_telemetry_v1_DeviceEvent_DetachStep_DETACH_STEP_ETHER_IFDETACH);
		return 1;
	}
	case PS_NB_D_TASK_WAIT: {
		/* Only the wait after if_detach returned is told apart: the one
		 * before it may be the tick task's, inside usbnet_stop. */
		struct ps_nb_thread *t;
		int i = usbnet_frame(s, d->tid, &t);
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		if (i < 0 || !dev || !t->past_if_detach[i])
			return 0;
		step_frame(s, &out[0], d, dev, plugstorm_telemetry_v1_DeviceEvent_DetachStep_DETACH_STEP_TASK_WAIT_AGAIN);
		return 1;
	}
	case PS_NB_D_IFDETACH_ENTRY: {
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		char devbuf[24] = "";
		if (dev)
			PS_SET(devbuf, dev);
		push(s, d, d->arg1);
		if_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_BEGIN, d->arg1, devbuf);
		out[0].body.ifnet.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		return 1;
	}
	case PS_NB_D_IFDETACH_RETURN: {
		name = pop(s, d, PS_NB_D_IFDETACH_ENTRY, NULL);
		if (!name) {
			s->unattributed++;
			return 0;
		}
		char nm[24];
		PS_SET(nm, name);
		struct ps_nb_thread *t;
		int i = usbnet_frame(s, d->tid, &t);
		if (i >= 0)
			t->past_if_detach[i] = 1;
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		if_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_END, nm, dev ? dev : "");
		out[0].body.ifnet.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		return 1;
	}
	case PS_NB_D_PSREF_ENTRY:
	case PS_NB_D_LCDRAIN_ENTRY: {
		/* psref targets destroyed inside if_detach: the ifnet's own, or an
		 * interface address's (ifa_remove, NET_MPSAFE kernels) reported as
		 * IFADDR, never as another ifnet drain. localcount drains directly
		 * inside config_detach are the device's. Others (devsw, other
		 * subsystems) are not this device's business. */
		int ps = d->kind == PS_NB_D_PSREF_ENTRY;
		const char *dev = NULL;
		if (ps ? inside(s, d->tid, PS_NB_D_IFDETACH_ENTRY) != NULL && strcmp(d->arg1, "other") != 0
		       : innermost_is(s, d->tid, PS_NB_D_DETACH_ENTRY))
			dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		char nm[24] = "";
		if (dev) {
			/* The frame remembers the object kind in its name's first byte
			 * slot: "ifaddr:" prefix marks the address drains. */
			if (ps && strcmp(d->arg1, "ifaddr") == 0)
				snprintf(nm, sizeof nm, "A%.22s", dev);
			else
				snprintf(nm, sizeof nm, "N%.22s", dev);
		}
		push(s, d, nm);
		if (!dev) {
			if (inside(s, d->tid, PS_NB_D_DETACH_ENTRY) == NULL)
				s->unattributed++;
			return 0;
		}
		plugstorm_telemetry_v1_ObjectKind k = !ps ? plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_DEVICE
			: nm[0] == 'A' ? plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFADDR : plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET;
		return drain(s, d, 1, k, nm + 1, out);
	}
	case PS_NB_D_PSREF_RETURN:
	case PS_NB_D_LCDRAIN_RETURN: {
		int ps = d->kind == PS_NB_D_PSREF_RETURN;
		name = pop(s, d, ps ? PS_NB_D_PSREF_ENTRY : PS_NB_D_LCDRAIN_ENTRY, NULL);
		if (!name || !name[0])
			return 0;
		char nm[24];
		PS_SET(nm, name);
		plugstorm_telemetry_v1_ObjectKind k = !ps ? plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_DEVICE
			: nm[0] == 'A' ? plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFADDR : plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET;
		return drain(s, d, 0, k, nm + 1, out);
	}
	case PS_NB_D_IFREF_ACQUIRE:
	case PS_NB_D_IFREF_RELEASE: {
		/* ifnet psrefs (if_get*, if_put) on the interfaces of tracked
		 * devices; the psref's address pairs an acquire with its release. */
		if (!d->arg1[0] || !ps_nb_find(s, d->arg1))
			return 0;
		ps_frame_t *f = &out[0];
		memset(f, 0, sizeof(*f));
		f->guest_time_ns = d->ts_ns;
		f->which_body = PS_F(ref);
		f->body.ref.kind = d->kind == PS_NB_D_IFREF_ACQUIRE ? plugstorm_telemetry_v1_RefEvent_Kind_ACQUIRE : plugstorm_telemetry_v1_RefEvent_Kind_RELEASE;
		f->body.ref.object_kind = plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET;
		PS_SET(f->body.ref.object, d->arg1);
		snprintf(f->body.ref.holder, sizeof(f->body.ref.holder), "psref:%.40s", d->arg2);
		snprintf(f->body.ref.holder_desc, sizeof(f->body.ref.holder_desc), "%s by lwp %llu",
			 d->kind == PS_NB_D_IFREF_ACQUIRE ? "if_get" : "if_put", (unsigned long long)d->tid);
		f->body.ref.count_after = -1;
		f->body.ref.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		PS_SET(f->body.ref.device, d->arg1);
		return 1;
	}
	case PS_NB_D_ACQUIRE: {
		/* Only devices the agent tracks (the hot-plugged NICs): every open of
		 * any disk goes through device_lookup_acquire too. */
		const char *obj = d->arg1[0] ? d->arg1 : d->arg2;
		if (!obj[0] || !ps_nb_find(s, obj))
			return 0;
		ref_frame(&out[0], d, d->arg1[0] ? plugstorm_telemetry_v1_RefEvent_Kind_ACQUIRE : plugstorm_telemetry_v1_RefEvent_Kind_ACQUIRE_FAILED, obj);
		return 1;
	}
	case PS_NB_D_RELEASE:
		if (!d->arg1[0] || !ps_nb_find(s, d->arg1))
			return 0;
		ref_frame(&out[0], d, plugstorm_telemetry_v1_RefEvent_Kind_RELEASE, d->arg1);
		return 1;
	case PS_NB_D_PIPE_ABORT_START:
	case PS_NB_D_PIPE_ABORT_DONE: {
		/* Aborting the pipes waits for transfers in flight (usbd_abort_pipe). */
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		if (!dev) {
			s->xfer_events++;
			return 0;
		}
		char nm[24];
		PS_SET(nm, dev);
		return drain(s, d, d->kind == PS_NB_D_PIPE_ABORT_START, plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_TRANSFER, nm, out);
	}
	case PS_NB_D_RELEASE_RETURN:
		return 0;
	case PS_NB_D_XFER:
	case PS_NB_D_COUNT:
		s->xfer_events++;
		return 0;
	}
	return 0;
}
