// Each attempt's GPU shape and why it ended (GPU fallback, docs/lifecycle.md "GPU fallback"), for the run card
// and the run view. Runs that never listed fallbacks nor moved between shapes show nothing new.
import { esc } from './format.js';

export function shapeText(shape) {
  if (!shape) return '—';
  const where = shape.region ? ` in ${shape.region}` : '';
  return `${shape.gpu_count} × ${shape.gpu_type} on ${shape.machine_type || '?'}${where} (${shape.preemptible === false ? 'on-demand' : 'Spot'})`;
}

// [{attempt, shape, outcome, by}] for the finished attempts with a shape, then the current one; [] when
// the run has nothing to show (no fallbacks listed and no earlier attempt's shape).
export function attemptRows(run) {
  const current = run.attempt || 1;
  const earlier = (run.attempts || []).filter((a) => a.shape && a.attempt < current)
    .sort((a, b) => a.attempt - b.attempt)
    .map((a) => ({ attempt: a.attempt, shape: a.shape, outcome: a.ended_because || a.status || '—', by: a.retried_by || '' }));
  if (!earlier.length && !(run.gpu_config?.fallbacks || []).length) return [];
  return [...earlier, { attempt: current, shape: run.gpu_config, outcome: run.status || '—', by: '' }];
}

// One card line: "GPU attempts: 1 L4 capacity → 2 T4 running".
export function attemptsLine(run) {
  const rows = attemptRows(run);
  if (rows.length < 2) return '';
  const parts = rows.map((r) => `${r.attempt}: ${esc(r.shape?.gpu_count)}×${esc(r.shape?.gpu_type)}${r.shape?.region ? ` ${esc(r.shape.region)}` : ''} ${esc(r.outcome)}`);
  return `<div class="card-line" data-role="attempts">GPU attempts: ${parts.join(' → ')}</div>`;
}

// The run view's table of attempts.
export function attemptsTable(run) {
  const rows = attemptRows(run);
  if (!rows.length) return '';
  return `<h3>Attempts</h3><table data-role="attempts"><thead><tr><th>#</th><th>GPU shape</th><th>Ended</th><th>Next by</th></tr></thead><tbody>${
    rows.map((r) => `<tr><td>${esc(r.attempt)}</td><td>${esc(shapeText(r.shape))}</td><td>${esc(r.outcome)}</td><td>${esc(r.by)}</td></tr>`).join('')
  }</tbody></table>${(run.gpu_config?.fallbacks || []).length ? `<p class="muted small">Fallbacks: ${esc(run.gpu_config.fallbacks.map(shapeText).join('; '))}</p>` : ''}`;
}
