// The run view's Training tab (spec §5.3: training curves, gradient and weight diagnostics): one chart per
// series of the per-epoch history (training_runs/{id}/history), and the way to the run's TensorBoard.
import { esc, gateMetric, lowerIsBetter, metricLabel } from './format.js';

/** Each chart of the tab: [key, label, colour, value of one history row]. The gradient norm is the epoch's
 * mean global L2 norm before clipping (the Trainer's train step): a spike is an exploding step, a
 * collapse to ~0 a vanishing one. */
export function trainingSeries(run) {
  const gate = gateMetric(run);
  return [
    ['loss', 'Loss', '#3b82f6', (h) => h.loss],
    ['val_loss', 'Validation loss', '#f97316', (h) => h.val_loss],
    ['gate', metricLabel(gate), '#10b981', (h) => h.metrics?.[gate] ?? h[gate]],
    ['learning_rate', 'Learning rate', '#8b5cf6', (h) => h.learning_rate],
    ['grad_norm', 'Gradient norm (global L2, before clipping)', '#ef4444', (h) => h.grad_norm],
  ];
}

/** {key: [label, values per epoch (null where missing), colour]} for the charts. */
export function seriesData(run, history) {
  return Object.fromEntries(trainingSeries(run).map(([key, label, color, value]) =>
    [key, [label, history.map((h) => value(h) ?? null), color]]));
}

/** Vertex AI TensorBoard's web app for a TensorBoard experiment resource name
 * (projects/P/locations/L/tensorboards/T/experiments/E): the URL the Vertex SDK builds
 * (google.cloud.aiplatform.utils.tensorboard_utils.get_experiment_url). null for anything else. */
export function tensorboardUrl(experiment) {
  const m = /^projects\/[^/]+\/locations\/([^/]+)\/tensorboards\/[^/]+\/experiments\/[^/]+$/.exec(experiment || '');
  return m ? `https://${m[1]}.tensorboard.googleusercontent.com/experiment/${experiment.replaceAll('/', '+')}` : null;
}

/** Where this run's TensorBoard is: a link to its Vertex experiment once the Trainer named it, else the
 * CLI command that serves the run's event files on this machine. */
export function tensorboardLine(run) {
  const url = tensorboardUrl(run.tensorboard_experiment);
  if (url) {
    return `<a data-role="tensorboard-link" href="${esc(url)}" target="_blank" rel="noopener">Open in Vertex AI TensorBoard</a>
      <span class="muted small">weight and gradient histograms, every scalar</span>`;
  }
  // A GPU fallback's attempt in another region than the TensorBoard instance uploads nothing: say so and why.
  const skipped = run.tensorboard_upload_skipped
    ? `<div data-role="tensorboard-skipped" class="card-warn small">${esc(run.tensorboard_upload_skipped)}</div>` : '';
  return `${skipped}<span data-role="tensorboard-hint" class="muted small">TensorBoard (weight and gradient histograms): <code>trainyard runs tensorboard ${esc(run.id)}</code></span>`;
}

export function trainingTabHtml(run, summary) {
  const gate = gateMetric(run);
  const charts = trainingSeries(run).map(([key]) => `<div class="chart-box"><canvas id="chart-${key.replaceAll('_', '-')}" data-chart="${key}"></canvas></div>`).join('\n      ');
  return `<div class="muted" data-role="epoch-summary">${esc(summary)}</div>
    <div data-role="tensorboard">${tensorboardLine(run)}</div><div class="charts">
      ${charts}</div>
      <p class="muted small">Gate metric: ${esc(metricLabel(gate))} (${lowerIsBetter(gate) ? 'lower' : 'higher'} is better). One point per epoch, from training_runs/${esc(run.id)}/history.</p>`;
}
