/* Drives the OS-neutral half of the NetBSD backend (netbsd/nb_events.c) from a
 * script on stdin and writes the frames it makes, framed (proto/FRAMING.md), on
 * stdout, so the host's own decoder checks them (test/netbsd/agent-parse.test.ts).
 *   dtrace 0|1                          reset the state, with or without DTrace
 *   D <plugstorm.d output line>         a line of the D script
 *   E <event> <device> <parent> <serial|-> <mac|->   a drvctl event
 *   I arrival|departure <ifname>        an RTM_IFANNOUNCE message
 *   probes <return> <devfree> <ifrefs>  which probes DTrace has (0|1 each)
 *   R <device> <errno>                  a DRVDETACHDEV the agent made returned
 *   depth <tid>                         prints "depth <tid> <n>" on stderr
 *   clock <ns>                          the agent's clock from now on
 *   flush                               emits what waited too long to join
 *   overflow                            recv on the routing socket said ENOBUFS
 *   tick                                the backend's tick: a loss Log if any
 * drvctl events are stamped 500 ns, routing messages 600 ns, results 700 ns.
 * Malformed input: "line N: why" on stderr, exit status 1 at the end. */
#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/framing.h"
#include "netbsd/nb_events.h"

static uint64_t seq;

static void put(const ps_frame_t *frames, int n)
{
	for (int i = 0; i < n; i++) {
		ps_frame_t f = frames[i];
		uint8_t buf[PS_MAX_PAYLOAD], out[PS_MAX_ENCODED + 1];
		f.seq = ++seq;
		pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof(buf));
		if (!pb_encode(&os, plugstorm_telemetry_v1_Frame_fields, &f)) {
			fprintf(stderr, "encode failed: %s\n", PB_GET_ERROR(&os));
			continue;
		}
		size_t w = ps_frame_encode(buf, os.bytes_written, out);
		fwrite(out, 1, w, stdout);
	}
}

static const char *dash(const char *s) { return strcmp(s, "-") == 0 ? "" : s; }

int main(void)
{
	static struct ps_nb_state st;
	char line[512];
	int lineno = 0, bad = 0;
	ps_nb_init(&st, 1);
	while (fgets(line, sizeof(line), stdin)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		ps_frame_t fr[4];
		int n = 0;
		if (strncmp(line, "dtrace ", 7) == 0) {
			ps_nb_init(&st, line[7] == '1');
		} else if (strncmp(line, "probes ", 7) == 0) {
			struct ps_nb_probes p;
			if (sscanf(line + 7, "%d %d %d", &p.detach_return, &p.devfree, &p.ifnet_refs) != 3) {
				fprintf(stderr, "line %d: probes needs three 0|1 values\n", lineno);
				bad = 1;
				continue;
			}
			ps_nb_set_probes(&st, &p);
		} else if (strncmp(line, "R ", 2) == 0) {
			char dev[32];
			int err;
			if (sscanf(line + 2, "%31s %d", dev, &err) != 2) {
				fprintf(stderr, "line %d: R needs device errno\n", lineno);
				bad = 1;
				continue;
			}
			n = ps_nb_detach_result(&st, dev, err, 700, fr, 4);
		} else if (strncmp(line, "clock ", 6) == 0) {
			ps_nb_set_clock(&st, strtoull(line + 6, NULL, 10));
		} else if (strcmp(line, "flush") == 0) {
			n = ps_nb_flush_joins(&st, st.clock_ns, fr, 4);
		} else if (strcmp(line, "overflow") == 0) {
			ps_nb_route_overflow(&st);
		} else if (strcmp(line, "tick") == 0) {
			n = ps_nb_loss_log(&st, fr, 4);
		} else if (strncmp(line, "depth ", 6) == 0) {
			unsigned long long tid = strtoull(line + 6, NULL, 10);
			fprintf(stderr, "depth %llu %d\n", tid, ps_nb_thread_depth(&st, tid));
		} else if (strncmp(line, "D ", 2) == 0) {
			struct ps_nb_dline d;
			char err[128];
			int r = ps_nb_parse_dline(line + 2, &d, err, sizeof(err));
			if (r < 0) {
				fprintf(stderr, "line %d: %s\n", lineno, err);
				bad = 1;
			} else if (r > 0) {
				n = ps_nb_dline_frames(&st, &d, fr, 4);
			}
		} else if (strncmp(line, "E ", 2) == 0) {
			char ev[32], dev[32], par[32], ser[40], mac[24];
			if (sscanf(line + 2, "%31s %31s %31s %39s %23s", ev, dev, par, ser, mac) != 5) {
				fprintf(stderr, "line %d: E needs event device parent serial mac\n", lineno);
				bad = 1;
				continue;
			}
			struct ps_nb_devinfo info = { { 0 } };
			PS_SET(info.serial, dash(ser));
			PS_SET(info.mac, dash(mac));
			n = ps_nb_drvctl_frames(&st, ev, dev, par, &info, 500, fr, 4);
			if (n < 0) {
				fprintf(stderr, "line %d: unknown drvctl event \"%s\"\n", lineno, ev);
				bad = 1;
				n = 0;
			}
		} else if (strncmp(line, "I ", 2) == 0) {
			char what[16], ifn[32];
			if (sscanf(line + 2, "%15s %31s", what, ifn) != 2) {
				fprintf(stderr, "line %d: I needs arrival|departure ifname\n", lineno);
				bad = 1;
				continue;
			}
			n = ps_nb_ifannounce_frames(&st, ifn, strcmp(what, "arrival") == 0, NULL, 600, fr, 4);
		} else if (line[0]) {
			fprintf(stderr, "line %d: unknown directive\n", lineno);
			bad = 1;
		}
		put(fr, n);
	}
	fprintf(stderr, "unattributed %llu usbdi %llu unreturned %llu lost %llu\n", (unsigned long long)st.unattributed,
		(unsigned long long)st.xfer_events, (unsigned long long)st.unreturned, (unsigned long long)st.events_lost);
	fflush(stdout);
	return bad;
}
