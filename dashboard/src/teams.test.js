import { describe, expect, it } from 'vitest';
import { MAX_DISJUNCTIONS, mergeRows, noTeamMessage, teamChunks } from './teams.js';

const teams = (n) => Array.from({ length: n }, (_, i) => `t${i}`);

describe('teamChunks', () => {
  it('keeps a few teams in one query', () => {
    expect(teamChunks(['a', 'b'])).toEqual([['a', 'b']]);
  });

  it('splits at 30 values: the disjunction limit', () => {
    const chunks = teamChunks(teams(61));
    expect(chunks.map((c) => c.length)).toEqual([30, 30, 1]);
    expect(chunks.flat()).toEqual(teams(61));
  });

  it('counts the other in clauses: status in 2 values leaves 15 teams a query', () => {
    const chunks = teamChunks(teams(31), [['status', 'in', ['completed', 'not_blessed']], ['model_type', '==', 'x']]);
    expect(chunks.map((c) => c.length)).toEqual([15, 15, 1]);
    for (const chunk of chunks) expect(chunk.length * 2).toBeLessThanOrEqual(MAX_DISJUNCTIONS);
  });

  it('gives no query to a person on no team', () => {
    expect(teamChunks([])).toEqual([]);
  });
});

describe('mergeRows', () => {
  const at = (iso) => ({ toMillis: () => Date.parse(iso) });

  it('returns one listener as is', () => {
    expect(mergeRows([[{ id: 'b' }, { id: 'a' }]], { max: 1 })).toEqual([{ id: 'b' }]);
  });

  it('merges several newest first, capped', () => {
    const merged = mergeRows([[{ id: 'x', created_at: at('2026-01-03') }, { id: 'y', created_at: at('2026-01-01') }],
      [{ id: 'z', created_at: at('2026-01-02') }]], { orderField: 'created_at', max: 2 });
    expect(merged.map((r) => r.id)).toEqual(['x', 'z']);
  });
});

describe('noTeamMessage', () => {
  it('names the person and what to do', () => {
    const text = noTeamMessage({ email: 'nina@example.com', teams: [] });
    expect(text).toContain('nina@example.com is not on any team');
    expect(text).toContain('Ask an admin of your team');
  });

  it('tells a platform admin why her page is empty too', () => {
    expect(noTeamMessage({ email: 'root@example.com', platform_admin: true })).toContain('declares no team');
  });
});
