// The run view (spec §5.3): Overview, Pipeline, Training (charts per epoch), Artifacts, Logs.
// The run document and its history are Firestore listeners: the open view updates by itself.
import {
  Chart, CategoryScale, Legend, LineController, LineElement, LinearScale, LogarithmicScale, PointElement, Tooltip,
} from 'chart.js';
import { ApiError, get, post } from './api.js';
import {
  actionLabel, actionsFor, baseText, cssStatus, costText, duration, esc, gateMetric, gateSummary, gpuText, lowerIsBetter,
  metricLabel, metricValue, notificationsText, stageNames, statusIcon, statusLabel, when,
} from './format.js';
import { attemptsTable } from './attempts.js';
import { errorSlot, placeErrors } from './fielderrors.js';
import { mayAct, NEEDS } from './roles.js';
import { triggerText } from './trigger.js';
import { seriesData, tensorboardLine, trainingTabHtml } from './trainingtab.js';
import { listenHistory, listenRun } from './live.js';
import { showLogs } from './logview.js';
import { endpointIdOf } from './endpointview.js';
import { $, $$, confirmDialog, openModal, toast } from './ui.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, CategoryScale, Legend, Tooltip);

const TABS = ['overview', 'pipeline', 'training', 'artifacts', 'logs'];

export function openRunView(runId, { onAction, me = null } = {}) {
  const view = { me, run: null, history: [], tab: 'overview', charts: {}, unsubHistory: null, historyAttempt: null, logFilter: { stage: '', severity: '' } };
  const { el } = openModal(`<div class="modal-head"><div><h2 data-role="title">Loading…</h2><div class="muted" data-role="subtitle"></div></div>
      <div data-role="actions"></div><button data-close>✕</button></div>
    <div class="tabs">${TABS.map((t) => `<button class="tab ${t === 'overview' ? 'active' : ''}" data-tab="${t}">${t[0].toUpperCase() + t.slice(1)}</button>`).join('')}</div>
    <div class="modal-body" data-role="body"></div>`, {
    id: 'run-view',
    onClose: () => {
      unsubRun();
      view.unsubHistory?.();
      Object.values(view.charts).forEach((c) => c.destroy());
    },
  });
  el.dataset.runId = runId;

  el.addEventListener('click', (e) => {
    const tab = e.target.closest('[data-tab]');
    if (tab) {
      view.tab = tab.dataset.tab;
      $$('.tab', el).forEach((t) => t.classList.toggle('active', t.dataset.tab === view.tab));
      render(true);
    }
    const action = e.target.closest('[data-action]');
    if (action && action.dataset.action !== 'view') onAction?.(action.dataset.action, runId);
    if (e.target.closest('[data-deployment-action=rollback]')) rollBack();
    if (e.target.closest('[data-batch-request]')) openBatchRequest(view.run, view.me);
  });

  const unsubRun = listenRun(runId, (run) => {
    view.run = run;
    if (run && view.historyAttempt !== run.attempt) {
      view.unsubHistory?.();
      view.historyAttempt = run.attempt;
      view.unsubHistory = listenHistory(runId, run.attempt || 1, (rows) => {
        view.history = rows;
        if (view.tab === 'training') updateCharts();
      });
    }
    render(false);
  });

  function render(tabChanged) {
    const run = view.run;
    if (!run) {
      $('[data-role=title]', el).textContent = 'This run no longer exists';
      $('[data-role=body]', el).innerHTML = '';
      return;
    }
    $('[data-role=title]', el).innerHTML = `${statusIcon(run.status)} ${esc(run.name)} <span class="muted small">#${esc(run.run_number ?? '')}</span>`;
    $('[data-role=subtitle]', el).innerHTML = `<span class="status-badge ${cssStatus(run.status)}" data-role="view-status">${esc(statusLabel(run.status))}</span>
      ${esc(run.model_type)} · attempt ${esc(run.attempt)} · ${run.progress_percent ?? 0}%`;
    const { left, right } = actionsFor(run);
    $('[data-role=actions]', el).innerHTML = [...left, ...right].filter((a) => a !== 'view')
      .map((a) => `<button data-action="${a}" class="${a === 'cancel' || a === 'delete' ? 'btn-danger' : ''}">${esc(actionLabel(a))}</button>`).join(' ');
    const body = $('[data-role=body]', el);
    if (view.tab === 'overview') body.innerHTML = overview(run, view.me);
    else if (view.tab === 'pipeline') body.innerHTML = pipeline(run);
    else if (view.tab === 'training') {
      if (tabChanged || !$('#chart-loss', body)) {
        Object.values(view.charts).forEach((c) => c.destroy());
        view.charts = {};
        body.innerHTML = trainingTab(run);
      }
      updateCharts();
      const summary = $('[data-role=epoch-summary]', body);
      if (summary) summary.textContent = epochSummary(run);
    } else if (tabChanged && view.tab === 'artifacts') loadArtifacts();
    else if (tabChanged && view.tab === 'logs') loadLogs();
  }

  function epochSummary(run) {
    return `Epoch ${run.current_epoch ?? 0} of ${run.total_epochs ?? '?'} · ${view.history.length} epoch${view.history.length === 1 ? '' : 's'} recorded`;
  }

  function trainingTab(run) {
    return trainingTabHtml(run, epochSummary(run));
  }

  function updateCharts() {
    const body = $('[data-role=body]', el);
    if (view.tab !== 'training' || !view.run || !$('#chart-loss', body)) return;
    const epochs = view.history.map((h) => h.epoch);
    const series = seriesData(view.run, view.history);
    const link = $('[data-role=tensorboard]', body);
    if (link) link.innerHTML = tensorboardLine(view.run);  // the Trainer names its experiment with its first epoch
    for (const canvas of $$('canvas[data-chart]', body)) {
      const key = canvas.dataset.chart;
      const [label, data, color] = series[key];
      let chart = view.charts[key];
      if (!chart) {
        chart = new Chart(canvas, {
          type: 'line',
          data: { labels: [], datasets: [{ label, data: [], borderColor: color, backgroundColor: color, pointRadius: 3, tension: 0.2 }] },
          options: { animation: false, maintainAspectRatio: false, responsive: true,
            scales: { x: { title: { display: true, text: 'epoch' } } }, plugins: { legend: { display: true } } },
        });
        view.charts[key] = chart;
      }
      chart.data.labels = epochs;
      chart.data.datasets[0].data = data;
      chart.update('none');
      canvas.dataset.points = String(data.length);
      canvas.dataset.epochs = epochs.join(',');
    }
    const summary = $('[data-role=epoch-summary]', body);
    if (summary) summary.textContent = epochSummary(view.run);
  }

  // POST …/rollback (deployer on the run's team; the API says why it refuses): traffic goes back to the split
  // before this run's deploy; the listener redraws the deployment section as the rollback lands.
  async function rollBack() {
    const run = view.run || {};
    if (!(await confirmDialog(`Roll back "${run.name}"? The endpoint's traffic goes back to the split it had before this deploy; the model stays deployed at 0 %.`))) return;
    try {
      toast((await post(`/api/training-runs/${runId}/rollback`)).message || 'Rollback queued');
    } catch (err) {
      toast(`rollback: ${err.message}`, 'error');
    }
  }

  async function loadArtifacts() {
    const body = $('[data-role=body]', el);
    body.innerHTML = '<div class="muted">Loading artifacts…</div>';
    try {
      const a = await get(`/api/training-runs/${runId}/artifacts`);
      const link = (uri, url) => (url ? `<a href="${esc(url)}" target="_blank" rel="noopener">${esc(uri)}</a>` : `<code>${esc(uri)}</code>`);
      const rows = Object.entries(a.artifacts || {}).map(([name, v]) => `<tr><td>${esc(name)}</td><td>${link(v.uri, v.console_url)}</td></tr>`).join('');
      body.innerHTML = `<dl class="kv"><dt>Artifacts root</dt><dd>${a.artifacts_uri ? link(a.artifacts_uri, a.console_url) : '<span class="muted">not yet written</span>'}</dd>
        <dt>Registry</dt><dd>${a.registry ? `${link(a.registry.model_resource_name, a.registry.console_url)} (version ${esc(a.registry.model_version)})${a.registry.pushed_anyway ? ' — pushed anyway' : ''}` : '<span class="muted">not registered</span>'}</dd>
        <dt>Endpoint</dt><dd>${a.endpoint ? `${esc(a.endpoint.status)} ${esc(a.endpoint.endpoint_resource_name || '')} ${a.endpoint.predict_url ? `· <code>${esc(a.endpoint.predict_url)}</code>` : ''}` : '<span class="muted">not deployed</span>'}</dd></dl>
        <table data-role="artifacts"><thead><tr><th>Artifact</th><th>Location</th></tr></thead><tbody>${rows || '<tr><td colspan="2" class="muted">none yet</td></tr>'}</tbody></table>`;
    } catch (err) {
      body.innerHTML = `<div class="general-error">Artifacts are not available: ${esc(err.message)}</div>`;
    }
  }

  function loadLogs() {
    return showLogs($('[data-role=body]', el), runId, view.logFilter);
  }
}

