/* OS-neutral half of the NetBSD backend: parses the lines of
 * images/netbsd/plugstorm.d and maps drvctl events and routing-socket
 * announcements to telemetry frames. No NetBSD header is needed here, so this
 * file builds and is unit-tested on the Linux host (images/agent/tools/nb_events_tool.c,
 * test/netbsd/agent-parse.test.ts); backend_netbsd.c feeds it on a real guest. */
#ifndef PS_NB_EVENTS_H
#define PS_NB_EVENTS_H
#include <stddef.h>
#include <stdint.h>

#include "core/agent.h"

/* One line of plugstorm.d: "PS <timestamp-ns> <tid> <event> <arg1> <arg2>",
 * fields separated by single spaces, "-" for an empty argument. */
enum ps_nb_dkind {
	PS_NB_D_DETACH_ENTRY,      /* config_detach entry: arg1 xname, arg2 flags */
	PS_NB_D_DETACH_RETURN,     /* config_detach return: arg1 xname, arg2 rv */
	PS_NB_D_DEACTIVATE_ENTRY,  /* config_deactivate entry: arg1 xname */
	PS_NB_D_DEACTIVATE_RETURN, /* config_deactivate return */
	PS_NB_D_PORT_ENTRY,        /* usb_disconnect_port entry: arg1 port number */
	PS_NB_D_PORT_RETURN,       /* usb_disconnect_port return: arg2 rv */
	PS_NB_D_USBNET_ENTRY,      /* usbnet_detach entry: arg1 xname */
	PS_NB_D_USBNET_RETURN,     /* usbnet_detach return: arg2 rv */
	PS_NB_D_IFDETACH_ENTRY,    /* if_detach entry: arg1 ifname */
	PS_NB_D_IFDETACH_RETURN,   /* if_detach return */
	PS_NB_D_PSREF_ENTRY,       /* psref_target_destroy entry: arg1 "ifnet" (the ifnet's own target), "ifaddr" (ifa_psref_class) or "other" */
	PS_NB_D_PSREF_RETURN,
	PS_NB_D_LCDRAIN_ENTRY,     /* localcount_drain entry */
	PS_NB_D_LCDRAIN_RETURN,
	PS_NB_D_ACQUIRE,           /* device_lookup_acquire return: arg1 xname ("-" = NULL), arg2 "cd_name/unit" */
	PS_NB_D_RELEASE,           /* device_release entry: arg1 xname */
	PS_NB_D_RELEASE_RETURN,    /* device_release return: no frame */
	PS_NB_D_PIPE_ABORT_START,  /* sdt usb:device:pipe:abort-start */
	PS_NB_D_PIPE_ABORT_DONE,   /* sdt usb:device:pipe:abort-done */
	PS_NB_D_XFER,              /* other usbdi SDT probes: counted, not framed */
	PS_NB_D_COMMIT,            /* config_detach_commit entry: arg1 xname */
	PS_NB_D_DEVFREE,           /* config_devfree entry: arg1 xname (the softc goes) */
	PS_NB_D_ETHER_IFDETACH,    /* ether_ifdetach entry: arg1 ifname */
	PS_NB_D_TASK_WAIT,         /* usb_rem_task_wait entry */
	PS_NB_D_IFREF_ACQUIRE,     /* if_get/if_get_byindex returned an ifnet with a psref: arg1 ifname, arg2 psref address */
	PS_NB_D_IFREF_RELEASE,     /* if_put: arg1 ifname, arg2 psref address */
	PS_NB_D_COUNT
};

struct ps_nb_dline {
	enum ps_nb_dkind kind;
	uint64_t ts_ns;
	uint64_t tid;
	char arg1[48];
	char arg2[48];
};

/* Event names as the D script prints them, indexed by enum ps_nb_dkind. */
extern const char *const ps_nb_devent_names[PS_NB_D_COUNT];

/* 1 = parsed; 0 = not a PS line (dtrace chatter, ignore); -1 = malformed (err says why). */
int ps_nb_parse_dline(const char *line, struct ps_nb_dline *out, char *err, size_t errlen);

/* What the agent learned about a device from drvctl get-properties and getifaddrs. */
struct ps_nb_devinfo {
	char serial[32];
	char mac[18];
	char port[48];
};

#define PS_NB_MAX_DEVS 32
#define PS_NB_MAX_THREADS 16
/* Frames per thread. A call whose return is never seen (fbt makes no return
 * probe for a function that ends in a tail call, as later -current's
 * config_detach does) must not grow a stack: a return pops every frame
 * above its own entry, a full stack drops its oldest frame, and a full
 * thread table reuses the thread seen least recently. */
#define PS_NB_DEPTH 8

struct ps_nb_dev {
	int used;
	int present;
	char name[24];
	char parent[24];
	uint32_t instance;
	struct ps_nb_devinfo info;
	/* drvctl reported the attach before ca_attach ran: the device's serial
	 * and MAC are not known yet, so ATTACH_BEGIN waits (with this time) for
	 * the interface to arrive, for its detach, or for ps_nb_flush_attach. */
	int attach_held;
	uint64_t attach_ts;
	/* config_devfree seen since this detach began. */
	int freed;
	/* Without a config_devfree probe: the free inferred at config_detach's
	 * return, held while a sleeper in config_detach_enter (whose deviter
	 * defers it) has not returned. */
	int free_held;
	ps_frame_t held_free;
	/* A DETACH_END was sent for the current detach (drvctl or return). */
	int detach_ended;
	/* drvctl's device-detach and what DTrace saw after it in the kernel
	 * (the free, config_detach's return) reach the agent on different
	 * channels, in either order. The kernel's order is report, free,
	 * return: whichever comes first waits (up to PS_NB_JOIN_NS) for the
	 * other, and the report is stamped no later than the first of them. */
	int reported;
	int rep_held;
	uint64_t rep_ts, rep_seen_ns;
	int npost;
	ps_frame_t post[2];
	uint64_t post_seen_ns;
};

