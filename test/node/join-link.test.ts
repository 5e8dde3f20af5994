import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/util/wait.js'
import { BIN, NODE, ROOT, TEST_NODE_ARGS } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

/**
 * Every change through the API needs the node's token, from this machine too
 * (src/node/api/auth.ts). What a volunteer sees: `join` prints the dashboard
 * as a link carrying the token in its fragment, and curl without the token
 * is refused with a sentence saying how to give it.
 */
describe('join prints the dashboard with its token', () => {
  const teardown = useTeardown()

  it('a link to the dashboard that carries the API token; a change from loopback without it is refused, with it taken', async () => {
    const home = await tempDir(teardown, 'buildhaus-join-link-')
    const child = spawn(NODE, [BIN, 'join', '--home', home, ...TEST_NODE_ARGS], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      await exited
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    await waitFor(() => stdout.includes('Ctrl-C stops it.'), { timeoutMs: 30_000, what: `join's report (stderr: ${stderr.slice(-300)})` })

    const token = (await readFile(join(home, 'api-token'), 'utf8')).trim()
    const api = /^ {2}api {8}(\S+)$/m.exec(stdout)?.[1]
    expect(api, stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(stdout).toContain(`  dashboard  ${api!}/#token=${token}\n`)
    expect(stdout).toContain('the link carries the API token')

    // The fragment never reaches the server: the link is the dashboard's page.
    const page = await fetch(`${api!}/#token=${token}`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('/assets/app.js')

    const cancel = async (headers: Record<string, string>): Promise<Response> =>
      await fetch(`${api!}/api/jobs/${'0'.repeat(64)}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' })
    const refused = await cancel({})
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/^changes need the node's API token, from this machine too/)
    // With the token the change reaches the route, which knows no such job.
    expect((await cancel({ authorization: `Bearer ${token}` })).status).toBe(404)
  })
})
