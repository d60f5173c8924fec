// Guest image recipes run from the host (`plugstorm image netbsd`). The Linux
// guest is a shell script (scripts/build-linux-guest); NetBSD's needs set
// verification and on-disk formats, so it lives here.
export {
  buildNetbsdImage,
  defaultNetbsdTelemetry,
  findNanopb,
  netbsdHasViocon,
  netbsdGuestDir,
  writeGuestKit,
  NETBSD_IMAGE_NAME,
  NETBSD_MANIFEST_NAME,
  type NetbsdImageManifest,
  type NetbsdImageOptions,
  type NetbsdImageResult,
} from "./netbsd.js";
export {
  ChecksumError,
  ReleaseError,
  DEFAULT_MIRROR,
  DEFAULT_NETBSD_VERSION,
  REQUIRED_SETS,
  OPTIONAL_SETS,
  fetchRelease,
  locateSets,
  parseSha512File,
  sha512File,
  verifySets,
} from "./release.js";
export { AssembleError, DISKMAGIC, MBR_TYPE_NETBSD, PART_START, SECTOR, assembleDisk, disklabel, disklabelChecksum, extractSets, mbr, rootSpec } from "./assemble.js";
export * from "./guest-config.js";
