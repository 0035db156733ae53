// "Import experiments" (the experiments chapter): the API reads an MLflow or Vertex AI Experiments experiment
// and imports every run as catalog entries through the mapping file (POST /api/experiments:import-from,
// docs/import.md). Check (a dry run) says what each run would become; Import answers per run (created,
// updated, unchanged, skipped, failed with the fields at fault). The API checks the trainer role on the team
// and reads only the tracking hosts / projects the deployment lists (a 400 naming tracking_uri or project).
import { ApiError, post } from './api.js';
import { esc } from './format.js';
import { errorSlot, placeErrors } from './fielderrors.js';
import { mayAct } from './roles.js';
import { $, $$, openModal, toast } from './ui.js';

export const SOURCES = { mlflow: 'MLflow', vertex: 'Vertex AI Experiments' };

/** The teams the caller may import into (trainer or above), from GET /api/me. */
export function importTeams(me) {
  return (me?.teams || []).filter((team) => mayAct(me, team, 'trainer'));
}

export function importStart(me) {
  return { source: 'mlflow', tracking_uri: '', project: '', location: '', experiment: '', team: importTeams(me)[0] || '', mapping: '' };
}

/** POST /api/experiments:import-from's body: only the chosen source's fields; a blank mapping is the default. */
export function importBody(form, { dryRun = false } = {}) {
  const trim = (v) => String(v ?? '').trim();
  const body = { source: form.source, experiment: trim(form.experiment) };
  if (form.source === 'mlflow') body.tracking_uri = trim(form.tracking_uri);
  else Object.assign(body, { project: trim(form.project), location: trim(form.location) });
  if (trim(form.team)) body.team = trim(form.team);
  if (trim(form.mapping)) body.mapping = form.mapping;
  if (dryRun) body.dry_run = true;
  return body;
}

/**
 * The whole import: the API answers in parts (each within one request's time limit, TRAINYARD_IMPORT_REQUEST_S)
 * with `next_after` while runs remain; ask again from there until it is null. `onPart(soFar)` after each part,
 * with the runs and counts merged so far.
 */
export async function importAll(postFn, body, onPart = () => {}) {
  let merged = null;
  let after = null;
  do {
    const answer = await postFn('/api/experiments:import-from', after ? { ...body, after } : body);
    const counts = { ...(merged?.counts || {}) };
    for (const [k, n] of Object.entries(answer.counts || {})) counts[k] = (counts[k] || 0) + n;
    merged = { ...answer, runs: [...(merged?.runs || []), ...(answer.runs || [])], counts };
    after = answer.next_after || null;
    if (after) onPart(merged);
  } while (after);
  return merged;
}

const ORDER = ['created', 'updated', 'unchanged', 'valid', 'skipped', 'failed'];

/** "2 created, 1 unchanged, 1 failed" (the answer's counts, in a fixed order); "no runs" for none. */
export function countsText(counts) {
  const keys = Object.keys(counts || {}).sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  return keys.map((k) => `${counts[k]} ${k}`).join(', ') || 'no runs';
}

/** One table row per source run; a failed run lists its fields at fault under it. */
export function resultRows(runs) {
  return (runs || []).map((r) => {
    const kind = String(r.result || '').split(' ')[0];
    const problems = r.errors?.length ? r.errors.map((e) => `${e.field}: ${e.message}`) : r.error ? [r.error] : [];
    return `<tr data-run-id="${esc(r.run_id)}" data-result="${esc(kind)}"><td><code>${esc(r.run_id)}</code></td><td>${esc(r.run_name || '')}</td>
      <td><span class="chip result-${esc(kind)}">${esc(r.result || '')}</span>${problems.map((p) => `<div class="field-error small" data-role="run-error">${esc(p)}</div>`).join('')}</td>
      <td>${r.experiment_id ? `<code>${esc(r.experiment_id)}</code>` : '—'}</td></tr>`;
  }).join('');
}

