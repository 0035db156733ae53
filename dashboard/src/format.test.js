import { beforeEach, describe, expect, it } from 'vitest';
import { renderCard } from './cards.js';
import { datasetSize, featureDims, featureDimsText, towerShapes } from './configinfo.js';
import {
  actionsFor, costText, gateSummary, modelCardHtml, gpuText, kpis, liftsText, lowerIsBetter, lrScheduleFor, minLrFor, notificationsText, primaryMetric, rankedExperiments,
  registryModels, retrieves, runQueryPlan, setVocabulary, sortByPrimary, statusChips, statusLabel, stepForField, toDate, trainingDefaults,
} from './format.js';
import { thresholdFor, zonedToUtc } from './wizard.js';
// The server's vocabulary (GET /api/vocabulary); tests/unit/test_vocabulary.py keeps this copy equal to it.
import served from './testdata/vocabulary.json';

const vocabulary = () => structuredClone(served);
beforeEach(() => setVocabulary(vocabulary()));

const base = { id: 'tr-1', name: 'product-recommender-v3', model_type: 'retrieval', run_number: 3, progress_percent: 55,
  gpu_config: { gpu_type: 'NVIDIA_L4', gpu_count: 2, preemptible: true }, base_experiment: { display_name: 'Exp #47', metrics: { recall_at_100: 0.44 } },
  dataset: { name: 'Q4 2024' }, evaluator_config: { blessing_threshold: { metric: 'recall_at_100', min_value: 0.4 } } };

describe('card actions per state', () => {
  const cases = {
    draft: [['view', 'submit'], ['delete']], awaiting_approval: [['view', 'approve'], ['reject', 'cancel']], pending: [['view'], ['cancel']], scheduled: [['view', 'run-now'], ['cancel']], submitting: [['view'], ['cancel']],
    running: [['view'], ['cancel']], cancelling: [['view'], []], failed: [['view', 'retry'], ['delete']],
    cancelled: [['view', 'retry'], ['delete']], not_blessed: [['view', 'push-anyway'], ['delete']],
    completed: [['view'], ['delete']],
  };
  for (const [status, [left, right]] of Object.entries(cases)) {
    it(status, () => expect(actionsFor({ ...base, status })).toEqual({ left, right }));
  }
  it('a registered, undeployed completed run can be deployed', () => {
    expect(actionsFor({ ...base, status: 'completed', vertex_model_resource_name: 'm' }).left).toEqual(['view', 'deploy']);
    expect(actionsFor({ ...base, status: 'completed', vertex_model_resource_name: 'm', is_deployed: true }).left).toEqual(['view']);
    expect(actionsFor({ ...base, status: 'completed', vertex_model_resource_name: 'm', is_deployed: true }).right).toEqual([]);
    expect(actionsFor({ ...base, status: 'completed', deployment: { status: 'deploying' } }).right).toEqual([]);
    expect(actionsFor({ ...base, status: 'not_blessed', push_anyway: { status: 'pushing' } }).right).toEqual([]);
  });
  it('a not-blessed run already pushed is not offered the push again, but its registered model can be deployed', () => {
    expect(actionsFor({ ...base, status: 'not_blessed', vertex_model_resource_name: 'm', pushed_anyway: true }).left).toEqual(['view', 'deploy']);
  });
  it('follows the server: an action it allows in another status shows there', () => {
    const v = vocabulary();
    v.actions.find((a) => a.name === 'retry').statuses.push('completed');
    setVocabulary(v);
    expect(actionsFor({ ...base, status: 'completed' })).toEqual({ left: ['view', 'retry'], right: ['delete'] });
  });
});

