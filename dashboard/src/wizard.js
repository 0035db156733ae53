// The 3-step New Training Run wizard (spec §4). The API validates; its 400 field errors are shown
// next to the field they name (the wizard jumps to the step that holds it).
import { ApiError, get, post } from './api.js';
import {
  GPU_LABEL, championGateDefaults, debounce, defaultGpu, gpuMachines, maxFallbacks, defaultMinValue, esc, gateMetrics, gpuText, gpuTypes, lowerIsBetter, lrScheduleFor, maxMachines, metricLabel, metricValue,
  modelTypeIcon, modelTypeLabel, modelTypes, primaryMetric, retrieves, stepForField, trainingDefaults,
} from './format.js';
import { $, $$, openModal } from './ui.js';
import { errorSlot, placeErrors } from './fielderrors.js';
import { datasetSize, featureDimsText, towerShapes } from './configinfo.js';
import { shapeText } from './attempts.js';
import { checkShape, shapeKey } from './gpupreflight.js';
import { openConfigModal } from './configmodal.js';
import { CatalogPicker } from './picker.js';
import { canaryBody, canaryFields, canaryStart, canaryText, percent } from './canary.js';
import { endpointPicker, listEndpoints } from './endpointview.js';

// Words for the GPU types the server offers (its vocabulary's gpu_types); a type without words shows its name.
const GPU_WORDS = {
  NVIDIA_TESLA_T4: ['T4 (16GB each)', 'Good availability, solid performance'],
  NVIDIA_L4: ['L4 (24GB each)', 'Best value, great for large embeddings'],
  NVIDIA_TESLA_V100: ['V100 (16GB each)', 'Highest performance, limited availability'],
  NVIDIA_TESLA_A100: ['A100 (40GB each)', 'Very large models only, premium pricing'],
};
const gpuCounts = (type) => gpuTypes().find((g) => g.name === type)?.counts || [];
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const STEP_TITLES = ['Select base experiment', 'Configuration & parameters', 'GPU, deployment & schedule'];

function defaults(experiment) {
  const type = experiment?.model_type || modelTypes()[0];
  return {
    step: 1,
    name: '',
    model_type: type,
    experiment: experiment || null,
    experiments: [],
    search: '',
    searchResults: null,
    configs: experiment ? {
      dataset: { id: experiment.dataset_id, name: experiment.dataset_name || experiment.dataset_id },
      feature_config: { id: experiment.feature_config_id, name: experiment.feature_config_name || experiment.feature_config_id },
      model_config: { id: experiment.model_config_id, name: experiment.model_config_name || experiment.model_config_id },
    } : null,
    params: paramsFrom(experiment),
    advancedOpen: false,
    gpu: { ...defaultGpu(), fallbacks: [] },
    evaluator: thresholdFor(type),
    champion: championStart(),
    deployment: { action: 'register_only', endpoint_name: '', existing_endpoint_id: '', traffic_split: 10, canary: canaryStart() },
    schedule: { type: 'now', date: tomorrow(), time: '02:00', day_of_week: 0, timezone: 'UTC',
      on_data: false, data_where: '', data_interval: 60 },
    errors: [],
    submitting: false,
  };
}

// Champion vs challenger (docs/lifecycle.md) as the server would gate a run naming nothing; its tolerance in
// percent here, a fraction in the API.
function championStart() {
  const gate = championGateDefaults();
  return { compare: gate.compare_to_champion ?? true, tolerance_pct: percent(gate.champion_tolerance) };
}

// The server's defaults (its vocabulary's training.defaults), with the experiment's batch size and
// learning rate, as the API inherits them; the schedule's floor follows that rate.
function paramsFrom(experiment) {
  const p = experiment?.params || {};
  const params = trainingDefaults();
  params.batch_size = p.batch_size ?? params.batch_size;
  params.learning_rate = p.learning_rate ?? params.learning_rate;
  params.lr_schedule = lrScheduleFor(params.lr_schedule.type, params.learning_rate);
  return params;
}

// The gate starts where the server's would (its vocabulary's gate), on the model type's primary metric:
// a recall at the default floor; an error left empty, for the server to derive from the experiment.
export function thresholdFor(type) {
  const metric = primaryMetric(type);
  return { enabled: true, metric, value: lowerIsBetter(metric) ? '' : String(defaultMinValue()) };
}

function tomorrow() {
  const d = new Date(Date.now() + 86400000);
  return d.toISOString().slice(0, 10);
}

// The schedule's data_trigger from what the step's "new data" fields hold (docs/schedules.md "On new data"):
// gs://bucket/prefix, project.dataset.table, or (local stack) an absolute folder; null when it does not fire on
// data. The API validates the rest and names the field (data_trigger.bucket, …).
/** The request's warm_restart from the form: only the id its source reads (an empty field is no id). */
export function warmRestartFor(warm) {
  const body = { enabled: Boolean(warm.enabled), source: warm.source || 'experiment' };
  if (body.source === 'run') body.run_id = (warm.run_id || '').trim() || null;
  if (body.source === 'experiment' && warm.experiment_id) body.experiment_id = warm.experiment_id;
  return body;
}

export function dataTriggerFor(schedule) {
  if (schedule.type !== 'data' && !schedule.on_data) return null;
  const where = String(schedule.data_where || '').trim();
  const interval = { min_interval_minutes: Number(schedule.data_interval) || 60 };
  if (where.startsWith('gs://')) {
    const [bucket, ...prefix] = where.slice(5).split('/');
    return { source: 'gcs', bucket, prefix: prefix.join('/'), ...interval };
  }
  if (where.startsWith('/')) return { source: 'folder', path: where, ...interval };
  return { source: 'bigquery', table: where.replace(/^(bigquery|bq):/, ''), ...interval };
}

/** The API's deployment_config.canary from the deployment step; null when the deploy is not staged. */
export function canaryFor(deployment) {
  return deployment.action === 'deploy_existing' ? canaryBody(deployment.canary) : null;
}

