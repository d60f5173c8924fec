/* plugstorm-agent: reports what the guest kernel does to hot-plugged NICs over
 * the telemetry channel (proto/FRAMING.md), and carries out host commands. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agent.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: plugstorm-agent [--transport stdio|PATH] [--backend none|linux|netbsd] [-v]\n"
		"                       [--transport-note TEXT] [--console PATH] [--dtrace-deadline SECONDS]\n"
		"  --transport stdio   frames on stdout, commands on stdin; EOF on stdin ends the agent\n"
		"  --transport PATH    a character device such as /dev/vport0p1 (reopened if absent)\n"
		"  --backend none      observe nothing (protocol tests)\n"
		"  --backend linux     uevents, kprobes on the usbnet/netdev paths, AF_PACKET references\n"
		"  --backend netbsd    drvctl events, routing socket, DTrace (plugstorm.d), bpf references\n"
		"  --transport-note    why this transport was chosen (logged to the host)\n"
		"  --console PATH      also write start-up findings there (e.g. /dev/console)\n"
		"  --dtrace-deadline   seconds to wait for DTrace to enable its probes (default 300)\n");
}

int main(int argc, char **argv)
{
	struct ps_agent_config cfg = {
		.transport = "stdio",
		/* Generous: under TCG on a busy host the runner can go seconds
		 * without reading, and a dropped frame is a lost kernel event the
		 * checker then misreads as a lost detach. */
		.frame_deadline_ns = 20000000000ull,
		.stall_ns = 30000000000ull,
		.dtrace_deadline_ns = 300ull * 1000000000ull,
		.lying_poll_interval_ns = 20000000ull,
#if defined(__linux__)
		.backend = &ps_backend_linux,
#elif defined(__NetBSD__)
		.backend = &ps_backend_netbsd,
#else
		.backend = &ps_backend_none,
#endif
	};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc) {
			cfg.transport = argv[++i];
		} else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
			const char *b = argv[++i];
			if (strcmp(b, "none") == 0)
				cfg.backend = &ps_backend_none;
#ifdef __linux__
			else if (strcmp(b, "linux") == 0)
				cfg.backend = &ps_backend_linux;
#endif
#ifdef __NetBSD__
			else if (strcmp(b, "netbsd") == 0)
				cfg.backend = &ps_backend_netbsd;
#endif
			else {
				fprintf(stderr, "plugstorm-agent: unknown backend \"%s\"\n", b);
				usage(stderr);
				return 2;
			}
		} else if (strcmp(argv[i], "--transport-note") == 0 && i + 1 < argc) {
			cfg.transport_note = argv[++i];
		} else if (strcmp(argv[i], "--console") == 0 && i + 1 < argc) {
			cfg.console = argv[++i];
		} else if (strcmp(argv[i], "--dtrace-deadline") == 0 && i + 1 < argc) {
			char *end;
			const char *v = argv[++i];
			unsigned long secs = strtoul(v, &end, 10);
			if (*v == '\0' || *end != '\0' || secs == 0 || secs > 86400) {
				fprintf(stderr, "plugstorm-agent: --dtrace-deadline expects whole seconds from 1 to 86400, got \"%s\"\n", v);
				return 2;
			}
			cfg.dtrace_deadline_ns = (uint64_t)secs * 1000000000ull;
		} else if (strcmp(argv[i], "-v") == 0) {
			cfg.verbose = 1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "plugstorm-agent: bad argument \"%s\"\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	return ps_agent_run(&cfg);
}