const splitText = (split) => Object.entries(split || {}).sort((a, b) => b[1] - a[1])
  .map(([id, pct]) => `${id} ${pct}%`).join(', ') || '—';

/** The run's deployment: status, a canary's watch (limits, last check, decision), a rollback button while
 * its model takes traffic on a shared endpoint, and the endpoint history (every traffic change: when, what,
 * who, from → to, why). Empty when the run was never deployed. */
export function deploymentSection(run, me = null) {
  const d = run.deployment;
  if (!d) return '';
  const c = d.canary;
  const check = c?.last_check;
  const limits = c ? `${c.percent}% for ${c.watch_minutes} min; rolled back above ${(c.max_error_rate * 100).toFixed(1)}% errors`
    + `${c.max_p95_latency_ms != null ? ` or p95 ${c.max_p95_latency_ms} ms` : ''} (judged over ≥ ${c.min_requests} requests)` : '';
  const canRollBack = ['canary', 'deployed'].includes(d.status) && d.endpoint_id && mayAct(me, run.team, NEEDS.rollback);
  const history = (run.endpoint_history || []).map((e) => `<tr><td>${esc(when(e.at))}</td><td>${esc(e.action)}</td><td>${esc(e.by)}</td>
    <td>${esc(splitText(e.from))} → ${esc(splitText(e.to))}</td><td>${esc(e.reason || '')}</td></tr>`).join('');
  return `<div data-role="deployment"><h3>Deployment</h3><dl class="kv">
    <dt>Status</dt><dd data-role="deployment-status">${esc(d.status)}${d.endpoint_resource_name || d.endpoint_id ? ` on ${esc(d.endpoint_resource_name || d.endpoint_id)}` : ''}
      ${canRollBack ? '<button data-deployment-action="rollback">Roll back</button>' : ''}
      ${endpointIdOf(run) ? '<button data-action="manage-endpoint">Manage Endpoint</button>' : ''}</dd>
    ${c ? `<dt>Canary</dt><dd data-role="canary">${esc(c.status || 'pending')}${c.status === 'watching' ? ` until ${esc(when(c.watch_until))}` : ''} · ${esc(limits)}</dd>` : ''}
    ${check ? `<dt>Last check</dt><dd data-role="canary-check">${esc(check.requests)} requests, ${esc(check.errors)} errors${check.p95_latency_ms != null ? `, p95 ${esc(Math.round(check.p95_latency_ms))} ms` : ''}${check.error ? ` · ${esc(check.error)}` : ''}</dd>` : ''}
    ${c?.reason ? `<dt>Decision</dt><dd>${esc(c.reason)}</dd>` : ''}
    ${d.rollback ? `<dt>Rollback</dt><dd data-role="rollback">${d.rollback.automatic ? 'automatic' : `by ${esc(d.rollback.requested_by)}`}: ${esc(d.rollback.reason)}${d.rollback.error ? ` — failed: ${esc(d.rollback.error)}` : ''}</dd>` : ''}</dl>
    <table data-role="endpoint-history"><thead><tr><th>When</th><th>Change</th><th>By</th><th>Traffic (from → to)</th><th>Why</th></tr></thead>
      <tbody>${history || '<tr><td colspan="5" class="muted">no traffic change yet</td></tr>'}</tbody></table></div>`;
}

