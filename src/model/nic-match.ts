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

  /** The last MAC turned into its join key, and that key: a NIC's events come together, so this saves a lower-casing and a concatenation per event. */
  private macIn: string | undefined = undefined;
  private macOut = "";

  /**
   * What match() last found joined already: while joins.writes stays at
   * seenWrites, the keys of these (a name, an interface name, a MAC as the
   * guest spelt it) are young and joined to seenNic, so joining them again
   * would change nothing and is skipped. A device's events repeat the same
   * keys, and each join was a lookup (the MAC's after building its key).
   */
  private seenNic: string | undefined = undefined;
  private seenWrites = -1;
  private seenName: string | undefined = undefined;
  private seenIfname: string | undefined = undefined;
  private seenMac: string | undefined = undefined;

  constructor(opts: NicMatcherOptions = {}) {
    this.isNic = opts.isNic ?? (() => true);
    this.joins = new RecentMap(opts.maxJoins ?? 8192);
  }

  /** The host made a NIC with this MAC (before adding it, so the guest's first event joins). */
  addNic(nicId: string, mac: string | null | undefined): void {
    if (mac) this.join(this.macKey(mac), nicId);
  }

  /**
   * The NIC a guest device event is about, or undefined; learns the event's
   * names (and MAC) for the events that name the device only.
   */
  match(keys: NicKeys): string | undefined {
    const serial = keys.serial, mac = keys.mac, name = keys.name, ifname = keys.ifname;
    const nic = this.peekKeys(serial, mac, name, ifname);
    if (nic === undefined) return undefined;
    // Only a match by serial or MAC rebinds a name: a match by name merely confirms it.
    const bySerial = !!serial && serial === nic;
    const direct = bySerial || (!!mac && this.known(this.macKey(mac)) === nic);
    const joins = this.joins;
    const fresh = nic === this.seenNic && joins.writes === this.seenWrites;
    const before = joins.writes;
    if (direct && name && !(fresh && name === this.seenName)) this.join(name, nic);
    if (ifname && !(fresh && ifname === this.seenIfname)) this.join(ifname, nic);
    const joinMac = direct && !!mac && bySerial;
    if (joinMac && !(fresh && mac === this.seenMac)) this.join(this.macKey(mac!), nic);
    if (joins.writes !== before) {
      // A set may have turned the generations: nothing is known young until a call sets nothing.
      this.seenNic = undefined;
      this.seenWrites = -1;
      return nic;
    }
    if (!fresh) {
      this.seenNic = nic;
      this.seenWrites = before;
      this.seenName = this.seenIfname = this.seenMac = undefined;
    }
    if (direct && name) this.seenName = name;
    if (ifname) this.seenIfname = ifname;
    if (joinMac) this.seenMac = mac!;
    return nic;
  }

  /** The NIC match() would answer, learning nothing. */
  peek(keys: NicKeys): string | undefined {
    return this.peekKeys(keys.serial, keys.mac, keys.name, keys.ifname);
  }

  private peekKeys(serial: string | null | undefined, mac: string | null | undefined, name: string | null | undefined, ifname: string | null | undefined): string | undefined {
    if (serial && this.isNic(serial)) return serial;
    return (mac ? this.known(this.macKey(mac)) : undefined) ?? this.known(name || "") ?? this.known(ifname || "");
  }

  /** "mac:" + the lower-case MAC. */
  private macKey(mac: string): string {
    if (mac !== this.macIn) {
      this.macIn = mac;
      this.macOut = MAC + mac.toLowerCase();
    }
    return this.macOut;
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
