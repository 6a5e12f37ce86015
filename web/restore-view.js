/* global HTMLInputElement, HTMLSelectElement */
/**
 * The Restore view: pick a machine, see its restore points on a timeline per remote (key and
 * delta marked per disk), pick one and restore it to new image files in a folder on the server,
 * with live progress (work-progress events tagged with the request's progressId).
 */
import { api, onLiveEvent } from './api.js';
import { badge, formatBytes, formatTime, h, replace } from './dom.js';

/**
 * @typedef {{ diskId: string; name: string; sizeBytes: number; kind: string; storedBytes: number; changedBlocks: number }} PointDisk
 * @typedef {{ remoteId: string; vmId: string; pointId: string; createdMs: number; label: string; disks: PointDisk[] }} Point
 */

/**
 * @param {HTMLElement} main
 * @param {string[]} args
 */
export async function renderRestore(main, args) {
  const answer =
    /** @type {{ machines: Record<string, { label: string; remotes: Record<string, number> }>; errors: { remoteId: string; message: string }[] }} */ (
      await api('GET', '/api/machines')
    );
  const ids = Object.keys(answer.machines);
  const selected = args[0] ?? ids[0];
  const pointsBox = h('div', { id: 'points' });
  const select = h(
    'select',
    { id: 'machine-select' },
    ids.map((id) =>
      h(
        'option',
        { value: id, selected: id === selected },
        `${answer.machines[id]?.label ?? id} (${id})`,
      ),
    ),
  );
  select.addEventListener('change', () => {
    if (select instanceof HTMLSelectElement) void showPoints(pointsBox, select.value);
  });
  replace(
    main,
    h('h2', {}, 'Restore'),
    ids.length === 0
      ? h('p', { class: 'muted' }, 'No restore point on any remote yet.')
      : h('label', { class: 'inline' }, 'Machine', select),
    answer.errors.map((e) => h('p', { class: 'error' }, `remote ${e.remoteId}: ${e.message}`)),
    pointsBox,
  );
  if (selected !== undefined) await showPoints(pointsBox, selected);
  return undefined;
}

/**
 * @param {HTMLElement} box
 * @param {string} vmId
 */
async function showPoints(box, vmId) {
  const answer = /** @type {{ remotes: Record<string, Point[]> }} */ (
    await api('GET', `/api/machines/${encodeURIComponent(vmId)}/restore-points`)
  );
  const detail = h('div', { id: 'point-detail' });
  replace(
    box,
    Object.entries(answer.remotes).map(([remoteId, points]) =>
      points.length === 0
        ? null
        : h(
            'div',
            { class: 'card' },
            h('h3', {}, `On remote ${remoteId}: ${points.length} restore points`),
            h(
              'div',
              { class: 'timeline' },
              points.map((p) => {
                const isKey = p.disks.some((d) => d.kind === 'key');
                const button = h(
                  'button',
                  {
                    type: 'button',
                    class: 'point',
                    'data-point': p.pointId,
                    title: p.pointId,
                    onclick: () => {
                      for (const b of box.querySelectorAll('.point'))
                        b.classList.remove('selected');
                      button.classList.add('selected');
                      showDetail(detail, p);
                    },
                  },
                  badge(isKey ? 'key' : 'delta'),
                  h('span', {}, formatTime(p.createdMs)),
                  h(
                    'small',
                    {},
                    formatBytes(p.disks.reduce((n, d) => n + d.storedBytes, 0)) + ' stored',
                  ),
                );
                return button;
              }),
            ),
          ),
    ),
    detail,
  );
}

/**
 * @param {HTMLElement} box
 * @param {Point} point
 */
function showDetail(box, point) {
  const dir = h('input', {
    name: 'dir',
    size: 50,
    value: `/tmp/vmdelta-restore/${point.vmId}-${point.pointId}`,
  });
  const format = h(
    'select',
    { name: 'format' },
    ['qcow2', 'raw', 'vhd'].map((f) => h('option', { value: f }, f)),
  );
  const result = h('div', { id: 'restore-result' });
  const button = h('button', { id: 'restore-button', type: 'button' }, 'Restore');
  button.addEventListener('click', () => {
    if (!(dir instanceof HTMLInputElement) || !(format instanceof HTMLSelectElement)) return;
    button.setAttribute('disabled', '');
    const line = h('p', { class: 'muted', id: 'restore-progress' }, 'restoring…');
    replace(result, line);
    const progressId = `restore-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const stop = onLiveEvent((event) => {
      if (event.type !== 'work-progress' || event.data['progressId'] !== progressId) return;
      const done = Number(event.data['doneBytes']);
      const total = Number(event.data['totalBytes']);
      const item = typeof event.data['item'] === 'string' ? ` ${event.data['item']}` : '';
      const share = total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : '';
      replace(line, `restoring${item}: ${formatBytes(done)} of ${formatBytes(total)}${share}`);
    });
    api('POST', '/api/restore', {
      remoteId: point.remoteId,
      vmId: point.vmId,
      pointId: point.pointId,
      dir: dir.value,
      format: format.value,
      progressId,
    }).then(
      (answer) => {
        stop();
        const files =
          /** @type {{ files: { diskId: string; path: string; sizeBytes: number }[] }} */ (answer)
            .files;
        replace(
          result,
          h('p', {}, badge('done'), ` restored ${files.length} disk(s):`),
          h(
            'ul',
            {},
            files.map((f) =>
              h(
                'li',
                { class: 'restored-file' },
                `${f.diskId} → ${f.path} (${formatBytes(f.sizeBytes)})`,
              ),
            ),
          ),
        );
        button.removeAttribute('disabled');
      },
      (/** @type {unknown} */ error) => {
        stop();
        replace(
          result,
          h('p', { class: 'error' }, error instanceof Error ? error.message : String(error)),
        );
        button.removeAttribute('disabled');
      },
    );
  });
  replace(
    box,
    h(
      'div',
      { class: 'card' },
      h('h3', {}, `Restore point ${point.pointId} on ${point.remoteId}`),
      h(
        'table',
        {},
        h(
          'tr',
          {},
          ['Disk', 'Kind', 'Size', 'Stored', 'Changed blocks'].map((t) => h('th', {}, t)),
        ),
        point.disks.map((d) =>
          h(
            'tr',
            {},
            h('td', {}, d.name),
            h('td', {}, badge(d.kind)),
            h('td', {}, formatBytes(d.sizeBytes)),
            h('td', {}, formatBytes(d.storedBytes)),
            h('td', {}, d.changedBlocks),
          ),
        ),
      ),
      h(
        'div',
        { class: 'row' },
        h('label', {}, 'Into the folder (on the server; new files, never overwritten)', dir),
        h('label', {}, 'Format', format),
        button,
      ),
      result,
    ),
  );
}
