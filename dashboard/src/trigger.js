// What started a run: a schedule's clock, new data (the object, table or file), a person (API, CLI, page, a
// schedule's Run now), a retry or a GPU fallback — for the run card and the run view.
//
// A run carries it as one typed field, `trigger` (shared/domain/run_document.py Trigger, shared/domain/triggers.py):
// {kind: manual | schedule | run_now | data | retry | gpu_fallback, at, by, via (cli | api), attempt, schedule_id,
// slot, data {source, location, version, …}, first (a retry's or fallback's: what started the first attempt)}.
// A free-form `detail` (a string, or an object with location / schedule_id / other fields) is shown too. A run
// written before the field existed is read into the same shape from what it had: triggered_by ("schedule" |
// "manual" = a schedule's Run now | "data"), schedule_id, scheduled_at, data_trigger, created_by, and last_retry /
// attempts[].retried_by for the attempt under way.
import { esc, humanize, when } from './format.js';

// Trainyard's own principals (shared/domain/triggers.py, shared/services/actions/gpu_fallback.py).
const SCHEDULE_CLOCK = 'trainyard (schedule)';
const GPU_FALLBACK_BY = 'trainyard (gpu fallback)';
const WORDS = {
  schedule: ['⏰', 'Schedule'], run_now: ['▶', 'Run now'], data: ['📥', 'New data'], manual: ['👤', 'Manual'],
  retry: ['🔁', 'Retry'], gpu_fallback: ['🔀', 'GPU fallback'],
};
const SOURCE = { gcs: 'object', bigquery: 'table', folder: 'file' };
const VERSION = { gcs: 'generation', bigquery: 'job' };

/** The run's trigger in the typed shape: its own `trigger` when it has one, else derived; null when nothing says
 * (a run of no creator, schedule or data). */
export function triggerOf(run) {
  if (run?.trigger?.kind) return run.trigger;
  if (!run) return null;
  if (run.data_trigger || run.triggered_by === 'data') {
    // a schedule's run is created by the schedule's creator: nobody asked for this one by hand
    return { kind: 'data', by: null, at: run.data_trigger?.received_at || run.created_at, schedule_id: run.schedule_id || null,
      data: run.data_trigger || null };
  }
  if (run.schedule_id && run.triggered_by !== 'manual') {
    return { kind: 'schedule', by: null, at: run.scheduled_at || run.created_at, schedule_id: run.schedule_id, slot: run.scheduled_at || null };
  }
  // a schedule's Run now: who pressed it is not on a run of before the typed field
  if (run.schedule_id) return { kind: 'run_now', by: null, at: run.created_at, schedule_id: run.schedule_id };
  if (run.created_by) return { kind: 'manual', by: run.created_by, at: run.created_at };
  return null;
}

/** What started the attempt under way when it is not the first and the run has no typed trigger:
 * {kind: retry | gpu_fallback, by, at, attempt}. */
export function restartOf(run) {
  if (!run || run.trigger?.kind || !(run.attempt > 1)) return null;
  const last = run.last_retry?.attempt === run.attempt ? run.last_retry : null;
  const earlier = (run.attempts || []).find((a) => a.attempt === run.attempt - 1);
  const by = last?.by || earlier?.retried_by || null;
  if (!by) return null;
  return { kind: by === GPU_FALLBACK_BY ? 'gpu_fallback' : 'retry', by, at: last?.at || earlier?.retried_at || null, attempt: run.attempt };
}

/** The landed data in words: "object gs://b/x (generation 17)". */
function dataText(data) {
  if (!data?.location) return '';
  const version = data.version ? ` (${VERSION[data.source] || 'version'} ${data.version})` : '';
  return `${SOURCE[data.source] || data.source || 'data'} ${data.location}${version}`;
}

/** Where it came from: the data, the schedule and its slot, a free-form detail. */
function detailText(t) {
  const detail = t.detail;
  const object = detail && typeof detail === 'object' ? detail : {};
  const scheduleId = t.schedule_id || object.schedule_id;
  const slot = t.slot || object.slot;
  const parts = [dataText(t.data || (object.location ? object : null)),
    scheduleId ? `schedule ${scheduleId}${slot && t.kind === 'schedule' ? ` slot ${when(slot)}` : ''}` : ''];
  if (detail != null && typeof detail !== 'object' && detail !== '') parts.push(String(detail));
  else if (!object.location && !object.schedule_id) {
    parts.push(Object.entries(object).filter(([, v]) => v != null && v !== '' && typeof v !== 'object')
      .map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`).join(', '));
  }
  return parts.filter(Boolean).join(' · ');
}

const label = (kind) => WORDS[kind] || ['•', humanize(kind)];

function oneLine(t) {
  const [icon, words] = label(t.kind);
  const who = t.by && t.by !== SCHEDULE_CLOCK ? `by ${t.by}` : '';
  const via = t.via ? `(${String(t.via).toUpperCase()})` : '';
  const attempt = ['retry', 'gpu_fallback'].includes(t.kind) && t.attempt ? `attempt ${t.attempt}` : '';
  return [[`${icon} ${words}`, who, via].filter(Boolean).join(' '), detailText(t), attempt, t.at ? when(t.at) : '']
    .filter(Boolean).join(' · ');
}

/** One line: "📥 New data · object gs://b/x (generation 17) · schedule ts-1 · 2026-12-06 02:00 UTC"; a retry or
 * fallback adds " · first: …" (what started the run), a run of before the typed field " · attempt 2: 🔁 Retry by …".
 * '' when unknown. */
export function triggerText(run) {
  const t = triggerOf(run);
  const parts = t ? [oneLine(t)] : [];
  if (t?.first?.kind) parts.push(`first: ${oneLine(t.first)}`);
  const restart = restartOf(run);
  if (restart && !(t && t.kind === restart.kind)) {
    const [icon, words] = label(restart.kind);
    parts.push(`attempt ${restart.attempt}: ${icon} ${words} by ${restart.by}`);
  }
  return parts.join(' · ');
}

/** The card's short form: the kind and, for data, where it landed; the rest is in the tooltip. */
export function triggerBadge(run) {
  const t = triggerOf(run);
  const restart = restartOf(run);
  if (!t && !restart) return '';
  const shown = restart && !(t && t.kind === restart.kind) ? restart : t;
  const [icon, words] = label(shown.kind);
  const location = shown.data?.location || shown.detail?.location;
  const where = shown.kind === 'data' && location ? ` ${location}` : '';
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
