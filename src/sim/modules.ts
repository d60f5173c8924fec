// Driver modules (kern_module.c + config_fini_component, docs/netbsd.md#modules):
// a loadable driver's unload detaches every instance with flags 0 and either
// completes once all of them are detached and freed, or is vetoed by the
// first EBUSY. A built-in driver's FINI is empty: its unload "succeeds" and
// detaches nothing.

import { EBUSY, ENOENT, type DriverName, type Kernel, LOG, MK, NOFORCE, type SimDevice, VETO } from "./kernel.js";
import type { Yield } from "./scheduler.js";

export class SimModule {
  loaded = true;
  unloading = false;
  constructor(readonly name: string, readonly driver: DriverName, readonly builtin: boolean) {}
}

export class Modules {
  readonly byName = new Map<string, SimModule>();

  constructor(private readonly k: Kernel) {}

  add(name: string, driver: DriverName, builtin = false): void {
    this.byName.set(name, new SimModule(name, driver, builtin));
  }

  /** Reports every loaded module (boot). */
  reportLoaded(): void {
    for (const m of this.byName.values()) if (m.loaded) this.k.emitModule(MK.LOAD, m.name, 0, [], { builtin: m.builtin });
  }

  /**
   * Autoload before a device of an unloaded driver attaches: the simulation's
   * stand-in for an operator reloading the module, so storms keep attaching.
   */
  ensureLoaded(driver: DriverName): void {
    for (const m of this.byName.values()) {
      if (m.driver === driver && !m.loaded) {
        m.loaded = true;
        this.k.emitModule(MK.LOAD, m.name, 0, []);
      }
    }
  }

  /** module_do_unload → MODULE_CMD_FINI → config_cfdata_detach: returns an errno. */
  *unload(name: string): Generator<Yield, number, void> {
    const k = this.k;
    const m = this.byName.get(name);
    if (m === undefined || !m.loaded) return ENOENT;
    if (m.unloading) return EBUSY;
    m.unloading = true;
    try {
      if (m.builtin) {
        // USBNET_FINI of a built-in driver is empty: nothing is detached, the instances keep running.
        k.emitModule(MK.UNLOAD_BEGIN, name, 0, [], { builtin: true });
        k.emitModule(MK.UNLOAD_END, name, 0, [], { builtin: true });
        return 0;
      }
      const instances: SimDevice[] = [];
      for (const d of k.devices.values()) if (d.driver === m.driver && !d.delGen && !d.freed) instances.push(d);
      instances.sort((a, b) => a.unit - b.unit);
      k.emitModule(MK.UNLOAD_BEGIN, name, 0, instances.map((d) => d.xname));
      for (const d of instances) {
        if (d.delGen || d.freed) continue;
        const rv = yield* k.configDetach(d, NOFORCE);
        if (rv === ENOENT) {
          // Lost the race to the bus's detach: the instance is gone either way.
          if (k.bugs.strikes("unload-double-free", d.xname, d.nicId, name)) k.freeDevice(d);
          continue;
        }
        if (rv !== 0) {
          k.log(LOG.WARN, `${name}: unable to detach instance ${d.xname}`);
          k.emitModule(MK.UNLOAD_END, name, rv, [d.xname], { vetoReason: VETO.VETO_REASON_DETACH_REFUSED });
          return rv;
        }
      }
      const waiting = instances.filter((d) => !d.freed);
      if (waiting.length > 0) {
        k.emitModule(MK.UNLOAD_WAIT, name, 0, waiting.map((d) => d.xname));
        while (waiting.some((d) => !d.freed)) yield k.freeCv;
      }
      m.loaded = false;
      k.emitModule(MK.UNLOAD_END, name, 0, instances.map((d) => d.xname));
      return 0;
    } finally {
      m.unloading = false;
    }
  }
}
