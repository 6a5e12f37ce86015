/**
 * Which block nodes are a machine's disks, with a stable id and identity.
 * - qemu-system: devices from query-block; id = device name (or qdev path), node = its top node.
 *   Node names may change across restarts (libvirt numbers them), device names do not.
 * - qemu-storage-daemon (query-block is empty): format nodes with a user-given name that are
 *   neither ours nor the backing node of another disk; id = node name.
 * - configured `disks` pin ids to node names explicitly.
 * Identity = the node's image file: the same id on another file is a replaced or moved disk.
 */
import { tempPrefix } from './names.ts';
import type { BitmapInfo, BlockDevice, BlockNode } from './qmp-types.ts';

export interface QemuDisk {
  readonly id: string;
  readonly nodeName: string;
  readonly filename: string;
  /** Format driver of the node (qcow2, raw...). */
  readonly format: string;
  readonly sizeBytes: number;
  readonly bitmaps: readonly BitmapInfo[];
  /** Only qcow2 stores persistent bitmaps; other formats get bitmaps that die with QEMU. */
  readonly persistentBitmaps: boolean;
}

export interface PinnedDisk {
  readonly id: string;
  readonly nodeName: string;
}

const formatDrivers = new Set([
  'qcow2',
  'raw',
  'qed',
  'vmdk',
  'vdi',
  'vhdx',
  'vpc',
  'luks',
  'parallels',
  'qcow',
]);

function toDisk(id: string, node: BlockNode): QemuDisk {
  return {
    id,
    nodeName: node.nodeName,
    filename: node.filename,
    format: node.drv,
    sizeBytes: node.virtualSizeBytes,
    bitmaps: node.bitmaps,
    persistentBitmaps: node.drv === 'qcow2',
  };
}

/** `/machine/peripheral/virtio-disk0/virtio-backend` → `virtio-disk0` (the device's id). */
export function qdevId(qdev: string | undefined): string | undefined {
  if (qdev === undefined || qdev === '') return undefined;
  const match = /^\/machine\/peripheral(?:-anon)?\/([^/]+)/.exec(qdev);
  return match?.[1] ?? qdev;
}

export function discoverDisks(
  nodes: readonly BlockNode[],
  devices: readonly BlockDevice[],
  pinned?: readonly PinnedDisk[],
): QemuDisk[] {
  const byName = new Map(nodes.map((node) => [node.nodeName, node]));
  const disks: QemuDisk[] = [];
  if (pinned !== undefined) {
    for (const pin of pinned) {
      const node = byName.get(pin.nodeName);
      if (node !== undefined) disks.push(toDisk(pin.id, node));
    }
    return disks;
  }
  const withMedium = devices.filter((device) => device.nodeName !== undefined);
  if (withMedium.length > 0) {
    for (const device of withMedium) {
      const node = byName.get(device.nodeName ?? '');
      if (node === undefined) continue;
      const id = device.device !== '' ? device.device : (qdevId(device.qdev) ?? node.nodeName);
      disks.push(toDisk(id, node));
    }
    return disks.sort((a, b) => a.id.localeCompare(b.id));
  }
  const candidates = nodes.filter(
    (node) =>
      formatDrivers.has(node.drv) &&
      !node.nodeName.startsWith('#') &&
      !node.nodeName.startsWith(tempPrefix),
  );
  const backingFiles = new Set(
    candidates.map((node) => node.backingFile).filter((file) => file !== undefined),
  );
  for (const node of candidates) {
    if (!backingFiles.has(node.filename)) disks.push(toDisk(node.nodeName, node));
  }
  return disks.sort((a, b) => a.id.localeCompare(b.id));
}
