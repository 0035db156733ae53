// A staged deploy's settings as the page edits them (the wizard's deployment step and the Deploy dialog):
// the API's CanaryConfig (shared/domain/canary.py) with the error rate in percent, its fields, its words.
import { canaryDefaults, esc } from './format.js';
import { errorSlot } from './fielderrors.js';

/** A fraction as a percent for a form field ('' for none). */
export const percent = (fraction) => (fraction == null ? '' : Number((fraction * 100).toFixed(6)));

/** The form's starting point: a stored canary (a run's deployment_config.canary) as it is, else off with the
 * server's limits where it has them; the share and the watch, which the API asks for, at docs/lifecycle.md's
 * example (10 % for 30 min). */
export function canaryStart(stored = null) {
  const c = { ...canaryDefaults(), percent: 10, watch_minutes: 30, ...(stored || {}) };
  return { enabled: Boolean(stored), percent: c.percent, watch_minutes: c.watch_minutes, max_error_rate_pct: percent(c.max_error_rate),
    max_p95_latency_ms: c.max_p95_latency_ms ?? '', min_requests: c.min_requests ?? '' };
}

/** The API's `canary` from the form; null when the deploy is not staged. An empty optional field is left out
 * for the server's default; an empty required one (percent, watch_minutes) comes back as the API's 400. */
export function canaryBody(c) {
  if (!c?.enabled) return null;
  const n = (v) => (v === '' || v == null ? undefined : Number(v));
  return { percent: n(c.percent), watch_minutes: n(c.watch_minutes),
    max_error_rate: n(c.max_error_rate_pct) === undefined ? undefined : Number(c.max_error_rate_pct) / 100,
    max_p95_latency_ms: n(c.max_p95_latency_ms), min_requests: n(c.min_requests) };
}

/** "canary 10% for 30 min, rolled back above 1% errors or p95 250 ms (over ≥ 20 requests), then 100%". */
export function canaryText(canary) {
  if (!canary) return '';
  const c = { ...canaryDefaults(), ...Object.fromEntries(Object.entries(canary).filter(([, v]) => v !== undefined)) };
  return `canary ${c.percent ?? '?'}% for ${c.watch_minutes ?? '?'} min, rolled back above ${percent(c.max_error_rate)}% errors`
    + `${c.max_p95_latency_ms != null ? ` or p95 ${c.max_p95_latency_ms} ms` : ''} (over ≥ ${c.min_requests} requests), then 100%`;
}

/** The fields: inputs bound to `${bind}.<key>` (data-bind), errors under `${errors}.<API field>`. */
export function canaryFields(c, { bind, errors }) {
  const f = (key, label, value, attrs) => `<div class="field"><label class="lbl">${label}</label><input type="number" data-bind="${bind}.${key}" value="${esc(value)}" ${attrs} style="width:110px" />${errorSlot(`${errors}.${key === 'max_error_rate_pct' ? 'max_error_rate' : key}`)}</div>`;
  return `<div data-role="canary" style="margin:6px 0 0 24px"><label><input type="checkbox" data-bind="${bind}.enabled" ${c.enabled ? 'checked' : ''} /> Staged rollout (canary): the new model takes a share of the traffic while its errors and latency are watched, then all of it — or the endpoint goes back to what it served, by itself</label>
    ${c.enabled ? `<div class="grid2">${f('percent', 'Canary traffic %', c.percent, 'min="1" max="99"')}${f('watch_minutes', 'Watch for (minutes)', c.watch_minutes, 'min="1"')}
      ${f('max_error_rate_pct', 'Roll back above error rate (%)', c.max_error_rate_pct, 'min="0" max="100" step="any"')}${f('max_p95_latency_ms', 'Roll back above p95 latency (ms, optional)', c.max_p95_latency_ms, 'min="1" step="any" placeholder="no limit"')}
      ${f('min_requests', 'Judge the error rate over at least (requests)', c.min_requests, 'min="1"')}</div>` : ''}${errorSlot(errors)}</div>`;
}
