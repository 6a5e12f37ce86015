/* global window, HTMLInputElement, HTMLSelectElement, HTMLFormElement */
/**
 * The "Backup" view: incremental backup jobs with their last run and next run, run now / key
 * backup now, and the create/edit form (machines, remotes, schedules with retention, advanced
 * settings explained in place).
 */
import { api } from './api.js';
import { badge, formatTime, h, replace } from './dom.js';
import { scheduleRows, settingsFields } from './job-form-parts.js';

/**
 * @typedef {{ id: string; cron: string; timezone: string; enabled: boolean; exportRetention: number; forceFull: boolean; name?: string }} Schedule
 * @typedef {{ fullInterval: number; preferNbd: boolean; nbdConcurrency: number; concurrency: number; diskPerVmConcurrency: number; maxExportRate: number; timeout: number; reportWhen: string; webhookUrl?: string }} Settings
 * @typedef {{ id: string; name: string; source: string; machines: { ids: string[] }; remotes: string[]; schedules: Schedule[]; settings: Settings }} Job
 * @typedef {Job & { lastRun: { runId: string; status: string; startedMs: number } | null; nextRun: { scheduleId: string; nextMs: number } | null; busy: boolean }} JobRow
 */

/**
 * @param {HTMLElement} main
 * @param {string[]} args
 */
export async function renderBackup(main, args) {
  if (args[0] === 'new' || args[0] === 'edit') {
    await renderJobForm(main, args[1]);
    return undefined;
  }
  const jobs = /** @type {JobRow[]} */ (await api('GET', '/api/jobs'));
  const message = h('p', { class: 'error', role: 'alert' });
  /**
   * @param {string} jobId
   * @param {boolean} forceFull
   */
  const runNow = async (jobId, forceFull) => {
    try {
      const answer = /** @type {{ runId: string }} */ (
        await api('POST', `/api/jobs/${encodeURIComponent(jobId)}/run`, { forceFull })
      );
      window.location.hash = `#/runs/${encodeURIComponent(answer.runId)}`;
    } catch (error) {
      message.textContent = error instanceof Error ? error.message : String(error);
    }
  };
  replace(
    main,
    h(
      'div',
      { class: 'row' },
      h('h2', {}, 'Incremental backup jobs'),
      h('a', { href: '#/backup/new' }, h('button', { id: 'new-job' }, 'New job')),
    ),
    message,
    jobs.length === 0
      ? h('p', { class: 'muted' }, 'No job yet: create one.')
      : h(
          'table',
          { id: 'jobs' },
          h(
            'tr',
            {},
            ['Job', 'Machines → remotes', 'Schedules', 'Last run', 'Next run', ''].map((t) =>
              h('th', {}, t),
            ),
          ),
          jobs.map((job) =>
            h(
              'tr',
              { 'data-job': job.id },
              h('td', {}, h('strong', {}, job.name), h('br'), h('small', {}, job.id)),
              h('td', {}, `${job.machines.ids.join(', ')} → ${job.remotes.join(', ')}`),
              h(
                'td',
                {},
                job.schedules.map((s) =>
                  h(
                    'div',
                    {},
                    `${s.cron} (${s.timezone}), keep ${s.exportRetention}`,
                    s.forceFull ? ' · key backups' : '',
                    s.enabled ? '' : ' · disabled',
                  ),
                ),
              ),
              h(
                'td',
                { class: 'last-run' },
                job.busy
                  ? badge('running')
                  : job.lastRun === null
                    ? h('span', { class: 'muted' }, 'never run')
                    : h(
                        'a',
                        { href: `#/runs/${encodeURIComponent(job.lastRun.runId)}` },
                        badge(job.lastRun.status),
                        ' ',
                        formatTime(job.lastRun.startedMs),
                      ),
              ),
              h('td', {}, job.nextRun === null ? '—' : formatTime(job.nextRun.nextMs)),
              h(
                'td',
                { class: 'row' },
                h(
                  'button',
                  {
                    class: 'run-now',
                    disabled: job.busy,
                    onclick: () => void runNow(job.id, false),
                  },
                  'Run now',
                ),
                h(
                  'button',
                  {
                    class: 'secondary',
                    title: 'read every disk whole and write a new key backup on every remote',
                    disabled: job.busy,
                    onclick: () => void runNow(job.id, true),
                  },
                  'Key backup now',
                ),
                h(
                  'a',
                  { href: `#/backup/edit/${encodeURIComponent(job.id)}` },
                  h('button', { class: 'secondary' }, 'Edit'),
                ),
              ),
            ),
          ),
        ),
  );
  return undefined;
}

/**
 * @param {HTMLElement} main
 * @param {string | undefined} jobId
 */
