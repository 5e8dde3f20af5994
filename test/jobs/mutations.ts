/** Mutations of valid values, for holding a hand-written check to its schema (fast-bodies.test.ts, fast-spec.test.ts). */

export type Path = Array<string | number>

/**
 * Arrays and plain objects are walked into; anything else (a Date, say) is a leaf, because
 * structuredClone keeps only a Date's time: a member added to one would vanish in the next copy.
 */
function isContainer (value: unknown): value is Record<string | number, unknown> {
  if (Array.isArray(value)) return true
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/** Every path to a member or array item of `value`. */
export function paths (value: unknown, prefix: Path = []): Path[] {
  if (!isContainer(value)) return []
  const out: Path[] = []
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value)
  for (const key of keys) {
    const path = [...prefix, key]
    out.push(path, ...paths((value as Record<string | number, unknown>)[key], path))
  }
  return out
}

/** A copy of `value` with the thing at `path` replaced, deleted (undefined: deleted) or given an extra member. */
export function mutate (value: unknown, path: Path, replacement: unknown, action: 'set' | 'delete' | 'extra'): unknown {
  const copy = structuredClone(value)
  let parent = copy as Record<string | number, unknown>
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (action === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1)
    else delete parent[last]
  } else if (action === 'extra') {
    const target = parent[last]
    if (isContainer(target) && !Array.isArray(target)) target.extra = replacement
    else parent[last] = replacement
  } else {
    parent[last] = replacement
  }
  return copy
}
