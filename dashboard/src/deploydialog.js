// Deploy a registered model by hand (POST /api/training-runs/{id}/deploy): to a new endpoint, or to an existing
// one with a share of its traffic at once or staged as a canary (docs/lifecycle.md "Canary and rollback").
// It starts from the run's deployment_config; the API checks the target and the role (deployer).
import { ApiError, post } from './api.js';
import { canaryBody, canaryFields, canaryStart, canaryText } from './canary.js';
import { esc } from './format.js';
import { errorSlot, placeErrors } from './fielderrors.js';
import { $, $$, openModal, toast } from './ui.js';
import { endpointPicker, listEndpoints } from './endpointview.js';

/** The dialog's starting point: where the run's deployment_config sends it, staged as it says. */
export function deployStart(run) {
  const c = run.deployment_config || {};
  const existing = c.action === 'deploy_existing';
  return { target: existing ? 'existing' : 'new', endpoint_id: existing ? c.existing_endpoint_id || '' : '',
    endpoint_name: c.action === 'deploy_new' ? c.endpoint_name || '' : '', traffic_split: existing ? c.traffic_split ?? 10 : 100,
    canary: canaryStart(existing ? c.canary : null) };
}

/** POST …/deploy's body (shared/services/actions/deploy.py DeployBody). A canary takes its percent of the
 * traffic, so a staged deploy sends no traffic_split; a new endpoint serves only this model. */
export function deployBody(form) {
  if (form.target === 'new') return String(form.endpoint_name || '').trim() ? { endpoint_name: form.endpoint_name.trim() } : {};
  const canary = canaryBody(form.canary);
  const share = String(form.traffic_split ?? '').trim();
  return { endpoint_id: String(form.endpoint_id || '').trim(), ...(canary ? { canary } : share ? { traffic_split: Number(share) } : {}) };
}

/** In words, for the dialog's last line. */
export function deployText(form, runName) {
  if (form.target === 'new') return `a new endpoint "${String(form.endpoint_name || '').trim() || runName}" serving only this model`;
  const canary = canaryBody(form.canary);
  return `endpoint ${String(form.endpoint_id || '').trim() || '…'}: ${canary ? canaryText(canary) : `${form.traffic_split || '?'}% of the traffic at once`}`;
}

function setPath(obj, path, value) {
  const keys = path.split('.');
  let at = obj;
  for (const k of keys.slice(0, -1)) at = at[k];
  at[keys.at(-1)] = value;
}

export function openDeployDialog(run) {
  const form = deployStart(run);
  const { el, close } = openModal(`<div class="modal-head"><h2>Deploy ${esc(run.vertex_model_name || run.name)} v${esc(run.vertex_model_version ?? '')}</h2><button data-close>✕</button></div>
    <div class="modal-body"><div class="general-error" data-role="general-error"></div><div data-role="deploy-form"></div></div>
    <div class="modal-foot"><button data-close>Cancel</button><button class="btn-primary" data-deploy-submit>Deploy</button></div>`, { id: 'deploy-dialog', narrow: true });
  const body = $('[data-role=deploy-form]', el);
  // the existing endpoint's picker over your endpoints (none, or unreadable: type the id)
  let endpoints = [];
  listEndpoints().then((list) => { endpoints = list; collect(); render(); }).catch(() => {});

  function render() {
    const existing = form.target === 'existing';
    body.innerHTML = `<div class="field"><label style="display:block"><input type="radio" name="deploy-target" value="new" data-bind="target" ${existing ? '' : 'checked'} /> A new endpoint:
        <input type="text" data-bind="endpoint_name" value="${esc(form.endpoint_name)}" placeholder="${esc(run.name)}" /></label>${errorSlot('endpoint_name')}
      <label style="display:block"><input type="radio" name="deploy-target" value="existing" data-bind="target" ${existing ? 'checked' : ''} /> An existing endpoint:
        ${endpointPicker(endpoints, form.endpoint_id, 'endpoint_id')}
        ${existing && !form.canary.enabled ? `traffic <input type="number" data-bind="traffic_split" value="${esc(form.traffic_split)}" min="1" max="100" style="width:70px" />%` : ''}</label>
      ${errorSlot('endpoint_id')}${errorSlot('traffic_split')}
      ${existing ? canaryFields(form.canary, { bind: 'canary', errors: 'canary' }) : ''}${errorSlot('body')}</div>
      <div class="muted small" data-role="deploy-summary">Deploys to ${esc(deployText(form, run.name))}.</div>`;
  }

  function collect() {
    for (const input of $$('[data-bind]', body)) {
      if (input.type === 'radio' && !input.checked) continue;
      setPath(form, input.dataset.bind, input.type === 'checkbox' ? input.checked : input.value);
    }
  }

  el.addEventListener('change', (e) => {
    if (!e.target.dataset.bind) return;
    collect();
    render();
  });
  el.addEventListener('click', async (e) => {
    const submit = e.target.closest('[data-deploy-submit]');
    if (!submit) return;
    collect();
    render(); // clears the last answer's errors
    submit.disabled = true;
    try {
      toast((await post(`/api/training-runs/${run.id}/deploy`, deployBody(form))).message || 'Deployment queued');
      close();
    } catch (err) {
      submit.disabled = false;
      const errors = err instanceof ApiError && err.errors.length ? err.errors : [{ field: 'general', message: err.message }];
      $('[data-role=general-error]', el).textContent = placeErrors(el, errors).join(' · ');
    }
  });
  render();
  return { el, close, form };
}
