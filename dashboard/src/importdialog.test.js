// The Import experiments dialog's logic: the teams it offers, the body it posts (POST
// /api/experiments:import-from) and how it reads the answer.
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));
const { countsText, importBody, importStart, importTeams, resultRows } = await import('./importdialog.js');

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
});