#define PS_NB_JOIN_NS 2000000000ull

struct ps_nb_thread {
	uint64_t tid;
	int depth;
	/* What this thread is inside of, innermost last: device names for
	 * config_detach / usbnet_detach, ifnames for if_detach. */
	char stack[PS_NB_DEPTH][24];
	enum ps_nb_dkind what[PS_NB_DEPTH];
	/* Per frame: a config_detach that is waiting in config_detach_enter for
	 * another thread's detach of the same device (it will return ENOENT);
	 * a usbnet_detach whose if_detach already returned. */
	uint8_t waiter[PS_NB_DEPTH];
	uint8_t past_if_detach[PS_NB_DEPTH];
	unsigned long flags[PS_NB_DEPTH];   /* config_detach's flags, for a waiter that takes over */
	uint64_t last_ts;
};

/* Which probes the running D script really has (backend: from `dtrace -l`). */
struct ps_nb_probes {
	int detach_return;   /* fbt::config_detach:return: DETACH_END and FREE from it */
	int devfree;         /* fbt::config_devfree:entry: FREE when it happens, deferred frees seen */
	int ifnet_refs;      /* if_get/if_put: kernel ifnet references */
};

struct ps_nb_state {
	/* With DTrace the detach phases come from fbt; drvctl then only names
	 * devices and carries their properties. */
	int have_dtrace;
	/* drvctl is open: its device-detach report will come (default 1). */
	int have_drvctl;
	struct ps_nb_probes probes;
	struct ps_nb_dev devs[PS_NB_MAX_DEVS];
	struct ps_nb_thread threads[PS_NB_MAX_THREADS];
	uint32_t next_instance;
	uint64_t xfer_events;
	uint64_t unattributed;
	/* Entries whose return never came (tail calls, or a script started
	 * mid-call), dropped from a thread's stack. */
	uint64_t unreturned;
	/* Kernel events the agent knows or suspects it lost (Heartbeat.events_lost):
	 * drvctl queue drops inferred from impossible sequences, and routing
	 * messages the kernel dropped (ENOBUFS, with SO_RERROR). */
	uint64_t events_lost;
	uint64_t route_lost, route_lost_told;
	/* The agent's clock at the event being handled (join timeouts). */
	uint64_t clock_ns;
};

/* Without DTrace; or with DTrace and every probe (ps_nb_set_probes narrows it). */
void ps_nb_init(struct ps_nb_state *s, int have_dtrace);
void ps_nb_set_probes(struct ps_nb_state *s, const struct ps_nb_probes *p);
/* The result of a detach the agent asked for (DRVDETACHDEV): without a
 * config_detach return probe it is the only word on a vetoed detach. */
int ps_nb_detach_result(struct ps_nb_state *s, const char *device, int error, uint64_t ts_ns, ps_frame_t *out, int max);
/* Emits what waited too long for its other half (see ps_nb_dev.reported);
 * now_ns is the agent's clock; returns frames written. */
int ps_nb_flush_joins(struct ps_nb_state *s, uint64_t now_ns, ps_frame_t *out, int max);
/* Earliest time ps_nb_flush_joins has work, or UINT64_MAX. */
uint64_t ps_nb_next_join(const struct ps_nb_state *s);
/* recv on the routing socket said ENOBUFS: the kernel dropped messages. */
void ps_nb_route_overflow(struct ps_nb_state *s);
/* A WARN Log frame when routing messages were lost since the last one; 0 otherwise. */
int ps_nb_loss_log(struct ps_nb_state *s, ps_frame_t *out, int max);
/* Depth of a thread's stack (tests: the bound holds). */
int ps_nb_thread_depth(struct ps_nb_state *s, uint64_t tid);
/* "cdce12" -> "cdce"; empty if the name has no driver prefix. */
void ps_nb_driver_of(const char *xname, char *out, size_t cap);
struct ps_nb_dev *ps_nb_find(struct ps_nb_state *s, const char *name);

/* drvctl event ("device-attach" / "device-detach") to frames; returns how many
 * (<= max), or -1 for an unknown event name. info may be NULL. ts_ns is the
 * guest time to stamp (0 = now at emit). device-attach makes no frame: its
 * ATTACH_BEGIN is held (see attach_held). */
int ps_nb_drvctl_frames(struct ps_nb_state *s, const char *event, const char *device, const char *parent,
			const struct ps_nb_devinfo *info, uint64_t ts_ns, ps_frame_t *out, int max);
/* The agent's clock now, before handing over an event (join timeouts). */
void ps_nb_set_clock(struct ps_nb_state *s, uint64_t now_ns);
/* RTM_IFANNOUNCE: arrival != 0 is IFAN_ARRIVAL, else IFAN_DEPARTURE. On
 * arrival, info (may be NULL) is what the device's properties say now. */
int ps_nb_ifannounce_frames(struct ps_nb_state *s, const char *ifname, int arrival, const struct ps_nb_devinfo *info,
			    uint64_t ts_ns, ps_frame_t *out, int max);
/* Emits a held ATTACH_BEGIN now (an attach that never produced an interface);
 * 0 if none is held. */
int ps_nb_flush_attach(struct ps_nb_state *s, const char *device, ps_frame_t *out, int max);
/* A parsed D line to frames (0 when the line only updates state). */
int ps_nb_dline_frames(struct ps_nb_state *s, const struct ps_nb_dline *d, ps_frame_t *out, int max);
#endif
