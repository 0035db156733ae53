import { beforeEach, describe, expect, it } from 'vitest';
import { dataTriggerFor, warmRestartFor } from './wizard.js';
import { setVocabulary, stepForField } from './format.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));

describe('the schedule step on new data', () => {
  const base = { type: 'data', data_where: '', data_interval: 60, on_data: false };
  it('reads a bucket prefix, a table and a local folder as the API data_trigger', () => {
    expect(dataTriggerFor({ ...base, data_where: 'gs://acme-landing/interactions/2026/' })).toEqual(
      { source: 'gcs', bucket: 'acme-landing', prefix: 'interactions/2026/', min_interval_minutes: 60 });
    expect(dataTriggerFor({ ...base, data_where: ' bigquery:acme-recs.events.interactions ', data_interval: '15' })).toEqual(
      { source: 'bigquery', table: 'acme-recs.events.interactions', min_interval_minutes: 15 });
    expect(dataTriggerFor({ ...base, data_where: '/srv/landing' })).toEqual(
      { source: 'folder', path: '/srv/landing', min_interval_minutes: 60 });
  });
  it('a clock schedule fires on data only when asked', () => {
    expect(dataTriggerFor({ ...base, type: 'daily', data_where: 'gs://b/p' })).toBe(null);
    expect(dataTriggerFor({ ...base, type: 'daily', on_data: true, data_where: 'gs://b/p' }).bucket).toBe('b');
    expect(dataTriggerFor({ ...base, type: 'now' })).toBe(null);
  });
  it("the API's errors on the trigger take the user to the schedule step", () => {
    expect(stepForField('data_trigger.bucket')).toBe(3);
    expect(stepForField('data_trigger')).toBe(3);
  });
});

describe('the deployment, GPU and evaluator steps of the retraining loop', () => {
  const canary = { enabled: true, percent: 10, watch_minutes: 30, max_error_rate_pct: 1, max_p95_latency_ms: '', min_requests: 20 };
  const existing = { action: 'deploy_existing', existing_endpoint_id: 'recs-prod', traffic_split: 25, endpoint_name: '', canary };

  it("sends the API's canary shape, with no traffic_split (the canary's percent is the traffic)", async () => {
    const { deploymentFor } = await import('./wizard.js');
    expect(deploymentFor(existing)).toEqual({ action: 'deploy_existing', existing_endpoint_id: 'recs-prod',
      canary: { percent: 10, watch_minutes: 30, max_error_rate: 0.01, max_p95_latency_ms: undefined, min_requests: 20 } });
    expect(JSON.parse(JSON.stringify(deploymentFor({ ...existing, canary: { ...canary, max_p95_latency_ms: 250, max_error_rate_pct: 0.5 } }).canary)))
      .toEqual({ percent: 10, watch_minutes: 30, max_error_rate: 0.005, max_p95_latency_ms: 250, min_requests: 20 });
    // an empty required field is left out, for the API to name it
    expect(JSON.parse(JSON.stringify(deploymentFor({ ...existing, canary: { ...canary, percent: '' } }))).canary).not.toHaveProperty('percent');
  });
  it('sends no canary when the deploy is not staged or not to an existing endpoint', async () => {
    const { deploymentFor } = await import('./wizard.js');
    expect(deploymentFor({ ...existing, canary: { ...canary, enabled: false } })).toEqual(
      { action: 'deploy_existing', existing_endpoint_id: 'recs-prod', traffic_split: 25 });
    expect(deploymentFor({ ...existing, action: 'deploy_new', endpoint_name: 'fresh' })).toEqual({ action: 'deploy_new', endpoint_name: 'fresh' });
    expect(deploymentFor({ ...existing, action: 'register_only' })).toEqual({ action: 'register_only' });
  });
  it('lists GPU fallbacks in order, leaving an empty machine or region to the server', async () => {
    const { fallbacksFor, fallbacksText } = await import('./wizard.js');
    const rows = [{ gpu_type: 'NVIDIA_L4', gpu_count: '2', machine_type: '', region: '', preemptible: false },
      { gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 4, machine_type: 'n1-highmem-32', region: ' us-central1 ', preemptible: true }];
    expect(fallbacksFor(rows)).toEqual([{ gpu_type: 'NVIDIA_L4', gpu_count: 2, preemptible: false },
      { gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 4, preemptible: true, machine_type: 'n1-highmem-32', region: 'us-central1' }]);
    expect(fallbacksText(rows)).toBe('1. 2 × NVIDIA_L4 on g2-standard-24 (on-demand); 2. 4 × NVIDIA_TESLA_T4 on n1-highmem-32 in us-central1 (Spot)');
  });
  it('makes a fallback row fit its GPU type: a count it comes in, a machine Vertex admits', async () => {
    const { fitShape } = await import('./wizard.js');
    expect(fitShape({ gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 8, machine_type: 'g2-standard-96' })).toEqual(
      { gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 1, machine_type: '' });
    expect(fitShape({ gpu_type: 'NVIDIA_TESLA_T4', gpu_count: '2', machine_type: 'n1-highmem-8' }).machine_type).toBe('n1-highmem-8');
  });
  it("sends the champion gate as the API's fraction and says it in the review", async () => {
    const { championGateFor, championGateText } = await import('./wizard.js');
    const { canaryText } = await import('./canary.js');
    expect(championGateFor({ compare: true, tolerance_pct: 2 })).toEqual({ compare_to_champion: true, champion_tolerance: 0.02 });
    expect(championGateFor({ compare: false, tolerance_pct: '' })).toEqual({ compare_to_champion: false });
    expect(championGateText({ compare_to_champion: true, champion_tolerance: 0.02 }, false)).toBe('and ≥ champion × 0.98');
    expect(championGateText({ compare_to_champion: true, champion_tolerance: 0.02 }, true)).toBe('and ≤ champion × 1.02');
    expect(championGateText({ compare_to_champion: false }, false)).toBe('not compared with the champion');
    expect(canaryText({ percent: 10, watch_minutes: 30, max_error_rate: 0.01, max_p95_latency_ms: 250, min_requests: 20 }))
      .toBe('canary 10% for 30 min, rolled back above 1% errors or p95 250 ms (over ≥ 20 requests), then 100%');
  });
  it("the API's errors on these fields take the user to the step that holds them", () => {
    for (const field of ['deployment_config.canary.percent', 'gpu_config.fallbacks.1.machine_type', 'evaluator_config.champion_tolerance',
      'run_template.deployment_config.canary.max_error_rate']) expect(stepForField(field)).toBe(3);
  });
});

