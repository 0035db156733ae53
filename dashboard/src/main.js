// The Training page: three chapters, live from Firestore listeners; every change goes through the API.
import './styles.css';
import { ApiError, del, get, post, setTokenProvider } from './api.js';
import { renderCards } from './cards.js';
import {
  costText, debounce, esc, inHowLong, isDeployed, kpis, metricLabel, metricValue, modelTypeIcon,
  modelCardHtml, modelTypeLabel, modelTypes, primaryMetric, rankedExperiments, registryModels, runQueryPlan, setVocabulary, sortByPrimary, statusChips,
  toDate, when,
} from './format.js';
import * as live from './live.js';
import { noTeamMessage } from './teams.js';
import { lastDataEventText, scheduleWhen } from './trigger.js';
import { $, $$, confirmDialog, openModal, toast } from './ui.js';
import { openRunView } from './runview.js';
import { openWizard } from './wizard.js';
import { openDeployDialog } from './deploydialog.js';
import { openConfigModal } from './configmodal.js';
import { endpointIdOf, openEndpointList, openEndpointView } from './endpointview.js';
import { ListPages, listQuery, namedMatches } from './pages.js';
import { runQuery, searchMatches } from './runlist.js';
import { openRetryForm } from './retryform.js';
import { openImportDialog } from './importdialog.js';

// ?page_size=N (1–100) shows more cards per page; 20 by default.
const PAGE_SIZE = Math.min(100, Math.max(1, Number(new URLSearchParams(location.search).get('page_size')) || 20));
const state = {
  config: null,
  chapter: 'experiments',
  filters: { status: 'all', modelType: '', dataset: '', search: '' },
  runs: [],
  runsLoaded: false,
  unsubRuns: null,
  schedules: [], // the schedules loaded so far (schedulePages.all())
  schedulePages: null, // the schedules from the server, the newest live
  scheduleLive: null, // the schedules listener's rows, once it answered
  scheduleSearch: '',
  experiments: [], // the newest experiments, live
  bestExperiments: [], // the server's best of each model type, by its primary metric
  datasetName: '', // the name of the dataset the runs are filtered by
  registry: [],
  runPages: null, // the run list's pages from the server, the newest live (runlist.js)
  registryPages: null, // the registry's versions, read on with "Load more"
  expType: null, // the chapter's model type: the vocabulary's first until one is picked
  started: performance.now(),
};
window.__trainyard = { state, firstRunsRenderMs: null, renders: 0, timings: {} };
const mark = (what) => { window.__trainyard.timings[what] = Math.round(performance.now()); };

function setLive(ok, text) {
  const el = $('#live-indicator');
  el.className = `live ${ok === true ? 'on' : ok === false ? 'error' : 'off'}`;
  el.textContent = `● ${text}`;
}

function listenerError(what) {
  return (err) => {
    setLive(false, `${what}: ${err.code || err.message}`);
    console.error(what, err);
  };
}

// ------------------------------------------------------------------ chapters

function showChapter(name) {
  state.chapter = name;
  $$('.chapter-tab').forEach((t) => t.classList.toggle('active', t.dataset.chapter === name));
  $$('.chapter').forEach((c) => { c.hidden = c.dataset.chapter !== name; });
  history.replaceState(null, '', `#${name}`);
}

// ------------------------------------------------------------------ chapter 1: best experiments

// The chapter ranks the experiments a listener holds (up to live.LISTENED_CATALOG) with the server's best TOP of each type by the primary
// metric over every experiment (GET /api/experiments/top-for-training): the best stay on top at any size.
const TOP = 50;
const knownExperiments = () => rankedExperiments(state.experiments, state.bestExperiments);

const loadBestExperiments = debounce(async () => {
  try {
    const tops = await Promise.all(modelTypes().map((type) => get(`/api/experiments/top-for-training?model_type=${encodeURIComponent(type)}&limit=${TOP}`)));
    state.bestExperiments = tops.flatMap((t) => t.experiments || []);
    renderExperiments();
  } catch (err) {
    console.error('best experiments', err);
  }
}, 300);

