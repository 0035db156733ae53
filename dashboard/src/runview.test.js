// The run view's deployment (canary, rollback, endpoint history) and batch predictions sections.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';

vi.mock('./live.js', () => ({ listenHistory: () => () => {}, listenRun: () => () => {} }));
vi.mock('chart.js', () => {
  const Chart = class {}; Chart.register = () => {};
  return { Chart, CategoryScale: {}, Legend: {}, LineController: {}, LineElement: {}, LinearScale: {}, LogarithmicScale: {}, PointElement: {}, Tooltip: {} };
});

const { batchSection, deploymentSection, warmStartText } = await import('./runview.js');

beforeEach(() => setVocabulary(structuredClone(served)));

const watching = {
  name: 'recs-v7',
  deployment: {
    status: 'canary', endpoint_id: 'recs-prod', endpoint_resource_name: 'local/endpoints/recs-prod',
    canary: { percent: 10, watch_minutes: 30, max_error_rate: 0.01, max_p95_latency_ms: 250, min_requests: 20,
      status: 'watching', watch_until: '2026-12-06T21:00:00Z',
      last_check: { requests: 120, errors: 1, p95_latency_ms: 41.2 } },
  },
  endpoint_history: [{ at: '2026-12-06T20:30:00Z', action: 'canary_started', by: 'dan@example.com',
    from: { old: 100 }, to: { old: 90, new: 10 }, reason: 'canary: 10 % for 30 min' }],
};

describe('the run view deployment section', () => {
  it('shows a watched canary, its limits and last check, the endpoint history and a rollback button', () => {
    const html = deploymentSection(watching);
    expect(html).toContain('canary on local/endpoints/recs-prod');
    expect(html).toContain('10% for 30 min; rolled back above 1.0% errors or p95 250 ms');
    expect(html).toContain('120 requests, 1 errors, p95 41 ms');
    expect(html).toContain('old 100% → old 90%, new 10%');
    expect(html).toContain('data-deployment-action="rollback"');
    expect(html).toContain('data-action="manage-endpoint"'); // opens the endpoint view (spec §5.1)
  });

  it('shows an automatic rollback with its reason and offers no second rollback', () => {
    const html = deploymentSection({ ...watching,
      deployment: { ...watching.deployment, status: 'rolled_back',
        canary: { ...watching.deployment.canary, status: 'breached', reason: 'error rate 25.0% exceeds the limit' },
        rollback: { automatic: true, reason: 'error rate 25.0% exceeds the limit', requested_by: 'trainyard (canary watch)' } },
      endpoint_history: [...watching.endpoint_history, { at: '2026-12-06T20:40:00Z', action: 'rolled_back',
        by: 'trainyard (canary watch)', from: { old: 90, new: 10 }, to: { old: 100, new: 0 }, reason: 'error rate 25.0%' }] });
    expect(html).toContain('breached');
    expect(html).toContain('automatic: error rate 25.0% exceeds the limit');
    expect(html).toContain('old 90%, new 10% → old 100%, new 0%');
    expect(html).not.toContain('data-deployment-action');
  });

  it('is empty for a run never deployed, and a run on its own endpoint cannot be rolled back', () => {
    expect(deploymentSection({ name: 'x' })).toBe('');
    expect(deploymentSection({ deployment: { status: 'deployed', endpoint_name: 'own' } })).not.toContain('data-deployment-action');
  });
});


describe('batchSection', () => {
  it('shows progress and, per output, state, rows and location', () => {
    const html = batchSection({ batch_prediction: {
      status: 'running', k: 10, users: 200, machine_count: 1, requested_by: 'dan@example.com',
      outputs: { gcs: { state: 'succeeded', rows: 200, location: 'gs://b/out/prediction-x', destination: 'gs://b/out' },
        bigquery: { state: 'running', rows: 50, failed_rows: 2, destination: 'my-proj.recs' } } } });
    expect(html).toContain('top-10 for 200 users · 63%');
    expect(html).toContain('gs://b/out/prediction-x');
    expect(html).toContain('50 (2 failed)');
    expect(html).toContain('my-proj.recs');
  });
  it('is empty for a run without batch predictions, and escapes what it shows', () => {
    expect(batchSection({})).toBe('');
    const html = batchSection({ batch_prediction: { status: 'failed', error: '<b>quota</b>', outputs: {} } });
    expect(html).toContain('&lt;b&gt;quota&lt;/b&gt;');
  });
});