async function renderJobForm(main, jobId) {
  const [sources, remotes, existing] = await Promise.all([
    /** @type {Promise<{ id: string; name?: string }[]>} */ (api('GET', '/api/sources')),
    /** @type {Promise<{ id: string; name?: string }[]>} */ (api('GET', '/api/remotes')),
    jobId === undefined
      ? Promise.resolve(undefined)
      : /** @type {Promise<Job>} */ (api('GET', `/api/jobs/${encodeURIComponent(jobId)}`)),
  ]);
  const machineBox = h('div', { class: 'grid', id: 'machines' });
  const sourceSelect = h(
    'select',
    { name: 'source', required: true },
    sources.map((s) =>
      h('option', { value: s.id, selected: existing?.source === s.id }, s.name ?? s.id),
    ),
  );
  const loadMachines = async () => {
    if (!(sourceSelect instanceof HTMLSelectElement) || sourceSelect.value === '') return;
    replace(machineBox, h('span', { class: 'muted' }, 'loading machines…'));
    try {
      const machines = /** @type {{ id: string; label: string; disks: unknown[] }[]} */ (
        await api('GET', `/api/sources/${encodeURIComponent(sourceSelect.value)}/machines`)
      );
      replace(
        machineBox,
        machines.map((m) =>
          h(
            'label',
            { class: 'inline' },
            h('input', {
              type: 'checkbox',
              name: 'machine',
              value: m.id,
              checked: existing?.machines.ids.includes(m.id) ?? false,
            }),
            `${m.label} (${m.id}, ${m.disks.length} disks)`,
          ),
        ),
      );
    } catch (error) {
      replace(machineBox, h('span', { class: 'error' }, String(error)));
    }
  };
  sourceSelect.addEventListener('change', () => void loadMachines());
  const schedules = scheduleRows(existing?.schedules ?? []);
  const message = h('p', { class: 'error', role: 'alert', id: 'form-error' });
  const form = h(
    'form',
    { id: 'job-form', class: 'card' },
    h('h2', {}, existing === undefined ? 'New incremental backup job' : `Edit ${existing.name}`),
    h(
      'div',
      { class: 'grid' },
      h(
        'label',
        {},
        'Id',
        h('input', {
          name: 'id',
          required: true,
          pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]*',
          value: existing?.id ?? '',
          readonly: existing !== undefined,
        }),
        h('small', {}, 'letters, digits, ".", "_" and "-"; never changes'),
      ),
      h(
        'label',
        {},
        'Name',
        h('input', { name: 'name', required: true, value: existing?.name ?? '' }),
      ),
      h('label', {}, 'Hypervisor source', sourceSelect),
    ),
    h('h3', {}, 'Machines'),
    machineBox,
    h('h3', {}, 'Remotes'),
    h(
      'div',
      { class: 'grid', id: 'remotes' },
      remotes.map((r) =>
        h(
          'label',
          { class: 'inline' },
          h('input', {
            type: 'checkbox',
            name: 'remote',
            value: r.id,
            checked: existing?.remotes.includes(r.id) ?? false,
          }),
          r.name ?? r.id,
        ),
      ),
      h('small', {}, 'every backup is written to each checked remote'),
    ),
    schedules.element,
    settingsFields(existing?.settings),
    message,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit', id: 'save-job' }, 'Save'),
      h('a', { href: '#/backup' }, 'Cancel'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!(form instanceof HTMLFormElement)) return;
    /** @param {string} name */
    const field = (name) => {
      const element = form.elements.namedItem(name);
      return element instanceof HTMLInputElement || element instanceof HTMLSelectElement
        ? element
        : undefined;
    };
    /** @param {string} name */
    const checked = (name) =>
      [...form.querySelectorAll(`input[name="${name}"]`)]
        .filter((e) => e instanceof HTMLInputElement && e.checked)
        .map((e) => /** @type {HTMLInputElement} */ (e).value);
    /** @param {string} name */
    const num = (name) => Number(field(name)?.value ?? 0);
    const webhookUrl = field('webhookUrl')?.value ?? '';
    const id = field('id')?.value ?? '';
    const job = {
      name: field('name')?.value,
      source: field('source')?.value,
      machines: { ids: checked('machine') },
      remotes: checked('remote'),
      schedules: schedules.read(),
      settings: {
        fullInterval: num('fullInterval'),
        preferNbd: checked('preferNbd').length > 0,
        nbdConcurrency: num('nbdConcurrency'),
        concurrency: num('concurrency'),
        maxExportRate: Math.round(num('maxExportRateMiB') * 1024 * 1024),
        timeout: Math.round(num('timeoutMinutes') * 60_000),
        reportWhen: field('reportWhen')?.value,
        ...(webhookUrl === '' ? {} : { webhookUrl }),
      },
    };
    void api('PUT', `/api/jobs/${encodeURIComponent(id)}`, job).then(
      () => {
        window.location.hash = '#/backup';
      },
      (/** @type {unknown} */ error) => {
        message.textContent = error instanceof Error ? error.message : String(error);
      },
    );
  });
  replace(main, form);
  await loadMachines();
}
