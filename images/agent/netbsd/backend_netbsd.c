/* The NetBSD guest backend. Built on NetBSD (base cc, by build-agent.sh
 * inside the guest); written from NetBSD's sources (images/netbsd/README.md,
 * "NetBSD facts"). On the Linux host it is only compiled against stand-in
 * declarations (tools/netbsd-stubs). Everything that can be checked without
 * NetBSD (the D script parser and its probe groups, drvctl event and
 * RTM_IFANNOUNCE to frame mapping, lost-event accounting) is in nb_events.c
 * and nb_probes.c and is unit-tested on the host; this file only does the
 * system calls.
 *
 * Sources:
 *   /dev/drvctl DRVGETEVENT   device-attach (before ca_attach) / device-detach
 *                             (after the localcount drain). The kernel queue
 *                             holds 64 and drops the oldest silently: read it
 *                             on every poll, count what looks lost.
 *   DRVCTLCOMMAND             get-properties: "serialnumber" (usbd_properties)
 *   PF_ROUTE RTM_IFANNOUNCE   interface arrival / departure
 *   getifaddrs AF_LINK        MAC address and counters
 *   dtrace -q -s (plugstorm.d's groups whose probes `dtrace -l` lists)
 *                             detach phases, drains, ifnet references
 * Device nodes: /dev/drvctl, /dev/bpf, /dev/dtrace/dtrace are checked at
 * start; a missing one is reported (console, Log, Hello.unavailable) and only
 * what needs it is given up.
 * Commands: HoldRefs = /dev/bpf descriptors attached with BIOCSETIF,
 * DetachDevice = DRVDETACHDEV (flags 0: the driver may veto), UnloadModule =
 * modctl(MODCTL_UNLOAD). */
#ifdef __NetBSD__
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/module.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/drvctlio.h>
#include <net/bpf.h>
#include <net/if.h>
#include <net/if_dl.h>
#include <net/route.h>
#include <prop/proplib.h>

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/agent.h"
#include "netbsd/nb_events.h"
#include "netbsd/nb_probes.h"

#define NB_DSCRIPT "/usr/libdata/plugstorm/plugstorm.d"
#define NB_DTRACE "/usr/sbin/dtrace"
#define NB_DTRACE_NODE "/dev/dtrace/dtrace"
#define NB_BPF_NODE "/dev/bpf"
#define NB_DTRACE_LOG "/var/log/plugstorm-dtrace.log"
/* A clause that fails to compile is dropped and dtrace started again, this often at most. */
#define NB_DTRACE_TRIES 4
#define NB_MAX_REFS 64
#define NB_INFO_RETRY_NS 1000000000ull
/* An attach with no interface after this long is reported as it is (a
 * driver whose attach failed, or a device that is not a NIC). */
#define NB_ATTACH_HOLD_NS 2000000000ull

struct nb_ref {
	int used;
	int fd;
	char ifname[24];
	char holder[48];
	plugstorm_telemetry_v1_ObjectKind kind;
	uint64_t release_at;
};

/* An interface announced but not yet reported: its serial may appear in the
 * device properties only once usbd_properties ran after the attach. */
struct nb_pending {
	int used;
	char ifname[24];
	uint64_t arrived_ns;
};

struct nb {
	struct ps_agent *a;
	struct ps_nb_state st;
	int drvctl;
	int route;
	int dtrace_fd;
	pid_t dtrace_pid;
	char dbuf[4096];
	size_t dlen;
	struct nb_ref refs[NB_MAX_REFS];
	struct nb_pending pend[PS_NB_MAX_DEVS];
	uint32_t holder_seq;
	uint64_t events_lost;
	int have_bpf;
	struct ps_nb_claims claims;
	int nmissing;
	char missing[4][96];
	/* Traffic: one bpf descriptor per interface sending at a rate. */
	int tx_fd;
	char tx_if[24];
	uint32_t tx_pps;
	uint64_t tx_next;
};

static struct nb nb_be;

static void emit_all(struct nb *x, ps_frame_t *fr, int n)
{
	for (int i = 0; i < n; i++)
		ps_emit(x->a, &fr[i]);
}

/* ------------------------------------------------------------ device identity */

static void get_serial(struct nb *x, const char *dev, char *out, size_t cap)
{
	prop_dictionary_t cmd = prop_dictionary_create(), args = prop_dictionary_create(), res = NULL;
	out[0] = '\0';
	prop_dictionary_set_string(args, "device-name", dev);
	prop_dictionary_set_string(cmd, "drvctl-command", "get-properties");
	prop_dictionary_set(cmd, "drvctl-arguments", args);
	prop_object_release(args);
	if (prop_dictionary_sendrecv_ioctl(cmd, x->drvctl, DRVCTLCOMMAND, &res) == 0) {
		int32_t err = 0;
		prop_dictionary_get_int32(res, "drvctl-error", &err);
		prop_dictionary_t data = prop_dictionary_get(res, "drvctl-result-data");
		const char *s = NULL;
		if (err == 0 && data && prop_dictionary_get_string(data, "serialnumber", &s) && s)
			ps_strlcpy(out, s, cap);
		prop_object_release(res);
	}
	prop_object_release(cmd);
}

