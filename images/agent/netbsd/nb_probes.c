/* See nb_probes.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_probes.h"

static int is_desc_char(int c)
{
	return isalnum(c) || c == '_' || c == '-' || c == ':';
}

/* "prov:mod:func:name" with optional trailing comma: the probe, or 0. */
static int probe_line(const char *line, size_t n, char *out, size_t cap)
{
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == ','))
		n--;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	int colons = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_desc_char((unsigned char)line[i]))
			return 0;
		colons += line[i] == ':';
	}
	if (colons != 3 || n == 0 || n >= cap)
		return 0;
	memcpy(out, line, n);
	out[n] = '\0';
	return 1;
}

static int group_marker(const char *line, size_t n, char *name, size_t cap)
{
	if (n < 7 || strncmp(line, "/*@ ", 4) != 0 || strncmp(line + n - 3, " */", 3) != 0)
		return 0;
	size_t len = n - 7;
	if (len == 0 || len >= cap)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)line[4 + i]) || line[4 + i] == '-'))
			return 0;
	memcpy(name, line + 4, len);
	name[len] = '\0';
	return 1;
}

int ps_nb_dscript_parse(const char *text, struct ps_nb_dscript *ds, char *err, size_t errlen)
{
	memset(ds, 0, sizeof(*ds));
	ds->text = text;
	ds->preamble_len = strlen(text);
	struct ps_nb_group *g = NULL;
	int depth = 0, in_comment = 0, lineno = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		lineno++;
		char name[24];
		if (!in_comment && depth == 0 && group_marker(p, n, name, sizeof name)) {
			if (ds->ngroups == PS_NB_MAX_GROUPS) {
				snprintf(err, errlen, "line %d: more than %d groups", lineno, PS_NB_MAX_GROUPS);
				return -1;
			}
			for (int i = 0; i < ds->ngroups; i++)
				if (strcmp(ds->g[i].name, name) == 0) {
					snprintf(err, errlen, "line %d: group \"%s\" appears twice", lineno, name);
					return -1;
				}
			if (g)
				g->len = (size_t)(p - text) - g->off;
			else
				ds->preamble_len = (size_t)(p - text);
			g = &ds->g[ds->ngroups++];
			PS_SET(g->name, name);
			g->off = (size_t)(p - text);
		} else {
			/* Probe descriptions stand at depth 0, outside comments. */
			char clean[256];
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				if (in_comment) {
					if (p[i] == '*' && i + 1 < n && p[i + 1] == '/') {
						in_comment = 0;
						i++;
					}
					continue;
				}
				if (p[i] == '/' && i + 1 < n && p[i + 1] == '*') {
					in_comment = 1;
					i++;
					continue;
				}
				if (p[i] == '{')
					depth++;
				else if (p[i] == '}')
					depth--;
				else if (depth == 0 && k + 1 < sizeof clean)
					clean[k++] = p[i];
			}
			clean[k] = '\0';
			char desc[PS_NB_DESC];
			if (depth <= 1 && probe_line(clean, k, desc, sizeof desc)) {
				if (!g) {
					if (strncmp(desc, "dtrace:::", 9) != 0) {
						snprintf(err, errlen, "line %d: probe %s is outside any group", lineno, desc);
						return -1;
					}
				} else if (g->nprobes == PS_NB_GROUP_PROBES) {
					snprintf(err, errlen, "line %d: group %s has more than %d probes", lineno, g->name, PS_NB_GROUP_PROBES);
					return -1;
				} else {
					int dup = 0;
					for (int i = 0; i < g->nprobes; i++)
						dup |= strcmp(g->probes[i], desc) == 0;
					if (!dup)
						PS_SET(g->probes[g->nprobes++], desc);
				}
			}
		}
		p += n + (e ? 1 : 0);
	}
	if (g)
		g->len = strlen(text) - g->off;
	for (int i = 0; i < ds->ngroups; i++)
		if (ds->g[i].nprobes == 0) {
			snprintf(err, errlen, "group %s has no probe", ds->g[i].name);
			return -1;
		}
	return 0;
}

int ps_nb_parse_dtrace_list(const char *out, struct ps_nb_probe_set *set)
{
	int found = 0;
	for (const char *p = out; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char line[256];
		if (n >= sizeof line)
			n = sizeof line - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		p += (e ? (size_t)(e - p) + 1 : strlen(p));
		char f[5][PS_NB_DESC];
		int nf = 0;
		for (char *tok = strtok(line, " \t\r"); tok && nf < 5; tok = strtok(NULL, " \t\r"))
			PS_SET(f[nf++], tok);
		/* "ID PROVIDER MODULE FUNCTION NAME"; the header has ID first. */
		if (nf != 5 || !isdigit((unsigned char)f[0][0]))
			continue;
		if (set->n == PS_NB_MAX_LISTED)
			break;
		snprintf(set->p[set->n++], PS_NB_DESC, "%.15s:%.15s:%.48s:%.15s", f[1], f[2], f[3], f[4]);
		found++;
	}
	return found;
}

static int field_match(const char *want, size_t wn, const char *have, size_t hn)
{
	return wn == 0 || (wn == hn && memcmp(want, have, wn) == 0);
}