function renderExperiments() {
  const root = $('#chapter-experiments');
  const known = knownExperiments();
  const capped = state.experiments.length >= live.LISTENED_CATALOG; // more exist than the listener holds
  const rows = modelTypes().map((type) => {
    const k = kpis(known, type);
    const cells = k.keys.map((key) => `<div class="kpi"><b>${metricValue(k.best[key])}</b><span>${esc(metricLabel(key))}</span></div>`).join('');
    return `<div class="kpi-row ${state.expType === type ? 'selected' : ''}" data-exp-type="${type}">
      <div class="kpi-type">${modelTypeIcon(type)} ${esc(modelTypeLabel(type).toUpperCase())}</div>
      <div class="kpi"><b>${k.count}${capped ? '+' : ''}</b><span>Exps</span></div>${cells}</div>`;
  }).join('');
  const metric = primaryMetric(state.expType);
  const top = sortByPrimary(known, state.expType).slice(0, TOP);
  const table = top.length ? `<div class="table-scroll"><table id="top-configs"><thead><tr><th>#</th><th>Experiment</th><th>Dataset</th><th>Feature</th><th>Model</th><th>LR</th><th>Batch</th><th>${esc(metricLabel(metric))}</th></tr></thead><tbody>
      ${top.map((e, i) => `<tr class="clickable" data-experiment="${esc(e.id)}"><td>${i + 1}</td><td>${esc(e.number ? `Exp #${e.number}` : e.name)}<div class="muted small">${esc(e.name)}</div></td>
        <td>${esc(e.dataset_name || e.dataset_id || '—')}</td><td>${esc(e.feature_config_name || e.feature_config_id || '—')}</td><td>${esc(e.model_config_name || e.model_config_id || '—')}</td>
        <td>${esc(e.params?.learning_rate ?? '—')}</td><td>${esc(e.params?.batch_size ?? '—')}</td><td><b>${metricValue(e.metrics?.[metric])}</b></td></tr>`).join('')}
      </tbody></table></div>`
    : `<div class="empty-state"><div class="big">🧪</div><p>No ${esc(modelTypeLabel(state.expType).toLowerCase())} experiments with ${esc(metricLabel(metric))} yet.</p></div>`;
  root.innerHTML = `<div class="section-head"><div><h2>Best Experiments</h2><div class="muted">Top performing experiment configurations</div></div>
    <button data-import-experiments title="Import the runs of an MLflow or Vertex AI Experiments experiment">⤓ Import experiments</button></div>
    ${rows}<h3>Top configurations — ${esc(modelTypeLabel(state.expType))}</h3>${table}`;
}

