import { describe, expect, it } from 'vitest';
import { mergeLive, RunPages, runQuery, searchMatches } from './runlist.js';

const run = (id, minute, extra = {}) => ({ id, created_at: `2026-01-01T00:${String(minute).padStart(2, '0')}:00Z`, ...extra });

describe('mergeLive', () => {
  it('puts a new live run on top of the first page and keeps the page whole', () => {
    const page = [run('c', 30), run('b', 20), run('a', 10)];
    const merged = mergeLive(page, [run('d', 40), run('c', 30, { status: 'running' })], true);
    expect(merged.map((r) => r.id)).toEqual(['d', 'c', 'b', 'a']);
    expect(merged[1].status).toBe('running');
  });

  it('adds no run while searching, and none older than the page (a later page has it)', () => {
    const page = [run('c', 30), run('b', 20)];
    expect(mergeLive(page, [run('d', 40)], false).map((r) => r.id)).toEqual(['c', 'b']);
    expect(mergeLive(page, [run('a', 10)], true).map((r) => r.id)).toEqual(['c', 'b']);
  });

  it('orders runs made at the same instant by id, as the server does', () => {
    expect(mergeLive([run('x', 5)], [run('y', 5), run('w', 5)], true).map((r) => r.id)).toEqual(['y', 'x']);
  });
});

describe('runQuery', () => {
  it('sends the chip statuses, filters and search to the server', () => {
    const q = runQuery({ modelType: 'ranking', dataset: 'ds1', search: ' run-0001 ' }, ['failed', 'cancelled'], 20);
    expect(Object.fromEntries(q)).toEqual({ page_size: '20', status: 'failed,cancelled', model_type: 'ranking',
      dataset: 'ds1', search: 'run-0001' });
  });
});

describe('RunPages', () => {
  const server = (rows, size) => async (q) => {
    const params = new URLSearchParams(q);
    const start = Number(params.get('page_token') || 0);
    const next = start + size < rows.length ? String(start + size) : null;
    return { training_runs: rows.slice(start, start + size), next_page_token: next, total: rows.length };
  };

  it('reads the next and previous pages with the tokens the server gave', async () => {
    const rows = Array.from({ length: 5 }, (_, n) => run(`r${4 - n}`, 50 - n));
    const pages = new RunPages(server(rows, 2), () => {});
    await pages.reset('page_size=2', true);
    expect(pages.rows().map((r) => r.id)).toEqual(['r4', 'r3']);
    await pages.load(1);
    await pages.load(2);
    expect(pages.rows().map((r) => r.id)).toEqual(['r0']);
    expect(pages.hasNext).toBe(false);
    await pages.load(0);
    expect(pages.index).toBe(0);
    expect(pages.all().map((r) => r.id)).toEqual(['r4', 'r3', 'r2', 'r1', 'r0']);
  });

  it('while searching, only the live runs that match join the first page', async () => {
    const pages = new RunPages(server([run('old', 1, { name: 'alpha old' })], 5), () => {});
    await pages.reset('search=alpha', (r) => r.name.startsWith('alpha'));
    pages.setLive([run('b', 9, { name: 'beta' }), run('a', 8, { name: 'alpha new' })]);
    expect(pages.rows().map((r) => r.id)).toEqual(['a', 'old']);
  });

  it('a run deleted from the page leaves every loaded page, including a search result', async () => {
    const pages = new RunPages(server([run('gone', 3, { name: 'alpha gone' }), run('kept', 2, { name: 'alpha kept' })], 1), () => {});
    await pages.reset('search=alpha', (r) => r.name.startsWith('alpha'));
    await pages.load(1);
    pages.setLive([run('gone', 3, { name: 'alpha gone' })]);
    pages.drop('gone');
    expect(pages.all().map((r) => r.id)).toEqual(['kept']);
    await pages.load(0);
    expect(pages.rows()).toEqual([]);
  });

  it('drops the answer to a query that was replaced while it was on its way', async () => {
    let release;
    const slow = () => new Promise((resolve) => { release = resolve; });
    const pages = new RunPages(slow, () => {});
    const first = pages.reset('search=old', false);
    pages.fetchPage = server([run('new', 1)], 5);
    await pages.reset('search=new', false);
    release({ training_runs: [run('old', 2)], next_page_token: null, total: 1 });
    await first;
    expect(pages.rows().map((r) => r.id)).toEqual(['new']);
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
