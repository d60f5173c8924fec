// The far end of an emulated NIC's cable: one small host on a wire. It answers
// ARP and ICMP echo for its IPv4 address, IPv6 neighbour solicitations and
// ICMPv6 echo for its link-local address, can ping the guest's IPv6
// link-local address (which a Linux or NetBSD guest has as soon as the
// interface is up, with no configuration), echoes the guest agents' traffic
// frames (ethertype 0x88b5) back to their sender, and counts frames both ways.

import type { WireCounters } from "./model.js";

const ETH_ARP = 0x0806;
const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
/** IEEE local experimental ethertype: the guest agents' traffic frames. */
export const ETH_PLUGSTORM = 0x88b5;

export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`${JSON.stringify(mac)} is not a MAC address`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(b: Uint8Array): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** IPv6 link-local address from a MAC (modified EUI-64, RFC 4291 appendix A). */
export function linkLocal(mac: Uint8Array): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0xfe;
  a[1] = 0x80;
  a.set([mac[0]! ^ 0x02, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!], 8);
  return a;
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function checksum(parts: Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) sum += (p[i]! << 8) | (i + 1 < p.length ? p[i + 1]! : 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function icmp6Checksum(src: Uint8Array, dst: Uint8Array, body: Uint8Array): number {
  const pseudo = new Uint8Array(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  pseudo[34] = body.length >> 8;
  pseudo[35] = body.length & 0xff;
  pseudo[39] = 58;
  return checksum([pseudo, body]);
}

function ether(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(Math.max(60, 14 + payload.length));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

function ipv6(src: Uint8Array, dst: Uint8Array, hopLimit: number, icmp: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + icmp.length);
  p[0] = 0x60;
  p[4] = icmp.length >> 8;
  p[5] = icmp.length & 0xff;
  p[6] = 58;
  p[7] = hopLimit;
  p.set(src, 8);
  p.set(dst, 24);
  const c = icmp.slice();
  c[2] = 0;
  c[3] = 0;
  const sum = icmp6Checksum(src, dst, c);
  c[2] = sum >> 8;
  c[3] = sum & 0xff;
  p.set(c, 40);
  return p;
}

export interface WireOptions {
  /** This host's MAC. */
  mac: string;
  /** This host's IPv4 address, answered by ARP and ICMP echo. */
  ipv4: string;
}

export class EthernetWire {
  readonly mac: Uint8Array;
  readonly ipv4: Uint8Array;
  readonly ipv6: Uint8Array;
  readonly counters: WireCounters = { framesFromGuest: 0, framesToGuest: 0, framesDropped: 0, arpReplies: 0, echoReplies: 0, pingsSent: 0, pingReplies: 0 };
  /** Sequence numbers of our pings the guest answered. */
  readonly answered = new Set<number>();

  constructor(opts: WireOptions) {
    this.mac = parseMac(opts.mac);
    const v4 = opts.ipv4.split(".").map(Number);
    if (v4.length !== 4 || v4.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new RangeError(`${JSON.stringify(opts.ipv4)} is not an IPv4 address`);
    this.ipv4 = Uint8Array.from(v4);
    this.ipv6 = linkLocal(this.mac);
  }

  /** A frame from the guest; returns the frames this host sends back. */
  receive(frame: Uint8Array): Uint8Array[] {
    this.counters.framesFromGuest++;
    if (frame.length < 14) return [];
    const type = u16(frame, 12);
    const src = frame.subarray(6, 12);
    const p = frame.subarray(14);
    if (type === ETH_ARP) return this.arp(src, p);
    if (type === ETH_IPV4) return this.ip4(src, p);
    if (type === ETH_IPV6) return this.ip6(src, p);
    if (type === ETH_PLUGSTORM) {
      // The agents' traffic goes back to its sender, so frames cross the NIC both ways.
      const echo = frame.slice();
      echo.set(src, 0);
      echo.set(this.mac, 6);
      this.counters.echoReplies++;
      return [echo];
    }
    return [];
  }

  /** An ICMPv6 echo request to the guest's link-local address. */
  pingGuest(guestMac: string, seq: number): Uint8Array {
    const gm = parseMac(guestMac);
    const icmp = new Uint8Array(8 + 16);
    icmp[0] = 128;
    icmp[4] = 0x50;
    icmp[5] = 0x53; // identifier "PS"
    icmp[6] = (seq >> 8) & 0xff;
    icmp[7] = seq & 0xff;
    icmp.set(new TextEncoder().encode("plugstorm ping!!"), 8);
    this.counters.pingsSent++;
    return ether(gm, this.mac, ETH_IPV6, ipv6(this.ipv6, linkLocal(gm), 64, icmp));
  }

  private arp(src: Uint8Array, p: Uint8Array): Uint8Array[] {
    // Ethernet/IPv4 request for our address.
    if (p.length < 28 || u16(p, 0) !== 1 || u16(p, 2) !== ETH_IPV4 || u16(p, 6) !== 1) return [];
    if (!eq(p.subarray(24, 28), this.ipv4)) return [];
    const r = new Uint8Array(28);
    r.set(p.subarray(0, 6), 0);
    r[7] = 2;
    r.set(this.mac, 8);
    r.set(this.ipv4, 14);
    r.set(p.subarray(8, 18), 18);
    this.counters.arpReplies++;
    return [ether(src, this.mac, ETH_ARP, r)];
  }

  private ip4(src: Uint8Array, p: Uint8Array): Uint8Array[] {
    if (p.length < 20 || p[0]! >> 4 !== 4) return [];
    const ihl = (p[0]! & 0xf) * 4;
    const total = u16(p, 2);
    if (p[9] !== 1 || total > p.length || total < ihl + 8 || !eq(p.subarray(16, 20), this.ipv4)) return [];
    const icmp = p.slice(ihl, total);
    if (icmp[0] !== 8) return [];
    icmp[0] = 0;
    icmp[2] = 0;
    icmp[3] = 0;
    const c = checksum([icmp]);
    icmp[2] = c >> 8;
    icmp[3] = c & 0xff;
    const h = new Uint8Array(20);
    h.set([0x45, 0, (20 + icmp.length) >> 8, (20 + icmp.length) & 0xff, p[4]!, p[5]!, 0, 0, 64, 1, 0, 0]);
    h.set(this.ipv4, 12);
    h.set(p.subarray(12, 16), 16);
    const hc = checksum([h]);
    h[10] = hc >> 8;
    h[11] = hc & 0xff;
    const out = new Uint8Array(20 + icmp.length);
    out.set(h);
    out.set(icmp, 20);
    this.counters.echoReplies++;
    return [ether(src, this.mac, ETH_IPV4, out)];
  }

  private ip6(src: Uint8Array, p: Uint8Array): Uint8Array[] {
    if (p.length < 48 || p[0]! >> 4 !== 6 || p[6] !== 58) return [];
    const plen = u16(p, 4);
    if (40 + plen > p.length) return [];
    const from = p.subarray(8, 24);
    const to = p.subarray(24, 40);
    const icmp = p.subarray(40, 40 + plen);
    if (icmp6Checksum(from, to, icmp) !== 0) return [];
    switch (icmp[0]) {
      case 135: {
        // Neighbour solicitation for our address: advertise (solicited, override).
        if (icmp.length < 24 || !eq(icmp.subarray(8, 24), this.ipv6)) return [];
        const na = new Uint8Array(32);
        na[0] = 136;
        na[4] = 0x60;
        na.set(this.ipv6, 8);
        na.set([2, 1], 24);
        na.set(this.mac, 26);
        return [ether(src, this.mac, ETH_IPV6, ipv6(this.ipv6, from, 255, na))];
      }
      case 128: {
        if (!eq(to, this.ipv6)) return [];
        const r = icmp.slice();
        r[0] = 129;
        this.counters.echoReplies++;
        return [ether(src, this.mac, ETH_IPV6, ipv6(this.ipv6, from, 64, r))];
      }
      case 129: {
        if (icmp.length >= 8 && icmp[4] === 0x50 && icmp[5] === 0x53 && eq(to, this.ipv6)) {
          this.counters.pingReplies++;
          this.answered.add(u16(icmp, 6));
        }
        return [];
      }
      default:
        return [];
    }
  }
}
