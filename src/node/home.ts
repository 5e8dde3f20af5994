import { mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/**
 * Where a node keeps its state: `--home`, else `$BUILDHAUS_HOME`, else the
 * per-user data directory of the platform.
 */
export function resolveHome (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return resolve(flag)
  if (env.BUILDHAUS_HOME !== undefined && env.BUILDHAUS_HOME !== '') return resolve(env.BUILDHAUS_HOME)
  return defaultDataDir(env)
}

function defaultDataDir (env: NodeJS.ProcessEnv): string {
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'buildhaus')
  if (process.platform === 'win32') return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'buildhaus')
  const xdg = env.XDG_DATA_HOME
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share'), 'buildhaus')
}

/** The files and folders inside a node home. */
export interface HomePaths {
  root: string
  /** The node's Ed25519 secret key, PKCS#8 PEM, mode 0600. */
  key: string
  /** Bearer token for API mutations from non-loopback clients, mode 0600. */
  apiToken: string
  /** Written by a running node: its API URL and pid, so CLI commands can find it. */
  apiFile: string
  /** The volunteer's admission policy (JSON). */
  policy: string
  /** Where verdicts are posted (docs/WEBHOOKS.md). */
  webhooks: string
  ledger: string
  blobs: string
  work: string
  /** The environment store's default place (`--environment-dir` moves it). */
  environments: string
}

export function homePaths (root: string): HomePaths {
  return {
    root,
    key: join(root, 'key.pem'),
    apiToken: join(root, 'api-token'),
    apiFile: join(root, 'api.json'),
    policy: join(root, 'policy.json'),
    webhooks: join(root, 'webhooks.json'),
    ledger: join(root, 'ledger'),
    blobs: join(root, 'blobs'),
    work: join(root, 'work'),
    environments: join(root, 'environments')
  }
}

/** Create the home directory (mode 0700: it holds the secret key). */
export async function ensureHome (root: string): Promise<HomePaths> {
  await mkdir(root, { recursive: true, mode: 0o700 })
  return homePaths(root)
}