describe('the server\'s vocabulary', () => {
  it('primary metrics and directions come from it', () => {
    expect(primaryMetric('ranking')).toBe('test_rmse');
    expect(lowerIsBetter('test_rmse')).toBe(true);
    expect(lowerIsBetter('recall_at_100')).toBe(false);
    const v = vocabulary();
    v.model_types.push({ name: 'sequential', primary_metric: 'ndcg_at_10', gate_metrics: ['ndcg_at_10'] });
    v.metrics.push({ name: 'ndcg_at_10', lower_is_better: false });
    setVocabulary(v);
    expect(kpis([{ model_type: 'sequential', metrics: { ndcg_at_10: 0.3 } }, { model_type: 'sequential', metrics: { ndcg_at_10: 0.4 } }], 'sequential'))
      .toEqual({ count: 2, best: { ndcg_at_10: 0.4 }, keys: ['ndcg_at_10'] });
  });
  it('a status the server adds and the page does not know still renders, with its actions and a chip', () => {
    const v = vocabulary();
    v.statuses.push('quota_waiting');
    v.status_groups.active.push('quota_waiting');
    v.actions.find((a) => a.name === 'cancel').statuses.push('quota_waiting');
    setVocabulary(v);
    const html = renderCard({ ...base, status: 'quota_waiting', current_stage: 'Compile' });
    expect(html).toContain('training-run-card quota-waiting');
    expect(html).toContain('data-role="status">Quota waiting');
    expect(html).toContain('Status: quota_waiting');
    expect(html).toContain('data-action="cancel"');
    expect(statusLabel('quota_waiting')).toBe('Quota waiting');
    expect(statusChips().find(([key]) => key === 'active')[2]).toContain('quota_waiting');
    v.status_groups.active.pop();
    setVocabulary(v);
    expect(statusChips().map(([key]) => key)).toContain('quota_waiting');
  });
  it('chips: All, Running (the active statuses without a chip of their own), one per other status', () => {
    expect(statusChips().map(([key]) => key)).toEqual(['all', 'active', 'draft', 'awaiting_approval', 'scheduled', 'completed', 'failed', 'cancelled', 'not_blessed']);
    expect(statusChips()[1][2]).toEqual(['pending', 'submitting', 'running', 'cancelling']);
  });
  it('without a vocabulary a card still renders, offering only View', () => {
    setVocabulary({ statuses: [], status_groups: {}, actions: [], model_types: [], metrics: [] });
    expect(actionsFor({ ...base, status: 'failed' })).toEqual({ left: ['view'], right: [] });
    expect(renderCard({ ...base, status: 'failed', error_message: 'x' })).toContain('Error: x');
  });
});

