// Endpoints (spec §5.1 "Manage Endpoint", docs/lifecycle.md "Endpoints"): the list of the caller's teams'
// endpoints, and one endpoint's deployed models, traffic split, the run each came from, its canary and its
// history; change the split (shares that must add up to 100), undeploy a model, roll a run's deploy back.
// The API checks the role (deployer on the team of a run deployed there); a change is queued and carried out
// by run-commands, so the view reloads the endpoint a moment later. On an endpoint shared with another team, that
// team's model is shown as "a model of another team" (the API names no run, id or creator), its share fixed here:
// only its own team's deployers may move or undeploy it.
import { ApiError, get, post } from './api.js';
import { esc, when } from './format.js';
import { mayAct } from './roles.js';
import { $, $$, confirmDialog, openModal, toast } from './ui.js';

/** Every endpoint the caller may see (GET /api/endpoints, following next_page_token). */
export async function listEndpoints(fetchPage = get) {
  const found = [];
  let token = null;
  do {
    const page = await fetchPage(`/api/endpoints?page_size=200${token ? `&page_token=${encodeURIComponent(token)}` : ''}`);
    found.push(...(page.endpoints || []));
    token = page.next_page_token;
  } while (token);
  return found;
}

/** The endpoint a run's deployment is on (its id: the last segment of the resource name), or null. */
export function endpointIdOf(run) {
  const d = run?.deployment || {};
  const name = d.endpoint_resource_name || run?.endpoint_resource_name || d.endpoint_id;
  return name ? String(name).split('/').pop() : null;
}

/** The models' shares as the form starts: what the endpoint routes now. */
export function trafficForm(endpoint) {
  return Object.fromEntries((endpoint.deployed_models || []).map((m) => [m.id, Number(m.traffic_percent) || 0]));
}

/** POST …/traffic's body, or why it cannot be sent yet (the shares must be whole percents adding up to 100). */
export function trafficBody(form, reason = '') {
  const split = Object.fromEntries(Object.entries(form).map(([id, v]) => [id, Number(v)]));
  const bad = Object.entries(split).find(([, v]) => !Number.isInteger(v) || v < 0 || v > 100);
  if (bad) return { error: `${bad[0]}: a whole percent from 0 to 100` };
  const total = Object.values(split).reduce((a, b) => a + b, 0);
  if (total !== 100) return { error: `the shares add up to ${total}%, not 100%` };
  return { body: { traffic_split: split, ...(String(reason).trim() ? { reason: String(reason).trim() } : {}) } };
}

/** Whether undeploying `modelId` leaves the endpoint serving nothing (the API then needs force: true). */
export function lastWithTraffic(endpoint, modelId) {
  const models = endpoint.deployed_models || [];
  const mine = models.find((m) => m.id === modelId);
  return Boolean(mine?.traffic_percent) && !models.some((m) => m.id !== modelId && m.traffic_percent > 0);
}