describe('the batch predictions request', () => {
  const registered = { id: 'tr-9', name: 'recs', team: 'recs', status: 'completed', vertex_model_resource_name: 'local/models/recs',
    vertex_model_version: '2', gcs_artifacts_path: '/tmp/a' };
  it('is offered to a deployer on the run\'s team, for a run with a registered model, not while one is written', async () => {
    const { batchRequestButton } = await import('./runview.js');
    const deployer = { roles: { recs: 'deployer' } };
    expect(batchRequestButton(registered, deployer)).toContain('data-batch-request');
    expect(batchRequestButton(registered, { roles: { recs: 'trainer' } })).toBe('');
    expect(batchRequestButton(registered, { roles: { other: 'admin' } })).toBe('');
    expect(batchRequestButton(registered, { roles: {}, platform_admin: true })).toContain('data-batch-request');
    expect(batchRequestButton({ ...registered, vertex_model_resource_name: null }, deployer)).toBe('');
    expect(batchRequestButton({ ...registered, status: 'failed' }, deployer)).toBe('');
    expect(batchRequestButton({ ...registered, batch_prediction: { status: 'running' } }, deployer)).toContain('disabled');
  });
  it("sends the API's body: pasted ids (order kept, repeats dropped) or every user, k, the outputs given", async () => {
    const { batchRequestBody, parseUserIds } = await import('./runview.js');
    expect(parseUserIds('c1\nc2, c3;c1  c4\n\n')).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(batchRequestBody({ users: 'ids', ids: 'c1\nc2', k: '5', gcs_output: ' gs://b/recs/ ', bigquery_output: '' }))
      .toEqual({ users: ['c1', 'c2'], k: 5, gcs_output: 'gs://b/recs/' });
    expect(batchRequestBody({ users: 'all', ids: 'ignored', k: '', gcs_output: '', bigquery_output: 'p.recs' }))
      .toEqual({ users: 'all', bigquery_output: 'p.recs' });
    expect(batchRequestBody({ users: 'ids', ids: '', k: 'ten' })).toEqual({ users: [], k: 'ten' });
    expect(batchRequestBody({ users: 'file', users_file: ' gs://b/users.txt ', ids: 'c1', k: '10', gcs_output: 'gs://b/o' }))
      .toEqual({ users: 'gs://b/users.txt', k: 10, gcs_output: 'gs://b/o' });
  });
  it('the rollback button is only for a deployer on the run\'s team', () => {
    const run = { ...watching, team: 'recs' };
    expect(deploymentSection(run, { roles: { recs: 'deployer' } })).toContain('data-deployment-action="rollback"');
    expect(deploymentSection(run, { roles: { recs: 'viewer' } })).not.toContain('data-deployment-action');
  });
});

describe('the warm start row', () => {
  const asked = { training_params: { warm_restart: { enabled: true, source: 'champion' } }, warm_source: { source: 'champion' } };
  it('says what was asked before training, and what the weights started from after', () => {
    expect(warmStartText(asked)).toBe('asked: from the champion');
    expect(warmStartText({ ...asked, warm_start: { status: 'loaded', source: 'champion', source_id: 'models/9@3',
      tables: 2, rows_kept: 340, rows_new: 12, rows_dropped: 1 } }))
      .toBe('loaded from the champion models/9@3 · 2 embedding table(s): 340 rows kept, 12 new, 1 dropped');
    expect(warmStartText({ ...asked, warm_start: { status: 'fallback', source: 'champion', reason: 'no champion yet' } }))
      .toBe('fallback from the champion — no champion yet');
  });
  it('is empty for a run nobody asked to warm', () => {
    expect(warmStartText({ training_params: { warm_restart: { enabled: false } } })).toBe('');
  });
});
