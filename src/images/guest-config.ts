// The files the NetBSD guest kit writes into the image: rc.conf, the agent's
// rc.d services, the console settings, fstab, and the PLUGSTORM kernel config.
// Pure text generation, so tests read exactly what a guest boots with.

export type NetbsdTelemetry = "com1" | "viocon";

export interface GuestConfigOptions {
  hostname?: string;
  /**
   * com1 (/dev/tty01, any release), or viocon: the agent then talks on
   * /dev/ttyVI00 only if the booted kernel attached viocon0 (dmesg), and on
   * com1 otherwise, saying which on the console (see README "Telemetry device").
   */
  telemetry: NetbsdTelemetry;
  /** Root disk as the kernel names it: ld0 (virtio-blk) or wd0 (IDE). */
  rootDisk: "ld0" | "wd0";
  /** Load if_cdce.kmod at boot (a PLUGSTORM kernel has no built-in cdce). */
  loadCdceModule: boolean;
  /** Extra agent flags, e.g. "-v". */
  agentFlags?: string;
  /** Seconds the agent waits for DTrace to compile and enable its probes (CTF loading under TCG is slow). */
  dtraceDeadlineSeconds?: number;
}

/** Under TCG, loading CTF and enabling some 40 fbt probes took minutes, not seconds: a generous default. */
export const DEFAULT_DTRACE_DEADLINE_S = 300;
/**
 * Kernel modules for DTrace, in load order: NetBSD's provider modules are
 * dtrace_fbt and dtrace_sdt (sys/modules/dtrace/fbt and sdt set KMOD to
 * those names); there is no module called fbt or sdt.
 */
export const DTRACE_MODULES = ["solaris", "dtrace", "dtrace_fbt", "dtrace_sdt"] as const;
/**
 * Device nodes the agent needs besides its transport, with the MAKEDEV
 * target that makes each (etc/MAKEDEV.tmpl) and what is lost without it.
 */
export const AGENT_NODES = [
  { node: "/dev/drvctl", makedev: "drvctl", without: "no device attach/detach events (DEVICE_LIFECYCLE)" },
  { node: "/dev/bpf", makedev: "bpf", without: "no held references or traffic (AGENT_REFS, TRAFFIC)" },
  { node: "/dev/dtrace/dtrace", makedev: "dtrace", without: "no DTrace (DETACH_PHASES, KERNEL_REFS, FREE)" },
] as const;

export const AGENT_PATH = "/usr/local/sbin/plugstorm-agent";
export const AGENT_SRC_DIR = "/usr/src/plugstorm-agent";
export const DSCRIPT_PATH = "/usr/libdata/plugstorm/plugstorm.d";
/**
 * viocon(4)'s tty: NetBSD's viocon.c (from OpenBSD) makes minor (unit << 4) |
 * port under the `viocon` cdevsw, which OpenBSD's MAKEDEV names ttyVI<unit><port>;
 * NetBSD's MAKEDEV entry for it is UNCONFIRMED (images/netbsd/README.md), so
 * rc.d/plugstorm_agent runs MAKEDEV for it when /dev lacks the node, and
 * falls back to com1 when that makes none.
 */
export const VIOCON_NODE = "/dev/ttyVI00";
export const COM1_NODE = "/dev/tty01";

function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

export function rcConf(o: GuestConfigOptions): string {
  return [
    "# Written by plugstorm image netbsd.",
    "if [ -r /etc/defaults/rc.conf ]; then",
    "\t. /etc/defaults/rc.conf",
    "fi",
    "rc_configured=YES",
    `hostname=${shQuote(o.hostname ?? "plugstorm-netbsd")}`,
    "# Nothing on the network or the disk that a storm does not need.",
    "dhcpcd=NO",
    "sshd=NO",
    "postfix=NO",
    "cron=NO",
    "savecore=NO",
    "wscons=NO",
    "# The drvctl(4) event queue is one queue for every reader: devpubd would",
    "# take the device-attach/-detach events the agent must see.",
    "devpubd=NO",
    "# Compiles the agent with base cc on first boot (etc/rc.d/plugstorm_build).",
    "plugstorm_build=YES",
    "plugstorm_agent=YES",
    "# com1, or viocon: /dev/ttyVI00 when the kernel attached viocon0, else com1.",
    `plugstorm_telemetry=${o.telemetry}`,
    `plugstorm_dtrace_deadline=${o.dtraceDeadlineSeconds ?? DEFAULT_DTRACE_DEADLINE_S}`,
    `plugstorm_agent_flags=${shQuote(o.agentFlags ?? "")}`,
    `plugstorm_load_cdce=${o.loadCdceModule ? "YES" : "NO"}`,
    "",
  ].join("\n");
}

