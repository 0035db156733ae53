// A list of runs paged by the server (GET /api/training-runs: search, filters and a page token,
// shared/services/listing.py), with the newest runs also arriving live from a Firestore listener and
// merged in: a run the listener sees replaces the server's copy (it is fresher), and a new run (one
// that matches the search, when there is one) joins the first page at the top (the page grows rather
// than pushing a run off its end, which the next page's token would then skip).
import { toDate } from './format.js';

const newestFirst = (a, b) => ((toDate(b.created_at) || 0) - (toDate(a.created_at) || 0))
  || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

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

/** A page's rows with the listener's: fresher copies in place, and new runs on top where `addNew`
 * (true, or a predicate: while searching, the runs that match the search). */
export function mergeLive(rows, live, addNew) {
  const fresh = new Map(live.map((r) => [r.id, r]));
  const merged = rows.map((r) => fresh.get(r.id) || r);
  if (addNew) {
    const wanted = typeof addNew === 'function' ? addNew : () => true;
    const have = new Set(merged.map((r) => r.id));
    const oldest = merged.length ? merged[merged.length - 1] : null;
    // Only runs newer than the page's last: an older one belongs to a later page.
    merged.push(...live.filter((r) => !have.has(r.id) && wanted(r) && (!oldest || newestFirst(r, oldest) < 0)));
  }
  return merged.sort(newestFirst);
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

export class RunPages {
  /** fetchPage(queryString) → the API's page ({training_runs, next_page_token, total}). */
  constructor(fetchPage, onChange) {
    this.fetchPage = fetchPage;
    this.onChange = onChange;
    this.reset(null, false);
  }

  /** A new query: back to its first page (an older query's answer arriving late is dropped). */
  reset(query, addNew) {
    this.live = []; // the last query's listener's rows: the new one's follow
    this.query = query;
    this.addNew = addNew;
    this.pages = [];
    this.tokens = [null];
    this.index = 0;
    this.total = null;
    this.loading = false;
    this.error = null;
    this.generation = (this.generation || 0) + 1;
    return query ? this.load(0) : Promise.resolve();
  }

  async load(index) {
    if (this.pages[index] || index >= this.tokens.length) {
      this.index = Math.min(index, this.pages.length - 1);
      this.onChange();
      return;
    }
    const generation = this.generation;
    this.loading = true;
    this.onChange();
    const q = new URLSearchParams(this.query);
    if (this.tokens[index]) q.set('page_token', this.tokens[index]);
    try {
      const page = await this.fetchPage(q.toString());
      if (generation !== this.generation) return;
      this.pages[index] = page.training_runs;
      this.tokens[index + 1] = page.next_page_token || undefined;
      if (!page.next_page_token) this.tokens.length = index + 1;
      this.total = page.total ?? null;
      this.index = index;
      this.error = null;
    } catch (err) {
      if (generation !== this.generation) return;
      this.error = err;
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.onChange();
      }
    }
  }

  setLive(rows) {
    this.live = rows;
    this.onChange();
  }

  /** A run this page deleted leaves every loaded page at once: the listener's query no longer holds it,
   * but a server page (a search's, an older page's) would keep its copy until the next load. */
  drop(runId) {
    this.pages = this.pages.map((page) => page && page.filter((r) => r.id !== runId));
    this.live = this.live.filter((r) => r.id !== runId);
    this.onChange();
  }

  get loaded() {
    return this.pages[this.index] !== undefined;
  }

  get hasNext() {
    return this.tokens.length > this.index + 1;
  }

  /** A page after every page loaded so far (the registry's "Load more"). */
  get hasMore() {
    return this.tokens.length > this.pages.length;
  }

  /** The page shown: the server's rows with the listener's merged (new runs only on the first page). */
  rows() {
    return mergeLive(this.pages[this.index] || [], this.live, this.index === 0 ? this.addNew : false);
  }

  /** Every page loaded so far, one list (the registry reads on with "Load more"). */
  all() {
    return mergeLive(this.pages.flat(), this.live, this.addNew);
  }
}
