// What a picker over a catalog list shows (the wizard's config modal, its experiment search, the run list's
// dataset filter): the list read from the server page by page (pages.js), with a search box. While the whole
// list came in its first page, the search filters it here at once (`searchHere` may look past what the
// server searches: a config's summary line); a longer list is searched by the server, whatever its size.
import { ListPages, listQuery } from './pages.js';

export const PICKER_PAGE = 100; // the API's largest page (shared/services/listing.MAX_PAGE_SIZE)

export class CatalogPicker {
  /** fetchPage(queryString) → a catalog page ({items, next_page_token}); filters: the list's own (model_type). */
  constructor(fetchPage, onChange, { filters = {}, searchHere = null, size = PICKER_PAGE } = {}) {
    this.pages = new ListPages(fetchPage, onChange, 'items');
    this.filters = filters;
    this.searchHere = searchHere;
    this.size = size;
    this.text = '';
    this.local = null; // every entry, when one page held them all and searchHere is given
  }

  /** The unsearched first page; it tells whether the search can stay here. */
  async start() {
    const loading = this.pages.reset(listQuery(this.size, '', this.filters), false);
    const generation = this.pages.generation; // a search typed meanwhile replaced this query: it decides
    await loading;
    if (generation === this.pages.generation && this.searchHere && !this.pages.hasMore && !this.pages.error) {
      this.local = this.pages.all();
      this.pages.onChange();
    }
  }

  /** A new search: filtered here when every entry is here, else sent to the server (its first page). */
  search(text) {
    this.text = text || '';
    if (this.local) {
      this.pages.onChange();
      return Promise.resolve();
    }
    return this.pages.reset(listQuery(this.size, this.text, this.filters), false);
  }

  more() {
    return this.local ? Promise.resolve() : this.pages.more();
  }

  /** The entries shown, in the list's order. */
  get items() {
    return this.local ? this.searchHere(this.local, this.text) : this.pages.all();
  }

  get hasMore() {
    return !this.local && this.pages.hasMore;
  }

  get loading() {
    return this.pages.loading;
  }

  get error() {
    return this.pages.error;
  }
}
