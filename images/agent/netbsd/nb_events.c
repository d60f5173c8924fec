/* See nb_events.h. Kernel facts behind the mapping: ../../../docs (netbsd.md
 * sections 1, 3, 4, 7): "device-attach" is reported before ca_attach runs,
 * "device-detach" after the localcount drain; RTM_IFANNOUNCE departure is sent
 * inside if_detach after psref_target_destroy. */
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

int ps_nb_drvctl_frames(struct ps_nb_state *s, const char *event, const char *device, const char *parent,
			const struct ps_nb_devinfo *info, uint64_t ts_ns, ps_frame_t *out, int max)
{
	if (max < 1)
		return 0;
	if (strcmp(event, "device-attach") == 0) {
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
		/* Properties are gone with the device: keep what attach learned. */
		if (d && info) {
			if (info->serial[0])
				PS_SET(d->info.serial, info->serial);
			if (info->mac[0])
				PS_SET(d->info.mac, info->mac);
		}
		int n = ps_nb_flush_attach(s, device, out, max);
		/* With DTrace, config_detach's return already said this (and more). */
		if (!s->have_dtrace && n < max) {
			dev_frame(&out[n++], ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_END, device, d);
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
		if (max < 3)
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
		if_frame(&out[n++], ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_ATTACH, ifname, device);
		return n;
	}
	if (max < 2 || s->have_dtrace)
		return 0; /* if_detach's entry and return are reported from fbt */
	/* IFAN_DEPARTURE is sent from inside if_detach, after psref_target_destroy:
	 * if_detach has begun and its waits are over. The begin is implied, as
	 * the model expects it before the end. */
	if_frame(&out[0], ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_BEGIN, ifname, device);
	if_frame(&out[1], ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_END, ifname, device);
	return 2;
}

static struct ps_nb_thread *thread_of(struct ps_nb_state *s, uint64_t tid, int create)
{
	struct ps_nb_thread *free_slot = NULL;
	for (int i = 0; i < PS_NB_MAX_THREADS; i++) {
		if (s->threads[i].depth > 0 && s->threads[i].tid == tid)
			return &s->threads[i];
		if (s->threads[i].depth == 0 && !free_slot)
			free_slot = &s->threads[i];
	}
	if (!create || !free_slot)
		return NULL;
	free_slot->tid = tid;
	free_slot->depth = 0;
	return free_slot;
}

static void push(struct ps_nb_state *s, const struct ps_nb_dline *d, const char *name)
{
	struct ps_nb_thread *t = thread_of(s, d->tid, 1);
	if (!t || t->depth == PS_NB_DEPTH) {
		s->unattributed++;
		return;
	}
	PS_SET(t->stack[t->depth], name);
	t->what[t->depth] = d->kind;
	t->depth++;
}

/* Pops the frame entered by `entry`; returns its name (static buffer) or NULL
 * when the entry was not seen (the script started inside the call). */
static const char *pop(struct ps_nb_state *s, const struct ps_nb_dline *d, enum ps_nb_dkind entry)
{
	static char name[24];
	struct ps_nb_thread *t = thread_of(s, d->tid, 0);
	if (!t || t->depth == 0 || t->what[t->depth - 1] != entry)
		return NULL;
	t->depth--;
	PS_SET(name, t->stack[t->depth]);
	return name;
}

/* Innermost enclosing call of kind k on this thread (its name), or NULL. */
static const char *inside(struct ps_nb_state *s, uint64_t tid, enum ps_nb_dkind k)
{
	struct ps_nb_thread *t = thread_of(s, tid, 0);
	if (!t)
		return NULL;
	for (int i = t->depth - 1; i >= 0; i--)
		if (t->what[i] == k)
			return t->stack[i];
	return NULL;
}

static int innermost_is(struct ps_nb_state *s, uint64_t tid, enum ps_nb_dkind k)
{
	struct ps_nb_thread *t = thread_of(s, tid, 0);
	return t && t->depth > 0 && t->what[t->depth - 1] == k;
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

int ps_nb_dline_frames(struct ps_nb_state *s, const struct ps_nb_dline *d, ps_frame_t *out, int max)
{
	if (max < 3)
		return 0;
	const char *name;
	switch (d->kind) {
	case PS_NB_D_PORT_ENTRY:
		push(s, d, d->arg1);
		return 0;
	case PS_NB_D_PORT_RETURN:
		pop(s, d, PS_NB_D_PORT_ENTRY);
		return 0;
	case PS_NB_D_DETACH_ENTRY: {
		const char *port = inside(s, d->tid, PS_NB_D_PORT_ENTRY);
		push(s, d, d->arg1);
		struct ps_nb_dev *dv = ps_nb_find(s, d->arg1);
		/* Detached before any interface arrived: its attach still began. */
		int k = ps_nb_flush_attach(s, d->arg1, out, max);
		plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[k], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_BEGIN, d->arg1, dv);
		unsigned long fl = strtoul(d->arg2, NULL, 0);
		e->has_flags = true;
		e->flags.force = (fl & NB_DETACH_FORCE) != 0;
		e->flags.quiet = (fl & NB_DETACH_QUIET) != 0;
		e->flags.shutdown = (fl & NB_DETACH_SHUTDOWN) != 0;
		e->flags.poweroff = (fl & NB_DETACH_POWEROFF) != 0;
		e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		/* usb_disconnect_port around it: the hub's event thread, forced. */
		PS_SET(e->thread, port ? "usb event thread" : "");
		if (port && !e->port[0])
			snprintf(e->port, sizeof(e->port), "port %s", port);
		return k + 1;
	}
	case PS_NB_D_DETACH_RETURN: {
		name = pop(s, d, PS_NB_D_DETACH_ENTRY);
		if (!name) {
			s->unattributed++;
			return 0;
		}
		char nm[24];
		PS_SET(nm, name);
		struct ps_nb_dev *dv = ps_nb_find(s, nm);
		long rv = strtol(d->arg2, NULL, 10);
		plugstorm_telemetry_v1_DeviceEvent *e = dev_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_END, nm, dv);
		e->error = (int32_t)rv;
		if (rv != 0)
			return 1;
		/* Success: the softc goes with config_devunlink/config_devfree at the
		 * end of config_detach (or with the deferred GC, not observed). */
		dev_frame(&out[1], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_FREE, nm, dv);
		if (dv)
			dv->present = 0;
		return 2;
	}
	case PS_NB_D_DEACTIVATE_ENTRY: {
		push(s, d, d->arg1);
		dev_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_DeviceEvent_Kind_DEACTIVATE, d->arg1, ps_nb_find(s, d->arg1));
		return 1;
	}
	case PS_NB_D_DEACTIVATE_RETURN:
		pop(s, d, PS_NB_D_DEACTIVATE_ENTRY);
		return 0;
	case PS_NB_D_USBNET_ENTRY:
		push(s, d, d->arg1);
		return 0;
	case PS_NB_D_USBNET_RETURN:
		pop(s, d, PS_NB_D_USBNET_ENTRY);
		return 0;
	case PS_NB_D_IFDETACH_ENTRY: {
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		push(s, d, d->arg1);
		if_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_BEGIN, d->arg1, dev ? dev : "");
		out[0].body.ifnet.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		return 1;
	}
	case PS_NB_D_IFDETACH_RETURN: {
		name = pop(s, d, PS_NB_D_IFDETACH_ENTRY);
		if (!name) {
			s->unattributed++;
			return 0;
		}
		char nm[24];
		PS_SET(nm, name);
		const char *dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		if_frame(&out[0], d->ts_ns, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_END, nm, dev ? dev : "");
		out[0].body.ifnet.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
		return 1;
	}
	case PS_NB_D_PSREF_ENTRY:
	case PS_NB_D_LCDRAIN_ENTRY: {
		/* psref drains inside if_detach are the ifnet's; localcount drains
		 * directly inside config_detach are the device's. Others (devsw,
		 * other subsystems) are not this device's business. */
		int ps = d->kind == PS_NB_D_PSREF_ENTRY;
		const char *dev = NULL;
		if (ps ? innermost_is(s, d->tid, PS_NB_D_IFDETACH_ENTRY) : innermost_is(s, d->tid, PS_NB_D_DETACH_ENTRY))
			dev = inside(s, d->tid, PS_NB_D_DETACH_ENTRY);
		char nm[24] = "";
		if (dev)
			PS_SET(nm, dev);
		push(s, d, nm);
		if (!dev) {
			if (inside(s, d->tid, PS_NB_D_DETACH_ENTRY) == NULL)
				s->unattributed++;
			return 0;
		}
		return drain(s, d, 1, ps ? plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET : plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_DEVICE, nm, out);
	}
	case PS_NB_D_PSREF_RETURN:
	case PS_NB_D_LCDRAIN_RETURN: {
		int ps = d->kind == PS_NB_D_PSREF_RETURN;
		name = pop(s, d, ps ? PS_NB_D_PSREF_ENTRY : PS_NB_D_LCDRAIN_ENTRY);
		if (!name || !name[0])
			return 0;
		char nm[24];
		PS_SET(nm, name);
		return drain(s, d, 0, ps ? plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET : plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_DEVICE, nm, out);
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
