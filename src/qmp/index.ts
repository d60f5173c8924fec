// Public face of the QMP client.
export { QmpClient, type WaitOptions, type ArmedEvent } from "./client.js";
export {
  QmpProtocol,
  type QmpAddress,
  type QmpRunState,
  type QmpGreeting,
  type QmpClientOptions,
  type ExecuteOptions,
  type QmpTraffic,
  type QmpTrafficObserver,
  type QmpExecutor,
} from "./protocol.js";
export { EventListener, type QmpEvent, type EventPredicate, type ListenerOptions, type NextOptions } from "./events.js";
export {
  QmpError,
  QmpCommandError,
  QmpTimeoutError,
  QmpAbortError,
  QmpConnectionError,
  QmpProtocolError,
} from "./errors.js";
export * from "./commands.js";
