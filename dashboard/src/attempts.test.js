import { describe, expect, it } from 'vitest';
import { renderCard } from './cards.js';
import { attemptRows, attemptsTable } from './attempts.js';

const l4 = { gpu_type: 'NVIDIA_L4', gpu_count: 2, machine_type: 'g2-standard-24', region: null, preemptible: true };
const t4 = { gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 2, machine_type: 'n1-standard-16', region: 'us-central1', preemptible: false };
const moved = { id: 'tr-1', name: 'recs', status: 'running', attempt: 2, model_type: 'retrieval',
  gpu_config: { ...t4, fallbacks: [t4] },
  attempts: [{ attempt: 1, status: 'failed', shape: l4, ended_because: 'capacity', retried_by: 'trainyard (gpu fallback)' }] };

describe('GPU fallback attempts', () => {
  it('lists each attempt with its shape and why it ended', () => {
    expect(attemptRows(moved).map((r) => [r.attempt, r.shape.gpu_type, r.outcome])).toEqual(
      [[1, 'NVIDIA_L4', 'capacity'], [2, 'NVIDIA_TESLA_T4', 'running']]);
    const table = attemptsTable(moved);
    expect(table).toContain('2 × NVIDIA_L4 on g2-standard-24 (Spot)');
    expect(table).toContain('2 × NVIDIA_TESLA_T4 on n1-standard-16 in us-central1 (on-demand)');
    expect(table).toContain('trainyard (gpu fallback)');
  });
  it('shows them on the card', () => {
    expect(renderCard(moved)).toContain('GPU attempts: 1: 2×NVIDIA_L4 capacity → 2: 2×NVIDIA_TESLA_T4 us-central1 running');
  });
  it('shows nothing new for a run without fallbacks', () => {
    const plain = { ...moved, attempt: 1, attempts: [], gpu_config: l4 };
    expect(attemptRows(plain)).toEqual([]);
    expect(renderCard(plain)).not.toContain('GPU attempts');
  });
});
