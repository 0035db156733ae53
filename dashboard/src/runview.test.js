import { describe, expect, it } from 'vitest';
import { deploymentSection } from './runview.js';

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
