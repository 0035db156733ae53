// The config change modal's logic (spec §4.5): search over the list, the highlight by keyboard, Tab kept inside,
// and what each row and the details pane say of a config. The DOM is checked in Chromium (tests/browser/test_retry_form.py).
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));
const { matching, moveHighlight, trapTab } = await import('./configmodal.js');
const { configFields, configSummary } = await import('./configinfo.js');

const large = { id: 'fc-42', name: 'config-042: Large embeddings', description: 'for the Q4 data', features: [
  { name: 'user_id', side: 'query', transform: { type: 'vocabulary', embedding_dim: 64 } },
  { name: 'product_id', side: 'candidate', transform: { type: 'vocabulary', embedding_dim: 64 } },
  { name: 'hour', side: 'query', transform: { type: 'cyclical', components: ['hour'] } }] };
const standard = { id: 'fc-38', name: 'config-038: Standard embeddings', features: [
  { name: 'user_id', side: 'query', transform: { type: 'vocabulary', embedding_dim: 32 } }] };
const minimal = { id: 'fc-35', name: 'config-035: Minimal embeddings', features: [] };
const items = [large, standard, minimal];

describe('search', () => {
  const summary = (it) => configSummary('feature_config', it);
  it('keeps the items holding every word, in any case, in list order', () => {
    expect(matching(items, '')).toEqual(items);
    expect(matching(items, 'EMBEDDINGS')).toEqual(items);
    expect(matching(items, 'standard emb')).toEqual([standard]);
    expect(matching(items, 'fc-35')).toEqual([minimal]);
    expect(matching(items, 'q4')).toEqual([large]); // the description
    expect(matching(items, '64d', summary)).toEqual([large]); // the line under the name
    expect(matching(items, 'nothing like it')).toEqual([]);
  });
});

describe('the keyboard', () => {
  it('moves the highlight with the arrows, Home, End and pages, never past the ends', () => {
    expect(moveHighlight(0, 3, 'ArrowDown')).toBe(1);
    expect(moveHighlight(2, 3, 'ArrowDown')).toBe(2);
    expect(moveHighlight(0, 3, 'ArrowUp')).toBe(0);
    expect(moveHighlight(1, 3, 'Home')).toBe(0);
    expect(moveHighlight(0, 3, 'End')).toBe(2);
    expect(moveHighlight(0, 30, 'PageDown')).toBe(5);
    expect(moveHighlight(-1, 3, 'ArrowDown')).toBe(0); // nothing highlighted yet: the first
    expect(moveHighlight(0, 0, 'ArrowDown')).toBe(-1);
    expect(moveHighlight(1, 3, 'a')).toBe(null); // typing is the search's
    expect(moveHighlight(1, 3, 'Enter')).toBe(null);
  });
  it('keeps Tab inside the modal, both ways round', () => {
    expect(trapTab(0, 4, false)).toBe(1);
    expect(trapTab(3, 4, false)).toBe(0);
    expect(trapTab(0, 4, true)).toBe(3);
    expect(trapTab(-1, 4, false)).toBe(0); // focus outside: back in at the first
    expect(trapTab(0, 0, false)).toBe(-1);
  });
});

describe('what a config says', () => {
  it('one line under its name, as the spec draws it', () => {
    expect(configSummary('feature_config', large)).toBe('user_id: 64d │ product_id: 64d │ hour: 2d');
    expect(configSummary('dataset', { stats: { rows: 1_200_000, users: 5000 } })).toBe('1.2M rows, 5K users');
    expect(configSummary('model_config', { model_type: 'retrieval', query_tower: [128, 64], candidate_tower: [] }))
      .toBe('query 128→64 · candidate embedding-only towers, adagrad optimizer');
  });
  it('its fields for the details pane, empty ones left out', () => {
    expect(configFields('feature_config', large)).toEqual([['Id', 'fc-42'], ['Query side', '66d: user_id: 64d, hour: 2d'],
      ['Candidate side', '64d: product_id: 64d'], ['Features', '3'], ['Description', 'for the Q4 data']]);
    expect(configFields('dataset', { id: 'ds-1', source: { kind: 'files', uri: 'gs://b/t.csv', format: 'csv' }, split_strategy: 'random',
      sample_percent: 25, created_by: 'alice@example.com', created_at: '2026-12-01T10:00:00Z' })).toEqual([
      ['Id', 'ds-1'], ['Size', 'size not recorded'], ['Source', 'files gs://b/t.csv (csv)'], ['Split', 'random'], ['Sample', '25%'],
      ['Created', 'alice@example.com, 2026-12-01']]);
    expect(configFields('model_config', { id: 'mc-1', model_type: 'ranking', optimizer: 'adam' }))
      .toEqual([['Id', 'mc-1'], ['Model type', 'ranking'], ['Optimizer', 'adam']]);
  });
});
