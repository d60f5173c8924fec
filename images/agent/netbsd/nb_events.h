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
	PS_NB_D_PSREF_ENTRY,       /* psref_target_destroy entry */
	PS_NB_D_PSREF_RETURN,
	PS_NB_D_LCDRAIN_ENTRY,     /* localcount_drain entry */
	PS_NB_D_LCDRAIN_RETURN,
	PS_NB_D_ACQUIRE,           /* device_lookup_acquire return: arg1 xname ("-" = NULL), arg2 "cd_name/unit" */
	PS_NB_D_RELEASE,           /* device_release entry: arg1 xname */
	PS_NB_D_RELEASE_RETURN,    /* device_release return: no frame */
	PS_NB_D_PIPE_ABORT_START,  /* sdt usb:device:pipe:abort-start */
	PS_NB_D_PIPE_ABORT_DONE,   /* sdt usb:device:pipe:abort-done */
	PS_NB_D_XFER,              /* other usbdi SDT probes: counted, not framed */
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
};

struct ps_nb_thread {
	uint64_t tid;
	int depth;
	/* What this thread is inside of, innermost last: device names for
	 * config_detach / usbnet_detach, ifnames for if_detach. */
	char stack[PS_NB_DEPTH][24];
	enum ps_nb_dkind what[PS_NB_DEPTH];
};

struct ps_nb_state {
	/* With DTrace the detach phases come from fbt; drvctl then only names
	 * devices and carries their properties. */
	int have_dtrace;
	struct ps_nb_dev devs[PS_NB_MAX_DEVS];
	struct ps_nb_thread threads[PS_NB_MAX_THREADS];
	uint32_t next_instance;
	uint64_t xfer_events;
	uint64_t unattributed;
};

void ps_nb_init(struct ps_nb_state *s, int have_dtrace);
/* "cdce12" -> "cdce"; empty if the name has no driver prefix. */
void ps_nb_driver_of(const char *xname, char *out, size_t cap);
struct ps_nb_dev *ps_nb_find(struct ps_nb_state *s, const char *name);

/* drvctl event ("device-attach" / "device-detach") to frames; returns how many
 * (<= max), or -1 for an unknown event name. info may be NULL. ts_ns is the
 * guest time to stamp (0 = now at emit). device-attach makes no frame: its
 * ATTACH_BEGIN is held (see attach_held). */
int ps_nb_drvctl_frames(struct ps_nb_state *s, const char *event, const char *device, const char *parent,
			const struct ps_nb_devinfo *info, uint64_t ts_ns, ps_frame_t *out, int max);
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
