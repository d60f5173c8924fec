// The one join from a guest's device to the host's NIC (design.md, "Device
// identity"): the host gives every NIC a QEMU id, a USB serial equal to that
// id and a MAC; the guest agent reports serial and MAC with a device's
// events, and its other events name the device or its interface only.
//
// Precedence, first that answers:
//   1. the serial, when it names a NIC (the id itself: no guessing);
//   2. the MAC, when the host gave it to a NIC (a guest or bus that reports
//      no serial: PC Card, some Linux drivers);
//   3. the device name, as joined by that device's latest event that
//      matched by 1 or 2 (cdce0 reused after a free follows the new NIC);
//   4. the interface name, joined the same way.
// A MAC is compared without regard to case. Joins by name are remembered for
// the most recent names only: a storm of a million cycles must not grow them
// (a stale join only leaves an event unjoined). Nothing is forgotten one NIC
// at a time: ids are never reused on a machine, and a party that drops a NIC
// says so through isNic, after which joins to it answer nothing.
//
// Pure, importing only recent.ts: the checker, the runner, the trace tools,
// the reports and the live page (which loads the compiled files as
// /model/nic-match.js and /model/recent.js) all join with this one.

import { RecentMap } from "./recent.js";

/** What a guest event says about the device it is about (absent and "" mean the same). */
export interface NicKeys {
  serial?: string | null | undefined;
  mac?: string | null | undefined;
  name?: string | null | undefined;
  ifname?: string | null | undefined;
}

export interface NicMatcherOptions {
  /**
   * Which ids are NICs. Default: every serial is (reading a trace, where a
   * serial is a QEMU id by construction); a live party that knows what the
   * host added passes its own test, so a guest's stray serial joins nothing.
   */
  isNic?: (id: string) => boolean;
  /** Name and MAC joins kept at most (default 8192; two generations, so up to twice that). */
  maxJoins?: number;
}

const MAC = "mac:";

export class NicMatcher {
  private readonly isNic: (id: string) => boolean;
  /** name, ifname or "mac:" + lower-case MAC -> NIC id. */
  private readonly joins: RecentMap<string, string>;

  constructor(opts: NicMatcherOptions = {}) {
    this.isNic = opts.isNic ?? (() => true);
    this.joins = new RecentMap(opts.maxJoins ?? 8192);
  }

  /** The host made a NIC with this MAC (before adding it, so the guest's first event joins). */
  addNic(nicId: string, mac: string | null | undefined): void {
    if (mac) this.join(MAC + mac.toLowerCase(), nicId);
  }

  /**
   * The NIC a guest device event is about, or undefined; learns the event's
   * names (and MAC) for the events that name the device only.
   */
  match(keys: NicKeys): string | undefined {
    const nic = this.peek(keys);
    if (nic === undefined) return undefined;
    // Only a match by serial or MAC rebinds a name: a match by name merely confirms it.
    const direct = (keys.serial && keys.serial === nic) || (keys.mac && this.known(MAC + keys.mac.toLowerCase()) === nic);
    if (direct && keys.name) this.join(keys.name, nic);
    if (keys.ifname) this.join(keys.ifname, nic);
    if (direct && keys.mac && keys.serial === nic) this.join(MAC + keys.mac.toLowerCase(), nic);
    return nic;
  }

  /** The NIC match() would answer, learning nothing. */
  peek(keys: NicKeys): string | undefined {
    if (keys.serial && this.isNic(keys.serial)) return keys.serial;
    return (keys.mac ? this.known(MAC + keys.mac.toLowerCase()) : undefined) ?? this.known(keys.name || "") ?? this.known(keys.ifname || "");
  }

  /** Joins a guest device or interface name to a NIC learnt some other way (an interface event naming its device). */
  bind(name: string | null | undefined, nicId: string): void {
    if (name) this.join(name, nicId);
  }

  /** The NIC a guest device or interface name is joined to now, learning nothing. */
  ofName(name: string | null | undefined): string | undefined {
    return this.known(name || "");
  }

  /** The joins that still answer, oldest first, for a snapshot ("mac:" + MAC for a MAC). */
  entries(): [string, string][] {
    return this.joins.entries().filter(([, v]) => this.isNic(v));
  }

  /** Restores entries() of another matcher. */
  restore(entries: Iterable<readonly [string, string]>): void {
    for (const [k, v] of entries) this.join(k, v);
  }

  private known(key: string): string | undefined {
    if (!key) return undefined;
    const nic = this.joins.get(key);
    return nic !== undefined && this.isNic(nic) ? nic : undefined;
  }

  private join(key: string, nic: string): void {
    // touch: a join found only in the old generation moves up, so a join still in use is never dropped.
    if (this.joins.touch(key) !== nic) this.joins.set(key, nic);
  }
}