describe('renderCard', () => {
  it('a finished run shows its lift over most-popular and over EASE', () => {
    const evaluation_results = { threshold_metric: 'recall_at_100', actual_value: 0.4, lift_percent: 33.33, lift_over_ease_percent: -2.91 };
    for (const status of ['completed', 'not_blessed']) {
      expect(renderCard({ ...base, status, evaluation_results })).toContain('Lift: +33.3% over most-popular · -2.9% over EASE');
    }
    expect(renderCard({ ...base, status: 'completed' })).not.toContain('Lift:');
  });
  it('a finished run shows its estimated cost; an upper bound and a partial one say so', () => {
    const estimated_cost = { total: 1.2345, currency: 'USD', prices_as_of: '2026-12-04', upper_bound: false, partial: false };
    expect(renderCard({ ...base, status: 'completed', estimated_cost })).toContain('Cost: ≈ $1.23');
    expect(renderCard({ ...base, status: 'failed', estimated_cost: { ...estimated_cost, total: 0.0042 } })).toContain('Cost: ≈ $0.0042');
    expect(costText({ estimated_cost: { ...estimated_cost, upper_bound: true, partial: true } })).toBe('≤ $1.23 (partial)');
    expect(renderCard({ ...base, status: 'running' })).not.toContain('data-role="cost"');
  });
  it('the notification ledger reads per event', () => {
    expect(notificationsText({ notifications_sent: {
      '1:failed:webhook-0': { status: 'sent' }, '1:failed:pubsub': { status: 'failed', error: 'topic x: denied' },
      '2:completed:webhook-0': { status: 'sent' } } }))
      .toBe('failed → webhook-0 sent, pubsub failed: topic x: denied; attempt 2 completed → webhook-0 sent');
    expect(notificationsText({})).toBe('');
  });
  it('running: class, progress, stage, epoch and live metric', () => {
    const html = renderCard({ ...base, status: 'running', current_stage: 'Train', current_epoch: 82, total_epochs: 150,
      live_metrics: { recall_at_100: 0.412 } });
    expect(html).toContain('training-run-card running');
    expect(html).toContain('55% (Epoch 82/150)');
    expect(html).toContain('Current R@100: 0.412');
    expect(html).toContain('2x L4 (Spot)');
  });
  it('not blessed uses the not-blessed class and says why', () => {
    const html = renderCard({ ...base, status: 'not_blessed', metrics: { recall_at_100: 0.285 } });
    expect(html).toContain('training-run-card not-blessed');
    expect(html).toContain('not pushed to registry');
  });
  it('a deployment shows on the card: deploying, deployed (after training), failed', () => {
    const done = { ...base, status: 'completed', vertex_model_resource_name: 'm', vertex_model_version: '1' };
    const deploying = renderCard({ ...done, deployment_status: 'deploying',
      deployment: { status: 'deploying', automatic: true, endpoint_name: 'recs-prod' } });
    expect(deploying).toContain('Deploying… to recs-prod');
    expect(deploying).toContain('(after training)');
    expect(deploying).toContain('Completed • Deploying');
    const deployed = renderCard({ ...done, deployment_status: 'deployed', is_deployed: true, endpoint_resource_name: 'local/endpoints/tr-1',
      deployment: { status: 'deployed', automatic: false, endpoint_name: 'recs-prod' } });
    expect(deployed).toContain('Deployed to local/endpoints/tr-1');
    expect(deployed).not.toContain('(after training)');
    const failed = renderCard({ ...done, deployment_status: 'failed',
      deployment: { status: 'failed', automatic: true, error: 'quota <exceeded>' } });
    expect(failed).toContain('Deploy failed: quota &lt;exceeded&gt;');
    expect(actionsFor({ ...done, deployment_status: 'failed', deployment: { status: 'failed' } }).left).toEqual(['view', 'deploy']);
    expect(renderCard(done)).not.toContain('data-role="deployment"');
  });
  it('escapes what users typed', () => {
    expect(renderCard({ ...base, status: 'failed', error_message: '<img src=x onerror=alert(1)>' })).not.toContain('<img');
  });
  it('renders 100 cards quickly', () => {
    const runs = Array.from({ length: 100 }, (_, i) => ({ ...base, id: `tr-${i}`, status: ['running', 'completed', 'failed', 'scheduled'][i % 4] }));
    const t0 = performance.now();
    const html = runs.map((r) => renderCard(r)).join('');
    expect(performance.now() - t0).toBeLessThan(100);
    expect(html.match(/<article/g)).toHaveLength(100);
  });
});

