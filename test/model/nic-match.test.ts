// The one join from a guest device to the host's NIC (src/model/nic-match.ts):
// its precedence of keys as a table, then what it remembers and forgets.
import test from "ava";
import { NicMatcher, type NicKeys } from "../../src/model/index.js";

interface Row {
  why: string;
  /** NICs the host added: id and MAC. */
  nics: [string, string][];
  /** Device events before the one matched (learning names). */
  before?: NicKeys[];
  keys: NicKeys;
  /** Only the added NICs count (a live party); otherwise any serial is an id (a trace reader). */
  knownOnly?: boolean;
  want: string | undefined;
}

const NICS: [string, string][] = [
  ["nic1", "52:54:00:00:00:01"],
  ["nic2", "52:54:00:00:00:02"],
];

const TABLE: Row[] = [
  { why: "serial is the QEMU id", nics: NICS, keys: { serial: "nic1", name: "cdce0" }, want: "nic1" },
  { why: "serial wins over a MAC that names another NIC", nics: NICS, keys: { serial: "nic1", mac: "52:54:00:00:00:02" }, want: "nic1" },
  { why: "MAC when there is no serial", nics: NICS, keys: { mac: "52:54:00:00:00:02", name: "ne0" }, want: "nic2" },
  { why: "MAC without regard to case", nics: [["nic10", "52:54:00:00:00:0a"]], keys: { mac: "52:54:00:00:00:0A" }, want: "nic10" },
  { why: "an unknown serial joins nothing live, falls to the MAC", nics: NICS, knownOnly: true, keys: { serial: "nic9", mac: "52:54:00:00:00:01" }, want: "nic1" },
  { why: "an unknown serial joins nothing live", nics: NICS, knownOnly: true, keys: { serial: "nic9", name: "cdce0" }, want: undefined },
  { why: "any serial is an id to a trace reader", nics: [], keys: { serial: "nic9" }, want: "nic9" },
  { why: "a name, as joined by an earlier event with a serial", nics: NICS, before: [{ serial: "nic2", name: "cdce0" }], keys: { name: "cdce0" }, want: "nic2" },
  { why: "a name, as joined by an earlier event with a MAC", nics: NICS, before: [{ mac: "52:54:00:00:00:01", name: "ne0" }], keys: { name: "ne0" }, want: "nic1" },
  { why: "a reused name follows its latest NIC", nics: NICS, before: [{ serial: "nic1", name: "cdce0" }, { serial: "nic2", name: "cdce0" }], keys: { name: "cdce0" }, want: "nic2" },
  { why: "the interface name, joined by a device event", nics: NICS, before: [{ serial: "nic1", name: "urndis0", ifname: "eth1" }], keys: { ifname: "eth1" }, want: "nic1" },
  { why: "the device name wins over the interface name", nics: NICS, before: [{ serial: "nic1", name: "cdce0" }, { serial: "nic2", name: "cdce1", ifname: "eth0" }], keys: { name: "cdce0", ifname: "eth0" }, want: "nic1" },
  { why: "a serial wins over a name joined to another NIC", nics: NICS, before: [{ serial: "nic1", name: "cdce0" }], keys: { serial: "nic2", name: "cdce0" }, want: "nic2" },
  { why: "a name never joined", nics: NICS, keys: { name: "cdce3" }, want: undefined },
  { why: "nothing to go by", nics: NICS, keys: {}, want: undefined },
  { why: "empty strings are absent keys", nics: NICS, keys: { serial: "", mac: "", name: "", ifname: "" }, want: undefined },
];

test("precedence: serial naming a NIC, then its MAC, then the device name, then the interface name", (t) => {
  for (const row of TABLE) {
    const added = new Set(row.nics.map(([id]) => id));
    const m = new NicMatcher(row.knownOnly ? { isNic: (id) => added.has(id) } : {});
    for (const [id, mac] of row.nics) m.addNic(id, mac);
    for (const k of row.before ?? []) m.match(k);
    t.is(m.match(row.keys), row.want, row.why);
  }
});

test("a name matched by name is not rebound; a NIC no longer one joins nothing", (t) => {
  const added = new Set(["nic1", "nic2"]);
  const m = new NicMatcher({ isNic: (id) => added.has(id) });
  m.addNic("nic1", "52:54:00:00:00:01");
  t.is(m.match({ serial: "nic1", name: "cdce0", ifname: "cdce0" }), "nic1");
  t.is(m.match({ name: "cdce0" }), "nic1");
  t.is(m.ofName("cdce0"), "nic1");
  added.delete("nic1");
  t.is(m.match({ name: "cdce0" }), undefined);
  t.is(m.match({ mac: "52:54:00:00:00:01" }), undefined);
  m.bind("eth0", "nic2");
  t.is(m.ofName("eth0"), "nic2");
  added.delete("nic2");
  t.is(m.ofName("eth0"), undefined, "a join to what is no longer a NIC answers nothing");
});

test("joins are bounded, the latest kept; entries restore another matcher", (t) => {
  const m = new NicMatcher({ maxJoins: 100 });
  for (let i = 0; i < 10_000; i++) m.match({ serial: `nic${i}`, name: `cdce${i}` });
  t.true(m.entries().length <= 200);
  t.is(m.ofName("cdce9999"), "nic9999");
  t.is(m.ofName("cdce0"), undefined);
  const copy = new NicMatcher();
  copy.restore(m.entries());
  t.deepEqual(copy.entries(), m.entries());
  t.is(copy.ofName("cdce9999"), "nic9999");
});

// match() skips joins it found made already while nothing was set since: a
// device's repeated events must still keep their joins recent and let a
// name that moved to another NIC move back.
test("repeated events keep their joins while other joins turn the generations over; a name moved away and back follows", (t) => {
  const m = new NicMatcher({ maxJoins: 4 });
  const ev: NicKeys = { serial: "nic1", mac: "52:54:00:00:00:0A", name: "cdce0", ifname: "cdce0-if" };
  for (let i = 0; i < 50; i++) {
    t.is(m.match({ ...ev }), "nic1");
    t.is(m.match({ ...ev }), "nic1");
    m.bind(`other${i}`, "nic2");
  }
  t.is(m.ofName("cdce0"), "nic1", "the name stayed recent");
  t.is(m.ofName("cdce0-if"), "nic1", "the interface name stayed recent");
  t.is(m.peek({ mac: "52:54:00:00:00:0a" }), "nic1", "the MAC join stayed recent");

  t.is(m.match({ serial: "nic2", name: "cdce0", ifname: "cdce0-if" }), "nic2");
  t.is(m.ofName("cdce0"), "nic2");
  t.is(m.match({ ...ev }), "nic1");
  t.is(m.ofName("cdce0"), "nic1", "moved back");
  t.is(m.ofName("cdce0-if"), "nic1");
  m.bind("cdce0", "nic3");
  t.is(m.match({ serial: "nic1", name: "cdce0" }), "nic1");
  t.is(m.ofName("cdce0"), "nic1", "a bind in between is undone by the next direct match");
});
