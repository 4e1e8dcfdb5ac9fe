/**
 * The pages of a cursor-paged list, fetched lazily as they are iterated:
 * `for await (const session of client.sessions.list({ userId }))` walks every item of every page;
 * {@link pages} walks the pages; {@link firstPage} fetches one. Each page is one HTTP call (with the
 * SDK's retries); iteration stops after the page whose `next_cursor` is null, and throws what a
 * call throws ({@link ThreadlineError}).
 */
export class Paginator<Item, Page extends { next_cursor: string | null }> implements AsyncIterable<Item> {
  constructor(
    private readonly fetchPage: (cursor: string | undefined) => Promise<Page>,
    private readonly itemsOf: (page: Page) => Item[],
    private readonly cursor?: string,
  ) {}

  /** The first page (from the cursor given to the list call, if any). */
  firstPage(): Promise<Page> {
    return this.fetchPage(this.cursor);
  }

  /** Every page, in order. */
  async *pages(): AsyncGenerator<Page, void, undefined> {
    let cursor = this.cursor;
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield page;
      if (page.next_cursor === null || page.next_cursor === '') return;
      cursor = page.next_cursor;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Item, void, undefined> {
    for await (const page of this.pages()) yield* this.itemsOf(page);
  }

  /** The items of every page (at most `max` of them), as one array. */
  async toArray(max = Infinity): Promise<Item[]> {
    const items: Item[] = [];
    if (max <= 0) return items;
    for await (const item of this) {
      items.push(item);
      if (items.length >= max) break;
    }
    return items;
  }
}
