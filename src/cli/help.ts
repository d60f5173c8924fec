// --help texts, one per command.

import { CAMPAIGN_HELP, WORKER_HELP } from "./campaign.js";
import { EXIT_INTERRUPTED, EXIT_READER_GONE } from "./exit-text.js";

export const TOP_HELP = `plugstorm — hot-plug storms against QEMU and simulated guests, checked against a model of correct detach

usage: plugstorm <command> [options]

commands:
  storm [FILE]            run a storm (no FILE: the built-in mixed USB+PCMCIA storm on the sim machine)
  check TRACE             check a saved trace against the model, offline
  shrink TRACE|STORM      cut a failing sim storm down to a minimal storm breaking the same rule
  trace cat|export TRACE  print a trace, or export it (Perfetto, Chrome JSON)
  model rules|diagram     print the rules, or the automata as Graphviz dot
  vm PROFILE              start a machine and keep it for interactive hot-plug
  qmp SOCKET COMMAND [JSON]  send one QMP command to a running machine
  image [linux|netbsd]    build a guest image
  serve TRACE             replay a saved trace in the live web view (a running storm: storm --serve)
  campaign FILE           run many storms × machines × seeds, locally or through a queue; signatures and reports
  worker --queue URL      pull campaign jobs from a BullMQ queue on Redis and run them here

Exit codes: 0 clean, 1 violations found, 2 usage or set-up error; 130/143 when
interrupted (SIGINT/SIGTERM; each command's help says how it stops); 141 (quietly)
when the reader of the output went away before all of it was written, as for a Unix
tool killed by SIGPIPE: "plugstorm trace cat TRACE | head" on a long trace. An output
that fits in the pipe is written whole before the reader goes: "plugstorm model
rules | head" exits 0.
Run "plugstorm <command> --help" for a command's options.
`;

