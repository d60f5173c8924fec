/* Which DTrace probes the guest kernel really has, and so what the agent may
 * claim. OS-neutral (tested on Linux through tools/nb_probes_tool.c):
 *   - cuts images/netbsd/plugstorm.d into its groups ("@ name" comment lines)
 *     and lists each group's probe descriptions;
 *   - parses `dtrace -l` output into the set of probes that exist;
 *   - keeps the groups whose probes all exist, composes the script to run
 *     from them, and derives the capabilities, the probe flags for
 *     nb_events and the "unavailable" reasons for the Hello;
 *   - maps a compile error's line back to its group, so that group alone is
 *     dropped and the rest still runs. */
#ifndef PS_NB_PROBES_H
#define PS_NB_PROBES_H
#include <stddef.h>

#include "core/agent.h"
#include "netbsd/nb_events.h"

#define PS_NB_MAX_GROUPS 24
#define PS_NB_GROUP_PROBES 8
#define PS_NB_DESC 100
#define PS_NB_MAX_LISTED 256

struct ps_nb_group {
	char name[24];
	size_t off, len;                    /* the group's text in the script */
	int nprobes;
	char probes[PS_NB_GROUP_PROBES][PS_NB_DESC];
	int present;
	char why[96];                       /* when not present */
	int first_line, last_line;          /* in the composed script, 1-based */
};

struct ps_nb_dscript {
	const char *text;
	size_t preamble_len;
	int ngroups;
	struct ps_nb_group g[PS_NB_MAX_GROUPS];
};

/* Probes that exist, "provider:module:function:name". */
struct ps_nb_probe_set {
	int n;
	char p[PS_NB_MAX_LISTED][PS_NB_DESC];
};

/* 0, or -1 with err saying what is wrong and on which line. text must outlive ds. */
int ps_nb_dscript_parse(const char *text, struct ps_nb_dscript *ds, char *err, size_t errlen);
/* Adds the probes of `dtrace -l` output to set; returns how many lines were probes. */
int ps_nb_parse_dtrace_list(const char *out, struct ps_nb_probe_set *set);
/* Whether a description (empty fields match anything) names an existing probe. */
int ps_nb_probe_exists(const struct ps_nb_probe_set *set, const char *desc);
/* Marks each group present or not (and why). */
void ps_nb_plan(struct ps_nb_dscript *ds, const struct ps_nb_probe_set *set);
/* Drops a group after the fact (a compile error in it); returns it, or NULL. */
struct ps_nb_group *ps_nb_group_at_line(struct ps_nb_dscript *ds, int line);
/* Writes the preamble and the present groups to out; returns the length, or
 * -1 when out is too small. Sets each group's line range. */
long ps_nb_compose(struct ps_nb_dscript *ds, char *out, size_t cap);
/* The line number in a dtrace compile error ("... line 57: ..."), or 0. */
int ps_nb_error_line(const char *dtrace_stderr);

struct ps_nb_claims {
	int ncaps;
	plugstorm_telemetry_v1_Capability caps[4];
	/* config_detach_commit is probed: with drvctl's report (the backend
	 * knows whether /dev/drvctl opened) that is CAPABILITY_COMMIT_POINT. */
	int commit_point;
	struct ps_nb_probes probes;
	int have_dtrace;                    /* the detach group runs */
	int nunavailable;
	char unavailable[6][96];
};
/* What the present groups let the agent claim; running says whether dtrace
 * itself came up (with no groups it claims nothing). */
void ps_nb_claims(const struct ps_nb_dscript *ds, int running, struct ps_nb_claims *c);
#endif
