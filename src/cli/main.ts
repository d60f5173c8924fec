#!/usr/bin/env node
// The plugstorm command: parses arguments and calls the library. Exit codes:
// 0 clean, 1 violations found, 2 usage or set-up error (130/143 when a clean
// run was interrupted by SIGINT/SIGTERM, 141 when the reader of our output
// went away, as for a Unix tool killed by SIGPIPE).

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EXIT_USAGE, UsageError, type Io } from "./args.js";
import { HELP, TOP_HELP } from "./help.js";
import { stormCommand, shrinkCommand } from "./storm.js";
import { checkCommand, traceCommand } from "./trace.js";
import { imageCommand, modelCommand, qmpCommand, vmCommand } from "./misc.js";
import { serveCommand } from "./serve.js";
import { EXIT_BROKEN_PIPE, endQuietlyOnBrokenPipe, outputBroken } from "./pipe.js";
import { campaignCommand, workerCommand } from "./campaign.js";

type Command = (argv: string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  storm: stormCommand,
  shrink: shrinkCommand,
  check: checkCommand,
  trace: traceCommand,
  model: modelCommand,
  vm: vmCommand,
  qmp: qmpCommand,
  image: imageCommand,
  serve: serveCommand,
  campaign: campaignCommand,
  worker: workerCommand,
};

export async function main(argv: string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? rest[0] : undefined;
    io.out.write(topic && HELP[topic] ? HELP[topic] : TOP_HELP);
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === "--version" || name === "-V") {
    io.out.write("plugstorm 0.1.0\n");
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.err.write(`plugstorm: unknown command "${name}"\n\n${TOP_HELP}`);
    return EXIT_USAGE;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out.write(HELP[name] ?? TOP_HELP);
    return 0;
  }
  try {
    return await cmd(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err.write(`plugstorm ${e.command ?? name}: ${e.message}\n(see: plugstorm ${e.command ?? name} --help)\n`);
      return EXIT_USAGE;
    }
    io.err.write(`plugstorm ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_USAGE;
  }
}

function isMain(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  endQuietlyOnBrokenPipe([process.stdout, process.stderr]);
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = outputBroken() ? EXIT_BROKEN_PIPE : code;
    },
    (e: unknown) => {
      if (outputBroken()) {
        process.exitCode = EXIT_BROKEN_PIPE;
        return;
      }
      process.stderr.write(`plugstorm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = EXIT_USAGE;
    },
  );
}
