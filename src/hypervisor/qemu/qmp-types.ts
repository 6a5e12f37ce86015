/**
 * The parts of QMP query results the QEMU source uses, parsed and checked (a reply of the wrong
 * shape is QMP_UNEXPECTED_REPLY, never a crash): block nodes with their dirty bitmaps, devices,
 * exports and jobs. Field names follow qapi/block-core.json, block-export.json and job.json.
 */
import { QmpError } from './errors.ts';

export interface BitmapInfo {
  readonly name: string;
  readonly recording: boolean;
  readonly persistent: boolean;
  readonly busy: boolean;
  readonly inconsistent: boolean;
  readonly granularityBytes: number;
  /** Dirty bytes. */
  readonly countBytes: number;
}

export interface BlockNode {
  readonly nodeName: string;
  readonly drv: string;
  /** The node's image file name (`file` member; `json:{...}` for composite nodes). */
  readonly filename: string;
  readonly virtualSizeBytes: number;
  readonly backingFile?: string;
  readonly readOnly: boolean;
  readonly bitmaps: readonly BitmapInfo[];
}

export interface BlockDevice {
  readonly device: string;
  readonly qdev?: string;
  /** Top node of the inserted medium. */
  readonly nodeName?: string;
}

export interface BlockExport {
  readonly id: string;
  readonly nodeName: string;
  readonly shuttingDown: boolean;
}

export interface JobInfo {
  readonly id: string;
  readonly type: string;
  readonly status: string;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unexpected(what: string): QmpError {
  return new QmpError('QMP_UNEXPECTED_REPLY', `unexpected QMP reply: ${what}`);
}

function list(value: unknown, what: string): Json[] {
  if (!Array.isArray(value) || !value.every(isRecord))
    throw unexpected(`${what} is not a list of objects`);
  return value;
}

function str(record: Json, key: string, what: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw unexpected(`${what}.${key} is not a string`);
  return value;
}

function num(record: Json, key: string, what: string): number {
  const value = record[key];
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw unexpected(`${what}.${key} is not a number`);
  return value;
}

function bool(record: Json, key: string, fallback: boolean): boolean {
  const value = record[key];
  return typeof value === 'boolean' ? value : fallback;
}

export function parseBitmaps(value: unknown, what: string): BitmapInfo[] {
  if (value === undefined) return [];
  // Internal bitmaps (the copy-before-write filter's) have no name: not ours, skipped.
  return list(value, what)
    .filter((b) => typeof b['name'] === 'string')
    .map((b) => ({
      name: str(b, 'name', what),
      recording: bool(b, 'recording', false),
      persistent: bool(b, 'persistent', false),
      busy: bool(b, 'busy', false),
      inconsistent: bool(b, 'inconsistent', false),
      granularityBytes: num(b, 'granularity', what),
      countBytes: num(b, 'count', what),
    }));
}

/** query-named-block-nodes {flat: true}. */
export function parseBlockNodes(value: unknown): BlockNode[] {
  return list(value, 'query-named-block-nodes').map((node) => {
    const what = 'block node';
    const image = node['image'];
    if (!isRecord(image)) throw unexpected('block node without image');
    const backing = node['backing_file'];
    return {
      nodeName: str(node, 'node-name', what),
      drv: str(node, 'drv', what),
      filename: str(node, 'file', what),
      virtualSizeBytes: num(image, 'virtual-size', 'image'),
      ...(typeof backing === 'string' ? { backingFile: backing } : {}),
      readOnly: bool(node, 'ro', false),
      bitmaps: parseBitmaps(node['dirty-bitmaps'], 'dirty-bitmaps'),
    };
  });
}

/** query-block (devices; empty in qemu-storage-daemon). */
export function parseBlockDevices(value: unknown): BlockDevice[] {
  return list(value, 'query-block').map((device) => {
    const inserted = device['inserted'];
    const qdev = device['qdev'];
    const nodeName = isRecord(inserted) ? inserted['node-name'] : undefined;
    return {
      device: str(device, 'device', 'block device'),
      ...(typeof qdev === 'string' ? { qdev } : {}),
      ...(typeof nodeName === 'string' ? { nodeName } : {}),
    };
  });
}

export function parseBlockExports(value: unknown): BlockExport[] {
  return list(value, 'query-block-exports').map((e) => ({
    id: str(e, 'id', 'export'),
    nodeName: str(e, 'node-name', 'export'),
    shuttingDown: bool(e, 'shutting-down', false),
  }));
}

export function parseJobs(value: unknown): JobInfo[] {
  return list(value, 'query-jobs').map((job) => ({
    id: str(job, 'id', 'job'),
    type: str(job, 'type', 'job'),
    status: str(job, 'status', 'job'),
  }));
}
