/* Linux backend: what the kernel does to USB NICs, from three sources joined
 * by interface name.
 *  - kprobe events streamed from tracefs trace_pipe (trace_clock=mono, so their
 *    timestamps are CLOCK_MONOTONIC like the agent's): the detach phases.
 *  - netlink uevents: usb/net add and remove, to learn USB paths and serials.
 *  - sysfs: serial, MAC and driver of an interface (retried: the net dir can
 *    appear before its files).
 * Interface drivers bind only when the agent says so: at start it sets every
 * root hub's interface_authorized_default to 0, and on each USB device's bind
 * uevent it first applies the configuration a SelectConfiguration asked for
 * (QEMU usb-net: 2 = RNDIS), then authorizes and probes the interfaces. That
 * way a NIC bound to rndis_host has one lifecycle, not a cdc_ether bind,
 * unbind and rebind after a bConfigurationValue write.
 * References held on command are AF_PACKET sockets bound to the interface: the
 * kernel holds the net_device for each (dev_hold at bind) and drops it from its
 * NETDEV_UNREGISTER notifier, after which the socket reports ENETDOWN. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/agent.h"

/* Sized for storms of up to 128 lanes (one NIC in flight per root hub), with
 * room for the interfaces still draining while their lane's next NIC attaches. */
#define MAX_DEVS 256
#define MAX_REFS 256
#define MAX_USB 256
/* Every hub_wq kworker enumerating or disconnecting at once has its own slot:
 * a slot reused while its disconnect is pending would lose the DETACH_BEGIN. */
#define MAX_PIDS 512
#define MAX_NAMES 256
/* Return probes in flight at once: the kernel's default (10 on one vCPU)
 * misses returns when more threads than that sleep inside netdev_run_todo
 * (rcu_barrier, the refcount wait) while many NICs leave together. */
#define KRET_MAXACTIVE "512"
#define TRACEFS "/sys/kernel/tracing"
#define GROUP "plugstorm"
#define MS 1000000ull
#define INFO_WAIT_NS (1000 * MS)
#define REF_GRACE_NS (2000 * MS)
#define DISC_UNREG_WINDOW_NS (30000 * MS)
#define ETH_P_PLUGSTORM 0x88B5 /* IEEE local experimental ethertype */

typedef plugstorm_telemetry_v1_DeviceEvent_Kind dev_kind_t;

struct dev {
	int used;
	char ifname[24];
	char driver[24];
	char serial[32];
	char mac[18];
	char port[48];
	char parent[24];
	char thread[24];
	uint32_t instance;
	int attach_pending;   /* attach seen in the kernel, frames wait for identity */
	uint64_t attach_begin_ns, if_attach_ns, attach_end_ns, info_deadline;
	int attach_error;
	int attached;         /* ATTACH_END sent */
	int draining;
	int drain_pid;
	/* The thread whose netdev_run_todo took this interface off the global todo
	 * list (0: not yet): its return is where this drain ends. */
	int todo_pid;
	uint64_t unreg_ns;
	/* free_netdev ran before the drain ended: another thread's
	 * netdev_run_todo holds the interface, and the memory goes only when
	 * that drain ends (free_netdev defers to the todo then). */
	int free_pending;
	/* InjectFault leak-ref: a reference that is never released. A kernel
	 * really holding it would wait in netdev_wait_allrefs forever, so the
	 * drain end and the free are withheld, as that kernel would never reach
	 * them. */
	int leak;
	/* traffic */
	int tx_fd;
	uint32_t pps;
	uint64_t next_tx, tx_packets;
	int ifindex;
};

struct ref {
	int used;
	int fd;
	int ifindex;
	char holder[48];
	char device[24];
	plugstorm_telemetry_v1_ObjectKind kind;
	uint64_t release_at;
	/* The socket reported the kernel dropped it (errno), and when: the RELEASE
	 * waits for the detach's trace lines so it is reported in kernel order. */
	int kernel_err;
	int last_soerr;
	uint64_t dropped_seen_ns;
};

struct usbdev {
	int used;
	char devpath[160];
	char serial[32];
};

struct config_sel {
	char serial[32];
	uint32_t value; /* 0: slot free */
};

struct pidstate {
	int pid;
	uint64_t probe_ns;
	char probe_name[24];
	int probing;
	uint64_t disc_ns;
	int disc_pending;
};

struct name_count {
	char name[24];
	uint32_t n;
};

struct lx {
	struct ps_agent *a;
	/* InjectFault "panic": when to crash the kernel (0: never). */
	uint64_t panic_at;
	int nl_fd;
	int trace_fd;
	char tbuf[16384];
	size_t tlen;
	uint64_t events_lost;
	int kprobes_ok;
	struct dev devs[MAX_DEVS];
	struct ref refs[MAX_REFS];
	struct usbdev usb[MAX_USB];
	struct config_sel sels[MAX_USB];
	struct pidstate pids[MAX_PIDS];
	struct name_count names[MAX_NAMES];
	uint64_t leaked;
	unsigned holder_seq;
	/* The interface this agent is asking the bus to probe right now, and its
	 * USB device's identity. The probe runs inside that write, in this
	 * process: a usbnet_probe that fails there, before it named a netdev, is
	 * that interface's failed attach (for the model, a failed attach of
	 * that NIC, not a device the host never added). */
	int self_pid;
	char probing_if[32];
	char probing_serial[32];
	char probing_port[48];
	char probing_parent[24];
};

static struct lx g_lx;

/* ------------------------------------------------------------------ helpers */

static int read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return (int)n;
}

static int write_file(const char *path, const char *s, int flags)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static struct dev *dev_find(struct lx *x, const char *ifname)
{
	for (int i = 0; i < MAX_DEVS; i++)
		if (x->devs[i].used && strcmp(x->devs[i].ifname, ifname) == 0)
			return &x->devs[i];
	return NULL;
}

static struct dev *dev_new(struct lx *x, const char *ifname)
{
	for (int i = 0; i < MAX_DEVS; i++) {
		struct dev *d = &x->devs[i];
		if (d->used)
			continue;
		memset(d, 0, sizeof *d);
		d->used = 1;
		d->tx_fd = -1;
		PS_SET(d->ifname, ifname);
		struct name_count *nc = NULL;
		for (int k = 0; k < MAX_NAMES && !nc; k++)
			if (x->names[k].name[0] == 0 || strcmp(x->names[k].name, ifname) == 0)
				nc = &x->names[k];
		if (nc) {
			PS_SET(nc->name, ifname);
			d->instance = nc->n++;
		}
		return d;
	}
	x->events_lost++;
	return NULL;
}

