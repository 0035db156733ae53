// A list the server pages (shared/services/listing.py: search, filters and a signed page token, newest
// first), with the newest rows also arriving live from a Firestore listener and merged in: a row the
// listener sees replaces the server's copy (it is fresher), and a new row (one that matches the search,
// when there is one) joins the first page at the top (the page grows rather than pushing a row off its
// end, which the next page's token would then skip). The run list, the registry, the schedules, the
// catalog lists and the wizard's pickers all read through it.
import { toDate } from './format.js';

const newestFirst = (a, b) => ((toDate(b.created_at) || 0) - (toDate(a.created_at) || 0))
  || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/** A page's rows with the listener's: fresher copies in place, and new rows on top where `addNew`
 * (true, or a predicate: while searching, the rows that match the search). */
export function mergeLive(rows, live, addNew) {
  const fresh = new Map(live.map((r) => [r.id, r]));
  const merged = rows.map((r) => fresh.get(r.id) || r);
  if (addNew) {
    const wanted = typeof addNew === 'function' ? addNew : () => true;
    const have = new Set(merged.map((r) => r.id));
    const oldest = merged.length ? merged[merged.length - 1] : null;
    // Only rows newer than the page's last: an older one belongs to a later page.
    merged.push(...live.filter((r) => !have.has(r.id) && wanted(r) && (!oldest || newestFirst(r, oldest) < 0)));
  }
  return merged.sort(newestFirst);
}

/** Whether a schedule or catalog entry matches a search as the server's does (listing._named): every
 * term, in any case, is somewhere in one of `fields`. */
export function namedMatches(doc, text, fields) {
  const terms = (text || '').toLowerCase().split(/\s+/).filter(Boolean);
  const hay = fields.map((f) => String(doc[f] ?? '')).join(' ').toLowerCase();
  return terms.every((term) => hay.includes(term));
}

/** The query string of a schedule or catalog list: page_size, search (trimmed, left out when empty), filters. */
export function listQuery(size, search, filters = {}) {
  const q = new URLSearchParams({ page_size: String(size) });
  if (search?.trim()) q.set('search', search.trim());
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  return q.toString();
}

export class ListPages {
  /** fetchPage(queryString) → the API's page ({[key]: rows, next_page_token, total?}); key names its rows. */
  constructor(fetchPage, onChange, key = 'training_runs') {
    this.fetchPage = fetchPage;
    this.onChange = onChange;
    this.key = key;
    this.reset(null, false);
  }

  /** A new query: back to its first page (an older query's answer arriving late is dropped). */
  reset(query, addNew) {
    this.live = []; // the last query's listener's rows: the new one's follow
    this.liveMax = undefined;
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
      this.pages[index] = page[this.key] || [];
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

  /** The page after every page loaded so far ("Load more"). */
  more() {
    return this.load(this.pages.length);
  }

  /** The listener's rows; with `max` (its limit) a server row it would hold but does not has left its query
   * (a schedule cancelled elsewhere) and leaves the list too. */
  setLive(rows, max) {
    this.live = rows;
    this.liveMax = max;
    this.onChange();
  }

  withoutGone(rows) {
    if (this.liveMax == null) return rows;
    const held = new Set(this.live.map((r) => r.id));
    // A full listener holds the rows down to its oldest; one with room holds every row of its query.
    const oldest = this.live.length >= this.liveMax ? [...this.live].sort(newestFirst).at(-1) : null;
    return rows.filter((r) => held.has(r.id) || (oldest && newestFirst(r, oldest) > 0));
  }

  /** A row this page deleted leaves every loaded page at once: the listener's query no longer holds it,
   * but a server page (a search's, an older page's) would keep its copy until the next load. */
  drop(id) {
    this.pages = this.pages.map((page) => page && page.filter((r) => r.id !== id));
    this.live = this.live.filter((r) => r.id !== id);
    this.onChange();
  }

  get loaded() {
    return this.pages[this.index] !== undefined;
  }

  get hasNext() {
    return this.tokens.length > this.index + 1;
  }

  /** A page after every page loaded so far (a "Load more" list). */
  get hasMore() {
    return this.tokens.length > this.pages.length;
  }

  /** The page shown: the server's rows with the listener's merged (new rows only on the first page). */
  rows() {
    return mergeLive(this.withoutGone(this.pages[this.index] || []), this.live, this.index === 0 ? this.addNew : false);
  }

  /** Every page loaded so far, one list (the lists read on with "Load more"). */
  all() {
    return mergeLive(this.withoutGone(this.pages.flat()), this.live, this.addNew);
  }
}
