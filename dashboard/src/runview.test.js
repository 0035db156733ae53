// The run view's batch predictions section: progress, rows and where, per output.
import { describe, expect, it, vi } from 'vitest';

vi.mock('./live.js', () => ({ listenHistory: () => () => {}, listenRun: () => () => {} }));
vi.mock('chart.js', () => {
  const Chart = class {}; Chart.register = () => {};
  return { Chart, CategoryScale: {}, Legend: {}, LineController: {}, LineElement: {}, LinearScale: {}, LogarithmicScale: {}, PointElement: {}, Tooltip: {} };
});

const { batchSection } = await import('./runview.js');

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