static struct pidstate *pid_state(struct lx *x, int pid)
{
	struct pidstate *free_slot = NULL;
	for (int i = 0; i < MAX_PIDS; i++) {
		if (x->pids[i].pid == pid)
			return &x->pids[i];
		if (!free_slot && x->pids[i].pid == 0)
			free_slot = &x->pids[i];
	}
	/* Full: reuse a thread with nothing pending before one mid-probe or mid-disconnect. */
	for (int i = 0; i < MAX_PIDS && !free_slot; i++)
		if (!x->pids[i].probing && !x->pids[i].disc_pending)
			free_slot = &x->pids[i];
	if (!free_slot)
		free_slot = &x->pids[pid % MAX_PIDS];
	memset(free_slot, 0, sizeof *free_slot);
	free_slot->pid = pid;
	return free_slot;
}

static struct usbdev *usb_find(struct lx *x, const char *devpath)
{
	for (int i = 0; i < MAX_USB; i++)
		if (x->usb[i].used && strcmp(x->usb[i].devpath, devpath) == 0)
			return &x->usb[i];
	return NULL;
}

/* Reads the identity of an interface from sysfs; returns 1 when complete. */
static int dev_read_info(struct lx *x, struct dev *d)
{
	char path[PATH_MAX + 16], buf[256], link[PATH_MAX];

	if (!d->mac[0]) {
		snprintf(path, sizeof path, "/sys/class/net/%s/address", d->ifname);
		if (read_file(path, buf, sizeof buf) > 0)
			PS_SET(d->mac, buf);
	}
	if (!d->driver[0]) {
		snprintf(path, sizeof path, "/sys/class/net/%s/device/driver", d->ifname);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n > 0) {
			link[n] = 0;
			PS_SET(d->driver, base(link));
		}
	}
	if (!d->serial[0] || !d->port[0]) {
		/* device -> the USB interface (1-1:1.0); its parent is the USB device. */
		snprintf(path, sizeof path, "/sys/class/net/%s/device", d->ifname);
		if (realpath(path, link)) {
			char *slash = strrchr(link, '/');
			if (slash) {
				*slash = 0;
				PS_SET(d->port, base(link));
				snprintf(path, sizeof path, "%s/serial", link);
				if (read_file(path, buf, sizeof buf) > 0)
					PS_SET(d->serial, buf);
				const char *devpath = strstr(link, "/devices/");
				struct usbdev *u = devpath ? usb_find(x, devpath) : NULL;
				if (!d->serial[0] && u)
					PS_SET(d->serial, u->serial);
				slash = strrchr(link, '/');
				if (slash) {
					*slash = 0;
					PS_SET(d->parent, base(link));
				}
			}
		}
	}
	if (d->ifindex == 0)
		d->ifindex = (int)if_nametoindex(d->ifname);
	return d->mac[0] && d->driver[0] && d->serial[0];
}

/* ------------------------------------------------------------------ frames */

static void fill_dev_event(ps_frame_t *f, const struct dev *d, dev_kind_t kind, uint64_t ns)
{
	plugstorm_telemetry_v1_DeviceEvent *e = &f->body.device;
	*f = (ps_frame_t)plugstorm_telemetry_v1_Frame_init_zero;
	f->which_body = PS_F(device);
	f->guest_time_ns = ns;
	e->kind = kind;
	PS_SET(e->name, d->ifname);
	PS_SET(e->ifname, d->ifname);
	PS_SET(e->driver, d->driver);
	PS_SET(e->parent, d->parent);
	PS_SET(e->port, d->port);
	e->bus = plugstorm_telemetry_v1_Bus_BUS_USB;
	e->instance = d->instance;
	e->context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	PS_SET(e->thread, d->thread);
}

static void emit_dev(struct lx *x, struct dev *d, dev_kind_t kind, uint64_t ns, int err,
		plugstorm_telemetry_v1_ObjectKind ok)
{
	ps_frame_t f;
	fill_dev_event(&f, d, kind, ns);
	f.body.device.error = err;
	f.body.device.object_kind = ok;
	if (kind == plugstorm_telemetry_v1_DeviceEvent_Kind_ATTACH_BEGIN ||
			kind == plugstorm_telemetry_v1_DeviceEvent_Kind_ATTACH_END ||
			kind == plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_BEGIN) {
		PS_SET(f.body.device.serial, d->serial);
		PS_SET(f.body.device.mac, d->mac);
	}
	ps_emit(x->a, &f);
}

static void emit_if(struct lx *x, struct dev *d, plugstorm_telemetry_v1_IfEvent_Kind kind, uint64_t ns)
{
	ps_frame_t f = plugstorm_telemetry_v1_Frame_init_zero;
	f.which_body = PS_F(ifnet);
	f.guest_time_ns = ns;
	f.body.ifnet.kind = kind;
	PS_SET(f.body.ifnet.ifname, d->ifname);
	PS_SET(f.body.ifnet.device, d->ifname);
	f.body.ifnet.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	f.body.ifnet.tx_packets = d->tx_packets;
	ps_emit(x->a, &f);
}

static void emit_ref(struct lx *x, plugstorm_telemetry_v1_RefEvent_Kind kind,
		plugstorm_telemetry_v1_ObjectKind ok, const char *device, const char *holder,
		const char *desc, uint64_t ns)
{
	ps_frame_t f = plugstorm_telemetry_v1_Frame_init_zero;
	f.which_body = PS_F(ref);
	f.guest_time_ns = ns;
	f.body.ref.kind = kind;
	f.body.ref.object_kind = ok;
	PS_SET(f.body.ref.object, device);
	PS_SET(f.body.ref.device, device);
	PS_SET(f.body.ref.holder, holder);
	PS_SET(f.body.ref.holder_desc, desc);
	f.body.ref.count_after = -1;
	f.body.ref.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	ps_emit(x->a, &f);
}