/** Per stage: seconds, machine (+ accelerators), machine-hours and cost, from run.estimated_cost. */
function costBreakdown(run) {
  const stages = (run.estimated_cost?.stages || []).filter((s) => s.seconds);
  if (!stages.length) return '';
  const rows = stages.map((s) => `<tr><td>${esc(s.stage)}</td><td>${esc(duration(s.seconds))}</td>
    <td>${esc(s.machine_type)}${s.accelerator_count ? ` + ${esc(s.accelerator_count)} × ${esc(s.accelerator_type)}` : ''}${s.spot ? ' (Spot)' : ''}${s.dataflow_max_workers ? ` + ≤${esc(s.dataflow_max_workers)} Dataflow ${esc(s.dataflow_machine_type)}` : ''}</td>
    <td>$${esc(Number(s.cost).toFixed(4))}</td></tr>`).join('');
  return `<table data-role="cost-breakdown"><thead><tr><th>Stage</th><th>Time</th><th>Machine</th><th>Cost</th></tr></thead><tbody>${rows}
    <tr><td>Pipeline run fee</td><td></td><td></td><td>$${esc(Number(run.estimated_cost.pipeline_run_fee || 0).toFixed(2))}</td></tr></tbody></table>`;
}

/** Champion vs challenger: the champion the run was held to (which version, where it serves, its figure
 * against the run's), or why it could not be scored, and the verdict in words. */
