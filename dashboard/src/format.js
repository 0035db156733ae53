// Pure helpers: formatting and what each run state shows. No DOM, no Firebase (unit-tested).
//
// The vocabulary — statuses, stages, model types and their metrics, metric directions, the training
// parameters' defaults, the default gate, GPU types, which action a run offers in which status — is the server's (GET /api/vocabulary, shared/contract/vocabulary.py),
// set once at start with setVocabulary(). What stays here is presentation only (words, icons), keyed by the
// server's values; a value the server adds and this page does not know still shows, in plain words.

const vocab = {
  statuses: [], status_groups: {}, stages: [], stage_statuses: [], model_types: [], metrics: [], gpu_types: [],
  default_gpu: null, actions: [], training: { defaults: {}, lr_schedules: {}, min_lr: null }, gate: {},
  champion_gate: {}, canary: {}, max_fallbacks: null, roles: [], failure_kinds: {},
};

/** The server's vocabulary (the `vocabulary` of GET /api/vocabulary); every helper below reads it. */
export function setVocabulary(value) {
  Object.assign(vocab, value || {});
}

export const vocabularyLoaded = () => vocab.statuses.length > 0;
export const statuses = () => vocab.statuses;
export const stageNames = () => vocab.stages.map((s) => s.name);
export const modelTypes = () => vocab.model_types.map((m) => m.name);
export const gpuTypes = () => vocab.gpu_types;
export const defaultGpu = () => ({ ...(vocab.default_gpu || {}) });
export const maxMachines = () => vocab.max_machines || 1;
/** The champion gate a run gets when it names none: {compare_to_champion, champion_tolerance}. */
export const championGateDefaults = () => ({ ...vocab.champion_gate });
/** A staged deploy's limits that have a server default (max_error_rate, min_requests, max_p95_latency_ms). */
export const canaryDefaults = () => ({ ...vocab.canary });
export const maxFallbacks = () => vocab.max_fallbacks ?? Infinity;
/** What makes a failed run's root cause a kind (shared/domain/failure_kinds.py): {out_of_memory: {patterns, …}}. */
export const failureKinds = () => vocab.failure_kinds || {};
/** The team roles, weakest first. */
export const roleOrder = () => vocab.roles;
/** The machines Vertex admits for `count` GPUs of `type` and the one the server picks when none is named. */
export const gpuMachines = (type, count) => vocab.gpu_types.find((g) => g.name === type)?.machines?.[String(count)]
  || { default: null, admitted: [] };
export const isTerminal = (status) => (vocab.status_groups.terminal || []).includes(status);
const modelType = (type) => vocab.model_types.find((m) => m.name === type);
export const primaryMetric = (type) => modelType(type)?.primary_metric;
export const gateMetrics = (type) => modelType(type)?.gate_metrics || [];
/** Whether a model type retrieves from an index (it has the retrieval index settings). */
export const retrieves = (type) => Boolean(modelType(type)?.retrieves);
/** Whether a model type trains this tower of a model config; a type the server does not name trains what the config holds. */
export const trainsTower = (type, tower) => modelType(type)?.towers.includes(tower) ?? true;
/** The training parameters a run gets when it names none (the server's TrainingParams()). */
export const trainingDefaults = () => structuredClone(vocab.training.defaults);

/** The reduce-on-plateau floor the server would resolve for this learning rate (its min_lr rule). */
export function minLrFor(learningRate) {
  const rule = vocab.training.min_lr;
  return learningRate > rule.default ? rule.default : learningRate * rule.share_of_rate;
}

/** A learning-rate schedule of `type` with the server's defaults (a floor follows the learning rate). */
export function lrScheduleFor(type, learningRate) {
  const schedule = { type, ...structuredClone(vocab.training.lr_schedules[type] || {}) };
  if ('min_lr' in schedule) schedule.min_lr = minLrFor(learningRate);
  return schedule;
}
/** The floor a higher-is-better gate gets when a run names no threshold (the server's default gate). */
export const defaultMinValue = () => vocab.gate.default_min_value;
export const lowerIsBetter = (metric) => Boolean(vocab.metrics.find((m) => m.name === metric)?.lower_is_better);

/** A value this page has no words for ("paused_by_quota" → "Paused by quota"). */
export function humanize(value) {
  const text = String(value ?? '').replace(/[_-]+/g, ' ').trim();
  return text ? text[0].toUpperCase() + text.slice(1) : '';
}

