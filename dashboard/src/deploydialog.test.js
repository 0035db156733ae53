// The Deploy dialog's start (the run's deployment_config) and the body it posts (POST …/deploy).
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));
const { deployBody, deployStart, deployText } = await import('./deploydialog.js');

const staged = { percent: 20, watch_minutes: 15, max_error_rate: 0.02, max_p95_latency_ms: 300, min_requests: 50 };

describe('the Deploy dialog', () => {
  it("starts where the run's deployment_config sends it, staged as it says", () => {
    const form = deployStart({ name: 'recs', deployment_config: { action: 'deploy_existing', existing_endpoint_id: 'prod', traffic_split: 20, canary: staged } });
    expect(form).toMatchObject({ target: 'existing', endpoint_id: 'prod', canary: { enabled: true, percent: 20, watch_minutes: 15, max_error_rate_pct: 2, max_p95_latency_ms: 300, min_requests: 50 } });
    expect(deployBody(form)).toEqual({ endpoint_id: 'prod', canary: staged });
    expect(deployStart({ name: 'recs', deployment_config: { action: 'deploy_new', endpoint_name: 'fresh' } })).toMatchObject({ target: 'new', endpoint_name: 'fresh' });
    const plain = deployStart({ name: 'recs' });
    expect(plain).toMatchObject({ target: 'new', canary: { enabled: false, percent: 10, watch_minutes: 30, max_error_rate_pct: 1, min_requests: 20 } });
    expect(deployBody(plain)).toEqual({});
    expect(deployText(plain, 'recs')).toBe('a new endpoint "recs" serving only this model');
  });
  it('sends a share of the traffic, or a canary without one, to an existing endpoint', () => {
    const form = { target: 'existing', endpoint_id: ' prod ', traffic_split: '25', endpoint_name: 'ignored', canary: { enabled: false } };
    expect(deployBody(form)).toEqual({ endpoint_id: 'prod', traffic_split: 25 });
    expect(deployText(form, 'recs')).toBe('endpoint prod: 25% of the traffic at once');
    const canary = { enabled: true, percent: '5', watch_minutes: '60', max_error_rate_pct: '0.5', max_p95_latency_ms: '', min_requests: '20' };
    expect(JSON.parse(JSON.stringify(deployBody({ ...form, canary })))).toEqual(
      { endpoint_id: 'prod', canary: { percent: 5, watch_minutes: 60, max_error_rate: 0.005, min_requests: 20 } });
    expect(deployText({ ...form, canary }, 'recs')).toBe('endpoint prod: canary 5% for 60 min, rolled back above 0.5% errors (over ≥ 20 requests), then 100%');
    expect(deployBody({ ...form, endpoint_id: '' })).toEqual({ endpoint_id: '', traffic_split: 25 }); // the API names it
  });
});
