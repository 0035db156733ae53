// The run card's deployment line through a staged deploy: canary, promoted, rolling back, rolled back.
import { describe, expect, it } from 'vitest';
import { deploymentLine } from './cards.js';

const where = { endpoint_resource_name: 'local/endpoints/recs-prod' };
const canary = { percent: 10, watch_minutes: 30, status: 'watching', watch_until: '2026-12-06T21:00:00Z' };

describe('the card follows a staged deploy', () => {
  it('shows the canary, its share and until when it is watched', () => {
    expect(deploymentLine({ ...where, deployment: { status: 'canary', canary } }))
      .toContain('🐤 Canary: 10% on local/endpoints/recs-prod, watched until 2026-12-06 21:00 UTC');
    expect(deploymentLine({ ...where, deployment: { status: 'deployed', canary: { ...canary, status: 'promoted' } } }))
      .toContain('🟢 Deployed to local/endpoints/recs-prod (canary promoted)');
  });
  it('says who rolled it back and why, escaped', () => {
    expect(deploymentLine({ ...where, deployment: { status: 'rolling_back' } })).toContain('⏪ Rolling back on local/endpoints/recs-prod…');
    expect(deploymentLine({ ...where, deployment: { status: 'rolled_back',
      rollback: { automatic: true, reason: 'error rate 25.0% > 1.0%' } } })).toContain('↩️ Rolled back on local/endpoints/recs-prod (canary breached: error rate 25.0% &gt; 1.0%)');
    expect(deploymentLine({ ...where, deployment: { status: 'rolled_back',
      rollback: { automatic: false, requested_by: 'dan@example.com', reason: 'bad <b>recs</b>' } } }))
      .toContain('(by dan@example.com: bad &lt;b&gt;recs&lt;/b&gt;)');
  });
});