static void get_mac(const char *ifname, char *out, size_t cap)
{
	struct ifaddrs *ifa0, *ifa;
	out[0] = '\0';
	if (getifaddrs(&ifa0) != 0)
		return;
	for (ifa = ifa0; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_LINK || strcmp(ifa->ifa_name, ifname) != 0)
			continue;
		const struct sockaddr_dl *sdl = (const struct sockaddr_dl *)ifa->ifa_addr;
		if (sdl->sdl_alen == 6) {
			const unsigned char *m = (const unsigned char *)CLLADDR(sdl);
			snprintf(out, cap, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
		}
		break;
	}
	freeifaddrs(ifa0);
}

static void fill_info(struct nb *x, const char *dev, struct ps_nb_devinfo *info)
{
	memset(info, 0, sizeof(*info));
	get_serial(x, dev, info->serial, sizeof(info->serial));
	get_mac(dev, info->mac, sizeof(info->mac));
}

/* ------------------------------------------------------------------ refs */

static void emit_ref(struct nb *x, plugstorm_telemetry_v1_RefEvent_Kind k, const struct nb_ref *r, const char *desc)
{
	ps_frame_t f = { 0 };
	f.which_body = PS_F(ref);
	f.body.ref.kind = k;
	f.body.ref.object_kind = r->kind;
	PS_SET(f.body.ref.object, r->ifname);
	PS_SET(f.body.ref.holder, r->holder);
	PS_SET(f.body.ref.holder_desc, desc);
	f.body.ref.count_after = -1;
	f.body.ref.context = plugstorm_telemetry_v1_ExecContext_EXEC_CONTEXT_THREAD;
	PS_SET(f.body.ref.device, r->ifname);
	ps_emit(x->a, &f);
}

static void ref_release(struct nb *x, struct nb_ref *r, const char *why)
{
	close(r->fd);
	r->used = 0;
	emit_ref(x, plugstorm_telemetry_v1_RefEvent_Kind_RELEASE, r, why);
}

/* ether_ifdetach -> bpf_detach disconnects every bpf descriptor of the
 * interface: the kernel dropped our references before the ifnet drain. */
static void refs_dropped(struct nb *x, const char *ifname)
{
	for (int i = 0; i < NB_MAX_REFS; i++)
		if (x->refs[i].used && strcmp(x->refs[i].ifname, ifname) == 0)
			ref_release(x, &x->refs[i], "bpf_detach disconnected it");
	if (x->tx_fd >= 0 && strcmp(x->tx_if, ifname) == 0) {
		close(x->tx_fd);
		x->tx_fd = -1;
	}
}

