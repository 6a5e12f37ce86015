// Pure parts of the QEMU source: the key-or-delta decision, disk discovery, names, fold actions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitmapName,
  discoverDisks,
  foldActions,
  isScopeBitmap,
  isScopeTemp,
  planDisk,
  tempName,
  type BitmapInfo,
  type BlockNode,
  type DiskReference,
} from '../../src/hypervisor/index.ts';

const scope = 'job-a';
const token = bitmapName(scope, '0123456789ab');
const bitmap: BitmapInfo = {
  name: token,
  recording: true,
  persistent: true,
  busy: false,
  inconsistent: false,
  granularityBytes: 65536,
  countBytes: 0,
};
const previous: DiskReference = {
  kind: 'qemu',
  machineId: 'vm',
  diskId: 'd0',
  diskIdentity: '/img/d0.qcow2',
  sizeBytes: 1 << 30,
  token,
  createdAtMs: 0,
  attributes: { granularityBytes: '65536' },
};
const disk = {
  id: 'd0',
  identity: '/img/d0.qcow2',
  sizeBytes: 1 << 30,
  bitmaps: [bitmap],
  hasChangeTracker: true,
};

function reason(
  overrides: { previous?: Partial<DiskReference>; disk?: Partial<typeof disk>; mode?: 'key' },
  withPrevious = true,
): string {
  const plan = planDisk({
    machineId: 'vm',
    scope,
    request: {
      diskId: 'd0',
      ...(withPrevious ? { previous: { ...previous, ...overrides.previous } } : {}),
      ...(overrides.mode === undefined ? {} : { mode: overrides.mode }),
    },
    disk: { ...disk, ...overrides.disk },
  });
  return plan.kind === 'delta' ? 'delta' : plan.reason.code;
}

test('planDisk: delta only when everything matches, otherwise the precise reason', () => {
  assert.equal(reason({}), 'delta');
  assert.equal(reason({}, false), 'NO_PREVIOUS_REFERENCE');
  assert.equal(reason({ previous: { kind: 'xapi' } }), 'REFERENCE_FOREIGN');
  assert.equal(reason({ previous: { machineId: 'other' } }), 'REFERENCE_FOREIGN');
  assert.equal(reason({ previous: { diskId: 'd1' } }), 'REFERENCE_FOREIGN');
  assert.equal(
    reason({ previous: { token: bitmapName('other', '0123456789ab') } }),
    'REFERENCE_FOREIGN',
  );
  assert.equal(reason({ mode: 'key' }), 'KEY_REQUESTED');
  assert.equal(reason({ disk: { hasChangeTracker: false } }), 'NO_CHANGE_TRACKER');
  assert.equal(reason({ disk: { sizeBytes: 2 << 30 } }), 'DISK_RESIZED');
  assert.equal(reason({ disk: { bitmaps: [] } }), 'BITMAP_MISSING');
  assert.equal(reason({ disk: { bitmaps: [], identity: '/img/new.qcow2' } }), 'DISK_REPLACED');
  // Moved image that kept its bitmaps (e.g. copied with them): still a delta.
  assert.equal(reason({ disk: { identity: '/img/moved.qcow2' } }), 'delta');
  assert.equal(
    reason({ disk: { bitmaps: [{ ...bitmap, inconsistent: true }] } }),
    'BITMAP_INCONSISTENT',
  );
  assert.equal(
    reason({ disk: { bitmaps: [{ ...bitmap, granularityBytes: 1 << 20 }] } }),
    'BITMAP_UNRECOGNISED',
  );
  assert.equal(
    reason({ disk: { bitmaps: [{ ...bitmap, recording: false }] } }),
    'BITMAP_UNRECOGNISED',
  );
});

test('names: scope tags fit node names, scopes that prefix each other do not mix', () => {
  const name = tempName('a-very-long-scope-name-for-a-job-xxxxxxxx', '0123456789ab', 'o', 12);
  assert.ok(name.length <= 31, name);
  assert.ok(isScopeTemp(name, 'a-very-long-scope-name-for-a-job-xxxxxxxx'));
  assert.equal(isScopeTemp(name, 'other'), false);
  assert.equal(isScopeBitmap(bitmapName('a-b', '0123456789ab'), 'a'), false);
  assert.equal(isScopeBitmap(bitmapName('a', '0123456789ab'), 'a'), true);
  assert.equal(isScopeBitmap('vmdelta-a-nothex', 'a'), false);
});

test('foldActions enables the base before merging, so no write falls between', () => {
  const actions = foldActions('n', 'base', false, ['s1', 's2']);
  assert.deepEqual(
    actions.map((a) => a['type']),
    [
      'block-dirty-bitmap-enable',
      'block-dirty-bitmap-merge',
      'block-dirty-bitmap-remove',
      'block-dirty-bitmap-remove',
    ],
  );
  assert.deepEqual(foldActions('n', 'base', true, []), []);
});

function node(nodeName: string, drv: string, filename: string, backingFile?: string): BlockNode {
  return {
    nodeName,
    drv,
    filename,
    virtualSizeBytes: 1 << 20,
    readOnly: false,
    bitmaps: [],
    ...(backingFile === undefined ? {} : { backingFile }),
  };
}

test('discoverDisks: devices first (qemu-system), else top format nodes (storage daemon), or pinned', () => {
  const nodes = [
    node('libvirt-1-format', 'qcow2', '/img/vda.qcow2', '/img/base.qcow2'),
    node('libvirt-1-storage', 'file', '/img/vda.qcow2'),
    node('libvirt-2-format', 'qcow2', '/img/base.qcow2'),
    node('libvirt-3-format', 'raw', '/img/vdb.raw'),
    node('#block123', 'file', '/img/vdb.raw'),
    node('vmd-abcdef-0123456789ab-o0', 'qcow2', '/scratch/o.qcow2', '/img/vdb.raw'),
  ];
  const devices = [
    {
      device: '',
      qdev: '/machine/peripheral/virtio-disk0/virtio-backend',
      nodeName: 'libvirt-1-format',
    },
    { device: 'drive-virtio-disk1', nodeName: 'libvirt-3-format' },
    { device: 'ide0-cd0' },
  ];
  const viaDevices = discoverDisks(nodes, devices);
  assert.deepEqual(
    viaDevices.map((d) => [d.id, d.nodeName, d.filename, d.persistentBitmaps]),
    [
      ['drive-virtio-disk1', 'libvirt-3-format', '/img/vdb.raw', false],
      ['virtio-disk0', 'libvirt-1-format', '/img/vda.qcow2', true],
    ],
  );
  // Storage daemon: no devices; backing images, protocol nodes, implicit and our nodes excluded.
  assert.deepEqual(
    discoverDisks(nodes, []).map((d) => d.id),
    ['libvirt-1-format', 'libvirt-3-format'],
  );
  assert.deepEqual(
    discoverDisks(
      nodes,
      [],
      [
        { id: 'system', nodeName: 'libvirt-1-format' },
        { id: 'gone', nodeName: 'x' },
      ],
    ).map((d) => d.id),
    ['system'],
  );
});