describe('helpers', () => {
  it('query plan: chips become status filters', () => {
    expect(runQueryPlan({ status: 'all' })).toEqual([]);
    expect(runQueryPlan({ status: 'failed', modelType: 'ranking', dataset: 'ds-1' })).toEqual([
      ['status', '==', 'failed'], ['model_type', '==', 'ranking'], ['dataset_id', '==', 'ds-1']]);
    expect(runQueryPlan({ status: 'active' })[0][1]).toBe('in');
  });
  it('GPU text: one machine as before, several named', () => {
    expect(gpuText(base.gpu_config)).toBe('2x L4 (Spot)');
    expect(gpuText({ ...base.gpu_config, machine_count: 1 })).toBe('2x L4 (Spot)');
    expect(gpuText({ ...base.gpu_config, machine_count: 3, preemptible: false })).toBe('3 machines × 2x L4');
  });
  it('API error fields map to wizard steps (schedule errors arrive under run_template.)', () => {
    expect(stepForField('name')).toBe(1);
    expect(stepForField('run_template.training_params.epochs')).toBe(2);
    expect(stepForField('gpu_config.gpu_count')).toBe(3);
    expect(stepForField('gpu_config.machine_count')).toBe(3);
    expect(stepForField('time_of_day')).toBe(3);
    expect(stepForField('body')).toBe(null);
  });
  it("the wizard's gate starts where the server's would: the served floor for a recall, empty for an error", () => {
    expect(thresholdFor('retrieval')).toEqual({ enabled: true, metric: 'recall_at_100', value: String(served.gate.default_min_value) });
    expect(thresholdFor('ranking')).toEqual({ enabled: true, metric: 'test_rmse', value: '' });
    setVocabulary({ ...vocabulary(), gate: { ...served.gate, default_min_value: 0.25 } });
    expect(thresholdFor('multitask').value).toBe('0.25');
  });
  it('time zones: wall clock to UTC, across DST', () => {
    expect(zonedToUtc('2026-01-17', '02:00', 'UTC')).toBe('2026-01-17T02:00:00Z');
    expect(zonedToUtc('2026-01-17', '02:00', 'Europe/Berlin')).toBe('2026-01-17T01:00:00Z');
    expect(zonedToUtc('2026-07-17', '02:00', 'Europe/Berlin')).toBe('2026-07-17T00:00:00Z');
  });
  it('timestamps from Firestore and from the API', () => {
    expect(toDate({ seconds: 10, nanoseconds: 0 }).getTime()).toBe(10000);
    expect(toDate('2026-01-01T00:00:00Z').getTime()).toBe(Date.UTC(2026, 0, 1));
    expect(toDate(null)).toBe(null);
  });
  it('registry groups versions by model name', () => {
    const models = registryModels([
      { ...base, id: 'a', status: 'completed', vertex_model_resource_name: 'm/1', vertex_model_name: 'recs', completed_at: '2026-01-01T00:00:00Z' },
      { ...base, id: 'b', status: 'completed', vertex_model_resource_name: 'm/2', vertex_model_name: 'recs', completed_at: '2026-01-02T00:00:00Z' },
      { ...base, id: 'c', status: 'completed' }]);
    expect(models).toHaveLength(1);
    expect(models[0].versions.map((v) => v.id)).toEqual(['b', 'a']);
  });
  it('best experiments: KPIs and ordering by the primary metric', () => {
    const exps = [{ model_type: 'ranking', metrics: { test_rmse: 0.9 } }, { model_type: 'ranking', metrics: { test_rmse: 0.7 } },
      { model_type: 'retrieval', metrics: { recall_at_100: 0.5 } }];
    expect(kpis(exps, 'ranking').best.test_rmse).toBe(0.7);
    expect(sortByPrimary(exps, 'ranking').map((e) => e.metrics.test_rmse)).toEqual([0.7, 0.9]);
  });
  it("ranks the server's best (older than anything listened to) with the listener's newest, fresher copies winning", () => {
    const old = { id: 'e-old', model_type: 'ranking', metrics: { test_rmse: 0.5 } };
    const listened = [{ id: 'e-new', model_type: 'ranking', metrics: { test_rmse: 0.8 } },
      { id: 'e-best', model_type: 'ranking', metrics: { test_rmse: 0.6 }, name: 'renamed' }];
    const ranked = rankedExperiments(listened, [old, { id: 'e-best', model_type: 'ranking', metrics: { test_rmse: 0.6 } }]);
    expect(sortByPrimary(ranked, 'ranking').map((e) => e.id)).toEqual(['e-old', 'e-best', 'e-new']);
    expect(ranked.find((e) => e.id === 'e-best').name).toBe('renamed');
    expect(kpis(ranked, 'ranking').best.test_rmse).toBe(0.5);
  });
});