export function openExperimentView(experimentId, { fromWizard = false, experiment } = {}) {
  const e = experiment || knownExperiments().find((x) => x.id === experimentId);
  if (!e) return;
  const metrics = Object.entries(e.metrics || {}).map(([k, v]) => `<dt>${esc(metricLabel(k) || k)}</dt><dd>${metricValue(v)}</dd>`).join('');
  const params = Object.entries(e.params || {}).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</dd>`).join('');
  const { el, close } = openModal(`<div class="modal-head"><div><h2>${esc(e.number ? `Exp #${e.number}` : e.name)} — ${esc(e.name)}</h2>
      <div class="muted">${modelTypeIcon(e.model_type)} ${esc(modelTypeLabel(e.model_type))}</div></div><button data-close>✕</button></div>
    <div class="modal-body"><dl class="kv"><dt>Dataset</dt><dd>${esc(e.dataset_name || e.dataset_id)}</dd><dt>Feature config</dt><dd>${esc(e.feature_config_name || e.feature_config_id)}</dd>
      <dt>Model config</dt><dd>${esc(e.model_config_name || e.model_config_id)}</dd></dl>
      <h3>Metrics</h3><dl class="kv">${metrics || '<dd class="muted">none</dd>'}</dl><h3>Parameters</h3><dl class="kv">${params || '<dd class="muted">none</dd>'}</dl></div>
    <div class="modal-foot"><button data-close>Close</button>${fromWizard ? '' : '<button class="btn-primary" data-start-training>🚀 Start training from this experiment</button>'}</div>`, { id: 'experiment-view' });
  $('[data-start-training]', el)?.addEventListener('click', () => {
    close();
    showChapter('training');
    openWizard({ experiment: e, onCreated: onWizardCreated, onViewExperiment: viewFromWizard });
  });
}

function viewFromWizard(experiment) {
  if (experiment) openExperimentView(experiment.id, { fromWizard: true, experiment });
}

// ------------------------------------------------------------------ chapter 2: training

function trainingSkeleton() {
  const root = $('#chapter-training');
  const chips = statusChips().map(([key, label]) => `<button class="chip ${state.filters.status === key ? 'active' : ''}" data-chip="${esc(key)}">${esc(label)}</button>`).join('');
  root.innerHTML = `<div class="section-head"><div><h2>Training</h2><div class="muted">Full-scale GPU training runs</div></div>
      <div><button data-endpoints>Endpoints</button> <button class="btn-primary" data-new-run>+ New Training Run</button></div></div>
    <div id="schedules-section"></div>
    <div class="filter-bar"><div class="chips">${chips}</div>
      <select id="filter-model-type"><option value="">Model type: All</option>${modelTypes().map((t) => `<option value="${esc(t)}">${esc(modelTypeLabel(t))}</option>`).join('')}</select>
      <span class="inline"><button id="filter-dataset" data-pick-dataset aria-haspopup="dialog"></button><button data-clear-dataset hidden aria-label="All datasets" title="All datasets">✕</button></span>
      <input id="filter-search" class="search" type="search" placeholder="🔍 Search runs by name, experiment, dataset…" /></div>
    <div id="run-list"></div><div id="pagination" class="pagination"></div>`;
  $('#filter-search', root).addEventListener('input', debounce((e) => {
    state.filters.search = e.target.value;
    resubscribeRuns();
  }, 250));
  $('#filter-model-type', root).addEventListener('change', (e) => { state.filters.modelType = e.target.value; resubscribeRuns(); });
  renderDatasetFilter();
}

// The dataset filter is a picker over the datasets (the config modal: searched by the server when there are
// more than a page of them), not a <select> holding every one.
function renderDatasetFilter() {
  const button = $('#filter-dataset');
  if (!button) return;
  button.textContent = `Dataset: ${state.filters.dataset ? state.datasetName || state.filters.dataset : 'All'} ▾`;
  $('[data-clear-dataset]').hidden = !state.filters.dataset;
}

function pickDataset() {
  openConfigModal({ kind: 'dataset', title: 'Filter runs by dataset', selectLabel: 'Filter', currentId: state.filters.dataset,
    fetchPage: (q) => get(`/api/datasets?${q}`), returnFocus: () => $('#filter-dataset'),
    onSelect: (item) => setDatasetFilter(item.id, item.name) });
}

function setDatasetFilter(id, name) {
  state.filters.dataset = id;
  state.datasetName = name;
  renderDatasetFilter();
  resubscribeRuns();
}

function resubscribeRuns() {
  state.unsubRuns?.();
  state.runsLoaded = false;
  state.liveReady = false; // until this query's listener answers
  const wheres = runQueryPlan(state.filters);
  const chip = statusChips().find(([key]) => key === state.filters.status);
  const search = state.filters.search.trim();
  // The server pages the list with the search and filters; the listener keeps the newest page live
  // (while searching, the newest runs that match it).
  state.runPages.reset(runQuery(state.filters, chip ? chip[2] : null, PAGE_SIZE).toString(),
    search ? (run) => searchMatches(run, search) : true);
  state.unsubRuns = live.listenRuns(wheres, PAGE_SIZE, (runs) => {
    if (!window.__trainyard.timings.runsSnapshot) mark('runsSnapshot');
    state.liveReady = !search;
    setLive(true, 'live');
    state.runPages.setLive(runs);
  }, listenerError('runs'));
  $$('.chip').forEach((c) => c.classList.toggle('active', c.dataset.chip === state.filters.status));
}

function onRunPages() {
  const pages = state.runPages;
  state.runs = pages.rows();
  state.runsLoaded = pages.loaded || Boolean(state.liveReady && pages.index === 0);
  renderRuns();
  if (state.runsLoaded && window.__trainyard.firstRunsRenderMs == null) {
    // Milliseconds from navigation start to the first rendered list (performance.now()'s origin).
    window.__trainyard.firstRunsRenderMs = performance.now();
    window.__trainyard.firstPaintSource = pages.loaded ? 'api' : 'listener';
  }
  if (state.runsLoaded) state.onFirstRuns?.();
}

function renderRuns() {
  const list = $('#run-list');
  if (!list) return;
  window.__trainyard.renders += 1;
  const t0 = performance.now();
  const pages = state.runPages;
  if (pages.error) {
    list.innerHTML = `<div class="empty-state" data-empty="error"><h2>The runs could not be listed</h2><p class="muted">${esc(pages.error.message)}</p></div>`;
    return;
  }
  if (!state.runsLoaded) {
    list.innerHTML = '<div class="muted">Loading runs…</div>';
    return;
  }
  const shown = state.runs;
  const filtered = state.filters.status !== 'all' || state.filters.modelType || state.filters.dataset || state.filters.search;
  if (!shown.length) {
    list.innerHTML = filtered
      ? '<div class="empty-state" data-empty="filtered"><div class="big">🔍</div><h2>No runs match these filters</h2><p class="muted">Clear a filter or search for something else.</p></div>'
      : '<div class="empty-state" data-empty="none"><div class="big">🚀</div><h2>No training runs yet</h2><p class="muted">Run experiments first, then promote the best to full training</p><button class="btn-primary" data-new-run>+ New Training Run</button></div>';
  } else {
    list.innerHTML = renderCards(shown);
  }
  const count = pages.total != null ? ` · ${pages.total} run${pages.total === 1 ? '' : 's'}` : '';
  const of = pages.total != null ? ` of ${Math.max(1, Math.ceil(pages.total / PAGE_SIZE))}` : '';
  $('#pagination').innerHTML = pages.index > 0 || pages.hasNext
    ? `<button data-page="prev" ${pages.index === 0 || pages.loading ? 'disabled' : ''}>← Previous</button><span>Page ${pages.index + 1}${of}${count}</span><button data-page="next" ${!pages.hasNext || pages.loading ? 'disabled' : ''}>Next →</button>`
    : (shown.length ? `<span class="muted small">${shown.length} run${shown.length === 1 ? '' : 's'}</span>` : '');
  window.__trainyard.lastRenderMs = performance.now() - t0;
}

async function runAction(action, runId) {
  const run = state.runs.find((r) => r.id === runId) || { id: runId, name: runId };
  try {
    switch (action) {
      case 'view':
        openRunView(runId, { onAction: runAction, me: state.me }); // what the caller may do on the run's team
        return;
      case 'cancel':
        if (!(await confirmDialog(`Cancel training run "${run.name}"?`))) return;
        toast((await post(`/api/training-runs/${runId}/cancel`)).message || 'Cancel requested');
        return;
      case 'submit':
        await post(`/api/training-runs/${runId}/submit`);
        toast(`${run.name}: submitted`);
        return;
      case 'run-now':
        await post(`/api/training-runs/${runId}/run-now`);
        toast(`${run.name}: starting now`);
        return;
      case 'retry': // a form pre-filled from the run (dashboard/src/retryform.js); the run view's run may be off the page
        openRetryForm(state.runs.find((r) => r.id === runId) || (await get(`/api/training-runs/${runId}`)).training_run);
        return;
      case 'approve': // above the team's per-run cap: a team admin's decision (docs/security.md, Spend guard)
        if (!(await confirmDialog(`Approve "${run.name}"? ${run.approval?.reason || ''}`))) return;
        await post(`/api/training-runs/${runId}/approve`);
        toast(`${run.name}: approved and queued`);
        return;
      case 'reject':
        if (!(await confirmDialog(`Reject "${run.name}"? It will be cancelled.`))) return;
        await post(`/api/training-runs/${runId}/reject`);
        toast(`${run.name}: rejected`);
        return;
      case 'manage-endpoint': // spec §5.1: the endpoint the run is deployed to (dashboard/src/endpointview.js)
        openEndpointView(endpointIdOf(state.runs.find((r) => r.id === runId) || state.registry.find((r) => r.id === runId) || run),
          { me: state.me });
        return;
      case 'deploy': // where to, and staged or not: the dialog starts from the run's deployment_config
        openDeployDialog(state.registry.find((r) => r.id === runId) || run);
        return;
      case 'card': {
        const { card, uri } = await get(`/api/training-runs/${runId}/model-card`);
        openModal(`${modelCardHtml(card)}<p class="muted">Stored at <code>${esc(uri)}</code></p>
          <div class="modal-actions"><button data-close>Close</button></div>`, { id: 'model-card' });
        return;
      }
      case 'push-anyway':
        if (!(await confirmDialog(`Push "${run.name}" to the registry although it did not pass the evaluator's threshold?`))) return;
        toast((await post(`/api/training-runs/${runId}/push-anyway`)).message || 'Push queued');
        return;
      case 'delete':
        if (!(await confirmDialog(`Delete training run "${run.name}"? It can be restored (trainyard runs restore) until its grace period ends; then it is purged with its artifacts.`))) return;
        toast(`${run.name} ${(await del(`/api/training-runs/${runId}`)).message || 'deleted'}`);
        state.runPages.drop(runId);
        state.registryPages.drop(runId);
        return;
      default:
    }
  } catch (err) {
    toast(err instanceof ApiError ? `${action}: ${err.message}` : String(err), 'error');
  }
}

