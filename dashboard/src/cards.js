// Run cards (spec §5.1–5.2): one HTML string per run; the list is re-rendered from a listener snapshot.
import {
  actionLabel, actionsFor, ago, baseText, cssStatus, duration, epochText, esc, gateMetric, costText, gpuText, inHowLong,
  isDeployed, isDeploying, liftsText, lowerIsBetter, metricLabel, metricValue, statusIcon, statusLabel, toDate, when,
} from './format.js';
import { attemptsLine } from './attempts.js';
import { triggerBadge } from './trigger.js';
import { endpointIdOf } from './endpointview.js';
import { RETRY_MORE_MEMORY, wantsMoreGpuMemory } from './retryform.js';

const SEP = '<span class="sep">│</span>';

function line(parts) {
  return `<div class="card-line">${parts.filter(Boolean).join(SEP)}</div>`;
}

function progress(run, label) {
  const pct = Math.max(0, Math.min(100, Number(run.progress_percent) || 0));
  return `<div class="progress"><div class="progress-track"><div class="progress-fill" style="width:${pct}%"></div></div>
    <span class="progress-label" data-role="progress-label">${pct}%${label ? ` (${esc(label)})` : ''}</span></div>`;
}

function vsBase(run, metric) {
  const base = run.base_experiment?.metrics?.[metric];
  const value = run.metrics?.[metric] ?? run[metric];
  if (typeof base !== 'number' || typeof value !== 'number') return '';
  const diff = value - base;
  const better = lowerIsBetter(metric) ? diff <= 0 : diff >= 0;
  return `vs Exp: <b class="${better ? '' : 'card-warn'}">${diff >= 0 ? '+' : ''}${diff.toFixed(3)} ${better ? '↑' : '↓'}</b>`;
}

function lifts(run) {
  const text = liftsText(run);
  return text ? `<span data-role="lifts">Lift: ${esc(text)}</span>` : '';
}

/** The champion the run was held to: its figure and what the run needed ("Champion v3: 0.520 (needs ≥ 0.515)"),
 * or that it could not be scored (the threshold alone decided; the reason in the tooltip and the run view). */
export function championText(run) {
  const e = run.evaluation_results || {};
  if (e.champion_value != null) {
    const lower = lowerIsBetter(e.threshold_metric || gateMetric(run));
    return `<span data-role="champion">Champion v${esc(e.champion_version ?? '')}: ${metricValue(e.champion_value)} `
      + `(needs ${lower ? '≤' : '≥'} ${metricValue(e.champion_required_value)})</span>`;
  }
  return e.champion_error ? `<span data-role="champion" class="card-warn" title="${esc(e.champion_error)}">Champion not scored</span>` : '';
}

function cost(run) {
  const text = costText(run);
  return text ? `<span data-role="cost" title="estimated from stage durations × list prices of ${esc(run.estimated_cost.prices_as_of)}">Cost: ${esc(text)}</span>` : '';
}

/** The run's deployment (manual or after training): Deploying… / Deployed to <endpoint> / Deploy failed: <error>,
 * and a staged one's canary, rollback and its outcome (docs/lifecycle.md "Canary and rollback"). */
