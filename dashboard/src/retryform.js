// Retry with changes (docs/run-actions.md): a failed or cancelled run's Retry opens this form — GPU type and count,
// machines, Spot or on-demand, epochs, batch size — pre-filled from the run. When the run ran out of memory in the
// Trainer (its root cause, read by the server's failure_kinds vocabulary) it suggests "More GPU memory": the next
// GPU type up by memory, else more GPUs (the global batch splits across them), else half the batch. The GPU
// pre-flight answers beside it for the shape shown. It posts POST /api/training-runs/{id}/retry, which checks the
// role (trainer) and names any field it refuses.
import { ApiError, post } from './api.js';
import { GPU_LABEL, esc, failureKinds, gpuMachines, gpuText, gpuTypes, maxMachines } from './format.js';
import { errorSlot, placeErrors } from './fielderrors.js';
import { checkShape, shapeKey } from './gpupreflight.js';
import { $, $$, openModal, toast } from './ui.js';

const OUT_OF_MEMORY = 'out_of_memory';
export const RETRY_MORE_MEMORY = 'Retry with more GPU memory'; // the failed card's button then (spec §5.1)
const GPU_FIELDS = ['gpu_type', 'gpu_count', 'machine_count', 'preemptible'];
const PARAM_FIELDS = ['epochs', 'batch_size'];

const matches = (patterns, text) => (patterns || []).some((p) => new RegExp(p, 'i').test(text));

/** Whether a root cause says the run ran out of memory: any of the kind's patterns, or a bare "resource
 * exhausted" that names no quota or capacity (shared/domain/failure_kinds.py out_of_memory). */
export function outOfMemory(text) {
  const kind = failureKinds()[OUT_OF_MEMORY];
  if (!text || !kind) return false;
  return matches(kind.patterns, text) || (matches(kind.exhausted, text) && !matches(kind.unless, text));
}

/** Out of memory where the run's GPUs are (the Trainer, or a stage not recorded): the form's preset applies. */
export function wantsMoreGpuMemory(run) {
  const stages = failureKinds()[OUT_OF_MEMORY]?.gpu_stages || [];
  return run?.status === 'failed' && outOfMemory(run.error_message) && stages.includes(run.error_stage || stages[0]);
}

/** The form's fields from the run as it last ran. */
export function formStart(run) {
  const g = run.gpu_config || {};
  const p = run.training_params || {};
  return { gpu_type: g.gpu_type, gpu_count: Number(g.gpu_count), machine_count: Number(g.machine_count || 1),
    preemptible: g.preemptible !== false, epochs: p.epochs, batch_size: p.batch_size };
}

const memoryOf = (type) => gpuTypes().find((g) => g.name === type)?.memory_gb || 0;
const countsOf = (type) => gpuTypes().find((g) => g.name === type)?.counts || [];

/** The count of `type` nearest `count` from above (what the old shape had, at least), else its largest. */
function fittingCount(type, count) {
  const counts = countsOf(type);
  return counts.find((n) => n >= count) ?? counts.at(-1) ?? count;
}

/** "More GPU memory" from `form`: {form, says}, or null when nothing gives more (8 of the largest, batch 1). */
export function moreGpuMemory(form) {
  const have = memoryOf(form.gpu_type);
  const bigger = gpuTypes().filter((g) => (g.memory_gb || 0) > have)
    .sort((a, b) => a.memory_gb - b.memory_gb)[0];
  if (bigger) {
    const count = fittingCount(bigger.name, form.gpu_count);
    return { form: { ...form, gpu_type: bigger.name, gpu_count: count },
      says: `${GPU_LABEL[bigger.name] || bigger.name} (${bigger.memory_gb} GB each, was ${have} GB) × ${count}` };
  }
  const more = countsOf(form.gpu_type).find((n) => n > form.gpu_count);
  if (more) {
    return { form: { ...form, gpu_count: more },
      says: `${more} GPUs instead of ${form.gpu_count}: the batch splits across them` };
  }
  const batch = Math.floor(Number(form.batch_size) / 2);
  if (batch >= 1) return { form: { ...form, batch_size: batch }, says: `batch size ${batch} (half of ${form.batch_size}): no GPU holds more` };
  return null;
}

