// Who may talk to the server: listen address parsing, loopback tests, the
// Host and Origin checks that keep other web pages (and DNS rebinding) away
// from the feed, and the constant-time token comparison.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";

export const DEFAULT_HOST = "127.0.0.1";

export interface ListenAddress {
  host: string;
  port: number;
  /** False when the host was defaulted: the server then listens on loopback only. */
  explicitHost: boolean;
}

/**
 * Parses `--serve [HOST:]PORT`: "8080", "127.0.0.1:8080", "0.0.0.0:8080",
 * "[::1]:8080", "localhost:0". Without a host, loopback only.
 */
export function parseServeAddress(spec: string): ListenAddress {
  const s = spec.trim();
  let host: string | undefined;
  let portText = s;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(s);
  if (v6) {
    host = v6[1];
    portText = v6[2] ?? "";
  } else if (s.includes(":")) {
    const at = s.lastIndexOf(":");
    host = s.slice(0, at);
    portText = s.slice(at + 1);
    if (host.includes(":")) throw new Error(`--serve ${spec}: write an IPv6 host in brackets, e.g. [::1]:8080`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new Error(`--serve ${spec}: port must be a number 0-65535 (0 = any free port), got "${portText}"`);
  }
  if (host !== undefined && host === "") throw new Error(`--serve ${spec}: empty host before ":"`);
  return { host: host ?? DEFAULT_HOST, port: Number(portText), explicitHost: host !== undefined };
}

/** True for loopback addresses and the name localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (h.startsWith("::ffff:")) return isLoopback(h.slice(7));
  return isIP(h) === 4 && h.startsWith("127.");
}

/** Splits a Host header ("127.0.0.1:8080", "[::1]:8080", "localhost") into name and port. */
export function splitHostHeader(v: string): { name: string; port: string } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(v.trim());
  if (!m) return { name: v, port: "" };
  return { name: (m[1] ?? "").toLowerCase(), port: m[2] ?? "" };
}

/**
 * A request's Host must name loopback when the server listens on loopback:
 * otherwise a page on evil.example whose name resolves to 127.0.0.1 (DNS
 * rebinding) would be same-origin with us.
 */
export function hostAllowed(hostHeader: string | undefined, listenHost: string): boolean {
  if (!isLoopback(listenHost)) return true;
  if (!hostHeader) return false;
  return isLoopback(splitHostHeader(hostHeader).name);
}

/**
 * Browsers always send Origin on WebSocket upgrades and cross-origin POSTs;
 * tools do not. Allowed: no Origin, or an http(s) origin on the same host and
 * port (loopback spellings being interchangeable).
 */
export function originAllowed(origin: string | undefined, hostHeader: string | undefined): boolean {
  if (origin === undefined) return true;
  if (!hostHeader) return false;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return false;
  const want = splitHostHeader(hostHeader);
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  const wantPort = want.port || "80";
  if (port !== wantPort) return false;
  const name = u.hostname.toLowerCase();
  if (name === want.name) return true;
  return isLoopback(name) && isLoopback(want.name);
}

/** A fresh control token: 128 random bits, hex. */
export function newToken(): string {
  return randomBytes(16).toString("hex");
}

/** Compares a presented token with the real one in time independent of where they differ. */
export function tokenMatches(presented: unknown, token: string): boolean {
  if (typeof presented !== "string") return false;
  // Hashing first gives equal lengths, so the comparison leaks not even the length.
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}