export function rcdAgent(): string {
  const nodes = AGENT_NODES.map((n) => `'${n.node}:${n.makedev}:${n.without.replaceAll(" ", "+")}'`).join(" ");
  return `#!/bin/sh
#
# plugstorm_agent: the plugstorm guest agent (telemetry to the host).
#
# PROVIDE: plugstorm_agent
# REQUIRE: plugstorm_build mountcritlocal
# BEFORE: LOGIN

$_rc_subr_loaded . /etc/rc.subr

name="plugstorm_agent"
rcvar=$name
command="${AGENT_PATH}"
pidfile="/var/run/\${name}.pid"
start_precmd="plugstorm_agent_precmd"
start_cmd="plugstorm_agent_start"
stop_cmd="plugstorm_agent_stop"

# Makes a device node with MAKEDEV when /dev (init's tmpfs, filled with
# MAKEDEV's "init" set) lacks it. The tmpfs hides the disk's /dev/MAKEDEV
# unless init copied it, hence the second place.
plugstorm_makedev()
{
	for mk in /dev/MAKEDEV /etc/MAKEDEV; do
		[ -r "$mk" ] && (cd /dev && sh "$mk" "$1") >/dev/null 2>&1 && return 0
	done
	return 1
}

# The telemetry device, and why: viocon only when this kernel attached
# viocon0 (its amd64 GENERIC line may not be in the release), else com1.
plugstorm_pick_transport()
{
	com1=\${plugstorm_com1_node:-${COM1_NODE}}
	viocon=\${plugstorm_viocon_node:-${VIOCON_NODE}}
	plugstorm_transport=$com1
	plugstorm_transport_why="com1: the image was built for com1"
	case "\${plugstorm_telemetry:-com1}" in
	viocon)
		if dmesg 2>/dev/null | grep -q '^viocon0 at' ||
		    grep -q '^viocon0 at' /var/run/dmesg.boot 2>/dev/null; then
			[ -c "$viocon" ] || plugstorm_makedev "\${viocon#/dev/}"
			if [ -c "$viocon" ]; then
				plugstorm_transport=$viocon
				plugstorm_transport_why="viocon: the kernel attached viocon0"
			else
				plugstorm_transport_why="com1: viocon0 attached but MAKEDEV made no $viocon"
			fi
		else
			plugstorm_transport_why="com1: this kernel has no viocon0 (its GENERIC may not configure it)"
		fi
		;;
	esac
	echo "plugstorm_agent: telemetry on \${plugstorm_transport} (\${plugstorm_transport_why})"
}

plugstorm_agent_precmd()
{
	if [ ! -x "$command" ]; then
		echo "plugstorm_agent: $command missing (see /var/log/plugstorm-build.log)"
		return 1
	fi
	# DTrace's modules (dtrace_fbt, dtrace_sdt: sys/modules/dtrace). A module
	# already loaded or built in says "File exists"; any other failure is
	# printed, and the agent reports what it cannot observe.
	for m in ${DTRACE_MODULES.join(" ")}; do
		out=$(modload $m 2>&1) || case "$out" in
		*"File exists"*) ;;
		*) echo "plugstorm_agent: modload $m failed: $out" ;;
		esac
	done
	# Nodes the agent needs: made explicitly, then checked. The agent still
	# starts without one and lists it in its Hello.
	for spec in ${nodes}; do
		node=\${spec%%:*}; rest=\${spec#*:}; target=\${rest%%:*}; without=\${rest#*:}
		[ -c "$node" ] || plugstorm_makedev "$target"
		if [ ! -c "$node" ]; then
			echo "plugstorm_agent: ERROR: no device node $node (MAKEDEV $target made none): $(echo "$without" | tr + ' ')"
		fi
	done
	plugstorm_pick_transport
	if [ ! -c "\${plugstorm_transport}" ]; then
		plugstorm_makedev "\${plugstorm_transport#/dev/}"
		if [ ! -c "\${plugstorm_transport}" ]; then
			echo "plugstorm_agent: no device node \${plugstorm_transport} (MAKEDEV does not know it)"
			return 1
		fi
	fi
	if checkyesno plugstorm_load_cdce; then
		modload if_cdce || echo "plugstorm_agent: modload if_cdce failed"
	fi
	return 0
}

plugstorm_agent_start()
{
	echo "Starting \${name} on \${plugstorm_transport}."
	# The agent leaves on a fatal error; come back a second later. Its
	# start-up findings (missing probes, DTrace start-up time) also go to
	# the console, which the host records as the boot log.
	(
		while :; do
			"$command" --backend netbsd --transport "\${plugstorm_transport}" \\
			    --transport-note "\${plugstorm_transport_why}" \\
			    --dtrace-deadline "\${plugstorm_dtrace_deadline:-${DEFAULT_DTRACE_DEADLINE_S}}" \\
			    --console /dev/console \${plugstorm_agent_flags}
			sleep 1
		done
	) </dev/null >>/var/log/plugstorm-agent.log 2>&1 &
	echo $! >"$pidfile"
}

plugstorm_agent_stop()
{
	if [ -f "$pidfile" ]; then
		kill "$(cat "$pidfile")" 2>/dev/null
		rm -f "$pidfile"
	fi
	pkill -x plugstorm-agent 2>/dev/null
	return 0
}

load_rc_config $name
run_rc_command "$1"
`;
}