static int bpf_open(const char *ifname, char *msg, size_t ml)
{
	int fd = open("/dev/bpf", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(msg, ml, "open /dev/bpf: %s", strerror(errno));
		return -1;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strlcpy(ifr.ifr_name, ifname, sizeof ifr.ifr_name);
	if (ioctl(fd, BIOCSETIF, &ifr) < 0) {
		int e = errno;
		close(fd);
		snprintf(msg, ml, "BIOCSETIF %s: %s", ifname, strerror(e));
		errno = e;
		return -1;
	}
	return fd;
}

static struct ps_nb_dev *resolve(struct nb *x, const char *device, const char *serial)
{
	for (int i = 0; i < PS_NB_MAX_DEVS; i++) {
		struct ps_nb_dev *d = &x->st.devs[i];
		if (!d->used || !d->present)
			continue;
		if (device[0] && strcmp(d->name, device) == 0)
			return d;
		if (!device[0] && serial[0]) {
			if (!d->info.serial[0])
				get_serial(x, d->name, d->info.serial, sizeof d->info.serial);
			if (strcmp(d->info.serial, serial) == 0)
				return d;
		}
	}
	return NULL;
}

static int hold_refs(struct nb *x, const plugstorm_telemetry_v1_HoldRefs *h, char *msg, size_t ml)
{
	struct ps_nb_dev *d = resolve(x, h->device, h->serial);
	if (!d) {
		snprintf(msg, ml, "no device \"%s\" (serial \"%s\")", h->device, h->serial);
		return ENODEV;
	}
	uint32_t count = h->count ? h->count : 1, done = 0;
	for (; done < count; done++) {
		struct nb_ref *r = NULL;
		for (int i = 0; i < NB_MAX_REFS && !r; i++)
			if (!x->refs[i].used)
				r = &x->refs[i];
		if (!r) {
			snprintf(msg, ml, "holding %u of %u: agent reference table full", done, count);
			return done ? 0 : ENOSPC;
		}
		int fd = bpf_open(d->name, msg, ml);
		if (fd < 0)
			return errno;
		r->used = 1;
		r->fd = fd;
		r->kind = h->kind ? h->kind : plugstorm_telemetry_v1_ObjectKind_OBJECT_KIND_IFNET;
		PS_SET(r->ifname, d->name);
		x->holder_seq++;
		snprintf(r->holder, sizeof r->holder, "%.36s#%u", h->holder[0] ? h->holder : "agent-bpf", x->holder_seq);
		r->release_at = h->hold_ns ? ps_now_ns() + h->hold_ns : 0;
		char desc[64];
		snprintf(desc, sizeof desc, "bpf fd %d on %s", fd, d->name);
		emit_ref(x, plugstorm_telemetry_v1_RefEvent_Kind_ACQUIRE, r, desc);
	}
	snprintf(msg, ml, "holding %u on %s", done, d->name);
	return 0;
}

static int release_refs(struct nb *x, const plugstorm_telemetry_v1_ReleaseRefs *h, char *msg, size_t ml)
{
	struct ps_nb_dev *d = (h->device[0] || h->serial[0]) ? resolve(x, h->device, h->serial) : NULL;
	uint32_t n = 0;
	for (int i = 0; i < NB_MAX_REFS && (h->count == 0 || n < h->count); i++) {
		struct nb_ref *r = &x->refs[i];
		if (!r->used || (d && strcmp(r->ifname, d->name) != 0) || (h->device[0] && !d && strcmp(r->ifname, h->device) != 0))
			continue;
		if (h->holder[0] && strncmp(r->holder, h->holder, strlen(h->holder)) != 0)
			continue;
		ref_release(x, r, "closed on command");
		n++;
	}
	snprintf(msg, ml, "released %u", n);
	return 0;
}

/* ------------------------------------------------------------------ traffic */

static int set_up(const char *ifname)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strlcpy(ifr.ifr_name, ifname, sizeof ifr.ifr_name);
	int e = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		e = errno;
	else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			e = errno;
	}
	close(s);
	return e;
}

static void counters(struct nb *x, const char *ifname)
{
	struct ifaddrs *ifa0, *ifa;
	if (getifaddrs(&ifa0) != 0)
		return;
	for (ifa = ifa0; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_LINK || strcmp(ifa->ifa_name, ifname) != 0 || !ifa->ifa_data)
			continue;
		const struct if_data *id = ifa->ifa_data;
		ps_frame_t f = { 0 };
		f.which_body = PS_F(ifnet);
		f.body.ifnet.kind = plugstorm_telemetry_v1_IfEvent_Kind_COUNTERS;
		PS_SET(f.body.ifnet.ifname, ifname);
		PS_SET(f.body.ifnet.device, ifname);
		f.body.ifnet.tx_packets = id->ifi_opackets;
		f.body.ifnet.rx_packets = id->ifi_ipackets;
		f.body.ifnet.tx_bytes = id->ifi_obytes;
		f.body.ifnet.rx_bytes = id->ifi_ibytes;
		ps_emit(x->a, &f);
		break;
	}
	freeifaddrs(ifa0);
}

static void send_one(struct nb *x)
{
	static const unsigned char pkt[60] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x88, 0xb5, 'p', 's',
	};
	if (write(x->tx_fd, pkt, sizeof pkt) < 0 && errno != EAGAIN && errno != ENOBUFS) {
		ps_debug(x->a, "bpf write on %s: %s", x->tx_if, strerror(errno));
	}
}

/* ------------------------------------------------------------------ dtrace */

/* Runs argv with stdout into a pipe (returned in *out_fd) and stderr into
 * err_path (appended); returns the pid or -1. */
