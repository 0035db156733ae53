// The run view's Logs tab: every stage's lines — its pipeline tasks, its Dataflow jobs' workers and job
// messages, the Trainer's CustomJob — in time order, each labelled with its stage; filtered by stage and
// severity on the server (GET …/logs?stage=&severity=), paged on with its next_page_token. Follow asks again every
// FOLLOW_MS from where the last page ended (its follow_token) and appends what the run wrote since, as `tail -f`.
import { get } from './api.js';
import { esc, stageNames } from './format.js';

export const SEVERITY_CHOICES = [['', 'Any severity'], ['INFO', 'Info and worse'], ['WARNING', 'Warnings and errors'], ['ERROR', 'Errors']];
export const FOLLOW_MS = 2000;
const ORIGINS = { 'dataflow-worker': 'Dataflow worker', 'dataflow-job-message': 'Dataflow job', 'trainer-job': 'Trainer job' };

export function logsPath(runId, { stage = '', severity = '' } = {}, pageToken = '', pageSize = 200) {
  const query = new URLSearchParams({ page_size: String(pageSize) });
  if (stage) query.set('stage', stage);
  if (severity) query.set('severity', severity);
  if (pageToken) query.set('page_token', pageToken);
  return `/api/training-runs/${encodeURIComponent(runId)}/logs?${query}`;
}

export function logLineHtml(entry) {
  const severity = entry.severity || 'DEFAULT';
  const origin = ORIGINS[entry.origin];
  return `<div class="log-line sev-${esc(severity.toLowerCase())}" data-stage="${esc(entry.stage || '')}">`
    + `<span class="log-time">${esc(entry.timestamp || '')}</span> <span class="log-sev">${esc(severity)}</span> `
    + `<span class="log-stage">${entry.stage ? `[${esc(entry.stage)}]` : '[—]'}</span>`
    + `${origin ? ` <span class="log-origin">${esc(origin)}</span>` : ''} <span class="log-msg">${esc(entry.message ?? '')}</span></div>`;
}

/** Where to ask next: the next page while there is more now, else (following) where this page ended. */
export function nextAsk(found) {
  return { next: found.next_page_token || '', tail: found.follow_token || '' };
}

/** Render the tab into `body`; `filter` ({stage, severity, follow}) is the view's and is kept across tab switches. */
export function showLogs(body, runId, filter) {
  const chips = ['', ...stageNames()].map((s) => `<button class="chip ${filter.stage === s ? 'active' : ''}" data-log-stage="${s}">${s || 'All stages'}</button>`).join('');
  const severities = SEVERITY_CHOICES.map(([v, label]) => `<option value="${v}" ${filter.severity === v ? 'selected' : ''}>${label}</option>`).join('');
  body.innerHTML = `<div class="log-view"><div class="chips">${chips}<select data-role="log-severity">${severities}</select>
    <label class="small"><input type="checkbox" data-role="log-follow" ${filter.follow ? 'checked' : ''} /> Follow</label></div>
    <div class="logs" data-role="logs">Loading…</div><button class="secondary" data-role="log-more" hidden>Load more</button></div>`;
  const root = body.querySelector('.log-view');
  const lines = root.querySelector('[data-role=logs]');
  const more = root.querySelector('[data-role=log-more]');
  let next = '';
  let tail = '';
  let shown = 0;

  async function page(first, from = first ? '' : next) {
    try {
      const found = await get(logsPath(runId, filter, from));
      const entries = found.entries || [];
      if (first) lines.innerHTML = entries.length ? '' : 'No log entries for this selection.';
      else if (entries.length && !shown) lines.innerHTML = '';
      shown += entries.length;
      lines.insertAdjacentHTML('beforeend', entries.map(logLineHtml).join(''));
      ({ next, tail } = nextAsk(found));
      more.hidden = !next;
      if (entries.length && !first && filter.follow) lines.lastElementChild?.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      lines.textContent = `Logs are not available: ${err.message}`;
      more.hidden = true;
    }
  }

  // Following: once every page there is now is read, ask from the tail; stop when the tab is left or redrawn.
  let asking = false;
  const timer = setInterval(async () => {
    if (!root.isConnected) { clearInterval(timer); return; }
    if (!filter.follow || asking || !(next || tail)) return;
    asking = true;
    try { await page(false, next || tail); } finally { asking = false; }
  }, FOLLOW_MS);

  root.addEventListener('click', (e) => {
    const stage = e.target.closest('[data-log-stage]');
    if (stage) showLogs(body, runId, Object.assign(filter, { stage: stage.dataset.logStage }));
    if (e.target.closest('[data-role=log-more]')) page(false);
  });
  root.querySelector('[data-role=log-follow]').addEventListener('change', (e) => { filter.follow = e.target.checked; });
  root.querySelector('[data-role=log-severity]').addEventListener('change', (e) => {
    showLogs(body, runId, Object.assign(filter, { severity: e.target.value }));
  });
  return page(true);
}
