import { describe, expect, it } from 'vitest'
import { compareVersions, designatedPollers, jobFromTemplate, rank, WatchIndex, type JobTemplate, type Member, type WatchBody } from '../../src/jobs/index.js'
import { MAX_WATCHES_PER_AUTHOR } from '../../src/jobs/constants.js'
import { World } from './helpers.js'

const watchBody = (fields: Partial<WatchBody> = {}): WatchBody => ({ kind: 'npm', source: 'http://127.0.0.1:4873', package: 'hello', interval: 60, ...fields })

describe('watches: the fold, release news, designation and races', () => {
  it('orders versions as people read them', () => {
    const sorted = ['v1.10.0', 'v1.9.2', '2.0.0', '2.0.0-rc.1', '1.0', '1.0.1', 'v2.0.0b1'].sort(compareVersions)
    expect(sorted).toEqual(['1.0', '1.0.1', 'v1.9.2', 'v1.10.0', '2.0.0-rc.1', 'v2.0.0b1', '2.0.0'])
  })

  it('the first poll builds the newest release; later ones build what is newer, or published after the watch, at most three a poll', () => {
    const world = new World()
    const alice = world.author()
    const watch = alice.write('watch', watchBody() as never)
    const index = new WatchIndex()
    index.add(watch)
    const before = watch.entry.time - 1000
    expect(index.news(watch.id, [{ release: '1.0.0', publishedAt: before }, { release: '1.2.0', publishedAt: before }, { release: '1.1.0', publishedAt: before }])).toEqual({ fresh: ['1.2.0'], deferred: 0 })
    index.add(alice.write('job', { ...jobFields(), trigger: { watch: watch.id, release: '1.2.0' } } as never))
    const after = watch.entry.time + 1000
    const news = index.news(watch.id, ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0', '1.6.0'].map((release) => ({ release, publishedAt: release === '1.1.0' ? after : before })))
    // 1.1.0 is a backport published after the watch; 1.3–1.6 are newer than what was built.
    expect(news).toEqual({ fresh: ['1.1.0', '1.3.0', '1.4.0'], deferred: 2 })
    // Names a shell could read as code are never releases.
    expect(index.news(watch.id, [{ release: '9.9.9;rm -rf /' }]).fresh).toEqual([])
  })

  it('two jobs for one release (a race): every node takes the first in fold order, the other is a duplicate', () => {
    const world = new World()
    const [alice, p1, p2] = [world.author(), world.author(), world.author()]
    const watch = alice.write('watch', watchBody() as never)
    const first = p1.write('job', { ...jobFields(), trigger: { watch: watch.id, release: '1.0.0' } } as never)
    const second = p2.write('job', { ...jobFields(), trigger: { watch: watch.id, release: '1.0.0' } } as never)
    for (const order of [[watch, first, second], [second, first, watch], [first, watch, second]]) {
      const index = new WatchIndex()
      for (const e of order) index.add(e)
      expect(index.canonicalJob(second)).toBe(first.id)
      expect(index.isDuplicate(second.id, { watch: watch.id, release: '1.0.0' })).toBe(true)
      expect(index.isDuplicate(first.id, { watch: watch.id, release: '1.0.0' })).toBe(false)
      expect(index.get(watch.id)!.jobs).toEqual({ '1.0.0': first.id })
    }
  })

  it('only the author removes a watch; a stranger\'s watches beyond the quota are ignored; poll reports keep the latest of each outcome', () => {
    const world = new World()
    const [alice, mallory] = [world.author(), world.author()]
    const watch = alice.write('watch', watchBody() as never)
    const index = new WatchIndex()
    index.add(watch)
    index.add(mallory.write('unwatch', { watch: watch.id }))
    expect(index.get(watch.id)!.removed).toBe(false)
    index.add(alice.write('poll', { watch: watch.id, ok: false, reason: 'HTTP 503' }))
    index.add(alice.write('poll', { watch: watch.id, ok: true, releases: 3, latest: '1.2.0' }))
    expect(index.get(watch.id)).toMatchObject({ lastSuccess: { ok: true, latest: '1.2.0' }, lastFailure: { ok: false, reason: 'HTTP 503' } })
    index.add(alice.write('unwatch', { watch: watch.id }))
    expect(index.get(watch.id)!.removed).toBe(true)
    const floods = Array.from({ length: MAX_WATCHES_PER_AUTHOR + 3 }, (_, i) => mallory.write('watch', watchBody({ package: `p${i}` }) as never))
    for (const f of floods) index.add(f)
    expect(floods.filter((f) => index.ignoredReason(f.id) !== undefined)).toHaveLength(3)
  })

  it('the first live trusted poller by rendezvous polls; the next takes over when it leaves; a silent mesh escalates', () => {
    const world = new World()
    const alice = world.author()
    const watch = alice.write('watch', watchBody() as never)
    const index = new WatchIndex()
    index.add(watch)
    const view = index.get(watch.id)!
    const member = (author: string, polls = true): Member => ({ author, platforms: [], slots: 0, free: 0, running: [], accepts: { network: false, root: false }, lastSeen: 0, polls })
    const keys = ['a', 'b', 'c'].map((c) => c.repeat(64))
    const ranked = rank(watch.id, 'watch', keys)
    const now = view.time + 1000
    expect(designatedPollers(view, keys.map((k) => member(k)), {}, now)).toEqual([ranked[0]])
    expect(designatedPollers(view, keys.filter((k) => k !== ranked[0]).map((k) => member(k)), {}, now)).toEqual([ranked[1]])
    expect(designatedPollers(view, keys.map((k) => member(k, k !== ranked[0])), {}, now)).toEqual([ranked[1]])
    expect(designatedPollers(view, keys.map((k) => member(k)), { trusted: new Set([ranked[2]!]) }, now)).toEqual([ranked[2]])
    expect(designatedPollers(view, keys.map((k) => member(k)), {}, view.time + 3 * 6 * 60 * 60_000 + 1)).toEqual(ranked.slice(0, 2))
  })

  it('a template fills {version} and {name} in the name and steps', () => {
    const template: JobTemplate = { name: '{name} {version}', platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 2 }], steps: [{ name: 'build', run: 'make VERSION={version}' }], artifacts: [], independent: [], timeout: 60, limits: {}, network: false, root: false }
    const job = jobFromTemplate(template, '1.2.3', 'hello')
    expect(job.name).toBe('hello 1.2.3')
    expect(job.steps[0]!.run).toBe('make VERSION=1.2.3')
    expect(() => jobFromTemplate(template, '$(reboot)', 'hello')).toThrow()
  })
})

function jobFields (): Record<string, unknown> {
  return { name: 'j', source: 'f'.repeat(64), sourceSize: 1, steps: [{ name: 'b', run: 'true' }], platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 1 }], artifacts: [], independent: [], timeout: 60, limits: {}, network: false, root: false }
}