static pid_t spawn(char *const argv[], int *out_fd, const char *err_path)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		int e = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (e >= 0)
			dup2(e, 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

/* Reads a child's whole stdout (bounded) and reaps it; returns its exit status or -1. */
static int run_capture(char *const argv[], char *buf, size_t cap)
{
	int fd;
	pid_t pid = spawn(argv, &fd, NB_DTRACE_LOG);
	if (pid < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r > 0 && n + (size_t)r < cap - 1) {
			n += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	buf[n] = '\0';
	close(fd);
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* The probes that exist among the script's: one `dtrace -l -Z -n ...` for
 * all, or one `dtrace -l -n P` each if that lists nothing. */
static void list_probes(const struct ps_nb_dscript *ds, struct ps_nb_probe_set *set)
{
	static char out[1 << 16];
	char *argv[2 + 2 + 2 * PS_NB_MAX_GROUPS * PS_NB_GROUP_PROBES + 1];
	int n = 0;
	argv[n++] = __UNCONST(NB_DTRACE);
	argv[n++] = __UNCONST("-l");
	argv[n++] = __UNCONST("-Z");
	for (int i = 0; i < ds->ngroups; i++)
		for (int k = 0; k < ds->g[i].nprobes; k++) {
			argv[n++] = __UNCONST("-n");
			argv[n++] = __UNCONST(ds->g[i].probes[k]);
		}
	argv[n] = NULL;
	if (run_capture(argv, out, sizeof out) >= 0 && ps_nb_parse_dtrace_list(out, set) > 0)
		return;
	for (int i = 0; i < ds->ngroups; i++)
		for (int k = 0; k < ds->g[i].nprobes; k++) {
			char *one[] = { __UNCONST(NB_DTRACE), __UNCONST("-l"), __UNCONST("-n"), __UNCONST(ds->g[i].probes[k]), NULL };
			if (run_capture(one, out, sizeof out) == 0)
				ps_nb_parse_dtrace_list(out, set);
		}
}

/* The last line of the dtrace log (its error when it gave up). */
static void last_error(char *buf, size_t cap)
{
	buf[0] = '\0';
	int fd = open(NB_DTRACE_LOG, O_RDONLY);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
	ssize_t r = pread(fd, buf, cap - 1, from);
	close(fd);
	buf[r > 0 ? r : 0] = '\0';
	size_t n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	char *nl = strrchr(buf, '\n');
	if (nl)
		memmove(buf, nl + 1, strlen(nl + 1) + 1);
}

/* Waits for PSREADY until the deadline: 1 ready, 0 dtrace exited, -1 deadline passed. */
static int wait_ready(int fd, pid_t pid, uint64_t deadline)
{
	char line[64];
	size_t n = 0;
	while (ps_now_ns() < deadline) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 500) <= 0)
			continue;
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0) {
			waitpid(pid, NULL, 0);
			return 0;
		}
		if (line[n] == '\n') {
			line[n] = '\0';
			if (strcmp(line, "PSREADY") == 0)
				return 1;
			n = 0;
		} else if (n + 1 < sizeof line) {
			n++;
		}
	}
	return -1;
}

static void dtrace_start(struct nb *x)
{
	const struct ps_agent_config *cfg = ps_agent_cfg(x->a);
	static char text[1 << 16], composed[1 << 16];
	static struct ps_nb_dscript ds;
	static struct ps_nb_probe_set set;
	struct stat st;
	int running = 0;
	char why[160] = "";

	if (stat(NB_DTRACE_NODE, &st) != 0 || !S_ISCHR(st.st_mode))
		snprintf(why, sizeof why, "no device node %s (MAKEDEV dtrace; modload dtrace)", NB_DTRACE_NODE);
	else if (access(NB_DTRACE, X_OK) != 0)
		snprintf(why, sizeof why, "%s: %s", NB_DTRACE, strerror(errno));
	int sfd = why[0] ? -1 : open(NB_DSCRIPT, O_RDONLY);
	if (!why[0] && sfd < 0)
		snprintf(why, sizeof why, "%s: %s", NB_DSCRIPT, strerror(errno));
	if (sfd >= 0) {
		ssize_t r = read(sfd, text, sizeof text - 1);
		close(sfd);
		text[r > 0 ? r : 0] = '\0';
		char err[160];
		if (ps_nb_dscript_parse(text, &ds, err, sizeof err) != 0)
			snprintf(why, sizeof why, "%s: %s", NB_DSCRIPT, err);
	}
	if (why[0]) {
		ps_report(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "DTrace not used: %s", why);
		ps_nb_claims(&ds, 0, &x->claims);
		return;
	}

	uint64_t t0 = ps_now_ns(), deadline = t0 + cfg->dtrace_deadline_ns;
	list_probes(&ds, &set);
	ps_nb_plan(&ds, &set);
	for (int try = 0; try < NB_DTRACE_TRIES && !running; try++) {
		char path[] = "/tmp/plugstorm-agent.XXXXXX";
		int tfd = mkstemp(path);
		long len = ps_nb_compose(&ds, composed, sizeof composed);
		if (tfd < 0 || len < 0 || write(tfd, composed, (size_t)len) != len) {
			if (tfd >= 0) {
				close(tfd);
				unlink(path);
			}
			snprintf(why, sizeof why, "cannot write the script to /tmp");
			break;
		}
		close(tfd);
		/* Every kept probe was listed by dtrace -l: no -Z. */
		char *argv[] = { __UNCONST(NB_DTRACE), __UNCONST("-q"), __UNCONST("-s"), path, NULL };
		int fd;
		pid_t pid = spawn(argv, &fd, NB_DTRACE_LOG);
		if (pid < 0) {
			unlink(path);
			snprintf(why, sizeof why, "cannot start %s: %s", NB_DTRACE, strerror(errno));
			break;
		}
		/* Loading CTF and enabling the probes takes long under TCG. */
		int r = wait_ready(fd, pid, deadline);
		unlink(path);
		if (r == 1) {
			fcntl(fd, F_SETFL, O_NONBLOCK);
			x->dtrace_fd = fd;
			x->dtrace_pid = pid;
			running = 1;
			break;
		}
		close(fd);
		if (r < 0) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
			snprintf(why, sizeof why, "not ready after %llu s (the deadline: rc.conf plugstorm_dtrace_deadline, --dtrace-deadline)",
				 (unsigned long long)(cfg->dtrace_deadline_ns / 1000000000ull));
			break;
		}
		char err[200];
		last_error(err, sizeof err);
		struct ps_nb_group *g = ps_nb_group_at_line(&ds, ps_nb_error_line(err));
		if (!g) {
			snprintf(why, sizeof why, "dtrace exited: %.120s", err);
			break;
		}
		g->present = 0;
		snprintf(g->why, sizeof g->why, "does not compile: %.70s", err);
	}
	uint64_t took = ps_now_ns() - t0;
	if (running)
		ps_report(x->a, plugstorm_telemetry_v1_Log_Level_INFO, "DTrace ready in %llu.%01llu s (deadline %llu s)",
			  (unsigned long long)(took / 1000000000ull), (unsigned long long)(took / 100000000ull % 10),
			  (unsigned long long)(cfg->dtrace_deadline_ns / 1000000000ull));
	else
		ps_report(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "DTrace %s after %llu s: falling back to drvctl and the routing socket",
			  why, (unsigned long long)(took / 1000000000ull));
	for (int i = 0; running && i < ds.ngroups; i++)
		if (!ds.g[i].present)
			ps_report(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "DTrace group %s not used: %s", ds.g[i].name, ds.g[i].why);
	ps_nb_claims(&ds, running, &x->claims);
}

