// The GPU pre-flight (GET /api/gpu-availability): whether the project's quota holds a shape — advice shown beside
// a GPU choice (the wizard's step 3, the retry form), never a refusal. One question per shape.
import { get } from './api.js';

export const shapeKey = (s) => `${s.gpu_type}/${s.gpu_count}/${s.machine_count}/${s.preemptible}`;

export const preflightPath = (s) => `/api/gpu-availability?${new URLSearchParams({
  gpu_type: s.gpu_type, gpu_count: s.gpu_count, machine_count: s.machine_count, preemptible: s.preemptible })}`;

/** "✔ …" when the quota holds it, "⚠️ …" when it does not, the message alone when it is not known. */
export const preflightText = (a) => `${a.sufficient === false ? '⚠️ ' : a.sufficient ? '✔ ' : ''}${a.message || ''}`;

/** The pre-flight's words for `shape`, asked once and kept in `cache` (an object keyed by shapeKey). */
export async function checkShape(shape, cache, ask = get) {
  const key = shapeKey(shape);
  if (!(key in cache)) {
    try {
      cache[key] = preflightText(await ask(preflightPath(shape)));
    } catch (err) {
      cache[key] = `GPU availability is not known (${err.message})`;
    }
  }
  return cache[key];
}