/* Sends the attach frames once the identity is known (or waiting is over). */
static void flush_attach(struct lx *x, struct dev *d, int force)
{
	if (!d->attach_pending)
		return;
	int complete = dev_read_info(x, d);
	if (!complete && !force && ps_now_ns() < d->info_deadline)
		return;
	/* A failed probe has no netdev (so no MAC): its serial is all there is. */
	if (!complete && !(d->attach_error && d->serial[0]))
		ps_log(x->a, plugstorm_telemetry_v1_Log_Level_WARN,
				"%s: identity incomplete (serial \"%s\", mac \"%s\", driver \"%s\")",
				d->ifname, d->serial, d->mac, d->driver);
	d->attach_pending = 0;
	emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_ATTACH_BEGIN, d->attach_begin_ns, 0, 0);
	if (d->if_attach_ns)
		emit_if(x, d, plugstorm_telemetry_v1_IfEvent_Kind_ATTACH, d->if_attach_ns);
	emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_ATTACH_END, d->attach_end_ns,
			d->attach_error, 0);
	d->attached = 1;
}

/* ------------------------------------------------------------------ references */

static int ref_count(struct lx *x)
{
	int n = 0;
	for (int i = 0; i < MAX_REFS; i++)
		n += x->refs[i].used;
	return n + (int)x->leaked;
}

static void ref_release(struct lx *x, struct ref *r, const char *why, uint64_t ns)
{
	char desc[64];
	snprintf(desc, sizeof desc, "AF_PACKET socket: %.44s", why);
	close(r->fd);
	r->used = 0;
	emit_ref(x, plugstorm_telemetry_v1_RefEvent_Kind_RELEASE, r->kind, r->device, r->holder, desc, ns);
}

/* The kernel's side of a reference socket: 0 while it is still bound to its
 * interface; else the errno it reported. NETDEV_UNREGISTER unbinds it (its
 * ifindex becomes -1) and drops the net_device; an interface merely going down
 * sets ENETDOWN but keeps the reference, so the error alone proves nothing. */
static int ref_dropped_by_kernel(struct ref *r)
{
	int soerr = 0;
	socklen_t l = sizeof soerr;
	struct sockaddr_ll sll;
	socklen_t sl = sizeof sll;
	if (r->kernel_err)
		return r->kernel_err;
	/* Reading SO_ERROR clears it, so POLLERR does not fire again. */
	if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) == 0 && soerr)
		r->last_soerr = soerr;
	if (getsockname(r->fd, (struct sockaddr *)&sll, &sl) == 0 && sll.sll_ifindex != r->ifindex)
		return r->kernel_err = r->last_soerr ? r->last_soerr : ENODEV;
	return 0;
}

/* Releases (and reports) the reference sockets of a device the kernel let go of. */
static void harvest_refs(struct lx *x, const char *ifname, uint64_t ns)
{
	for (int i = 0; i < MAX_REFS; i++) {
		struct ref *r = &x->refs[i];
		if (!r->used || (ifname && strcmp(r->device, ifname) != 0))
			continue;
		int e = ref_dropped_by_kernel(r);
		if (e) {
			char why[48];
			snprintf(why, sizeof why, "kernel dropped it (%s)", e == ENETDOWN ? "ENETDOWN" : strerror(e));
			ref_release(x, r, why, ns ? ns : ps_now_ns());
		}
	}
}

static struct dev *resolve(struct lx *x, const char *device, const char *serial)
{
	for (int i = 0; i < MAX_DEVS; i++) {
		struct dev *d = &x->devs[i];
		if (!d->used || d->draining || !(d->attached || d->attach_pending))
			continue;
		if (device[0] && strcmp(d->ifname, device) == 0)
			return d;
		if (!device[0] && serial[0]) {
			dev_read_info(x, d);
			if (strcmp(d->serial, serial) == 0)
				return d;
		}
	}
	return NULL;
}

static int hold_refs(struct lx *x, const plugstorm_telemetry_v1_HoldRefs *h, char *msg, size_t ml)
{
	struct dev *d = resolve(x, h->device, h->serial);
	if (!d) {
		snprintf(msg, ml, "no device \"%s\" (serial \"%s\")", h->device, h->serial);
		return ENODEV;
	}
	flush_attach(x, d, 1);
	if (d->ifindex == 0)
		d->ifindex = (int)if_nametoindex(d->ifname);
	uint32_t count = h->count ? h->count : 1;
	plugstorm_telemetry_v1_ObjectKind kind = h->kind ? h->kind : plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_NETDEV;
	uint32_t done = 0;
	for (; done < count; done++) {
		struct ref *r = NULL;
		for (int i = 0; i < MAX_REFS && !r; i++)
			if (!x->refs[i].used)
				r = &x->refs[i];
		if (!r) {
			snprintf(msg, ml, "holding %u of %u: agent reference table full", done, count);
			return done ? 0 : ENOSPC;
		}
		int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_PLUGSTORM));
		if (fd < 0) {
			snprintf(msg, ml, "socket(AF_PACKET): %s", strerror(errno));
			return errno;
		}
		struct sockaddr_ll sll = {0};
		sll.sll_family = AF_PACKET;
		sll.sll_protocol = htons(ETH_P_PLUGSTORM);
		sll.sll_ifindex = d->ifindex;
		if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
			int e = errno;
			close(fd);
			snprintf(msg, ml, "bind AF_PACKET to %s: %s", d->ifname, strerror(e));
			return e;
		}
		r->used = 1;
		r->kernel_err = 0;
		r->last_soerr = 0;
		r->dropped_seen_ns = 0;
		r->fd = fd;
		r->ifindex = d->ifindex;
		r->kind = kind;
		PS_SET(r->device, d->ifname);
		x->holder_seq++;
		if (h->holder[0])
			snprintf(r->holder, sizeof r->holder, "%.36s#%u", h->holder, x->holder_seq);
		else
			snprintf(r->holder, sizeof r->holder, "agent-pkt#%u", x->holder_seq);
		r->release_at = h->hold_ns ? ps_now_ns() + h->hold_ns : 0;
		char desc[64];
		snprintf(desc, sizeof desc, "AF_PACKET socket fd %d bound to %s", fd, d->ifname);
		emit_ref(x, plugstorm_telemetry_v1_RefEvent_Kind_ACQUIRE, kind, d->ifname, r->holder, desc, 0);
	}
	snprintf(msg, ml, "holding %u on %s", done, d->ifname);
	return 0;
}

