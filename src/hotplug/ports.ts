// Ports (USB) and sockets (PCMCIA) are a bounded resource per controller; a
// NIC holds one from add until its removal is finalised. Identities (QEMU id,
// USB serial, MAC) are never reused on a machine, so a late event or a guest
// report can always be joined to exactly one add.

import type { NicBus } from "./machine.js";

export interface ControllerPorts {
  bus: NicBus;
  /** QEMU bus name the devices go on, e.g. "usbc.0". */
  qemuBus: string;
  /** Port names as QEMU's `port` property takes them. */
  ports: readonly string[];
}

export interface Port {
  bus: NicBus;
  qemuBus: string;
  port: string;
  /** "<qemuBus>:<port>", the name used in results and requests. */
  name: string;
}

export class PortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortError";
  }
}

export class PortAllocator {
  private readonly all: Port[] = [];
  private readonly used = new Set<string>();

  constructor(controllers: readonly ControllerPorts[]) {
    for (const c of controllers) {
      for (const p of c.ports) this.all.push({ bus: c.bus, qemuBus: c.qemuBus, port: p, name: `${c.qemuBus}:${p}` });
    }
  }

  capacity(bus: NicBus): number {
    return this.all.filter((p) => p.bus === bus).length;
  }

  free(bus: NicBus): number {
    return this.all.filter((p) => p.bus === bus && !this.used.has(p.name)).length;
  }

  /** The port allocate(bus) would take now, without taking it; undefined when all are in use. */
  peek(bus: NicBus): Port | undefined {
    return this.all.find((x) => x.bus === bus && !this.used.has(x.name));
  }

  /** Takes `wanted` (a port name) or the first free port on `bus`. */
  allocate(bus: NicBus, wanted?: string): Port {
    if (wanted !== undefined) {
      const p = this.all.find((x) => x.name === wanted);
      if (p === undefined) throw new PortError(`no port ${JSON.stringify(wanted)}; ${bus} ports are ${this.names(bus)}`);
      if (p.bus !== bus) throw new PortError(`port ${wanted} is on the ${p.bus} bus, not ${bus}`);
      if (this.used.has(p.name)) throw new PortError(`port ${wanted} is in use`);
      this.used.add(p.name);
      return p;
    }
    const p = this.all.find((x) => x.bus === bus && !this.used.has(x.name));
    if (p === undefined) {
      const cap = this.capacity(bus);
      throw new PortError(cap === 0 ? `this machine has no ${bus} ports` : `all ${cap} ${bus} ports are in use`);
    }
    this.used.add(p.name);
    return p;
  }

  release(name: string): void {
    this.used.delete(name);
  }

  inUse(): string[] {
    return [...this.used];
  }

  private names(bus: NicBus): string {
    const n = this.all.filter((p) => p.bus === bus).map((p) => p.name);
    return n.length > 0 ? n.join(", ") : "(none)";
  }
}

export interface NicIdentity {
  n: number;
  id: string;
  serial: string;
  mac: string;
}

/** MAC for NIC number n: QEMU's 52:54:00 prefix and n in the low 24 bits. */
export function macFor(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 0xffffff) throw new RangeError(`NIC number ${n} is outside 1..${0xffffff}`);
  const b = [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff].map((x) => x.toString(16).padStart(2, "0"));
  return `52:54:00:${b.join(":")}`;
}

export class IdentityAllocator {
  private next = 1;
  private readonly ids = new Set<string>();

  /** The next identity; `id` overrides the default nic<N> and must not have been used before. */
  allocate(id?: string): NicIdentity {
    if (id !== undefined) {
      if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) throw new PortError(`NIC id ${JSON.stringify(id)} is not a valid QEMU id`);
      if (this.ids.has(id)) throw new PortError(`NIC id ${JSON.stringify(id)} was already used on this machine`);
    }
    let n = this.next++;
    let chosen = id ?? `nic${n}`;
    while (id === undefined && this.ids.has(chosen)) {
      n = this.next++;
      chosen = `nic${n}`;
    }
    this.ids.add(chosen);
    return { n, id: chosen, serial: chosen, mac: macFor(n) };
  }
}

/** A port and an identity for a new NIC, both or neither: the port goes back when the identity is refused. */
export function allocateNicSlot(ports: PortAllocator, identities: IdentityAllocator, bus: NicBus, req: { port?: string; id?: string }): { port: Port; ident: NicIdentity } {
  const port = ports.allocate(bus, req.port);
  try {
    return { port, ident: identities.allocate(req.id) };
  } catch (e) {
    ports.release(port.name);
    throw e;
  }
}