static void dline(struct nb *x, const char *line)
{
	struct ps_nb_dline d;
	char err[128];
	int r = ps_nb_parse_dline(line, &d, err, sizeof err);
	if (r < 0) {
		ps_log(x->a, plugstorm_telemetry_v1_Log_Level_WARN, "plugstorm.d: %s: %.60s", err, line);
		return;
	}
	if (r == 0)
		return;
	if (d.kind == PS_NB_D_IFDETACH_ENTRY)
		refs_dropped(x, d.arg1);
	ps_nb_set_clock(&x->st, ps_now_ns());
	ps_frame_t fr[4];
	emit_all(x, fr, ps_nb_dline_frames(&x->st, &d, fr, 4));
}

static void dtrace_read(struct nb *x)
{
	for (;;) {
		ssize_t r = read(x->dtrace_fd, x->dbuf + x->dlen, sizeof x->dbuf - 1 - x->dlen);
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				ps_log(x->a, plugstorm_telemetry_v1_Log_Level_ERROR, "dtrace ended: detach phases are no longer observed");
				close(x->dtrace_fd);
				x->dtrace_fd = -1;
				x->events_lost++;
			}
			return;
		}
		x->dlen += (size_t)r;
		x->dbuf[x->dlen] = '\0';
		char *s = x->dbuf, *nl;
		while ((nl = strchr(s, '\n')) != NULL) {
			*nl = '\0';
			dline(x, s);
			s = nl + 1;
		}
		x->dlen = strlen(s);
		memmove(x->dbuf, s, x->dlen);
		if (x->dlen == sizeof x->dbuf - 1)
			x->dlen = 0; /* a line longer than the buffer: not ours */
	}
}

/* ------------------------------------------------------------------ drvctl */

static void drvctl_read(struct nb *x)
{
	for (;;) {
		prop_dictionary_t ev = NULL;
		if (prop_dictionary_recv_ioctl(x->drvctl, DRVGETEVENT, &ev) != 0) {
			if (errno != EWOULDBLOCK && errno != EINTR)
				ps_debug(x->a, "DRVGETEVENT: %s", strerror(errno));
			return;
		}
		const char *event = NULL, *device = NULL, *parent = NULL;
		prop_dictionary_get_string(ev, "event", &event);
		prop_dictionary_get_string(ev, "device", &device);
		prop_dictionary_get_string(ev, "parent", &parent);
		if (event && device) {
			/* nb_events counts what looks lost (queue drops). */
			ps_nb_set_clock(&x->st, ps_now_ns());
			ps_frame_t fr[6];
			int n = ps_nb_drvctl_frames(&x->st, event, device, parent ? parent : "", NULL, ps_now_ns(), fr, 6);
			if (n > 0)
				emit_all(x, fr, n);
		}
		prop_object_release(ev);
	}
}

/* ------------------------------------------------------------------ routing socket */

static void flush_pending(struct nb *x, struct nb_pending *p, int force)
{
	struct ps_nb_devinfo info;
	memset(&info, 0, sizeof info);
	if (ps_nb_find(&x->st, p->ifname)) {
		fill_info(x, p->ifname, &info);
		if (!info.serial[0] && !force)
			return; /* usbd_properties may not have run yet: retry on tick */
	}
	p->used = 0;
	ps_frame_t fr[4];
	emit_all(x, fr, ps_nb_ifannounce_frames(&x->st, p->ifname, 1, &info, p->arrived_ns, fr, 4));
}