static int release_refs(struct lx *x, const plugstorm_telemetry_v1_ReleaseRefs *rr, char *msg, size_t ml)
{
	const char *device = rr->device;
	if (!device[0] && rr->serial[0]) {
		struct dev *d = resolve(x, "", rr->serial);
		if (!d) {
			snprintf(msg, ml, "no device with serial \"%s\"", rr->serial);
			return ENODEV;
		}
		device = d->ifname;
	}
	size_t hl = strlen(rr->holder);
	uint32_t n = 0;
	for (int i = 0; i < MAX_REFS; i++) {
		struct ref *r = &x->refs[i];
		if (!r->used || (device[0] && strcmp(r->device, device) != 0))
			continue;
		if (rr->kind && r->kind != rr->kind)
			continue;
		if (hl && !(strncmp(r->holder, rr->holder, hl) == 0 && (r->holder[hl] == 0 || r->holder[hl] == '#')))
			continue;
		int e = ref_dropped_by_kernel(r);
		ref_release(x, r, e ? "closed (kernel had dropped it)" : "closed on command", 0);
		if (++n == rr->count)
			break;
	}
	if (n == 0) {
		snprintf(msg, ml, "no reference held on \"%s\" by \"%s\"", device, rr->holder);
		return ENOENT;
	}
	snprintf(msg, ml, "released %u", n);
	return 0;
}

static void stop_tx(struct dev *d);

/* Sets IFF_UP (traffic needs a running interface); 0 or an errno. */
static int if_up(const char *ifname, int *was_up)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	ps_strlcpy(ifr.ifr_name, ifname, sizeof ifr.ifr_name);
	int e = 0;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		e = errno;
	else if (!(*was_up = (ifr.ifr_flags & IFF_UP) != 0)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			e = errno;
	}
	close(fd);
	return e;
}

static int start_traffic(struct lx *x, const plugstorm_telemetry_v1_StartTraffic *s, char *msg, size_t ml)
{
	struct dev *d = resolve(x, s->device, s->serial);
	if (!d) {
		snprintf(msg, ml, "no device \"%s\" (serial \"%s\")", s->device, s->serial);
		return ENODEV;
	}
	if (d->tx_fd < 0) {
		d->tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (d->tx_fd < 0) {
			snprintf(msg, ml, "socket(AF_PACKET): %s", strerror(errno));
			return errno;
		}
	}
	if (d->ifindex == 0)
		d->ifindex = (int)if_nametoindex(d->ifname);
	int was_up = 1, e = if_up(d->ifname, &was_up);
	if (e) {
		snprintf(msg, ml, "bring %s up: %s", d->ifname, strerror(e));
		stop_tx(d);
		return e;
	}
	if (!was_up)
		emit_if(x, d, plugstorm_telemetry_v1_IfEvent_Kind_UP, 0);
	d->pps = s->packets_per_second ? s->packets_per_second : 10;
	if (d->pps > 10000)
		d->pps = 10000;
	d->next_tx = ps_now_ns();
	snprintf(msg, ml, "%u packets/s on %s", d->pps, d->ifname);
	return 0;
}

static void stop_tx(struct dev *d)
{
	if (d->tx_fd >= 0)
		close(d->tx_fd);
	d->tx_fd = -1;
	d->pps = 0;
}

static void send_traffic(struct lx *x, struct dev *d, uint64_t now)
{
	uint8_t pkt[60] = {0};
	memset(pkt, 0xFF, 6);
	unsigned m[6] = {0};
	if (sscanf(d->mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6)
		for (int i = 0; i < 6; i++)
			pkt[6 + i] = (uint8_t)m[i];
	pkt[12] = ETH_P_PLUGSTORM >> 8;
	pkt[13] = ETH_P_PLUGSTORM & 0xFF;
	uint64_t period = 1000000000ull / d->pps;
	int burst = 0;
	while (d->next_tx <= now && burst++ < 100) {
		struct sockaddr_ll sll = {0};
		sll.sll_family = AF_PACKET;
		sll.sll_ifindex = d->ifindex;
		sll.sll_halen = 6;
		memset(sll.sll_addr, 0xFF, 6);
		if (sendto(d->tx_fd, pkt, sizeof pkt, 0, (struct sockaddr *)&sll, sizeof sll) < 0) {
			if (errno == EAGAIN || errno == ENOBUFS)
				break;
			ps_log(x->a, plugstorm_telemetry_v1_Log_Level_INFO, "%s: traffic stopped: %s",
					d->ifname, strerror(errno));
			stop_tx(d);
			return;
		}
		d->tx_packets++;
		d->next_tx += period;
	}
	if (d->next_tx + 10 * period < now)
		d->next_tx = now; /* do not make up for lost time in a burst */
}

static int inject_fault(struct lx *x, const ps_command_t *c, char *msg, size_t ml)
{
	const plugstorm_telemetry_v1_InjectFault *f = &c->body.inject_fault;
	if (strcmp(f->name, "panic") == 0) {
		/* A real kernel panic (sysrq crash): the host sees it on the console
		 * only, as it would a panic of the code under test. The ack goes out
		 * first so the command is not reported as unanswered. */
		if (access("/proc/sysrq-trigger", W_OK) < 0) {
			snprintf(msg, ml, "/proc/sysrq-trigger: %s", strerror(errno));
			return errno;
		}
		x->panic_at = ps_now_ns() + 200 * MS;
		snprintf(msg, ml, "sysrq crash in 200 ms");
		return 0;
	}
	if (strcmp(f->name, "leak-ref") != 0) {
		snprintf(msg, ml, "unknown fault \"%s\" (leak-ref, panic)", f->name);
		return ENOTSUP;
	}
	struct dev *d = resolve(x, f->device, f->serial);
	if (!d) {
		snprintf(msg, ml, "no device \"%s\" (serial \"%s\")", f->device, f->serial);
		return ENODEV;
	}
	flush_attach(x, d, 1);
	char holder[48];
	snprintf(holder, sizeof holder, "leak-ref:%llu", (unsigned long long)c->id);
	/* arg names the kind of object leaked ("ifnet", "netdev", "device", ...); default netdev. */
	static const struct { const char *name; plugstorm_telemetry_v1_ObjectKind kind; } kinds[] = {
		{"", plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_NETDEV},
		{"netdev", plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_NETDEV},
		{"ifnet", plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET},
		{"device", plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_DEVICE},
		{"usbnet", plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_USBNET},
		{"other", plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_OTHER},
	};
	int k = -1;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(f->arg, kinds[i].name) == 0)
			k = (int)i;
	if (k < 0) {
		snprintf(msg, ml, "leak-ref: unknown object kind \"%s\" (netdev, ifnet, device, usbnet, other)", f->arg);
		return EINVAL;
	}
	emit_ref(x, plugstorm_telemetry_v1_RefEvent_Kind_ACQUIRE, kinds[k].kind,
			d->ifname, holder, "injected fault: never released", 0);
	x->leaked++;
	d->leak = 1;
	snprintf(msg, ml, "%s holds %s and never lets go", holder, d->ifname);
	return 0;
}

