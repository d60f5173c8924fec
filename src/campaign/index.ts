// Public face of campaigns: campaign files, the local worker pool, BullMQ
// workers across hosts, verdict signatures and campaign reports.
export type { CampaignSpec, CampaignJob, CampaignMachine } from "./spec.js";
export { loadCampaignFile, parseCampaign, SIM_JOB_MB, QEMU_OVERHEAD_MB } from "./validate.js";
export { runCampaign, LocalDriver, type CampaignDriver, type CampaignOptions, type CampaignProgress, type CampaignResult, type DriverEnd, type DriverSink } from "./campaign.js";
export { runJob, findingsOf, JobSetupError, JobInterrupted, type JobResult, type JobFinding } from "./job.js";
export { WorkerPool, WorkerDied, type WorkerStats } from "./pool.js";
export { TraceContext, signatureOf, makeSignature, type Signature } from "./signature.js";
export { buildCampaignReport, type CampaignReport, type Finding } from "./report.js";
export { renderCampaignText, renderCampaignJunit, renderCampaignHtml, writeCampaignReports, CAMPAIGN_REPORT_FILES } from "./render.js";
export { campaignExitCode } from "./exit-code.js";
export { CampaignStore, StoreError, type FailedJob } from "./store.js";
export { atATimeText, defaultParallelism, hostResources, parallelismWarnings, HOST_RESERVE_MB } from "./parallelism.js";
export type { RedisConnection, QueueWorkerOptions, QueueJobData, QueueDriverOptions } from "./queue.js";
export { RedisUnreachable, Stopped, CONNECT_DEADLINE_MS, DEFAULT_DOWN_LIMIT_MS } from "./redis-link.js";
/** The BullMQ side (queue driver, worker), loaded on demand: BullMQ and ioredis take a while to load. */
export const loadQueue = (): Promise<typeof import("./queue.js")> => import("./queue.js");
