// Map helpers the checker's core and its rule families share (a leaf module:
// the rules import it without importing core, which imports them).

/**
 * m without k. A map its last entry leaves comes back new: these maps hold a
 * device or NIC or two and empty once per cycle, and V8 reallocates an emptied
 * Map's table in a runtime call, where a new Map is a plain allocation.
 */
export function without<K, V>(m: Map<K, V>, k: K): Map<K, V> {
  if (m.size === 1 && m.has(k)) return new Map();
  m.delete(k);
  return m;
}
