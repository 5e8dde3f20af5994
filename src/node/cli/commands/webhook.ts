import { homePaths, resolveHome } from '../../home/home.js'
import { UsageError } from '../../../util/errors.js'
import { newSecret, readWebhooks, WEBHOOK_SCOPES, writeWebhooks, MAX_HOOKS, type WebhookScope } from '../../services/webhooks.js'
import { defineCommand } from '../command.js'
import { webhookAddSpec, webhookListSpec, webhookRemoveSpec } from '../specs.js'
import { mkdir } from 'node:fs/promises'

/**
 * `webhook add|list|remove`: edit webhooks.json in the node's home. A
 * running node re-reads it before its next delivery; no restart needed.
 */
export const webhookAddCommand = defineCommand({
  ...webhookAddSpec,
  async run (options, positionals, io) {
    const url = positionals[0]!
    try {
      const parsed = new URL(url)
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http')
    } catch {
      throw new UsageError(`${url} is not an http(s) URL; write it like https://ci.example.org/hooks/buildhaus`)
    }
    const scope = (options.scope ?? 'mine') as WebhookScope
    if (!(WEBHOOK_SCOPES as readonly string[]).includes(scope)) throw new UsageError(`--scope ${JSON.stringify(options.scope)} is not a scope; use --scope mine or --scope all`)
    const secret = options.secret ?? newSecret()
    if (secret.length < 16 || secret.length > 256) throw new UsageError('--secret must be 16 to 256 characters long')
    const home = resolveHome(options.home, io.env)
    await mkdir(home, { recursive: true, mode: 0o700 })
    const file = homePaths(home).webhooks
    const hooks = (await readWebhooks(file)).filter((h) => h.url !== url)
    if (hooks.length >= MAX_HOOKS) throw new UsageError(`${file} already has ${MAX_HOOKS} hooks, the most a node keeps; remove one first`)
    hooks.push({ url, secret, scope })
    await writeWebhooks(file, hooks)
    io.stdout.write(options.json ? `${JSON.stringify({ url, secret, scope })}\n` : `added ${url} (scope ${scope})\nsecret: ${secret}\n(receivers check X-Buildhaus-Signature-256 = "sha256=" + HMAC-SHA256(secret, body) in hex)\n`)
    return 0
  }
})

export const webhookListCommand = defineCommand({
  ...webhookListSpec,
  async run (options, _positionals, io) {
    const hooks = await readWebhooks(homePaths(resolveHome(options.home, io.env)).webhooks)
    const shown = hooks.map((h) => ({ url: h.url, scope: h.scope }))
    if (options.json) io.stdout.write(`${JSON.stringify({ hooks: shown })}\n`)
    else io.stdout.write(shown.length === 0 ? 'no webhooks (add one with `buildhaus-node webhook add URL`)\n' : shown.map((h) => `${h.url}  scope ${h.scope}\n`).join(''))
    return 0
  }
})

export const webhookRemoveCommand = defineCommand({
  ...webhookRemoveSpec,
  async run (options, positionals, io) {
    const file = homePaths(resolveHome(options.home, io.env)).webhooks
    const hooks = await readWebhooks(file)
    const kept = hooks.filter((h) => h.url !== positionals[0])
    if (kept.length === hooks.length) throw new UsageError(`there is no webhook ${positionals[0]!} in ${file} (see \`buildhaus-node webhook list\`)`)
    await writeWebhooks(file, kept)
    io.stdout.write(`removed ${positionals[0]!}\n`)
    return 0
  }
})
