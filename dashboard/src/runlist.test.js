import { describe, expect, it } from 'vitest';
import { mergeLive } from './pages.js';
import { runQuery, searchMatches } from './runlist.js';

const run = (id, minute, extra = {}) => ({ id, created_at: `2026-01-01T00:${String(minute).padStart(2, '0')}:00Z`, ...extra });

describe('runQuery', () => {
  it('sends the chip statuses, filters and search to the server', () => {
    const q = runQuery({ modelType: 'ranking', dataset: 'ds1', search: ' run-0001 ' }, ['failed', 'cancelled'], 20);
    expect(Object.fromEntries(q)).toEqual({ page_size: '20', status: 'failed,cancelled', model_type: 'ranking',
      dataset: 'ds1', search: 'run-0001' });
  });
});

describe('searchMatches', () => {
  it('matches as the server does: each term starts at a word of a value', () => {
    const r = run('tr-9f', 1, { name: 'Movie-Recs weekly', run_number: 12, dataset: { name: 'clicks-2026' } });
    for (const text of ['movie', 'RECS week', 'movie-r', 'tr-9', '#12', 'clicks-20', '2026']) {
      expect(searchMatches(r, text)).toBe(true);
    }
    for (const text of ['ecs', 'recs monthly', 'licks']) expect(searchMatches(r, text)).toBe(false);
    const described = run('x', 1, { description: 'Weekly refresh, all regions' });
    expect(searchMatches(described, 'refr region')).toBe(true);
    expect(searchMatches(described, 'weekly-refresh')).toBe(false); // description words one by one
  });

  it('while searching, only matching live runs join the first page', () => {
    const merged = mergeLive([run('b', 20, { name: 'alpha' })], [run('c', 30, { name: 'beta' }),
      run('d', 40, { name: 'alpha two' })], (r) => searchMatches(r, 'alpha'));
    expect(merged.map((r) => r.id)).toEqual(['d', 'b']);
  });
});