function onWizardCreated(result) {
  if (result.schedule) {
    toast(`Schedule "${result.schedule.name}" created: ${result.schedule.next_run_at ? `next run ${when(result.schedule.next_run_at)}` : scheduleWhen(result.schedule)}`);
  } else toast(`Training run "${result.training_run.name}" created`);
  if (state.filters.status !== 'all' || state.filters.modelType || state.filters.dataset || state.filters.search) {
    state.filters = { status: 'all', modelType: '', dataset: '', search: '' };
    trainingSkeleton();
    resubscribeRuns();
    renderSchedules();
  }
}

// ------------------------------------------------------------------ active schedules

// The schedules page from the server (newest first, 'Load more'), searched there; the newest arrive live.
const SCHEDULE_PAGE = 24;
const SCHEDULE_FIELDS = ['id', 'name', 'description']; // what the server searches (listing.list_schedules)

function resubscribeSchedules() {
  const search = state.scheduleSearch.trim();
  state.schedulePages.reset(listQuery(SCHEDULE_PAGE, search, { status: 'active,paused' }),
    search ? (s) => namedMatches(s, search, SCHEDULE_FIELDS) : true);
  if (state.scheduleLive) state.schedulePages.setLive(state.scheduleLive, SCHEDULE_PAGE);
}

