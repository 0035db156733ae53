import { describe, expect, it } from 'vitest';
import { dataTriggerFor, warmRestartFor } from './wizard.js';
import { stepForField } from './format.js';

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
