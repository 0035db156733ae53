// The pickers' logic (picker.js): a list that fits one page is searched here, a longer one by the server.
import { describe, expect, it } from 'vitest';
import { CatalogPicker } from './picker.js';

const entry = (n) => ({ id: `ds-${n}`, name: `dataset-${String(n).padStart(3, '0')}`, created_at: `2026-01-01T00:00:${String(59 - (n % 60)).padStart(2, '0')}Z`, summary: n === 0 ? 'the oldest' : '' });
// A server as listing.list_catalog answers: newest first, each search term in the name, page by page; it counts its calls.
function server(count) {
  const rows = Array.from({ length: count }, (_, n) => entry(n));
  const calls = [];
  const fetchPage = async (q) => {
    const p = new URLSearchParams(q);
    calls.push(Object.fromEntries(p));
    const terms = (p.get('search') || '').split(' ').filter(Boolean);
    const found = rows.filter((r) => terms.every((t) => r.name.includes(t)));
    const start = Number(p.get('page_token') || 0);
    const size = Number(p.get('page_size'));
    return { items: found.slice(start, start + size), next_page_token: start + size < found.length ? String(start + size) : null };
  };
  return { fetchPage, calls };
}
const bySummary = (items, text) => items.filter((it) => `${it.name} ${it.summary}`.includes(text));

describe('CatalogPicker', () => {
  it('a list that fits one page is searched here, at once, on more than the server searches', async () => {
    const { fetchPage, calls } = server(3);
    const picker = new CatalogPicker(fetchPage, () => {}, { searchHere: bySummary, size: 5 });
    await picker.start();
    await picker.search('oldest');
    expect(picker.items.map((it) => it.id)).toEqual(['ds-0']);
    expect(calls).toHaveLength(1);
    expect(picker.hasMore).toBe(false);
  });

  it('a list longer than a page sends the search to the server and reads on with "Load more"', async () => {
    const { fetchPage, calls } = server(250);
    const picker = new CatalogPicker(fetchPage, () => {}, { searchHere: bySummary, filters: { model_type: 'ranking' }, size: 100 });
    await picker.start();
    expect(picker.items).toHaveLength(100);
    expect(picker.hasMore).toBe(true);
    await picker.search('dataset-249');
    expect(picker.items.map((it) => it.id)).toEqual(['ds-249']);
    expect(calls.at(-1)).toEqual({ page_size: '100', search: 'dataset-249', model_type: 'ranking' });
    await picker.search('dataset-');
    await picker.more();
    await picker.more();
    expect(picker.items).toHaveLength(250);
    expect(picker.hasMore).toBe(false);
  });

  it('a search typed before the first page arrived is not undone by it', async () => {
    const { fetchPage } = server(3);
    const picker = new CatalogPicker(fetchPage, () => {}, { searchHere: bySummary, size: 5 });
    const starting = picker.start();
    await picker.search('dataset-002');
    await starting;
    expect(picker.local).toBe(null);
    expect(picker.items.map((it) => it.id)).toEqual(['ds-2']);
  });
});