const number = (v) => (v === '' || v == null || Number.isNaN(Number(v)) ? v : Number(v));

/** POST …/retry's body: every field of the form (the server records only what changed, and names a bad one). */
export function retryBody(form) {
  return {
    gpu_config: { gpu_type: form.gpu_type, gpu_count: number(form.gpu_count), machine_count: number(form.machine_count),
      preemptible: Boolean(form.preemptible) },
    training_params: { epochs: number(form.epochs), batch_size: number(form.batch_size) },
  };
}

/** The fields the form changes from `start`, in words: ["GPU: 2x A100 (was 2x L4 (Spot))", "epochs: 40 (was 150)"]. */
export function changesText(form, start) {
  const out = [];
  if (GPU_FIELDS.some((k) => String(form[k]) !== String(start[k]))) out.push(`GPU: ${gpuText(form)} (was ${gpuText(start)})`);
  for (const k of PARAM_FIELDS) if (String(form[k]) !== String(start[k])) out.push(`${k.replace('_', ' ')}: ${form[k]} (was ${start[k]})`);
  return out;
}

/** The shape the pre-flight is asked about: the form's, as numbers. */
const shapeOf = (form) => ({ gpu_type: form.gpu_type, gpu_count: Number(form.gpu_count), machine_count: Number(form.machine_count),
  preemptible: Boolean(form.preemptible) });

