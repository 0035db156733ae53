// The API's 400 answers name the field at fault (`deployment_config.canary.percent`, `users`): each message
// goes to the slot for that field or, failing that, the nearest slot of a field that holds it
// (`gpu_config.fallbacks.1` for `gpu_config.fallbacks.1.region` without its own slot); what has no slot is
// returned, for the form's general line.
export function placeErrors(root, errors, strip = null) {
  const general = [];
  for (const err of errors) {
    const field = String(err.field || '').replace(strip || /^$/, '');
    let slot = null;
    for (let f = field; f && !slot; f = f.includes('.') ? f.slice(0, f.lastIndexOf('.')) : '') {
      slot = root.querySelector(`[data-error-for="${CSS.escape(f)}"]`);
    }
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent}; ${err.message}` : err.message;
      slot.closest('.field')?.classList.add('has-error');
    } else general.push(`${err.field}: ${err.message}`);
  }
  return general;
}

export const errorSlot = (field) => `<div class="field-error" data-error-for="${field}"></div>`;
