import type { z } from 'zod'

/** `steps[1].run` from zod's path `['steps', 1, 'run']`. */
export function formatPath (path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (typeof part === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`
    else out += `[${JSON.stringify(String(part))}]`
  }
  return out
}

const NOUNS: Record<string, string> = {
  string: 'a string',
  number: 'an integer',
  int: 'an integer',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  record: 'an object',
  null: 'null'
}

/** What is wrong, phrased to follow the field's name: "must be a non-empty string". */
function describe (issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required'
      return `must be ${NOUNS[issue.expected] ?? issue.expected}`
    case 'too_small': {
      const min = Number(issue.minimum)
      if (issue.origin === 'string') return min === 1 ? 'must be a non-empty string' : `must be at least ${min} characters long`
      if (issue.origin === 'array' || issue.origin === 'set') return min === 1 ? 'must not be empty' : `must have at least ${min} items`
      return `must be at least ${min}`
    }
    case 'too_big': {
      const max = Number(issue.maximum)
      if (issue.origin === 'string') return `must be at most ${max} characters long`
      if (issue.origin === 'array' || issue.origin === 'set') return `must have at most ${max} items`
      return `must be at most ${max}`
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    case 'unrecognized_keys':
      return `has unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    case 'invalid_union':
      return issue.message === 'Invalid input' ? 'has the wrong form' : issue.message
    default:
      return issue.message
  }
}

/**
 * One sentence for a zod failure: the first problem, with the path in front
 * (`steps[1].run must be a non-empty string`), and a count of the others.
 */
export function describeIssues (error: z.ZodError): string {
  const [first, ...rest] = error.issues
  if (first === undefined) return 'is invalid'
  const where = formatPath(first.path)
  const what = describe(first)
  const sentence = where === '' ? what.replace(/^has /, '') : `${where} ${what}`
  return rest.length === 0 ? sentence : `${sentence} (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})`
}
