// The Import experiments dialog's logic: the teams it offers, the body it posts (POST
// /api/experiments:import-from) and how it reads the answer.
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));
const { countsText, importAll, importBody, importStart, importTeams, resultRows } = await import('./importdialog.js');

const me = { teams: ['ads', 'recs', 'search'], roles: { ads: 'viewer', recs: 'trainer', search: 'admin' } };

describe('the Import experiments dialog', () => {
  it('offers the teams where the caller is trainer or above, the first by default', () => {
    expect(importTeams(me)).toEqual(['recs', 'search']);
    expect(importTeams({ ...me, platform_admin: true })).toEqual(['ads', 'recs', 'search']);
    expect(importStart(me)).toMatchObject({ source: 'mlflow', team: 'recs', mapping: '' });
    expect(importStart({ teams: [], roles: {} }).team).toBe('');
  });
  it("posts only the chosen source's fields, trimmed; a blank mapping is the default", () => {
    const form = { source: 'mlflow', tracking_uri: ' http://localhost:5000 ', project: 'p', location: 'l', experiment: ' quick ', team: 'recs', mapping: '  ' };
    expect(importBody(form)).toEqual({ source: 'mlflow', tracking_uri: 'http://localhost:5000', experiment: 'quick', team: 'recs' });
    const vertex = { ...form, source: 'vertex', mapping: 'version: 1\n', team: '' };
    expect(importBody(vertex, { dryRun: true })).toEqual(
      { source: 'vertex', project: 'p', location: 'l', experiment: 'quick', mapping: 'version: 1\n', dry_run: true });
  });
  it('says the counts in a fixed order and each run with its fields at fault', () => {
    expect(countsText({ failed: 1, unchanged: 2, created: 3, skipped: 1 })).toBe('3 created, 2 unchanged, 1 skipped, 1 failed');
    expect(countsText({})).toBe('no runs');
    const html = resultRows([
      { run_id: 'r1', run_name: 'lucky-fox', result: 'created', experiment_id: 'e1' },
      { run_id: 'r2', run_name: '<b>', result: 'skipped (running)' },
      { run_id: 'r3', run_name: 'x', result: 'failed', error: 'run r3: …', errors: [{ field: 'datasets.name', message: 'Field required' }] },
      { run_id: 'r4', run_name: 'y', result: 'failed', error: 'HTTP 403: not on the team' }]);
    expect(html).toContain('data-result="created"');
    expect(html).toContain('data-result="skipped"');
    expect(html).toContain('&lt;b&gt;');
    expect(html).toContain('datasets.name: Field required');
    expect(html).toContain('HTTP 403: not on the team');
    expect(html).not.toContain('run r3: …');
  });
  it('asks again from next_after until the API says the import is whole, merging the parts', async () => {
    const asked = [];
    const parts = {
      '': { source: 'mlflow', experiment: 'quick', runs: [{ run_id: 'a' }, { run_id: 'b' }], counts: { created: 2 }, next_after: 'b' },
      b: { source: 'mlflow', experiment: 'quick', runs: [{ run_id: 'c' }], counts: { created: 1 }, next_after: 'c' },
      c: { source: 'mlflow', experiment: 'quick', runs: [{ run_id: 'd' }], counts: { failed: 1 }, next_after: null },
    };
    const fakePost = async (path, body) => { asked.push([path, body]); return parts[body.after || '']; };
    const progress = [];
    const whole = await importAll(fakePost, { source: 'mlflow', experiment: 'quick' }, (soFar) => progress.push(soFar.runs.length));
    expect(asked.map(([path, body]) => [path, body.after])).toEqual(
      [['/api/experiments:import-from', undefined], ['/api/experiments:import-from', 'b'], ['/api/experiments:import-from', 'c']]);
    expect(whole.runs.map((r) => r.run_id)).toEqual(['a', 'b', 'c', 'd']);
    expect(whole.counts).toEqual({ created: 3, failed: 1 });
    expect(progress).toEqual([2, 3]);
    expect(whole.next_after).toBeNull();
  });
});
