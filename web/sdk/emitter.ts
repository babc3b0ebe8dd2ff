// A small typed event emitter for the SDK's public events.
export type Handler<T> = (payload: T) => void;

export class Emitter<Events extends Record<string, unknown>> {
  private handlers = new Map<keyof Events, Set<Handler<never>>>();

  on<K extends keyof Events>(name: K, fn: Handler<Events[K]>): void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(fn as Handler<never>);
  }

  off<K extends keyof Events>(name: K, fn: Handler<Events[K]>): void {
    this.handlers.get(name)?.delete(fn as Handler<never>);
  }

  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    for (const fn of this.handlers.get(name) ?? []) {
      try {
        (fn as Handler<Events[K]>)(payload);
      } catch (e) {
        // A host page's handler must never break the session.
        console.error('[co-browsing] event handler failed', e);
      }
    }
  }
}