export function rcdBuild(): string {
  return `#!/bin/sh
#
# plugstorm_build: compiles the plugstorm agent with base cc, once, from the
# sources the image ships in ${AGENT_SRC_DIR} (no pkgsrc needed).
#
# PROVIDE: plugstorm_build
# REQUIRE: mountcritlocal
# BEFORE: plugstorm_agent

$_rc_subr_loaded . /etc/rc.subr

name="plugstorm_build"
rcvar=$name
start_cmd="plugstorm_build_start"
stop_cmd=":"

plugstorm_build_start()
{
	[ -x "${AGENT_PATH}" ] && return 0
	echo "plugstorm: building the agent with base cc (first boot)"
	if sh ${AGENT_SRC_DIR}/build-agent.sh "${AGENT_PATH}" >/var/log/plugstorm-build.log 2>&1; then
		echo "plugstorm: agent built"
	else
		echo "plugstorm: agent build FAILED:"
		tail -20 /var/log/plugstorm-build.log
	fi
}

load_rc_config $name
run_rc_command "$1"
`;
}

/** /boot.cfg: the boot loader and the kernel talk on com0 (QEMU's first -serial). */
export function bootCfg(kernel = "netbsd"): string {
  return ["menu=Boot plugstorm guest:boot " + kernel, "consdev=com0", "timeout=0", "default=1", ""].join("\n");
}

/** /etc/ttys with the console (com0) getty; the telemetry UART (tty01) must stay off. */
export function ttys(): string {
  return [
    "# Written by plugstorm image netbsd: console on com0; tty01 carries telemetry.",
    "# name\tgetty\t\t\t\ttype\tstatus\t\tcomments",
    'console\t"/usr/libexec/getty std.9600"\tvt100\ton secure',
    'tty00\t"/usr/libexec/getty std.9600"\tunknown\toff secure',
    'tty01\t"/usr/libexec/getty std.9600"\tunknown\toff secure',
    "",
  ].join("\n");
}

export function fstab(o: GuestConfigOptions): string {
  return [`/dev/${o.rootDisk}a\t/\tffs\trw,log\t1 1`, "ptyfs\t/dev/pts\tptyfs\trw", "tmpfs\t/tmp\ttmpfs\trw,-m=1777", ""].join("\n");
}

/** The NetBSD branch and release tag the PLUGSTORM kernel is built from. */
export const PLUGSTORM_BRANCH = "netbsd-10";
export const PLUGSTORM_TAG = "netbsd-10-1-RELEASE";

/** The kernel for module-unload storms: GENERIC without the built-in cdce(4). */
export function kernelConfig(): string {
  return `# PLUGSTORM: GENERIC without the built-in cdce(4), so that if_cdce.kmod
# can be loaded and unloaded (module-unload storms; with cdce built in,
# modunload "succeeds" without detaching anything; images/netbsd/README.md).
#
# Build it from the ${PLUGSTORM_BRANCH} branch at tag ${PLUGSTORM_TAG}
# (NetBSD 10.1), exactly: the image loads if_cdce.kmod from the 10.1
# release's modules set, and a module only loads into the kernel version
# it was built for. As an ordinary user, on any host:
#   cvs -d anoncvs@anoncvs.NetBSD.org:/cvsroot checkout -r ${PLUGSTORM_TAG} -P src
#   cp PLUGSTORM src/sys/arch/amd64/conf/
#   cd src && ./build.sh -U -m amd64 -j4 -O ../obj -T ../tools tools kernel=PLUGSTORM
#   # -> ../obj/sys/arch/amd64/compile/PLUGSTORM/netbsd
# then: plugstorm image netbsd --version 10.1 --kernel ../obj/sys/arch/amd64/compile/PLUGSTORM/netbsd
# (the image loads if_cdce.kmod at boot when built with a PLUGSTORM kernel).
# GENERIC's options KDTRACE_HOOKS and MODULAR (DTrace) are kept by the include.

include "arch/amd64/conf/GENERIC"

ident	"PLUGSTORM"

no cdce*
`;
}

/** The in-guest build script: base cc, the agent sources, nanopb's runtime. */
export function buildAgentScript(): string {
  return `#!/bin/sh
# Builds plugstorm-agent inside NetBSD with the base system's cc (comp set).
# Usage: sh build-agent.sh [OUTPUT]   (default ${AGENT_PATH})
set -e
src=$(cd "$(dirname "$0")" && pwd)
out=\${1:-${AGENT_PATH}}
mkdir -p "$(dirname "$out")"
cc -std=gnu11 -O2 -Wall -Wextra -Wno-missing-field-initializers -I"$src" -I"$src/gen" -I"$src/nanopb" -o "$out.tmp" \\
	"$src/main.c" "$src/core/agent.c" "$src/core/framing.c" "$src/core/backend_none.c" \\
	"$src/netbsd/nb_events.c" "$src/netbsd/nb_probes.c" "$src/netbsd/backend_netbsd.c" \\
	"$src/gen/plugstorm/telemetry/v1/telemetry.pb.c" \\
	"$src/nanopb/pb_common.c" "$src/nanopb/pb_encode.c" "$src/nanopb/pb_decode.c" \\
	-lprop
mv -f "$out.tmp" "$out"
echo "built $out"
`;
}