static void route_read(struct nb *x)
{
	union {
		struct rt_msghdr rtm;
		struct if_announcemsghdr ifan;
		char buf[2048];
	} m;
	for (;;) {
		ssize_t r = recv(x->route, &m, sizeof m, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == ENOBUFS) {
				/* SO_RERROR: the socket buffer overflowed and the kernel
				 * dropped at least one message (an arrival or departure). */
				ps_nb_route_overflow(&x->st);
			}
			if (errno == ENOBUFS || errno == EINTR)
				continue;
			return; /* EAGAIN: drained */
		}
		if (r < (ssize_t)sizeof(struct if_announcemsghdr) || m.rtm.rtm_version != RTM_VERSION || m.rtm.rtm_type != RTM_IFANNOUNCE)
			continue;
		char ifname[IFNAMSIZ + 1];
		memcpy(ifname, m.ifan.ifan_name, IFNAMSIZ);
		ifname[IFNAMSIZ] = '\0';
		uint64_t now = ps_now_ns();
		if (m.ifan.ifan_what == IFAN_ARRIVAL) {
			if (!ps_nb_find(&x->st, ifname))
				continue; /* not a device drvctl told us about (lo0, ...) */
			for (int i = 0; i < PS_NB_MAX_DEVS; i++) {
				if (!x->pend[i].used) {
					x->pend[i].used = 1;
					PS_SET(x->pend[i].ifname, ifname);
					x->pend[i].arrived_ns = now;
					flush_pending(x, &x->pend[i], 0);
					break;
				}
			}
		} else if (m.ifan.ifan_what == IFAN_DEPARTURE) {
			for (int i = 0; i < PS_NB_MAX_DEVS; i++)
				if (x->pend[i].used && strcmp(x->pend[i].ifname, ifname) == 0)
					flush_pending(x, &x->pend[i], 1);
			if (!x->st.have_dtrace)
				refs_dropped(x, ifname);
			ps_frame_t fr[4];
			emit_all(x, fr, ps_nb_ifannounce_frames(&x->st, ifname, 0, NULL, now, fr, 4));
		}
	}
}

/* ------------------------------------------------------------------ ops */

static void node_missing(struct nb *x, const char *node, const char *why, const char *without)
{
	ps_report(x->a, plugstorm_telemetry_v1_Log_Level_ERROR, "%s: %s: %s", node, why, without);
	if (x->nmissing < 4)
		snprintf(x->missing[x->nmissing++], sizeof x->missing[0], "%.24s: %.30s (%.36s)", node, why, without);
}

