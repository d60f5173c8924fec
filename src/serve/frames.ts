// WebSocket data frames as the server sends them (RFC 6455 §5.2: FIN set, no
// mask, 7-, 16- or 64-bit payload length), built once per message so one
// buffer serves every subscriber of the feed.

export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;

/** One whole, unmasked server frame carrying payload. */
export function dataFrame(opcode: number, payload: Uint8Array): Buffer {
  const out = frameHead(opcode, payload.length);
  out.set(payload, out.length - payload.length);
  return out;
}

/** A text frame of s, its UTF-8 written straight into the frame. */
export function textFrame(s: string): Buffer {
  const n = Buffer.byteLength(s, "utf8");
  const out = frameHead(OPCODE_TEXT, n);
  out.write(s, out.length - n, "utf8");
  return out;
}

/** A frame of n payload bytes with its head filled in and the payload left to write. */
function frameHead(opcode: number, n: number): Buffer {
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  return out;
}