/** The run's deployment_config: a staged deploy takes canary.percent of the traffic, so it sends no traffic_split. */
export function deploymentFor(d) {
  const deployment = { action: d.action };
  if (d.action === 'deploy_new' && d.endpoint_name) deployment.endpoint_name = d.endpoint_name;
  if (d.action === 'deploy_existing') {
    deployment.existing_endpoint_id = d.existing_endpoint_id || null;
    const canary = canaryFor(d);
    if (canary) deployment.canary = canary;
    else deployment.traffic_split = Number(d.traffic_split) || 100;
  }
  return deployment;
}

/** A fallback row made to fit: a count the GPU type comes in, a machine Vertex admits for it (else its default). */
export function fitShape(row) {
  const counts = gpuTypes().find((g) => g.name === row.gpu_type)?.counts || [];
  const count = counts.includes(Number(row.gpu_count)) ? Number(row.gpu_count) : (counts[0] ?? Number(row.gpu_count));
  const { admitted } = gpuMachines(row.gpu_type, count);
  return { ...row, gpu_count: count, machine_type: admitted.includes(row.machine_type) ? row.machine_type : '' };
}

/** gpu_config.fallbacks (shared/domain/run_config.py GpuShape), in the order listed; a machine or region left
 * empty is the server's: the machine paired with the GPUs, the deployment's region. */
export function fallbacksFor(rows) {
  return (rows || []).map((r) => ({ gpu_type: r.gpu_type, gpu_count: Number(r.gpu_count), preemptible: Boolean(r.preemptible),
    ...(r.machine_type ? { machine_type: r.machine_type } : {}), ...(String(r.region || '').trim() ? { region: String(r.region).trim() } : {}) }));
}

/** evaluator_config's champion gate: compare_to_champion and champion_tolerance (a fraction; a percent here). */
export function championGateFor(champion) {
  const pct = champion.tolerance_pct;
  return { compare_to_champion: Boolean(champion.compare),
    ...(pct === '' || pct == null ? {} : { champion_tolerance: Number(pct) / 100 }) };
}

// The review step's words for the fallbacks and the champion gate (the canary's: canary.js).
export function fallbacksText(rows) {
  return fallbacksFor(rows).map((f, i) => `${i + 1}. ${shapeText({ ...f, machine_type: f.machine_type || gpuMachines(f.gpu_type, f.gpu_count).default })}`).join('; ');
}

export function championGateText(gate, lower) {
  if (!gate.compare_to_champion) return 'not compared with the champion';
  const tolerance = gate.champion_tolerance ?? championGateDefaults().champion_tolerance;
  const factor = lower ? 1 + tolerance : 1 - tolerance;
  return `and ${lower ? '≤' : '≥'} champion × ${Number(factor.toFixed(4))}`;
}

/** Wall-clock date+time in an IANA zone → ISO instant (UTC). */
export function zonedToUtc(date, time, timeZone) {
  const [y, m, d] = date.split('-').map(Number);
  const [hh, mm] = time.split(':').map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  const offsetAt = (instant) => {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
    return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second) - instant;
  };
  let guess = wall - offsetAt(wall);
  guess = wall - offsetAt(guess);
  return new Date(guess).toISOString().replace('.000Z', 'Z');
}