export function deploymentLine(run) {
  const d = run.deployment || {};
  const status = d.status || run.deployment_status || (run.is_deployed ? 'deployed' : '');
  if (!status) return '';
  const where = esc(run.endpoint_resource_name || d.endpoint_resource_name || d.endpoint_id || d.endpoint_name || '—');
  const auto = d.automatic ? ' <span class="muted small">(after training)</span>' : '';
  const c = d.canary || {};
  const rollback = d.rollback || {};
  const text = {
    deploying: `⏳ Deploying… to ${where}`,
    deployed: `🟢 Deployed to ${where}${c.status === 'promoted' ? ' (canary promoted)' : ''}`,
    canary: `🐤 Canary: ${esc(c.percent ?? '?')}% on ${where}${c.watch_until ? `, watched until ${esc(when(c.watch_until))}` : ''}`,
    rolling_back: `<span class="card-warn">⏪ Rolling back on ${where}…</span>`,
    rolled_back: `<span class="card-warn">↩️ Rolled back on ${where} ${rollback.automatic ? '(canary breached' : `(by ${esc(rollback.requested_by || '—')}`}${rollback.reason ? `: ${esc(String(rollback.reason).slice(0, 120))}` : ''})</span>`,
    undeployed: `⏏️ Undeployed from ${where}`,
    failed: `<span class="card-error">Deploy failed: ${esc(String(d.error || 'unknown error').slice(0, 160))}</span>`,
  }[status] || esc(status);
  return `<div class="card-line" data-role="deployment" data-deployment="${esc(status)}">${text}${auto}</div>`;
}

export function renderCard(run, now = new Date()) {
  const status = run.status || 'pending';
  const metric = gateMetric(run);
  const mLabel = metricLabel(metric);
  const finalValue = run.metrics?.[metric] ?? run[metric];
  const liveValue = run.live_metrics?.[metric];
  const header = `<div class="card-top"><div class="card-title"><span class="card-icon">${statusIcon(status)}</span>${esc(run.name)}
      <span class="muted small">#${esc(run.run_number ?? '')}</span></div>
    <span class="status-badge ${cssStatus(status)}" data-role="status">${esc(statusLabel(status))}${status === 'completed' && isDeployed(run) ? ' • Deployed' : ''}${isDeploying(run) ? ' • Deploying' : ''}</span></div>`;
  const basics = line([`Based on: ${esc(baseText(run))}`, `Dataset: ${esc(run.dataset?.name || '—')}`,
    `GPU: ${esc(gpuText(run.gpu_config))}`, `<span class="muted">${esc(run.model_type || '')}</span>`, triggerBadge(run)]);
  let body = '';
  switch (status) {
    case 'draft':
      body = line(['Saved as a draft: not submitted', `Created ${ago(run.created_at, now)}${run.created_by ? ` by ${esc(run.created_by)}` : ''}`]);
      break;
    case 'awaiting_approval':
      body = line([`<span class="card-warn">Awaiting a team admin's approval: ${esc(run.approval?.reason || 'above the per-run cap')}</span>`,
        run.approval?.estimate ? `Estimate: ${esc(run.approval.estimate.gpu_hours)} GPU-hours, $${esc(run.approval.estimate.usd)}` : '',
        `Created ${ago(run.created_at, now)}${run.created_by ? ` by ${esc(run.created_by)}` : ''}`]);
      break;
    case 'pending':
      body = line(['Waiting for resources…', `Created ${ago(run.created_at, now)}`]);
      break;
    case 'submitting':
      body = progress(run, 'Compile') + line(['Compiling and submitting the pipeline…', `Created ${ago(run.created_at, now)}`]);
      break;
    case 'scheduled':
      body = line([`Scheduled: ${when(run.scheduled_at)} (${inHowLong(run.scheduled_at, now)})`,
        run.schedule_id ? `Schedule: ${esc(run.schedule_id)}` : '']);
      break;
    case 'running':
    case 'cancelling':
      body = progress(run, epochText(run)) + line([
        `Stage: <b data-role="stage">${esc(run.current_stage || '—')}</b>`,
        `Started: ${ago(run.started_at || run.created_at, now)}`,
        liveValue != null ? `Current ${esc(mLabel)}: ${metricValue(liveValue)}` : '',
        run.live_metrics?.loss != null ? `Loss: ${metricValue(run.live_metrics.loss)}` : '',
        status === 'cancelling' ? '<span class="card-warn">Cancelling…</span>' : '']);
      break;
    case 'completed':
      body = line([`Duration: ${duration(run.duration_seconds)}`, `Final ${esc(mLabel)}: ${metricValue(finalValue)}`,
        vsBase(run, metric), lifts(run), championText(run), cost(run)])
        + (run.vertex_model_resource_name ? line([`Model: ${esc(run.vertex_model_name || run.name)}/${esc(run.vertex_model_version ?? '')}`]) : '')
        + deploymentLine(run);
      break;
    case 'failed':
      body = line([`Failed at: ${esc(run.error_stage || '—')}${run.current_epoch ? ` (epoch ${run.current_epoch})` : ''}`,
        `<span class="card-error">Error: ${esc(String(run.error_message || 'unknown').slice(0, 160))}</span>`, cost(run)]);
      break;
    case 'cancelled':
      body = line([`Cancelled at: ${esc(run.cancelled_at_stage || 'before start')}${run.cancelled_at_epoch ? ` (epoch ${run.cancelled_at_epoch})` : ''}`,
        `By: ${esc(run.cancelled_by || '—')}`, cost(run)]);
      break;
    case 'not_blessed': {
      const threshold = run.evaluation_results?.threshold_value ?? run.evaluator_config?.blessing_threshold?.min_value
        ?? run.evaluator_config?.blessing_threshold?.max_value;
      body = line([`Duration: ${duration(run.duration_seconds)}`, `Final ${esc(mLabel)}: ${metricValue(finalValue)}`,
        `Threshold: ${metricValue(threshold)}`, lifts(run), championText(run), cost(run)])
        + (run.vertex_model_resource_name
          ? line([`Pushed anyway: ${esc(run.vertex_model_name || run.name)}/${esc(run.vertex_model_version ?? '')}`])
          : `<div class="card-line card-warn">⚠️ Model saved but not pushed to registry (${
            esc(String(run.evaluation_results?.reason || 'below threshold').replace(/^not blessed: /, ''))})</div>`)
        + deploymentLine(run);
      break;
    }
    default: // a status the server added that this page has no words for yet
      body = line([`Status: ${esc(status)}`, run.current_stage ? `Stage: <b data-role="stage">${esc(run.current_stage)}</b>` : '',
        `Created ${ago(run.created_at, now)}`]);
  }
  const { left, right } = actionsFor(run);
  const button = (a) => `<button class="${a === 'cancel' || a === 'delete' || a === 'reject' ? 'btn-danger' : a === 'push-anyway' ? 'btn-warn' : ''}" data-action="${a}" data-run="${esc(run.id)}">${esc(a === 'retry' && wantsMoreGpuMemory(run) ? RETRY_MORE_MEMORY : actionLabel(a))}</button>`;
  // spec §5.1: a deployed card manages its endpoint (dashboard/src/endpointview.js)
  const onEndpoint = endpointIdOf(run) && ['deployed', 'canary', 'rolled_back'].includes(run.deployment?.status);
  const manage = onEndpoint ? `<button data-action="manage-endpoint" data-run="${esc(run.id)}">Manage Endpoint</button>` : '';
  const actions = `<div class="card-actions"><div>${left.map(button).join('')}</div><div>${manage}${right.map(button).join('')}</div></div>`;
  return `<article class="training-run-card ${cssStatus(status)}" data-run-id="${esc(run.id)}" data-status="${esc(status)}">${header}${basics}${body}${attemptsLine(run)}${actions}</article>`;
}

export function renderCards(runs, now = new Date()) {
  return runs.map((r) => renderCard(r, now)).join('');
}

export { toDate };
