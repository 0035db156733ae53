// Small DOM helpers shared by the chapters, the wizard and the run view.
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function toast(message, kind = 'info') {
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.textContent = message;
  $('#toasts').appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

/** Opens a modal; returns {el, close}. onClose runs once, however it closes. */
export function openModal(html, { narrow = false, onClose, id } = {}) {
  const backdrop = document.createElement('div');
  backdrop.className = 'modal-backdrop';
  backdrop.innerHTML = `<div class="modal ${narrow ? 'narrow' : ''}" role="dialog" ${id ? `id="${id}"` : ''}>${html}</div>`;
  $('#modal-root').appendChild(backdrop);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    backdrop.remove();
    document.removeEventListener('keydown', onKey);
    onClose?.();
  };
  const onKey = (e) => { if (e.key === 'Escape' && backdrop === $('#modal-root').lastElementChild) close(); };
  document.addEventListener('keydown', onKey);
  backdrop.addEventListener('mousedown', (e) => { if (e.target === backdrop) close(); });
  backdrop.addEventListener('click', (e) => { if (e.target.closest('[data-close]')) close(); });
  return { el: backdrop.firstElementChild, close };
}

export function confirmDialog(message) {
  return Promise.resolve(window.confirm(message));
}
