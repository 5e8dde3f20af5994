/**
 * An EventTarget whose event names and details are typed, without a
 * dependency: the layers that must not know libp2p (jobs, sandbox) use it
 * where libp2p code would use TypedEventEmitter.
 */
export class TypedEvents<EventMap extends Record<string, CustomEvent<unknown>>> extends EventTarget {
  on<K extends keyof EventMap & string> (type: K, listener: (event: EventMap[K]) => void, options?: AddEventListenerOptions): () => void {
    const wrapped = listener as unknown as EventListener
    this.addEventListener(type, wrapped, options)
    return () => { this.removeEventListener(type, wrapped) }
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