export const HELP: Record<string, string> = {
  campaign: CAMPAIGN_HELP,
  worker: WORKER_HELP,
  storm: `usage: plugstorm storm [FILE] [options]

Runs the storm in FILE (YAML; see scripts/storms/README.md), or without FILE the
built-in storm: ~2,000 mixed USB + PCMCIA cycles on the sim machine with held
references, traffic, detaches, module unloads and the sick case.

Writes trace.pstrace, summary.txt, report.json, junit.xml and report.html into
the output folder, and prints the seed and the command that reproduces the run.

options:
  --seed N                 use seed N instead of the storm's
  --out DIR                output folder (default: runs/<UTC time>-seed<N>/ here); one that
                           is not empty is refused, nothing touched
  --overwrite              with --out: remove the earlier run's files there (trace, reports,
                           shrunk storm, exports, logs) first; refused if DIR holds others
  --bug NAME[@P][:TARGET]  inject a bug into the sim kernel (repeatable: entries of one bug
                           unite their targets and must agree on its chance P; TARGET names
                           a NIC of the storm, its device or a holder)
  --stop-on-first          stop at the first violation
  --shrink                 after a violation (sim only), write a minimal storm to DIR/shrunk.yaml
  --time-limit DURATION    stop cleanly after this much wall time (e.g. 30s, 5m, 2h; units
                           ms, s, m, h, d; at most 24d): a planned end, status "time-limit"
                           (exit 0 unless it found violations)
  --max-trace-bytes SIZE   stop cleanly once the trace holds this much (default 2G;
                           e.g. 500M; units K, M, G, T; from 4096 bytes to 1024T): status
                           "trace-limit" (exit 0 unless it found violations)
  --wall-clock-start MS    trace header wall-clock start (default: 0 on sim so traces of
                           one seed are byte-identical; the current time on QEMU)
  --quiet                  no progress and no summary; print only the output folder
  --json                   print the result as one JSON object on stdout, nothing else
  --serve [HOST:]PORT      live web view of the run: prints "live view: URL" on stderr
                           before the storm starts (PORT 0 = any free port; HOST defaults
                           to 127.0.0.1, give 0.0.0.0 explicitly to be reachable from other
                           machines). The URL carries a token that unlocks the page's
                           controls: pause, resume, stop, hold/release references on a
                           NIC, remove a NIC; each is recorded in the trace. A run
                           stopped there has status "stopped" (exit 0 unless it found
                           violations).
                           After the run the view stays up, showing the whole run, until
                           Ctrl-C (the exit status is the run's).
  --serve-close            close the live view once the report is printed (for scripts)
  --serve-linger           the default with --serve: keep the view up until Ctrl-C

Exit: 0 clean (also stopped at --time-limit or --max-trace-bytes, or from the
live view), 1 violations, 2 bad storm file or set-up error (e.g. QEMU missing:
run scripts/setup-host), 130/143 when interrupted (SIGINT/SIGTERM) before any
violation,
${EXIT_READER_GONE}. An interrupted run
still writes a complete trace and its reports; so does a run stopped from the
live view (exit 0 unless it found violations), and one whose reader went away.
`,
  check: `usage: plugstorm check TRACE [--profile netbsd|linux] [--deadline PHASE=MS ...] [--rule ID] [--examples N] [-q|--quiet] [--json] [--report DIR [--overwrite]]

Replays a saved trace through the checker: the same verdicts the run had live,
unless profile or deadlines are changed. It prints the rules broken first, in
the order they first broke with their counts, then the findings: each cause as
a full verdict, its consequences (verdicts a stuck detach explains,
docs/cascades.md) one line each under it. A trace with damaged bytes is read
past the damage and gets a trace-intact verdict saying how much was not checked.
The last line says when the run stopped early (a time limit, a trace size limit,
the live view's Stop, a signal, an error), as the run's trace says it.

options:
  --profile P          model profile (default: the one in the trace header)
  --deadline PHASE=MS  change one deadline (PHASE: attach, detach, removal, unload, guest);
                       MS is milliseconds or a number with a unit (500ms, 2s, 1m), above 0
                       and at most 24 hours; repeatable, once per phase. Default: the
                       deadlines the run used, from the trace header; what each times and
                       the model's defaults: docs/rules.md
  --rule ID            show only this rule's verdicts (the exit status still counts all)
  --examples N         full verdicts shown per rule (default 3; 0 shows all)
  -q, --quiet          print only the last line (exit status unchanged)
  --json               print rules, findings, verdicts, damage and summary as JSON, with
                       how the run ended (status, abortReason, stop), the guest commands
                       it refused, the bugs' strikes and what the guest cannot observe
                       (notObserved), as storm --json says them
  --report DIR         also write summary.txt, report.json, junit.xml, report.html into DIR;
                       refused if DIR holds any of them already (a run's folder does)
  --overwrite          with --report: replace the reports DIR holds

Exit: 0 clean, 1 violations or a damaged trace, 2 unreadable trace or bad option,
${EXIT_INTERRUPTED},
${EXIT_READER_GONE}.
`,
  shrink: `usage: plugstorm shrink TRACE|STORM [--seed N] [--rule RULE] [--out FILE] [--max-runs N] [--quiet]

Runs a failing storm on the sim machine and cuts it down to a minimal explicit
step list that still breaks the same rule, written as a storm file (default:
INPUT-shrunk.yaml next to the input, for trace.pstrace trace-shrunk.yaml). Given a trace, the storm and seed come from its header.

options:
  --seed N         run it with seed N (default: the trace's, or the storm's)
  --rule RULE      the rule the minimal storm must break (default: the first one broken);
                   one broken only after another, e.g. as its consequence, is shrunk too,
                   with runs that go on past the first violation
  -o, --out FILE   write the minimal storm to FILE
  --max-runs N     storm runs allowed (default 2000); the best storm found by then is written
  -q, --quiet      no progress; print only the file written

Ctrl-C ends the search early and writes the smallest failing storm found so far
(2 "interrupted" if it comes before the first run ends); a second Ctrl-C, or SIGTERM,
ends it at once.

Exit: 1 when a failing storm was written (minimal, or after Ctrl-C the smallest
found so far: the output says "interrupted"), 2 when there is nothing to shrink
(the storm breaks no rule, or is not a sim storm), 130/143 when a second SIGINT or a
SIGTERM ends it at once,
${EXIT_READER_GONE}.
`,
  trace: `usage: plugstorm trace cat TRACE [--json] [--nic ID] [--from T] [--to T]
       plugstorm trace export TRACE [--format perfetto|chrome] [-o|--output FILE]

cat prints every record, one per line (--json: one JSON object per line), and
each damaged region where it sits. --nic nic7 keeps that NIC's records (host
actions, QMP, its guest device's frames, verdicts); --from/--to keep a window
of trace time (seconds, or with a unit: 1500ms, 2s).
export writes a Perfetto trace (default TRACE.perfetto-trace) or Chrome trace JSON.

Exit: 0 done, 2 unreadable trace, bad option or output not written,
${EXIT_INTERRUPTED},
${EXIT_READER_GONE}.
`,
  model: `usage: plugstorm model rules
       plugstorm model diagram [--profile netbsd|linux]

rules prints the rule table (Markdown, with the profiles each rule applies to);
diagram prints a profile's device and interface automata as Graphviz dot.
Render it with Graphviz's dot, which scripts/setup-host installs (or: apt-get
install graphviz):  plugstorm model diagram | dot -Tsvg > automata.svg

Exit: 0 done, 2 bad option, ${EXIT_INTERRUPTED},
${EXIT_READER_GONE} (the rule table fits in a pipe:
"plugstorm model rules | head" exits 0).
`,
  vm: `usage: plugstorm vm PROFILE [--accel auto|kvm|tcg] [--kernel F] [--initrd F]

Starts a QEMU machine from a profile (bare, linux-guest) and keeps it running for
interactive hot-plug. On stderr: the QMP socket to use with "plugstorm qmp", a
device_add/device_del pair that works as printed (it names a bus and a port: without
a port QEMU inserts a USB hub that outlives the NIC), QEMU's events ([qemu]) and
what the guest agent reports ([guest]: attach, detach, drain, free). The guest's
console goes to stdout and to a console log that Ctrl-C keeps (its path is printed).
Ctrl-C stops the machine.

--accel auto (the default) takes KVM when it looks usable and falls back to TCG
if the guest prints nothing within 15 s. --accel kvm is used as asked, never
given up: a warning says when auto would have picked TCG here (and why), and
another when the guest has printed nothing under KVM within 15 s.

Exit: 0 when Ctrl-C (SIGINT) or SIGTERM stopped the machine, 2 bad option or a machine
that could not start or exited on its own, 130/143 when a second SIGINT/SIGTERM comes
while it stops,
${EXIT_READER_GONE}.
`,
  qmp: `usage: plugstorm qmp SOCKET COMMAND [JSON-ARGUMENTS] [--timeout MS]

Sends one QMP command to a running machine (the socket "plugstorm vm" printed)
and prints the reply as JSON. Example:
  plugstorm qmp /tmp/x/qmp-user.sock device_add '{"driver":"usb-net","id":"nic9","bus":"usbc.0","port":"1"}'
(name a port: without one QEMU inserts a USB hub that outlives the NIC)
Exit: 0 on success, 1 when QEMU answers with an error, 2 when it cannot be reached,
${EXIT_INTERRUPTED},
${EXIT_READER_GONE}.
`,
  image: `usage: plugstorm image [linux|netbsd] [netbsd options]

Builds a guest image:
  linux   Debian kernel + tiny initramfs with the plugstorm agent (runs scripts/build-linux-guest)
  netbsd  NetBSD amd64 disk (build/netbsd-guest/netbsd.qcow2) with the agent, from an official
          release checked against its SHA512 file (images/netbsd/README.md):
    --version V        release to download (default 10.1)
    --release DIR      a local release directory instead (offline; build.sh's RELEASEDIR)
    --mirror URL       default https://cdn.netbsd.org/pub/NetBSD
    --out DIR          default build/netbsd-guest
    --telemetry T      com1 (default, every release: in every GENERIC) or viocon (10.0 and later;
                       used only if the booted kernel attached viocon0, else com1)
    --kernel FILE      boot this kernel (e.g. PLUGSTORM: no built-in cdce, for unload storms)
    --nanopb-src DIR   nanopb runtime sources (or $NANOPB_SRC): the agent is compiled in the guest
    --size-mib N       root file system size (default 3072)

Exit: 0 built, 2 bad option or the build failed, ${EXIT_INTERRUPTED},
${EXIT_READER_GONE}.
`,
  serve: `usage: plugstorm serve TRACE [--speed N | --max] [--listen [HOST:]PORT]

Serves the live web view of a saved trace (trace.pstrace in a storm's output
folder): every viewer that opens the printed URL gets its own replay from the
start. The page can also replay a trace file dropped onto it. To watch a storm
while it runs, use "plugstorm storm FILE --serve PORT" instead.

options:
  --speed N             replay N times faster than the run happened (1 = real time). Default:
                        the whole trace in about a minute (a simulated storm's hour of
                        virtual time too), never slower than real time
  --max                 replay as fast as the viewer takes it
  --listen [HOST:]PORT  listen address (default 127.0.0.1 on any free port; the URL is
                        printed); a non-loopback HOST only when given explicitly

Runs until SIGINT/SIGTERM (Ctrl-C), then exits 0.
Exit: 2 when TRACE is unreadable or not a plugstorm trace, or the address cannot be used,
${EXIT_READER_GONE}.
`,
};