int ps_nb_probe_exists(const struct ps_nb_probe_set *set, const char *desc)
{
	const char *w[4];
	size_t wl[4];
	const char *q = desc;
	for (int i = 0; i < 4; i++) {
		const char *c = i < 3 ? strchr(q, ':') : q + strlen(q);
		if (!c)
			return 0;
		w[i] = q;
		wl[i] = (size_t)(c - q);
		q = c + 1;
	}
	for (int k = 0; k < set->n; k++) {
		const char *h = set->p[k];
		int ok = 1;
		for (int i = 0; i < 4 && ok; i++) {
			const char *c = i < 3 ? strchr(h, ':') : h + strlen(h);
			if (!c)
				return 0;
			ok = field_match(w[i], wl[i], h, (size_t)(c - h));
			h = c + 1;
		}
		if (ok)
			return 1;
	}
	return 0;
}

void ps_nb_plan(struct ps_nb_dscript *ds, const struct ps_nb_probe_set *set)
{
	for (int i = 0; i < ds->ngroups; i++) {
		struct ps_nb_group *g = &ds->g[i];
		g->present = 1;
		g->why[0] = '\0';
		for (int k = 0; k < g->nprobes; k++)
			if (!ps_nb_probe_exists(set, g->probes[k])) {
				g->present = 0;
				snprintf(g->why, sizeof g->why, "%s missing", g->probes[k]);
				break;
			}
	}
}

long ps_nb_compose(struct ps_nb_dscript *ds, char *out, size_t cap)
{
	size_t n = 0;
	int line = 1;
	if (ds->preamble_len + 1 > cap)
		return -1;
	memcpy(out, ds->text, ds->preamble_len);
	n = ds->preamble_len;
	for (size_t i = 0; i < n; i++)
		line += out[i] == '\n';
	for (int i = 0; i < ds->ngroups; i++) {
		struct ps_nb_group *g = &ds->g[i];
		g->first_line = g->last_line = 0;
		if (!g->present)
			continue;
		if (n + g->len + 2 > cap)
			return -1;
		memcpy(out + n, ds->text + g->off, g->len);
		g->first_line = line;
		for (size_t k = 0; k < g->len; k++)
			line += ds->text[g->off + k] == '\n';
		g->last_line = line - 1;
		n += g->len;
	}
	out[n] = '\0';
	return (long)n;
}

struct ps_nb_group *ps_nb_group_at_line(struct ps_nb_dscript *ds, int line)
{
	for (int i = 0; i < ds->ngroups; i++) {
		struct ps_nb_group *g = &ds->g[i];
		if (g->present && line >= g->first_line && line <= g->last_line)
			return g;
	}
	return NULL;
}

int ps_nb_error_line(const char *err)
{
	const char *p = strstr(err, "line ");
	while (p) {
		char *end;
		long v = strtol(p + 5, &end, 10);
		if (end != p + 5 && *end == ':' && v > 0 && v < 1000000)
			return (int)v;
		p = strstr(p + 5, "line ");
	}
	return 0;
}

static const struct ps_nb_group *group(const struct ps_nb_dscript *ds, const char *name)
{
	for (int i = 0; i < ds->ngroups; i++)
		if (strcmp(ds->g[i].name, name) == 0)
			return &ds->g[i];
	return NULL;
}

static int has(const struct ps_nb_dscript *ds, int running, const char *name)
{
	const struct ps_nb_group *g = group(ds, name);
	return running && g && g->present;
}

static void why_not(const struct ps_nb_dscript *ds, int running, struct ps_nb_claims *c, const char *cap, const char *name)
{
	const struct ps_nb_group *g = group(ds, name);
	if (c->nunavailable == 6)
		return;
	snprintf(c->unavailable[c->nunavailable++], sizeof c->unavailable[0], "%.14s: %.78s", cap,
		 !running ? "DTrace did not start" : !g ? "no such group in plugstorm.d" : g->why);
}

void ps_nb_claims(const struct ps_nb_dscript *ds, int running, struct ps_nb_claims *c)
{
	memset(c, 0, sizeof(*c));
	int detach = has(ds, running, "detach"), ifdetach = has(ds, running, "ifdetach");
	c->have_dtrace = detach;
	c->probes.detach_return = detach && has(ds, running, "detach-return");
	c->probes.devfree = detach && has(ds, running, "devfree");
	c->probes.ifnet_refs = has(ds, running, "ifnet-refs");
	if (detach && ifdetach)
		c->caps[c->ncaps++] = plugstorm_telemetry_v1_Capability_CAPABILITY_DETACH_PHASES;
	else
		why_not(ds, running, c, "DETACH_PHASES", !detach ? "detach" : "ifdetach");
	if (c->probes.detach_return || c->probes.devfree)
		c->caps[c->ncaps++] = plugstorm_telemetry_v1_Capability_CAPABILITY_FREE;
	else
		why_not(ds, running, c, "FREE", !detach ? "detach" : "detach-return");
	/* COMMIT, DETACH_WAIT, DETACH_REPORTED and `deferred`: the commit is
	 * probed; the report needs drvctl, which the backend adds. DETACH_STEPS
	 * is not claimed: two of usbnet_detach's six steps are seen, and no
	 * usb_task references. */
	c->commit_point = detach && has(ds, running, "commit");
	/* device_lookup_acquire sees device-node opens, which USB NICs do not
	 * have: only the ifnet psrefs count as kernel references of a NIC. */
	if (c->probes.ifnet_refs)
		c->caps[c->ncaps++] = plugstorm_telemetry_v1_Capability_CAPABILITY_KERNEL_REFS;
	else
		why_not(ds, running, c, "KERNEL_REFS", "ifnet-refs");
}