/* ------------------------------------------------------------------ kprobes */

static const char *const probes[] = {
	"p:" GROUP "/ps_probe usbnet_probe",
	"r" KRET_MAXACTIVE ":" GROUP "/ps_probe_ret usbnet_probe ret=$retval:s32",
	"p:" GROUP "/ps_regkobj netdev_register_kobject name=+0(%di):string",
	"p:" GROUP "/ps_disc usbnet_disconnect",
	"p:" GROUP "/ps_unreg unregister_netdevice_queue name=+0(%di):string",
	"p:" GROUP "/ps_todo netdev_run_todo",
	"r" KRET_MAXACTIVE ":" GROUP "/ps_todo_ret netdev_run_todo",
	"p:" GROUP "/ps_free free_netdev name=+0(%di):string",
};

static int setup_kprobes(struct lx *x, char *err, size_t el)
{
	struct stat st;
	if (stat(TRACEFS "/kprobe_events", &st) < 0) {
		snprintf(err, el, "no tracefs at " TRACEFS ": detach phases not observed");
		return -1;
	}
	write_file(TRACEFS "/events/" GROUP "/enable", "0", 0);
	int e = write_file(TRACEFS "/kprobe_events", "", O_TRUNC);
	if (e < 0) {
		snprintf(err, el, "clear kprobe_events: %s", strerror(-e));
		return -1;
	}
	int bad = 0;
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		e = write_file(TRACEFS "/kprobe_events", probes[i], O_APPEND);
		if (e < 0) {
			bad++;
			snprintf(err, el, "kprobe \"%s\": %s", probes[i], strerror(-e));
		}
	}
	write_file(TRACEFS "/trace_clock", "mono", 0);
	write_file(TRACEFS "/buffer_size_kb", "1024", 0);
	e = write_file(TRACEFS "/events/" GROUP "/enable", "1", 0);
	if (e < 0) {
		snprintf(err, el, "enable kprobe events: %s", strerror(-e));
		return -1;
	}
	write_file(TRACEFS "/tracing_on", "1", 0);
	x->trace_fd = open(TRACEFS "/trace_pipe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (x->trace_fd < 0) {
		snprintf(err, el, "open trace_pipe: %s", strerror(errno));
		return -1;
	}
	return bad ? -1 : 0;
}

static void on_trace_line(struct lx *x, char *line)
{
	/* "<comm>-<pid> [cpu] <flags> <sec>.<usec>: <event>: (<where>) k=v ..." */
	if (strstr(line, "LOST") && strstr(line, "EVENTS")) {
		unsigned long n = 0;
		char *p = strstr(line, "LOST");
		sscanf(p, "LOST %lu", &n);
		x->events_lost += n ? n : 1;
		return;
	}
	char *br = strstr(line, " [");
	if (!br)
		return;
	*br = 0;
	char *comm = line;
	while (*comm == ' ')
		comm++;
	char *dash = strrchr(comm, '-');
	if (!dash)
		return;
	int pid = atoi(dash + 1);
	*dash = 0;
	char *p = strchr(br + 1, ']');
	if (!p)
		return;
	p++;
	/* flags, then the timestamp ending in ':' */
	char *ts = NULL, *ev = NULL;
	for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " ")) {
		size_t l = strlen(tok);
		if (!ts && l > 1 && tok[l - 1] == ':' && strchr(tok, '.')) {
			ts = tok;
			continue;
		}
		if (ts) {
			ev = tok;
			break;
		}
	}
	if (!ts || !ev)
		return;
	unsigned long long sec = 0, usec = 0;
	if (sscanf(ts, "%llu.%llu", &sec, &usec) != 2)
		return;
	uint64_t ns = sec * 1000000000ull + usec * 1000ull;
	char *rest = ev + strlen(ev) + 1;
	ev[strcspn(ev, ":")] = 0;
	char name[24] = "";
	char *nm = strstr(rest, "name=\"");
	if (nm) {
		nm += 6;
		nm[strcspn(nm, "\"")] = 0;
		PS_SET(name, nm);
	}
	long ret = 0;
	char *rv = strstr(rest, "ret=");
	if (rv)
		ret = strtol(rv + 4, NULL, 0);

	struct pidstate *ps = pid_state(x, pid);
	struct dev *d;
	ps_debug(x->a, "trace %s pid %d t %llu name %s", ev, pid, (unsigned long long)ns, name);

	if (strcmp(ev, "ps_probe") == 0) {
		ps->probing = 1;
		ps->probe_ns = ns;
		ps->probe_name[0] = 0;
	} else if (strcmp(ev, "ps_regkobj") == 0) {
		if (!ps->probing)
			return;
		PS_SET(ps->probe_name, name);
		d = dev_find(x, name);
		if (d) {
			/* The kernel reused a name whose end we never saw. */
			x->events_lost++;
			d->used = 0;
		}
		d = dev_new(x, name);
		if (!d)
			return;
		d->if_attach_ns = ns;
		d->attach_begin_ns = ps->probe_ns;
		PS_SET(d->thread, comm);
	} else if (strcmp(ev, "ps_probe_ret") == 0) {
		if (!ps->probing)
			return;
		ps->probing = 0;
		d = ps->probe_name[0] ? dev_find(x, ps->probe_name) : NULL;
		if (!d) {
			if (ret == 0)
				return;
			/* A probe that failed before naming an interface still counts. */
			d = dev_new(x, "");
			if (!d)
				return;
			d->attach_begin_ns = ps->probe_ns;
			PS_SET(d->thread, comm);
			if (pid == x->self_pid && x->probing_if[0]) {
				/* No netdev and no MAC: named after the USB interface, joined by serial. */
				PS_SET(d->ifname, x->probing_if);
				PS_SET(d->serial, x->probing_serial);
				PS_SET(d->port, x->probing_port);
				PS_SET(d->parent, x->probing_parent);
			}
		}
		d->attach_end_ns = ns;
		d->attach_error = ret < 0 ? (int)-ret : 0;
		d->attach_pending = 1;
		d->info_deadline = ps_now_ns() + INFO_WAIT_NS;
		flush_attach(x, d, 0);
		if (ret != 0) {
			flush_attach(x, d, 1);
			d->used = 0;
		}
	} else if (strcmp(ev, "ps_disc") == 0) {
		ps->disc_pending = 1;
		ps->disc_ns = ns;
	} else if (strcmp(ev, "ps_unreg") == 0) {
		d = dev_find(x, name);
		if (!d || d->draining)
			return;
		flush_attach(x, d, 1);
		/* usbnet_disconnect's unregister_netdev first waits for rtnl, which
		 * many NICs leaving at once hold in turn for seconds under TCG. The
		 * window only keeps a disconnect that unregistered nothing (the
		 * second, data interface call) from pairing with much later work. */
		if (ps->disc_pending && ns - ps->disc_ns < DISC_UNREG_WINDOW_NS) {
			ps->disc_pending = 0;
			PS_SET(d->thread, comm);
			emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_DETACH_BEGIN, ps->disc_ns, 0, 0);
		}
		d->draining = 1;
		d->drain_pid = pid;
		d->unreg_ns = ns;
		emit_if(x, d, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_BEGIN, ns);
		emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_DRAIN_BEGIN, ns, 0,
				plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_NETDEV);
	} else if (strcmp(ev, "ps_todo") == 0) {
		/* netdev_run_todo snapshots the whole global todo list under rtnl:
		 * every interface unregistered before this entry and not yet taken
		 * is this thread's to wait for, whoever unregistered it. With several
		 * NICs leaving at once, that is often another kworker's interface. */
		for (int i = 0; i < MAX_DEVS; i++) {
			d = &x->devs[i];
			if (d->used && d->draining == 1 && d->todo_pid == 0 && d->unreg_ns <= ns)
				d->todo_pid = pid;
		}
	} else if (strcmp(ev, "ps_todo_ret") == 0) {
		for (int i = 0; i < MAX_DEVS; i++) {
			d = &x->devs[i];
			if (!d->used || d->draining != 1)
				continue;
			/* Without an entry seen for it, the unregistering thread's own todo. */
			if (d->todo_pid ? d->todo_pid != pid : d->drain_pid != pid)
				continue;
			/* The NETDEV_UNREGISTER notifier ran before the drain could end:
			 * the kernel has dropped the socket references by now. */
			harvest_refs(x, d->ifname, d->unreg_ns + 1000);
			d->draining = 2;
			if (d->leak)
				continue;
			emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_DRAIN_END, ns, 0,
					plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_NETDEV);
			emit_if(x, d, plugstorm_telemetry_v1_IfEvent_Kind_DETACH_END, ns);
			if (d->free_pending) {
				emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_FREE, ns, 0, 0);
				stop_tx(d);
				d->used = 0;
			}
		}
	} else if (strcmp(ev, "ps_free") == 0) {
		d = dev_find(x, name);
		if (!d || !d->draining)
			return;
		harvest_refs(x, d->ifname, d->unreg_ns + 1000);
		if (d->draining == 1 && !d->leak) {
			d->free_pending = 1;
			return;
		}
		if (d->leak)
			ps_log(x->a, plugstorm_telemetry_v1_Log_Level_WARN,
					"fault leak-ref: %s's drain end and free withheld (a kernel holding the reference waits forever)",
					d->ifname);
		else
			emit_dev(x, d, plugstorm_telemetry_v1_DeviceEvent_Kind_FREE, ns, 0, 0);
		stop_tx(d);
		d->used = 0;
	}
}