export function openImportDialog({ me, onImported = () => {} } = {}) {
  const form = importStart(me);
  const teams = importTeams(me);
  const { el, close } = openModal(`<div class="modal-head"><h2>Import experiments</h2><button data-close>✕</button></div>
    <div class="modal-body"><div class="muted small">Every run of a tracked experiment becomes a dataset, feature config, model config and experiment
      through the mapping file (docs/import.md). Re-importing changes nothing; a run changed at the source is updated.</div>
      <div class="general-error" data-role="general-error"></div><div data-role="import-form"></div>
      <div data-role="import-results"></div></div>
    <div class="modal-foot"><button data-close>Close</button><button data-import-check>Check</button><button class="btn-primary" data-import-submit>Import</button></div>`,
  { id: 'import-dialog' });
  const body = $('[data-role=import-form]', el);

  function render() {
    const mlflow = form.source === 'mlflow';
    const input = (field, label, placeholder) => `<div class="field"><label>${label}
        <input type="text" data-bind="${field}" value="${esc(form[field])}" placeholder="${esc(placeholder)}" /></label>${errorSlot(field)}</div>`;
    body.innerHTML = `<div class="field"><label>Source <select data-bind="source">${Object.entries(SOURCES).map(([v, label]) => `<option value="${v}" ${v === form.source ? 'selected' : ''}>${label}</option>`).join('')}</select></label>${errorSlot('source')}</div>
      ${mlflow ? input('tracking_uri', 'Tracking URI', 'http://mlflow.internal:5000')
        : `${input('project', 'Project', 'your-project')}${input('location', 'Location', 'europe-west4')}`}
      ${input('experiment', 'Experiment', 'recs-quick-tests')}
      <div class="field"><label>Team <select data-bind="team">${teams.map((t) => `<option value="${esc(t)}" ${t === form.team ? 'selected' : ''}>${esc(t)}</option>`).join('')
        || '<option value="">(none where you are trainer)</option>'}</select></label>${errorSlot('team')}</div>
      <div class="field"><label>Mapping <span class="muted small">(optional: a mapping file's YAML; empty: the default ${esc(form.source)} mapping)</span>
        <textarea data-bind="mapping" rows="5" spellcheck="false">${esc(form.mapping)}</textarea></label>${errorSlot('mapping')}</div>${errorSlot('body')}`;
  }

  function collect() {
    for (const field of $$('[data-bind]', body)) form[field.dataset.bind] = field.value;
  }

  function show(answer) {
    const verb = answer.dry_run ? 'Checked' : 'Imported';
    $('[data-role=import-results]', el).innerHTML = `<h3 data-role="import-counts">${verb} ${esc(SOURCES[answer.source] || answer.source)} experiment “${esc(answer.experiment)}”: ${esc(countsText(answer.counts))}</h3>
      <div class="table-scroll"><table><thead><tr><th>Run</th><th>Name</th><th>Result</th><th>Experiment</th></tr></thead><tbody>${resultRows(answer.runs)}</tbody></table></div>`;
  }

  el.addEventListener('change', (e) => {
    if (e.target.dataset.bind !== 'source') return;
    collect();
    render();
  });
  el.addEventListener('click', async (e) => {
    const button = e.target.closest('[data-import-submit], [data-import-check]');
    if (!button) return;
    collect();
    render(); // clears the last answer's errors
    $('[data-role=general-error]', el).textContent = '';
    $('[data-role=import-results]', el).innerHTML = '<div class="muted" data-role="import-reading">Reading the source…</div>';
    const dryRun = button.matches('[data-import-check]');
    $$('[data-import-submit], [data-import-check]', el).forEach((b) => { b.disabled = true; });
    try {
      const answer = await importAll(post, importBody(form, { dryRun }), (soFar) => {
        $('[data-role=import-results]', el).innerHTML = `<div class="muted" data-role="import-reading">${dryRun ? 'Checked' : 'Imported'} ${soFar.runs.length} runs so far (${esc(countsText(soFar.counts))}); going on…</div>`;
      });
      show(answer);
      if (!dryRun) {
        toast(`Imported: ${countsText(answer.counts)}`);
        onImported(answer);
      }
    } catch (err) {
      $('[data-role=import-results]', el).innerHTML = '';
      const errors = err instanceof ApiError && err.errors.length ? err.errors : [{ field: 'general', message: err.message }];
      $('[data-role=general-error]', el).textContent = placeErrors(el, errors).join(' · ');
    } finally {
      $$('[data-import-submit], [data-import-check]', el).forEach((b) => { b.disabled = false; });
    }
  });
  render();
  return { el, close, form };
}
