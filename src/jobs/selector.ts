import { InvalidInputError } from '../util/errors.js'
import { LABEL_PATTERN, MAX_LABEL_LENGTH, MAX_LABELS_PER_SELECTOR } from './constants.js'

/**
 * A platform selector is a set of labels (`linux-x64`, `debian-12`); a node
 * matches it when it offers every label. Its name, used in claims, results and
 * running lists, is the labels sorted and joined by `+`.
 */

/** Why `label` is not a valid label, or undefined when it is. */
export function labelProblem (label: string): string | undefined {
  if (label.length === 0) return 'a label must not be empty'
  if (label.length > MAX_LABEL_LENGTH) return `label "${label.slice(0, 40)}…" is longer than ${MAX_LABEL_LENGTH} characters`
  if (!LABEL_PATTERN.test(label)) return `label "${label}" must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit`
  return undefined
}

/** Sorted, de-duplicated labels after checking each; throws InvalidInputError naming the bad one. */
export function normaliseLabels (labels: readonly string[]): string[] {
  if (labels.length === 0) throw new InvalidInputError('a platform selector needs at least one label')
  for (const label of labels) {
    const problem = labelProblem(label)
    if (problem !== undefined) throw new InvalidInputError(problem)
  }
  const unique = [...new Set(labels)].sort()
  if (unique.length > MAX_LABELS_PER_SELECTOR) throw new InvalidInputError(`a platform selector has at most ${MAX_LABELS_PER_SELECTOR} labels, got ${unique.length}`)
  return unique
}

/** The selector's name: labels sorted and joined by `+` (`debian-12+linux-x64`). */
export function selectorName (labels: readonly string[]): string {
  return normaliseLabels(labels).join('+')
}

/** Labels of a selector written as `a+b` (any order; the result is sorted). */
export function parseSelector (text: string): string[] {
  return normaliseLabels(text.split('+'))
}

/** True when a node offering `offered` labels can run a platform needing `needed`. */
export function offersAll (offered: readonly string[], needed: readonly string[]): boolean {
  return needed.every((label) => offered.includes(label))
}

/** The `running` form of a slot in presence heartbeats: `<job id>/<selector>`. */
export function slotKey (jobId: string, selector: string): string {
  return `${jobId}/${selector}`
}