static void read_trace(struct lx *x)
{
	for (;;) {
		ssize_t n = read(x->trace_fd, x->tbuf + x->tlen, sizeof x->tbuf - 1 - x->tlen);
		if (n <= 0)
			return;
		x->tlen += (size_t)n;
		x->tbuf[x->tlen] = 0;
		char *start = x->tbuf, *nl;
		while ((nl = strchr(start, '\n'))) {
			*nl = 0;
			on_trace_line(x, start);
			start = nl + 1;
		}
		x->tlen -= (size_t)(start - x->tbuf);
		memmove(x->tbuf, start, x->tlen);
		if (x->tlen == sizeof x->tbuf - 1)
			x->tlen = 0; /* a line longer than the buffer: not one of ours */
	}
}

/* ------------------------------------------------ USB configuration + binding */

static int is_interface_name(const char *n)
{
	return n[0] != '.' && strchr(n, ':') != NULL;
}

/* Authorizes every interface under dir (a USB device's sysfs directory), then
 * asks the bus to probe them: all first, because drivers like cdc_ether claim
 * a second interface from the first one's probe and cannot claim an
 * unauthorized one. */
static void authorize_interfaces(struct lx *x, const char *dir)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	char names[8][32];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dp)) && n < 8) {
		if (!is_interface_name(e->d_name) || strlen(e->d_name) >= sizeof names[0])
			continue;
		char path[384], buf[8];
		snprintf(path, sizeof path, "%s/%s/authorized", dir, e->d_name);
		if (read_file(path, buf, sizeof buf) < 0 || strcmp(buf, "0") != 0)
			continue;
		int err = write_file(path, "1", 0);
		if (err)
			ps_log(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "authorize %s: %s", e->d_name, strerror(-err));
		else
			PS_SET(names[n++], e->d_name);
	}
	closedir(dp);
	char path[300], real[PATH_MAX];
	snprintf(path, sizeof path, "%s/serial", dir);
	x->probing_serial[0] = x->probing_port[0] = x->probing_parent[0] = 0;
	if (read_file(path, x->probing_serial, sizeof x->probing_serial) < 0)
		x->probing_serial[0] = 0;
	if (realpath(dir, real)) {
		PS_SET(x->probing_port, base(real));
		char *slash = strrchr(real, '/');
		if (slash) {
			*slash = 0;
			PS_SET(x->probing_parent, base(real));
		}
	}
	for (int i = 0; i < n; i++) {
		PS_SET(x->probing_if, names[i]);
		int err = write_file("/sys/bus/usb/drivers_probe", names[i], 0);
		if (err)
			ps_debug(x->a, "probe %s: %s", names[i], strerror(-err));
		/* The probe's trace lines are in the buffer now: read them while
		 * the interface they belong to is known. */
		if (x->trace_fd >= 0)
			read_trace(x);
		x->probing_if[0] = 0;
	}
}

