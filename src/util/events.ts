/**
 * The project's one event style: an EventTarget whose event names and
 * details are typed, without a dependency, so every layer (those that must
 * not know libp2p too) uses the same one. Listen with `on()` (returns the
 * function that stops listening) or the typed `addEventListener`; dispatch
 * with `emit()`.
 */
export class TypedEvents<EventMap extends { [K in keyof EventMap]: CustomEvent<unknown> }> extends EventTarget {
  on<K extends keyof EventMap & string> (type: K, listener: (event: EventMap[K]) => void, options?: AddEventListenerOptions): () => void {
    const wrapped = listener as unknown as EventListener
    this.addEventListener(type, wrapped, options)
    return () => { this.removeEventListener(type, wrapped) }
  }

  override addEventListener<K extends keyof EventMap & string> (type: K, listener: ((event: EventMap[K]) => void) | null, options?: AddEventListenerOptions | boolean): void
  override addEventListener (type: string, listener: EventListenerOrEventListenerObject | null, options?: AddEventListenerOptions | boolean): void
  override addEventListener (type: string, listener: unknown, options?: AddEventListenerOptions | boolean): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options)
  }

  override removeEventListener<K extends keyof EventMap & string> (type: K, listener: ((event: EventMap[K]) => void) | null, options?: EventListenerOptions | boolean): void
  override removeEventListener (type: string, listener: EventListenerOrEventListenerObject | null, options?: EventListenerOptions | boolean): void
  override removeEventListener (type: string, listener: unknown, options?: EventListenerOptions | boolean): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options)
  }

  /** Dispatch without letting a throwing listener break the emitter. */
  emit<K extends keyof EventMap & string> (type: K, detail: EventMap[K]['detail']): void {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch {
      // A listener's error is its own problem; the emitter carries on.
    }
  }
}