export function openRetryForm(run, { onRetried } = {}) {
  const start = formStart(run);
  const preset = wantsMoreGpuMemory(run) ? moreGpuMemory(start) : null;
  let form = { ...start };
  const answers = {};
  const { el, close } = openModal(`<div class="modal-head"><h2>Retry ${esc(run.name)}</h2><button data-close aria-label="Close">✕</button></div>
    <div class="modal-body"><div class="general-error" data-role="general-error"></div><div data-role="retry-form"></div></div>
    <div class="modal-foot"><button data-close>Cancel</button><button class="btn-primary" data-retry-submit>Retry</button></div>`, { id: 'retry-form', narrow: true });
  const body = $('[data-role=retry-form]', el);

  // The server keeps the run's machine for the same GPUs and gives new GPUs their default one (retry.py).
  const machineFor = (f) => (f.gpu_type === start.gpu_type && Number(f.gpu_count) === start.gpu_count && run.gpu_config?.machine_type
    ? run.gpu_config.machine_type : gpuMachines(f.gpu_type, f.gpu_count).default || '—');

  // The fields, drawn again when the GPU type changes (its counts) or a preset is applied; typing only refreshes
  // what follows from them, so the form does not move under the pointer on its way to Retry.
  function render() {
    const counts = countsOf(form.gpu_type);
    body.innerHTML = `${run.error_message ? `<div class="muted small" data-role="root-cause">${esc(run.error_stage ? `${run.error_stage}: ` : '')}${esc(run.error_message)}</div>` : ''}
      ${preset ? `<div class="banner" data-role="preset">Out of memory — suggested: <b>More GPU memory</b>, ${esc(preset.says)}.
        <button data-preset="more-gpu-memory">Use it</button></div>` : ''}
      <div class="grid2">
        <div class="field"><label class="lbl" for="retry-gpu-type">GPU type</label><select id="retry-gpu-type" data-bind="gpu_type">${gpuTypes().map((g) => `<option value="${esc(g.name)}" ${g.name === form.gpu_type ? 'selected' : ''}>${esc(GPU_LABEL[g.name] || g.name)}${g.memory_gb ? ` (${g.memory_gb} GB each)` : ''}</option>`).join('')}</select>${errorSlot('gpu_config.gpu_type')}</div>
        <div class="field"><label class="lbl" for="retry-gpu-count">GPUs per machine</label><select id="retry-gpu-count" data-bind="gpu_count">${counts.map((n) => `<option value="${n}" ${n === Number(form.gpu_count) ? 'selected' : ''}>${n}</option>`).join('')}</select>${errorSlot('gpu_config.gpu_count')}</div>
        <div class="field"><label class="lbl" for="retry-machines">Machines</label><select id="retry-machines" data-bind="machine_count">${Array.from({ length: maxMachines() }, (_, i) => i + 1).map((n) => `<option value="${n}" ${n === Number(form.machine_count) ? 'selected' : ''}>${n}</option>`).join('')}</select>${errorSlot('gpu_config.machine_count')}</div>
        <div class="field"><label class="lbl">&nbsp;</label><label><input type="checkbox" data-bind="preemptible" ${form.preemptible ? 'checked' : ''} /> Spot (preemptible) VMs</label>${errorSlot('gpu_config.preemptible')}</div>
        <div class="field"><label class="lbl" for="retry-epochs">Epochs</label><input type="number" id="retry-epochs" data-bind="epochs" value="${esc(form.epochs)}" min="1" />${errorSlot('training_params.epochs')}</div>
        <div class="field"><label class="lbl" for="retry-batch">Batch size</label><input type="number" id="retry-batch" data-bind="batch_size" value="${esc(form.batch_size)}" min="1" />${errorSlot('training_params.batch_size')}</div>
      </div>${errorSlot('gpu_config')}${errorSlot('training_params')}
      <div class="muted small" data-role="machine"></div>
      <div class="muted small" data-role="gpu-availability"></div>
      <div class="small" data-role="retry-changes"></div>`;
    refresh();
  }

  function refresh() {
    const changes = changesText(form, start);
    const applied = preset && GPU_FIELDS.concat(PARAM_FIELDS).every((k) => String(form[k]) === String(preset.form[k]));
    const button = $('[data-preset]', body);
    if (button) {
      button.disabled = applied;
      button.textContent = applied ? 'Applied' : 'Use it';
    }
    $('[data-role=machine]', body).textContent = `Machine: ${machineFor(form)}`;
    $('[data-role=gpu-availability]', body).textContent = answers[shapeKey(shapeOf(form))] ?? 'Checking GPU quota…';
    $('[data-role=retry-changes]', body).textContent = changes.length ? `Changes: ${changes.join(' · ')}` : 'Retries as it last ran.';
    preflight();
  }

  async function preflight() {
    const shape = shapeOf(form);
    const text = await checkShape(shape, answers);
    const slot = $('[data-role=gpu-availability]', el);
    if (slot && shapeKey(shape) === shapeKey(shapeOf(form))) slot.textContent = text;
  }

  function collect() {
    for (const input of $$('[data-bind]', body)) {
      form[input.dataset.bind] = input.type === 'checkbox' ? input.checked : input.value;
    }
    form.gpu_count = fittingCount(form.gpu_type, Number(form.gpu_count)); // a count the type holds
  }

  const onEdit = (e) => {
    if (!e.target.dataset.bind) return;
    collect();
    if (e.target.dataset.bind === 'gpu_type') render();
    else refresh();
  };
  el.addEventListener('change', onEdit);
  el.addEventListener('input', onEdit); // as typed: nothing is left to change when the pointer leaves for Retry
  el.addEventListener('click', async (e) => {
    if (e.target.closest('[data-preset]')) {
      form = { ...preset.form };
      render();
      return;
    }
    const submit = e.target.closest('[data-retry-submit]');
    if (!submit) return;
    collect();
    for (const slot of $$('[data-error-for]', el)) slot.textContent = ''; // the last answer's errors
    for (const field of $$('.field.has-error', el)) field.classList.remove('has-error');
    $('[data-role=general-error]', el).textContent = '';
    submit.disabled = true;
    try {
      const answer = await post(`/api/training-runs/${run.id}/retry`, retryBody(form));
      toast(answer.message || 'Retry queued');
      for (const w of answer.warnings || []) toast(w.message || String(w), 'error');
      close();
      onRetried?.(answer);
    } catch (err) {
      submit.disabled = false;
      const errors = err instanceof ApiError && err.errors.length ? err.errors : [{ field: 'general', message: err.message }];
      $('[data-role=general-error]', el).textContent = placeErrors(el, errors).join(' · ');
    }
  });
  render();
  $('[data-bind=gpu_type]', el)?.focus();
  return { el, close, form: () => form, preset };
}