export function championRows(run) {
  const e = run.evaluation_results || {};
  const rows = [];
  if (e.champion_value != null) {
    const metric = e.threshold_metric || gateMetric(run);
    const lower = lowerIsBetter(metric);
    const factor = lower ? 1 + e.champion_tolerance : 1 - e.champion_tolerance;
    rows.push(`<dt>Champion</dt><dd data-role="champion">v${esc(e.champion_version ?? '')} (${esc(e.champion_source || '')}): `
      + `${esc(metricLabel(metric))} ${metricValue(e.champion_value)} · this run ${metricValue(e.actual_value)} · needed `
      + `${lower ? '≤' : '≥'} ${metricValue(e.champion_required_value)} (× ${esc(Number(factor.toFixed(4)))})</dd>`);
  } else if (e.champion_error) {
    rows.push(`<dt>Champion</dt><dd data-role="champion">not scored, the threshold alone decided: ${esc(e.champion_error)}</dd>`);
  }
  if (e.reason) rows.push(`<dt>Verdict</dt><dd data-role="verdict">${esc(e.reason)}</dd>`);
  return rows.join('');
}

/** What the weights started from (a warm start): the status, the source and the embedding rows carried
 * by id; before training says, what was asked. Empty for a fresh start that nobody asked to warm. */
export function warmStartText(run) {
  const w = run.warm_start;
  if (!w || w.status === 'none') {
    const asked = run.training_params?.warm_restart;
    if (!asked?.enabled) return '';
    const s = run.warm_source || {};
    return `asked: from the ${s.source || asked.source || 'experiment'}${s.source_id ? ` ${s.source_id}` : ''}`;
  }
  let text = `${w.status} from the ${w.source || 'source'}${w.source_id ? ` ${w.source_id}` : ''}`;
  if (w.tables) text += ` · ${w.tables} embedding table(s): ${w.rows_kept} rows kept, ${w.rows_new} new, ${w.rows_dropped} dropped`;
  return w.reason ? `${text} — ${w.reason}` : text;
}

