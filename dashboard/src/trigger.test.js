// What started a run, on its card and in its run view; who may act on a run's team.
import { beforeEach, describe, expect, it } from 'vitest';
import { renderCard } from './cards.js';
import { setVocabulary } from './format.js';
import { mayAct } from './roles.js';
import { restartOf, triggerBadge, triggerOf, triggerText } from './trigger.js';
import served from './testdata/vocabulary.json';

beforeEach(() => setVocabulary(structuredClone(served)));

const at = '2026-12-06T02:00:00Z';

describe('the trigger of a run', () => {
  it('shows the typed trigger {kind, by, at, detail} when the run has one', () => {
    const run = { trigger: { kind: 'data', by: 'trainyard (data trigger)', at,
      detail: { source: 'gcs', location: 'gs://landing/events/2026-12-06.csv', version: '1733450400' } } };
    expect(triggerText(run)).toBe('📥 New data by trainyard (data trigger) · object gs://landing/events/2026-12-06.csv (generation 1733450400) · 2026-12-06 02:00 UTC');
    expect(triggerBadge(run)).toContain('📥 New data gs://landing/events/2026-12-06.csv');
    expect(triggerText({ trigger: { kind: 'manual', by: 'ana@example.com', at, detail: 'trainyard runs create' } }))
      .toBe('👤 Manual by ana@example.com · trainyard runs create · 2026-12-06 02:00 UTC');
    expect(triggerText({ trigger: { kind: 'gpu_fallback', by: 'trainyard (gpu fallback)', at, detail: { attempt: 2, reason: 'capacity' } } }))
      .toContain('🔀 GPU fallback by trainyard (gpu fallback) · attempt 2, reason capacity');
    expect(triggerText({ trigger: { kind: 'webhook', at } })).toContain('Webhook'); // a kind the page has no words for
  });
  it('reads what a run written before the typed field had', () => {
    expect(triggerOf({ schedule_id: 'ts-1', triggered_by: 'schedule', scheduled_at: at, created_by: 'dan@x' }))
      .toEqual({ kind: 'schedule', by: null, at, schedule_id: 'ts-1', slot: at });
    expect(triggerText({ schedule_id: 'ts-1', triggered_by: 'schedule', scheduled_at: at }))
      .toBe('⏰ Schedule · schedule ts-1 slot 2026-12-06 02:00 UTC · 2026-12-06 02:00 UTC');
    expect(triggerText({ schedule_id: 'ts-1', triggered_by: 'manual', created_at: at, created_by: 'dan@x' }))
      .toBe('▶ Run now · schedule ts-1 · 2026-12-06 02:00 UTC');
    const data = { schedule_id: 'ts-2', triggered_by: 'data', created_by: 'dan@x',
      data_trigger: { source: 'bigquery', location: 'acme.events.interactions', version: 'job_42', occurred_at: at, received_at: at } };
    expect(triggerText(data)).toBe('📥 New data · table acme.events.interactions (job job_42) · schedule ts-2 · 2026-12-06 02:00 UTC');
    expect(triggerText({ created_by: 'ana@example.com', created_at: at })).toBe('👤 Manual by ana@example.com · 2026-12-06 02:00 UTC');
    expect(triggerText({})).toBe('');
  });
  it("renders the run document's Trigger block (shared/domain/triggers.py): via, run now, slot, data, first", () => {
    expect(triggerText({ trigger: { kind: 'manual', by: 'ana@example.com', via: 'cli', at, attempt: 1 } }))
      .toBe('👤 Manual by ana@example.com (CLI) · 2026-12-06 02:00 UTC');
    expect(triggerText({ trigger: { kind: 'run_now', by: 'dan@example.com', at, attempt: 1, schedule_id: 'ts-1', slot: at } }))
      .toBe('▶ Run now by dan@example.com · schedule ts-1 · 2026-12-06 02:00 UTC');
    const data = { kind: 'data', by: 'trainyard (schedule)', at, attempt: 1, schedule_id: 'ts-1', slot: at,
      data: { source: 'gcs', location: 'gs://landing/a.csv', version: '17', occurred_at: at, received_at: at } };
    expect(triggerText({ trigger: data })).toBe('📥 New data · object gs://landing/a.csv (generation 17) · schedule ts-1 · 2026-12-06 02:00 UTC');
    expect(triggerBadge({ trigger: data })).toContain('📥 New data gs://landing/a.csv');
    const fallback = { trigger: { kind: 'gpu_fallback', by: 'trainyard (gpu fallback)', at, attempt: 2, first: data },
      attempt: 2, last_retry: { attempt: 2, by: 'trainyard (gpu fallback)', at } };
    expect(triggerText(fallback)).toBe('🔀 GPU fallback by trainyard (gpu fallback) · attempt 2 · 2026-12-06 02:00 UTC · '
      + 'first: 📥 New data · object gs://landing/a.csv (generation 17) · schedule ts-1 · 2026-12-06 02:00 UTC');
    expect(triggerBadge(fallback)).toContain('data-trigger="gpu_fallback"');
  });
  it('names the retry or GPU fallback that started the attempt under way', () => {
    const run = { created_by: 'ana@example.com', created_at: at, attempt: 2,
      attempts: [{ attempt: 1, retried_by: 'trainyard (gpu fallback)', retried_at: at }] };
    expect(restartOf(run)).toEqual({ kind: 'gpu_fallback', by: 'trainyard (gpu fallback)', at, attempt: 2 });
    expect(triggerText(run)).toBe('👤 Manual by ana@example.com · 2026-12-06 02:00 UTC · attempt 2: 🔀 GPU fallback by trainyard (gpu fallback)');
    expect(triggerBadge(run)).toContain('data-trigger="gpu_fallback"');
    const retried = { ...run, attempts: [], last_retry: { attempt: 2, by: 'dan@example.com', at } };
    expect(triggerText(retried)).toContain('attempt 2: 🔁 Retry by dan@example.com');
    expect(restartOf({ ...run, attempt: 1 })).toBe(null);
  });
  it('is on the run card, escaped', () => {
    const html = renderCard({ id: 'tr-1', name: 'r', status: 'pending', model_type: 'retrieval', created_at: at,
      trigger: { kind: 'data', at, detail: { source: 'folder', location: '/srv/<landing>/a.csv', version: '1' } } });
    expect(html).toContain('data-role="trigger"');
    expect(html).toContain('/srv/&lt;landing&gt;/a.csv');
    expect(html).not.toContain('<landing>');
  });
});