function split(s) {
  return Object.entries(s || {}).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}%`).join(', ') || '—';
}

const OTHER_TEAM = 'a model of another team';

const ACTIONS = { deployed: 'Deployed', canary_started: 'Canary started', promoted: 'Canary promoted', rolled_back: 'Rolled back',
  traffic_changed: 'Traffic changed', undeployed: 'Undeployed' };

/** The endpoint's history, newest first: one line per deploy, canary, promotion, rollback, traffic change, undeploy. */
export function historyRows(endpoint) {
  return [...(endpoint.history || [])].reverse().map((h) => ({ at: h.at, action: ACTIONS[h.action] || h.action,
    by: h.of_another_team ? '—' : h.by, run: h.of_another_team ? OTHER_TEAM : h.run_name || h.run_id, change: `${split(h.from)} → ${split(h.to)}`, reason: h.reason || '' }));
}

/** May `me` change this endpoint: deployer on the team of one of its runs. */
export function mayChange(me, endpoint) {
  const teams = endpoint.teams || [];
  return teams.length ? teams.some((t) => mayAct(me, t, 'deployer')) : Boolean(me?.platform_admin ?? true);
}

/** The wizard's choice of an existing endpoint: the id field, with the caller's endpoints to pick from as you type
 * or click (a datalist: the id can still be typed when there are none, or the list could not be read). */
export function endpointPicker(endpoints, value, bind) {
  const option = (e) => `<option value="${esc(e.id)}">${esc(e.display_name || e.id)}: ${esc(
    (e.deployed_models || []).map((m) => `${m.run?.name || m.display_name || m.id} ${m.traffic_percent}%`).join(', ') || 'no models')}</option>`;
  const list = endpoints?.length ? `<datalist id="endpoint-choices">${endpoints.map(option).join('')}</datalist>` : '';
  return `<input type="text" data-bind="${esc(bind)}" value="${esc(value || '')}" placeholder="${list ? 'pick or type an endpoint id' : 'endpoint id'}" data-role="endpoint-picker"${list ? ' list="endpoint-choices"' : ''} />${list}`;
}

export function renderEndpoint(endpoint, form, me) {
  const canChange = mayChange(me, endpoint);
  const total = Object.values(form).reduce((a, b) => a + (Number(b) || 0), 0);
  const rows = (endpoint.deployed_models || []).map((m) => {
    const run = m.run;
    const theirs = Boolean(run?.of_another_team);
    const rollback = run && !theirs && ['deployed', 'canary'].includes(run.deployment_status);
    if (theirs) {
      return `<tr data-model="${esc(m.id)}" data-other-team><td>${esc(m.display_name || m.id)}<div class="muted small">${esc(m.id)}</div></td>
      <td><span class="muted" data-role="other-team">${OTHER_TEAM}</span></td><td>${m.traffic_percent}%</td>
      <td>${canChange ? `${esc(form[m.id])}% <span class="muted small" title="only its team's deployers may move its traffic">its team's to change</span>` : ''}</td><td></td></tr>`;
    }
    return `<tr data-model="${esc(m.id)}"><td>${esc(m.display_name || m.id)}<div class="muted small">${esc(m.id)}</div></td>
      <td>${run ? `${esc(run.name)} <span class="muted small">v${esc(run.model_version ?? m.model_version_id)} · ${esc(run.id)}</span>` : `<span class="muted">not from a Trainyard run</span> v${esc(m.model_version_id)}`}</td>
      <td>${m.traffic_percent}%</td>
      <td>${canChange ? `<input type="range" min="0" max="100" value="${esc(form[m.id])}" data-share="${esc(m.id)}" aria-label="share of ${esc(m.id)}" />
        <input type="number" min="0" max="100" value="${esc(form[m.id])}" data-share="${esc(m.id)}" style="width:64px" />%` : ''}</td>
      <td>${canChange ? `<button class="btn-danger" data-undeploy="${esc(m.id)}">Undeploy</button>` : ''}
        ${canChange && rollback ? `<button class="btn-warn" data-rollback="${esc(run.id)}" title="the split before ${esc(run.name)}'s deploy">Roll back</button>` : ''}</td></tr>`;
  }).join('');
  const c = endpoint.canary;
  const busy = (endpoint.under_way || []).length;
  const history = historyRows(endpoint).map((h) => `<tr><td>${esc(when(h.at))}</td><td>${esc(h.action)}</td><td>${esc(h.by)}</td>
    <td>${esc(h.run)}</td><td>${esc(h.change)}</td><td>${esc(h.reason)}</td></tr>`).join('');
  return `<div class="muted small">${esc(endpoint.resource_name)} · teams: ${esc((endpoint.teams || []).join(', ') || '—')}${endpoint.created_at ? ` · created ${esc(when(endpoint.created_at))}` : ''}</div>
    ${c ? `<div class="card-line" data-role="canary">🐤 Canary: ${esc(c.of_another_team ? OTHER_TEAM : c.run_name || c.run_id)} at ${esc(c.percent ?? '?')}%, ${esc(c.status || '')}${c.watch_until ? ` until ${esc(when(c.watch_until))}` : ''}</div>` : ''}
    ${busy ? `<div class="card-warn" data-role="busy">A deploy, canary or rollback is at work here: changes wait for it.</div>` : ''}
    <h3>Deployed models</h3>
    <table class="table" data-role="models"><thead><tr><th>Model</th><th>Run</th><th>Now</th><th>New share</th><th></th></tr></thead><tbody>${rows || '<tr><td colspan="5" class="muted">no models deployed</td></tr>'}</tbody></table>
    ${canChange && rows ? `<div class="inline"><span data-role="traffic-total" class="${total === 100 ? '' : 'card-error'}">Total: ${total}%</span>
      <input type="text" data-role="traffic-reason" placeholder="why (kept in the history)" />
      <button class="btn-primary" data-traffic-apply ${total === 100 ? '' : 'disabled'}>Apply traffic split</button></div>` : ''}
    <div class="general-error" data-role="general-error"></div>
    <h3>History</h3>
    <table class="table" data-role="history"><thead><tr><th>When</th><th>Change</th><th>By</th><th>Run</th><th>From → to</th><th>Why</th></tr></thead>
      <tbody>${history || '<tr><td colspan="6" class="muted">nothing recorded</td></tr>'}</tbody></table>`;
}

export function openEndpointView(endpointId, { me = null } = {}) {
  const view = { endpoint: null, form: {} };
  const { el, close } = openModal(`<div class="modal-head"><div><h2 data-role="title">Endpoint ${esc(endpointId)}</h2></div>
      <button data-endpoint-reload title="read it again">↻</button><button data-close>✕</button></div>
    <div class="modal-body" data-role="body">Loading…</div>`, { id: 'endpoint-view' });
  el.dataset.endpointId = endpointId;
  const body = () => $('[data-role=body]', el);
  const fail = (err) => { $('[data-role=general-error]', el).textContent = err instanceof ApiError ? err.message : String(err); };

  async function load() {
    try {
      view.endpoint = (await get(`/api/endpoints/${encodeURIComponent(endpointId)}`)).endpoint;
      view.form = trafficForm(view.endpoint);
      $('[data-role=title]', el).textContent = `Endpoint ${view.endpoint.display_name || endpointId}`;
      render();
    } catch (err) {
      body().innerHTML = `<div class="card-error">${esc(err.message)}</div>`;
    }
  }

  function render() {
    body().innerHTML = renderEndpoint(view.endpoint, view.form, me);
  }

  const later = () => setTimeout(load, 1500); // run-commands carries the change out; read the endpoint again

  el.addEventListener('input', (e) => {
    const share = e.target.dataset.share;
    if (!share) return;
    view.form[share] = Number(e.target.value);
    for (const input of $$(`[data-share="${CSS.escape(share)}"]`, el)) if (input !== e.target) input.value = e.target.value;
    const total = Object.values(view.form).reduce((a, b) => a + (Number(b) || 0), 0);
    const shown = $('[data-role=traffic-total]', el);
    shown.textContent = `Total: ${total}%`;
    shown.classList.toggle('card-error', total !== 100);
    $('[data-traffic-apply]', el).disabled = total !== 100;
  });
  el.addEventListener('click', async (e) => {
    try {
      if (e.target.closest('[data-endpoint-reload]')) return load();
      if (e.target.closest('[data-traffic-apply]')) {
        const { body: sent, error } = trafficBody(view.form, $('[data-role=traffic-reason]', el)?.value);
        if (error) return fail(error);
        toast((await post(`/api/endpoints/${encodeURIComponent(endpointId)}/traffic`, sent)).message);
        return later();
      }
      const undeploy = e.target.closest('[data-undeploy]');
      if (undeploy) {
        const model = undeploy.dataset.undeploy;
        const force = lastWithTraffic(view.endpoint, model);
        const asked = force ? `${model} holds all the traffic: undeploying it leaves the endpoint serving nothing. Undeploy anyway?`
          : `Undeploy ${model}? Its traffic goes to the other models.`;
        if (!(await confirmDialog(asked))) return undefined;
        toast((await post(`/api/endpoints/${encodeURIComponent(endpointId)}/undeploy`, { deployed_model_id: model, force })).message);
        return later();
      }
      const rollback = e.target.closest('[data-rollback]');
      if (rollback && await confirmDialog('Send the traffic back to the split before this run was deployed?')) {
        toast((await post(`/api/training-runs/${encodeURIComponent(rollback.dataset.rollback)}/rollback`, {})).message || 'Rolling back');
        return later();
      }
    } catch (err) {
      fail(err);
    }
    return undefined;
  });
  load();
  return { el, close, view };
}

/** The list of endpoints, each with its models and a Manage button. */
export function renderEndpointList(endpoints) {
  if (!endpoints.length) return '<div class="muted">No endpoints yet: deploy a completed run.</div>';
  return `<table class="table" data-role="endpoint-list"><thead><tr><th>Endpoint</th><th>Models (share, run)</th><th>Teams</th><th></th></tr></thead><tbody>${endpoints.map((e) => `<tr data-endpoint="${esc(e.id)}">
    <td>${esc(e.display_name || e.id)}<div class="muted small">${esc(e.id)}</div></td>
    <td>${(e.deployed_models || []).map((m) => `${esc(m.run?.name || m.display_name || m.id)} ${m.traffic_percent}%`).join(', ') || '—'}${e.canary ? ' 🐤' : ''}</td>
    <td>${esc((e.teams || []).join(', ') || '—')}</td><td><button data-manage-endpoint="${esc(e.id)}">Manage</button></td></tr>`).join('')}</tbody></table>`;
}

export function openEndpointList({ me = null } = {}) {
  const { el, close } = openModal(`<div class="modal-head"><h2>Endpoints</h2><button data-close>✕</button></div>
    <div class="modal-body" data-role="body">Loading…</div>`, { id: 'endpoint-list' });
  listEndpoints().then((list) => { $('[data-role=body]', el).innerHTML = renderEndpointList(list); })
    .catch((err) => { $('[data-role=body]', el).innerHTML = `<div class="card-error">${esc(err.message)}</div>`; });
  el.addEventListener('click', (e) => {
    const manage = e.target.closest('[data-manage-endpoint]');
    if (manage) openEndpointView(manage.dataset.manageEndpoint, { me });
  });
  return { el, close };
}