describe("the retraining loop's defaults are the server's", () => {
  it('a canary names only what the API needs; the rest is read from the vocabulary', async () => {
    const { championGateText } = await import('./wizard.js');
    const { canaryText } = await import('./canary.js');
    expect(canaryText({ percent: 5, watch_minutes: 10 })).toBe('canary 5% for 10 min, rolled back above 1% errors (over ≥ 20 requests), then 100%');
    setVocabulary({ ...structuredClone(served), canary: { max_error_rate: 0.02, min_requests: 50, max_p95_latency_ms: null },
      champion_gate: { compare_to_champion: true, champion_tolerance: 0.05 } });
    expect(canaryText({ percent: 5, watch_minutes: 10 })).toBe('canary 5% for 10 min, rolled back above 2% errors (over ≥ 50 requests), then 100%');
    expect(championGateText({ compare_to_champion: true }, false)).toBe('and ≥ champion × 0.95');
  });
});

describe('the warm restart field', () => {
  it('sends only the id its source reads, and an empty run id as none', () => {
    expect(warmRestartFor({ enabled: true, source: 'run', run_id: ' tr-0123 ', experiment_id: null }))
      .toEqual({ enabled: true, source: 'run', run_id: 'tr-0123' });
    expect(warmRestartFor({ enabled: true, source: 'champion', run_id: 'tr-0123' })).toEqual({ enabled: true, source: 'champion' });
    expect(warmRestartFor({ enabled: false, source: 'experiment', run_id: '', experiment_id: null }))
      .toEqual({ enabled: false, source: 'experiment' });
    expect(warmRestartFor({ enabled: true, source: 'run', run_id: '' })).toEqual({ enabled: true, source: 'run', run_id: null });
  });
  it("the API's errors on it take the user to the parameters step", () => {
    expect(stepForField('training_params.warm_restart.run_id')).toBe(2);
  });
});