function overview(run, me) {
  const p = run.training_params || {};
  const gate = gateMetric(run);
  const base = run.base_experiment?.metrics || {};
  const metricKeys = [...new Set([...Object.keys(run.metrics || {}), ...Object.keys(base)])].filter((k) => typeof (run.metrics?.[k] ?? base[k]) === 'number');
  const rows = metricKeys.map((k) => {
    const v = run.metrics?.[k]; const b = base[k];
    const diff = typeof v === 'number' && typeof b === 'number' ? v - b : null;
    return `<tr><td>${esc(metricLabel(k))}${k === gate ? ' <span class="badge">gate</span>' : ''}</td><td>${metricValue(v)}</td><td>${metricValue(b)}</td><td>${diff == null ? '—' : `${diff >= 0 ? '+' : ''}${diff.toFixed(3)}`}</td></tr>`;
  }).join('');
  const threshold = run.evaluator_config?.blessing_threshold;
  return `${run.error_message ? `<div class="general-error">Failed at ${esc(run.error_stage)}: ${esc(run.error_message)}</div>` : ''}
    ${(run.warnings || []).map((w) => `<div class="banner" style="margin:0 0 8px">${esc(w)}</div>`).join('')}
    <div class="grid2"><div><h3>Configuration</h3><dl class="kv">
      <dt>Base experiment</dt><dd>${esc(baseText(run))}</dd><dt>Dataset</dt><dd>${esc(run.dataset?.name)}</dd>
      <dt>Feature config</dt><dd>${esc(run.feature_config?.name)}</dd><dt>Model config</dt><dd>${esc(run.model_config?.name)}</dd>
      <dt>Epochs</dt><dd>${esc(p.epochs)} · batch ${esc(p.batch_size)} · LR ${esc(p.learning_rate)} (${esc(p.lr_schedule?.type)})</dd>
      <dt>Early stopping</dt><dd>${p.early_stopping?.enabled ? `patience ${esc(p.early_stopping.patience)}` : 'off'}</dd>
      <dt>GPU</dt><dd>${esc(gpuText(run.gpu_config))} · ${esc(run.gpu_config?.machine_type || '')}</dd>
      <dt>Evaluator</dt><dd>${run.evaluator_config?.enabled ? `${threshold ? `${esc(metricLabel(threshold.metric))} ${threshold.min_value != null ? `≥ ${threshold.min_value}` : `≤ ${threshold.max_value}`}` : ''}${run.evaluator_config.min_lift_over_baseline_percent != null ? `${threshold ? ' and ' : ''}beats the baseline by ≥ ${esc(run.evaluator_config.min_lift_over_baseline_percent)}%` : ''}` : 'off'}</dd>
      ${gateSummary(run) ? `<dt>Gate</dt><dd data-role="gate-summary">${esc(gateSummary(run))}</dd>` : ''}
      ${championRows(run)}
      ${warmStartText(run) ? `<dt>Warm start</dt><dd data-role="warm-start">${esc(warmStartText(run))}</dd>` : ''}
      <dt>Deployment</dt><dd>${esc(run.deployment_config?.action)}${run.deployment_config?.endpoint_name ? ` → ${esc(run.deployment_config.endpoint_name)}` : ''}</dd>
      <dt>Created</dt><dd>${esc(when(run.created_at))} by ${esc(run.created_by)}</dd>
      ${triggerText(run) ? `<dt>Triggered by</dt><dd data-role="trigger">${esc(triggerText(run))}</dd>` : ''}
      <dt>Duration</dt><dd>${esc(duration(run.duration_seconds))}</dd>
      ${notificationsText(run) ? `<dt>Notifications</dt><dd data-role="notifications">${esc(notificationsText(run))}</dd>` : ''}
      ${costText(run) ? `<dt>Estimated cost</dt><dd data-role="cost">${esc(costText(run))} <span class="muted small">(${esc(run.estimated_cost.region)}, list prices of ${esc(run.estimated_cost.prices_as_of)}${run.estimated_cost.spot ? ', Spot' : ''})</span></dd>` : ''}</dl>
      ${costBreakdown(run)}${attemptsTable(run)}${deploymentSection(run, me)}</div>
    <div><h3>Metrics vs base experiment</h3><table data-role="metrics"><thead><tr><th>Metric</th><th>This run</th><th>Experiment</th><th>Δ</th></tr></thead>
      <tbody>${rows || '<tr><td colspan="4" class="muted">No final metrics yet</td></tr>'}</tbody></table>
      ${run.live_metrics && Object.keys(run.live_metrics).length ? `<h3>Live (epoch ${esc(run.current_epoch)})</h3><dl class="kv">${Object.entries(run.live_metrics).map(([k, v]) => `<dt>${esc(metricLabel(k))}</dt><dd>${metricValue(v)}</dd>`).join('')}</dl>` : ''}
      ${batchSection(run)}${batchRequestButton(run, me)}</div></div>`;
}