static void *nb_open(struct ps_agent *a, char *err, size_t errlen)
{
	struct nb *x = &nb_be;
	struct stat st;
	memset(x, 0, sizeof *x);
	x->a = a;
	x->dtrace_fd = -1;
	x->tx_fd = -1;
	(void)err;
	(void)errlen;
	/* FREAD|FWRITE is required for DRVGETEVENT; the queue exists only while open. */
	x->drvctl = open(DRVCTLDEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (x->drvctl < 0)
		node_missing(x, DRVCTLDEV, strerror(errno), "no device events");
	x->have_bpf = stat(NB_BPF_NODE, &st) == 0 && S_ISCHR(st.st_mode);
	if (!x->have_bpf)
		node_missing(x, NB_BPF_NODE, "no such character device", "no held refs or traffic");
	x->route = socket(PF_ROUTE, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->route < 0) {
		node_missing(x, "routing socket", strerror(errno), "no interface events");
	} else {
		/* Without SO_RERROR a full socket buffer drops announcements
		 * silently; with it, recv says ENOBUFS and the loss is counted. */
		int on = 1;
		if (setsockopt(x->route, SOL_SOCKET, SO_RERROR, &on, sizeof on) != 0)
			ps_report(a, plugstorm_telemetry_v1_Log_Level_WARN, "SO_RERROR on the routing socket: %s: "
				  "lost interface announcements cannot be counted", strerror(errno));
	}
	dtrace_start(x);
	ps_nb_init(&x->st, x->claims.have_dtrace);
	if (x->claims.have_dtrace)
		ps_nb_set_probes(&x->st, &x->claims.probes);
	x->st.have_drvctl = x->drvctl >= 0;
	return x;
}

static int nb_caps(void *be, plugstorm_telemetry_v1_Capability *out, int max)
{
	struct nb *x = be;
	plugstorm_telemetry_v1_Capability c[16];
	int n = 0;
	if (x->drvctl >= 0) {
		c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_DEVICE_LIFECYCLE;
		c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_DETACH_COMMAND;
	}
	if (x->route >= 0)
		c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_IFNET;
	if (x->have_bpf) {
		c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_AGENT_REFS;
		c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_TRAFFIC;
	}
	c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_MODULES;
	/* Only what the probes that really run can give (nb_probes.c). */
	for (int i = 0; i < x->claims.ncaps && n < 16; i++)
		c[n++] = x->claims.caps[i];
	if (x->claims.commit_point && x->drvctl >= 0)
		c[n++] = plugstorm_telemetry_v1_Capability_CAPABILITY_COMMIT_POINT;
	if (n > max)
		n = max;
	memcpy(out, c, (size_t)n * sizeof c[0]);
	return n;
}

static int nb_unavailable(void *be, char (*out)[96], int max)
{
	struct nb *x = be;
	int n = 0;
	for (int i = 0; i < x->nmissing && n < max; i++)
		PS_SET(out[n++], x->missing[i]);
	for (int i = 0; i < x->claims.nunavailable && n < max; i++)
		PS_SET(out[n++], x->claims.unavailable[i]);
	return n;
}

static int nb_pollfds(void *be, struct pollfd *out, int max)
{
	struct nb *x = be;
	int n = 0;
	if (x->drvctl >= 0 && n < max)
		out[n++] = (struct pollfd){ .fd = x->drvctl, .events = POLLIN };
	if (x->route >= 0 && n < max)
		out[n++] = (struct pollfd){ .fd = x->route, .events = POLLIN };
	if (x->dtrace_fd >= 0 && n < max)
		out[n++] = (struct pollfd){ .fd = x->dtrace_fd, .events = POLLIN };
	return n;
}

static void nb_ready(void *be, const struct pollfd *pfd, int n)
{
	struct nb *x = be;
	/* DTrace first: its lines for a detach come before drvctl's device-detach. */
	for (int i = 0; i < n; i++)
		if (pfd[i].fd == x->dtrace_fd && x->dtrace_fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP)))
			dtrace_read(x);
	for (int i = 0; i < n; i++) {
		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (pfd[i].fd == x->drvctl)
			drvctl_read(x);
		else if (pfd[i].fd == x->route)
			route_read(x);
	}
}

static uint64_t nb_next_tick(void *be)
{
	struct nb *x = be;
	uint64_t t = x->st.route_lost != x->st.route_lost_told ? 0 : ps_nb_next_join(&x->st);
	for (int i = 0; i < PS_NB_MAX_DEVS; i++)
		if (x->pend[i].used && x->pend[i].arrived_ns + 50000000ull < t)
			t = x->pend[i].arrived_ns + 50000000ull;
	for (int i = 0; i < NB_MAX_REFS; i++)
		if (x->refs[i].used && x->refs[i].release_at && x->refs[i].release_at < t)
			t = x->refs[i].release_at;
	if (x->tx_fd >= 0 && x->tx_next < t)
		t = x->tx_next;
	for (int i = 0; i < PS_NB_MAX_DEVS; i++)
		if (x->st.devs[i].used && x->st.devs[i].attach_held && x->st.devs[i].attach_ts + NB_ATTACH_HOLD_NS < t)
			t = x->st.devs[i].attach_ts + NB_ATTACH_HOLD_NS;
	return t;
}

static void nb_tick(void *be, uint64_t now)
{
	struct nb *x = be;
	{
		ps_frame_t lf[4];
		emit_all(x, lf, ps_nb_loss_log(&x->st, lf, 1));
		int n;
		while ((n = ps_nb_flush_joins(&x->st, now, lf, 4)) > 0)
			emit_all(x, lf, n);
	}
	for (int i = 0; i < PS_NB_MAX_DEVS; i++)
		if (x->pend[i].used)
			flush_pending(x, &x->pend[i], now >= x->pend[i].arrived_ns + NB_INFO_RETRY_NS);
	for (int i = 0; i < NB_MAX_REFS; i++)
		if (x->refs[i].used && x->refs[i].release_at && x->refs[i].release_at <= now)
			ref_release(x, &x->refs[i], "hold time over");
	for (int i = 0; i < PS_NB_MAX_DEVS; i++) {
		struct ps_nb_dev *d = &x->st.devs[i];
		if (d->used && d->attach_held && now >= d->attach_ts + NB_ATTACH_HOLD_NS) {
			struct ps_nb_devinfo info;
			fill_info(x, d->name, &info);
			if (info.serial[0])
				PS_SET(d->info.serial, info.serial);
			ps_frame_t fr[2];
			emit_all(x, fr, ps_nb_flush_attach(&x->st, d->name, fr, 2));
		}
	}
	if (x->tx_fd >= 0 && x->tx_pps && now >= x->tx_next) {
		send_one(x);
		x->tx_next = now + 1000000000ull / x->tx_pps;
	}
}

