// The run list's side of paging (GET /api/training-runs; the pages themselves: pages.js ListPages): its query
// string, and the server's search rule, for the live runs that join a search's first page.

// What the server searches (shared/domain/run_search.py): each term must start at a word of one of the
// run's names, or be the start of a word of its description.
const searchedValues = (run) => [run.id, run.name, run.ml_model, run.created_by, run.dataset?.name,
  run.base_experiment?.name, run.base_experiment?.display_name, run.run_number != null ? `#${run.run_number}` : null]
  .filter(Boolean).map((v) => String(v).toLowerCase().trim())
  .concat(String(run.description || '').toLowerCase().match(/[a-z0-9]+/g) || []);

/** Whether a run matches a search as the server's does: every term starts at a word of a value. */
export function searchMatches(run, text) {
  const terms = (text || '').toLowerCase().split(/\s+/).filter(Boolean);
  const values = searchedValues(run);
  return terms.every((term) => values.some((value) => value.startsWith(term)
    || [...value.matchAll(/[a-z0-9]+/g)].some((word) => value.startsWith(term, word.index))));
}

/** The query string of a run list: the status chip's statuses, model type, dataset, search, extras. */
export function runQuery(filters, statuses, size, extra = {}) {
  const q = new URLSearchParams({ page_size: String(size) });
  if (statuses?.length) q.set('status', statuses.join(','));
  if (filters.modelType) q.set('model_type', filters.modelType);
  if (filters.dataset) q.set('dataset', filters.dataset);
  if (filters.search?.trim()) q.set('search', filters.search.trim());
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}