function renderSchedules() {
  const root = $('#schedules-section');
  const pages = state.schedulePages;
  if (!root || !pages) return;
  state.schedules = pages.all();
  const searching = Boolean(state.scheduleSearch.trim());
  root.hidden = !state.schedules.length && !searching;
  if (!$('#schedule-search', root)) { // drawn once: a redraw would take the caret from the search box
    root.innerHTML = `<div class="section-head"><h3>Active Schedules</h3><input id="schedule-search" class="search" type="search"
      placeholder="🔍 Search schedules by name…" aria-label="Search schedules" /></div>
      <div class="schedule-grid" id="schedule-grid"></div><div class="pagination" data-role="schedules-more"></div>`;
    $('#schedule-search', root).value = state.scheduleSearch;
    $('#schedule-search', root).addEventListener('input', debounce((e) => {
      state.scheduleSearch = e.target.value;
      resubscribeSchedules();
    }, 250));
  }
  const cards = state.schedules.map((s) => {
    const rate = s.success_rate == null ? '—' : `${Math.round(s.success_rate)}%`;
    return `<div class="schedule-card ${esc(s.status)}" data-schedule-id="${esc(s.id)}"><div class="card-top"><b>⏰ ${esc(s.name)}</b><span class="status-badge ${s.status === 'active' ? 'scheduled' : ''}">${esc(s.status)}</span></div>
      <div class="muted small" data-role="schedule-when">${esc(scheduleWhen(s))}</div>
      ${lastDataEventText(s) ? `<div class="muted small" data-role="schedule-data">${esc(lastDataEventText(s))}</div>` : ''}
      <div class="stats"><div class="kpi"><b>${s.status === 'active' ? esc(inHowLong(s.next_run_at)) : '—'}</b><span>Next run</span></div>
        <div class="kpi"><b>${s.total_runs ?? 0}</b><span>Total runs</span></div><div class="kpi"><b>${rate}</b><span>Success</span></div>
        <div class="kpi"><b data-role="schedule-cost">${esc(costText(s) || '—')}</b><span>Est. cost</span></div></div>
      ${s.paused_reason ? `<div class="small card-warn">${esc(s.paused_reason)}</div>` : ''}
      <div class="card-actions"><div><button data-sched-action="trigger" data-schedule="${esc(s.id)}">Run now</button>
        ${s.status === 'active' ? `<button data-sched-action="pause" data-schedule="${esc(s.id)}">Pause</button>` : `<button data-sched-action="resume" data-schedule="${esc(s.id)}">Resume</button>`}</div>
        <div><button class="btn-danger" data-sched-action="cancel" data-schedule="${esc(s.id)}">Cancel</button></div></div></div>`;
  }).join('');
  $('#schedule-grid', root).innerHTML = cards || (pages.loading ? '<div class="muted">Searching…</div>'
    : '<div class="muted" data-empty="schedules">No schedule matches this search.</div>');
  $('[data-role=schedules-more]', root).innerHTML = pages.error ? `<span class="card-warn">${esc(pages.error.message)}</span>`
    : pages.hasMore ? `<button data-schedules-more ${pages.loading ? 'disabled' : ''}>Load more schedules</button>` : '';
}