static void configure_usb_device(struct lx *x, const char *devpath)
{
	char dir[256], path[300], serial[32] = "", cur[8] = "";
	snprintf(dir, sizeof dir, "/sys%s", devpath);
	snprintf(path, sizeof path, "%s/serial", dir);
	read_file(path, serial, sizeof serial);
	for (int i = 0; serial[0] && i < MAX_USB; i++) {
		struct config_sel *c = &x->sels[i];
		if (!c->value || strcmp(c->serial, serial) != 0)
			continue;
		snprintf(path, sizeof path, "%s/bConfigurationValue", dir);
		read_file(path, cur, sizeof cur);
		if ((uint32_t)atoi(cur) != c->value) {
			char v[12];
			snprintf(v, sizeof v, "%u", (unsigned)c->value);
			int err = write_file(path, v, 0);
			if (err)
				ps_log(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "%s: set configuration %s: %s", serial, v,
						strerror(-err));
			else
				ps_debug(x->a, "%s: configuration %s -> %s", serial, cur, v);
		}
		break;
	}
	authorize_interfaces(x, dir);
}

/* Stops interface drivers from binding on their own, and binds what came while
 * no agent ran (init restarts it). */
static void take_over_binding(struct lx *x)
{
	DIR *dp = opendir("/sys/bus/usb/devices");
	if (!dp)
		return;
	struct dirent *e;
	char path[384];
	while ((e = readdir(dp))) {
		if (strncmp(e->d_name, "usb", 3) != 0)
			continue;
		snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/interface_authorized_default", e->d_name);
		int err = write_file(path, "0", 0);
		if (err)
			ps_log(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "%s: %s", path, strerror(-err));
	}
	rewinddir(dp);
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.' || is_interface_name(e->d_name))
			continue;
		snprintf(path, sizeof path, "/sys/bus/usb/devices/%s", e->d_name);
		authorize_interfaces(x, path);
	}
	closedir(dp);
}

static int select_configuration(struct lx *x, const plugstorm_telemetry_v1_SelectConfiguration *s, char *msg, size_t ml)
{
	if (!s->serial[0] || s->value < 1 || s->value > 255) {
		snprintf(msg, ml, "SelectConfiguration needs a serial and a value 1..255 (serial \"%s\", value %u)", s->serial,
				(unsigned)s->value);
		return EINVAL;
	}
	struct config_sel *slot = NULL;
	for (int i = 0; i < MAX_USB; i++)
		if (x->sels[i].value && strcmp(x->sels[i].serial, s->serial) == 0)
			slot = &x->sels[i];
	for (int i = 0; i < MAX_USB && !slot; i++)
		if (!x->sels[i].value)
			slot = &x->sels[i];
	if (!slot) {
		snprintf(msg, ml, "too many configuration selections (%d)", MAX_USB);
		return ENOSPC;
	}
	PS_SET(slot->serial, s->serial);
	slot->value = s->value;
	snprintf(msg, ml, "serial %s: configuration %u when plugged", s->serial, (unsigned)s->value);
	return 0;
}

/* ------------------------------------------------------------------ uevents */

static void on_uevent(struct lx *x, char *msg, size_t n)
{
	const char *action = "", *devpath = "", *subsystem = "", *devtype = "", *iface = "";
	for (size_t i = 0; i < n; i += strlen(msg + i) + 1) {
		const char *kv = msg + i;
		if (strncmp(kv, "ACTION=", 7) == 0) action = kv + 7;
		else if (strncmp(kv, "DEVPATH=", 8) == 0) devpath = kv + 8;
		else if (strncmp(kv, "SUBSYSTEM=", 10) == 0) subsystem = kv + 10;
		else if (strncmp(kv, "DEVTYPE=", 8) == 0) devtype = kv + 8;
		else if (strncmp(kv, "INTERFACE=", 10) == 0) iface = kv + 10;
	}
	ps_debug(x->a, "uevent %s %s %s %s", action, subsystem, devtype, devpath);
	if (strcmp(subsystem, "usb") == 0 && strcmp(devtype, "usb_device") == 0) {
		struct usbdev *u = usb_find(x, devpath);
		if (strcmp(action, "add") == 0) {
			for (int i = 0; i < MAX_USB && !u; i++)
				if (!x->usb[i].used)
					u = &x->usb[i];
			if (!u)
				return;
			u->used = 1;
			PS_SET(u->devpath, devpath);
			char path[256];
			snprintf(path, sizeof path, "/sys%s/serial", devpath);
			u->serial[0] = 0;
			read_file(path, u->serial, sizeof u->serial);
		} else if (strcmp(action, "remove") == 0 && u) {
			u->used = 0;
		} else if (strcmp(action, "bind") == 0) {
			/* The generic driver has chosen and set a configuration: its
			 * interfaces exist and wait, unauthorized. */
			configure_usb_device(x, devpath);
		}
	} else if (strcmp(subsystem, "net") == 0 && iface[0]) {
		struct dev *d = dev_find(x, iface);
		if (strcmp(action, "add") == 0 && d && d->attach_pending)
			flush_attach(x, d, 0);
		/* A net remove uevent can be read before the detach's trace lines:
		 * reference sockets are reported at DRAIN_END / FREE instead. */
	}
}

static void read_uevents(struct lx *x)
{
	char buf[8192];
	for (;;) {
		ssize_t n = recv(x->nl_fd, buf, sizeof buf - 1, 0);
		if (n < 0 && errno == ENOBUFS) {
			x->events_lost++;
			continue;
		}
		if (n <= 0)
			return;
		buf[n] = 0;
		on_uevent(x, buf, (size_t)n);
	}
}

/* ------------------------------------------------------------------ ops */

