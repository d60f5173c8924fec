/* Drives netbsd/nb_probes.c: which groups of a D script survive a kernel's
 * probe list, what the agent then claims, and the script it would run
 * (test/netbsd/probes.test.ts).
 *   nb-probes-tool SCRIPT.d LIST [DTRACE-STDERR]
 * LIST is `dtrace -l` output ("-" for none: DTrace did not start);
 * DTRACE-STDERR, if given, is a compile error to drop the group it names.
 * Prints "group NAME present|missing [WHY]", "cap NAME", "unavailable TEXT",
 * "probes return=R devfree=F ifrefs=I", "dropped NAME", then "script:" and
 * the composed script. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netbsd/nb_probes.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(2);
	}
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *copy = malloc(n + 1);
	if (!copy)
		exit(2);
	memcpy(copy, buf, n + 1);
	return copy;
}

static const char *cap_name(plugstorm_telemetry_v1_Capability c)
{
	switch (c) {
	case plugstorm_telemetry_v1_Capability_CAPABILITY_DETACH_PHASES: return "DETACH_PHASES";
	case plugstorm_telemetry_v1_Capability_CAPABILITY_FREE: return "FREE";
	case plugstorm_telemetry_v1_Capability_CAPABILITY_KERNEL_REFS: return "KERNEL_REFS";
	default: return "?";
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: nb-probes-tool SCRIPT.d LIST|- [DTRACE-STDERR]\n");
		return 2;
	}
	static struct ps_nb_dscript ds;
	static struct ps_nb_probe_set set;
	char err[160];
	if (ps_nb_dscript_parse(slurp(argv[1]), &ds, err, sizeof err) != 0) {
		fprintf(stderr, "%s: %s\n", argv[1], err);
		return 1;
	}
	int running = strcmp(argv[2], "-") != 0;
	if (running)
		ps_nb_parse_dtrace_list(slurp(argv[2]), &set);
	ps_nb_plan(&ds, &set);
	static char script[1 << 17];
	if (ps_nb_compose(&ds, script, sizeof script) < 0)
		return 3;
	if (argc > 3) {
		const char *e = slurp(argv[3]);
		struct ps_nb_group *g = ps_nb_group_at_line(&ds, ps_nb_error_line(e));
		if (g) {
			g->present = 0;
			snprintf(g->why, sizeof g->why, "compile error");
			printf("dropped %s\n", g->name);
			if (ps_nb_compose(&ds, script, sizeof script) < 0)
				return 3;
		}
	}
	for (int i = 0; i < ds.ngroups; i++)
		printf("group %s %s%s%s\n", ds.g[i].name, ds.g[i].present ? "present" : "missing", ds.g[i].why[0] ? " " : "", ds.g[i].why);
	struct ps_nb_claims c;
	ps_nb_claims(&ds, running, &c);
	for (int i = 0; i < c.ncaps; i++)
		printf("cap %s\n", cap_name(c.caps[i]));
	for (int i = 0; i < c.nunavailable; i++)
		printf("unavailable %s\n", c.unavailable[i]);
	printf("probes return=%d devfree=%d ifrefs=%d dtrace=%d commit=%d\n", c.probes.detach_return, c.probes.devfree, c.probes.ifnet_refs, c.have_dtrace, c.commit_point);
	printf("script:\n%s", script);
	return 0;
}
