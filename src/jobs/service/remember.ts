/** Slots remembered as being refused or diagnosed by this node (the oldest are forgotten past it). */
export const MAX_REMEMBERED_SLOTS = 4096

/** Add to a set that forgets its oldest members past MAX_REMEMBERED_SLOTS. */
export function remember (set: Set<string>, key: string): void {
  set.add(key)
  if (set.size > MAX_REMEMBERED_SLOTS) set.delete(set.values().next().value!)
}
