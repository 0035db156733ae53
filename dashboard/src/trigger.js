// What started a run: a schedule's clock, new data (the object, table or file), a person (API, CLI, page, a
// schedule's Run now), a retry or a GPU fallback — for the run card and the run view.
//
// A run carries it as one typed field, `trigger: {kind, by, at, detail}` (issue 27 part 3); a run written
// before that field existed is read from what it had: triggered_by ("schedule" | "manual" | "data"),
// schedule_id and scheduled_at, data_trigger {source, location, version, occurred_at}, created_by, and
// last_retry / the attempts' retried_by for the attempt under way.
import { esc, humanize, when } from './format.js';

// The GPU fallback retries as this principal (shared/services/actions/gpu_fallback.py).
const GPU_FALLBACK_BY = 'trainyard (gpu fallback)';
const WORDS = {
  schedule: ['⏰', 'Schedule'], data: ['📥', 'New data'], manual: ['👤', 'Manual'], retry: ['🔁', 'Retry'],
  gpu_fallback: ['🔀', 'GPU fallback'],
};
const SOURCE = { gcs: 'object', bigquery: 'table', folder: 'file' };

/** The run's trigger as {kind, by, at, detail}: its own `trigger` when it has one, else derived; null when
 * nothing says (a run of no creator, schedule or data). */
export function triggerOf(run) {
  if (run?.trigger?.kind) return run.trigger;
  if (!run) return null;
  if (run.data_trigger || run.triggered_by === 'data') {
    // a schedule's run is created by the schedule's creator: nobody asked for this one by hand
    return { kind: 'data', by: null, at: run.data_trigger?.received_at || run.created_at, detail: run.data_trigger || null };
  }
  if (run.schedule_id && run.triggered_by !== 'manual') {
    return { kind: 'schedule', by: null, at: run.scheduled_at || run.created_at, detail: { schedule_id: run.schedule_id } };
  }
  if (run.schedule_id) { // a schedule's Run now: who pressed it is not on the run
    return { kind: 'manual', by: null, at: run.created_at, detail: { schedule_id: run.schedule_id, run_now: true } };
  }
  if (run.created_by) return { kind: 'manual', by: run.created_by, at: run.created_at, detail: null };
  return null;
}

/** What started the attempt under way when it is not the first: {kind: retry | gpu_fallback, by, at, attempt}. */
export function restartOf(run) {
  if (!run || !(run.attempt > 1)) return null;
  const last = run.last_retry?.attempt === run.attempt ? run.last_retry : null;
  const earlier = (run.attempts || []).find((a) => a.attempt === run.attempt - 1);
  const by = last?.by || earlier?.retried_by || null;
  if (!by) return null;
  return { kind: by === GPU_FALLBACK_BY ? 'gpu_fallback' : 'retry', by, at: last?.at || earlier?.retried_at || null, attempt: run.attempt };
}

/** The detail in words: the object/table/file for new data, the schedule, or the detail's own fields. */
function detailText(kind, detail) {
  if (detail == null || detail === '') return '';
  if (typeof detail !== 'object') return String(detail);
  if (detail.location) {
    const what = SOURCE[detail.source] || detail.source || 'data';
    return `${what} ${detail.location}${detail.version ? ` (${detail.source === 'bigquery' ? 'job' : detail.source === 'gcs' ? 'generation' : 'version'} ${detail.version})` : ''}`;
  }
  if (kind === 'schedule' || kind === 'manual') {
    const slot = detail.slot ? ` slot ${when(detail.slot)}` : '';
    const runNow = detail.run_now ? ' (Run now)' : '';
    return detail.schedule_id ? `schedule ${detail.schedule_id}${slot}${runNow}` : slot.trim();
  }
  return Object.entries(detail).filter(([, v]) => v != null && v !== '' && typeof v !== 'object')
    .map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`).join(', ');
}

const label = (kind) => WORDS[kind] || ['•', humanize(kind)];

/** One line: "⏰ Schedule · schedule ts-1 slot 2026-12-06T02:00 · 2026-12-06 02:00 UTC", then
 * " · attempt 2: 🔀 GPU fallback by trainyard (gpu fallback)" when a later attempt runs. '' when unknown. */
export function triggerText(run) {
  const t = triggerOf(run);
  const parts = [];
  if (t) {
    const [icon, words] = label(t.kind);
    const detail = detailText(t.kind, t.detail);
    parts.push([`${icon} ${words}`, t.by ? `by ${t.by}` : ''].filter(Boolean).join(' '), detail, t.at ? when(t.at) : '');
  }
  const restart = restartOf(run);
  if (restart && !(t && t.kind === restart.kind)) {
    const [icon, words] = label(restart.kind);
    parts.push(`attempt ${restart.attempt}: ${icon} ${words} by ${restart.by}`);
  }
  return parts.filter(Boolean).join(' · ');
}

/** The card's short form: the kind and, for data, where it landed; the rest is in the tooltip. */
export function triggerBadge(run) {
  const t = triggerOf(run);
  const restart = restartOf(run);
  if (!t && !restart) return '';
  const shown = restart && !(t && t.kind === restart.kind) ? restart : t;
  const [icon, words] = label(shown.kind);
  const where = shown.kind === 'data' && shown.detail?.location ? ` ${shown.detail.location}` : '';
  return `<span data-role="trigger" data-trigger="${esc(shown.kind)}" title="${esc(triggerText(run))}">${icon} ${esc(words)}${esc(where)}</span>`;
}

// ------------------------------------------------------------------ schedules: what starts their runs

const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const dayName = (day) => (typeof day === 'number' || /^\d$/.test(String(day)) ? DAY_NAMES[Number(day)] : String(day));

/** Where a schedule's data_trigger watches (docs/schedules.md "On new data"). */
export function dataTriggerWhere(t) {
  if (!t) return '';
  if (t.source === 'gcs') return `gs://${t.bucket}/${t.prefix || ''}`;
  if (t.source === 'bigquery') return `table ${t.table}`;
  return `folder ${t.path}`;
}

/** When a schedule fires: its clock, and/or new data (where, at most how often). */
export function scheduleWhen(s) {
  const clock = {
    once: () => `once at ${when(s.run_at || s.next_run_at)}`,
    daily: () => `daily at ${s.time_of_day} ${s.timezone}`,
    weekly: () => `weekly on ${dayName(s.day_of_week)} at ${s.time_of_day} ${s.timezone}`,
    cron: () => `cron ${s.cron_expression} ${s.timezone || ''}`.trim(),
  }[s.schedule_type];
  const data = s.data_trigger
    ? `when new data lands in ${dataTriggerWhere(s.data_trigger)} (at most one run per ${s.data_trigger.min_interval_minutes ?? 60} min)` : '';
  return [clock ? clock() : '', data].filter(Boolean).join(', and ') || humanize(s.schedule_type);
}

/** The newest data event a schedule saw and what became of it ("fired tr-…", "recorded: within …"). */
export function lastDataEventText(s) {
  const e = s.last_data_trigger;
  if (!e) return s.data_trigger ? 'no new data seen yet' : '';
  const what = `${SOURCE[e.source] || e.source} ${e.location}`;
  const outcome = e.outcome === 'fired' ? `started ${e.run_id}` : `${e.outcome}${e.reason ? `: ${e.reason}` : ''}`;
  return `last new data: ${what} at ${when(e.occurred_at)} → ${outcome}`;
}