/** The run's batch predictions: status, progress and, per output, rows and where they are. */
export function batchSection(run) {
  const batch = run.batch_prediction;
  if (!batch) return '';
  const outputs = Object.entries(batch.outputs || {});
  const rows = outputs.reduce((sum, [, o]) => sum + (o.rows || 0), 0);
  const share = batch.users ? Math.min(100, Math.round((100 * rows) / (batch.users * Math.max(1, outputs.length)))) : 0;
  const lines = outputs.map(([kind, o]) => `<tr data-output="${esc(kind)}"><td>${kind === 'gcs' ? 'GCS JSONL' : 'BigQuery'}</td>
    <td>${esc(o.state || 'queued')}</td><td>${esc(o.rows || 0)}${o.failed_rows ? ` (${esc(o.failed_rows)} failed)` : ''}</td>
    <td><code>${esc(o.location || o.destination)}</code>${o.error ? ` <span class="general-error">${esc(o.error)}</span>` : ''}</td></tr>`).join('');
  return `<h3>Batch predictions</h3><div data-role="batch-predictions">
    <div class="muted">${esc(batch.status)} · top-${esc(batch.k)} for ${esc(batch.users)} users · ${share}% · ${esc(batch.machine_count)} machine(s) · by ${esc(batch.requested_by)}</div>
    ${batch.error ? `<div class="general-error">${esc(batch.error)}</div>` : ''}
    <table><thead><tr><th>Output</th><th>State</th><th>Rows</th><th>Where</th></tr></thead><tbody>${lines}</tbody></table></div>`;
}

// A run whose registered model can write batch predictions (shared/domain/batch_predictions.predictable).
const PREDICTABLE = ['completed', 'not_blessed'];

/** The "Batch predictions…" button: for a run with a registered model and its files, to a deployer on its team;
 * disabled while a batch is being written (the API would answer 409). */
export function batchRequestButton(run, me) {
  if (!PREDICTABLE.includes(run.status) || !run.vertex_model_resource_name || !run.gcs_artifacts_path) return '';
  if (!mayAct(me, run.team, NEEDS['batch-predictions'])) return '';
  const running = run.batch_prediction?.status === 'running';
  return `<button data-batch-request ${running ? 'disabled title="a batch is being written"' : ''}>📤 Batch predictions…</button>`;
}

/** User ids pasted one per line, or separated by commas or spaces; the order kept, repeats dropped. */
export function parseUserIds(text) {
  return [...new Set(String(text || '').split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean))];
}

/** POST …/batch-predictions' body (shared/domain/batch_predictions.py BatchPredictionBody) from the form:
 * every user ("all"), a file of ids (gs:// or a path, one a line), or the pasted ids; k (left out: the API's
 * 10); the outputs given. */
export function batchRequestBody(form) {
  const users = { all: () => 'all', file: () => String(form.users_file || '').trim() }[form.users];
  const body = { users: users ? users() : parseUserIds(form.ids) };
  const k = String(form.k ?? '').trim();
  if (k) body.k = /^\d+$/.test(k) ? Number(k) : k; // not a number: sent as typed, for the API to name
  if (String(form.gcs_output || '').trim()) body.gcs_output = form.gcs_output.trim();
  if (String(form.bigquery_output || '').trim()) body.bigquery_output = form.bigquery_output.trim();
  return body;
}

