/**
 * The Hypervisor seam's contract, run against every implementation (fake, QEMU, XAPI on the
 * simulator): a subject gives a machine with two disks, guest writes, a way to crash a point between its
 * transaction and its commit, and views of leftovers and references. The checks model each disk
 * as a Buffer, take a copy at every point, and compare what the point yields with the model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KiB, isVmdeltaError } from '../../src/core/index.ts';
import { applyRead, expectedBlocks, readPointDisk } from './point-read.ts';
import type {
  BackupPoint,
  BackupPointRequest,
  DiskReference,
  Hypervisor,
  PointDisk,
} from '../../src/hypervisor/index.ts';

export interface ContractSubject {
  readonly hypervisor: Hypervisor;
  readonly machineId: string;
  readonly diskIds: readonly string[];
  readonly diskSizeBytes: number;
  readonly granularityBytes: number;
  write(diskId: string, offsetBytes: number, lengthBytes: number, pattern: number): Promise<void>;
  /** Starts a point elsewhere and dies between the transaction and the commit. */
  crashDuringPoint(request: BackupPointRequest): Promise<void>;
  /** The process driving the hypervisor restarts (in-process state lost, QEMU state kept). */
  restart(): Promise<void>;
  /** Temporary objects of the scope still present. */
  leftovers(scope: string): Promise<string[]>;
  /** References (bitmaps, snapshot VDIs) of the scope, "disk:token[:disabled]". */
  references(scope: string): Promise<string[]>;
  /**
   * After a point died between its transaction and its commit: the notices of the next point,
   * and how many of the references left meanwhile are ":disabled". Default (QEMU, fake): the
   * dead point's bitmaps are folded back into the frozen base, ['LEFTOVERS_REMOVED',
   * 'REFERENCES_RECOVERED'] and 2. XAPI: the dead point's snapshot is only removed (the base
   * snapshot still covers every change), ['LEFTOVERS_REMOVED'] and 0.
   */
  readonly crashRecovery?: {
    readonly notices: readonly string[];
    readonly disabledReferences: number;
  };
  close(): Promise<void>;
}

export { applyRead, expectedBlocks, readPointDisk, type ReadResult } from './point-read.ts';

class Model {
  readonly disks = new Map<string, Buffer>();
  constructor(
    readonly subject: ContractSubject,
    sizeBytes: number,
  ) {
    for (const id of subject.diskIds) this.disks.set(id, Buffer.alloc(sizeBytes));
  }
  async write(diskId: string, offset: number, length: number, pattern: number): Promise<void> {
    await this.subject.write(diskId, offset, length, pattern);
    this.disks.get(diskId)?.fill(pattern, offset, offset + length);
  }
  snapshot(): Map<string, Buffer> {
    return new Map([...this.disks].map(([id, data]) => [id, Buffer.from(data)]));
  }
}

function refs(point: BackupPoint): DiskReference[] {
  return point.disks.map((d) => d.reference);
}

/** "disk:token" of each reference of a point (one token for all disks, or one per disk). */
function currentReferences(point: BackupPoint): string[] {
  return point.disks.map((d) => `${d.disk.id}:${d.reference.token}`).sort();
}

function request(
  scope: string,
  blockSizeBytes: number,
  previous?: readonly DiskReference[],
): BackupPointRequest {
  return {
    scope,
    blockSizeBytes,
    ...(previous === undefined
      ? {}
      : { disks: previous.map((p) => ({ diskId: p.diskId, previous: p })) }),
  };
}

function hasCode(code: string) {
  return (error: unknown): boolean => isVmdeltaError(error) && error.code === code;
}

