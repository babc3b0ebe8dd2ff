// Runs fn(item, index) over items with at most `width` running at a time; resolves to the results
// in the items' order. Used by tests and benchmarks that open many connections at once.
export async function pool(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const k = next++;
        out[k] = await fn(items[k], k);
      }
    }),
  );
  return out;
}
