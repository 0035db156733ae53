// The retry form's logic: out of memory told as the server tells it (the same fixture as
// tests/unit/test_failure_kinds.py), the "More GPU memory" preset, the body it posts, and the GPU pre-flight.
import { beforeEach, describe, expect, it } from 'vitest';
import { setVocabulary } from './format.js';
import served from './testdata/vocabulary.json';
import messages from './testdata/failure_messages.json';

beforeEach(() => setVocabulary(structuredClone(served)));
const { changesText, formStart, moreGpuMemory, outOfMemory, retryBody, wantsMoreGpuMemory } = await import('./retryform.js');
const { checkShape, preflightPath } = await import('./gpupreflight.js');

const failed = (error_message, error_stage = 'Train') => ({
  status: 'failed', error_message, error_stage,
  gpu_config: { gpu_type: 'NVIDIA_L4', gpu_count: 2, machine_count: 1, preemptible: true, machine_type: 'g2-standard-24' },
  training_params: { epochs: 150, batch_size: 8192, learning_rate: 0.1 },
});

describe('out of memory, from the root cause', () => {
  it.each(messages.out_of_memory)('is out of memory: %s', (text) => expect(outOfMemory(text)).toBe(true));
  it.each(messages.not_out_of_memory)('is not: %s', (text) => expect(outOfMemory(text)).toBe(false));
  it('suggests more GPU memory only for the Trainer of a failed run', () => {
    const oom = 'ResourceExhaustedError: OOM when allocating tensor with shape[8192,1048576]';
    expect(wantsMoreGpuMemory(failed(oom))).toBe(true);
    expect(wantsMoreGpuMemory(failed(oom, ''))).toBe(true); // stage not recorded: the Trainer's
    expect(wantsMoreGpuMemory(failed('MemoryError: Unable to allocate 3 GiB', 'Transform'))).toBe(false);
    expect(wantsMoreGpuMemory({ ...failed(oom), status: 'cancelled' })).toBe(false);
    expect(wantsMoreGpuMemory(failed("KeyError: 'user_id'"))).toBe(false);
    setVocabulary({ failure_kinds: {} }); // an older server: no suggestion, no error
    expect(wantsMoreGpuMemory(failed(oom))).toBe(false);
  });
});

describe('the failed card', () => {
  it('offers "Retry with more GPU memory" when the Trainer ran out of memory, else Retry', async () => {
    const { renderCards } = await import('./cards.js');
    const card = (run) => renderCards([{ id: 'r1', name: 'recs', attempt: 1, created_at: '2026-12-06T00:00:00Z', ...run }]);
    expect(card(failed('CUDA out of memory'))).toContain('data-action="retry" data-run="r1">Retry with more GPU memory</button>');
    expect(card(failed("KeyError: 'user_id'"))).toContain('data-action="retry" data-run="r1">Retry</button>');
  });
});

describe('the form', () => {
  it('starts from the run as it last ran', () => {
    expect(formStart(failed('x'))).toEqual({ gpu_type: 'NVIDIA_L4', gpu_count: 2, machine_count: 1, preemptible: true,
      epochs: 150, batch_size: 8192 });
    expect(formStart({ gpu_config: { gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 1, preemptible: false }, training_params: {} }))
      .toMatchObject({ machine_count: 1, preemptible: false });
  });
  it('"More GPU memory" moves to the next GPU type up by memory, keeping the count it can', () => {
    const start = formStart(failed('OOM'));
    expect(moreGpuMemory(start)).toEqual({ form: { ...start, gpu_type: 'NVIDIA_TESLA_A100' },
      says: 'A100 (40 GB each, was 24 GB) × 2' });
    const t4 = { ...start, gpu_type: 'NVIDIA_TESLA_T4', gpu_count: 1 };
    expect(moreGpuMemory(t4).form).toMatchObject({ gpu_type: 'NVIDIA_L4', gpu_count: 1 });
    const v100 = { ...start, gpu_type: 'NVIDIA_TESLA_V100', gpu_count: 8 };
    expect(moreGpuMemory(v100).form).toMatchObject({ gpu_type: 'NVIDIA_L4', gpu_count: 8 });
  });
  it('on the largest GPU: more of them, then half the batch, then nothing', () => {
    const a100 = { gpu_type: 'NVIDIA_TESLA_A100', gpu_count: 2, machine_count: 1, preemptible: true, epochs: 5, batch_size: 8192 };
    expect(moreGpuMemory(a100)).toEqual({ form: { ...a100, gpu_count: 4 }, says: '4 GPUs instead of 2: the batch splits across them' });
    expect(moreGpuMemory({ ...a100, gpu_count: 8 }).form).toEqual({ ...a100, gpu_count: 8, batch_size: 4096 });
    expect(moreGpuMemory({ ...a100, gpu_count: 8, batch_size: 1 })).toBe(null);
  });
  it('posts every field, as numbers where they are, and leaves a bad one for the API to name', () => {
    const form = { gpu_type: 'NVIDIA_TESLA_A100', gpu_count: '2', machine_count: '3', preemptible: false, epochs: '40', batch_size: '' };
    expect(retryBody(form)).toEqual({ gpu_config: { gpu_type: 'NVIDIA_TESLA_A100', gpu_count: 2, machine_count: 3, preemptible: false },
      training_params: { epochs: 40, batch_size: '' } });
    expect(retryBody({ ...form, epochs: 'many' }).training_params.epochs).toBe('many');
  });
  it('says what it changes', () => {
    const start = formStart(failed('OOM'));
    expect(changesText(start, start)).toEqual([]);
    expect(changesText({ ...start, gpu_type: 'NVIDIA_TESLA_A100', preemptible: false, epochs: '40' }, start))
      .toEqual(['GPU: 2x A100 (was 2x L4 (Spot))', 'epochs: 40 (was 150)']);
  });
});

describe('the GPU pre-flight', () => {
  it('asks once per shape and keeps the answer', async () => {
    const asked = [];
    const ask = async (path) => { asked.push(path); return { sufficient: false, message: 'needs 8, quota 4' }; };
    const cache = {};
    const shape = { gpu_type: 'NVIDIA_TESLA_A100', gpu_count: 8, machine_count: 1, preemptible: true };
    expect(await checkShape(shape, cache, ask)).toBe('⚠️ needs 8, quota 4');
    expect(await checkShape(shape, cache, ask)).toBe('⚠️ needs 8, quota 4');
    expect(asked).toEqual([preflightPath(shape)]);
    expect(preflightPath(shape)).toBe('/api/gpu-availability?gpu_type=NVIDIA_TESLA_A100&gpu_count=8&machine_count=1&preemptible=true');
    const down = async () => { throw new Error('quota service down'); };
    expect(await checkShape({ ...shape, gpu_count: 4 }, cache, down)).toBe('GPU availability is not known (quota service down)');
  });
});
