import { describe, expect, it } from 'vitest';
import { ListPages, listQuery, mergeLive, namedMatches } from './pages.js';

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

describe('ListPages', () => {
  const server = (rows, size) => async (q) => {
    const params = new URLSearchParams(q);
    const start = Number(params.get('page_token') || 0);
    const next = start + size < rows.length ? String(start + size) : null;
    return { training_runs: rows.slice(start, start + size), next_page_token: next, total: rows.length };
  };

  it('reads the next and previous pages with the tokens the server gave', async () => {
    const rows = Array.from({ length: 5 }, (_, n) => run(`r${4 - n}`, 50 - n));
    const pages = new ListPages(server(rows, 2), () => {});
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
    const pages = new ListPages(server([run('old', 1, { name: 'alpha old' })], 5), () => {});
    await pages.reset('search=alpha', (r) => r.name.startsWith('alpha'));
    pages.setLive([run('b', 9, { name: 'beta' }), run('a', 8, { name: 'alpha new' })]);
    expect(pages.rows().map((r) => r.id)).toEqual(['a', 'old']);
  });

  it('a run deleted from the page leaves every loaded page, including a search result', async () => {
    const pages = new ListPages(server([run('gone', 3, { name: 'alpha gone' }), run('kept', 2, { name: 'alpha kept' })], 1), () => {});
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
    const pages = new ListPages(slow, () => {});
    const first = pages.reset('search=old', false);
    pages.fetchPage = server([run('new', 1)], 5);
    await pages.reset('search=new', false);
    release({ training_runs: [run('old', 2)], next_page_token: null, total: 1 });
    await first;
    expect(pages.rows().map((r) => r.id)).toEqual(['new']);
  });
});


describe('a list read on with "Load more"', () => {
  const server = (rows, size) => async (q) => {
    const params = new URLSearchParams(q);
    const terms = (params.get('search') || '').split(' ').filter(Boolean);
    const kept = rows.filter((r) => terms.every((t) => r.name.includes(t)));
    const start = Number(params.get('page_token') || 0);
    return { items: kept.slice(start, start + size), next_page_token: start + size < kept.length ? String(start + size) : null };
  };
  const items = Array.from({ length: 5 }, (_, n) => run(`ds${n}`, 50 - n, { name: `dataset-${n}` }));

  it('reads the rows under the key the list answers with, page after page, until the server has no more', async () => {
    const pages = new ListPages(server(items, 2), () => {}, 'items');
    await pages.reset(listQuery(2, ''), false);
    expect(pages.all().map((r) => r.id)).toEqual(['ds0', 'ds1']);
    await pages.more();
    await pages.more();
    expect(pages.all().map((r) => r.id)).toEqual(['ds0', 'ds1', 'ds2', 'ds3', 'ds4']);
    expect(pages.hasMore).toBe(false);
  });

  it('a search is a new query: back to its first page, with only what the server found', async () => {
    const pages = new ListPages(server(items, 2), () => {}, 'items');
    await pages.reset(listQuery(2, ''), false);
    await pages.more();
    await pages.reset(listQuery(2, 'dataset-4'), false);
    expect(pages.all().map((r) => r.id)).toEqual(['ds4']);
    expect(pages.hasMore).toBe(false);
  });

  it('a new live entry joins the top of the list only while it matches the search', async () => {
    const pages = new ListPages(server(items, 2), () => {}, 'items');
    await pages.reset(listQuery(2, 'dataset'), (d) => namedMatches(d, 'dataset', ['id', 'name']));
    pages.setLive([run('new', 59, { name: 'dataset-new' }), run('other', 58, { name: 'clicks' })]);
    expect(pages.all().map((r) => r.id)).toEqual(['new', 'ds0', 'ds1']);
  });
});

describe('listQuery and namedMatches', () => {
  it('sends the search trimmed, and the filters that are set', () => {
    expect(Object.fromEntries(new URLSearchParams(listQuery(50, ' nightly ', { status: 'active,paused', model_type: '' }))))
      .toEqual({ page_size: '50', search: 'nightly', status: 'active,paused' });
    expect(listQuery(20, '  ')).toBe('page_size=20');
  });

  it('matches as the server does: every term is somewhere in a field, in any case', () => {
    const schedule = { id: 'ts-1', name: 'Nightly-Retrain', description: 'the Q4 clicks' };
    const fields = ['id', 'name', 'description'];
    for (const text of ['nightly', 'RETRAIN q4', 'ts-1', 'ly-re', '']) expect(namedMatches(schedule, text, fields)).toBe(true);
    for (const text of ['weekly', 'nightly weekly']) expect(namedMatches(schedule, text, fields)).toBe(false);
  });
});

describe('a row that left the listener\'s query', () => {
  const page = async () => ({ schedules: [run('s3', 30), run('s2', 20), run('s1', 10)], next_page_token: null });

  it('leaves the list when the listener would hold it (it has room, or the row is in its window)', async () => {
    const pages = new ListPages(page, () => {}, 'schedules');
    await pages.reset('page_size=3', true);
    pages.setLive([run('s3', 30), run('s1', 10)], 5); // room for five: s2 was cancelled
    expect(pages.all().map((r) => r.id)).toEqual(['s3', 's1']);
    pages.setLive([run('s3', 30)], 1); // full at s3: s2 and s1 are past its window, kept
    expect(pages.all().map((r) => r.id)).toEqual(['s3', 's2', 's1']);
  });

  it('stays until the listener answered, and for a listener with no limit given', async () => {
    const pages = new ListPages(page, () => {}, 'schedules');
    await pages.reset('page_size=3', true);
    expect(pages.all()).toHaveLength(3);
    pages.setLive([run('s3', 30)]);
    expect(pages.all()).toHaveLength(3);
  });
});