describe('who may act on a run\'s team', () => {
  const me = { email: 'v@x', platform_admin: false, roles: { recs: 'viewer', search: 'deployer' } };
  it('follows the role order viewer < trainer < deployer < admin, per team', () => {
    expect(mayAct(me, 'recs', 'deployer')).toBe(false);
    expect(mayAct(me, 'recs', 'viewer')).toBe(true);
    expect(mayAct(me, 'search', 'deployer')).toBe(true);
    expect(mayAct(me, 'search', 'admin')).toBe(false);
    expect(mayAct(me, 'other', 'viewer')).toBe(false);
    expect(mayAct({ ...me, platform_admin: true }, 'other', 'admin')).toBe(true);
    expect(mayAct(null, 'recs', 'deployer')).toBe(true); // not known yet: the API decides
  });
  it("reads the order from the server's vocabulary, and offers nothing without it", () => {
    setVocabulary({ ...structuredClone(served), roles: ['viewer', 'deployer', 'trainer', 'admin'] });
    expect(mayAct({ roles: { recs: 'trainer' } }, 'recs', 'deployer')).toBe(true);
    setVocabulary({ ...structuredClone(served), roles: [] });
    expect(mayAct({ roles: { recs: 'admin' } }, 'recs', 'deployer')).toBe(false);
  });
});

describe('what starts a schedule\'s runs', () => {
  it('names its clock and/or where new data lands', async () => {
    const { scheduleWhen } = await import('./trigger.js');
    expect(scheduleWhen({ schedule_type: 'daily', time_of_day: '03:30', timezone: 'UTC' })).toBe('daily at 03:30 UTC');
    expect(scheduleWhen({ schedule_type: 'weekly', day_of_week: 2, time_of_day: '03:30', timezone: 'Europe/Berlin' }))
      .toBe('weekly on Wednesday at 03:30 Europe/Berlin');
    expect(scheduleWhen({ schedule_type: 'data', data_trigger: { source: 'gcs', bucket: 'landing', prefix: 'events/', min_interval_minutes: 30 } }))
      .toBe('when new data lands in gs://landing/events/ (at most one run per 30 min)');
    expect(scheduleWhen({ schedule_type: 'daily', time_of_day: '02:00', timezone: 'UTC',
      data_trigger: { source: 'bigquery', table: 'p.d.t', min_interval_minutes: 60 } }))
      .toBe('daily at 02:00 UTC, and when new data lands in table p.d.t (at most one run per 60 min)');
  });
  it('says what became of the newest data event', async () => {
    const { lastDataEventText } = await import('./trigger.js');
    const s = { data_trigger: { source: 'folder', path: '/srv/in' } };
    expect(lastDataEventText(s)).toBe('no new data seen yet');
    expect(lastDataEventText({ ...s, last_data_trigger: { source: 'folder', location: '/srv/in/a.csv', occurred_at: at, outcome: 'fired', run_id: 'tr-9' } }))
      .toBe('last new data: file /srv/in/a.csv at 2026-12-06 02:00 UTC → started tr-9');
    expect(lastDataEventText({ ...s, last_data_trigger: { source: 'gcs', location: 'gs://b/x', occurred_at: at, outcome: 'recorded',
      reason: 'run tr-9 (data-triggered) is still queued or running' } })).toContain('→ recorded: run tr-9 (data-triggered) is still queued or running');
    expect(lastDataEventText({ schedule_type: 'daily' })).toBe('');
  });
});
