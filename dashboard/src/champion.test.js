import { beforeEach, describe, expect, it } from 'vitest';
import { championText, renderCard } from './cards.js';
import { setVocabulary } from './format.js';
import { championRows } from './runview.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));

const lost = {
  id: 'tr-2', name: 'recs', model_type: 'retrieval', run_number: 2, status: 'not_blessed', duration_seconds: 60,
  metrics: { recall_at_100: 0.41 },
  evaluation_results: {
    threshold_metric: 'recall_at_100', threshold_value: 0.3, actual_value: 0.41, blessed: false, passed: false,
    champion_value: 0.52, champion_version: '3', champion_source: 'registry default', champion_tolerance: 0.01,
    champion_required_value: 0.5148, reason: 'not blessed: recall_at_100 0.41 < champion 0.52 × 0.99',
  },
};

describe('champion vs challenger', () => {
  it('the card shows the champion and why the run was not pushed', () => {
    const html = renderCard(lost);
    expect(html).toContain('data-role="champion"');
    expect(html).toContain('Champion v3');
    expect(html).toContain('not pushed to registry (recall_at_100 0.41 &lt; champion 0.52 × 0.99)');
  });
  it('a champion that could not be scored says so on the card', () => {
    const e = { ...lost.evaluation_results, champion_value: null, champion_error: 'could not be loaded' };
    expect(championText({ ...lost, evaluation_results: e })).toContain('Champion not scored');
    expect(championText({ ...lost, evaluation_results: { threshold_metric: 'recall_at_100' } })).toBe('');
  });
  it('the run view gives both figures, where the champion serves and the verdict', () => {
    const html = championRows(lost);
    expect(html).toContain('v3 (registry default)');
    expect(html).toContain('this run');
    expect(html).toContain('× 0.99');
    expect(html).toContain('data-role="verdict"');
    expect(html).toContain('not blessed: recall_at_100 0.41 &lt; champion 0.52 × 0.99');
  });
});
