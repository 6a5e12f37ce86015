/**
 * VHD format constants. References: Microsoft "Virtual Hard Disk Image Format Specification"
 * v1.0 (2006), sections "Hard Disk Footer Format", "Dynamic Disk Header Format", "Block
 * Allocation Table and Data Blocks", "Implementing a Dynamic Disk", Appendix "CHS Calculation";
 * blktap libvhd (`vhd-util check`) for the conformance rules; shared reference vhd.md.
 * Every integer in a VHD is big-endian.
 */
import { GiB, MiB } from '../core/index.ts';

/** Spec: all structures and offsets are in 512-byte sectors. */
export const VHD_SECTOR_BYTES = 512;
/** Spec "Hard Disk Footer Format": 512 bytes, at the end of the file and (dynamic) copied at 0. */
export const FOOTER_BYTES = 512;
/** Spec "Dynamic Disk Header Format": 1024 bytes at footer.dataOffset. */
export const HEADER_BYTES = 1024;
/** Spec footer "Cookie". */
export const FOOTER_COOKIE = 'conectix';
/** Spec header "Cookie". */
export const HEADER_COOKIE = 'cxsparse';
/** Spec footer "Features": bit 0x1 = temporary, bit 0x2 = reserved, must always be set. */
export const FEATURE_TEMPORARY = 0x1;
export const FEATURE_RESERVED = 0x2;
/** Spec footer "File Format Version" and header "Header Version": 1.0. */
export const FILE_FORMAT_VERSION = 0x00010000;
export const HEADER_VERSION = 0x00010000;
/** Spec: footer data offset of a fixed disk, and the header's (unused) data offset. */
export const DATA_OFFSET_NONE = 0xffffffffffffffffn;
/** Spec footer "Disk Type". */
export const DiskType = { fixed: 2, dynamic: 3, differencing: 4 } as const;
export type DiskTypeCode = (typeof DiskType)[keyof typeof DiskType];
/** Spec "Block Allocation Table": an unused entry. */
export const BAT_UNUSED = 0xffffffff;
/** Spec: default block size 2 MiB (XAPI, XO, QEMU and Hyper-V all use it). */
export const DEFAULT_BLOCK_BYTES = 2 * MiB;
/** Our reader's bounds on the block size (spec: a power of two; we bound memory per block). */
export const MIN_BLOCK_BYTES = VHD_SECTOR_BYTES * 8;
export const MAX_BLOCK_BYTES = 32 * MiB;
/** Our reader's bound on the BAT (16 MiB of entries = 8 TiB of 2 MiB blocks). */
export const MAX_TABLE_ENTRIES = 4 * 1024 * 1024;
/** Spec "Time Stamp": seconds since 2000-01-01T00:00:00Z; that instant in Unix seconds. */
export const VHD_EPOCH_UNIX_SECONDS = 946_684_800;
/** blktap `vhd-util check`: a timestamp more than this far in the future is an error. */
export const FUTURE_TOLERANCE_SECONDS = 1800;
/**
 * Largest virtual size we write: QEMU and XAPI refuse more than 2040 GiB (XAPI VDI_TOO_LARGE,
 * vhd.md §4); 32-bit BAT sector offsets cap the file itself at about 2 TiB.
 */
export const MAX_WRITE_SIZE_BYTES = 2040 * GiB;
/** A VHD file cannot extend past what a 32-bit BAT sector offset addresses. */
export const MAX_FILE_BYTES = 0xffffffff * VHD_SECTOR_BYTES;
/** Spec "Creator Host OS": Windows. Everyone writes it. */
export const HOST_OS_WINDOWS = 'Wi2k';
/**
 * Spec "Creator Application". We write "tap\0" (what XAPI/blktap write) so that QEMU takes the
 * virtual size from current_size instead of CHS (vhd.md §6).
 */
export const CREATOR_APPLICATION = 'tap\0';
export const CREATOR_VERSION = 0x00010003;
/** Spec "Disk Geometry" appendix: the largest CHS geometry. */
export const MAX_CHS_CYLINDERS = 65535;
export const MAX_CHS_HEADS = 16;
export const MAX_CHS_SECTORS_PER_TRACK = 255;
/** Spec header "Parent Locator Entries": 8 entries of 24 bytes. */
export const PARENT_LOCATOR_COUNT = 8;
export const PARENT_LOCATOR_ENTRY_BYTES = 24;
/** Spec header "Parent Unicode Name": 512 bytes of UTF-16BE. */
export const PARENT_NAME_BYTES = 512;
/** Spec "Platform Code" values of parent locators. */
export const PlatformCode = {
  none: 0,
  /** Mac OS alias blob (deprecated). */
  Mac: 0x4d616320,
  /** UTF-8 file URL or path (blktap writes "file://./parent.vhd"). */
  MacX: 0x4d616358,
  /** Absolute Windows path, UTF-16LE. */
  W2ku: 0x57326b75,
  /** Relative Windows path, UTF-16LE. */
  W2ru: 0x57327275,
  Wi2r: 0x57693272,
  Wi2k: 0x5769326b,
} as const;
/** Bounds on locator data we read (a path; blktap allows one sector per locator on write). */
export const MAX_LOCATOR_DATA_BYTES = 64 * 1024;