export function defineHypervisorContract(
  name: string,
  makeSubject: () => Promise<ContractSubject>,
): void {
  const MiB = 1024 * KiB;
  const scope = 'contract';

  test(`${name}: machines and disks are listed with stable ids; unknown ids are typed errors`, async () => {
    const subject = await makeSubject();
    try {
      const machines = await subject.hypervisor.listMachines();
      const machine = machines.find((m) => m.id === subject.machineId);
      assert.ok(machine, 'machine listed');
      assert.deepEqual(machine.disks.map((d) => d.id).sort(), [...subject.diskIds].sort());
      for (const disk of machine.disks) assert.equal(disk.sizeBytes, subject.diskSizeBytes);
      const again = await subject.hypervisor.getMachine(subject.machineId);
      assert.deepEqual(again.disks, machine.disks, 'same ids and identities on a second look');
      await assert.rejects(
        subject.hypervisor.getMachine('no-such-machine'),
        hasCode('HYPERVISOR_MACHINE_NOT_FOUND'),
      );
      await assert.rejects(
        subject.hypervisor.startBackupPoint(subject.machineId, {
          scope,
          blockSizeBytes: 64 * KiB,
          disks: [{ diskId: 'no-such-disk' }],
        }),
        hasCode('HYPERVISOR_DISK_NOT_FOUND'),
      );
      await assert.rejects(
        subject.hypervisor.startBackupPoint(subject.machineId, {
          scope: 'bad scope!',
          blockSizeBytes: 64 * KiB,
        }),
        hasCode('HYPERVISOR_INVALID_REQUEST'),
      );
    } finally {
      await subject.close();
    }
  });

  test(`${name}: key, delta, abort and rerun; writes during a point never leak and all reach the next delta`, async () => {
    const subject = await makeSubject();
    const blockSizeBytes = subject.granularityBytes;
    const [d0, d1] = subject.diskIds as [string, string];
    const model = new Model(subject, subject.diskSizeBytes);
    try {
      await model.write(d0, 0, MiB, 0x11);
      await model.write(d1, 3 * MiB, 200 * KiB, 0x22);

      // Point 1: a key of both disks, taken at one instant.
      const p1 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes),
      );
      const at1 = model.snapshot();
      assert.deepEqual(p1.disks.map((d) => d.disk.id).sort(), [d0, d1].sort());
      assert.deepEqual(p1.notices, []);
      await model.write(d0, 512 * KiB, 4 * KiB, 0xa1); // during the point: must not leak
      await model.write(d1, 3 * MiB, 1, 0xa2);
      for (const disk of p1.disks) {
        assert.equal(disk.plannedKind, 'full');
        assert.equal(disk.plannedFullReason?.code, 'NO_PREVIOUS_REFERENCE');
        const read = await readPointDisk(disk);
        assert.equal(read.kind, 'full');
        assert.equal(read.reason, 'NO_PREVIOUS_REFERENCE');
        const image = applyRead(Buffer.alloc(subject.diskSizeBytes), read, blockSizeBytes);
        assert.ok(
          image.equals(at1.get(disk.disk.id) ?? Buffer.alloc(0)),
          `key of ${disk.disk.id} is the point-in-time view`,
        );
      }
      await assert.rejects(
        subject.hypervisor.startBackupPoint(subject.machineId, request(scope, blockSizeBytes)),
        hasCode('HYPERVISOR_MACHINE_BUSY'),
        'one open point per machine and scope',
      );
      await p1.commit();
      assert.equal(p1.state, 'committed');
      await assert.rejects(p1.commit(), hasCode('HYPERVISOR_POINT_CLOSED'));
      assert.deepEqual(await subject.leftovers(scope), []);
      assert.equal((await subject.references(scope)).length, 2, 'one reference per disk');

      // Point 2: a delta with exactly the writes made during point 1, then aborted.
      const p2 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes, refs(p1)),
      );
      const at2 = model.snapshot();
      await model.write(d0, 5 * MiB, 70 * KiB, 0xb1); // during p2, which is aborted
      const d0Read = await readPointDisk(p2.disks.find((d) => d.disk.id === d0) as PointDisk);
      assert.equal(d0Read.kind, 'delta');
      assert.deepEqual(
        d0Read.blocks,
        expectedBlocks([[512 * KiB, 4 * KiB]], subject.granularityBytes, blockSizeBytes),
      );
      const d0Image = applyRead(at1.get(d0) ?? Buffer.alloc(0), d0Read, blockSizeBytes);
      assert.ok(
        d0Image.equals(at2.get(d0) ?? Buffer.alloc(0)),
        'delta applied to point 1 gives point 2',
      );
      await p2.abort();
      assert.equal(p2.state, 'aborted');
      await assert.rejects(p2.commit(), hasCode('HYPERVISOR_POINT_CLOSED'));
      assert.deepEqual(await subject.leftovers(scope), []);

      // Point 3 from point 1 again: every change since point 1 (during p1, during p2, after).
      await model.write(d1, 7 * MiB, 64 * KiB, 0xc2);
      const p3 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes, refs(p1)),
      );
      const at3 = model.snapshot();
      const expected = new Map([
        [
          d0,
          expectedBlocks(
            [
              [512 * KiB, 4 * KiB],
              [5 * MiB, 70 * KiB],
            ],
            subject.granularityBytes,
            blockSizeBytes,
          ),
        ],
        [
          d1,
          expectedBlocks(
            [
              [3 * MiB, 1],
              [7 * MiB, 64 * KiB],
            ],
            subject.granularityBytes,
            blockSizeBytes,
          ),
        ],
      ]);
      for (const disk of p3.disks) {
        assert.equal(disk.plannedKind, 'delta');
        const read = await readPointDisk(disk);
        assert.deepEqual(
          read.blocks,
          expected.get(disk.disk.id),
          `changed blocks of ${disk.disk.id}`,
        );
        const image = applyRead(at1.get(disk.disk.id) ?? Buffer.alloc(0), read, blockSizeBytes);
        assert.ok(image.equals(at3.get(disk.disk.id) ?? Buffer.alloc(0)));
      }
      await p3.commit();
      const after = await subject.references(scope);
      assert.deepEqual(after, currentReferences(p3), 'only the new reference remains, recording');
      assert.deepEqual(
        currentReferences(p3).map((r) => r.split(':')[0]),
        [d0, d1].sort(),
        'one per disk',
      );
      assert.deepEqual(await subject.leftovers(scope), []);
    } finally {
      await subject.close();
    }
  });

  test(`${name}: a point killed between transaction and commit loses no change and leaves nothing behind`, async () => {
    const subject = await makeSubject();
    const blockSizeBytes = 2 * subject.granularityBytes;
    const [d0, d1] = subject.diskIds as [string, string];
    const model = new Model(subject, subject.diskSizeBytes);
    try {
      await model.write(d0, 0, 2 * MiB, 0x31);
      const p1 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes),
      );
      const at1 = model.snapshot();
      await p1.commit();
      await model.write(d0, MiB, 10 * KiB, 0x41); // before the crashed point
      await subject.crashDuringPoint(request(scope, blockSizeBytes, refs(p1)));
      assert.notDeepEqual(await subject.leftovers(scope), [], 'the crash left objects behind');
      const crashed = await subject.references(scope);
      assert.equal(
        crashed.length,
        4,
        `frozen base and a newer reference per disk: ${crashed.join(' ')}`,
      );
      const recovery = subject.crashRecovery ?? {
        notices: ['LEFTOVERS_REMOVED', 'REFERENCES_RECOVERED'],
        disabledReferences: 2,
      };
      assert.equal(
        crashed.filter((r) => r.endsWith(':disabled')).length,
        recovery.disabledReferences,
      );
      await model.write(d1, 6 * MiB, 130 * KiB, 0x42); // after the crash
      const p2 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes, refs(p1)),
      );
      assert.deepEqual(
        p2.notices.map((n) => n.code),
        recovery.notices,
        'the run log learns about the recovery',
      );
      const at2 = model.snapshot();
      const expected = new Map([
        [d0, expectedBlocks([[MiB, 10 * KiB]], subject.granularityBytes, blockSizeBytes)],
        [d1, expectedBlocks([[6 * MiB, 130 * KiB]], subject.granularityBytes, blockSizeBytes)],
      ]);
      for (const disk of p2.disks) {
        assert.equal(
          disk.plannedKind,
          'delta',
          `${disk.disk.id} stays incremental after the crash`,
        );
        const read = await readPointDisk(disk);
        assert.deepEqual(read.blocks, expected.get(disk.disk.id));
        const image = applyRead(at1.get(disk.disk.id) ?? Buffer.alloc(0), read, blockSizeBytes);
        assert.ok(image.equals(at2.get(disk.disk.id) ?? Buffer.alloc(0)));
      }
      await p2.commit();
      assert.deepEqual(await subject.leftovers(scope), []);
      assert.deepEqual(await subject.references(scope), currentReferences(p2));
    } finally {
      await subject.close();
    }
  });

  test(`${name}: full reasons — key requested, foreign reference, resized disk`, async () => {
    const subject = await makeSubject();
    const blockSizeBytes = subject.granularityBytes;
    const [d0, d1] = subject.diskIds as [string, string];
    try {
      const p1 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes),
      );
      await p1.commit();
      const [r0, r1] = [d0, d1].map((id) => p1.disks.find((d) => d.disk.id === id)?.reference) as [
        DiskReference,
        DiskReference,
      ];
      const p2 = await subject.hypervisor.startBackupPoint(subject.machineId, {
        scope,
        blockSizeBytes,
        disks: [
          { diskId: d0, previous: r0, mode: 'key' },
          { diskId: d1, previous: r0 },
        ],
      });
      const byId = new Map(p2.disks.map((d) => [d.disk.id, d]));
      assert.equal(byId.get(d0)?.plannedFullReason?.code, 'KEY_REQUESTED');
      assert.equal(byId.get(d1)?.plannedFullReason?.code, 'REFERENCE_FOREIGN');
      await p2.abort();
      const resized = { ...r1, sizeBytes: r1.sizeBytes + MiB };
      const p3 = await subject.hypervisor.startBackupPoint(subject.machineId, {
        scope,
        blockSizeBytes,
        disks: [{ diskId: d1, previous: resized }],
      });
      assert.equal(p3.disks[0]?.plannedFullReason?.code, 'DISK_RESIZED');
      const read = await readPointDisk(p3.disks[0]);
      assert.equal(read.kind, 'full');
      assert.equal(read.reason, 'DISK_RESIZED');
      await p3.abort();
      // The reference of p1 is still good after those aborts.
      const p4 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes, [r0, r1]),
      );
      assert.deepEqual(
        p4.disks.map((d) => d.plannedKind),
        ['delta', 'delta'],
      );
      await p4.commit();
      assert.deepEqual(await subject.leftovers(scope), []);
    } finally {
      await subject.close();
    }
  });

  test(`${name}: a crash after the backup was stored but before commit: the next delta starts from the new reference`, async () => {
    const subject = await makeSubject();
    const blockSizeBytes = subject.granularityBytes;
    const [d0] = subject.diskIds as [string, string];
    const model = new Model(subject, subject.diskSizeBytes);
    try {
      await model.write(d0, 0, MiB, 0x51);
      const p1 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes),
      );
      await p1.commit();
      await model.write(d0, 2 * MiB, 4 * KiB, 0x52);
      const p2 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes, refs(p1)),
      );
      const at2 = model.snapshot();
      for (const disk of p2.disks) await readPointDisk(disk); // stored, manifest written...
      await subject.restart(); // ...and the process dies before commit()
      await model.write(d0, 4 * MiB, 4 * KiB, 0x53);
      const p3 = await subject.hypervisor.startBackupPoint(
        subject.machineId,
        request(scope, blockSizeBytes, refs(p2)),
      );
      const at3 = model.snapshot();
      for (const disk of p3.disks) {
        assert.equal(disk.plannedKind, 'delta');
        const read = await readPointDisk(disk);
        // Everything since p2 is there (the old reference folded in may add p1→p2 blocks).
        for (const block of expectedBlocks(
          disk.disk.id === d0 ? [[4 * MiB, 4 * KiB]] : [],
          subject.granularityBytes,
          blockSizeBytes,
        ))
          assert.ok(read.blocks.includes(block), `block ${block} of ${disk.disk.id}`);
        const image = applyRead(at2.get(disk.disk.id) ?? Buffer.alloc(0), read, blockSizeBytes);
        assert.ok(image.equals(at3.get(disk.disk.id) ?? Buffer.alloc(0)));
      }
      await p3.commit();
      assert.deepEqual(await subject.leftovers(scope), []);
      assert.equal((await subject.references(scope)).length, 2);
    } finally {
      await subject.close();
    }
  });
}
