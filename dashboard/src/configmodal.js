// The config change modal (spec §4.5): the wizard's [Change] on a dataset, feature config or model config opens a
// search box over the list (read from the server page by page, and searched there when it is longer than a page:
// picker.js), a line of each config under its name, the highlighted config's fields beside it, and
// Cancel and Select. By keyboard: typing searches, ↑/↓ (Home/End) move the highlight, Enter selects, Escape
// cancels; Tab stays inside the modal, and focus goes back where it was when the modal closes.
import { configFields, configSummary } from './configinfo.js';
import { debounce, esc } from './format.js';
import { CatalogPicker } from './picker.js';
import { $, $$, openModal } from './ui.js';

/** The items whose name, id, description or summary hold every word of `query` (any case), in list order. */
export function matching(items, query, summary = () => '') {
  const words = String(query || '').toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return items;
  return items.filter((it) => {
    const text = [it.name, it.id, it.description, summary(it)].join(' ').toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

const MOVES = { ArrowDown: 1, ArrowUp: -1, PageDown: 5, PageUp: -5 };

/** The highlight after `key` among `count` items (-1 when there are none); null when the key does not move it. */
export function moveHighlight(index, count, key) {
  if (!count) return key in MOVES || key === 'Home' || key === 'End' ? -1 : null;
  if (key === 'Home') return 0;
  if (key === 'End') return count - 1;
  if (!(key in MOVES)) return null;
  return Math.min(count - 1, Math.max(0, (index < 0 ? -1 : index) + MOVES[key]));
}

/** Where Tab (or Shift+Tab) goes from `index` among `count` focusable elements: round, never out of the modal. */
export const trapTab = (index, count, back) => (count ? (index + (back ? -1 : 1) + count) % count : -1);

const FOCUSABLE = 'input, button:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])';

/** Opens the modal over a catalog list: fetchPage(queryString) reads its pages (items in full), filtered by
 * `filters` (model_type); `onSelect(item)` on Select or Enter. `returnFocus` finds the element to focus after it
 * closes (the opener may have re-rendered), else the one focused before. */
export function openConfigModal({ kind, title, fetchPage, filters = {}, currentId, onSelect, returnFocus, selectLabel = 'Select' }) {
  const before = document.activeElement;
  const summary = (it) => configSummary(kind, it);
  let shown = [];
  let highlight = -1;
  let started = false;
  const picker = new CatalogPicker(fetchPage, () => update(), { filters, searchHere: (items, text) => matching(items, text, summary) });
  const { el, close } = openModal(`<div class="modal-head"><h2>${esc(title)}</h2><button data-close aria-label="Close">✕</button></div>
    <div class="modal-body config-modal">
      <input type="search" data-role="config-search" placeholder="🔍 Search configs…" aria-label="Search" aria-controls="config-list" autocomplete="off" />
      <div class="config-columns"><div class="config-list" id="config-list" role="listbox" aria-label="${esc(title)}" data-role="config-list"></div>
        <div class="config-details" data-role="config-details" aria-live="polite"></div></div></div>
    <div class="modal-foot"><button data-close>Cancel</button><button class="btn-primary" data-config-select>${esc(selectLabel)}</button></div>`,
  { id: 'config-modal', onClose: () => {
    const back = returnFocus?.() || (before?.isConnected ? before : null);
    back?.focus();
  } });
  const search = $('[data-role=config-search]', el);
  const list = $('[data-role=config-list]', el);

  // New rows (a page, a search's answer): the highlight stays on its entry, else the current one's, else the first.
  function update() {
    const was = shown[highlight]?.id ?? (started ? null : currentId);
    shown = picker.items;
    const at = shown.findIndex((it) => it.id === was);
    highlight = shown.length ? Math.max(0, at) : -1;
    render();
  }

  function render() {
    const tail = picker.error ? `<div class="card-warn" data-role="config-error">${esc(picker.error.message)}</div>`
      : picker.loading ? '<div class="muted" data-role="config-loading">Loading…</div>'
        : picker.hasMore ? '<button data-config-more>Load more</button>' : '';
    list.innerHTML = shown.map((it, i) => `<div class="exp-row config-option ${i === highlight ? 'selected' : ''}" role="option" id="config-option-${i}"
        aria-selected="${i === highlight}" data-index="${i}" data-pick="${esc(it.id)}">
      <span aria-hidden="true">${it.id === currentId ? '●' : '○'}</span><div><b>${esc(it.name)}</b>${it.id === currentId ? ' <span class="badge">★ Current</span>' : ''}
      <div class="muted small">${esc(summary(it))}</div></div></div>`).join('')
      + (shown.length || picker.loading || picker.error ? tail : '<div class="muted" data-role="config-empty">Nothing matches.</div>');
    list.setAttribute('aria-activedescendant', highlight >= 0 ? `config-option-${highlight}` : '');
    const item = shown[highlight];
    $('[data-role=config-details]', el).innerHTML = item
      ? `<h3>${esc(item.name)}</h3><dl>${configFields(kind, item).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`
      : '';
    $('[data-config-select]', el).disabled = !item;
    $(`#config-option-${highlight}`, el)?.scrollIntoView?.({ block: 'nearest' });
  }

  function select() {
    const item = shown[highlight];
    if (!item) return;
    onSelect(item); // first: the opener re-renders, and the focus returns to its new element
    close();
  }

  const searchServer = debounce((text) => picker.search(text), 250);
  search.addEventListener('input', () => {
    started = true;
    if (picker.local) picker.search(search.value); // every entry is here: at once
    else searchServer(search.value);
  });
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Tab') { // the focus stays in the modal
      const focusable = $$(FOCUSABLE, el).filter((x) => !x.disabled && x.offsetParent !== null);
      const next = trapTab(focusable.indexOf(document.activeElement), focusable.length, e.shiftKey);
      if (next >= 0) {
        e.preventDefault();
        focusable[next].focus();
      }
      return;
    }
    const moved = moveHighlight(highlight, shown.length, e.key);
    if (moved !== null && e.target.tagName !== 'BUTTON') {
      e.preventDefault();
      highlight = moved;
      render();
    } else if (e.key === 'Enter' && !e.target.closest('button')) {
      e.preventDefault();
      select();
    }
  });
  list.addEventListener('click', (e) => {
    if (e.target.closest('[data-config-more]')) {
      started = true;
      picker.more();
      return;
    }
    const row = e.target.closest('[data-index]');
    if (!row) return;
    highlight = Number(row.dataset.index);
    render();
    search.focus();
  });
  list.addEventListener('dblclick', (e) => {
    if (e.target.closest('[data-index]')) select();
  });
  $('[data-config-select]', el).addEventListener('click', select);
  render();
  picker.start().then(() => { started = true; });
  search.focus();
  return { el, close };
}