describe('the inherited configuration in words (wizard)', () => {
  it('dataset size from its stats', () => {
    expect(datasetSize({ stats: { rows: 2450000, users: 98000, items: 36000 } })).toBe('2.45M rows, 98K users, 36K products');
    expect(datasetSize({ stats: { rows: 950 } })).toBe('950 rows');
    expect(datasetSize({})).toBe('size not recorded');
  });
  it('feature dimensions per tower side', () => {
    const fc = { features: [
      { name: 'customer_id', side: 'query', transform: { type: 'vocabulary', embedding_dim: 64 } },
      { name: 'ts_cyc', side: 'query', transform: { type: 'cyclical', components: ['hour_of_day', 'day_of_week'] } },
      { name: 'amount', side: 'query', transform: { type: 'normalize' } },
      { name: 'product_id', side: 'candidate', transform: { type: 'vocabulary', embedding_dim: 64 } },
      { name: 'cat_x_city', side: 'candidate', transform: { type: 'cross', columns: ['a', 'b'], hash_buckets: 100 } },
    ] };
    expect(featureDims(fc).query.total).toBe(64 + 4 + 1);
    expect(featureDims(fc).candidate.total).toBe(64 + 16);
    expect(featureDimsText(fc)).toBe('query 69d (customer_id: 64d, ts_cyc: 4d, amount: 1d) · candidate 80d (product_id: 64d, cat_x_city: 16d)');
  });
  it('tower shapes, with the ranking head where there is one', () => {
    expect(towerShapes({ model_type: 'retrieval', query_tower: [128, 64, 32], candidate_tower: [128, 64, 32], optimizer: 'adagrad', ranking_head: [256, 64] }))
      .toBe('query 128→64→32 · candidate 128→64→32 towers, adagrad optimizer');
    expect(towerShapes({ model_type: 'hybrid', query_tower: [64, 32], candidate_tower: [64, 32], ranking_head: [256, 64], optimizer: 'adam' }))
      .toBe('query 64→32 · candidate 64→32 · ranking head 256→64 towers, adam optimizer');
    expect(towerShapes({ model_type: 'retrieval', query_tower: [], candidate_tower: [], optimizer: 'adagrad' }))
      .toBe('query embedding-only · candidate embedding-only towers, adagrad optimizer');
  });
  it('the ranking head shows for the kinds whose towers the server says include it', () => {
    const shapes = (type) => towerShapes({ model_type: type, query_tower: [8], candidate_tower: [8], ranking_head: [4] });
    for (const kind of vocabulary().model_types) {
      expect(shapes(kind.name).includes('ranking head 4'), kind.name).toBe(kind.towers.includes('ranking_head'));
    }
    const v = vocabulary();
    v.model_types.find((m) => m.name === 'retrieval').towers.push('ranking_head');
    setVocabulary(v);
    expect(shapes('retrieval')).toContain('ranking head 4');
  });
});

describe('gateSummary', () => {
  it('shows the gate metric against the threshold and against the baseline with the required lift', () => {
    const run = { model_type: 'retrieval', evaluation_results: { threshold_metric: 'recall_at_100', actual_value: 0.398,
      threshold_value: 0.3, baseline_value: 0.298, lift_percent: 33.56, required_lift_percent: 15, passed: true } };
    expect(gateSummary(run)).toBe('R@100 0.398 · threshold ≥ 0.300 · most-popular 0.298 (+33.6% better, required ≥ 15%) → passed');
  });
  it('names predict-the-mean for error metrics and says when the gate failed', () => {
    const run = { model_type: 'ranking', evaluation_results: { threshold_metric: 'test_rmse', actual_value: 0.97,
      threshold_value: null, baseline_value: 1.0, lift_percent: 3, required_lift_percent: 5, passed: false } };
    expect(gateSummary(run)).toContain('predict-the-mean 1.00 (+3.0% better, required ≥ 5%) → not passed');
    expect(gateSummary({})).toBe('');
  });
  it('shows EASE beside most-popular, and says why a required EASE lift was not held', () => {
    const e = { threshold_metric: 'recall_at_100', actual_value: 0.4, threshold_value: 0.3, baseline_value: 0.3, lift_percent: 33.33,
      required_lift_percent: null, ease_value: 0.412, lift_over_ease_percent: -2.91, required_lift_over_ease_percent: -10, passed: true };
    expect(gateSummary({ model_type: 'retrieval', evaluation_results: e }))
      .toBe('R@100 0.400 · threshold ≥ 0.300 · most-popular 0.300 (+33.3% better) · EASE 0.412 (-2.9% better, required ≥ -10%) → passed');
    const skipped = { ...e, ease_value: null, lift_over_ease_percent: null, ease_skipped_reason: 'the catalog has more than 10,000 items' };
    expect(gateSummary({ model_type: 'retrieval', evaluation_results: skipped }))
      .toContain('most-popular 0.300 (+33.3% better) · EASE not scored, its lift not held: the catalog has more than 10,000 items → passed');
    expect(liftsText({ model_type: 'retrieval', evaluation_results: e })).toBe('+33.3% over most-popular · -2.9% over EASE');
    expect(liftsText({ model_type: 'retrieval', evaluation_results: skipped })).toBe('+33.3% over most-popular');
  });
});

