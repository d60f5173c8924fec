// The received bytes of recently decoded Frames that are exactly what the
// trace's encoder would write for them ("canonical"), so the trace writer can
// copy them instead of encoding the frame again (most of a storm's records
// are guest frames). decodeFrame keeps them; the writer takes them by the
// frame object. Bytes are copied at decode time: the splitters' scratch
// buffer they arrive in is reused by the next frame.
//
// A frame's bytes are given out once, to the first taker, which the runner's
// recorder is before anyone but the channel (which only reads) has the
// frame: a frame changed after decoding must not be written as received, and
// one recorded again later (a Hello carried to the next run) is encoded anew.
//
// Kept only while some trace writer is open (retainCanonicalFrames): a run
// with no trace (a shrink's runs) copies nothing.

/**
 * Frames kept: a chunk from a socket can hold many, and a run's recorder
 * queues up to this many records before their trace entries are written
 * (RECORD_BATCH in src/storm/recorder.ts); beyond this the oldest are
 * encoded anew. 256 slots are 128 KiB.
 */
export const KEPT_FRAMES = 256;
const SLOTS = KEPT_FRAMES;
/** Bytes per slot; a longer frame (rare: the agent's strings are short) is encoded anew. */
const STRIDE = 512;

/** The slots' bytes: slot i at i * STRIDE. Exported for the taker to copy from (see takeCanonicalFrame). */
export const canonicalArena = new Uint8Array(SLOTS * STRIDE);
const frames: (object | null)[] = new Array<object | null>(SLOTS).fill(null);
const lengths: number[] = new Array<number>(SLOTS).fill(0);
/** Slots written so far (the next one is head % SLOTS). */
let head = 0;
/** Slots before this were taken or passed over by a take. */
let tail = 0;
/** Open trace writers: keeping is on while there is one. */
let retained = 0;
let takenStart = 0;

/** Turns keeping on (+1) or off (-1) for one trace writer. */
export function retainCanonicalFrames(delta: 1 | -1): void {
  retained = Math.max(0, retained + delta);
  if (retained === 0) {
    // Nothing will take them: drop the references to the frames.
    frames.fill(null);
    tail = head;
  }
}

/** Whether decoders should keep canonical bytes now. */
export function keepingCanonicalFrames(): boolean {
  return retained > 0;
}

/** Slot i now holds frame's length canonical bytes: the ring moves on, dropping its oldest past SLOTS. */
function kept(i: number, frame: object, length: number): void {
  frames[i] = frame;
  lengths[i] = length;
  head++;
  if (head - tail > SLOTS) tail = head - SLOTS;
}

/** Keeps bytes[0, length), the canonical encoding of frame. */
export function keepCanonicalFrame(frame: object, bytes: Uint8Array, length: number): void {
  if (length > STRIDE) return;
  const i = head % SLOTS;
  const at = i * STRIDE;
  if (bytes !== source) wordsOf(bytes);
  const w = sourceWords;
  if (w !== null) {
    // Four bytes a step: both sides start 4-aligned (a slot, the scratch buffer).
    const words = length >> 2;
    const a = arenaWords;
    for (let k = 0, o = at >> 2; k < words; k++, o++) a[o] = w[k]!;
    for (let k = words << 2; k < length; k++) canonicalArena[at + k] = bytes[k]!;
  } else {
    copyBytes(bytes, 0, length, canonicalArena, at);
  }
  kept(i, frame, length);
}

/**
 * keepCanonicalFrame of bytes[start, start + length), bytes being a chunk
 * as it came (the frame handed on in place, see FrameSink.payloadInPlace).
 */
export function keepCanonicalFrameAt(frame: object, bytes: Uint8Array, start: number, length: number): void {
  if (length > STRIDE) return;
  const i = head % SLOTS;
  if (!LITTLE_ENDIAN) {
    copyBytes(bytes, start, start + length, canonicalArena, i * STRIDE);
    kept(i, frame, length);
    return;
  }
  // Four bytes a store into the slot (4-aligned), read a byte at a time from
  // wherever the frame lies in the chunk: a frame is ~80 bytes, where set()
  // needs a subarray view (an allocation) and a call, and a byte loop four
  // times the stores.
  const a = arenaWords;
  const words = length >> 2;
  let s = start;
  for (let o = i * (STRIDE >> 2), e = o + words; o < e; o++, s += 4) a[o] = bytes[s]! | (bytes[s + 1]! << 8) | (bytes[s + 2]! << 16) | (bytes[s + 3]! << 24);
  for (let k = i * STRIDE + (words << 2), e = start + length; s < e; s++, k++) canonicalArena[k] = bytes[s]!;
  kept(i, frame, length);
}

/**
 * The canonical bytes of frame if they were kept and not taken yet: returns
 * their length, their start in canonicalArena being canonicalStart() (until
 * the next decode), and gives them up. -1 when there are none.
 */
export function takeCanonicalFrame(frame: object): number {
  // Records come in decode order, so the frame is nearly always at tail.
  for (let k = tail; k < head; k++) {
    const i = k % SLOTS;
    if (frames[i] === frame) {
      frames[i] = null;
      tail = k + 1;
      takenStart = i * STRIDE;
      return lengths[i]!;
    }
  }
  return -1;
}

const arenaWords = new Int32Array(canonicalArena.buffer);
/** Whether a word built from four bytes, first byte lowest, lies in memory as those bytes in order. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
/** The buffer frames last came in (the splitters' one scratch buffer, nearly always) and a word view of it, or null when it is not 4-aligned. */
let source: Uint8Array | null = null;
let sourceWords: Int32Array | null = null;

function wordsOf(bytes: Uint8Array): void {
  source = bytes;
  sourceWords = bytes.byteOffset % 4 === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2) : null;
}

/**
 * to[at..] = from[start, end): a byte loop for short runs (set() needs a
 * subarray view, an allocation, and a call costing ~60 ns), set() for longer
 * ones (the loop costs ~1 ns a byte).
 */
export function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): void {
  if (end - start <= 48) {
    for (let k = start; k < end; k++) to[at++] = from[k]!;
  } else {
    to.set(from.subarray(start, end), at);
  }
}

/** Where the bytes the last successful takeCanonicalFrame gave start in canonicalArena. */
export function canonicalStart(): number {
  return takenStart;
}

/** Bytes a slot holds: what canonicalSlot()'s view spans. */
export const CANONICAL_SLOT_BYTES = STRIDE;

/** Each slot's whole span as a view made once, for set() to copy from without a subarray per frame. */
const slotViews: Uint8Array[] = Array.from({ length: SLOTS }, (_, i) => canonicalArena.subarray(i * STRIDE, (i + 1) * STRIDE));

/**
 * The whole slot the last successful takeCanonicalFrame's bytes start (as
 * canonicalStart() says): its first n bytes are the frame's, the rest
 * leftovers. A taker with room for CANONICAL_SLOT_BYTES copies it whole (one
 * memcpy) and keeps n.
 */
export function canonicalSlot(): Uint8Array {
  return slotViews[takenStart / STRIDE]!;
}
