// Traces: the append-only file of everything a run saw (proto/TRACE.md), its
// readers, a text/JSON form for people and tools, and exports for trace
// viewers (Perfetto, Chrome JSON).
export { TRACE_MAGIC, TRACE_VERSION, MAX_ENTRY_BYTES, TraceFormatError } from "./format.js";
export { TraceWriter, TraceWriteError, INCOMPLETE_MARK, ioErrorText, type TraceWriterOptions } from "./writer.js";
export { encodeRecordInto, encodedBuffer } from "./record-encoder.js";
export { parseTrace, readTrace, TraceFile, traceIntact, damageNote, type ParsedTrace, type TraceStatus, type DamagedRegion } from "./reader.js";
export { formatRecord, formatHeader, recordToJson, headerToJson } from "./text.js";
export { buildTimeline, type Timeline, type TimelineEvent, type TimelineTrack } from "./timeline.js";
export { encodePerfetto, perfettoPackets, toChromeJson, type ChromeTraceEvent } from "./perfetto.js";
export { traceCat, traceExport, whyUnreadable, type TraceCatOptions, type TraceExportOptions } from "./commands.js";
export { makeDirs, removeMadeDirs, MakeDirError } from "./make-dirs.js";
export { RecordFilter, parseTraceTime, type RecordFilterOptions } from "./filter.js";
