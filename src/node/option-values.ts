import { DEFAULT_ENVIRONMENT_CACHE_MB } from '../environments/constants.js'
import { UsageError } from '../util/errors.js'
import { homePaths } from './home/home.js'

/**
 * Option values that commands besides `join` read too (`env …`), kept apart
 * from config.ts, which loads the network's modules (libp2p) for `join`'s
 * addresses: `env list` loaded all of libp2p for a directory name.
 */

export function parseWholeNumber (flag: string, text: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not a whole number from ${min} to ${max} (${what})`)
  }
  return Number(text)
}

export const ROOT_ENVIRONMENT_DIR = '/var/cache/buildhaus/environments'

/**
 * Where environments are kept by default. A root node's builds run as an
 * unprivileged user that bubblewrap binds the root as, by path, and the home
 * is private (0700): its environments live in /var/cache/buildhaus (they
 * are a cache, made again when missing) and nodes on the machine share them.
 * A node of another user keeps them in its home.
 */
export function defaultEnvironmentDir (home: string): string {
  return process.getuid?.() === 0 ? ROOT_ENVIRONMENT_DIR : homePaths(home).environments
}

/** `--environment-cache MB` (default DEFAULT_ENVIRONMENT_CACHE_MB). */
export function parseEnvironmentCache (text: string | undefined): number {
  return text === undefined ? DEFAULT_ENVIRONMENT_CACHE_MB : parseWholeNumber('--environment-cache', text, 256, 64 * 1024 * 1024, 'megabytes the environments may take')
}