const STATUS_LABEL = {
  draft: 'Draft', awaiting_approval: 'Awaiting approval', pending: 'Pending', scheduled: 'Scheduled', submitting: 'Submitting', running: 'Running',
  cancelling: 'Cancelling', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled',
  not_blessed: 'Not Blessed',
};
const STATUS_ICON = {
  draft: '📝', awaiting_approval: '✋', pending: '⏳', scheduled: '⏰', submitting: '📤', running: '🔄', cancelling: '⏹️', completed: '✅',
  failed: '❌', cancelled: '⊘', not_blessed: '⚠️',
};
export const statusLabel = (status) => STATUS_LABEL[status] || humanize(status);
export const statusIcon = (status) => STATUS_ICON[status] || '•';

// Filter chips: All, the active statuses that have no chip of their own as "Running", then one per status.
const OWN_CHIP = new Set(['scheduled', 'awaiting_approval']);
const CHIP_LABEL = { draft: 'Drafts' };

/** [key, label, statuses (null: all)] per chip, from the server's statuses. */
export function statusChips() {
  const running = (vocab.status_groups.active || []).filter((s) => !OWN_CHIP.has(s));
  return [['all', 'All', null], ...(running.length ? [['active', 'Running', running]] : []),
    ...vocab.statuses.filter((s) => !running.includes(s)).map((s) => [s, CHIP_LABEL[s] || statusLabel(s), [s]])];
}