static void module_frame(struct nb *x, plugstorm_telemetry_v1_ModuleEvent_Kind k, const char *name, int error)
{
	ps_frame_t f = { 0 };
	f.which_body = PS_F(module);
	f.body.module.kind = k;
	PS_SET(f.body.module.name, name);
	f.body.module.error = error;
	ps_emit(x->a, &f);
}

static int nb_command(void *be, const ps_command_t *c, char *msg, size_t ml)
{
	struct nb *x = be;
	switch (c->which_body) {
	case PS_C(hold_refs):
		return hold_refs(x, &c->body.hold_refs, msg, ml);
	case PS_C(release_refs):
		return release_refs(x, &c->body.release_refs, msg, ml);
	case PS_C(start_traffic): {
		struct ps_nb_dev *d = resolve(x, c->body.start_traffic.device, c->body.start_traffic.serial);
		if (!d) {
			snprintf(msg, ml, "no device \"%s\" (serial \"%s\")", c->body.start_traffic.device, c->body.start_traffic.serial);
			return ENODEV;
		}
		int e = set_up(d->name);
		if (e) {
			snprintf(msg, ml, "SIOCSIFFLAGS up %s: %s", d->name, strerror(e));
			return e;
		}
		if (x->tx_fd >= 0)
			close(x->tx_fd);
		x->tx_fd = bpf_open(d->name, msg, ml);
		if (x->tx_fd < 0)
			return errno;
		PS_SET(x->tx_if, d->name);
		x->tx_pps = c->body.start_traffic.packets_per_second ? c->body.start_traffic.packets_per_second : 100;
		x->tx_next = ps_now_ns();
		snprintf(msg, ml, "%u packets/s on %s", x->tx_pps, d->name);
		return 0;
	}
	case PS_C(stop_traffic):
		if (x->tx_fd < 0) {
			snprintf(msg, ml, "no traffic running");
			return 0;
		}
		counters(x, x->tx_if);
		close(x->tx_fd);
		x->tx_fd = -1;
		return 0;
	case PS_C(detach_device): {
		const plugstorm_telemetry_v1_DetachDevice *dd = &c->body.detach_device;
		struct ps_nb_dev *d = resolve(x, dd->device, dd->serial);
		struct devdetachargs da;
		memset(&da, 0, sizeof da);
		strlcpy(da.devname, d ? d->name : dd->device, sizeof da.devname);
		if (dd->has_flags && dd->flags.force) {
			/* drvctl(4) has no way to pass flags: detachdevbyname always uses 0. */
			snprintf(msg, ml, "DRVDETACHDEV cannot force");
			return ENOTSUP;
		}
		if (x->drvctl < 0) {
			snprintf(msg, ml, "no %s", DRVCTLDEV);
			return ENODEV;
		}
		if (ioctl(x->drvctl, DRVDETACHDEV, &da) < 0) {
			int e = errno;
			snprintf(msg, ml, "DRVDETACHDEV %s: %s", da.devname, strerror(e));
			ps_frame_t fr[2];
			emit_all(x, fr, ps_nb_detach_result(&x->st, da.devname, e, ps_now_ns(), fr, 2));
			return e;
		}
		snprintf(msg, ml, "detached %s", da.devname);
		return 0;
	}
	case PS_C(unload_module): {
		const char *name = c->body.unload_module.name;
		module_frame(x, plugstorm_telemetry_v1_ModuleEvent_Kind_UNLOAD_BEGIN, name, 0);
		int e = modctl(MODCTL_UNLOAD, __UNCONST(name)) < 0 ? errno : 0;
		module_frame(x, plugstorm_telemetry_v1_ModuleEvent_Kind_UNLOAD_END, name, e);
		snprintf(msg, ml, "modunload %s: %s", name, e ? strerror(e) : "ok");
		return e;
	}
	default:
		snprintf(msg, ml, "not supported by backend netbsd");
		return ENOTSUP;
	}
}

static void nb_stats(void *be, uint32_t *devices, uint32_t *refs, uint64_t *lost)
{
	struct nb *x = be;
	uint32_t d = 0, r = 0;
	for (int i = 0; i < PS_NB_MAX_DEVS; i++)
		d += x->st.devs[i].used && x->st.devs[i].present;
	for (int i = 0; i < NB_MAX_REFS; i++)
		r += x->refs[i].used;
	*devices = d;
	*refs = r;
	*lost = x->events_lost + x->st.events_lost;
}

const struct ps_backend_ops ps_backend_netbsd = {
	.name = "netbsd",
	.os = plugstorm_telemetry_v1_GuestOs_GUEST_OS_NETBSD,
	.open = nb_open,
	.capabilities = nb_caps,
	.pollfds = nb_pollfds,
	.ready = nb_ready,
	.next_tick = nb_next_tick,
	.tick = nb_tick,
	.command = nb_command,
	.stats = nb_stats,
	.unavailable = nb_unavailable,
	.faults = "",
};
#endif /* __NetBSD__ */