export function openWizard({ experiment, onCreated, onViewExperiment } = {}) {
  const w = defaults(experiment);
  const { el, close } = openModal(`<div class="modal-head"><div><h2>New Training Run</h2><div class="muted" data-role="step-title"></div></div>
      <div class="steps" data-role="dots"></div></div>
    <div class="modal-body" data-role="body"></div>
    <div class="modal-foot" data-role="foot"></div>`, { id: 'wizard' });

  const body = () => $('[data-role=body]', el);

  async function loadExperiments() {
    try {
      const top = await get(`/api/experiments/top-for-training?model_type=${w.model_type}&limit=5`);
      w.experiments = top.experiments || [];
    } catch (err) {
      w.experiments = [];
      w.loadError = err.message;
    }
    if (!w.experiment && w.experiments.length) selectExperiment(w.experiments[0]);
    if (w.step === 1) render();
  }

  function selectExperiment(exp) {
    w.experiment = exp;
    w.configs = {
      dataset: { id: exp.dataset_id, name: exp.dataset_name || exp.dataset_id },
      feature_config: { id: exp.feature_config_id, name: exp.feature_config_name || exp.feature_config_id },
      model_config: { id: exp.model_config_id, name: exp.model_config_name || exp.model_config_id },
    };
    w.params = { ...w.params, batch_size: exp.params?.batch_size ?? w.params.batch_size, learning_rate: exp.params?.learning_rate ?? w.params.learning_rate };
    loadDetails();
  }

  // The chosen dataset, feature config and model config in full: their size, dimensions and shapes.
  const CATALOG_PATH = { dataset: 'datasets', feature_config: 'feature-configs', model_config: 'model-configs' };
  function loadDetails() {
    w.details ||= {};
    for (const kind of Object.keys(CATALOG_PATH)) {
      const id = w.configs?.[kind]?.id;
      if (!id || w.details[kind]?.id === id) continue;
      get(`/api/${CATALOG_PATH[kind]}/${encodeURIComponent(id)}`).then((r) => {
        if (w.configs?.[kind]?.id !== id) return;
        w.details[kind] = r.item;
        showDetails(); // in place: a re-render would take the caret from a field being typed in
      }).catch(() => {});
    }
  }

  function detail(kind) {
    const item = w.details?.[kind];
    if (!item || item.id !== w.configs?.[kind]?.id) return '';
    return { dataset: datasetSize, feature_config: featureDimsText, model_config: towerShapes }[kind](item);
  }
  const inParens = (kind) => (detail(kind) ? ` (${detail(kind)})` : '');

  function showDetails() {
    for (const slot of $$('[data-detail]', el)) slot.textContent = detail(slot.dataset.detail);
    for (const slot of $$('[data-detail-paren]', el)) slot.textContent = inParens(slot.dataset.detailParen);
  }

  // ---------------------------------------------------------------- rendering

  function expRow(e) {
    const metric = primaryMetric(w.model_type);
    return `<div class="exp-row ${w.experiment?.id === e.id ? 'selected' : ''}" data-select-exp="${esc(e.id)}">
      <input type="radio" name="exp" ${w.experiment?.id === e.id ? 'checked' : ''} />
      <b>${esc(e.number ? `Exp #${e.number}` : e.name)}</b><span>${esc(e.dataset_name || '')}</span><span>${esc(e.feature_config_name || '')}</span>
      <span>${esc(metricLabel(metric))}: <b>${metricValue(e.metrics?.[metric])}</b></span><span class="muted">${esc(e.params?.epochs ?? '?')} ep</span>${onViewExperiment ? `<button class="btn-link" data-view-exp="${esc(e.id)}">👁 View</button>` : ''}</div>`;
  }

  function step1() {
    const list = w.searchResults ?? w.experiments;
    const exp = w.experiment;
    return `<div class="field" data-field="name"><label class="lbl" for="wiz-name">Training run name *</label>
        <input type="text" id="wiz-name" data-bind="name" value="${esc(w.name)}" placeholder="product-recommender-v3" autocomplete="off" />
        ${errorSlot('name')}<div class="muted small">ℹ️ This name will be used as model name and endpoint identifier. Allowed: lowercase letters, numbers, hyphens (e.g. my-model-v2)</div></div>
      <div class="field"><label class="lbl">Model type *</label><div class="option-cards">
        ${modelTypes().map((t) => `<label class="option-card ${w.model_type === t ? 'selected' : ''}"><input type="radio" name="model_type" value="${esc(t)}" data-model-type="${esc(t)}" ${w.model_type === t ? 'checked' : ''} />${esc(modelTypeLabel(t))} ${modelTypeIcon(t)}</label>`).join('')}
        </div>${errorSlot('model_type')}</div>
      <div class="field"><label class="lbl">Select experiment</label>
        <input type="text" id="wiz-exp-search" value="${esc(w.search)}" placeholder="🔍 Search by name, number, config… (e.g. &quot;Exp #65&quot;)" />
        <div class="muted small" style="margin:6px 0" data-role="exp-list-label">${esc(expListLabel())}</div>
        <div class="exp-list" data-role="exp-list">${list.length ? list.map(expRow).join('') : `<div class="exp-row muted">${w.loadError ? esc(w.loadError) : 'No experiments of this type yet.'}</div>`}</div>
        <div data-role="exp-more">${expMore()}</div>
        ${errorSlot('base_experiment_id')}</div>
      ${exp ? `<div class="summary-box" data-role="exp-summary"><b>${esc(exp.number ? `Exp #${exp.number}` : '')} ${esc(exp.name)}</b><ul>
        <li>Dataset: ${esc(exp.dataset_name || exp.dataset_id)}<span data-detail-paren="dataset">${esc(inParens('dataset'))}</span></li>
        <li>Features: ${esc(exp.feature_config_name || exp.feature_config_id)}<span data-detail-paren="feature_config">${esc(inParens('feature_config'))}</span></li>
        <li>Model: ${esc(exp.model_config_name || exp.model_config_id)}<span data-detail-paren="model_config">${esc(inParens('model_config'))}</span></li>
        <li>Results: ${Object.entries(exp.metrics || {}).map(([k, v]) => `${esc(metricLabel(k))}: ${metricValue(v)}`).join(', ') || '—'}</li></ul></div>` : ''}`;
  }

  function num(bind, value, attrs = '') {
    return `<input type="number" data-bind="${bind}" value="${esc(value)}" ${attrs} />`;
  }

  function step2() {
    const p = w.params;
    const exp = w.experiment?.params || {};
    const inherited = (kind, label, icon) => `<div class="inherited" data-config="${kind}"><div><div class="muted small">${label}</div>${icon} <b>${esc(w.configs?.[kind]?.name || '—')}</b>
      <div class="muted small" data-detail="${kind}">${esc(detail(kind))}</div></div>
      <button data-change="${kind}">Change</button></div>${errorSlot(`${kind}_id`)}`;
    const lr = p.lr_schedule;
    const lrOption = (type, label, extra = '') => `<label style="display:block;margin:4px 0"><input type="radio" name="lr_type" value="${type}" data-lr-type ${lr.type === type ? 'checked' : ''} /> ${label}</label>${lr.type === type ? extra : ''}`;
    return `<h3>Inherited configuration ${w.experiment ? `(from ${esc(w.experiment.number ? `Exp #${w.experiment.number}` : w.experiment.name)})` : ''}</h3>
      ${inherited('dataset', 'Dataset', '📊')}${inherited('feature_config', 'Feature config', '⚙️')}${inherited('model_config', 'Model config', '🏗️')}
      <h3>Training parameters</h3><div class="grid2">
        <div class="field"><label class="lbl">Data sample %</label>${num('params.data_sample_percent', p.data_sample_percent, 'min=1 max=100')}<div class="muted small">(Exp used: ${esc(exp.sample_percent ?? exp.data_sample_percent ?? '—')})</div>${errorSlot('training_params.data_sample_percent')}</div>
        <div class="field"><label class="lbl" for="wiz-epochs">Epochs</label><input type="number" id="wiz-epochs" data-bind="params.epochs" value="${esc(p.epochs)}" /><div class="muted small">(Exp used: ${esc(exp.epochs ?? '—')})${exp.epochs && p.epochs > exp.epochs ? ' ⚠️ INCREASED' : ''}</div>${errorSlot('training_params.epochs')}</div>
        <div class="field"><label class="lbl">Batch size</label>${num('params.batch_size', p.batch_size)}<div class="muted small">(Exp used: ${esc(exp.batch_size ?? '—')})</div>${errorSlot('training_params.batch_size')}</div>
        <div class="field"><label class="lbl">Learning rate</label>${num('params.learning_rate', p.learning_rate, 'step=any')}<div class="muted small">(Exp used: ${esc(exp.learning_rate ?? '—')})</div>${errorSlot('training_params.learning_rate')}</div></div>
      <div class="field"><label class="lbl">Split strategy</label><select data-bind="params.split_strategy"><option value="strict_time" ${p.split_strategy === 'strict_time' ? 'selected' : ''}>Strict time (train 80% · validation 15% · test 5%)</option><option value="random" ${p.split_strategy === 'random' ? 'selected' : ''}>Random</option></select>${errorSlot('training_params.split_strategy')}</div>
      <div class="field"><label><input type="checkbox" data-bind="params.early_stopping.enabled" ${p.early_stopping.enabled ? 'checked' : ''} /> Early stopping</label>
        — patience ${num('params.early_stopping.patience', p.early_stopping.patience, 'style="width:80px"')} epochs${errorSlot('training_params.early_stopping.patience')}</div>
      <details class="advanced" data-role="advanced" ${w.advancedOpen ? 'open' : ''}><summary>Advanced parameters</summary>
        <h3>Learning rate schedule</h3>
        ${lrOption('constant', 'Constant (fixed LR throughout)')}
        ${lrOption('reduce_on_plateau', 'Reduce on plateau', `<div style="margin-left:24px">factor ${num('params.lr_schedule.factor', lr.factor, 'step=any style="width:80px"')} patience ${num('params.lr_schedule.patience', lr.patience, 'style="width:70px"')} min LR ${num('params.lr_schedule.min_lr', lr.min_lr, 'step=any style="width:90px"')}</div>`)}
        ${lrOption('cosine', 'Cosine decay')}
        ${lrOption('warmup_cosine', 'Warmup + cosine', `<div style="margin-left:24px">warmup epochs ${num('params.lr_schedule.warmup_epochs', lr.warmup_epochs, 'style="width:70px"')}</div>`)}
        ${errorSlot('training_params.lr_schedule')}${errorSlot('training_params.lr_schedule.min_lr')}${errorSlot('training_params.lr_schedule.warmup_epochs')}
        <div class="field"><label><input type="checkbox" data-bind="params.mixed_precision" ${p.mixed_precision ? 'checked' : ''} /> Mixed precision training (FP16) — ~2x faster on T4, L4, V100, A100</label></div>
        <div class="field"><label><input type="checkbox" data-bind="params.warm_restart.enabled" ${p.warm_restart.enabled ? 'checked' : ''} /> Warm restart from</label>
          <select data-bind="params.warm_restart.source" data-role="warm-source">${[['experiment', 'the experiment'], ['run', 'a run'], ['champion', 'the champion when it trains']].map(([v, label]) => `<option value="${v}" ${p.warm_restart.source === v ? 'selected' : ''}>${label}</option>`).join('')}</select>
          <input type="text" data-bind="params.warm_restart.run_id" value="${esc(p.warm_restart.run_id || '')}" placeholder="run id (for a run)" style="width:170px" />
          <div class="muted small">Embedding rows carry over by id: kept ids keep theirs, new ids start fresh. No champion yet, or nothing that fits: a fresh start, with the reason on the run.</div>
          ${errorSlot('training_params.warm_restart')}${errorSlot('training_params.warm_restart.experiment_id')}${errorSlot('training_params.warm_restart.run_id')}</div>
        ${retrieves(w.model_type) ? `<h3>Retrieval index</h3><select data-bind="params.retrieval_index.type"><option value="scann" ${p.retrieval_index.type === 'scann' ? 'selected' : ''}>ScaNN (approximate, 10K+ products)</option><option value="brute_force" ${p.retrieval_index.type === 'brute_force' ? 'selected' : ''}>Brute force (exact, &lt;10K products)</option></select>
          num leaves <input type="text" data-bind="params.retrieval_index.num_leaves" value="${esc(p.retrieval_index.num_leaves)}" style="width:80px" /> to search <input type="text" data-bind="params.retrieval_index.num_leaves_to_search" value="${esc(p.retrieval_index.num_leaves_to_search)}" style="width:80px" />${errorSlot('training_params.retrieval_index')}` : ''}
      </details>${errorSlot('training_params')}`;
  }

  function step3() {
    const s = w.schedule;
    const d = w.deployment;
    const ev = w.evaluator;
    const metrics = gateMetrics(w.model_type);
    const lower = lowerIsBetter(ev.metric);
    const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : ['UTC', 'Europe/Berlin', 'America/New_York'];
    const sched = (type, label) => `<label class="option-card ${s.type === type ? 'selected' : ''}"><input type="radio" name="schedule" value="${type}" data-schedule-type ${s.type === type ? 'checked' : ''} />${label}</label>`;
    const p = w.params;
    return `<h3>GPU configuration</h3><div class="option-cards" data-role="gpu-cards">${gpuTypes().map(({ name: id }) => [id, ...(GPU_WORDS[id] || [id, ''])]).map(([id, label, note]) => `<label class="option-card ${w.gpu.gpu_type === id ? 'selected' : ''}" data-gpu="${id}"><input type="radio" name="gpu" value="${id}" data-gpu-type ${w.gpu.gpu_type === id ? 'checked' : ''} /><b>${label}</b>${id === defaultGpu().gpu_type ? '<span class="badge">★ Recommended</span>' : ''}<div class="muted small">${note}</div></label>`).join('')}</div>
      <div class="muted small" data-role="gpu-availability">${esc(w.gpuAvailability?.[gpuKey()] ?? 'Checking GPU quota…')}</div>
      ${errorSlot('gpu_config.gpu_type')}
      <div class="grid2" style="margin-top:8px"><div class="field"><label class="lbl">Number of GPUs</label><select data-bind="gpu.gpu_count">${gpuCounts(w.gpu.gpu_type).map((n) => `<option value="${n}" ${w.gpu.gpu_count === n ? 'selected' : ''}>${n}</option>`).join('')}</select>${errorSlot('gpu_config.gpu_count')}${errorSlot('gpu_config')}</div>
        <div class="field"><label class="lbl">Machines</label><select data-bind="gpu.machine_count">${Array.from({ length: maxMachines() }, (_, i) => i + 1).map((n) => `<option value="${n}" ${Number(w.gpu.machine_count) === n ? 'selected' : ''}>${n}</option>`).join('')}</select>
          <div class="muted small">1 = one VM. More: a chief + workers training together (MultiWorkerMirroredStrategy), each with the GPUs above.</div>${errorSlot('gpu_config.machine_count')}</div>
        <div class="field"><label class="lbl">&nbsp;</label><label><input type="checkbox" data-bind="gpu.preemptible" ${w.gpu.preemptible ? 'checked' : ''} /> Use Spot (preemptible) VMs — ~70% cheaper, checkpointing recovers interruptions</label></div></div>
      ${fallbackRows()}
      <h3>Evaluator</h3><div class="field"><label><input type="checkbox" data-bind="evaluator.enabled" ${ev.enabled ? 'checked' : ''} /> Enable model evaluation (TFMA)</label>
        <div class="inline" style="margin-top:6px">Blessing threshold: <select data-bind="evaluator.metric">${metrics.map((m) => `<option value="${esc(m)}" ${ev.metric === m ? 'selected' : ''}>${esc(metricLabel(m))}</option>`).join('')}</select>
        must be ${lower ? 'at most' : 'at least'} <input type="number" step="any" data-bind="evaluator.value" value="${esc(ev.value)}" placeholder="${lower ? 'from the experiment' : esc(defaultMinValue())}" style="width:110px" /></div>
        <div class="muted small">ℹ️ Models below the threshold are saved but marked "not blessed".</div>${errorSlot('evaluator_config.blessing_threshold')}${errorSlot('evaluator_config.blessing_threshold.metric')}${errorSlot('evaluator_config')}</div>
      <div class="field" data-role="champion-gate"><label><input type="checkbox" data-bind="champion.compare" ${w.champion.compare ? 'checked' : ''} /> Also hold it to the champion — the model serving on the target endpoint, else the registry's default version — scored on the same test split</label>
        ${w.champion.compare ? `<div class="inline" style="margin-top:6px">Blessed when at most <input type="number" step="any" min="0" max="50" data-bind="champion.tolerance_pct" value="${esc(w.champion.tolerance_pct)}" style="width:80px" /> % ${lower ? 'above' : 'below'} the champion's ${esc(metricLabel(ev.metric))}</div>` : ''}
        <div class="muted small">ℹ️ With no champion yet the threshold alone decides; a model that loses is not registered and never deployed by itself.</div>${errorSlot('evaluator_config.champion_tolerance')}${errorSlot('evaluator_config.compare_to_champion')}</div>
      <h3>Deployment</h3><div class="field">
        <label style="display:block"><input type="radio" name="deploy" value="register_only" data-deploy ${d.action === 'register_only' ? 'checked' : ''} /> Register model only (deploy manually later)</label>
        <label style="display:block"><input type="radio" name="deploy" value="deploy_new" data-deploy ${d.action === 'deploy_new' ? 'checked' : ''} /> Deploy to a new endpoint: <input type="text" data-bind="deployment.endpoint_name" value="${esc(d.endpoint_name)}" placeholder="${esc(w.name || 'run name')}" /></label>
        <label style="display:block"><input type="radio" name="deploy" value="deploy_existing" data-deploy ${d.action === 'deploy_existing' ? 'checked' : ''} /> Deploy to an existing endpoint: ${endpointPicker(w.endpoints, d.existing_endpoint_id, 'deployment.existing_endpoint_id')}
          ${d.action === 'deploy_existing' && d.canary.enabled ? '' : `traffic <input type="number" data-bind="deployment.traffic_split" value="${esc(d.traffic_split)}" style="width:70px" />%`}</label>
        ${d.action === 'deploy_existing' ? canaryFields(d.canary, { bind: 'deployment.canary', errors: 'deployment_config.canary' }) : ''}
        ${errorSlot('deployment_config')}${errorSlot('deployment_config.existing_endpoint_id')}${errorSlot('deployment_config.traffic_split')}${errorSlot('deployment_config.endpoint_name')}</div>
      <h3>Schedule</h3><div class="option-cards">${sched('now', 'Run immediately')}${sched('once', 'Once, later')}${sched('daily', 'Daily')}${sched('weekly', 'Weekly')}${sched('data', 'When new data lands')}${sched('draft', 'Save as draft')}</div>
      ${['daily', 'weekly'].includes(s.type) ? `<label style="display:block;margin-top:8px"><input type="checkbox" data-bind="schedule.on_data" ${s.on_data ? 'checked' : ''} /> Also when new data lands</label>` : ''}
      ${s.type === 'data' || (['daily', 'weekly'].includes(s.type) && s.on_data) ? `<div class="grid2" style="margin-top:8px" data-role="data-trigger">
        <div class="field"><label class="lbl">New data in</label><input type="text" data-bind="schedule.data_where" value="${esc(s.data_where)}" placeholder="gs://bucket/prefix/ · project.dataset.table · /local/folder" />${errorSlot('data_trigger')}${errorSlot('data_trigger.bucket')}${errorSlot('data_trigger.prefix')}${errorSlot('data_trigger.table')}${errorSlot('data_trigger.path')}${errorSlot('data_trigger.source')}</div>
        <div class="field"><label class="lbl">At most one run per (minutes)</label><input type="number" min="1" data-bind="schedule.data_interval" value="${esc(s.data_interval)}" style="width:90px" />${errorSlot('data_trigger.min_interval_minutes')}</div></div>
        <div class="muted small">ℹ️ New objects under the prefix (a bucket notification), rows written to the table (its audit log), or files in the folder (the local stack's watcher) start a run — never while one is queued or running; the same notification twice starts one.</div>` : ''}
      ${!['now', 'draft', 'data'].includes(s.type) ? `<div class="grid2" style="margin-top:8px">
        ${s.type === 'once' ? `<div class="field"><label class="lbl">Date</label><input type="date" data-bind="schedule.date" value="${esc(s.date)}" />${errorSlot('scheduled_at')}${errorSlot('run_at')}</div>` : ''}
        ${s.type === 'weekly' ? `<div class="field"><label class="lbl">Day</label><select data-bind="schedule.day_of_week">${DAYS.map((day, i) => `<option value="${i}" ${Number(s.day_of_week) === i ? 'selected' : ''}>${day}</option>`).join('')}</select>${errorSlot('day_of_week')}</div>` : ''}
        <div class="field"><label class="lbl">Time</label><input type="time" data-bind="schedule.time" value="${esc(s.time)}" />${errorSlot('time_of_day')}</div>
        <div class="field"><label class="lbl">Time zone</label><select data-bind="schedule.timezone">${['UTC', ...zones.filter((z) => z !== 'UTC')].map((z) => `<option ${s.timezone === z ? 'selected' : ''}>${esc(z)}</option>`).join('')}</select>${errorSlot('timezone')}</div></div>
        <div class="muted small">ℹ️ Off-peak hours may have better GPU availability.</div>` : ''}
      ${errorSlot('schedule')}
      <h3>Summary</h3><div class="summary-box" data-role="summary">
        <b>Training run: ${esc(w.name || '—')}</b><div>Based on: ${esc(w.experiment ? `${w.experiment.number ? `Exp #${w.experiment.number}` : w.experiment.name} (${metricLabel(primaryMetric(w.model_type))}: ${metricValue(w.experiment.metrics?.[primaryMetric(w.model_type)])})` : '—')}</div>
        <ul><li>Dataset: ${esc(w.configs?.dataset?.name)} (${esc(p.data_sample_percent)}%)</li><li>Features: ${esc(w.configs?.feature_config?.name)}</li><li>Model: ${esc(w.configs?.model_config?.name)}</li>
        <li>${esc(p.epochs)} epochs, batch ${esc(p.batch_size)}, LR ${esc(p.learning_rate)} (${esc(p.lr_schedule.type)})</li><li>Early stopping: ${p.early_stopping.enabled ? `patience ${esc(p.early_stopping.patience)}` : 'off'}</li>
        ${retrieves(w.model_type) ? `<li>Index: ${esc(p.retrieval_index.type)}</li>` : ''}
        <li>GPU: ${esc(gpuText(w.gpu))}</li>
        ${w.gpu.fallbacks.length ? `<li data-role="summary-fallbacks">Then, without quota or capacity: ${esc(fallbacksText(w.gpu.fallbacks))}</li>` : ''}
        <li data-role="summary-evaluator">Evaluator: ${ev.enabled ? `${esc(metricLabel(ev.metric))} ${lower ? '≤' : '≥'} ${esc(ev.value || 'derived from the experiment')} ${esc(championGateText(championGateFor(w.champion), lower))}` : 'disabled'}</li>
        <li data-role="summary-deploy">Deploy: ${esc({ register_only: 'register only (manual)', deploy_new: 'new endpoint', deploy_existing: 'existing endpoint' }[d.action])}${d.action === 'deploy_existing' ? esc(` ${d.existing_endpoint_id || '…'}: ${canaryFor(d) ? canaryText(canaryFor(d)) : `${Number(d.traffic_split) || 100}% of the traffic at once`}`) : ''}</li>
        <li>Schedule: ${esc(s.type === 'now' ? 'run immediately' : s.type === 'draft' ? 'saved as a draft, submitted later from its card' : s.type === 'once' ? `once on ${s.date} ${s.time} ${s.timezone}` : s.type === 'data' ? 'when new data lands' : s.type === 'daily' ? `daily at ${s.time} ${s.timezone}` : `weekly on ${DAYS[s.day_of_week]} at ${s.time} ${s.timezone}`)}${esc(dataTriggerFor(s) ? ` — new data in ${s.data_where || '…'}, at most one run per ${Number(s.data_interval) || 60} min` : '')}</li></ul></div>`;
  }

  // Shapes to move on to when the Trainer cannot get the GPUs above (docs/lifecycle.md "GPU fallback").
  function fallbackRows() {
    const rows = w.gpu.fallbacks.map((f, i) => {
      const m = gpuMachines(f.gpu_type, f.gpu_count);
      const at = `gpu_config.fallbacks.${i}`;
      return `<div class="field fallback-row" data-fallback="${i}"><b>${i + 1}.</b>
        <select data-bind="gpu.fallbacks.${i}.gpu_type" aria-label="fallback ${i + 1} GPU type">${gpuTypes().map(({ name }) => `<option value="${esc(name)}" ${f.gpu_type === name ? 'selected' : ''}>${esc(GPU_LABEL[name] || name)}</option>`).join('')}</select>
        × <select data-bind="gpu.fallbacks.${i}.gpu_count" aria-label="fallback ${i + 1} GPU count">${gpuCounts(f.gpu_type).map((n) => `<option value="${n}" ${Number(f.gpu_count) === n ? 'selected' : ''}>${n}</option>`).join('')}</select>
        on <select data-bind="gpu.fallbacks.${i}.machine_type" aria-label="fallback ${i + 1} machine"><option value="">${esc(m.default || 'default machine')} (default)</option>${m.admitted.filter((x) => x !== m.default).map((x) => `<option ${f.machine_type === x ? 'selected' : ''}>${esc(x)}</option>`).join('')}</select>
        in <input type="text" data-bind="gpu.fallbacks.${i}.region" value="${esc(f.region)}" placeholder="the deployment's region" style="width:150px" aria-label="fallback ${i + 1} region" />
        <label><input type="checkbox" data-bind="gpu.fallbacks.${i}.preemptible" ${f.preemptible ? 'checked' : ''} /> Spot</label>
        <button data-fallback-move="-1" data-index="${i}" ${i === 0 ? 'disabled' : ''} title="earlier">↑</button><button data-fallback-move="1" data-index="${i}" ${i === w.gpu.fallbacks.length - 1 ? 'disabled' : ''} title="later">↓</button><button data-fallback-remove="${i}" title="remove">✕</button>
        ${['gpu_type', 'gpu_count', 'machine_type', 'region', 'preemptible'].map((k) => errorSlot(`${at}.${k}`)).join('')}${errorSlot(at)}</div>`;
    }).join('');
    return `<div data-role="gpu-fallbacks" style="margin-top:8px"><label class="lbl">Fallback shapes, in order</label>
      <div class="muted small">ℹ️ When the Trainer cannot get the GPUs above (quota or capacity), the run resumes from its checkpoint on the next shape here, within the team's budget. The pre-flight puts shapes with free quota first.</div>
      ${rows}${w.gpu.fallbacks.length < maxFallbacks() ? '<button data-fallback-add>+ Add a fallback shape</button>' : ''}${errorSlot('gpu_config.fallbacks')}</div>`;
  }

  function gpuKey() {
    return shapeKey(w.gpu);
  }

  // GPU pre-flight (GET /api/gpu-availability): advice shown under the GPU cards, never a refusal.
  async function checkGpu() {
    const key = gpuKey();
    w.gpuAvailability = w.gpuAvailability || {};
    if (key in w.gpuAvailability) return;
    await checkShape(w.gpu, w.gpuAvailability);
    const slot = $('[data-role=gpu-availability]', el);
    if (slot && key === gpuKey()) slot.textContent = w.gpuAvailability[key];
  }

  function render() {
    $('[data-role=step-title]', el).textContent = `Step ${w.step} of 3 · ${STEP_TITLES[w.step - 1].toUpperCase()}`;
    $('[data-role=dots]', el).innerHTML = [1, 2, 3].map((i) => `<span class="step-dot ${i <= w.step ? 'done' : ''}"></span>`).join('');
    el.dataset.step = String(w.step);
    body().innerHTML = `<div class="general-error" data-role="general-error"></div>${w.step === 1 ? step1() : w.step === 2 ? step2() : step3()}`;
    $('[data-role=foot]', el).innerHTML = `${w.step > 1 ? '<button data-wiz="back">← Back</button>' : ''}<button data-close>Cancel</button>
      ${w.step < 3 ? '<button class="btn-primary" data-wiz="next">Next →</button>' : `<button class="btn-primary" data-wiz="submit" ${w.submitting ? 'disabled' : ''}>${{ now: '▶ Run Training', draft: '📝 Save Draft' }[w.schedule.type] || '▶ Schedule Training'}</button>`}`;
    showErrors();
    if (w.step === 3) checkGpu();
    const search = $('#wiz-exp-search', el);
    if (search) search.addEventListener('input', debounce(runSearch, 300));
  }

  function showErrors() {
    $('[data-role=general-error]', el).textContent = placeErrors(el, w.errors, /^run_template\./).join(' · ');
  }

  // ---------------------------------------------------------------- input

  function setPath(path, value) {
    const keys = path.split('.');
    let obj = w;
    for (const k of keys.slice(0, -1)) obj = obj[k];
    obj[keys.at(-1)] = value;
  }

  function collect() {
    for (const input of $$('[data-bind]', el)) {
      const path = input.dataset.bind;
      let value;
      if (input.type === 'checkbox') value = input.checked;
      else if (input.type === 'number' || path === 'gpu.gpu_count' || path === 'gpu.machine_count') value = input.value === '' ? '' : Number(input.value);
      else value = input.value;
      if (path === 'evaluator.value') value = input.value;
      setPath(path, value);
    }
    const details = $('[data-role=advanced]', el);
    if (details) w.advancedOpen = details.open;
  }

  function expListLabel() {
    if (!w.searchResults) return `Top 5 ${modelTypeLabel(w.model_type)} experiments by ${metricLabel(primaryMetric(w.model_type))}:`;
    return `Search results (${w.searchResults.length}${w.searchPicker?.hasMore ? '+' : ''})`;
  }

  function expMore() {
    const picker = w.searchPicker;
    if (!picker) return '';
    if (picker.error) return `<div class="muted small">${esc(picker.error.message)}</div>`;
    return picker.hasMore ? `<button data-exp-more ${picker.loading ? 'disabled' : ''}>Load more experiments</button>` : '';
  }

  // In place, so the search box keeps its caret.
  function showExpList() {
    const list = $('[data-role=exp-list]', el);
    if (!list) return;
    const rows = w.searchResults ?? w.experiments;
    list.innerHTML = rows.length ? rows.map(expRow).join('')
      : `<div class="exp-row muted">${w.searchPicker?.loading ? 'Searching…' : 'No matching experiments.'}</div>`;
    $('[data-role=exp-list-label]', el).textContent = expListLabel();
    $('[data-role=exp-more]', el).innerHTML = expMore();
  }

  // A search is the server's, over every experiment of the model type, page by page (GET /api/experiments).
  function runSearch(e) {
    w.search = e.target.value;
    collect();
    if (!w.search.trim()) {
      w.searchPicker = null;
      w.searchResults = null;
      showExpList();
      return;
    }
    if (!w.searchPicker) {
      const picker = new CatalogPicker((q) => get(`/api/experiments?${q}`), () => {
        if (w.searchPicker !== picker) return; // a model type since picked: another picker's
        w.searchResults = picker.items;
        showExpList();
      }, { filters: { model_type: w.model_type }, size: 20 });
      w.searchPicker = picker;
    }
    w.searchPicker.search(w.search);
  }

  el.addEventListener('change', (e) => {
    const t = e.target;
    if (t.dataset.modelType !== undefined && t.name === 'model_type') {
      collect();
      w.model_type = t.value;
      w.experiment = null;
      w.searchResults = null;
      w.searchPicker = null;
      w.search = '';
      w.evaluator = thresholdFor(w.model_type);
      render();
      loadExperiments();
    } else if (t.name === 'lr_type') {
      collect();
      w.params.lr_schedule = lrScheduleFor(t.value, Number(w.params.learning_rate) || trainingDefaults().learning_rate);
      render();
    } else if (t.name === 'gpu') {
      collect();
      w.gpu.gpu_type = t.value;
      const counts = gpuCounts(t.value); // a machine of this type holds only these counts
      if (counts.length && !counts.includes(Number(w.gpu.gpu_count))) w.gpu.gpu_count = Math.max(...counts.filter((n) => n <= w.gpu.gpu_count), counts[0]);
      render();
    } else if (t.name === 'deploy') {
      collect();
      w.deployment.action = t.value;
      render();
    } else if (t.name === 'schedule') {
      collect();
      w.schedule.type = t.value;
      render();
    } else if (w.step === 3 && t.dataset.bind) {
      collect();
      w.gpu.fallbacks = w.gpu.fallbacks.map(fitShape); // a new type or count: a count and machine that fit it
      render();
    }
  });

  el.addEventListener('click', async (e) => {
    if (e.target.closest('[data-exp-more]')) {
      w.searchPicker?.more();
      return;
    }
    const viewExp = e.target.closest('[data-view-exp]');
    if (viewExp) {
      const list = w.searchResults ?? w.experiments;
      onViewExperiment(list.find((x) => x.id === viewExp.dataset.viewExp), { fromWizard: true });
      return;
    }
    const row = e.target.closest('[data-select-exp]');
    if (row) {
      collect();
      const list = w.searchResults ?? w.experiments;
      selectExperiment(list.find((x) => x.id === row.dataset.selectExp));
      render();
      return;
    }
    const fallback = e.target.closest('[data-fallback-add],[data-fallback-move],[data-fallback-remove]');
    if (fallback) {
      collect();
      const list = w.gpu.fallbacks;
      if (fallback.dataset.fallbackAdd !== undefined) {
        // Spot first, then on-demand (issue 27): the same GPUs on-demand is the usual next shape
        list.push({ gpu_type: w.gpu.gpu_type, gpu_count: w.gpu.gpu_count, machine_type: '', region: '', preemptible: false });
      } else if (fallback.dataset.fallbackRemove !== undefined) {
        list.splice(Number(fallback.dataset.fallbackRemove), 1);
      } else {
        const i = Number(fallback.dataset.index);
        const j = i + Number(fallback.dataset.fallbackMove);
        [list[i], list[j]] = [list[j], list[i]];
      }
      w.errors = w.errors.filter((er) => !String(er.field).includes('gpu_config.fallbacks')); // their rows moved
      render();
      return;
    }
    const change = e.target.closest('[data-change]');
    if (change) {
      collect();
      changeConfig(change.dataset.change);
      return;
    }
    const nav = e.target.closest('[data-wiz]');
    if (!nav) return;
    collect();
    if (nav.dataset.wiz === 'back') w.step -= 1;
    if (nav.dataset.wiz === 'next') {
      if (w.step === 1 && !w.experiment) {
        w.errors = [{ field: 'base_experiment_id', message: 'select a base experiment to train from' }];
        render();
        return;
      }
      w.errors = w.errors.filter((er) => stepForField(er.field) !== w.step);
      w.step += 1;
    }
    if (nav.dataset.wiz === 'submit') {
      await submit();
      return;
    }
    render();
  });

  // The list pages from the server and is searched there when it is longer than a page (configmodal.js, picker.js).
  function changeConfig(kind) {
    const path = CATALOG_PATH[kind];
    const title = { dataset: 'Select Dataset', feature_config: 'Select Feature Config', model_config: 'Select Model Config' }[kind];
    openConfigModal({ kind, title, fetchPage: (q) => get(`/api/${path}?${q}`),
      filters: kind === 'model_config' ? { model_type: w.model_type } : {},
      currentId: w.configs?.[kind]?.id, returnFocus: () => $(`[data-change="${kind}"]`, el),
      onSelect: (item) => {
        w.configs = { ...(w.configs || {}), [kind]: { id: item.id, name: item.name } };
        w.details = { ...(w.details || {}), [kind]: item }; // the list holds the items in full
        render();
      } });
  }

  function runBody() {
    const p = structuredClone(w.params);
    p.warm_restart = warmRestartFor(p.warm_restart);
    for (const key of ['num_leaves', 'num_leaves_to_search']) {
      const v = p.retrieval_index[key];
      p.retrieval_index[key] = v === 'auto' || v === '' ? 'auto' : Number(v);
    }
    if (!retrieves(w.model_type)) delete p.retrieval_index;
    const ev = w.evaluator;
    const lower = lowerIsBetter(ev.metric);
    const threshold = ev.value === '' || ev.value == null ? null
      : { metric: ev.metric, [lower ? 'max_value' : 'min_value']: Number(ev.value) };
    return {
      name: w.name,
      model_type: w.model_type,
      base_experiment_id: w.experiment?.id,
      dataset_id: w.configs?.dataset?.id,
      feature_config_id: w.configs?.feature_config?.id,
      model_config_id: w.configs?.model_config?.id,
      training_params: p,
      gpu_config: { gpu_type: w.gpu.gpu_type, gpu_count: Number(w.gpu.gpu_count), machine_count: w.gpu.machine_count,
        preemptible: w.gpu.preemptible, ...(w.gpu.fallbacks.length ? { fallbacks: fallbacksFor(w.gpu.fallbacks) } : {}) },
      evaluator_config: { enabled: ev.enabled, blessing_threshold: ev.enabled ? threshold : null, ...championGateFor(w.champion) },
      deployment_config: deploymentFor(w.deployment),
    };
  }

  async function submit() {
    w.errors = [];
    w.submitting = true;
    render();
    const body = runBody();
    const s = w.schedule;
    try {
      let result;
      if (s.type === 'now') {
        result = await post('/api/training-runs', body);
      } else if (s.type === 'draft') {
        result = await post('/api/training-runs', { ...body, draft: true });
      } else if (s.type === 'once') {
        result = await post('/api/training-runs', { ...body, scheduled_at: zonedToUtc(s.date, s.time, s.timezone) });
      } else {
        const dataTrigger = dataTriggerFor(s);
        result = await post('/api/training/schedules', {
          name: w.name || 'schedule', schedule_type: s.type, timezone: s.timezone,
          ...(s.type === 'data' ? {} : { time_of_day: s.time }),
          ...(s.type === 'weekly' ? { day_of_week: Number(s.day_of_week) } : {}),
          ...(dataTrigger ? { data_trigger: dataTrigger } : {}), run_template: body,
        });
      }
      close();
      onCreated?.(result);
    } catch (err) {
      w.submitting = false;
      w.errors = err instanceof ApiError && err.errors.length ? err.errors : [{ field: 'general', message: err.message }];
      const steps = w.errors.map((er) => stepForField(er.field)).filter(Boolean);
      if (steps.length) w.step = Math.min(...steps);
      render();
    }
  }

  render();
  loadExperiments();
  loadDetails();
  // the existing endpoint's picker: read now, shown when the deployment step renders (none, or unreadable: type the id)
  listEndpoints().then((list) => { w.endpoints = list; }).catch(() => { w.endpoints = []; });
  return { el, close, state: w };
}