const MODEL_TYPE_LABEL = { retrieval: 'Retrieval', ranking: 'Ranking', multitask: 'Hybrid' };
const MODEL_TYPE_ICON = { retrieval: '🔍', ranking: '📊', multitask: '📚' };
export const modelTypeLabel = (type) => MODEL_TYPE_LABEL[type] || humanize(type);
export const modelTypeIcon = (type) => MODEL_TYPE_ICON[type] || '';
// The best-experiment KPIs shown per model type (a type the page does not know shows its gate metrics).
const KPI_METRICS = {
  retrieval: ['recall_at_5', 'recall_at_10', 'recall_at_100'], ranking: ['test_rmse', 'test_mae', 'rmse'],
  multitask: ['recall_at_50', 'recall_at_100', 'test_rmse'],
};
export const METRIC_LABEL = {
  recall_at_5: 'R@5', recall_at_10: 'R@10', recall_at_50: 'R@50', recall_at_100: 'R@100',
  test_rmse: 'Test RMSE', test_mae: 'Test MAE', rmse: 'RMSE', mae: 'MAE', loss: 'Loss', val_loss: 'Val loss',
};
export const metricLabel = (metric) => METRIC_LABEL[metric] || (metric ?? '');
export const GPU_LABEL = { NVIDIA_TESLA_T4: 'T4', NVIDIA_L4: 'L4', NVIDIA_TESLA_V100: 'V100', NVIDIA_TESLA_A100: 'A100' };

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** Firestore Timestamp, ISO string, Date or millis → Date (or null). */
export function toDate(value) {
  if (value == null || value === '') return null;
  if (value instanceof Date) return value;
  if (typeof value.toDate === 'function') return value.toDate();
  if (typeof value === 'object' && 'seconds' in value) return new Date(value.seconds * 1000);
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function duration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${r}s`;
  return `${r}s`;
}

export function ago(date, now = new Date()) {
  const d = toDate(date);
  if (!d) return '—';
  return `${duration((now - d) / 1000)} ago`;
}

export function when(date) {
  const d = toDate(date);
  if (!d) return '—';
  return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

export function inHowLong(date, now = new Date()) {
  const d = toDate(date);
  if (!d) return '';
  const s = (d - now) / 1000;
  return s > 0 ? `in ${duration(s)}` : `${duration(-s)} ago`;
}

export function metricValue(value) {
  if (value == null || Number.isNaN(Number(value))) return '—';
  const n = Number(value);
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(Math.abs(n) < 1 ? 3 : 2);
}

/** The run's estimated cost (shared/domain/cost.py): "≈ $1.23"; "≤" when Dataflow workers make it an upper bound. */
export function costText(run) {
  const c = run?.estimated_cost;
  if (!c || typeof c.total !== 'number') return '';
  const symbol = (c.currency || 'USD') === 'USD' ? '$' : `${c.currency} `;
  const amount = c.total >= 0.01 || c.total === 0 ? c.total.toFixed(2) : c.total.toFixed(4);
  return `${c.upper_bound ? '≤' : '≈'} ${symbol}${amount}${c.partial ? ' (partial)' : ''}`;
}

/** Who was told what (the run's notifications_sent ledger): "failed → webhook-0 sent, pubsub failed: …". */
export function notificationsText(run) {
  const ledger = run?.notifications_sent || {};
  const byEvent = {};
  for (const [key, entry] of Object.entries(ledger)) {
    const [attempt, event, target] = key.split(':');
    const label = `${Number(attempt) > 1 ? `attempt ${attempt} ` : ''}${event}`;
    (byEvent[label] = byEvent[label] || []).push(`${target} ${entry.status}${entry.status === 'failed' && entry.error ? `: ${entry.error}` : ''}`);
  }
  return Object.entries(byEvent).map(([label, parts]) => `${label} → ${parts.join(', ')}`).join('; ');
}

export function gateMetric(run) {
  return run?.evaluator_config?.blessing_threshold?.metric || primaryMetric(run?.model_type) || 'recall_at_100';
}

const signed = (percent) => `${percent >= 0 ? '+' : ''}${Number(percent).toFixed(1)}%`;
// The baselines the Evaluator scores, each with its value, the model's lift over it and the lift required.
const baselines = (e) => [
  { name: lowerIsBetter(e.threshold_metric) ? 'predict-the-mean' : 'most-popular', value: e.baseline_value,
    lift: e.lift_percent, required: e.required_lift_percent },
  { name: 'EASE', value: e.ease_value, lift: e.lift_over_ease_percent, required: e.required_lift_over_ease_percent },
];
// A required EASE lift that was not held, as EASE was not scored (the catalog too big, or EASE turned off).
const easeNotHeld = (e) => (e.ease_value == null && e.required_lift_over_ease_percent != null && e.ease_skipped_reason
  ? `EASE not scored, its lift not held: ${e.ease_skipped_reason}` : '');

/** The gate's outcome in one line: the metric against the fixed threshold and against each baseline
 * (most-popular / predict-the-mean, then EASE) with the lift the evaluator required, when it did. */
export function gateSummary(run) {
  const e = run?.evaluation_results;
  if (!e || e.actual_value == null) return '';
  const metric = e.threshold_metric || gateMetric(run);
  const label = metricLabel(metric);
  const lower = lowerIsBetter(metric);
  const parts = [`${label} ${metricValue(e.actual_value)}`];
  if (e.threshold_value != null) parts.push(`threshold ${lower ? '≤' : '≥'} ${metricValue(e.threshold_value)}`);
  for (const b of baselines({ ...e, threshold_metric: metric }).filter((x) => x.value != null)) {
    const lift = b.lift == null ? '' : ` (${signed(b.lift)} better${b.required != null ? `, required ≥ ${b.required}%` : ''})`;
    parts.push(`${b.name} ${metricValue(b.value)}${lift}`);
  }
  if (easeNotHeld(e)) parts.push(easeNotHeld(e));
  return `${parts.join(' · ')} → ${e.passed ? 'passed' : 'not passed'}`;
}

/** A finished run's lift over each baseline, for its card ("+33.6% over most-popular · -2.9% over EASE"). */
export function liftsText(run) {
  const e = run?.evaluation_results;
  if (!e) return '';
  return baselines({ ...e, threshold_metric: e.threshold_metric || gateMetric(run) }).filter((b) => b.lift != null)
    .map((b) => `${signed(b.lift)} over ${b.name}`).join(' · ');
}

export function gpuText(gpu) {
  if (!gpu) return '—';
  const machines = Number(gpu.machine_count || 1);
  const onEach = `${gpu.gpu_count}x ${GPU_LABEL[gpu.gpu_type] || gpu.gpu_type}`;
  return `${machines > 1 ? `${machines} machines × ${onEach}` : onEach}${gpu.preemptible ? ' (Spot)' : ''}`;
}

export function cssStatus(status) {
  return String(status || '').replace(/_/g, '-');
}

// Destructive actions sit on the card's right; the rest on its left, in the server's order.
const RIGHT_ACTIONS = new Set(['cancel', 'delete', 'reject']);

/** Whether the page offers this action beyond the server's rule: no second deploy while one is under
 * way or done, no second push once pushed, no delete of a run whose model is deployed or on its way. */
function worthOffering(name, run) {
  if (name === 'deploy') return !isDeployed(run) && !isDeploying(run);
  if (name === 'push-anyway') return !run.pushed_anyway;
  // The API refuses (409) to delete a run whose model is deploying, deployed or being pushed.
  if (name === 'delete') return !isDeployed(run) && !isDeploying(run) && run.push_anyway?.status !== 'pushing';
  return true;
}

/** The actions a card shows for a run, in order: View, then what the server's vocabulary offers in the
 * run's status (its `requires` fields set, its `unless` fields unset). */
export function actionsFor(run) {
  const left = ['view'];
  const right = [];
  for (const action of vocab.actions) {
    if (!action.statuses.includes(run.status)) continue;
    if ((action.requires || []).some((field) => !run[field]) || (action.unless || []).some((field) => run[field])) continue;
    if (!worthOffering(action.name, run)) continue;
    (RIGHT_ACTIONS.has(action.name) ? right : left).push(action.name);
  }
  return { left, right };
}

const ACTION_LABEL = {
  view: 'View', submit: 'Submit', 'run-now': 'Run now', cancel: 'Cancel', retry: 'Retry', deploy: 'Deploy to Endpoint',
  'push-anyway': 'Push anyway', delete: 'Delete',
};
export const actionLabel = (action) => ACTION_LABEL[action] || humanize(action);

export function isDeployed(run) {
  return Boolean(run.is_deployed || run.deployment_status === 'deployed' || run.deployment?.status === 'deployed');
}
export function isDeploying(run) {
  return run.deployment_status === 'deploying' || run.deployment?.status === 'deploying';
}

export function baseText(run) {
  const base = run.base_experiment;
  return base ? (base.display_name || base.name) : 'no base experiment';
}

/** One epoch line for the progress bar: "Epoch 3/10" when the Train stage reported epochs. */
export function epochText(run) {
  if (run.current_epoch && run.total_epochs) return `Epoch ${run.current_epoch}/${run.total_epochs}`;
  if (run.total_epochs) return `${run.total_epochs} epochs`;
  return '';
}

/** Firestore query plan for the run list: equality filters the listener can apply. */
export function runQueryPlan(filters) {
  const chip = statusChips().find(([key]) => key === filters.status);
  const statuses = chip ? chip[2] : null;
  const wheres = [];
  if (statuses) wheres.push(statuses.length === 1 ? ['status', '==', statuses[0]] : ['status', 'in', statuses]);
  if (filters.modelType) wheres.push(['model_type', '==', filters.modelType]);
  if (filters.dataset) wheres.push(['dataset_id', '==', filters.dataset]);
  return wheres;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Registry view: registered model versions grouped by model name, newest first. */
export function registryModels(runs) {
  const byName = new Map();
  for (const run of runs) {
    if (!run.vertex_model_resource_name) continue;
    const name = run.vertex_model_name || run.name;
    if (!byName.has(name)) byName.set(name, { name, model_type: run.model_type, versions: [] });
    byName.get(name).versions.push(run);
  }
  const models = [...byName.values()];
  for (const model of models) {
    model.versions.sort((a, b) => (toDate(b.completed_at || b.created_at) || 0) - (toDate(a.completed_at || a.created_at) || 0));
  }
  models.sort((a, b) => (toDate(b.versions[0].completed_at || b.versions[0].created_at) || 0)
    - (toDate(a.versions[0].completed_at || a.versions[0].created_at) || 0));
  return models;
}

/** Best-experiments KPIs for one model type. */
export function kpis(experiments, modelType) {
  const rows = experiments.filter((e) => e.model_type === modelType);
  const keys = KPI_METRICS[modelType] || gateMetrics(modelType);
  const best = {};
  for (const key of keys) {
    const values = rows.map((e) => e.metrics?.[key]).filter((v) => typeof v === 'number');
    best[key] = values.length ? (lowerIsBetter(key) ? Math.min(...values) : Math.max(...values)) : null;
  }
  return { count: rows.length, best, keys };
}

/** The experiments the chapter ranks: the server's best by the primary metric (over every experiment, however
 * many) with the listener's newest, a listened copy replacing the server's (it is fresher); one of each. */
export function rankedExperiments(listened, best) {
  const byId = new Map(best.map((e) => [e.id, e]));
  for (const e of listened) byId.set(e.id, e);
  return [...byId.values()];
}

export function sortByPrimary(experiments, modelType) {
  const metric = primaryMetric(modelType);
  const lower = lowerIsBetter(metric);
  return experiments.filter((e) => e.model_type === modelType && typeof e.metrics?.[metric] === 'number')
    .sort((a, b) => (lower ? a.metrics[metric] - b.metrics[metric] : b.metrics[metric] - a.metrics[metric]));
}

/** Wizard: which step holds the field an API error names (schedule errors arrive as run_template.*). */
export function stepForField(field) {
  const f = String(field || '').replace(/^run_template\./, '');
  if (['name', 'model_type', 'base_experiment_id', 'description'].includes(f)) return 1;
  if (/^(dataset_id|feature_config_id|model_config_id|training_params)/.test(f)) return 2;
  if (/^(gpu_config|evaluator_config|deployment_config|scheduled_at|run_at|time_of_day|timezone|day_of_week|schedule_type|start_at|end_at|name_schedule|data_trigger)/.test(f)) return 3;
  return null;
}

/** A registered version's model card (GET …/model-card's `card`) as HTML: the gate, the data, the metrics
 *  against each baseline, the training curve and the lineage (shared/domain/model_card.py). */
export function modelCardHtml(card) {
  const n = (v) => (v === null || v === undefined ? '—' : metricValue(v));
  const table = (head, rows) => `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const baselines = Object.keys(card.baselines || {}).sort();
  const metrics = Object.keys(card.metrics || {}).sort();
  const curveNames = [...new Set((card.training?.epochs || []).flatMap((e) => Object.keys(e.metrics || {})))].sort();
  const rows = card.data?.rows_per_split || {};
  const lineage = card.lineage || {};
  return `<h2>Model card: ${esc(card.model_name)}, version ${esc(card.model_version)}</h2>
    <p class="card-gate"><strong>Gate:</strong> ${esc(card.gate?.decision)}</p>
    <h3>Data</h3><ul><li>Dataset: ${esc(card.data?.dataset)} (${esc(card.data?.source?.kind || '')}: ${esc(card.data?.source?.uri || card.data?.source?.table || 'a query')})</li>
      <li>Rows per split: ${Object.keys(rows).length ? Object.entries(rows).map(([k, v]) => `${esc(k)} ${Number(v).toLocaleString('en')}`).join(', ') : 'not recorded'}</li>
      <li>Data check: ${(card.data?.findings || []).length ? `<ul>${card.data.findings.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>` : 'no findings'}</li></ul>
    <h3>Metrics (test split)</h3>${metrics.length ? table(['metric', 'model', ...baselines],
      metrics.map((m) => [esc(m), n(card.metrics[m]), ...baselines.map((b) => n(card.baselines[b][m]))])) : '<p class="muted">No test metrics recorded.</p>'}
    <h3>Training curve</h3>${(card.training?.epochs || []).length ? table(['epoch', 'loss', 'val_loss', ...curveNames],
      card.training.epochs.map((e) => [esc(e.epoch), n(e.loss), n(e.val_loss), ...curveNames.map((c) => n(e.metrics?.[c]))])) : '<p class="muted">No epochs recorded.</p>'}
    <h3>Features and model</h3><ul><li>Model type: ${esc(card.model?.model_type)}</li>
      <li>Model config: <code>${esc(JSON.stringify(card.model?.model_config))}</code></li>
      <li>Training: <code>${esc(JSON.stringify(card.model?.training_params))}</code></li></ul>
    <h3>Lineage</h3><ul><li>Run: ${esc(lineage.run_name)} #${esc(lineage.run_number)} (<code>${esc(lineage.run_id)}</code>), attempt ${esc(lineage.attempt)}</li>
      <li>Experiment: ${lineage.experiment ? `${esc(lineage.experiment.name)} (<code>${esc(lineage.experiment.id)}</code>)` : 'none'}</li>
      <li>Schedule: ${esc(lineage.schedule_id || 'none')}</li>
      <li>Registered: ${esc(lineage.model_resource_name)} version ${esc(lineage.model_version_id)}</li>
      <li>Pipeline image: ${esc(lineage.pipeline_image || '—')} · serving image: ${esc(lineage.serving_image || '—')}</li></ul>`;
}