static void *lx_open(struct ps_agent *a, char *err, size_t el)
{
	struct lx *x = &g_lx;
	memset(x, 0, sizeof *x);
	x->a = a;
	x->trace_fd = -1;
	x->self_pid = (int)getpid();
	x->nl_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (x->nl_fd < 0) {
		snprintf(err, el, "netlink uevent socket: %s", strerror(errno));
		return NULL;
	}
	struct sockaddr_nl sa = {0};
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = 1;
	if (bind(x->nl_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(err, el, "bind netlink uevent: %s", strerror(errno));
		close(x->nl_fd);
		return NULL;
	}
	int sz = 1 << 20;
	setsockopt(x->nl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
	x->kprobes_ok = setup_kprobes(x, err, el) == 0;
	/* After the uevent socket exists, so no bind uevent falls in between. */
	take_over_binding(x);
	return x;
}

static int lx_caps(void *be, plugstorm_telemetry_v1_Capability *out, int max)
{
	struct lx *x = be;
	int n = 0;
#define CAP(c) do { if (n < max) out[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_##c; } while (0)
	if (x->kprobes_ok) {
		CAP(DEVICE_LIFECYCLE);
		CAP(DETACH_PHASES);
		CAP(IFNET);
		CAP(FREE);
		CAP(CONTEXT);
	}
	CAP(AGENT_REFS);
	CAP(TRAFFIC);
	CAP(FAULTS);
#undef CAP
	return n;
}

static int lx_pollfds(void *be, struct pollfd *out, int max)
{
	struct lx *x = be;
	int n = 0;
	if (n < max) { out[n].fd = x->nl_fd; out[n].events = POLLIN; n++; }
	if (x->trace_fd >= 0 && n < max) { out[n].fd = x->trace_fd; out[n].events = POLLIN; n++; }
	/* Reference sockets: only errors matter (POLLERR is always reported). */
	for (int i = 0; i < MAX_REFS && n < max; i++)
		if (x->refs[i].used && !x->refs[i].kernel_err) {
			out[n].fd = x->refs[i].fd;
			out[n].events = 0;
			n++;
		}
	return n;
}

static void lx_ready(void *be, const struct pollfd *pfd, int n)
{
	struct lx *x = be;
	int any_ref_err = 0;
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == x->nl_fd)
			read_uevents(x);
		else if (pfd[i].fd == x->trace_fd)
			read_trace(x);
		else
			any_ref_err = 1;
	}
	/* The socket error usually comes before trace_pipe wakes up: note it, and
	 * report the RELEASE with the detach's trace lines (or, without kprobes,
	 * after a grace period in tick). */
	if (any_ref_err)
		for (int i = 0; i < MAX_REFS; i++)
			if (x->refs[i].used && !x->refs[i].kernel_err && ref_dropped_by_kernel(&x->refs[i]))
				x->refs[i].dropped_seen_ns = ps_now_ns();
}

static uint64_t lx_next_tick(void *be)
{
	struct lx *x = be;
	uint64_t t = x->panic_at ? x->panic_at : UINT64_MAX;
	for (int i = 0; i < MAX_DEVS; i++) {
		struct dev *d = &x->devs[i];
		if (!d->used)
			continue;
		if (d->attach_pending) {
			uint64_t r = ps_now_ns() + 10 * MS;
			t = r < t ? r : t;
		}
		if (d->pps && d->next_tx < t)
			t = d->next_tx;
	}
	for (int i = 0; i < MAX_REFS; i++) {
		struct ref *r = &x->refs[i];
		if (r->used && r->release_at && r->release_at < t)
			t = r->release_at;
		if (r->used && r->kernel_err && r->dropped_seen_ns + REF_GRACE_NS < t)
			t = r->dropped_seen_ns + REF_GRACE_NS;
	}
	return t;
}

static void lx_tick(void *be, uint64_t now)
{
	struct lx *x = be;
	if (x->panic_at && x->panic_at <= now) {
		x->panic_at = 0;
		write_file("/proc/sysrq-trigger", "c", 0);
	}
	for (int i = 0; i < MAX_DEVS; i++) {
		struct dev *d = &x->devs[i];
		if (!d->used)
			continue;
		if (d->attach_pending)
			flush_attach(x, d, 0);
		if (d->pps && d->tx_fd >= 0 && d->next_tx <= now)
			send_traffic(x, d, now);
	}
	for (int i = 0; i < MAX_REFS; i++) {
		struct ref *r = &x->refs[i];
		if (r->used && r->kernel_err && r->dropped_seen_ns + REF_GRACE_NS <= now)
			ref_release(x, r, "kernel dropped it (no detach trace seen)", r->dropped_seen_ns);
		else if (r->used && r->release_at && r->release_at <= now)
			ref_release(x, r, "hold time over", 0);
	}
}

static int lx_command(void *be, const ps_command_t *c, char *msg, size_t ml)
{
	struct lx *x = be;
	switch (c->which_body) {
	case PS_C(hold_refs):
		return hold_refs(x, &c->body.hold_refs, msg, ml);
	case PS_C(release_refs):
		return release_refs(x, &c->body.release_refs, msg, ml);
	case PS_C(start_traffic):
		return start_traffic(x, &c->body.start_traffic, msg, ml);
	case PS_C(stop_traffic): {
		struct dev *d = resolve(x, c->body.stop_traffic.device, c->body.stop_traffic.serial);
		if (!d) {
			snprintf(msg, ml, "no device \"%s\" (serial \"%s\")", c->body.stop_traffic.device,
					c->body.stop_traffic.serial);
			return ENODEV;
		}
		snprintf(msg, ml, "%llu packets sent on %s", (unsigned long long)d->tx_packets, d->ifname);
		stop_tx(d);
		emit_if(x, d, plugstorm_telemetry_v1_IfEvent_Kind_COUNTERS, 0);
		return 0;
	}
	case PS_C(inject_fault):
		return inject_fault(x, c, msg, ml);
	case PS_C(select_configuration):
		return select_configuration(x, &c->body.select_configuration, msg, ml);
	default:
		snprintf(msg, ml, "not supported by the Linux agent");
		return ENOTSUP;
	}
}

static void lx_stats(void *be, uint32_t *devices, uint32_t *refs, uint64_t *lost)
{
	struct lx *x = be;
	uint32_t n = 0;
	for (int i = 0; i < MAX_DEVS; i++)
		n += x->devs[i].used && x->devs[i].attached && !x->devs[i].draining;
	*devices = n;
	*refs = (uint32_t)ref_count(x);
	*lost = x->events_lost;
}

const struct ps_backend_ops ps_backend_linux = {
	.name = "linux",
	.os = plugstorm_telemetry_v1_GuestOs_GUEST_OS_LINUX,
	.open = lx_open,
	.capabilities = lx_caps,
	.pollfds = lx_pollfds,
	.ready = lx_ready,
	.next_tick = lx_next_tick,
	.tick = lx_tick,
	.command = lx_command,
	.stats = lx_stats,
	.faults = "leak-ref, panic",
};