async function scheduleAction(action, scheduleId) {
  const s = state.schedules.find((x) => x.id === scheduleId) || { name: scheduleId };
  try {
    if (action === 'cancel' && !(await confirmDialog(`Cancel schedule "${s.name}" for good?`))) return;
    const result = await post(`/api/training/schedules/${scheduleId}/${action}`);
    const outcome = action === 'trigger' ? ` (${result.outcome || 'triggered'})` : '';
    if (action === 'cancel') state.schedulePages.drop(scheduleId); // a server page would keep its copy
    toast(`Schedule "${s.name}": ${action}${outcome}`);
  } catch (err) {
    toast(`${action}: ${err.message}${err.status === 404 ? ' — schedules are not available on this API' : ''}`, 'error');
  }
}

// ------------------------------------------------------------------ chapter 3: models registry

function renderRegistry() {
  const root = $('#chapter-registry');
  const models = registryModels(state.registry);
  const body = models.length ? models.map((m) => {
    const metric = primaryMetric(m.model_type) || 'recall_at_100';
    const rows = m.versions.map((r) => `<tr data-registry-run="${esc(r.id)}"><td>v${esc(r.vertex_model_version ?? '?')}</td><td>${esc(r.name)} #${esc(r.run_number ?? '')}${r.pushed_anyway ? ' <span class="badge">pushed anyway</span>' : ''}</td>
        <td>${metricValue(r.metrics?.[metric] ?? r[metric])}</td><td>${esc(when(r.completed_at))}</td>
        <td>${isDeployed(r) ? `🟢 ${esc(r.endpoint_resource_name || r.deployment?.endpoint_name || 'deployed')}` : r.deployment_status === 'deploying' ? '⏳ deploying' : r.deployment_status === 'failed' ? '🔴 deploy failed' : '<span class="muted">not deployed</span>'}</td>
        <td><button data-action="view" data-run="${esc(r.id)}">View</button> <button data-action="card" data-run="${esc(r.id)}">Model card</button> ${!isDeployed(r) && r.deployment_status !== 'deploying' ? `<button data-action="deploy" data-run="${esc(r.id)}">Deploy</button>` : ''}</td></tr>`).join('');
    return `<div class="card-box"><div class="card-top"><h2>📦 ${esc(m.name)}</h2><span class="muted">${esc(modelTypeLabel(m.model_type))} · ${m.versions.length} version${m.versions.length === 1 ? '' : 's'}</span></div>
      <table><thead><tr><th>Version</th><th>Run</th><th>${esc(metricLabel(metric))}</th><th>Registered</th><th>Endpoint</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
  }).join('') : '<div class="empty-state"><div class="big">📦</div><h2>No registered models yet</h2><p class="muted">Completed, blessed runs (and runs pushed anyway) appear here with their versions.</p></div>';
  const pages = state.registryPages;
  const more = pages?.hasMore
    ? `<div class="pagination"><button data-registry-more ${pages.loading ? 'disabled' : ''}>Load more versions</button></div>` : '';
  root.innerHTML = `<div class="section-head"><div><h2>Models Registry</h2><div class="muted">Registered models and versions from completed runs</div></div>
    <button data-endpoints>Endpoints</button></div>${body}${more}`;
}

// ------------------------------------------------------------------ wiring

function wire() {
  document.addEventListener('click', (e) => {
    const t = e.target;
    const tab = t.closest('.chapter-tab');
    if (tab) return showChapter(tab.dataset.chapter);
    if (t.closest('[data-new-run]')) return openWizard({ onCreated: onWizardCreated, onViewExperiment: viewFromWizard });
    if (t.closest('[data-endpoints]')) return openEndpointList({ me: state.me });
    if (t.closest('[data-pick-dataset]')) return pickDataset();
    if (t.closest('[data-clear-dataset]')) return setDatasetFilter('', '');
    if (t.closest('[data-import-experiments]')) return openImportDialog({ me: state.me });
    const chip = t.closest('[data-chip]');
    if (chip) {
      state.filters.status = chip.dataset.chip;
      return resubscribeRuns();
    }
    const action = t.closest('[data-action]');
    if (action && !action.closest('.modal')) return runAction(action.dataset.action, action.dataset.run);
    const sched = t.closest('[data-sched-action]');
    if (sched) return scheduleAction(sched.dataset.schedAction, sched.dataset.schedule);
    if (t.closest('[data-schedules-more]')) return state.schedulePages.more();
    const page = t.closest('[data-page]');
    if (page) return state.runPages.load(state.runPages.index + (page.dataset.page === 'next' ? 1 : -1));
    if (t.closest('[data-registry-more]')) return state.registryPages.load(state.registryPages.pages.length);
    const kpi = t.closest('[data-exp-type]');
    if (kpi) {
      state.expType = kpi.dataset.expType;
      return renderExperiments();
    }
    const row = t.closest('[data-experiment]');
    if (row && !row.closest('.modal')) return openExperimentView(row.dataset.experiment);
    return undefined;
  });
}

async function main() {
  wire();
  renderExperiments();
  trainingSkeleton();
  renderRegistry();
  const initial = (location.hash || '#experiments').slice(1);
  showChapter(['experiments', 'training', 'registry'].includes(initial) ? initial : 'experiments');
  try {
    const response = await fetch('/training/config.json');
    state.config = await response.json();
  } catch (err) {
    setLive(false, 'no config');
    $('#banner').hidden = false;
    $('#banner').textContent = `Cannot load /training/config.json: ${err.message}`;
    return;
  }
  mark('config');
  $('#model-name').textContent = state.config.modelName ? `Model: ${state.config.modelName}` : '';
  let session;
  try {
    session = await live.connect(state.config);
  } catch (err) {
    setLive(false, 'not connected');
    $('#banner').hidden = false;
    $('#banner').textContent = `Cannot start: ${err.message}`;
    return;
  }
  mark('connected');
  setTokenProvider(session.token);
  // The server's vocabulary (statuses, stages, metrics, actions per status) before anything is drawn
  // from it; the chapters drawn so far are drawn again with it.
  try {
    setVocabulary((await get('/api/vocabulary')).vocabulary);
    state.expType ??= modelTypes()[0];
    mark('vocabulary');
  } catch (err) {
    $('#banner').hidden = false;
    $('#banner').textContent = `Cannot load the API's vocabulary (/api/vocabulary): ${err.message}. Runs show without their actions.`;
  }
  renderExperiments();
  trainingSkeleton();
  renderRegistry();
  $('#identity').textContent = session.identity || '';
  if (session.signOut) {
    $('#signout').hidden = false;
    $('#signout').addEventListener('click', () => session.signOut());
  }
  const domain = state.config.allowedDomain;
  window.__trainyard.session = session;
  if (domain && session.identity && !session.identity.toLowerCase().endsWith(`@${domain.toLowerCase()}`)) {
    // Signed in, but not as a member: the rules and the API will refuse everything. Say why.
    $('#banner').hidden = false;
    $('#banner').textContent = `${session.identity} is not an @${domain} account: this page shows nothing to it. `
      + 'Sign out and sign in with your organisation account.';
    setLive(false, 'not a member');
    return;
  }
  // Which teams' documents the listeners may ask for: GET /api/me says, and writes the access
  // document terraform/firestore.rules check (shared/domain/access.py). It expires; renew it first.
  try {
    await renewAccess();
  } catch (err) {
    setLive(false, 'no access');
    $('#banner').hidden = false;
    $('#banner').textContent = `Cannot learn which teams you are on (/api/me): ${err.message}`;
    return;
  }
  if (!state.me.teams.length) {
    showNoTeam(state.me);
    return;
  }
  window.__trainyard.ready = true;
  // What the open chapter shows is asked for first; the other listeners follow its first snapshot
  // (or half a second later), so they do not compete with it on the way in.
  let restStarted = false;
  const startRest = () => {
    if (restStarted) return;
    restStarted = true;
    if (state.chapter !== 'experiments') listenExperiments();
    resubscribeSchedules();
    live.listenSchedules(SCHEDULE_PAGE, (rows) => {
      state.scheduleLive = rows;
      state.schedulePages.setLive(rows, SCHEDULE_PAGE);
    }, listenerError('schedules'));
    // The registry's versions page from the server (100 at a time, "Load more"); the newest arrive live.
    state.registryPages.reset(new URLSearchParams({ status: 'completed,not_blessed', registered: 'true',
      page_size: '100' }).toString(), true);
    live.listenRegistry(100, (rows) => state.registryPages.setLive(rows), listenerError('registry'));
  };
  const listenExperiments = () => live.listenCatalog('experiments', (rows) => {
    state.experiments = rows;
    loadBestExperiments(); // an experiment posted or changed may be among the best
    mark('experiments');
    renderExperiments();
    if (state.chapter === 'experiments') startRest();
  }, listenerError('experiments'));
  state.onFirstRuns = () => { if (state.chapter !== 'experiments') startRest(); };
  if (state.chapter === 'experiments') listenExperiments();
  state.runPages = new ListPages((q) => get(`/api/training-runs?${q}`), onRunPages);
  state.schedulePages = new ListPages((q) => get(`/api/training/schedules?${q}`), renderSchedules, 'schedules');
  state.registryPages = new ListPages((q) => get(`/api/training-runs?${q}`), () => {
    state.registry = state.registryPages.all();
    renderRegistry();
  });
  resubscribeRuns();
  setTimeout(startRest, 500);
  // Relative times ("4m ago", "in 2h") age without any data change.
  setInterval(() => { if (state.chapter === 'training') { renderRuns(); renderSchedules(); } }, 30000);
}

// ------------------------------------------------------------------ access: the caller's teams

async function renewAccess() {
  const me = (await get('/api/me')).me;
  const changed = state.me && state.me.teams.join() !== me.teams.join();
  // A grant that lapsed (a tab asleep past it) has already cost the listeners: Firestore ends a
  // listener the rules refuse.
  const lapsed = state.me && Date.now() >= Date.parse(state.me.access_expires_at);
  state.me = me;
  window.__trainyard.me = me;
  live.setTeams(me.teams);
  if (changed || lapsed) {
    // Listeners are built for a set of teams; a different set means different queries.
    location.reload();
    return;
  }
  // Renew at three quarters of its life; a sleeping tab's timers are late, so also on waking.
  const renewAt = Date.parse(me.access_expires_at) - (Date.parse(me.access_expires_at) - Date.now()) / 4;
  clearTimeout(state.renewTimer);
  state.renewTimer = setTimeout(renewInBackground, Math.max(1000, renewAt - Date.now()));
  state.renewAt = renewAt;
}

function renewInBackground() {
  renewAccess().catch((err) => {
    setLive(false, 'access not renewed');
    console.error('access', err);
    state.renewTimer = setTimeout(renewInBackground, 60_000);
  });
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.renewAt && Date.now() >= state.renewAt) renewInBackground();
});

function showNoTeam(me) {
  const text = noTeamMessage(me);
  setLive(null, 'no team');
  $('#banner').hidden = false;
  $('#banner').textContent = text;
  for (const chapter of ['experiments', 'training', 'registry']) {
    $(`#chapter-${chapter}`).innerHTML = `<div class="empty-state" data-empty="no-team"><div class="big">👥</div>
      <h2>You are not on any team</h2><p class="muted">${esc(text)}</p></div>`;
  }
}

export function catalogState() {
  return state;
}

main();
