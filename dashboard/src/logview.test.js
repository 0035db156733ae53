import { describe, expect, it } from 'vitest';
import { logLineHtml, logsPath, nextAsk } from './logview.js';

describe('the Logs tab', () => {
  it('asks the server for one stage and severity, and pages on with its token', () => {
    expect(logsPath('tr-1', { stage: 'Transform', severity: 'WARNING' }, 'tok/en'))
      .toBe('/api/training-runs/tr-1/logs?page_size=200&stage=Transform&severity=WARNING&page_token=tok%2Fen');
    expect(logsPath('tr-1', { stage: '', severity: '' })).toBe('/api/training-runs/tr-1/logs?page_size=200');
  });

  it('follows from where the last page ended once there is no more now', () => {
    expect(nextAsk({ next_page_token: 'more', follow_token: 'more' })).toEqual({ next: 'more', tail: 'more' });
    expect(nextAsk({ next_page_token: null, follow_token: 'end' })).toEqual({ next: '', tail: 'end' });
    expect(nextAsk({ entries: [] })).toEqual({ next: '', tail: '' }); // a source that cannot resume: nothing to follow
  });

  it('labels each line with its stage and where it came from, escaped', () => {
    const html = logLineHtml({ timestamp: '2026-12-07T03:00:00.000000000Z', severity: 'ERROR', stage: 'Transform',
      origin: 'dataflow-worker', message: '<b>out of memory</b>' });
    expect(html).toContain('[Transform]');
    expect(html).toContain('Dataflow worker');
    expect(html).toContain('sev-error');
    expect(html).toContain('&lt;b&gt;out of memory&lt;/b&gt;');
    expect(logLineHtml({ message: 'no stage yet' })).toContain('[—]');
  });
});