// The form sits in its own dialog: the run view redraws on every change of the run, which would wipe a form
// being typed in.
function openBatchRequest(run, me) {
  if (!run) return;
  const form = { users: 'ids', ids: '', users_file: '', k: '10', gcs_output: '', bigquery_output: '' };
  const { el, close } = openModal(`<div class="modal-head"><h2>Batch predictions: ${esc(run.name)}</h2><button data-close>✕</button></div>
    <div class="modal-body" data-role="batch-form"><div class="general-error" data-role="general-error"></div>
      <p class="muted small">Top-K items per user from version ${esc(run.vertex_model_version ?? '')} of ${esc(run.vertex_model_name || run.name)}, written by the model's own serving container (docs/lifecycle.md "Batch recommendations").</p>
      <div class="field"><label class="lbl">Users</label>
        <label style="display:block"><input type="radio" name="batch-users" value="all" /> Every user of the run's data</label>
        <label style="display:block"><input type="radio" name="batch-users" value="file" /> The ids in a file, one a line: <input type="text" data-batch="users_file" placeholder="gs://team-bucket/users.txt" style="width:60%" /></label>
        <label style="display:block"><input type="radio" name="batch-users" value="ids" checked /> These user ids (one per line, or separated by commas):</label>
        <textarea data-batch="ids" rows="5" style="width:100%" placeholder="c-1001&#10;c-1002"></textarea>${errorSlot('users')}</div>
      <div class="field"><label class="lbl">Items per user (k)</label><input type="number" data-batch="k" value="10" min="1" max="100" style="width:90px" />${errorSlot('k')}</div>
      <div class="field"><label class="lbl">GCS prefix (JSONL)</label><input type="text" data-batch="gcs_output" placeholder="gs://team-bucket/recs/daily/" style="width:100%" />${errorSlot('gcs_output')}</div>
      <div class="field"><label class="lbl">BigQuery dataset (a predictions table is written in it)</label><input type="text" data-batch="bigquery_output" placeholder="project.dataset" style="width:100%" />${errorSlot('bigquery_output')}</div>
      <div class="muted small">ℹ️ One or both outputs, under your team's buckets and datasets.</div>${errorSlot('body')}</div>
    <div class="modal-foot"><button data-close>Cancel</button><button class="btn-primary" data-batch-submit>Write predictions</button></div>`, { id: 'batch-request', narrow: true });
  el.addEventListener('click', async (e) => {
    if (!e.target.closest('[data-batch-submit]')) return;
    for (const input of $$('[data-batch]', el)) form[input.dataset.batch] = input.value;
    form.users = $('input[name=batch-users]:checked', el).value;
    for (const slot of $$('[data-error-for]', el)) slot.textContent = '';
    $$('.has-error', el).forEach((f) => f.classList.remove('has-error'));
    const button = e.target.closest('[data-batch-submit]');
    button.disabled = true;
    try {
      const result = await post(`/api/training-runs/${run.id}/batch-predictions`, batchRequestBody(form));
      close();
      toast(result.message || 'Batch predictions queued');
    } catch (err) {
      button.disabled = false;
      const errors = err instanceof ApiError && err.errors.length ? err.errors : [{ field: 'general', message: err.message }];
      $('[data-role=general-error]', el).textContent = placeErrors(el, errors).join(' · ');
    }
  });
}

function pipeline(run) {
  const stages = run.stage_details || stageNames().map((name) => ({ name, status: 'pending' }));
  const nodes = stages.map((s) => `<div class="dag-node ${esc(s.status)}" data-stage="${esc(s.name)}" data-stage-status="${esc(s.status)}"><div class="n">${esc(s.name)}</div>
      <div class="d">${esc(s.status)}${s.duration_seconds != null ? ` · ${esc(duration(s.duration_seconds))}` : s.duration ? ` · ${esc(s.duration)}` : ''}</div></div>`).join('<span class="dag-arrow">→</span>');
  return `<div class="dag" data-role="dag">${nodes}</div>
    <table><thead><tr><th>Stage</th><th>Status</th><th>Started</th><th>Finished</th><th>Duration</th></tr></thead><tbody>
    ${stages.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.status)}</td><td>${esc(when(s.started_at))}</td><td>${esc(when(s.completed_at))}</td><td>${esc(duration(s.duration_seconds))}</td></tr>`).join('')}</tbody></table>`;
}