describe('wizard training defaults', () => {
  it('the min LR is the spec 0.001 unless the inherited rate is not above it (the served rule)', () => {
    expect(minLrFor(0.1)).toBe(0.001);
    expect(minLrFor(0.001)).toBeCloseTo(0.00001);
  });
  it('a schedule starts from the served defaults, its floor from the learning rate', () => {
    expect(lrScheduleFor('reduce_on_plateau', 0.001)).toEqual({ type: 'reduce_on_plateau', factor: 0.5, patience: 3,
      monitor: 'val_loss', min_lr: 0.001 * 0.01 });
    expect(lrScheduleFor('warmup_cosine', 0.1)).toEqual({ type: 'warmup_cosine', warmup_epochs: 1 });
    expect(lrScheduleFor('cosine', 0.1)).toEqual({ type: 'cosine' });
  });
  it('the defaults are a copy: a form that edits them leaves the next one untouched', () => {
    const params = trainingDefaults();
    expect([params.epochs, params.batch_size, params.learning_rate, params.early_stopping.patience]).toEqual([150, 8192, 0.1, 10]);
    params.early_stopping.patience = 99;
    expect(trainingDefaults().early_stopping.patience).toBe(10);
  });
  it('only a kind that retrieves has a retrieval index', () => {
    expect(['retrieval', 'ranking', 'multitask'].map(retrieves)).toEqual([true, false, true]);
  });
});

describe('model card', () => {
  const card = {
    model_name: 'recs', model_version: '4',
    gate: { decision: 'blessed: recall_at_100 0.6000; threshold 0.5' },
    data: { dataset: 'q4', source: { kind: 'files', uri: 'gs://b/d.csv' }, rows_per_split: { train: 800, test: 100 },
      findings: ['column <price> had 3 non-numbers'] },
    metrics: { recall_at_100: 0.6 }, baselines: { ease: { recall_at_100: 0.65 }, most_popular: { recall_at_100: 0.3 } },
    training: { epochs: [{ epoch: 1, loss: 1, val_loss: null, metrics: { recall_at_100: 0.3 } }] },
    model: { model_type: 'retrieval', model_config: {}, training_params: {} },
    lineage: { run_name: 'recs', run_number: 3, run_id: 'tr-1', attempt: 1, model_resource_name: 'm', model_version_id: '4' },
  };
  it('shows the gate, rows, the metrics beside each baseline and the curve, escaped', () => {
    const html = modelCardHtml(card);
    expect(html).toContain('Model card: recs, version 4');
    expect(html).toContain('blessed: recall_at_100 0.6000');
    expect(html).toContain('train 800, test 100');
    expect(html).toContain('<th>metric</th><th>model</th><th>ease</th><th>most_popular</th>');
    expect(html).toContain('column &lt;price&gt;');
    expect(html).not.toContain('<price>');
    expect(html).toContain('Experiment: none');
  });
});
