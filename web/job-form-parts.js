/* global HTMLInputElement */
/**
 * Parts of the job form: the schedule rows (cron, time zone, retention, key-backup schedules)
 * and the advanced settings, each with its explanation in place. Setting names are Xen
 * Orchestra's (fullInterval, preferNbd, nbdConcurrency, concurrency, maxExportRate, timeout).
 */
import { h } from './dom.js';

/**
 * @typedef {{ id: string; cron: string; timezone: string; enabled: boolean; exportRetention: number; forceFull: boolean }} ScheduleInput
 */

/** @param {Partial<ScheduleInput>} schedule */
function scheduleRow(schedule) {
  /** @type {HTMLElement} */
  const row = h(
    'tr',
    { class: 'schedule' },
    h(
      'td',
      {},
      h('input', { name: 's-id', required: true, size: 8, value: schedule.id ?? 'nightly' }),
    ),
    h(
      'td',
      {},
      h('input', { name: 's-cron', required: true, size: 14, value: schedule.cron ?? '0 2 * * *' }),
    ),
    h('td', {}, h('input', { name: 's-timezone', size: 14, value: schedule.timezone ?? 'UTC' })),
    h(
      'td',
      {},
      h('input', {
        name: 's-retention',
        type: 'number',
        min: 1,
        required: true,
        value: schedule.exportRetention ?? 7,
      }),
    ),
    h(
      'td',
      {},
      h('input', { name: 's-forceFull', type: 'checkbox', checked: schedule.forceFull ?? false }),
    ),
    h(
      'td',
      {},
      h('input', { name: 's-enabled', type: 'checkbox', checked: schedule.enabled ?? true }),
    ),
    h(
      'td',
      {},
      h('button', { type: 'button', class: 'secondary', onclick: () => row.remove() }, 'Remove'),
    ),
  );
  return row;
}

/** @param {ScheduleInput[]} schedules */
export function scheduleRows(schedules) {
  const body = h('tbody', {}, (schedules.length === 0 ? [{}] : schedules).map(scheduleRow));
  const element = h(
    'div',
    {},
    h('h3', {}, 'Schedules'),
    h(
      'small',
      {},
      'Cron expressions (minute hour day month weekday) in the given time zone. Retention: restore points kept on each remote for this schedule; older ones are merged into the key backup. "Key backups": every run of this schedule is a key (full) backup.',
    ),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Id', 'Cron', 'Time zone', 'Retention', 'Key backups', 'Enabled', ''].map((t) =>
            h('th', {}, t),
          ),
        ),
      ),
      body,
    ),
    h(
      'button',
      { type: 'button', class: 'secondary', onclick: () => body.append(scheduleRow({ id: '' })) },
      'Add schedule',
    ),
  );
  const read = () =>
    [...body.querySelectorAll('tr.schedule')].map((row) => {
      /** @param {string} name */
      const input = (name) => {
        const e = row.querySelector(`input[name="${name}"]`);
        return e instanceof HTMLInputElement ? e : undefined;
      };
      return {
        id: input('s-id')?.value ?? '',
        cron: input('s-cron')?.value ?? '',
        timezone: input('s-timezone')?.value ?? 'UTC',
        exportRetention: Number(input('s-retention')?.value ?? 1),
        forceFull: input('s-forceFull')?.checked ?? false,
        enabled: input('s-enabled')?.checked ?? true,
      };
    });
  return { element, read };
}

/**
 * @param {string} label
 * @param {HTMLElement} input
 * @param {string} help
 */
function field(label, input, help) {
  return h('label', {}, label, input, h('small', {}, help));
}

/**
 * @param {{ fullInterval: number; preferNbd: boolean; nbdConcurrency: number; concurrency: number; maxExportRate: number; timeout: number; reportWhen: string; webhookUrl?: string } | undefined} s
 */
export function settingsFields(s) {
  const reportWhen = s?.reportWhen ?? 'failure';
  return h(
    'details',
    { id: 'advanced' },
    h('summary', {}, 'Advanced settings'),
    h(
      'div',
      { class: 'grid' },
      field(
        'Key backup interval (fullInterval)',
        h('input', { name: 'fullInterval', type: 'number', min: 0, value: s?.fullInterval ?? 20 }),
        'N: one key (full) backup then N-1 deltas, which bounds how long a corrupt block can live. 0 never forces a key. 20 is the usual choice.',
      ),
      h(
        'label',
        {},
        h(
          'span',
          { class: 'row' },
          h('input', {
            name: 'preferNbd',
            type: 'checkbox',
            value: 'on',
            checked: s?.preferNbd ?? true,
          }),
          'Read disks over NBD (preferNbd)',
        ),
        h(
          'small',
          {},
          'NBD reads only the changed blocks, several connections in parallel. Off: the source’s export stream is used. The run log says “Transfer data using NBD” or why it fell back.',
        ),
      ),
      field(
        'NBD connections per disk (nbdConcurrency)',
        h('input', {
          name: 'nbdConcurrency',
          type: 'number',
          min: 1,
          max: 16,
          value: s?.nbdConcurrency ?? 2,
        }),
        'More connections read faster from fast storage but load the hypervisor host more (default 2).',
      ),
      field(
        'Machines in parallel (concurrency)',
        h('input', { name: 'concurrency', type: 'number', min: 0, value: s?.concurrency ?? 2 }),
        'How many machines of this job are backed up at once. 0 = all at once.',
      ),
      field(
        'Bandwidth limit, MiB/s (maxExportRate)',
        h('input', {
          name: 'maxExportRateMiB',
          type: 'number',
          min: 0,
          step: 'any',
          value: (s?.maxExportRate ?? 0) / (1024 * 1024),
        }),
        'Read rate limit for the whole run, to spare production storage. 0 = unlimited.',
      ),
      field(
        'Timeout, minutes',
        h('input', {
          name: 'timeoutMinutes',
          type: 'number',
          min: 0,
          step: 'any',
          value: (s?.timeout ?? 0) / 60_000,
        }),
        'A run still going after this time is stopped and reported as failed. 0 = no limit.',
      ),
      field(
        'Report (reportWhen)',
        h(
          'select',
          { name: 'reportWhen' },
          ['failure', 'always', 'never'].map((v) =>
            h('option', { value: v, selected: v === reportWhen }, v),
          ),
        ),
        'When the webhook below is called with the run summary.',
      ),
      field(
        'Webhook URL',
        h('input', { name: 'webhookUrl', type: 'url', value: s?.webhookUrl ?? '' }),
        'Receives a JSON POST with the run summary. Optional.',
      ),
    ),
  );
}
